"""A dataset's fields in plain rows (``neuroreduce fields FILE``): what each is and holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuroreduce.datasets.dataset import SPLIT_NAMES, Dataset
from neuroreduce.datasets.fields import EventTrains, FieldSpec

#: Channel and class names listed in full up to this many, else the first few and a count.
MAX_NAMES = 6


@dataclass(frozen=True)
class FieldRow:
    """One field of a dataset, as text cells."""

    name: str
    role: str
    kind: str
    channels: str
    units: str
    classes: str
    groups: str
    shape: str
    content: str


@dataclass(frozen=True)
class DatasetSummary:
    """A dataset's size and fields."""

    path: str
    n_trials: int
    n_time: int
    dt_ms: float
    splits: str
    content_hash: str
    fields: tuple[FieldRow, ...]


def _names(names: Sequence[str]) -> str:
    if len(names) <= MAX_NAMES:
        return ", ".join(names)
    return f"{len(names)}: {', '.join(names[:MAX_NAMES - 2])}, ..., {names[-1]}"


def _pct(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.2g} %" if whole else "0 %"


def _events(v: EventTrains, dt_ms: float, n_time: int) -> str:
    n = v.times_ms.size
    seconds = v.n_trials * n_time * dt_ms / 1000.0
    rate = n / max(v.n_channels, 1) / seconds if seconds else 0.0
    per_trial = np.diff(v.offsets)
    span = f"{per_trial.min()}-{per_trial.max()}" if per_trial.size else "0"
    return (f"{n} events ({n / max(v.n_trials, 1):.1f} per trial, {span}); "
            f"{rate:.3g} Hz per channel")


def _content(spec: FieldSpec, values: object, ds: Dataset) -> str:
    if isinstance(values, EventTrains):
        return _events(values, ds.dt_ms, ds.n_time)
    arr = np.asarray(values)
    if spec.role == "group":
        counts = np.bincount(arr, minlength=len(spec.classes))
        return "trials per member: " + _names([f"{c} {k}" for c, k in zip(spec.classes, counts,
                                                                            strict=True)])
    if spec.kind == "categorical":
        ignored = int((arr == spec.ignore_label).sum()) if spec.ignore_label is not None else 0
        valid = arr[(arr >= 0) & (arr < len(spec.classes))]
        counts = np.bincount(valid.ravel(), minlength=len(spec.classes))
        parts = [f"{c} {_pct(k, arr.size)}" for c, k in zip(spec.classes, counts, strict=True)]
        if spec.ignore_label is not None:
            parts.append(f"ignored ({spec.ignore_label}) {_pct(ignored, arr.size)}")
        return "steps: " + ", ".join(parts)
    if spec.role == "mask":
        return f"known: {_pct(arr.sum(), arr.size)}"
    known = np.isfinite(arr)
    text = f"missing {_pct((~known).sum(), arr.size)}" if not known.all() else "complete"
    if spec.kind == "binary":
        ones = int(np.nansum(arr))
        text = f"{ones} ones ({_pct(ones, known.sum())} of known samples); {text}"
    return text


def _groups(spec: FieldSpec, availability: np.ndarray | None) -> str:
    if spec.availability_group is None or availability is None:
        return ""
    per = np.asarray(availability, bool).sum(axis=1)
    lo, hi = int(per.min()), int(per.max())
    n = f"{lo}" if lo == hi else f"{lo}-{hi}"
    return f"{spec.availability_group}: {n} of {spec.n_channels} channels per member"


def _shape(spec: FieldSpec, values: object) -> str:
    if isinstance(values, EventTrains):
        return f"events [{values.n_trials} trials, {values.times_ms.size} events]"
    return str(tuple(np.asarray(values).shape))


def summarize(dataset: Dataset, path: str | Path = "") -> DatasetSummary:
    """Rows of every field of ``dataset`` (the dense ``inputs``/``outputs`` first)."""
    values = {"inputs": dataset.inputs, "outputs": dataset.outputs}
    availability: dict[str, np.ndarray | None] = {}
    for f in dataset.fields:
        values[f.name], availability[f.name] = f.values, f.availability
    rows = tuple(
        FieldRow(s.name, s.role + (f" of {s.of}" if s.of else ""), s.kind, _names(s.channels),
                 s.units, _names(s.classes), _groups(s, availability.get(s.name)),
                 _shape(s, values[s.name]), _content(s, values[s.name], dataset))
        for s in dataset.field_specs
    )
    if dataset.split is None:
        splits = "not assigned"
    else:
        splits = ", ".join(f"{s} {int((dataset.split == k).sum())}"
                           for k, s in enumerate(SPLIT_NAMES))
    return DatasetSummary(str(path), dataset.n_trials, dataset.n_time, float(dataset.dt_ms),
                          splits, dataset.content_hash(), rows)


def summarize_file(path: str | Path) -> DatasetSummary:
    """:func:`summarize` of a dataset file (``DatasetError``, one line, if missing/corrupt)."""
    from neuroreduce.datasets.io import load_dataset

    return summarize(load_dataset(path), path)
