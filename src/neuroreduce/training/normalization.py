"""Per-channel z-scoring of inputs and outputs, fitted on the training trials only."""

from __future__ import annotations

import warnings
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
    if values.shape[-1] == 0:  # no channels (e.g. a task whose inputs are all spike events)
        return (), ()
    flat = values.reshape(-1, values.shape[-1]).astype(np.float64)
    if np.isnan(flat).any():  # missing values: statistics of the recorded ones
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nan_to_num(np.nanmean(flat, axis=0))
            std = np.nanstd(flat, axis=0)
    else:
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
        field_stats: Further continuous fields (typed datasets): ``(name, mean, std)`` each.
    """

    input_mean: tuple[float, ...]
    input_std: tuple[float, ...]
    output_mean: tuple[float, ...]
    output_std: tuple[float, ...]
    field_stats: tuple[tuple[str, tuple[float, ...], tuple[float, ...]], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "field_stats",
            tuple(
                (str(n), tuple(float(v) for v in m), tuple(float(v) for v in sd))
                for n, m, sd in self.field_stats
            ),
        )
        for name, mean, std in self.field_stats:
            if len(mean) != len(std) or not all(np.isfinite(mean)) or not all(
                np.isfinite(v) and v > 0 for v in std
            ):
                raise CheckpointError(f"normalization of field {name!r} is invalid; refit it")
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
        out_mean, out_std = _stats(dataset.masked_values("outputs", idx)
                                   if any(f.spec.of == "outputs" for f in dataset.fields)
                                   else dataset.outputs[idx])
        return cls(in_mean, in_std, out_mean, out_std)

    def with_fields(self, dataset: Dataset, names: Sequence[str], idx: np.ndarray) -> Normalization:
        """This normalisation plus statistics of continuous fields ``names`` over trials ``idx``."""
        from dataclasses import replace

        stats = tuple((n, *_stats(dataset.masked_values(n, idx))) for n in names)
        return replace(self, field_stats=stats)

    def _field(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        for n, mean, std in self.field_stats:
            if n == name:
                return np.asarray(mean), np.asarray(std)
        raise CheckpointError(f"the normalisation has no statistics of field {name!r}; retrain")

    def normalize_field(self, name: str, x: np.ndarray) -> np.ndarray:
        """``[..., channel]`` physical values of continuous field ``name`` -> z-scored float32."""
        mean, std = self._field(name)
        x = np.asarray(x)
        self._check(x, mean.size, f"field {name!r} values")
        return ((x - mean) / std).astype(np.float32)

    def denormalize_field(self, name: str, y: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`normalize_field`."""
        mean, std = self._field(name)
        return (np.asarray(y) * std + mean).astype(np.float32)

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
            **(
                {"fields": [[n, list(m), list(sd)] for n, m, sd in self.field_stats]}
                if self.field_stats
                else {}
            ),
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
            fields = tuple((n, tuple(m), tuple(sd)) for n, m, sd in data.get("fields", []))
            return cls(*(tuple(float(v) for v in data[k]) for k in keys), field_stats=fields)
        except (TypeError, ValueError):
            raise CheckpointError("normalization.json holds non-numeric values; retrain") from None
