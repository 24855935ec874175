"""Run folders: what a training run writes, how it resumes, and how a trained run is loaded.

A run folder (``train(..., out_dir)``) holds, all written atomically::

    config.json          TrainConfig, model spec (name and sizes), channel names/units, dt
    normalization.json   per-channel mean/std fitted on the training trials
    model.safetensors    best-validation weights of every member ("member{k}.<tensor>"),
                         metadata: seeds, best epochs and losses, epochs done, complete flag
    history.csv          epoch, member, seed, train_loss, valid_loss (normalised units)
    provenance.json      dataset path and content hash, package versions, git hash, times
    checkpoint/last.pt   resumable state: weights, optimiser, RNG streams, best weights, counters

:func:`neuroreduce.training.runs.load_run` rebuilds everything from these files alone.
"""

from __future__ import annotations

import csv
import io
import json
import math
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_bytes

import neuroreduce
from neuroreduce._io import write_bytes_atomic, write_json_atomic, write_text_atomic
from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.fields import FieldSpec
from neuroreduce.errors import CheckpointError, NeuroreduceError
from neuroreduce.models.registry import ModelSpec
from neuroreduce.training.config import RESUMABLE_FIELDS, TrainConfig
from neuroreduce.training.normalization import Normalization
from neuroreduce.training.task import TaskLayout

CONFIG_FILE = "config.json"
NORMALIZATION_FILE = "normalization.json"
WEIGHTS_FILE = "model.safetensors"
HISTORY_FILE = "history.csv"
PROVENANCE_FILE = "provenance.json"
STATE_FILE = "checkpoint/last.pt"
RUN_FORMAT = "neuroreduce-run"
RUN_FORMAT_VERSION = 1
_HISTORY_COLUMNS = ("epoch", "member", "seed", "train_loss", "valid_loss")


@dataclass(frozen=True)
class IOSpec:
    """The data a model was trained on: channel names and units and the sampling interval.

    Attributes:
        input_names: Input channel names, in model order.
        output_names: Output channel names, in model order.
        input_units: Unit of the inputs (e.g. nA).
        output_units: Unit of the outputs (e.g. mV).
        dt_ms: Sampling interval (ms) of the training sequences.
        layout: Which model inputs/outputs are which typed fields; ``None`` for the schema-v1
            task (dense ``inputs`` -> ``outputs``), whose ``config.json`` is unchanged.
    """

    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    input_units: str
    output_units: str
    dt_ms: float
    layout: TaskLayout | None = None

    @classmethod
    def from_dataset(cls, dataset: Any, layout: TaskLayout | None = None) -> IOSpec:
        return cls(
            tuple(dataset.input_names),
            tuple(dataset.output_names),
            dataset.input_units,
            dataset.output_units,
            float(dataset.dt_ms),
            None if layout is None or (layout.is_plain and not dataset.outputs_incomplete)
            else layout,
        )

    @property
    def task(self) -> TaskLayout:
        """The layout (the plain ``inputs`` -> ``outputs`` one when none is stored)."""
        if self.layout is not None:
            return self.layout
        specs = [FieldSpec("outputs", "target", "continuous", self.output_names)]
        if self.input_names:
            specs.insert(0, FieldSpec("inputs", "input", "continuous", self.input_names))
        return TaskLayout.from_specs(specs)

    def to_dict(self) -> dict[str, Any]:
        out = {
            **asdict(self),
            "input_names": list(self.input_names),
            "output_names": list(self.output_names),
        }
        del out["layout"]
        if self.layout is not None:
            out["layout"] = self.layout.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IOSpec:
        return cls(
            tuple(data["input_names"]),
            tuple(data["output_names"]),
            str(data["input_units"]),
            str(data["output_units"]),
            float(data["dt_ms"]),
            TaskLayout.from_dict(data["layout"]) if "layout" in data else None,
        )


@dataclass(frozen=True)
class HistoryRow:
    """Losses of one member after one epoch (normalised units, the objective's total).

    ``terms`` holds each objective term's validation loss (field name, value) when the
    objective has more than one term (written as ``term_valid_<field>`` columns).
    """

    epoch: int
    member: int
    seed: int
    train_loss: float
    valid_loss: float
    terms: tuple[tuple[str, float], ...] = ()


# ---------------------------------------------------------------------------------- writing
def write_config(run_dir: Path, config: TrainConfig, spec: ModelSpec, io_spec: IOSpec) -> None:
    """Write ``config.json``: training config, effective learning rate, model and data spec."""
    write_json_atomic(
        run_dir / CONFIG_FILE,
        {
            "format": RUN_FORMAT,
            "format_version": RUN_FORMAT_VERSION,
            "train": config.to_dict(),
            "effective_learning_rate": config.effective_learning_rate,
            "model": spec.to_dict(),
            "io": io_spec.to_dict(),
        },
    )


