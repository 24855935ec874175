"""Where the trainer's data come from: normalised tensors in memory, or trials streamed from disk.

Both sources give the trainer the same two things, in normalised units:

- :meth:`batch` — the minibatch of every ensemble member: trial *positions* within the train
  split, shape ``[member, batch]`` -> an :class:`~neuroreduce.training.assemble.Assembled`
  with ``x [member, batch, time, input]`` and per predicted field its targets
  ``[member, batch, time, channel]`` (and a mask where values are missing);
- :meth:`chunks` — a whole split in consecutive pieces (for the per-epoch losses).

:class:`InMemoryData` holds the train and valid splits as tensors (a loaded
:class:`~neuroreduce.datasets.dataset.Dataset`); :class:`StreamingData` reads only the trials of
the current minibatch or piece from a :class:`~neuroreduce.datasets.streaming.StreamingDataset`,
so memory stays bounded by the minibatch, whatever the file size. Both give the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np
import torch

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.streaming import StreamingDataset
from neuroreduce.errors import DatasetError
from neuroreduce.training.assemble import Assembled, Assembler
from neuroreduce.training.normalization import _CONSTANT_REL, Normalization
from neuroreduce.training.task import TaskLayout

#: Splits the trainer uses.
SPLITS: tuple[str, ...] = ("train", "valid")

#: Streaming reads a split in pieces of at most this many bytes of float32 trials (and at most
#: the trainer's piece size), which bounds the memory of the per-epoch losses on wide data.
PIECE_BYTES = 8 * 2**20


class TrainingData(Protocol):
    """What the trainer needs from its data (see the module docstring)."""

    @property
    def n_train(self) -> int: ...

    def n_values(self, split: str) -> int: ...

    def batch(self, positions: np.ndarray) -> Assembled: ...

    def chunks(self, split: str, size: int) -> Iterator[Assembled]: ...


def _split_indices(dataset: Dataset | StreamingDataset) -> dict[str, np.ndarray]:
    out = {}
    for split in SPLITS:
        idx = dataset.indices(split)
        if idx.size == 0:
            raise DatasetError(
                f"dataset has no {split!r} trials; assign some trials to the {split!r} split"
            )
        out[split] = idx
    return out


class InMemoryData:
    """The train and valid splits of a loaded dataset as normalised float32 tensors.

    The schema-v1 task (``layout.is_plain``) keeps both splits as two tensors, exactly as
    before typed fields existed; other tasks assemble their tensors with
    :class:`~neuroreduce.training.assemble.Assembler` (once per split, or per minibatch when
    spike events would be large when made dense).
    """

    def __init__(
        self, dataset: Dataset, normalization: Normalization, layout: TaskLayout | None = None
    ) -> None:
        self._x: dict[str, torch.Tensor] = {}
        self._y: dict[str, torch.Tensor] = {}
        self._idx = _split_indices(dataset)
        self._plain = layout is None or (layout.is_plain and not dataset.outputs_incomplete)
        if self._plain:
            for split, idx in self._idx.items():
                self._x[split] = torch.from_numpy(
                    normalization.normalize_inputs(dataset.inputs[idx])
                )
                self._y[split] = torch.from_numpy(
                    normalization.normalize_outputs(dataset.outputs[idx])
                )
            self._n_out = len(dataset.output_names)
            return
        assert layout is not None
        self._assembler = Assembler(layout, normalization, dataset)
        self._dataset = dataset
        self._cache: dict[str, Assembled] = {}
        if not self._assembler.has_events:
            for split, idx in self._idx.items():
                self._cache[split] = self._assembler.assemble(dataset.select_trials(idx))

    @property
    def n_train(self) -> int:
        return int(self._idx["train"].size)

    def n_values(self, split: str) -> int:
        """Number of output values (trials x time x model outputs) of ``split``."""
        if self._plain:
            return int(self._y[split].numel())
        return int(self._idx[split].size) * self._dataset.n_time * self._assembler.n_outputs

    def _assembled(self, split: str, positions: np.ndarray) -> Assembled:
        if split in self._cache:
            return self._cache[split].take(torch.as_tensor(positions))
        trials = self._idx[split][positions]
        return self._assembler.assemble(self._dataset.select_trials(trials))

    def batch(self, positions: np.ndarray) -> Assembled:
        if self._plain:
            idx = torch.as_tensor(positions)
            x, y = self._x["train"][idx], self._y["train"][idx]
            return Assembled(x, {"outputs": y}, {})
        pos = np.asarray(positions)
        return self._assembled("train", pos.reshape(-1)).view_as_members(pos.shape)

    def chunks(self, split: str, size: int) -> Iterator[Assembled]:
        if self._plain:
            x, y = self._x[split], self._y[split]
            for start in range(0, x.shape[0], size):
                yield Assembled(x[start : start + size], {"outputs": y[start : start + size]}, {})
            return
        n = int(self._idx[split].size)
        for start in range(0, n, size):
            yield self._assembled(split, np.arange(start, min(n, start + size)))

    def positive_fraction(self, field: str) -> list[float]:
        """Fraction of positive values per channel of a binary field in the train split."""
        return Assembler.positive_fraction(self._dataset, field, self._idx["train"])


class StreamingData:
    """Minibatches and split pieces read from an open dataset file, normalised on the fly."""

    def __init__(
        self,
        source: StreamingDataset,
        normalization: Normalization,
        layout: TaskLayout | None = None,
    ) -> None:
        self._source = source
        self._norm = normalization
        self._idx = _split_indices(source)
        self._plain = layout is None or (layout.is_plain and not source.outputs_incomplete)
        self._assembler = None if self._plain else Assembler(layout, normalization, source)
        self._n_out = len(source.output_names) if self._plain else self._assembler.n_outputs
        self._trial_bytes = source.n_time * (len(source.input_names) + self._n_out) * 4

    @property
    def n_train(self) -> int:
        return int(self._idx["train"].size)

    def n_values(self, split: str) -> int:
        return int(self._idx[split].size) * self._source.n_time * self._n_out

    def _tensors(self, trials: np.ndarray) -> Assembled:
        if self._assembler is not None:
            return self._assembler.assemble(self._source.dataset_of(trials))
        x, y = self._source.read(trials)
        return Assembled(
            torch.from_numpy(self._norm.normalize_inputs(x)),
            {"outputs": torch.from_numpy(self._norm.normalize_outputs(y))},
            {},
        )

    def batch(self, positions: np.ndarray) -> Assembled:
        pos = np.asarray(positions)
        return self._tensors(self._idx["train"][pos.reshape(-1)]).view_as_members(pos.shape)

    def chunks(self, split: str, size: int) -> Iterator[Assembled]:
        """Pieces of ``size`` trials, fewer where a piece would exceed :data:`PIECE_BYTES`."""
        idx = self._idx[split]
        size = max(1, min(size, PIECE_BYTES // self._trial_bytes))
        for start in range(0, idx.size, size):
            yield self._tensors(idx[start : start + size])

    def positive_fraction(self, field: str) -> list[float]:
        return Assembler.positive_fraction(self._source.dataset_of(self._idx["train"]), field)


def _from_moments(mean: np.ndarray, std: np.ndarray) -> tuple[tuple[float, ...], ...]:
    """The constant-channel rule of :class:`Normalization` applied to streamed statistics."""
    constant = ~np.isfinite(std) | (std <= _CONSTANT_REL * np.maximum(1.0, np.abs(mean)))
    std = np.where(constant, 1.0, std)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def fit_normalization(
    dataset: Dataset | StreamingDataset, layout: TaskLayout | None = None
) -> Normalization:
    """Per-channel statistics of the training trials (chunk by chunk for a streamed file).

    Equals :meth:`Normalization.fit` of the loaded dataset to float64 rounding. Continuous
    typed fields of ``layout`` (other than the dense ``inputs``/``outputs``) get their own
    statistics; for a streamed file those fields of the training trials are read at once.

    Raises:
        DatasetError: if the dataset has no split or no training trials.
    """
    extra = [] if layout is None else [
        name for name, kind in [(b.field, b.kind) for b in layout.inputs]
        + [(h.field, h.kind) for h in layout.heads]
        if kind == "continuous" and name not in ("inputs", "outputs")
    ]
    if not isinstance(dataset, StreamingDataset):
        norm = Normalization.fit(dataset)
        return norm.with_fields(dataset, extra, dataset.indices("train")) if extra else norm
    idx = dataset.indices("train")
    if idx.size == 0:
        raise DatasetError("cannot fit a normalisation on zero trials; assign training trials")
    if dataset.outputs_incomplete:  # NaN-aware statistics need values, not running moments
        norm = Normalization.fit(dataset.dataset_of(idx), trials=np.arange(idx.size))
    else:
        m_in, m_out = dataset.moments(idx)
        in_mean, in_std = _from_moments(m_in.mean, m_in.std)
        out_mean, out_std = _from_moments(m_out.mean, m_out.std)
        norm = Normalization(in_mean, in_std, out_mean, out_std)
    if extra:
        train = dataset.dataset_of(idx)
        norm = norm.with_fields(train, extra, np.arange(idx.size))
    return norm


def training_data(
    dataset: Dataset | StreamingDataset,
    normalization: Normalization,
    layout: TaskLayout | None = None,
) -> InMemoryData | StreamingData:
    """Streaming data for a :class:`StreamingDataset`, in-memory tensors for a ``Dataset``."""
    if isinstance(dataset, StreamingDataset):
        return StreamingData(dataset, normalization, layout)
    return InMemoryData(dataset, normalization, layout)
