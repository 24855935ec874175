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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from neuroreduce._io import remove_stale_temporaries
from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.streaming import StreamingDataset
from neuroreduce.errors import CheckpointError, ConfigError
from neuroreduce.limits import check_training
from neuroreduce.locks import folder_lock, other_files
from neuroreduce.models.registry import ModelSpec, get_family, model_config
from neuroreduce.training import checkpoint as ckpt
from neuroreduce.training.assemble import rest_input
from neuroreduce.training.checkpoint import HistoryRow, IOSpec
from neuroreduce.training.config import TrainConfig
from neuroreduce.training.data import fit_normalization, training_data
from neuroreduce.training.ensemble_loop import EnsembleLoop, EpochReport
from neuroreduce.training.normalization import Normalization
from neuroreduce.training.objectives import build_objective, default_terms
from neuroreduce.training.progress import progress_bar
from neuroreduce.training.task import TaskLayout
from neuroreduce.trust.range_check import write_envelope


@dataclass(frozen=True, eq=False)
class TrainResult:
    """Outcome of :func:`train`: the best model in memory, and its run folder.

    Attributes:
        run_dir: The run folder (``None`` when trained in memory only).
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
        dataset_hash: Content hash of the dataset as given to :func:`train`.
        spec: The model's family, sizes and options.
        io: Channel names, units, dt and layout of the training data (as in ``config.json``).
        diverged: Indices of the members that diverged (NaN/inf weights or losses) and were
            frozen at their best weights (also ``diverged_members`` in ``provenance.json``).
    """

    run_dir: Path | None
    seeds: tuple[int, ...]
    best_epochs: tuple[int, ...]
    best_valid_losses: tuple[float, ...]
    stopped_early: tuple[bool, ...]
    epochs_done: int
    history: tuple[HistoryRow, ...]
    model: Any = None
    normalization: Normalization | None = None
    layout: TaskLayout | None = None
    dataset_hash: str = ""
    spec: ModelSpec | None = None
    io: IOSpec | None = None
    diverged: tuple[int, ...] = ()


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


