"""Training a seed ensemble of surrogates: Adam, per-member shuffling, best-validation weights.

All members of ``config.seeds`` train at once in one packed module
(:class:`~neuroreduce.models.ensemble.SurrogateEnsemble`). Each member shuffles the training
trials with its own ``numpy.random.default_rng(seed)`` stream, the loss is the sum of the members'
own mean losses, and Adam is elementwise, so every member follows exactly the trajectory it
would follow if trained alone with ``seeds=(seed,)`` (up to float rounding). There is no global
gradient clipping, which would couple the members.

After each epoch the train and validation losses of every member are computed on whole
sequences (normalised units) and each member keeps its best-validation weights, as in
Barbulescu et al. (2023). With ``early_stopping_patience`` a member freezes at its best after
that many epochs without improvement; training ends when every member is done.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.fields import FieldSpec
from neuroreduce.datasets.streaming import StreamingDataset
from neuroreduce.errors import CheckpointError, ConfigError
from neuroreduce.models.registry import ModelSpec
from neuroreduce.training import checkpoint as ckpt
from neuroreduce.training.checkpoint import HistoryRow, IOSpec
from neuroreduce.training.config import TrainConfig
from neuroreduce.training.data import TrainingData, fit_normalization, training_data
from neuroreduce.training.normalization import Normalization
from neuroreduce.training.objectives import Objective, build_objective, default_terms
from neuroreduce.training.progress import progress_bar
from neuroreduce.training.task import TaskLayout

_STATE_FORMAT = "neuroreduce-train-state"
_EVAL_BATCH = 64  # trials per forward pass when evaluating losses ...
#: ... unless all members' outputs for them would exceed this many bytes (float32): larger
#: temporaries are fresh ``mmap``s that page-fault in (glibc's threshold tops out at 32 MiB),
#: which cost Experiment 5 (28 outputs) more than the forward pass itself.
_EVAL_BYTES = 32 * 2**20


@dataclass(frozen=True)
class EpochReport:
    """What :func:`train` passes to ``on_epoch_end`` after each epoch (losses normalised).

    Attributes:
        epoch: The epoch just finished (1-based).
        epochs: Epochs requested.
        train_losses: Per-member train loss (NaN for members already done).
        valid_losses: Per-member validation loss (NaN for members already done).
        best_valid_losses: Per-member best validation loss so far.
        done: Per-member flag: stopped early (or diverged) and frozen at its best.
        valid_terms: Per objective term (field name): per-member validation loss of that term.
    """

    epoch: int
    epochs: int
    train_losses: tuple[float, ...]
    valid_losses: tuple[float, ...]
    best_valid_losses: tuple[float, ...]
    done: tuple[bool, ...]
    valid_terms: tuple[tuple[str, tuple[float, ...]], ...] = ()


@dataclass(frozen=True, eq=False)
class TrainResult:
    """Outcome of :func:`train`: the best model in memory, and its run folder.

    Attributes:
        run_dir: The run folder.
        seeds: One seed per member.
        best_epochs: Best-validation epoch per member (1-based).
        best_valid_losses: Validation loss at that epoch per member (normalised units).
        stopped_early: Per member: stopped by early stopping (or divergence) before ``epochs``.
        epochs_done: Epochs trained (the last member's last epoch).
        history: Per-epoch, per-member train and validation losses.
        model: The ensemble with every member's best-validation weights, in eval mode (the
            same weights as ``model.safetensors``; no need to reload the run).
        normalization: The statistics the model's inputs and outputs are scaled with.
        layout: Which model inputs and outputs are which dataset fields.
    """

    run_dir: Path
    seeds: tuple[int, ...]
    best_epochs: tuple[int, ...]
    best_valid_losses: tuple[float, ...]
    stopped_early: tuple[bool, ...]
    epochs_done: int
    history: tuple[HistoryRow, ...]
    model: Any = None
    normalization: Normalization | None = None
    layout: TaskLayout | None = None


@contextlib.contextmanager
def _torch_settings(threads: int) -> Iterator[None]:
    old = (
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(old[0])
        torch.use_deterministic_algorithms(old[1], warn_only=old[2])


class _Loop:
    """The mutable state of one ensemble training run and its epoch step."""

    def __init__(
        self,
        config: TrainConfig,
        spec: ModelSpec,
        data: TrainingData,
        objective: Objective | None = None,
    ) -> None:
        self.config = config
        self.data = data
        self.objective = objective or _plain_objective(config, spec)
        with torch.random.fork_rng(devices=[]):
            self.model = spec.build_ensemble(config.seeds, engine=config.engine)
        self.model.train()
        self.best_model = copy.deepcopy(self.model).requires_grad_(False).eval()
        self.owners = self.model.parameter_owners()
        self.params = dict(self.model.named_parameters())
        self.piece = self._eval_piece()  # trials per evaluation pass, fixed for the run
        self.best_params = dict(self.best_model.named_parameters())
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.effective_learning_rate
        )
        k = config.n_members
        self.rngs = [np.random.default_rng(s) for s in config.seeds]
        self.epoch = 0
        self.best_loss = [math.inf] * k
        self.best_epoch = [0] * k
        self.since_best = [0] * k
        self.done = [False] * k
        self.history: list[HistoryRow] = []

    # ---------------------------------------------------------------- member bookkeeping
    def _copy_members(self, members: list[int], *, to_best: bool) -> None:
        if not members:
            return
        src, dst = (self.params, self.best_params) if to_best else (self.best_params, self.params)
        sel = torch.tensor(members)
        with torch.no_grad():
            for name, target in dst.items():
                mask = torch.isin(self.owners[name], sel)
                target.copy_(torch.where(mask, src[name], target))

    def _guard_divergence(self) -> None:
        bad: set[int] = set()
        for name, p in self.params.items():
            finite = torch.isfinite(p)
            if not bool(finite.all()):
                bad.update(int(k) for k in self.owners[name][~finite].unique() if k >= 0)
        if not bad:
            return
        members = sorted(bad)
        warnings.warn(
            f"members {members} (seeds {[self.config.seeds[k] for k in members]}) diverged to "
            "NaN/inf weights; they keep their best weights so far (try a smaller learning_rate)",
            RuntimeWarning,
            stacklevel=3,
        )
        self._copy_members(members, to_best=False)
        sel = torch.tensor(members)
        with torch.no_grad():
            for name, p in self.params.items():
                mask = torch.isin(self.owners[name], sel)
                for value in self.optimizer.state.get(p, {}).values():
                    if value.shape == p.shape:
                        value.masked_fill_(mask, 0.0)
        for k in members:
            self.done[k] = True

    # ---------------------------------------------------------------- one epoch
    def _eval_piece(self) -> int:
        """Trials per evaluation pass: :data:`_EVAL_BATCH`, fewer for wide or long data."""
        values_per_trial = self.data.n_values("train") // max(1, self.data.n_train)
        trial_bytes = self.config.n_members * values_per_trial * 4
        if trial_bytes * _EVAL_BATCH <= _EVAL_BYTES:
            return _EVAL_BATCH
        size = _EVAL_BYTES // trial_bytes
        return max(1, size - size % 8 if size >= 8 else size)  # whole 8-lane blocks (fused)

    def _evaluate(self, split: str) -> tuple[list[float], dict[str, list[float]]]:
        """Total and per-term loss ``[member]`` over a whole split (no gradient)."""
        totals: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.model.eval()
        with torch.no_grad():
            for piece in self.data.chunks(split, self.piece):
                pred = self.model.forward_shared(piece.x)  # fresh: terms may work in place
                for name, (s, n) in self.objective.sums(pred, piece.targets, piece.masks).items():
                    old = totals.get(name)
                    totals[name] = (s, n) if old is None else (old[0] + s, old[1] + n)
        self.model.train()
        return self.objective.finish(totals)

    def run_epoch(self) -> EpochReport:
        cfg = self.config
        n = self.data.n_train
        order = np.stack([rng.permutation(n) for rng in self.rngs])
        for start in range(0, n, cfg.batch_size):
            b = self.data.batch(order[:, start : start + cfg.batch_size])
            active = torch.tensor([0.0 if d else 1.0 for d in self.done])  # frozen: no gradient
            losses, _ = self.objective.member_losses(self.model(b.x), b.targets, b.masks)
            self.optimizer.zero_grad(set_to_none=True)
            (losses * active).sum().backward()
            self.optimizer.step()
            self._guard_divergence()
        self.epoch += 1
        train_l, _ = self._evaluate("train")
        valid_l, valid_terms = self._evaluate("valid")
        if len(valid_terms) < 2:
            valid_terms = {}
        improved = []
        for k in range(cfg.n_members):
            if self.done[k]:
                train_l[k] = valid_l[k] = math.nan
                continue
            terms = tuple((n, v[k]) for n, v in valid_terms.items())
            self.history.append(
                HistoryRow(self.epoch, k, cfg.seeds[k], train_l[k], valid_l[k], terms)
            )
            if valid_l[k] < self.best_loss[k]:
                self.best_loss[k], self.best_epoch[k], self.since_best[k] = (
                    valid_l[k],
                    self.epoch,
                    0,
                )
                improved.append(k)
            else:
                self.since_best[k] += 1
                patience = cfg.early_stopping_patience
                if patience is not None and self.since_best[k] >= patience:
                    self.done[k] = True
        self._copy_members(improved, to_best=True)
        self._copy_members([k for k in range(cfg.n_members) if self.done[k]], to_best=False)
        return EpochReport(
            self.epoch,
            cfg.epochs,
            tuple(train_l),
            tuple(valid_l),
            tuple(self.best_loss),
            tuple(self.done),
            tuple((n, tuple(v)) for n, v in valid_terms.items()),
        )

    @property
    def finished(self) -> bool:
        return self.epoch >= self.config.epochs or all(self.done)

    # ---------------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": _STATE_FORMAT,
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "best_model": self.best_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "best_loss": list(self.best_loss),
            "best_epoch": list(self.best_epoch),
            "since_best": list(self.since_best),
            "done": list(self.done),
            "rng": json.dumps([rng.bit_generator.state for rng in self.rngs]),
            "history": [
                [r.epoch, r.member, r.seed, r.train_loss, r.valid_loss]
                + ([[list(t) for t in r.terms]] if r.terms else [])
                for r in self.history
            ],
        }

    def load_state_dict(self, state: dict[str, Any], where: Path) -> None:
        k = self.config.n_members
        try:
            self.model.load_state_dict(state["model"])
            self.best_model.load_state_dict(state["best_model"])
            self.optimizer.load_state_dict(state["optimizer"])
            rng_states = json.loads(state["rng"])
            lists = [state[n] for n in ("best_loss", "best_epoch", "since_best", "done")]
            if len(rng_states) != k or any(len(v) != k for v in lists):
                raise ValueError("member count")
            for rng, st in zip(self.rngs, rng_states, strict=True):
                rng.bit_generator.state = st
            self.best_loss = [float(v) for v in state["best_loss"]]
            self.best_epoch = [int(v) for v in state["best_epoch"]]
            self.since_best = [int(v) for v in state["since_best"]]
            self.done = [bool(v) for v in state["done"]]
            self.history = [
                HistoryRow(int(e), int(m), int(s), float(t), float(v),
                           tuple((str(n), float(x)) for n, x in (rest[0] if rest else ())))
                for e, m, s, t, v, *rest in state["history"]
            ]
            self.epoch = int(state["epoch"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(
                f"{where} does not fit this run ({type(exc).__name__}); delete it to restart"
            ) from None

    def save(self, run_dir: Path) -> None:
        """Write checkpoint state, history and best weights so far (all atomic)."""
        ckpt.save_state(run_dir, self.state_dict())
        ckpt.write_history(run_dir, self.history)
        ckpt.write_weights(
            run_dir,
            [self.best_model.member_state_dict(k) for k in range(self.config.n_members)],
            seeds=self.config.seeds,
            best_epochs=self.best_epoch,
            best_losses=self.best_loss,
            epochs_done=self.epoch,
            complete=self.finished,
        )

    def result(self, run_dir: Path, **extra: Any) -> TrainResult:
        return TrainResult(
            run_dir=run_dir,
            seeds=self.config.seeds,
            best_epochs=tuple(self.best_epoch),
            best_valid_losses=tuple(self.best_loss),
            stopped_early=tuple(
                d and self._last_epoch_of(k) < self.config.epochs for k, d in enumerate(self.done)
            ),
            epochs_done=self.epoch,
            history=tuple(self.history),
            model=self.best_model,
            **extra,
        )

    def _last_epoch_of(self, k: int) -> int:
        return max((r.epoch for r in self.history if r.member == k), default=0)


def _prepare_folder(
    run_dir: Path,
    *,
    resume: bool,
    config: TrainConfig,
    spec: ModelSpec,
    io_spec: IOSpec,
    dataset_hash: str,
) -> dict[str, Any] | None:
    """Check ``run_dir`` and return the saved state to resume from (``None``: start afresh)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise CheckpointError(f"{run_dir} is a file; give a folder for the run (-o)")
    if not (run_dir / ckpt.CONFIG_FILE).is_file():
        if run_dir.is_dir() and any(run_dir.iterdir()):
            raise CheckpointError(
                f"{run_dir} is not empty and holds no training run; use a new -o folder"
            )
        return None
    if not resume:
        raise CheckpointError(
            f"{run_dir} already holds a training run; resume it, or use a new -o folder or "
            "delete the old one"
        )
    ckpt.check_same_run(run_dir, config, spec, io_spec, dataset_hash)
    state = ckpt.load_state(run_dir)
    if state is not None and int(state.get("epoch", 0)) > config.epochs:
        raise CheckpointError(
            f"{run_dir} already trained {state['epoch']} epochs, more than the {config.epochs} "
            "asked; ask for at least as many epochs or use a new -o folder"
        )
    return state


