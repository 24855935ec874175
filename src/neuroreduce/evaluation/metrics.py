"""Error metrics between true and predicted sequences, chosen by name from a registry.

All metrics take arrays of shape ``[trial, time, output]`` (true, predicted; same units) and
return one value per output channel, shape ``[output]``. Pooled (all-channel) values come from
:func:`pooled`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from neuroreduce.errors import ConfigError, unknown_name_error

Metric = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _check(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.shape != p.shape or t.ndim != 3:
        raise ConfigError(
            f"metrics need true and predicted arrays of equal shape [trial, time, output]; "
            f"got {t.shape} and {p.shape}"
        )
    return t, p


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Root mean squared error per output channel (units of the data), shape ``[output]``."""
    t, p = _check(y_true, y_pred)
    return np.sqrt(np.mean((t - p) ** 2, axis=(0, 1)))


def value_range(y_true: np.ndarray) -> np.ndarray:
    """Peak-to-peak range of each output channel over all trials and times, ``[output]``."""
    t = np.asarray(y_true, dtype=np.float64)
    return t.max(axis=(0, 1)) - t.min(axis=(0, 1))


def nrmse(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """RMSE divided by each channel's range (max - min of the true signal), ``[output]``.

    A channel with zero range gets NaN (its error cannot be normalised).
    """
    r = value_range(y_true)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(r > 0, rmse(y_true, y_pred) / np.where(r > 0, r, 1.0), np.nan)


def explained_variance(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """1 - Var(true - pred) / Var(true) per output channel, ``[output]`` (NaN if Var(true)=0)."""
    t, p = _check(y_true, y_pred)
    var = t.var(axis=(0, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(var > 0, 1.0 - (t - p).var(axis=(0, 1)) / np.where(var > 0, var, 1), np.nan)


METRICS: dict[str, Metric] = {
    "rmse": rmse,
    "nrmse": nrmse,
    "explained_variance": explained_variance,
}


def get_metric(name: str) -> Metric:
    """Return the metric called ``name`` (error lists the known ones)."""
    try:
        return METRICS[name]
    except KeyError:
        raise unknown_name_error("metric", name, list(METRICS)) from None


def pooled(name: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Metric ``name`` over all output channels pooled into one channel."""
    t, p = _check(y_true, y_pred)
    return float(get_metric(name)(t.reshape(t.shape[0], -1, 1), p.reshape(p.shape[0], -1, 1))[0])