def live_entries(folder: Path) -> list[Path]:
    """The entries of ``folder`` once temporaries of dead writers are removed (lock files of
    :mod:`neuroreduce.locks` are not entries)."""
    remove_stale_temporaries(folder, force=True)
    return other_files(folder)


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
        if run_dir.is_dir() and any(live_entries(run_dir)):
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
    out_dir: str | Path | None,
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
            ``None`` trains in memory only (nothing is written, nothing resumes): the
            returned ``model`` is the result, as in a notebook.
        resume: Continue an interrupted run found in ``out_dir`` (same config except
            ``epochs``/``checkpoint_every``/``threads``, same dataset); the result equals an
            uninterrupted run. ``epochs`` may be raised to train a finished run further.
        progress: Show a progress bar over epochs.
        dataset_path: Where the dataset was read from (recorded in ``provenance.json``).
        on_epoch_end: Called after every epoch (after any checkpoint of that epoch was saved).

    Returns:
        The best model of every member in memory (``.model``, with ``.normalization`` and
        ``.layout``), best epochs and losses per member, and the loss history.

    Raises:
        DatasetError: if the dataset has no split, or no train or valid trials.
        CheckpointError: if ``out_dir`` holds a different run, or a run and ``resume`` is False.
    """
    run_dir = None if out_dir is None else Path(out_dir)
    dataset_hash = dataset.content_hash()  # of the data as given (a split is in the config)
    dataset = _split(dataset, config)
    layout = TaskLayout.from_specs(dataset.field_specs, targets=config.targets)
    normalization = fit_normalization(dataset, layout)
    data = training_data(dataset, normalization, layout)
    objective = build_objective(
        config.objective or default_terms(layout, config.loss),
        layout,
        positive_fraction=getattr(data, "positive_fraction", None),
    )
    family = get_family(config.model)
    options = dict(config.model_options)
    if family.bind is not None:  # options taken from the data (e.g. neuron names), saved
        options.update(family.bind(model_config(config.model, config.hidden, options), layout))
    spec = ModelSpec(
        config.model,
        n_inputs=layout.n_inputs,
        n_outputs=layout.n_outputs,
        hidden=config.hidden,
        options=tuple(options.items()),
    )
    io_spec = IOSpec.from_dataset(dataset, layout)
    if family.check is not None:
        family.check(spec.config, layout)
    check_training(config, n_inputs=layout.n_inputs, n_outputs=layout.n_outputs,
                   n_train=len(dataset.indices("train")), n_time=dataset.n_time,
                   dt_ms=dataset.dt_ms)  # parameters and activations fit, before allocating
    # one writer per run folder (see neuroreduce.locks), from the folder check to the last write
    held = contextlib.nullcontext() if run_dir is None else folder_lock(run_dir)
    with held, _torch_settings(config.threads):
        state = None if run_dir is None else _prepare_folder(
            run_dir,
            resume=resume,
            config=config,
            spec=spec,
            io_spec=io_spec,
            dataset_hash=dataset_hash,
        )
        steps = config.warmup_steps(dataset.dt_ms)
        warmup = (rest_input(layout, normalization), steps) if steps else None
        loop = EnsembleLoop(config, spec, data, objective, window=_window(config, dataset),
                            warmup=warmup)
        if state is None:
            provenance = ckpt.make_provenance(
                dataset, dataset_hash=dataset_hash, dataset_path=dataset_path
            )
        else:
            loop.load_state_dict(state, run_dir / ckpt.STATE_FILE)
            provenance = ckpt.read_provenance(run_dir)
            provenance.setdefault("resumed", []).append({"at": _now(), "from_epoch": loop.epoch})
        save = (lambda: None) if run_dir is None else (lambda: loop.save(run_dir))
        if run_dir is not None:
            ckpt.write_config(run_dir, config, spec, io_spec)
            ckpt.write_normalization(run_dir, normalization)
            ckpt.write_provenance(run_dir, provenance)
            write_envelope(run_dir, dataset, layout)  # where predictions are trusted
        if loop.finished:  # nothing left to train: rewrite the outputs for this config
            save()
        with progress_bar(progress, config, loop.epoch) as advance:
            while not loop.finished:
                if family.fit is not None:  # non-gradient baseline: one closed-form fit
                    report = loop.fit_members(family.fit, spec.config, layout)
                else:
                    report = loop.run_epoch()
                if loop.finished or loop.epoch % config.checkpoint_every == 0:
                    save()
                advance(report)
                if on_epoch_end is not None:
                    on_epoch_end(report)
        if run_dir is not None:
            provenance["finished"] = _now()
            provenance["epochs_done"] = loop.epoch
            provenance["diverged_members"] = list(loop.diverged_members)
            ckpt.write_provenance(run_dir, provenance)
    return loop.result(run_dir, normalization=normalization, layout=layout,
                       dataset_hash=dataset_hash, spec=spec, io=io_spec)


def _window(config: TrainConfig, dataset: Any) -> tuple[int, int, int] | None:
    """(window, burn-in, trial length) in samples of ``config.window_ms``, or ``None``."""
    if config.window_ms is None:
        return None
    dt = float(dataset.dt_ms)
    window = max(1, int(round(config.window_ms / dt)))
    return window, int(round(config.burn_in_ms / dt)), int(dataset.n_time)


def _split(dataset: Dataset | StreamingDataset, config: TrainConfig) -> Any:
    """``dataset`` split by ``config.split`` (unchanged when it is ``None``)."""
    if config.split is None:
        return dataset
    if isinstance(dataset, StreamingDataset):
        raise ConfigError("a split strategy needs the dataset in memory; train without --stream")
    from neuroreduce.datasets.pieces import apply_split

    return apply_split(dataset, config.split, seed=config.seeds[0])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")




#: The loop under its former name (tests and older code).
_Loop = EnsembleLoop
__all__ = ["EpochReport", "TrainResult", "train"]
