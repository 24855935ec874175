"""Reading an experiment output folder (written by the runner) into plain summaries.

The folder layout (see ``docs/experiments.md``): ``resolved.json``, ``run.json``,
``results.json``, ``cells/<folder>/{cell.json, results.json, extra_results.json, config.json,
provenance.json, history.csv, model.safetensors}``. Only finished cells (with ``cell.json``)
are read. Nothing here imports the runner's classes: the files are the interface.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce.errors import CheckpointError

CELLS_DIR = "cells"
ANALYSIS_DIR = "analysis"


def read_json(path: Path, *, required: bool = True) -> Any:
    """Parse a JSON file; a missing optional file gives ``None``.

    Raises:
        CheckpointError: if a required file is missing, or any file is corrupt.
    """
    if not path.is_file():
        if required:
            raise CheckpointError(
                f"{path} is missing; run the experiment first (neuroreduce experiment run)"
            )
        return None
    from neuroreduce.jsonfiles import read_json_object

    return read_json_object(path, hint="rerun the experiment")


@dataclass(frozen=True)
class Stat:
    """Mean and standard deviation over seeds (ddof 1) and the per-seed values."""

    mean: float
    std: float
    values: tuple[float, ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Stat:
        if not data:
            return cls(float("nan"), float("nan"))
        values = data.get("per_seed", data.get("values", ()))
        return cls(float(data["mean"]), float(data.get("std", 0.0)), tuple(map(float, values)))

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "values": list(self.values)}


@dataclass(frozen=True)
class CellSummary:
    """What the analyses need of one finished cell.

    Attributes:
        key: Cell key ``dataset/model-hidden[/variant]``.
        folder: Cell folder (absolute or relative to the experiment folder).
        dataset: Dataset name.
        model: ``"rnn"``, ``"lstm"``, ``"gru"``.
        hidden: Recurrent units.
        variant: Input variant (``"all"`` = every input).
        inputs: Input channels the cell was trained on.
        outputs: Output channels.
        n_parameters: Our parameter count per member (PyTorch).
        study_fields: The per-cell fields of the experiment's study, by name (e.g.
            ``keras_parameters``: the paper's count for the same architecture).
        dt_ms: Sampling interval of the cell's data (ms).
        splits: split -> metric (``"rmse"``, ``"nrmse"``) -> :class:`Stat` (pooled outputs).
        per_output: split -> output -> metric -> :class:`Stat`.
        extra: extra dataset -> metric -> :class:`Stat` (all its trials).
        extra_per_output: extra dataset -> output -> metric -> :class:`Stat`.
        wall_s: Training and evaluation wall time (s).
        best_epochs: Best-validation epoch per member (1-based).
        stopped: Members (0-based) frozen at their best weights before the last epoch: they
            diverged to NaN/inf (or were early-stopped); see :func:`stopped_members`.
        fields: Typed tasks: field -> ``{"kind", "channels", "splits": {split: {metric:
            stats}}}`` (``results.json``'s ``fields``); empty for a schema-v1 cell.
        extra_fields: Typed tasks: extra dataset -> its ``fields`` (split ``"all"``).
        fold: The split fold the cell trained on (``None``: not one of several folds).
        base_key: The key without ``/fold{i}`` (the key itself for a cell without folds).
    """

    key: str
    folder: Path
    dataset: str
    model: str
    hidden: int
    variant: str = "all"
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    n_parameters: int = 0
    study_fields: Mapping[str, Any] = field(default_factory=dict)
    dt_ms: float = float("nan")
    splits: dict[str, dict[str, Stat]] = field(default_factory=dict)
    per_output: dict[str, dict[str, dict[str, Stat]]] = field(default_factory=dict)
    extra: dict[str, dict[str, Stat]] = field(default_factory=dict)
    extra_per_output: dict[str, dict[str, dict[str, Stat]]] = field(default_factory=dict)
    wall_s: dict[str, float] = field(default_factory=dict)
    best_epochs: tuple[int, ...] = ()
    stopped: tuple[int, ...] = ()
    fields: dict[str, Any] = field(default_factory=dict)
    extra_fields: dict[str, Any] = field(default_factory=dict)
    fold: int | None = None
    base_key: str = ""

    @property
    def typed(self) -> bool:
        """True for a typed task (scored per field), False for dense inputs -> outputs."""
        return bool(self.fields)

    @property
    def label(self) -> str:
        """``"GRU-8"`` (plus ``" no_avb"`` for a variant, ``" fold2"`` for a fold)."""
        base = f"{self.model.upper()}-{self.hidden}"
        base = base if self.variant == "all" else f"{base} {self.variant}"
        return base if self.fold is None else f"{base} fold{self.fold}"

    def score(self, field: str, metric: str, split: str = "test") -> Stat:
        """A typed field's metric on ``split`` (NaN stat if missing)."""
        block = ((self.fields.get(field) or {}).get("splits") or {}).get(split) or {}
        return Stat.from_dict(block.get(metric))

    def error(self, split: str = "test", metric: str = "nrmse") -> Stat:
        """Pooled error of ``split`` (NaN stat if missing)."""
        return self.splits.get(split, {}).get(metric, Stat(float("nan"), float("nan")))


def _metrics(block: dict[str, Any]) -> dict[str, Stat]:
    return {k: Stat.from_dict(v) for k, v in block.items()
            if isinstance(v, dict) and "mean" in v}


def _per_output(block: dict[str, Any]) -> dict[str, dict[str, Stat]]:
    return {name: _metrics(v) for name, v in block.get("per_output", {}).items()}


def stopped_members(cell_dir: Path) -> tuple[int, ...]:
    """Members of a cell's ensemble that stopped training before the last epoch.

    The trainer freezes a member at its best weights when its weights diverge to NaN/inf (or
    when early stopping ends it) and logs no more losses for it: those members have no finite
    row in the last epoch of ``history.csv``. Empty without a history.
    """
    from neuroreduce.training.checkpoint import read_history

    rows = read_history(cell_dir)
    if not rows:
        return ()
    last = max(r.epoch for r in rows)
    alive = {r.member for r in rows if r.epoch == last and np.isfinite(r.train_loss)}
    return tuple(sorted({r.member for r in rows} - alive))


def read_cell(cell_dir: Path, *, study_fields: Sequence[str] = (),
              fold: int | None = None) -> CellSummary:
    """Summarise a finished cell folder (``cell.json`` + ``results.json`` + extras).

    Args:
        cell_dir: The cell folder.
        study_fields: Names of the study's per-cell fields to read from ``cell.json`` (a field
            the record lacks is None).
        fold: The split fold of the cell, if it is one of several (from ``resolved.json``).
    """
    record = read_json(cell_dir / "cell.json")
    from neuroreduce.evaluation.evaluate import nan_for_null

    results = nan_for_null(read_json(cell_dir / "results.json"))
    extra = nan_for_null(read_json(cell_dir / "extra_results.json", required=False) or {})
    config = read_json(cell_dir / "config.json", required=False) or {}
    splits = results.get("splits", {})
    extra_blocks = {n: b.get("splits", {}).get("all", {}) for n, b in extra.items()}
    wall = record.get("wall_s", {})
    return CellSummary(
        key=str(record["key"]),
        folder=cell_dir,
        dataset=str(record["dataset"]),
        model=str(record["model"]),
        hidden=int(record["hidden"]),
        variant=str(record.get("variant") or "all"),
        inputs=tuple(record.get("inputs_used") or config.get("io", {}).get("input_names", ())),
        outputs=tuple(record.get("outputs") or results.get("output_names", ())),
        n_parameters=int(record.get("n_parameters", 0)),
        study_fields={name: record.get(name) for name in study_fields},
        dt_ms=float(config.get("io", {}).get("dt_ms", float("nan"))),
        splits={s: _metrics(b) for s, b in splits.items()},
        per_output={s: _per_output(b) for s, b in splits.items()},
        extra={n: _metrics(b) for n, b in extra_blocks.items()},
        extra_per_output={n: _per_output(b) for n, b in extra_blocks.items()},
        wall_s={k: float(v) for k, v in wall.items()} if isinstance(wall, dict) else {},
        best_epochs=tuple(int(e) for e in record.get("best_epochs", ())),
        stopped=stopped_members(cell_dir),
        fields=results.get("fields") or {},
        extra_fields={n: b.get("fields") or {} for n, b in extra.items() if b.get("fields")},
        fold=fold,
        base_key=_base_key(str(record["key"]), fold),
    )


def _base_key(key: str, fold: int | None) -> str:
    suffix = f"/fold{fold}"
    return key[: -len(suffix)] if fold is not None and key.endswith(suffix) else key


def read_cells(exp_dir: Path, *, study_fields: Sequence[str] = ()) -> list[CellSummary]:
    """Every finished cell of an experiment folder, in the order of ``resolved.json`` (if it
    lists cells), else sorted by folder name; ``study_fields`` as in :func:`read_cell`."""
    root = Path(exp_dir) / CELLS_DIR
    if not root.is_dir():
        return []
    found = {p.parent.name: p.parent for p in root.glob("*/cell.json")}
    resolved = read_json(Path(exp_dir) / "resolved.json", required=False) or {}
    listed = [c for c in resolved.get("cells", []) if isinstance(c, dict)]
    order = [c.get("folder") for c in listed]
    folds = {c.get("folder"): c.get("fold") for c in listed}
    names = [n for n in order if n in found] + sorted(n for n in found if n not in order)
    from neuroreduce.jsonfiles import content_of

    cells = []
    for n in names:  # a JSON value of the wrong type: one line naming the cell folder
        with content_of(found[n], hint="delete the cell folder and rerun the experiment"):
            cells.append(read_cell(found[n], study_fields=study_fields, fold=folds.get(n)))
    return cells


def dataset_behaviours(resolved: dict[str, Any],
                       dataset: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The behaviours (name, outputs) of ``dataset``'s scenario, from ``resolved.json``.

    Empty for a scenario of one behaviour or one that is not registered in this process.
    """
    from neuroreduce.errors import ConfigError
    from neuroreduce.scenarios import get_scenario

    table = ((resolved.get("datasets") or {}).get(dataset) or {}).get("table") or {}
    try:
        return get_scenario(str(table.get("scenario"))).behaviours
    except ConfigError:
        return ()


def dataset_path(exp_dir: Path, cell: CellSummary) -> Path:
    """The HDF5 file a cell was trained on (from its ``provenance.json`` or ``resolved.json``).

    Raises:
        CheckpointError: if no recorded path exists any more.
    """
    candidates: list[Any] = []
    prov = read_json(cell.folder / "provenance.json", required=False) or {}
    candidates.append(prov.get("dataset_path"))
    resolved = read_json(Path(exp_dir) / "resolved.json", required=False) or {}
    for key in ("dataset_files", "dataset_paths"):
        block = resolved.get(key) or {}
        entry = block.get(cell.dataset) if isinstance(block, dict) else None
        candidates.append(entry.get("path") if isinstance(entry, dict) else entry)
    info = (resolved.get("datasets") or {}).get(cell.dataset)
    if isinstance(info, dict):
        candidates += [info.get("file"), info.get("path")]
    for c in candidates:
        if c:
            p = Path(c)
            p = p if p.is_absolute() else Path(exp_dir) / p
            if p.is_file():
                return p
    raise CheckpointError(
        f"cannot find the dataset file of cell {cell.key} (looked in provenance.json and "
        "resolved.json); rerun the experiment to rebuild it"
    )


def load_cell_data(exp_dir: Path, cell: CellSummary) -> Any:
    """The cell's dataset restricted to the cell's input channels (same outputs and split)."""
    from dataclasses import replace

    from neuroreduce.datasets.io import load_dataset
    from neuroreduce.errors import DatasetError

    ds = load_dataset(dataset_path(exp_dir, cell))
    if not cell.inputs or tuple(cell.inputs) == tuple(ds.input_names):
        return ds
    missing = [n for n in cell.inputs if n not in ds.input_names]
    if missing:
        raise DatasetError(f"dataset of cell {cell.key} lacks inputs {missing}; rerun it")
    idx = [ds.input_names.index(n) for n in cell.inputs]
    return replace(ds, inputs=np.ascontiguousarray(ds.inputs[:, :, idx]),
                   input_names=tuple(cell.inputs))
