"""The epoch loop of a seed ensemble: minibatches, per-member losses, best weights, state.

:class:`EnsembleLoop` holds the mutable state of one training run (model, best weights,
optimiser, per-member random streams, counters, history) and runs one epoch at a time;
:func:`neuroreduce.training.trainer.train` drives it and writes the run folder. See the
trainer's module docstring for why members never interact.
"""

from __future__ import annotations

import copy
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuroreduce.datasets.fields import FieldSpec
from neuroreduce.errors import CheckpointError, ConfigError, NeuroreduceError
from neuroreduce.models.registry import ModelSpec
from neuroreduce.models.warmup import WarmupEnsemble
from neuroreduce.training import checkpoint as ckpt
from neuroreduce.training import loop as parts
from neuroreduce.training.assemble import Assembled
from neuroreduce.training.checkpoint import HistoryRow
from neuroreduce.training.config import TrainConfig
from neuroreduce.training.data import TrainingData
from neuroreduce.training.objectives import Objective, build_objective, default_terms
from neuroreduce.training.task import TaskLayout

_STATE_FORMAT = "neuroreduce-train-state"
_EVAL_BATCH = 64  # trials per forward pass when evaluating losses ...
#: ... unless all members' outputs for them would exceed this many bytes (float32): larger
#: temporaries are fresh ``mmap``s that page-fault in (glibc's threshold tops out at 32 MiB),
#: which cost Experiment 5 (28 outputs) more than the forward pass itself.
_EVAL_BYTES = 32 * 2**20


class DivergenceWarning(RuntimeWarning):
    """Some members diverged (NaN/inf weights or losses) and were frozen at their best.

    Warned once per member as it happens; the run's outcome names them too
    (``TrainResult.diverged``, ``provenance.json`` ``diverged_members``), so a command line can
    silence these and print one line of its own.
    """


class TrainingDivergedError(NeuroreduceError):
    """Every member of a run diverged: the run folder is written, but nothing was trained
    (the ``train`` command exits non-zero with this one line)."""


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


