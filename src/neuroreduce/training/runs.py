"""Using a trained run: load a run folder into memory, predict, check data compatibility.

:func:`load_run` rebuilds everything from the run folder's files alone
(:mod:`neuroreduce.training.checkpoint`); :func:`predict` runs the ensemble on inputs in
physical units and also accepts what :func:`~neuroreduce.training.trainer.train` returned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.errors import CheckpointError, ConfigError, DatasetError
from neuroreduce.models.registry import ModelSpec
from neuroreduce.models.rnn import RecurrentSurrogate
from neuroreduce.training.checkpoint import (
    NORMALIZATION_FILE,
    WEIGHTS_FILE,
    HistoryRow,
    IOSpec,
    _read_json,
    read_config,
    read_dataset_hash,
    read_history,
    read_weights,
)
from neuroreduce.training.config import TrainConfig
from neuroreduce.training.normalization import Normalization


@dataclass(frozen=True, eq=False)
class TrainedRun:
    """A trained run folder loaded into memory (see :func:`load_run`).

    Attributes:
        run_dir: The run folder.
        config: The training configuration.
        spec: Model name and sizes.
        io: Channel names and units and the sampling interval (ms) of the training data.
        normalization: Per-channel statistics of the training trials.
        model: The ensemble (best-validation weights of every member), in eval mode.
        history: Per-epoch, per-member losses.
        dataset_hash: Content hash of the training dataset.
        best_epochs: Best-validation epoch of each member (1-based; 0 = none improved).
        best_valid_losses: Validation loss at that epoch, per member (normalised units).
        epochs_done: Epochs trained so far.
        complete: False if training was interrupted and can be resumed.
    """

    run_dir: Path
    config: TrainConfig
    spec: ModelSpec
    io: IOSpec
    normalization: Normalization
    model: Any  # SurrogateEnsemble, ModuleEnsemble or WarmupEnsemble
    history: tuple[HistoryRow, ...]
    dataset_hash: str
    best_epochs: tuple[int, ...]
    best_valid_losses: tuple[float, ...]
    epochs_done: int
    complete: bool

    @property
    def input_names(self) -> tuple[str, ...]:
        return self.io.input_names

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.io.output_names

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.config.seeds

    @property
    def n_members(self) -> int:
        return self.model.n_members

    def member(self, k: int) -> RecurrentSurrogate:
        """Member ``k`` (best-validation weights) as a standalone model in eval mode."""
        return self.model.member(k).eval()


def load_run(run_dir: str | Path) -> TrainedRun:
    """Load a run folder written by :func:`~neuroreduce.training.trainer.train`.

    Raises:
        CheckpointError: if the folder or one of its files is missing, corrupt or inconsistent.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run folder {run_dir} does not exist; check the path")
    config, spec, io_spec = read_config(run_dir)
    normalization = Normalization.from_dict(_read_json(run_dir / NORMALIZATION_FILE))
    if (normalization.n_inputs, normalization.n_outputs) != (
        len(io_spec.input_names),
        len(io_spec.output_names),
    ):
        raise CheckpointError(f"{run_dir / NORMALIZATION_FILE} does not fit the model; retrain")
    states, meta = read_weights(run_dir)
    if meta["n_members"] != config.n_members or meta["seeds"] != config.seeds:
        raise CheckpointError(f"{run_dir / WEIGHTS_FILE} does not match config.json; retrain")
    model = spec.build_ensemble(config.seeds, engine=config.engine)
    model.load_member_state_dicts(states)
    steps = config.warmup_steps(io_spec.dt_ms)
    if steps:  # the rest-fitted initial state the model was trained with
        from neuroreduce.models.warmup import WarmupEnsemble
        from neuroreduce.training.assemble import rest_input

        model = WarmupEnsemble(model, rest_input(io_spec.task, normalization), steps)
    model.eval()
    return TrainedRun(
        run_dir=run_dir,
        config=config,
        spec=spec,
        io=io_spec,
        normalization=normalization,
        model=model,
        history=read_history(run_dir),
        dataset_hash=read_dataset_hash(run_dir),
        best_epochs=meta["best_epochs"],
        best_valid_losses=meta["best_valid_losses"],
        epochs_done=meta["epochs_done"],
        complete=meta["complete"],
    )


def predict(run: Any, inputs: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """Run every member of a trained ensemble on inputs in physical units.

    Args:
        run: A loaded run (:func:`load_run`) or what ``train`` returned (the model in memory).
        inputs: Injected currents, shape ``[trial, time, input]``, in the training units (nA).
        batch_size: Trials per forward pass (bounds memory).

    Returns:
        Predicted outputs, shape ``[member, trial, time, output]``, float32, in the training
        output units (mV).

    Raises:
        ConfigError: if ``inputs`` has the wrong shape or holds NaN/inf.
    """
    if not run.io.task.is_plain:
        raise ConfigError(
            "this model reads typed fields (spike events, several inputs); predict with "
            "neuroreduce.training.predict_fields(run, dataset)"
        )
    x = np.asarray(inputs)
    n_in = run.spec.n_inputs
    if x.ndim != 3 or x.shape[2] != n_in:
        raise ConfigError(
            f"inputs must have shape [trial, time, {n_in}] ({', '.join(run.io.input_names)}); "
            f"got {tuple(x.shape)}"
        )
    if not np.isfinite(x).all():
        raise ConfigError("inputs contain NaN or inf; fix the stimulus")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    xn = torch.from_numpy(run.normalization.normalize_inputs(x))
    out = np.empty((run.model.n_members, x.shape[0], x.shape[1], run.spec.n_outputs), np.float32)
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            y = run.model.forward_shared(xn[start : start + batch_size]).numpy()
            out[:, start : start + batch_size] = run.normalization.denormalize_outputs(y)
    return out


def check_compatible(run: Any, dataset: Dataset) -> None:
    """Raise :class:`DatasetError` unless ``dataset`` has the channels, units and dt of ``run``."""
    io_spec = run.io
    checks = (
        ("input names", io_spec.input_names, tuple(dataset.input_names)),
        ("output names", io_spec.output_names, tuple(dataset.output_names)),
        ("input units", io_spec.input_units, dataset.input_units),
        ("output units", io_spec.output_units, dataset.output_units),
    )
    for what, expected, got in checks:
        if expected != got:
            raise DatasetError(
                f"dataset {what} {got} do not match the model's {expected}; use a dataset "
                "simulated for the same scenario or retrain"
            )
    if not math.isclose(io_spec.dt_ms, float(dataset.dt_ms), rel_tol=1e-9):
        raise DatasetError(
            f"dataset dt {dataset.dt_ms} ms differs from the model's {io_spec.dt_ms} ms; resample "
            "the dataset or retrain on this dt"
        )
