"""Error metrics between true and predicted sequences, chosen by name from a registry.

All metrics take arrays of shape ``[trial, time, output]`` (true, predicted; same units) and
return one value per output channel, shape ``[output]``. Pooled (all-channel) values come from
:func:`pooled`.

The ``masked_*`` variants take a bool ``mask`` of the same shape (False = missing value, ignored;
true and predicted values there may be NaN) and equal the plain ones bit for bit when the mask is
``None`` or all True. :func:`rollout_rmse` scores multi-step rollouts per horizon. The registry
of all task metrics (continuous, binary, categorical, spike timing) is
:mod:`neuroreduce.evaluation.registry`; :data:`METRICS` here stays the continuous trio.
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


# --- masked variants (missing values ignored) -------------------------------------------------


def _mask(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """The mask as bool, or None when nothing is masked (so callers take the plain path)."""
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.shape != shape:
        raise ConfigError(f"mask shape {m.shape} differs from the data shape {shape}")
    m = m.astype(bool, copy=False)
    return None if m.all() else m


def _masked_mean(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Mean over trial and time of ``x`` where ``m`` holds, ``[output]``; NaN where none does."""
    n = m.sum(axis=(0, 1))
    total = np.where(m, x, 0.0).sum(axis=(0, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def _masked_rmse(t: np.ndarray, p: np.ndarray, m: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        d2 = np.where(m, (t - p) ** 2, 0.0)
    return np.sqrt(_masked_mean(d2, m))


def masked_rmse(
    y_true: np.ndarray, y_pred: np.ndarray, *, mask: np.ndarray | None = None
) -> np.ndarray:
    """RMSE per output channel over the unmasked values (units of the data), ``[output]``.

    Args:
        y_true: ``[trial, time, output]``.
        y_pred: Same shape.
        mask: bool, same shape; False = missing (ignored). A channel with no value gets NaN.
    """
    t, p = _check(y_true, y_pred)
    m = _mask(mask, t.shape)
    return rmse(t, p) if m is None else _masked_rmse(t, p, m)


def masked_value_range(y_true: np.ndarray, *, mask: np.ndarray | None = None) -> np.ndarray:
    """Range (max - min) of each channel over its unmasked values, ``[output]`` (NaN if none)."""
    t = np.asarray(y_true, dtype=np.float64)
    m = _mask(mask, t.shape)
    if m is None:
        return value_range(t)
    hi = np.where(m, t, -np.inf).max(axis=(0, 1))
    lo = np.where(m, t, np.inf).min(axis=(0, 1))
    return np.where(m.any(axis=(0, 1)), hi - lo, np.nan)


def masked_nrmse(
    y_true: np.ndarray, y_pred: np.ndarray, *, mask: np.ndarray | None = None
) -> np.ndarray:
    """:func:`masked_rmse` divided by :func:`masked_value_range`, ``[output]`` (NaN if flat)."""
    t, p = _check(y_true, y_pred)
    m = _mask(mask, t.shape)
    if m is None:
        return nrmse(t, p)
    r = masked_value_range(t, mask=m)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(r > 0, _masked_rmse(t, p, m) / np.where(r > 0, r, 1.0), np.nan)


def _masked_var(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    mean = _masked_mean(x, m)
    with np.errstate(invalid="ignore"):
        return _masked_mean((x - mean) ** 2, m)


def masked_explained_variance(
    y_true: np.ndarray, y_pred: np.ndarray, *, mask: np.ndarray | None = None
) -> np.ndarray:
    """1 - Var(true - pred) / Var(true) over the unmasked values, ``[output]`` (NaN if flat)."""
    t, p = _check(y_true, y_pred)
    m = _mask(mask, t.shape)
    if m is None:
        return explained_variance(t, p)
    var = _masked_var(t, m)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = _masked_var(t - p, m) / np.where(var > 0, var, 1)
    return np.where(var > 0, 1.0 - ratio, np.nan)


def rollout_rmse(
    y_true: np.ndarray, y_pred: np.ndarray, *, mask: np.ndarray | None = None
) -> np.ndarray:
    """RMSE of multi-step rollouts per horizon and channel, ``[horizon, output]``.

    Args:
        y_true: ``[trial, time, output]``.
        y_pred: ``[trial, horizon, time, output]``: ``y_pred[:, h, t]`` predicts ``y_true[:, t]``
            from a rollout started ``horizons[h]`` steps earlier; NaN where no such rollout
            exists (e.g. the first steps), which is treated as missing.
        mask: bool ``[trial, time, output]``; False = missing true value (ignored).
    """
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.ndim != 3 or p.ndim != 4 or p.shape[0] != t.shape[0] or p.shape[2:] != t.shape[1:]:
        raise ConfigError(
            "rollout_rmse needs y_true [trial, time, output] and y_pred "
            f"[trial, horizon, time, output]; got {t.shape} and {p.shape}"
        )
    m = _mask(mask, t.shape)
    base = np.ones(t.shape, dtype=bool) if m is None else m
    return np.stack(
        [_masked_rmse(t, p[:, h], base & np.isfinite(p[:, h])) for h in range(p.shape[1])]
    ).reshape(p.shape[1], t.shape[2])