class EnsembleLoop:
    """The mutable state of one ensemble training run and its epoch step."""

    def __init__(
        self,
        config: TrainConfig,
        spec: ModelSpec,
        data: TrainingData,
        objective: Objective | None = None,
        *,
        window: tuple[int, int, int] | None = None,
        warmup: tuple[list[float], int] | None = None,
    ) -> None:
        self.config = config
        self.data = data
        self.window = window  # (window, burn-in, trial length) in samples, or None
        self.objective = objective or _plain_objective(config, spec)
        with torch.random.fork_rng(devices=[]):
            self.model = spec.build_ensemble(config.seeds, engine=config.engine)
        if warmup is not None:  # rest-fitted initial state (models/warmup.py)
            self.model = WarmupEnsemble(self.model, *warmup)
        self.model.train()
        self.best_model = copy.deepcopy(self.model).requires_grad_(False).eval()
        self.owners = self.model.parameter_owners()
        self.params = dict(self.model.named_parameters())
        self.piece = self._eval_piece()  # trials per evaluation pass, fixed for the run
        self.best_params = dict(self.best_model.named_parameters())
        self.optimizer = parts.make_optimizer(
            self.model, name=config.optimizer, lr=config.effective_learning_rate,
            weight_decay=config.weight_decay, betas=config.betas,
        )
        parts.check_schedule(config.schedule, self.model, config.n_members)
        self.lr_scale = [1.0] * len(self.optimizer.param_groups)
        self.plateau_wait = [0] * len(self.optimizer.param_groups)
        if config.forcing_schedule(0) is not None and not getattr(
            self.model, "supports_forcing", lambda: False
        )():
            raise ConfigError(
                f"model {spec.name!r} has no teacher forcing; drop teacher_forcing_interval / "
                "forcing = 'generalised' or "
                "use a family that has it (plrnn)"
            )
        k = config.n_members
        self.rngs = [np.random.default_rng(s) for s in config.seeds]
        self.epoch = 0
        self.best_loss = [math.inf] * k
        self.best_epoch = [0] * k
        self.since_best = [0] * k
        self.done = [False] * k
        self.diverged = [False] * k  # NaN/inf weights or losses: frozen at the best so far
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

    def _mark_diverged(self, members: list[int], what: str) -> None:
        """Flag ``members`` as diverged and done (one warning naming the new ones)."""
        new = [k for k in members if not self.diverged[k]]
        for k in members:
            self.diverged[k] = self.done[k] = True
        if new:
            warnings.warn(
                f"members {new} (seeds {[self.config.seeds[k] for k in new]}) diverged to "
                f"{what}; they keep their best weights so far (try a smaller learning_rate)",
                DivergenceWarning,
                stacklevel=4,
            )

    @property
    def diverged_members(self) -> tuple[int, ...]:
        """Indices of the members that diverged (frozen at their best weights)."""
        return tuple(k for k, d in enumerate(self.diverged) if d)

    def _guard_divergence(self) -> None:
        bad: set[int] = set()
        for name, p in self.params.items():
            finite = torch.isfinite(p)
            if not bool(finite.all()):
                bad.update(int(k) for k in self.owners[name][~finite].unique() if k >= 0)
        if not bad:
            return
        members = sorted(bad)
        self._mark_diverged(members, "NaN/inf weights")
        self._copy_members(members, to_best=False)
        sel = torch.tensor(members)
        with torch.no_grad():
            for name, p in self.params.items():
                mask = torch.isin(self.owners[name], sel)
                for value in self.optimizer.state.get(p, {}).values():
                    if value.shape == p.shape:
                        value.masked_fill_(mask, 0.0)

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
        # each trial `windows_per_trial` times per epoch (in fresh random orders), one window
        # each; one permutation per member and epoch when it is 1 (the random streams of older
        # runs are unchanged)
        k = cfg.windows_per_trial
        order = np.stack([np.concatenate([rng.permutation(self.data.n_train)
                                          for _ in range(k)]) for rng in self.rngs])
        n = order.shape[1]
        if cfg.schedule != "none":
            parts.set_epoch_lr(self.optimizer, schedule=cfg.schedule,
                              base_lr=cfg.effective_learning_rate, epoch=self.epoch,
                              epochs=cfg.epochs, scales=self.lr_scale,
                              min_lr=cfg.min_learning_rate)
        for start in range(0, n, cfg.batch_size):
            positions = order[:, start : start + cfg.batch_size]
            b = self.data.batch(positions)
            if self.window is not None:
                w, burn, n_time = self.window
                starts = parts.draw_starts(self.rngs, positions.shape[1], n_time, w)
                b = parts.window_batch(b, starts, window=w, burn_in=burn)
            active = torch.tensor([0.0 if d else 1.0 for d in self.done])  # frozen: no gradient
            losses, _ = self.objective.member_losses(self._forward(b), b.targets, b.masks)
            self.optimizer.zero_grad(set_to_none=True)
            (losses * active).sum().backward()
            if cfg.clip_norm is not None:
                parts.clip_members(self.params, self.owners, cfg.n_members, cfg.clip_norm)
            self.optimizer.step()
            self._guard_divergence()
        self.epoch += 1
        train_l, _ = self._evaluate("train")
        valid_l, valid_terms = self._evaluate("valid")
        if len(valid_terms) < 2:
            valid_terms = {}
        improved = []
        lost = [k for k in range(cfg.n_members) if not self.done[k]
                and (not math.isfinite(train_l[k]) or math.isinf(valid_l[k]))]
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
        if lost:  # recorded above as they are; frozen at their best from now on
            self._mark_diverged(lost, "NaN/inf losses")
        if cfg.schedule == "plateau":
            self._plateau_step(improved)
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

    def _forward(self, b: Any) -> torch.Tensor:
        schedule = self.config.forcing_schedule(self.epoch)
        if schedule is None:
            return self.model(b.x)
        interval, alpha = schedule
        targets = torch.cat([b.targets[h.field].float() for h in self.objective.layout_heads],
                            dim=-1)
        if alpha is None:
            return self.model(b.x, forcing=(targets, interval))
        return self.model(b.x, forcing=(targets, interval, alpha))

    def _plateau_step(self, improved: list[int]) -> None:
        """Per member (= parameter group): after ``plateau_patience`` epochs without a better
        validation loss, multiply its learning rate by ``plateau_factor``."""
        cfg = self.config
        for g in range(len(self.lr_scale)):
            if g in improved:
                self.plateau_wait[g] = 0
                continue
            self.plateau_wait[g] += 1
            if self.plateau_wait[g] >= cfg.plateau_patience:
                self.lr_scale[g] *= cfg.plateau_factor
                self.plateau_wait[g] = 0

    def whole_split(self, split: str) -> Assembled:
        """Every trial of ``split`` as one :class:`Assembled` (for closed-form fits)."""
        pieces = list(self.data.chunks(split, 1 << 30))
        names = {n for p in pieces for n in p.masks}
        return Assembled(
            torch.cat([p.x for p in pieces]),
            {k: torch.cat([p.targets[k] for p in pieces]) for k in pieces[0].targets},
            {
                k: torch.cat([p.masks.get(k, torch.ones_like(p.targets[k], dtype=torch.bool))
                              for p in pieces])
                for k in names
            },
        )

    def fit_members(self, fit: Any, family_config: Any, layout: TaskLayout) -> EpochReport:
        """Non-gradient families: fit every member on the train split at once (epoch 1).

        ``fit(config, *, train, valid, layout, seed) -> nn.Module`` returns a lone member with
        its fitted weights (valid may be used to choose a regularisation strength); losses are
        then computed and recorded as for a trained epoch, and every member is done.
        """
        train, valid = self.whole_split("train"), self.whole_split("valid")
        states = [
            fit(family_config, train=train, valid=valid, layout=layout, seed=seed).state_dict()
            for seed in self.config.seeds
        ]
        target = self.model.ensemble if isinstance(self.model, WarmupEnsemble) else self.model
        target.load_member_state_dicts(states)
        self.epoch = 1
        train_l, _ = self._evaluate("train")
        valid_l, terms = self._evaluate("valid")
        for k, seed in enumerate(self.config.seeds):
            per = tuple((n, v[k]) for n, v in terms.items()) if len(terms) > 1 else ()
            self.history.append(HistoryRow(1, k, seed, train_l[k], valid_l[k], per))
        self.best_loss, self.best_epoch = list(valid_l), [1] * len(valid_l)
        self.done = [True] * len(valid_l)
        self._copy_members(list(range(len(valid_l))), to_best=True)
        return EpochReport(1, self.config.epochs, tuple(train_l), tuple(valid_l),
                           tuple(valid_l), tuple(self.done))

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
            "diverged": list(self.diverged),
            "rng": json.dumps([rng.bit_generator.state for rng in self.rngs]),
            "lr_scale": list(self.lr_scale),
            "plateau_wait": list(self.plateau_wait),
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
            self.diverged = [bool(v) for v in state.get("diverged", self.diverged)]
            if len(self.diverged) != k:
                raise ValueError("member count")
            self.history = [
                HistoryRow(int(e), int(m), int(s), float(t), float(v),
                           tuple((str(n), float(x)) for n, x in (rest[0] if rest else ())))
                for e, m, s, t, v, *rest in state["history"]
            ]
            self.epoch = int(state["epoch"])
            self.lr_scale = [float(v) for v in state.get("lr_scale", self.lr_scale)]
            self.plateau_wait = [int(v) for v in state.get("plateau_wait", self.plateau_wait)]
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

    def result(self, run_dir: Path, **extra: Any) -> Any:
        from neuroreduce.training.trainer import TrainResult

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
            diverged=self.diverged_members,
            **extra,
        )

    def _last_epoch_of(self, k: int) -> int:
        return max((r.epoch for r in self.history if r.member == k), default=0)



def _plain_objective(config: TrainConfig, spec: ModelSpec) -> Objective:
    """The schema-v1 objective (``config.loss`` on every output) for a bare ``_Loop``."""
    layout = TaskLayout.from_specs(
        [FieldSpec("outputs", "target", "continuous", tuple(map(str, range(spec.n_outputs))))]
    )
    return build_objective(default_terms(layout, config.loss), layout)
