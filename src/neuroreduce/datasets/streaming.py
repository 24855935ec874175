"""A dataset file read trial by trial: train on files larger than memory.

:class:`StreamingDataset` opens an HDF5 file written by
:func:`~neuroreduce.datasets.io.save_dataset` (schema in :mod:`neuroreduce.datasets.io`) and keeps
only its small metadata in memory: channel names and units, ``dt_ms``, provenance, the split
and the stored content hash. Trials are read on demand with :meth:`StreamingDataset.read`
(the file is chunked one trial per chunk, so reading a trial touches only that trial), and
:meth:`StreamingDataset.moments` computes per-channel statistics chunk by chunk.

Passing one to :func:`neuroreduce.training.train` makes the trainer stream minibatches from the
file; the results equal training on the loaded :class:`~neuroreduce.datasets.dataset.Dataset`.

Unlike :func:`~neuroreduce.datasets.io.load_dataset`, opening does not re-hash the arrays (that
would read the whole file); the metadata hash is checked.

Validation while reading (the in-memory rules of ``Dataset.__post_init__``): every block read is
checked as it is read: inputs finite, outputs never infinite (NaN marks a missing value, allowed
only if the file declares missing outputs), typed fields by ``Field.check``; a violation is one
:class:`~neuroreduce.errors.DatasetError` line naming the file and the trial.

The stored content hash is verified incrementally, without a separate pass over the file: each
trial that :meth:`StreamingDataset.read` returns pays for hashing ``2 N / M`` rows (of ``N``
trials, inputs then outputs; ``M`` = training + validation trials) in file order, read as
contiguous slices and validated like the rest. Training reads every training and validation
trial in its first epoch (and the training trials once more to normalise), so the whole file
is hashed by the end of the first pass, at the cost of reading it once more over that pass; a
mismatch then stops with one line. :meth:`StreamingDataset.verify` finishes the check at once.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from neuroreduce.datasets.dataset import SPLIT_NAMES, Dataset
from neuroreduce.datasets.fields import Field, FieldSpec, dense_field_specs
from neuroreduce.datasets.io import (
    FORMAT_NAME,
    _attr_str,
    _metadata_hash,
    check_stored_inside,
    check_version,
    read_field,
    read_field_specs,
)
from neuroreduce.errors import DatasetError

_DEFAULT_CHUNK = 64  # trials per read when scanning a split


@dataclass(frozen=True)
class Moments:
    """Per-channel count, mean and sum of squared deviations (float64), pooled over trials and
    time; ``std = sqrt(m2 / count)`` (population standard deviation, as ``numpy.std``).

    Attributes:
        count: Number of pooled samples per channel (trials x time).
        mean: Mean per channel, shape ``[channel]``.
        m2: Sum of squared deviations from the mean per channel, shape ``[channel]``.
    """

    count: int
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray) -> Moments:
        """Moments of ``values [..., channel]``."""
        if values.shape[-1] == 0:  # no channels (e.g. inputs that are all spike events)
            return cls(int(np.prod(values.shape[:-1])), np.zeros(0), np.zeros(0))
        flat = values.reshape(-1, values.shape[-1]).astype(np.float64)
        mean = flat.mean(axis=0)
        return cls(flat.shape[0], mean, np.square(flat - mean).sum(axis=0))

    def merge(self, other: Moments) -> Moments:
        """Moments of the union of both samples (Chan et al.'s parallel update)."""
        n = self.count + other.count
        if n == 0:
            return self
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / n)
        m2 = self.m2 + other.m2 + np.square(delta) * (self.count * other.count / n)
        return Moments(n, mean, m2)

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation per channel."""
        return np.sqrt(self.m2 / max(self.count, 1))


class _HashCheck:
    """The stored content hash, verified in file order at the pace trials are read (module
    docstring): ``advance(n)`` after ``n`` trials were read."""

    def __init__(self, source: StreamingDataset) -> None:
        self.source = source
        n = source.n_trials
        passed = n if source.split is None else int(np.isin(source.split, (0, 1)).sum())
        self.rate = 2 * n / max(1, passed)  # rows hashed per trial read
        self.h = hashlib.sha256()
        self.credit = 0.0
        self.row = 0  # next row of the current array
        self.array = 0  # 0: inputs, 1: outputs, 2: done
        self.h.update(str(tuple(source._inputs.shape)).encode())

    @property
    def done(self) -> bool:
        return self.array == 2

    def advance(self, trials: float) -> None:
        src = self.source
        if self.done:
            return
        self.credit += trials * self.rate
        while not self.done and self.credit >= 1:
            take = int(min(self.credit, _DEFAULT_CHUNK, src.n_trials - self.row))
            rows = np.arange(self.row, self.row + take)
            if take:
                block = src._read_rows((src._inputs, src._outputs)[self.array], rows)
                src._check_rows(*((block, None) if self.array == 0 else (None, block)), rows)
                self.h.update(block.tobytes())
            self.row += take
            self.credit -= take
            if self.row >= src.n_trials:
                self.array += 1
                self.row = 0
                if self.array == 1:
                    self.h.update(str(tuple(src._outputs.shape)).encode())
                else:
                    self._finish()

    def _finish(self) -> None:
        src = self.source
        src._hash_tail(self.h)
        if self.h.hexdigest() != src._hash:
            raise DatasetError(
                f"{src.path} is corrupt: its data do not match the stored content hash (checked "
                "over the first pass of reading it); recreate it"
            )


class StreamingDataset:
    """An open dataset file whose trials are read on demand (never all at once).

    Has the metadata attributes of :class:`~neuroreduce.datasets.dataset.Dataset`
    (``input_names``, ``output_names``, ``input_units``, ``output_units``, ``dt_ms``,
    ``provenance``, ``split``, ``n_trials``, ``n_time``, :meth:`indices`, :meth:`content_hash`),
    but no ``inputs``/``outputs`` arrays: use :meth:`read`. Close it (or use ``with``) when done.

    Args:
        path: A file written by :func:`~neuroreduce.datasets.io.save_dataset`.

    Raises:
        DatasetError: if the file is missing, not a neuroreduce dataset, of another schema
            version, lacks a key, or its metadata do not match their stored hash.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DatasetError(
                f"dataset file not found: {self.path}; create it with `neuroreduce simulate` or "
                "an importer, or check the path"
            )
        try:
            self._file = h5py.File(self.path, "r")
        except OSError:
            raise DatasetError(
                f"{self.path} is not a readable HDF5 file (corrupt or truncated); recreate it"
            ) from None
        try:
            self._read_metadata()
        except DatasetError:
            self._file.close()
            raise
        except (OSError, KeyError, ValueError, TypeError, UnicodeDecodeError) as exc:
            self._file.close()
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DatasetError(f"{self.path} is corrupt ({detail}); recreate it") from None

    def _read_metadata(self) -> None:
        f, src = self._file, self.path
        fmt = _attr_str(f, "format", src) if "format" in f.attrs else ""
        if fmt != FORMAT_NAME:
            raise DatasetError(f"{src} is not a neuroreduce dataset (format {fmt!r})")
        check_version(f, src)
        check_stored_inside(f, src)
        keys = ("inputs", "outputs", "input_names", "output_names", "families", "split")
        missing = [k for k in (*keys, "stimulus_params") if k not in f]
        missing += [
            k for k in ("dt_ms", "input_units", "output_units", "provenance") if k not in f.attrs
        ]
        if missing:
            raise DatasetError(f"{src} lacks {', '.join(missing)}; recreate the file")
        self._inputs, self._outputs = f["inputs"], f["outputs"]
        if (
            self._inputs.ndim != 3
            or self._outputs.ndim != 3
            or self._inputs.shape[:2] != self._outputs.shape[:2]
        ):
            raise DatasetError(
                f"{src}: inputs {self._inputs.shape} and outputs {self._outputs.shape} are not "
                "[trial, time, channel] arrays of the same trials and times; recreate it"
            )
        self.input_names = tuple(str(s) for s in f["input_names"].asstr()[()])
        self.output_names = tuple(str(s) for s in f["output_names"].asstr()[()])
        if (len(self.input_names), len(self.output_names)) != (
            self._inputs.shape[2],
            self._outputs.shape[2],
        ):
            raise DatasetError(f"{src}: channel names do not match the arrays; recreate it")
        if any(len(set(n)) != len(n) for n in (self.input_names, self.output_names)):
            raise DatasetError(f"{src}: duplicate channel names; every channel needs its own name")
        self.input_units = _attr_str(f, "input_units", src)
        self.output_units = _attr_str(f, "output_units", src)
        self.dt_ms = float(f.attrs["dt_ms"])
        families = tuple(str(s) for s in f["families"].asstr()[()])
        params = tuple(str(s) for s in f["stimulus_params"].asstr()[()])
        provenance_text = _attr_str(f, "provenance", src)
        if "metadata_hash" in f.attrs and _metadata_hash(
            families, params, provenance_text
        ) != _attr_str(f, "metadata_hash", src):
            raise DatasetError(
                f"{src} is corrupt: its metadata do not match the stored hash; recreate it"
            )
        self.families = families
        self.provenance: dict[str, Any] = json.loads(provenance_text)
        split = np.asarray(f["split"][()], dtype=np.int8)
        assigned = bool(f.attrs.get("split_assigned", not (split == -1).all()))
        if assigned and (split.shape != (self.n_trials,) or not np.isin(split, (0, 1, 2)).all()):
            raise DatasetError(f"{src}: split must be {self.n_trials} values in 0, 1, 2")
        self.split: np.ndarray | None = split if assigned else None
        #: True if some outputs are NaN (missing); schema-1 files never have any.
        self.outputs_missing = bool(f.attrs.get("outputs_missing", False))
        self._field_groups = read_field_specs(f)
        self.extra_specs: tuple[FieldSpec, ...] = tuple(spec for _, spec in self._field_groups)
        stored = f.attrs.get("content_hash")
        self._hash = None if stored is None else _attr_str(f, "content_hash", src)
        self._check = None if self._hash is None else _HashCheck(self)

    # ------------------------------------------------------------------ metadata
    @property
    def n_trials(self) -> int:
        return int(self._inputs.shape[0])

    @property
    def n_time(self) -> int:
        return int(self._inputs.shape[1])

    @property
    def nbytes(self) -> int:
        """Size of the inputs and outputs arrays in memory (bytes, float32, uncompressed)."""
        per = self.n_time * (self._inputs.shape[2] + self._outputs.shape[2]) * 4
        return self.n_trials * per

    def indices(self, split: str) -> np.ndarray:
        """Trial indices of split ``"train"``, ``"valid"`` or ``"test"``."""
        if split not in SPLIT_NAMES:
            raise DatasetError(f"unknown split {split!r}; use one of {', '.join(SPLIT_NAMES)}")
        if self.split is None:
            raise DatasetError(f"{self.path} has no split assignment; re-save it with a split")
        return np.flatnonzero(self.split == SPLIT_NAMES.index(split))

    def content_hash(self) -> str:
        """The stored content hash (equal to ``load_dataset(path).content_hash()``).

        Only if the file has none is it computed, reading the file chunk by chunk. A stored
        hash is verified while the trials are read (module docstring; :meth:`verify`).
        """
        if self._hash is None:
            self._hash = self._compute_hash()
        return self._hash

    @property
    def hash_verified(self) -> bool:
        """True once the stored content hash was found to match the data (or none is stored:
        then :meth:`content_hash` computes it)."""
        return self._check is None or self._check.done

    def verify(self) -> None:
        """Finish verifying the stored content hash now (reads the rows not hashed yet).

        Raises:
            DatasetError: one line if the data do not match the stored hash.
        """
        if self._check is not None:
            self._check.advance(math.inf)

    def _compute_hash(self) -> str:
        h = hashlib.sha256()
        for arr in (self._inputs, self._outputs):
            h.update(str(tuple(arr.shape)).encode())
            for start in range(0, self.n_trials, _DEFAULT_CHUNK):
                block = np.ascontiguousarray(arr[start : start + _DEFAULT_CHUNK], np.float32)
                h.update(block.tobytes())
        self._hash_tail(h)
        return h.hexdigest()

    def _hash_tail(self, h: Any) -> None:
        """Feed the metadata and typed fields (after the arrays) into the content hash ``h``."""
        meta = {
            "dt_ms": self.dt_ms,
            "input_names": list(self.input_names),
            "output_names": list(self.output_names),
            "units": [self.input_units, self.output_units],
            "split": None if self.split is None else self.split.tolist(),
        }
        h.update(json.dumps(meta, sort_keys=True).encode())
        for g, spec in self._field_groups:
            read_field(g, spec).update_hash(h)

    def read_fields(self, indices: Sequence[int] | np.ndarray) -> tuple[Field, ...]:
        """The typed fields of trials ``indices`` (in that order), read from the file."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        unique, inverse = np.unique(idx, return_inverse=True)
        try:
            fields = [read_field(g, spec, unique) for g, spec in self._field_groups]
        except (OSError, ValueError) as exc:
            raise DatasetError(f"could not read {self.path} ({exc}); recreate it") from None
        for f in fields:
            self._check_field(f, unique)
        if np.array_equal(unique, idx):
            return tuple(fields)
        return tuple(f.select_trials(inverse) for f in fields)

    def _check_field(self, field: Field, rows: np.ndarray) -> None:
        """``Field.check`` of the field read for trials ``rows``; on failure, name the first
        trial that fails (each checked alone) and the file."""
        try:
            field.check(rows.size, self.n_time)
            return
        except DatasetError as exc:
            problem = str(exc)
        for i, trial in enumerate(rows):
            try:
                field.select_trials(np.array([i])).check(1, self.n_time)
            except DatasetError as exc:
                raise DatasetError(f"{self.path}: trial {int(trial)}: {exc}") from None
        raise DatasetError(f"{self.path}: trials {int(rows[0])}..{int(rows[-1])}: {problem}")

    def _check_rows(self, x: np.ndarray | None, y: np.ndarray | None, rows: np.ndarray) -> None:
        """The in-memory rules for ``inputs``/``outputs`` (either may be ``None``: not read) of
        trials ``rows`` (one line naming the file and the first bad trial)."""
        checks = []
        if x is not None:
            checks.append((lambda: ~np.isfinite(x), "NaN or inf inputs; inputs must be complete"))
        if y is not None:
            checks.append((lambda: np.isinf(y), "inf outputs (NaN marks a missing value)"))
            if not self.outputs_missing:
                checks.append((lambda: np.isnan(y), "NaN (missing) outputs, but the file does "
                                                    "not declare missing outputs"))
        for test, what in checks:
            bad = test()
            if bad.any():
                trial = int(rows[int(np.argmax(bad.reshape(len(rows), -1).any(axis=1)))])
                raise DatasetError(f"{self.path}: trial {trial} has {what}; fix or recreate "
                                   "the file")

    def dataset_of(self, indices: Sequence[int] | np.ndarray) -> Dataset:
        """An in-memory :class:`Dataset` of trials ``indices`` with every field (no split)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        x, y = self.read(idx)
        return Dataset(
            inputs=x, outputs=y, dt_ms=self.dt_ms, input_names=self.input_names,
            output_names=self.output_names, input_units=self.input_units,
            output_units=self.output_units, families=tuple(self.families[i] for i in idx),
            fields=self.read_fields(idx),
        )

    def groups(self) -> dict[str, np.ndarray]:
        """Group field name -> int32 id per trial (group fields are small: read whole)."""
        return {
            spec.name: np.asarray(g["values"][()], dtype=np.int32)
            for g, spec in self._field_groups
            if spec.role == "group"
        }

    @property
    def outputs_incomplete(self) -> bool:
        """True if some dense outputs are missing (NaN, or a mask field of ``outputs``)."""
        return self.outputs_missing or any(s.of == "outputs" for s in self.extra_specs)

    @property
    def field_specs(self) -> tuple[FieldSpec, ...]:
        """Every field, the dense ``inputs``/``outputs`` first (as ``Dataset.field_specs``)."""
        return (*dense_field_specs(self), *self.extra_specs)

    # ------------------------------------------------------------------ data
    def read(self, indices: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and outputs of the trials ``indices`` (any order, repeats allowed).

        Returns:
            ``inputs [n, time, input]`` and ``outputs [n, time, output]``, float32, physical
            units, in the order of ``indices``.

        Raises:
            DatasetError: if an index is out of range or the file cannot be read.
        """
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_trials):
            raise DatasetError(f"trial index out of range 0..{self.n_trials - 1} in {self.path}")
        unique, inverse = np.unique(idx, return_inverse=True)
        try:
            x = self._read_rows(self._inputs, unique)
            y = self._read_rows(self._outputs, unique)
        except (OSError, ValueError) as exc:
            raise DatasetError(f"could not read {self.path} ({exc}); recreate it") from None
        self._check_rows(x, y, unique)
        if self._check is not None:
            self._check.advance(idx.size)
        if np.array_equal(unique, idx):  # already sorted and distinct: no reordering copy
            return x, y
        return x[inverse], y[inverse]

    @staticmethod
    def _read_rows(dset: h5py.Dataset, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` (sorted, distinct) of ``dset``, read as contiguous slices.

        h5py's fancy indexing by a list of rows is ~50x slower than slicing here (0.5 s vs
        0.01 s for 32 trials of 0.5 MB), so runs of consecutive rows are read as slices.
        """
        out = np.empty((rows.size, *dset.shape[1:]), np.float32)
        if rows.size == 0:
            return out
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        for first, last in zip(
            np.concatenate(([0], breaks)), np.concatenate((breaks, [rows.size])), strict=True
        ):
            lo = int(rows[first])
            dset.read_direct(
                out, source_sel=np.s_[lo : lo + (last - first)], dest_sel=np.s_[first:last]
            )
        return out

    def iter_trials(
        self, indices: Sequence[int] | np.ndarray, *, chunk: int = _DEFAULT_CHUNK
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield :meth:`read` of ``indices`` in consecutive pieces of ``chunk`` trials."""
        idx = np.asarray(indices, dtype=np.int64)
        for start in range(0, idx.size, chunk):
            yield self.read(idx[start : start + chunk])

    def moments(
        self, indices: Sequence[int] | np.ndarray, *, chunk: int = _DEFAULT_CHUNK
    ) -> tuple[Moments, Moments]:
        """Per-channel moments of inputs and outputs over the trials ``indices`` (and time),
        computed ``chunk`` trials at a time."""
        n_in, n_out = self._inputs.shape[2], self._outputs.shape[2]
        m_in = Moments(0, np.zeros(n_in), np.zeros(n_in))
        m_out = Moments(0, np.zeros(n_out), np.zeros(n_out))
        for x, y in self.iter_trials(indices, chunk=chunk):
            m_in, m_out = m_in.merge(Moments.of(x)), m_out.merge(Moments.of(y))
        return m_in, m_out

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._file.id.valid:
            self._file.close()

    def __enter__(self) -> StreamingDataset:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"StreamingDataset({str(self.path)!r}, {self.n_trials} trials x {self.n_time} "
            f"samples, {len(self.input_names)} -> {len(self.output_names)})"
        )
