"""Typed, named dataset fields: what each array of a dataset *is*.

A dataset holds two dense float arrays that every task has (``inputs`` and ``outputs`` of
:class:`~neuroreduce.datasets.dataset.Dataset`, possibly with zero channels) and any number of
further typed fields. Each field has a **role** and a **kind**:

=========  ==============================================  ===================================
role       meaning                                         kinds allowed
=========  ==============================================  ===================================
input      fed to the model                                continuous, binary, events
target     predicted by the model, scored by regression    continuous, binary
label      per-time-step classes predicted by the model    categorical
mask       True where the named field (``of``) is known    binary
group      one id per trial (individual, cell, repetition) categorical
=========  ==============================================  ===================================

Value layouts (``trial`` = number of trials, ``time`` = samples at the dataset's ``dt_ms``):

* continuous / binary: float32 ``[trial, time, channel]`` (binary values 0/1; NaN in a
  continuous target marks a missing value, ignored by objectives and metrics);
* events: :class:`EventTrains`, spike times (ms) and channel per trial, made dense per minibatch
  (so 1,278 synaptic inputs of thousands of 6 s trials stay small on disk and in memory);
* categorical label: int16 ``[trial, time, channel]``, values ``0..len(classes)-1`` or
  ``ignore_label`` (e.g. an "unknown" behaviour);
* mask: bool ``[trial, time, channel of the field it masks]``;
* group: int32 ``[trial]`` indexing ``classes`` (e.g. worm names).

A target or input field may also carry per-group channel availability: a bool matrix
``[n groups, channel]`` saying which channels were recorded in which group (each worm has its own
subset of identified neurons); unavailable channels are masked for every trial of that group
(a target's values there are set to NaN, missing, so they never reach statistics or losses).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuroreduce.errors import DatasetError

ROLES: dict[str, tuple[str, ...]] = {
    "input": ("continuous", "binary", "events"),
    "target": ("continuous", "binary"),
    "label": ("categorical",),
    "mask": ("binary",),
    "group": ("categorical",),
}
KINDS: tuple[str, ...] = ("continuous", "binary", "events", "categorical")
#: Names of the two dense fields every dataset has.
RESERVED_NAMES: tuple[str, ...] = ("inputs", "outputs")
_INT16_MIN, _INT16_MAX = int(np.iinfo(np.int16).min), int(np.iinfo(np.int16).max)


@dataclass(frozen=True)
class FieldSpec:
    """What a field is (its values live next to it in :class:`Field`).

    Attributes:
        name: Unique field name (letters, digits, ``_``, ``-``, ``.``).
        role: ``input``, ``target``, ``label``, ``mask`` or ``group`` (see the module table).
        kind: ``continuous``, ``binary``, ``events`` or ``categorical``.
        channels: One name per channel (a group field has none).
        units: Physical unit (e.g. ``"mV"``, ``"spikes"``); empty if dimensionless.
        classes: Class names of a categorical field (label classes, or group members).
        ignore_label: Label value ignored by losses and metrics (e.g. -1 = "unknown").
        of: For a mask: the name of the field it masks.
        availability_group: Name of the group field whose members have their own channel
            subsets (see :attr:`Field.availability`); ``None`` if every channel is always there.
    """

    name: str
    role: str
    kind: str
    channels: tuple[str, ...] = ()
    units: str = ""
    classes: tuple[str, ...] = ()
    ignore_label: int | None = None
    of: str | None = None
    availability_group: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(str(c) for c in self.channels))
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        name = self.name
        if not name or name in (".", "..") or not all(c.isalnum() or c in "_-." for c in name):
            raise DatasetError(
                f"field name {name!r} must be letters, digits, '_', '-' or '.' (not only dots)"
            )
        if self.role not in ROLES:
            raise DatasetError(
                f"field {name!r} has unknown role {self.role!r}; use one of {', '.join(ROLES)}"
            )
        if self.kind not in ROLES[self.role]:
            raise DatasetError(
                f"field {name!r}: role {self.role!r} takes kind "
                f"{' or '.join(ROLES[self.role])}, not {self.kind!r}"
            )
        if self.role == "group":
            if self.channels:
                raise DatasetError(f"group field {name!r} has no channels; give classes instead")
            if not self.classes:
                raise DatasetError(f"group field {name!r} needs classes (the group members' names)")
        elif not self.channels:
            raise DatasetError(f"field {name!r} needs at least one channel name")
        if self.role == "label" and len(self.classes) < 2:
            raise DatasetError(f"label field {name!r} needs at least two class names")
        if self.ignore_label is not None and self.role != "label":
            raise DatasetError(f"field {name!r}: only a label field has an ignore_label")
        ig = self.ignore_label
        if ig is not None and (
            isinstance(ig, bool) or not isinstance(ig, int | np.integer)
            or not _INT16_MIN <= ig <= _INT16_MAX
        ):
            raise DatasetError(
                f"label field {name!r}: ignore_label must be an integer in {_INT16_MIN}.."
                f"{_INT16_MAX} (labels are stored as int16), got {ig!r}"
            )
        if self.ignore_label is not None and 0 <= self.ignore_label < len(self.classes):
            raise DatasetError(
                f"label field {name!r}: ignore_label {self.ignore_label} is a class index; use a "
                "negative value such as -1"
            )
        if (self.role == "mask") != (self.of is not None):
            raise DatasetError(f"field {name!r}: a mask names the field it masks with 'of'")
        if self.availability_group is not None and self.role not in ("input", "target", "label"):
            raise DatasetError(
                f"field {name!r}: only input, target and label fields have an availability_group"
            )

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    def to_dict(self) -> dict[str, object]:
        """JSON-able form (also stored as HDF5 attributes)."""
        return {
            "name": self.name,
            "role": self.role,
            "kind": self.kind,
            "channels": list(self.channels),
            "units": self.units,
            "classes": list(self.classes),
            "ignore_label": self.ignore_label,
            "of": self.of,
            "availability_group": self.availability_group,
        }


@dataclass(frozen=True, eq=False)
class EventTrains:
    """Spike events of many trials, stored sparsely.

    Trial ``i``'s events are ``times_ms[offsets[i]:offsets[i+1]]`` (ms from trial start,
    sorted) on channels ``channels[offsets[i]:offsets[i+1]]`` (0-based).

    Attributes:
        times_ms: float64 ``[event]``.
        channels: int32 ``[event]``.
        offsets: int64 ``[trial + 1]``, starting at 0, non-decreasing, ending at ``event``.
        n_channels: Number of channels.
    """

    times_ms: np.ndarray
    channels: np.ndarray
    offsets: np.ndarray
    n_channels: int

    def __post_init__(self) -> None:
        t = np.ascontiguousarray(self.times_ms, dtype=np.float64)
        raw = np.asarray(self.channels)
        if raw.size and not np.issubdtype(raw.dtype, np.integer) and not (
            np.issubdtype(raw.dtype, np.floating) and (raw == np.round(raw)).all()
        ):
            raise DatasetError(f"event channels must be integer indices, got dtype {raw.dtype}")
        c = np.ascontiguousarray(raw, dtype=np.int32)
        o = np.ascontiguousarray(self.offsets, dtype=np.int64)
        object.__setattr__(self, "times_ms", t)
        object.__setattr__(self, "channels", c)
        object.__setattr__(self, "offsets", o)
        if t.ndim != 1 or c.shape != t.shape:
            raise DatasetError(
                f"event times {t.shape} and channels {c.shape} must be 1-D of equal length"
            )
        if o.ndim != 1 or o.size < 1 or o[0] != 0 or o[-1] != t.size or (np.diff(o) < 0).any():
            raise DatasetError(
                f"event offsets must start at 0, never decrease and end at {t.size} events"
            )
        if t.size and (not np.isfinite(t).all() or t.min() < 0):
            raise DatasetError("event times must be finite and >= 0 ms")
        if c.size and (c.min() < 0 or c.max() >= self.n_channels):
            raise DatasetError(f"event channels must lie in 0..{self.n_channels - 1}")

    @classmethod
    def from_lists(
        cls, times: Sequence[np.ndarray], channels: Sequence[np.ndarray], n_channels: int
    ) -> EventTrains:
        """Build from one (times ms, channel) pair of arrays per trial (sorted by time here)."""
        if len(times) != len(channels):
            raise DatasetError(f"{len(times)} trials of times but {len(channels)} of channels")
        ts, cs, offsets = [], [], [0]
        for t, c in zip(times, channels, strict=True):
            t = np.asarray(t, dtype=np.float64).ravel()
            c = np.asarray(c).ravel()  # integer check in __post_init__
            if t.shape != c.shape:
                raise DatasetError(f"a trial has {t.size} event times but {c.size} channels")
            order = np.argsort(t, kind="stable")
            ts.append(t[order])
            cs.append(c[order])
            offsets.append(offsets[-1] + t.size)
        empty = np.zeros(0)
        return cls(
            np.concatenate(ts) if ts else empty,
            np.concatenate(cs) if cs else empty.astype(np.int32),
            np.asarray(offsets),
            n_channels,
        )

    @property
    def n_trials(self) -> int:
        return int(self.offsets.size - 1)

    def trial(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Times (ms) and channels of trial ``i``."""
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.times_ms[a:b], self.channels[a:b]

    def subset(self, trials: Sequence[int] | np.ndarray) -> EventTrains:
        """The events of ``trials`` (in that order)."""
        idx = np.asarray(trials, dtype=np.int64).reshape(-1)
        pairs = [self.trial(int(i)) for i in idx]
        return EventTrains.from_lists([p[0] for p in pairs], [p[1] for p in pairs], self.n_channels)

    def dense(self, trials: Sequence[int] | np.ndarray, n_time: int, dt_ms: float) -> np.ndarray:
        """Event counts per bin, float32 ``[len(trials), n_time, n_channels]``.

        Sample ``k`` counts the events in ``[k dt, (k+1) dt)``; events at or after
        ``n_time * dt`` are dropped.
        """
        idx = np.asarray(trials, dtype=np.int64).reshape(-1)
        out = np.zeros((idx.size, n_time, self.n_channels), dtype=np.float32)
        for row, i in enumerate(idx):
            t, c = self.trial(int(i))
            k = np.floor(t / dt_ms).astype(np.int64)
            keep = k < n_time
            np.add.at(out[row], (k[keep], c[keep]), 1.0)
        return out

    def slice_time(self, start_ms: float, stop_ms: float, trials: np.ndarray) -> EventTrains:
        """Events of ``trials`` with ``start_ms <= t < stop_ms``, shifted to start at 0."""
        times, chans = [], []
        for i in np.asarray(trials, dtype=np.int64).reshape(-1):
            t, c = self.trial(int(i))
            keep = (t >= start_ms) & (t < stop_ms)
            times.append(t[keep] - start_ms)
            chans.append(c[keep])
        return EventTrains.from_lists(times, chans, self.n_channels)

    def update_hash(self, h: hashlib._Hash) -> None:
        for arr in (self.times_ms, self.channels, self.offsets):
            h.update(str(arr.shape).encode())
            h.update(arr.tobytes())
        h.update(str(self.n_channels).encode())