def train(
    dataset: Dataset | StreamingDataset,
    config: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = True,
    progress: bool = True,
    dataset_path: str | Path | None = None,
    on_epoch_end: Callable[[EpochReport], None] | None = None,
) -> TrainResult:
    """Train one surrogate per seed on ``dataset`` and write the run folder ``out_dir``.

    Trains on ``dataset.indices("train")``, selects each member's best epoch on ``"valid"``.
    Inputs and outputs are z-scored per channel with statistics of the training trials.

    Given a :class:`~neuroreduce.datasets.streaming.StreamingDataset` (an open file), the
    trials are streamed: the statistics are computed chunk by chunk and only the current
    minibatch (and evaluation piece of 64 trials) is in memory, so files larger than memory
    train; the results equal training on the loaded dataset to float rounding.

    Args:
        dataset: Dataset with a split assignment (train and valid trials needed), in memory or
            streamed from its file.
        config: Training configuration.
        out_dir: Run folder; created if missing. See :mod:`neuroreduce.training.checkpoint`.
        resume: Continue an interrupted run found in ``out_dir`` (same config except
            ``epochs``/``checkpoint_every``/``threads``, same dataset); the result equals an
            uninterrupted run. ``epochs`` may be raised to train a finished run further.
        progress: Show a progress bar over epochs.
        dataset_path: Where the dataset was read from (recorded in ``provenance.json``).
        on_epoch_end: Called after every epoch (after any checkpoint of that epoch was saved).

    Returns:
        Best epochs and losses per member, and the loss history.

    Raises:
        DatasetError: if the dataset has no split, or no train or valid trials.
        CheckpointError: if ``out_dir`` holds a different run, or a run and ``resume`` is False.
    """
    run_dir = Path(out_dir)
    dataset = _split(dataset, config)
    layout = TaskLayout.from_specs(dataset.field_specs, targets=config.targets)
    normalization = fit_normalization(dataset, layout)
    data = training_data(dataset, normalization, layout)
    objective = build_objective(
        config.objective or default_terms(layout, config.loss),
        layout,
        positive_fraction=getattr(data, "positive_fraction", None),
    )
    spec = ModelSpec(
        config.model,
        n_inputs=layout.n_inputs,
        n_outputs=layout.n_outputs,
        hidden=config.hidden,
        options=config.model_options,
    )
    io_spec = IOSpec.from_dataset(dataset, layout)
    dataset_hash = dataset.content_hash()
    state = _prepare_folder(
        run_dir,
        resume=resume,
        config=config,
        spec=spec,
        io_spec=io_spec,
        dataset_hash=dataset_hash,
    )
    with _torch_settings(config.threads):
        loop = _Loop(config, spec, data, objective)
        if state is None:
            provenance = ckpt.make_provenance(
                dataset, dataset_hash=dataset_hash, dataset_path=dataset_path
            )
        else:
            loop.load_state_dict(state, run_dir / ckpt.STATE_FILE)
            provenance = ckpt.read_provenance(run_dir)
            provenance.setdefault("resumed", []).append({"at": _now(), "from_epoch": loop.epoch})
        ckpt.write_config(run_dir, config, spec, io_spec)
        ckpt.write_normalization(run_dir, normalization)
        ckpt.write_provenance(run_dir, provenance)
        if loop.finished:  # nothing left to train: rewrite the outputs for this config
            loop.save(run_dir)
        with progress_bar(progress, config, loop.epoch) as advance:
            while not loop.finished:
                report = loop.run_epoch()
                if loop.finished or loop.epoch % config.checkpoint_every == 0:
                    loop.save(run_dir)
                advance(report)
                if on_epoch_end is not None:
                    on_epoch_end(report)
    provenance["finished"] = _now()
    provenance["epochs_done"] = loop.epoch
    ckpt.write_provenance(run_dir, provenance)
    return loop.result(run_dir, normalization=normalization, layout=layout)


def _split(dataset: Dataset | StreamingDataset, config: TrainConfig) -> Any:
    """``dataset`` split by ``config.split`` (unchanged when it is ``None``)."""
    if config.split is None:
        return dataset
    if isinstance(dataset, StreamingDataset):
        raise ConfigError("a split strategy needs the dataset in memory; train without --stream")
    from neuroreduce.datasets.pieces import apply_split

    return apply_split(dataset, config.split, seed=config.seeds[0])


def _plain_objective(config: TrainConfig, spec: ModelSpec) -> Objective:
    """The schema-v1 objective (``config.loss`` on every output) for a bare ``_Loop``."""
    layout = TaskLayout.from_specs(
        [FieldSpec("outputs", "target", "continuous", tuple(map(str, range(spec.n_outputs))))]
    )
    return build_objective(default_terms(layout, config.loss), layout)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


