"""Per-channel z-scoring of inputs and outputs, fitted on the training trials only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.errors import CheckpointError, DatasetError

#: A channel whose standard deviation is at most this fraction of max(1, |mean|) is treated as
#: constant and gets std 1 (so it is only shifted, never blown up).
_CONSTANT_REL = 1e-12


def _stats(values: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    flat = values.reshape(-1, values.shape[-1]).astype(np.float64)
    mean = flat.mean(axis=0)
    std = flat.std(axis=0)
    constant = ~np.isfinite(std) | (std <= _CONSTANT_REL * np.maximum(1.0, np.abs(mean)))
    std = np.where(constant, 1.0, std)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


@dataclass(frozen=True)
class Normalization:
    """Per-channel mean and standard deviation of inputs and outputs, in physical units.

    ``normalised = (x - mean) / std``. Stored with every trained model (``normalization.json``).

    Attributes:
        input_mean: Mean of each input channel (input units, e.g. nA).
        input_std: Standard deviation of each input channel (> 0; 1 for constant channels).
        output_mean: Mean of each output channel (output units, e.g. mV).
        output_std: Standard deviation of each output channel (> 0; 1 for constant channels).
    """

    input_mean: tuple[float, ...]
    input_std: tuple[float, ...]
    output_mean: tuple[float, ...]
    output_std: tuple[float, ...]

    def __post_init__(self) -> None:
        for name in ("input_mean", "input_std", "output_mean", "output_std"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        if len(self.input_mean) != len(self.input_std) or len(self.output_mean) != len(
            self.output_std
        ):
            raise CheckpointError("normalization means and stds differ in length; refit it")
        stds = self.input_std + self.output_std
        if not all(np.isfinite(self.input_mean + self.output_mean)) or not all(
            np.isfinite(s) and s > 0 for s in stds
        ):
            raise CheckpointError("normalization has non-finite means or non-positive stds; refit")

    @classmethod
    def fit(
        cls, dataset: Dataset, *, trials: Sequence[int] | np.ndarray | None = None
    ) -> Normalization:
        """Fit on ``trials`` of ``dataset`` (default: its training split), pooling trials and time.

        Raises:
            DatasetError: if the dataset has no split (and no ``trials`` given) or no trials.
        """
        idx = dataset.indices("train") if trials is None else np.asarray(trials, dtype=np.int64)
        if idx.size == 0:
            raise DatasetError("cannot fit a normalisation on zero trials; assign training trials")
        in_mean, in_std = _stats(dataset.inputs[idx])
        out_mean, out_std = _stats(dataset.outputs[idx])
        return cls(in_mean, in_std, out_mean, out_std)

    @property
    def n_inputs(self) -> int:
        return len(self.input_mean)

    @property
    def n_outputs(self) -> int:
        return len(self.output_mean)

    def _check(self, x: np.ndarray, n: int, what: str) -> None:
        if x.shape[-1] != n:
            raise DatasetError(
                f"{what} have {x.shape[-1]} channels in shape {tuple(x.shape)}; the "
                f"normalisation has {n}"
            )

    def normalize_inputs(self, x: np.ndarray) -> np.ndarray:
        """``[..., input]`` physical inputs -> normalised float32 (same shape)."""
        x = np.asarray(x)
        self._check(x, self.n_inputs, "inputs")
        mean, std = np.asarray(self.input_mean), np.asarray(self.input_std)
        return ((x - mean) / std).astype(np.float32)

    def normalize_outputs(self, y: np.ndarray) -> np.ndarray:
        """``[..., output]`` physical outputs -> normalised float32 (same shape)."""
        y = np.asarray(y)
        self._check(y, self.n_outputs, "outputs")
        mean, std = np.asarray(self.output_mean), np.asarray(self.output_std)
        return ((y - mean) / std).astype(np.float32)

    def denormalize_outputs(self, y: np.ndarray) -> np.ndarray:
        """``[..., output]`` normalised outputs -> physical units float32 (same shape)."""
        y = np.asarray(y)
        self._check(y, self.n_outputs, "outputs")
        mean, std = np.asarray(self.output_mean), np.asarray(self.output_std)
        return (y * std + mean).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "input_mean": list(self.input_mean),
            "input_std": list(self.input_std),
            "output_mean": list(self.output_mean),
            "output_std": list(self.output_std),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normalization:
        """Inverse of :meth:`to_dict`.

        Raises:
            CheckpointError: on missing keys or invalid values.
        """
        keys = ("input_mean", "input_std", "output_mean", "output_std")
        if not isinstance(data, dict) or any(k not in data for k in keys):
            raise CheckpointError(f"normalization.json must hold the keys {', '.join(keys)}")
        try:
            return cls(*(tuple(float(v) for v in data[k]) for k in keys))
        except (TypeError, ValueError):
            raise CheckpointError("normalization.json holds non-numeric values; retrain") from None
