"""The in-memory dataset: inputs and outputs of many trials, self-described, with typed fields.

Every dataset has two dense float arrays, ``inputs`` and ``outputs`` (either may have zero
channels), and any number of typed fields (:mod:`neuroreduce.datasets.fields`): spike-event
inputs, binary or extra continuous targets, per-time-step labels, masks, group ids with
per-group channel availability. A dataset with no extra fields is the schema-v1 dataset of the
Barbulescu study, and hashes exactly as before.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuroreduce.datasets.fields import (
    RESERVED_NAMES,
    Field,
    FieldSpec,
    check_fields,
    dense_field_specs,
)
from neuroreduce.errors import DatasetError

SPLIT_NAMES: tuple[str, ...] = ("train", "valid", "test")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Input/output sequences of many trials on one time grid.

    Attributes:
        inputs: Injected currents, shape ``[trial, time, input]``, float32, in ``input_units``.
        outputs: Recorded signals, shape ``[trial, time, output]``, float32, in ``output_units``.
        dt_ms: Sampling interval (ms); sample ``k`` is at ``k * dt_ms``.
        input_names: One name per input channel.
        output_names: One name per output channel.
        input_units: Unit of ``inputs`` (default nA).
        output_units: Unit of ``outputs`` (default mV).
        families: Stimulus family of each trial (e.g. ``"step"``), length ``trial``.
        stimulus_params: JSON text of each trial's stimulus parameters, length ``trial``.
        split: Split of each trial: 0 = train, 1 = valid, 2 = test (int8, length ``trial``),
            or ``None`` if not assigned yet.
        provenance: Simulator, versions and settings that produced the data (JSON-able).
        fields: Typed fields beyond ``inputs``/``outputs`` (events, binary targets, labels,
            masks, groups; see :mod:`neuroreduce.datasets.fields`).

    ``outputs`` may hold NaN for missing values (ignored by objectives and metrics); ``inputs``
    must be complete.
    """

    inputs: np.ndarray
    outputs: np.ndarray
    dt_ms: float
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    input_units: str = "nA"
    output_units: str = "mV"
    families: tuple[str, ...] = ()
    stimulus_params: tuple[str, ...] = ()
    split: np.ndarray | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)
    fields: tuple[Field, ...] = ()

    def __post_init__(self) -> None:
        if np.iscomplexobj(self.inputs) or np.iscomplexobj(self.outputs):
            raise DatasetError("dataset inputs/outputs hold complex values; give real numbers")
        inputs = np.ascontiguousarray(self.inputs, dtype=np.float32)
        outputs = np.ascontiguousarray(self.outputs, dtype=np.float32)
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "outputs", outputs)
        object.__setattr__(self, "input_names", tuple(self.input_names))
        object.__setattr__(self, "output_names", tuple(self.output_names))
        if inputs.ndim != 3 or outputs.ndim != 3:
            raise DatasetError(
                f"inputs and outputs must be [trial, time, channel]; got {inputs.shape} and "
                f"{outputs.shape}"
            )
        if inputs.shape[:2] != outputs.shape[:2]:
            raise DatasetError(
                f"inputs {inputs.shape} and outputs {outputs.shape} differ in trials or time"
            )
        for kind, names in (("input", self.input_names), ("output", self.output_names)):
            if len(set(names)) != len(names):
                twice = sorted(n for n, k in Counter(names).items() if k > 1)
                raise DatasetError(f"duplicate {kind} channel name(s) {', '.join(twice[:20])}; "
                                   "every channel needs its own name")
        if inputs.shape[2] != len(self.input_names) or outputs.shape[2] != len(self.output_names):
            raise DatasetError(
                f"{len(self.input_names)} input names / {len(self.output_names)} output names do "
                f"not match arrays {inputs.shape} / {outputs.shape}"
            )
        if not np.isfinite(inputs).all():
            raise DatasetError("dataset inputs contain NaN or inf values; inputs must be complete")
        if np.isinf(outputs).any():
            raise DatasetError("dataset outputs contain inf values (NaN marks a missing value)")
        if not self.dt_ms > 0:
            raise DatasetError(f"dt_ms must be > 0, got {self.dt_ms}")
        n = inputs.shape[0]
        if not self.families:
            object.__setattr__(self, "families", ("unknown",) * n)
        if not self.stimulus_params:
            object.__setattr__(self, "stimulus_params", ("{}",) * n)
        object.__setattr__(self, "families", tuple(self.families))
        object.__setattr__(self, "stimulus_params", tuple(self.stimulus_params))
        if len(self.families) != n or len(self.stimulus_params) != n:
            raise DatasetError(f"families/stimulus_params need one entry per trial ({n})")
        if self.split is not None:
            split = np.asarray(self.split, dtype=np.int8)
            if split.shape != (n,) or not np.isin(split, (0, 1, 2)).all():
                raise DatasetError(f"split must be {n} values in {{0, 1, 2}}")
            object.__setattr__(self, "split", split)
        object.__setattr__(
            self, "fields", check_fields(tuple(self.fields), n_trials=n, n_time=inputs.shape[1],
                                         n_outputs=outputs.shape[2])
        )

    @property
    def n_trials(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def n_time(self) -> int:
        return int(self.inputs.shape[1])

    def indices(self, split: str) -> np.ndarray:
        """Trial indices of split ``"train"``, ``"valid"`` or ``"test"``."""
        if split not in SPLIT_NAMES:
            raise DatasetError(f"unknown split {split!r}; use one of {', '.join(SPLIT_NAMES)}")
        if self.split is None:
            raise DatasetError("dataset has no split assignment; call with_splits() first")
        return np.flatnonzero(self.split == SPLIT_NAMES.index(split))

    def content_hash(self) -> str:
        """SHA-256 over arrays, names, units, dt and split: the dataset's fingerprint."""
        h = hashlib.sha256()
        for arr in (self.inputs, self.outputs):
            h.update(str(arr.shape).encode())
            h.update(arr.tobytes())
        meta = {
            "dt_ms": float(self.dt_ms),
            "input_names": list(self.input_names),
            "output_names": list(self.output_names),
            "units": [self.input_units, self.output_units],
            "split": None if self.split is None else self.split.tolist(),
        }
        h.update(json.dumps(meta, sort_keys=True).encode())
        for f in self.fields:  # none in a v1 dataset: its hash is unchanged
            f.update_hash(h)
        return h.hexdigest()

    # ------------------------------------------------------------------ typed fields
    @property
    def field_specs(self) -> tuple[FieldSpec, ...]:
        """Every field: the dense ``inputs`` and ``outputs`` (if they have channels) first."""
        return (*dense_field_specs(self), *(f.spec for f in self.fields))

    def field(self, name: str) -> Field:
        """The extra field called ``name``.

        Raises:
            DatasetError: naming the dataset's fields if there is none of that name.
        """
        for f in self.fields:
            if f.name == name:
                return f
        known = [s.name for s in self.field_specs]
        raise DatasetError(f"dataset has no field {name!r}; its fields: {', '.join(known)}")

    def has_field(self, name: str) -> bool:
        return name in RESERVED_NAMES or any(f.name == name for f in self.fields)

    @property
    def outputs_incomplete(self) -> bool:
        """True if some dense outputs are missing (NaN, or a mask field of ``outputs``)."""
        return any(f.spec.of == "outputs" for f in self.fields) or bool(
            np.isnan(self.outputs).any()
        )

    def known(self, name: str, idx: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Values of field ``name`` (or ``"outputs"``) for trials ``idx`` (default: all) and the
        bool mask of those that are known: not NaN, not masked by a mask field, recorded in the
        trial's group (per-group availability). The one rule objectives, normalisation and
        metrics share for missing values (ignored labels are the label's own business)."""
        idx = np.arange(self.n_trials) if idx is None else np.asarray(idx)
        f = None if name == "outputs" else self.field(name)
        values = self.outputs[idx] if f is None else np.asarray(f.values)[idx]
        mask = np.isfinite(values) if values.dtype.kind == "f" else np.ones(values.shape, bool)
        for m in self.fields:
            if m.spec.role == "mask" and m.spec.of == name:
                mask &= np.asarray(m.values, dtype=bool)[idx]
        if f is not None and f.availability is not None and f.spec.availability_group:
            groups = np.asarray(self.field(f.spec.availability_group).values)[idx]
            mask &= np.asarray(f.availability, bool)[groups][:, None, :]
        return values, mask

    def masked_values(self, name: str, idx: np.ndarray) -> np.ndarray:
        """Float values of field ``name`` for trials ``idx``, NaN wherever not :meth:`known`
        (for statistics that must see recorded values only)."""
        values, mask = self.known(name, idx)
        return np.where(mask, values.astype(np.float64), np.nan)

    def groups(self) -> dict[str, np.ndarray]:
        """Group field name -> int32 id per trial."""
        return {f.name: np.asarray(f.values) for f in self.fields if f.spec.role == "group"}

    def select_trials(self, idx: np.ndarray) -> Dataset:
        """A dataset of trials ``idx`` (in that order), with every field and the split."""
        from dataclasses import replace

        idx = np.asarray(idx, dtype=np.int64)
        return replace(
            self,
            inputs=self.inputs[idx],
            outputs=self.outputs[idx],
            families=tuple(self.families[i] for i in idx),
            stimulus_params=tuple(self.stimulus_params[i] for i in idx),
            split=None if self.split is None else self.split[idx],
            fields=tuple(f.select_trials(idx) for f in self.fields),
        )