def dense_field_specs(data: Any) -> tuple[FieldSpec, ...]:
    """The specs of a dataset's dense ``inputs`` and ``outputs`` (those with channels), from
    its ``input_names``, ``output_names``, ``input_units`` and ``output_units``."""
    specs = []
    if data.input_names:
        specs.append(
            FieldSpec("inputs", "input", "continuous", data.input_names, data.input_units)
        )
    if data.output_names:
        specs.append(
            FieldSpec("outputs", "target", "continuous", data.output_names, data.output_units)
        )
    return tuple(specs)


FieldValues = np.ndarray | EventTrains


@dataclass(frozen=True, eq=False)
class Field:
    """A typed field and its values (layouts in the module docstring).

    Attributes:
        spec: What the field is.
        values: Its values.
        availability: Optional bool ``[len(group classes), channel]``: which channels exist in
            each member of ``spec.availability_group``.
    """

    spec: FieldSpec
    values: FieldValues
    availability: np.ndarray | None = field(default=None)

    @property
    def name(self) -> str:
        return self.spec.name

    def check(self, n_trials: int, n_time: int) -> Field:
        """Validate the values against the spec and the dataset's size; return a normalised copy.

        Raises:
            DatasetError: one line naming the field, the expected and the found layout.
        """
        s = self.spec
        v = self.values
        where = f"field {s.name!r} ({s.role}, {s.kind})"
        if s.kind == "events":
            if not isinstance(v, EventTrains):
                raise DatasetError(f"{where} needs EventTrains values, got {type(v).__name__}")
            if v.n_trials != n_trials or v.n_channels != s.n_channels:
                raise DatasetError(
                    f"{where} has {v.n_trials} trials x {v.n_channels} channels; expected "
                    f"{n_trials} x {s.n_channels}"
                )
            return self._with(v)
        if isinstance(v, EventTrains):
            raise DatasetError(f"{where} holds events; declare its kind as 'events'")
        arr = np.asarray(v)
        if s.role == "group":
            if arr.shape != (n_trials,) or not np.issubdtype(arr.dtype, np.integer):
                raise DatasetError(f"{where} needs integer ids [trial]=({n_trials},), got "
                                   f"{arr.dtype} {arr.shape}")
            if arr.size and (arr.min() < 0 or arr.max() >= len(s.classes)):
                raise DatasetError(f"{where}: ids must lie in 0..{len(s.classes) - 1}")
            return self._with(arr.astype(np.int32))
        want = (n_trials, n_time, s.n_channels)
        if arr.shape != want:
            raise DatasetError(f"{where} has shape {arr.shape}; expected [trial, time, channel] "
                               f"= {want}")
        if s.kind == "categorical":
            if not np.issubdtype(arr.dtype, np.integer):
                raise DatasetError(f"{where} needs integer class labels, got dtype {arr.dtype}")
            bad = (arr < 0) | (arr >= len(s.classes))
            if s.ignore_label is not None:
                bad &= arr != s.ignore_label
            if bad.any():
                raise DatasetError(
                    f"{where}: label {int(arr[bad][0])} out of range 0..{len(s.classes) - 1}"
                    + (f" (ignored: {s.ignore_label})" if s.ignore_label is not None else "")
                )
            return self._with(arr.astype(np.int16))
        if s.role == "mask":
            if arr.dtype != np.bool_ and not np.isin(arr, (0, 1)).all():
                raise DatasetError(f"{where} must be boolean (or 0/1)")
            return self._with(arr.astype(np.bool_))
        is_bool = arr.dtype == np.bool_ and s.kind == "binary"  # 0/1 given as False/True
        if not is_bool and (
            not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating)
        ):
            raise DatasetError(f"{where} needs real numbers, got dtype {arr.dtype}")
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if np.isinf(arr).any():
            raise DatasetError(f"{where} contains inf values")
        if s.kind == "binary" and not np.isin(arr[~np.isnan(arr)], (0.0, 1.0)).all():
            raise DatasetError(f"{where} must hold only 0 and 1 (binary)")
        if s.role == "input" and np.isnan(arr).any():
            raise DatasetError(f"{where} contains NaN; inputs must be complete")
        return self._with(arr)

    def _with(self, values: FieldValues) -> Field:
        return Field(self.spec, values, self.availability)

    def select_trials(self, idx: np.ndarray) -> Field:
        """This field restricted to trials ``idx``."""
        v = self.values
        v = v.subset(idx) if isinstance(v, EventTrains) else np.asarray(v)[idx]
        return Field(self.spec, v, self.availability)

    def update_hash(self, h: hashlib._Hash) -> None:
        h.update(repr(sorted(self.spec.to_dict().items())).encode())
        if isinstance(self.values, EventTrains):
            self.values.update_hash(h)
        else:
            arr = np.ascontiguousarray(self.values)
            h.update(f"{arr.dtype}{arr.shape}".encode())
            h.update(arr.tobytes())
        if self.availability is not None:
            h.update(np.ascontiguousarray(self.availability, dtype=np.bool_).tobytes())


