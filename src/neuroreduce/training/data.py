"""Where the trainer's data come from: normalised tensors in memory, or trials streamed from disk.

Both sources give the trainer the same two things, in normalised units:

- :meth:`batch` — the minibatch of every ensemble member: trial *positions* within the train
  split, shape ``[member, batch]`` -> ``x [member, batch, time, input]``,
  ``y [member, batch, time, output]``;
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
from neuroreduce.training.normalization import _CONSTANT_REL, Normalization

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

    def batch(self, positions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]: ...

    def chunks(self, split: str, size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


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
    """The train and valid splits of a loaded dataset as normalised float32 tensors."""

    def __init__(self, dataset: Dataset, normalization: Normalization) -> None:
        self._x: dict[str, torch.Tensor] = {}
        self._y: dict[str, torch.Tensor] = {}
        for split, idx in _split_indices(dataset).items():
            self._x[split] = torch.from_numpy(normalization.normalize_inputs(dataset.inputs[idx]))
            self._y[split] = torch.from_numpy(normalization.normalize_outputs(dataset.outputs[idx]))

    @property
    def n_train(self) -> int:
        return int(self._x["train"].shape[0])

    def n_values(self, split: str) -> int:
        """Number of output values (trials x time x outputs) of ``split``."""
        return int(self._y[split].numel())

    def batch(self, positions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(positions)
        return self._x["train"][idx], self._y["train"][idx]

    def chunks(self, split: str, size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        x, y = self._x[split], self._y[split]
        for start in range(0, x.shape[0], size):
            yield x[start : start + size], y[start : start + size]


class StreamingData:
    """Minibatches and split pieces read from an open dataset file, normalised on the fly."""

    def __init__(self, source: StreamingDataset, normalization: Normalization) -> None:
        self._source = source
        self._norm = normalization
        self._idx = _split_indices(source)
        self._n_out = len(source.output_names)
        self._trial_bytes = source.n_time * (len(source.input_names) + self._n_out) * 4

    @property
    def n_train(self) -> int:
        return int(self._idx["train"].size)

    def n_values(self, split: str) -> int:
        return int(self._idx[split].size) * self._source.n_time * self._n_out

    def _tensors(self, trials: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self._source.read(trials)
        return (
            torch.from_numpy(self._norm.normalize_inputs(x)),
            torch.from_numpy(self._norm.normalize_outputs(y)),
        )

    def batch(self, positions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        pos = np.asarray(positions)
        x, y = self._tensors(self._idx["train"][pos.reshape(-1)])
        return x.view(*pos.shape, *x.shape[1:]), y.view(*pos.shape, *y.shape[1:])

    def chunks(self, split: str, size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Pieces of ``size`` trials, fewer where a piece would exceed :data:`PIECE_BYTES`."""
        idx = self._idx[split]
        size = max(1, min(size, PIECE_BYTES // self._trial_bytes))
        for start in range(0, idx.size, size):
            yield self._tensors(idx[start : start + size])


def _from_moments(mean: np.ndarray, std: np.ndarray) -> tuple[tuple[float, ...], ...]:
    """The constant-channel rule of :class:`Normalization` applied to streamed statistics."""
    constant = ~np.isfinite(std) | (std <= _CONSTANT_REL * np.maximum(1.0, np.abs(mean)))
    std = np.where(constant, 1.0, std)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def fit_normalization(dataset: Dataset | StreamingDataset) -> Normalization:
    """Per-channel statistics of the training trials (chunk by chunk for a streamed file).

    Equals :meth:`Normalization.fit` of the loaded dataset to float64 rounding.

    Raises:
        DatasetError: if the dataset has no split or no training trials.
    """
    if not isinstance(dataset, StreamingDataset):
        return Normalization.fit(dataset)
    idx = dataset.indices("train")
    if idx.size == 0:
        raise DatasetError("cannot fit a normalisation on zero trials; assign training trials")
    m_in, m_out = dataset.moments(idx)
    in_mean, in_std = _from_moments(m_in.mean, m_in.std)
    out_mean, out_std = _from_moments(m_out.mean, m_out.std)
    return Normalization(in_mean, in_std, out_mean, out_std)


def training_data(
    dataset: Dataset | StreamingDataset, normalization: Normalization
) -> InMemoryData | StreamingData:
    """Streaming data for a :class:`StreamingDataset`, in-memory tensors for a ``Dataset``."""
    if isinstance(dataset, StreamingDataset):
        return StreamingData(dataset, normalization)
    return InMemoryData(dataset, normalization)
