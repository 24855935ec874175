"""Apply a split strategy to a dataset: its pieces become the trials of a new dataset.

Whole-trial strategies (``stratified``, ``leave_groups_out``) only set the split of each trial.
Strategies that cut trials in time (``time_segment``, ``window_folds``) give pieces of
different lengths; each piece becomes a trial, padded at its end to the longest piece: inputs
with 0, continuous and binary targets with NaN (missing, so ignored by objectives and
metrics), labels with their ``ignore_label``, masks with False; spike events are cut to the
piece and shifted to start at 0. A group field ``source_trial`` records which trial each piece
came from, so repetitions and individuals stay known.

A piece with context (``time_segment`` with ``context = "preceding"``) starts at its
``context_start``: the context samples keep their inputs (dense and events) while its targets
are missing (NaN), its labels ignored and its masks False, so only ``[start, stop)`` is
trained on or scored. Its ``stimulus_params`` record ``context_start`` beside ``start`` and
``stop`` (``start - context_start`` context samples lead the trial).
"""

from __future__ import annotations

import json

import numpy as np

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.fields import EventTrains, Field, FieldSpec
from neuroreduce.datasets.split_strategies import (
    Piece,
    SplitContext,
    SplitPlan,
    SplitSpec,
    plan,
)
from neuroreduce.errors import ConfigError

SOURCE_TRIAL = "source_trial"


def split_context(dataset: Dataset, seed: int = 0) -> SplitContext:
    """The :class:`SplitContext` of ``dataset`` (its groups, families, size)."""
    return SplitContext(
        n_trials=dataset.n_trials,
        n_time=dataset.n_time,
        dt_ms=dataset.dt_ms,
        families=tuple(dataset.families),
        groups=dataset.groups(),
        seed=seed,
    )


def apply_split(dataset: Dataset, spec: SplitSpec, *, seed: int = 0) -> Dataset:
    """``dataset`` split by ``spec`` (fold ``spec.fold``): see the module docstring.

    Raises:
        ConfigError: on a strategy option that does not fit the data (unknown group, ...), or
            a label field without an ``ignore_label`` that pieces of unequal length would need.
    """
    p = plan(spec, split_context(dataset, seed))
    whole = all(pc.start == 0 and pc.stop == dataset.n_time for pc in p.pieces)
    if whole and sorted(pc.trial for pc in p.pieces) == list(range(dataset.n_trials)):
        split = np.empty(dataset.n_trials, np.int8)
        for pc in p.pieces:
            split[pc.trial] = pc.split
        from dataclasses import replace

        return replace(dataset, split=split)
    return _cut(dataset, p)


def _pad(values: np.ndarray, n_time: int, fill: object) -> np.ndarray:
    out = np.full((n_time, *values.shape[1:]), fill, dtype=values.dtype)
    out[: values.shape[0]] = values
    return out


def _shift_events(
    t: np.ndarray, dt: float, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray]:
    """Event times (ms) of samples ``[start, stop)``, shifted to start at 0, and which were kept.

    Events are chosen by their sample ``floor(t / dt)`` (as :meth:`EventTrains.dense` bins
    them), and each shifted time is nudged by a few ulps where float rounding of ``t - start dt``
    would move it to a neighbouring sample, so a piece's dense counts equal the source's.
    """
    k = np.floor(t / dt).astype(np.int64)
    keep = (k >= start) & (k < stop)
    want = k[keep] - start
    s = np.maximum(t[keep] - start * dt, 0.0)
    for _ in range(8):
        got = np.floor(s / dt).astype(np.int64)
        if (got == want).all():
            return s, keep
        s = np.where(got < want, np.nextafter(s, np.inf), s)
        s = np.where(got > want, np.nextafter(s, -np.inf), s)
    got = np.floor(s / dt).astype(np.int64)
    return np.where(got == want, s, (want + 0.5) * dt), keep  # last resort: the sample's middle


def _first(pc: Piece) -> int:
    """First sample of a piece's trial: its context start, else its start."""
    return pc.start if pc.context_start is None else pc.context_start


def _cut(dataset: Dataset, p: SplitPlan) -> Dataset:
    pieces = sorted(p.pieces, key=lambda pc: (pc.split, pc.trial, pc.start))
    n_time = max(pc.stop - _first(pc) for pc in pieces)
    dt = dataset.dt_ms

    def dense(arr: np.ndarray, fill: object, *, scored: bool = False) -> np.ndarray:
        """Each piece's samples (with its context), padded; ``scored``: context -> fill."""
        out = np.stack([_pad(arr[pc.trial, _first(pc) : pc.stop], n_time, fill)
                        for pc in pieces])
        if scored:
            for row, pc in enumerate(pieces):
                out[row, : pc.start - _first(pc)] = fill
        return out

    inputs = {"inputs", *(f.name for f in dataset.fields if f.spec.role == "input")}
    fields = []
    for f in dataset.fields:
        s = f.spec
        v = f.values
        if isinstance(v, EventTrains):
            times, chans = [], []
            for pc in pieces:
                t, c = v.trial(pc.trial)
                shifted, keep = _shift_events(t, dt, _first(pc), pc.stop)
                times.append(shifted)
                chans.append(c[keep])
            events = EventTrains.from_lists(times, chans, v.n_channels)
            fields.append(Field(s, events, f.availability))
        elif s.role == "group":
            fields.append(Field(s, np.asarray(v)[[pc.trial for pc in pieces]], f.availability))
        else:
            arr = np.asarray(v)
            if s.role == "mask":
                fill: object = False
            elif s.kind == "categorical":
                if s.ignore_label is None and any(pc.stop - pc.start < n_time for pc in pieces):
                    raise ConfigError(
                        f"label field {s.name!r} needs an ignore_label to pad pieces of unequal "
                        "length or mark context; declare one (e.g. -1)"
                    )
                fill = s.ignore_label if s.ignore_label is not None else 0
            elif s.role == "input":
                fill = 0.0
            else:
                fill = np.nan
            scored = s.role != "input" and not (s.role == "mask" and s.of in inputs)
            fields.append(Field(s, dense(arr, fill, scored=scored), f.availability))
    source = FieldSpec(
        SOURCE_TRIAL, "group", "categorical",
        classes=tuple(str(i) for i in range(dataset.n_trials)),
    )
    if not dataset.has_field(SOURCE_TRIAL):
        fields.append(Field(source, np.array([pc.trial for pc in pieces], np.int32)))
    return Dataset(
        inputs=dense(dataset.inputs, 0.0),
        outputs=dense(dataset.outputs, np.nan, scored=True),
        dt_ms=dt,
        input_names=dataset.input_names,
        output_names=dataset.output_names,
        input_units=dataset.input_units,
        output_units=dataset.output_units,
        families=tuple(dataset.families[pc.trial] for pc in pieces),
        stimulus_params=tuple(
            json.dumps({"source_trial": pc.trial, "start": pc.start, "stop": pc.stop}
                       | ({} if pc.context_start is None else {"context_start": pc.context_start}))
            for pc in pieces
        ),
        split=np.array([pc.split for pc in pieces], np.int8),
        provenance={**dict(dataset.provenance), "split_plan": p.description},
        fields=tuple(fields),
    )