def check_fields(
    fields: Sequence[Field], *, n_trials: int, n_time: int, n_outputs: int | None = None
) -> tuple[Field, ...]:
    """Validate extra fields together: unique names, masks and availability point at real fields.

    Raises:
        DatasetError: one line per problem (the first found).
    """
    checked = [f.check(n_trials, n_time) for f in fields]
    names = [f.name for f in checked]
    for n in names:
        if n in RESERVED_NAMES:
            raise DatasetError(f"field name {n!r} is reserved for the dense inputs/outputs")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DatasetError(f"field names must be unique; repeated: {', '.join(dup)}")
    by_name = {f.name: f for f in checked}
    for i, f in enumerate(tuple(checked)):
        s = f.spec
        if s.of is not None:
            target = by_name.get(s.of)
            if s.of not in RESERVED_NAMES and target is None:
                raise DatasetError(f"mask {s.name!r} is of unknown field {s.of!r}")
            if s.of == "inputs" or (target is not None and target.spec.role not in ("target",
                                                                                   "label")):
                raise DatasetError(
                    f"mask {s.name!r} is of {s.of!r}, which is not a target or label field "
                    "(only predicted values can be missing)"
                )
            if s.of == "outputs" and n_outputs is not None and s.n_channels != n_outputs:
                raise DatasetError(
                    f"mask {s.name!r} has {s.n_channels} channels, the dense outputs have "
                    f"{n_outputs}"
                )
            if target is not None and target.spec.n_channels != s.n_channels:
                raise DatasetError(
                    f"mask {s.name!r} has {s.n_channels} channels, field {s.of!r} has "
                    f"{target.spec.n_channels}"
                )
        if s.availability_group is not None:
            group = by_name.get(s.availability_group)
            if group is None or group.spec.role != "group":
                raise DatasetError(
                    f"field {s.name!r}: availability_group {s.availability_group!r} is not a "
                    "group field of this dataset"
                )
            want = (len(group.spec.classes), s.n_channels)
            av = None if f.availability is None else np.asarray(f.availability)
            if av is None or av.shape != want:
                got = None if av is None else av.shape
                raise DatasetError(
                    f"field {s.name!r}: availability must be bool [group member, channel] = "
                    f"{want}, got {got}"
                )
            if av.dtype != np.bool_ and not np.isin(av, (0, 1)).all():
                raise DatasetError(f"field {s.name!r}: availability must be boolean (or 0/1)")
            av = av.astype(np.bool_)
            values = f.values
            if s.role == "target" and not av.all():  # unrecorded values are missing: NaN, so
                ids = np.asarray(group.values)  # they never reach statistics, losses, metrics
                values = np.where(av[ids][:, None, :], values, np.float32(np.nan))
            checked[i] = Field(s, values, av)
        elif f.availability is not None:
            raise DatasetError(f"field {s.name!r} has availability but no availability_group")
    return tuple(checked)