def write_normalization(run_dir: Path, normalization: Normalization) -> None:
    write_json_atomic(run_dir / NORMALIZATION_FILE, normalization.to_dict())


def write_history(run_dir: Path, rows: list[HistoryRow]) -> None:
    """Write ``history.csv`` (losses with 9 significant digits)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    term_names = [n for n, _ in rows[0].terms] if rows else []
    writer.writerow([*_HISTORY_COLUMNS, *(f"term_valid_{n}" for n in term_names)])
    for r in rows:
        writer.writerow([r.epoch, r.member, r.seed, f"{r.train_loss:.9g}", f"{r.valid_loss:.9g}",
                         *(f"{v:.9g}" for _, v in r.terms)])
    write_text_atomic(run_dir / HISTORY_FILE, buf.getvalue())


def write_weights(
    run_dir: Path,
    member_states: list[dict[str, torch.Tensor]],
    *,
    seeds: tuple[int, ...],
    best_epochs: list[int],
    best_losses: list[float],
    epochs_done: int,
    complete: bool,
) -> None:
    """Write ``model.safetensors``: tensor ``member{k}.<name>`` for each member's lone model."""
    tensors = {
        f"member{k}.{name}": t.detach().contiguous().clone()
        for k, state in enumerate(member_states)
        for name, t in state.items()
    }
    metadata = {
        "format": "neuroreduce-ensemble",
        "n_members": str(len(member_states)),
        "seeds": json.dumps(list(seeds)),
        "best_epochs": json.dumps(best_epochs),
        "best_valid_losses": json.dumps([_json_float(v) for v in best_losses]),
        "epochs_done": str(epochs_done),
        "complete": json.dumps(complete),
    }
    # serialised in memory, written by Python: a full disk is a one-line OutputError
    write_bytes_atomic(run_dir / WEIGHTS_FILE, save_bytes(tensors, metadata=metadata))


def _json_float(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def _git_hash() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(neuroreduce.__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def make_provenance(
    dataset: Dataset, *, dataset_hash: str, dataset_path: str | Path | None
) -> dict[str, Any]:
    """Provenance of a training run: data fingerprint, versions, git hash, start time."""
    return {
        "dataset_path": None if dataset_path is None else str(Path(dataset_path).resolve()),
        "dataset_hash": dataset_hash,
        "dataset_provenance": json.loads(json.dumps(dict(dataset.provenance), default=str)),
        "neuroreduce_version": neuroreduce.__version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python_version": sys.version.split()[0],
        "platform": platform.platform(),
        "git_hash": _git_hash(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_provenance(run_dir: Path, provenance: dict[str, Any]) -> None:
    write_json_atomic(run_dir / PROVENANCE_FILE, provenance)


def read_provenance(run_dir: Path) -> dict[str, Any]:
    """``provenance.json`` of a run folder as a dict."""
    data = _read_json(Path(run_dir) / PROVENANCE_FILE)
    if not isinstance(data, dict):
        raise CheckpointError(f"{Path(run_dir) / PROVENANCE_FILE} is corrupt; retrain")
    return data


def save_state(run_dir: Path, state: dict[str, Any]) -> None:
    """Atomically write the resumable training state to ``checkpoint/last.pt``."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes_atomic(run_dir / STATE_FILE, buffer.getbuffer())


# ---------------------------------------------------------------------------------- reading
def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(
            f"run folder {path.parent} has no {path.name}; is it a folder written by train (-o)?"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CheckpointError(f"{path} is corrupt ({type(exc).__name__}); retrain") from None
    if not isinstance(data, dict):  # every JSON file of a run folder holds an object
        raise CheckpointError(f"{path} is corrupt (not a JSON object); retrain")
    return data


def read_config(run_dir: Path) -> tuple[TrainConfig, ModelSpec, IOSpec]:
    """Read ``config.json`` of a run folder.

    Raises:
        CheckpointError: if it is missing, corrupt or of an unknown format.
    """
    data = _read_json(Path(run_dir) / CONFIG_FILE)
    if not isinstance(data, dict) or data.get("format") != RUN_FORMAT:
        raise CheckpointError(f"{Path(run_dir) / CONFIG_FILE} is not a neuroreduce run config")
    if data.get("format_version") != RUN_FORMAT_VERSION:
        raise CheckpointError(
            f"{run_dir} uses run format {data.get('format_version')!r}; this version reads "
            f"{RUN_FORMAT_VERSION}; retrain or use a matching neuroreduce"
        )
    try:
        return (
            TrainConfig.from_dict(data["train"]),
            ModelSpec.from_dict(data["model"]),
            IOSpec.from_dict(data["io"]),
        )
    except (KeyError, TypeError, ValueError, NeuroreduceError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{Path(run_dir) / CONFIG_FILE} is invalid: {msg}") from None


def read_dataset_hash(run_dir: Path) -> str:
    """The dataset content hash recorded in ``provenance.json``."""
    data = _read_json(Path(run_dir) / PROVENANCE_FILE)
    if not isinstance(data, dict) or not isinstance(data.get("dataset_hash"), str):
        raise CheckpointError(f"{Path(run_dir) / PROVENANCE_FILE} has no dataset_hash; retrain")
    return data["dataset_hash"]


def read_history(run_dir: Path) -> tuple[HistoryRow, ...]:
    """Rows of ``history.csv`` (empty if the file does not exist yet)."""
    path = Path(run_dir) / HISTORY_FILE
    if not path.is_file():
        return ()
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            return tuple(
                HistoryRow(
                    int(r["epoch"]),
                    int(r["member"]),
                    int(r["seed"]),
                    float(r["train_loss"]),
                    float(r["valid_loss"]),
                    tuple(
                        (k.removeprefix("term_valid_"), float(v))
                        for k, v in r.items()
                        if k.startswith("term_valid_")
                    ),
                )
                for r in csv.DictReader(fh)
            )
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} is corrupt ({type(exc).__name__}); retrain") from None


def read_weights(run_dir: Path) -> tuple[list[dict[str, torch.Tensor]], dict[str, Any]]:
    """Member state dicts and parsed metadata of ``model.safetensors``."""
    path = Path(run_dir) / WEIGHTS_FILE
    if not path.is_file():
        raise CheckpointError(f"run folder {run_dir} has no {WEIGHTS_FILE}; train it first")
    try:
        with safe_open(str(path), framework="pt") as fh:
            raw = fh.metadata() or {}
            tensors = {name: fh.get_tensor(name) for name in fh.keys()}  # noqa: SIM118
        meta = {
            "n_members": int(raw["n_members"]),
            "seeds": tuple(json.loads(raw["seeds"])),
            "best_epochs": tuple(int(v) for v in json.loads(raw["best_epochs"])),
            "best_valid_losses": tuple(
                math.inf if v is None else float(v) for v in json.loads(raw["best_valid_losses"])
            ),
            "epochs_done": int(raw["epochs_done"]),
            "complete": bool(json.loads(raw["complete"])),
        }
    except (SafetensorError, OSError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} is corrupt ({type(exc).__name__}); retrain") from None
    states: list[dict[str, torch.Tensor]] = [{} for _ in range(meta["n_members"])]
    for name, t in tensors.items():
        prefix, _, rest = name.partition(".")
        k = int(prefix[6:]) if prefix.startswith("member") and prefix[6:].isdigit() else -1
        if not 0 <= k < meta["n_members"] or not rest:
            raise CheckpointError(f"{path} holds an unexpected tensor {name!r}; retrain")
        states[k][rest] = t
    return states, meta


def load_state(run_dir: Path) -> dict[str, Any] | None:
    """The resumable state in ``checkpoint/last.pt``, or ``None`` if there is none."""
    path = Path(run_dir) / STATE_FILE
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a corrupt file
        raise CheckpointError(
            f"{path} is corrupt ({type(exc).__name__}); delete it to restart the run"
        ) from None
    if not isinstance(state, dict) or state.get("format") != "neuroreduce-train-state":
        raise CheckpointError(f"{path} is not a neuroreduce training state; delete it")
    return state


def check_same_run(
    run_dir: Path, config: TrainConfig, spec: ModelSpec, io_spec: IOSpec, dataset_hash: str
) -> None:
    """Raise :class:`CheckpointError` unless ``run_dir`` was started with the same setup.

    Only ``epochs``, ``checkpoint_every`` and ``threads`` may differ (see
    :data:`~neuroreduce.training.config.RESUMABLE_FIELDS`).
    """
    old_config, old_spec, old_io = read_config(run_dir)
    fix = "use a new -o folder or delete the old one"
    diff = config.differences(old_config, ignore=RESUMABLE_FIELDS)
    if diff:
        raise CheckpointError(
            f"{run_dir} holds a run with a different config ({', '.join(diff)}); {fix}"
        )
    if old_spec != spec or old_io != io_spec:
        raise CheckpointError(f"{run_dir} holds a run on data of another shape or names; {fix}")
    if read_dataset_hash(run_dir) != dataset_hash:
        raise CheckpointError(f"{run_dir} holds a run trained on a different dataset; {fix}")


