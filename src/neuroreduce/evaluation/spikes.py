"""Spike timing of voltage traces: spike extraction, coincidence factor, reliability, errors.

A spike is an upward crossing of a threshold (mV); its time (ms) is interpolated linearly between
the two samples around the crossing. Spike trains are compared by the coincidence factor
(Kistler et al. 1997, Neural Comput 9:1015; Jolivet et al. 2006, J Neurophysiol 96:3008;
Jolivet et al. 2008, J Neurosci Methods 169:417, the QSNMC 2007 score):

    Gamma = (N_coinc - <N_coinc>) / (0.5 * (1 - 2 nu Delta) * (N_data + N_model)),
    <N_coinc> = 2 nu Delta N_data,

where N_coinc counts the data spikes with a model spike within +-Delta (each data spike counts
at most once), nu = N_model / T is the model's rate and T the trace duration. Gamma is 1 for
identical trains and 0 on average for a Poisson model of rate nu. Repetitions of one stimulus
give the intrinsic reliability Gamma_int (mean Gamma over all ordered pairs of repetitions) and
the normalised Gamma_A = mean_k Gamma(rep k, model) / Gamma_int.

Traces are ``[trial, time]`` sampled every ``dt_ms``; their duration is ``(time - 1) * dt_ms``
(the project's grid includes both ends).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from neuroreduce.errors import ConfigError
from neuroreduce.evaluation.context import MetricContext


def spike_times(v: np.ndarray, *, dt_ms: float, threshold: float = 0.0) -> np.ndarray:
    """Times (ms) of the upward crossings of ``threshold`` by one trace.

    Args:
        v: Voltage (mV), shape ``[time]``; NaN samples (e.g. masked ones) make no crossing.
        dt_ms: Sampling interval (ms).
        threshold: Crossing level (mV); a crossing is ``v[i-1] < threshold <= v[i]``.

    Returns:
        Sorted spike times (ms), shape ``[spike]``.
    """
    x = np.asarray(v, dtype=np.float64)
    if x.ndim != 1:
        raise ConfigError(f"spike_times needs one trace [time]; got shape {x.shape}")
    before, after = x[:-1], x[1:]
    with np.errstate(invalid="ignore"):
        i = np.flatnonzero((before < threshold) & (after >= threshold))
    frac = (threshold - before[i]) / (after[i] - before[i])
    return (i + frac) * dt_ms


def spike_trains(v: np.ndarray, *, dt_ms: float, threshold: float = 0.0) -> list[np.ndarray]:
    """:func:`spike_times` of each trial of ``v`` (mV, ``[trial, time]``)."""
    x = np.asarray(v, dtype=np.float64)
    if x.ndim != 2:
        raise ConfigError(f"spike_trains needs traces [trial, time]; got shape {x.shape}")
    return [spike_times(row, dt_ms=dt_ms, threshold=threshold) for row in x]


def n_coincidences(data: np.ndarray, model: np.ndarray, *, window_ms: float) -> int:
    """Number of data spikes with at least one model spike within ``+-window_ms``."""
    d = np.asarray(data, dtype=np.float64)
    m = np.sort(np.asarray(model, dtype=np.float64))
    if d.size == 0 or m.size == 0:
        return 0
    j = np.searchsorted(m, d)
    left = np.abs(d - m[np.clip(j - 1, 0, m.size - 1)])
    right = np.abs(m[np.clip(j, 0, m.size - 1)] - d)
    return int(np.count_nonzero(np.minimum(left, right) <= window_ms))


def coincidence_factor(
    data: np.ndarray, model: np.ndarray, *, window_ms: float, duration_ms: float
) -> float:
    """Coincidence factor Gamma of a model spike train against a data spike train.

    Args:
        data: Data spike times (ms), ``[spike]``.
        model: Model spike times (ms), ``[spike]``.
        window_ms: Coincidence half-window Delta (ms).
        duration_ms: Duration T of the trains (ms), for the model rate nu = N_model / T.

    Returns:
        Gamma (dimensionless, 1 = identical); NaN when neither train has a spike or when
        2 nu Delta >= 1 (the model fires so often that chance explains every coincidence).
    """
    n_data, n_model = len(data), len(model)
    if duration_ms <= 0:
        raise ConfigError(f"duration_ms must be > 0; got {duration_ms}")
    nu = n_model / duration_ms
    norm = 1.0 - 2.0 * nu * window_ms
    if n_data + n_model == 0 or norm <= 0:
        return float("nan")
    expected = 2.0 * nu * window_ms * n_data
    coinc = n_coincidences(data, model, window_ms=window_ms)
    return float((coinc - expected) / (0.5 * norm * (n_data + n_model)))


def _nanmean(values: Sequence[float] | np.ndarray) -> float:
    """Mean of the non-NaN values; NaN (without a warning) when there is none."""
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else float("nan")


def intrinsic_reliability(
    repetitions: Sequence[np.ndarray], *, window_ms: float, duration_ms: float
) -> float:
    """Gamma_int: mean Gamma over all ordered pairs of distinct repetitions (NaN if < 2)."""
    values = [
        coincidence_factor(a, b, window_ms=window_ms, duration_ms=duration_ms)
        for a, b in itertools.permutations(repetitions, 2)
    ]
    return _nanmean(values)


def normalised_gamma(
    repetitions: Sequence[np.ndarray],
    models: Sequence[np.ndarray],
    *,
    window_ms: float,
    duration_ms: float,
) -> float:
    """Gamma_A = mean_k Gamma(data = rep k, model = model k) / Gamma_int.

    Args:
        repetitions: Data spike trains of the repetitions of one stimulus (ms).
        models: Model spike train predicted for each repetition (ms), same length; a
            deterministic model predicts the same train for all of them.
    """
    if len(models) != len(repetitions):
        raise ConfigError(
            f"normalised_gamma needs one model train per repetition; "
            f"got {len(models)} and {len(repetitions)}"
        )
    g_int = intrinsic_reliability(repetitions, window_ms=window_ms, duration_ms=duration_ms)
    g = [
        coincidence_factor(r, m, window_ms=window_ms, duration_ms=duration_ms)
        for r, m in zip(repetitions, models, strict=True)
    ]
    return _nanmean(g) / g_int if g_int > 0 else float("nan")


def bootstrap_se(values: np.ndarray, *, n_resamples: int = 10_000, seed: int = 0) -> float:
    """Bootstrap standard error of the mean of ``values`` (NaN entries dropped).

    ``n_resamples`` resamples with replacement, drawn from ``numpy.random.default_rng(seed)``;
    returns the standard deviation (ddof=1) of their means (NaN with fewer than 2 values).
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size < 2 or n_resamples < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    step = max(1, 2_000_000 // x.size)  # bound memory: ~16 MB of indices per chunk
    for start in range(0, n_resamples, step):
        stop = min(start + step, n_resamples)
        means[start:stop] = x[rng.integers(0, x.size, size=(stop - start, x.size))].mean(axis=1)
    return float(means.std(ddof=1))


def subthreshold_mask(
    n_time: int, spikes: Sequence[np.ndarray], *, dt_ms: float, exclude_ms: tuple[float, float]
) -> np.ndarray:
    """bool ``[time]``: True at samples farther than ``exclude_ms`` (before, after) from every
    spike of ``spikes`` (several trains, times in ms)."""
    s = np.concatenate([np.asarray(x, dtype=np.float64).ravel() for x in spikes] or [[]])
    before, after = exclude_ms
    lo = np.clip(np.ceil((s - before) / dt_ms - 1e-9), 0, n_time).astype(np.int64)
    hi = np.clip(np.floor((s + after) / dt_ms + 1e-9) + 1, 0, n_time).astype(np.int64)
    edges = np.zeros(n_time + 1, dtype=np.int64)
    np.add.at(edges, lo, 1)
    np.add.at(edges, hi, -1)
    return np.cumsum(edges)[:n_time] == 0


# --- scores of voltage traces [trial, time], with the task's MetricContext ---------------------


def _trains(v: np.ndarray, ctx: MetricContext) -> list[np.ndarray]:
    """Spike trains of traces ``[trial, time]``, masked samples (NaN'd) making no crossing."""
    x = np.asarray(v, dtype=np.float64)
    if ctx.mask is not None:
        x = np.where(ctx.mask_for(x), x, np.nan)
    return spike_trains(x, dt_ms=ctx.dt_ms, threshold=ctx.spike_threshold)


def _durations(v: np.ndarray, ctx: MetricContext) -> np.ndarray:
    """Duration (ms) of each trial ``[trial]``: ``(known samples - 1) * dt`` (all samples
    without a mask; a piece padded to a longer trial counts only its own samples)."""
    shape = np.shape(v)
    n = np.full(shape[0], shape[1]) if ctx.mask is None else ctx.mask_for(v).sum(axis=1)
    return np.maximum(n - 1, 1) * ctx.dt_ms


def mean_gamma(v_true: np.ndarray, v_pred: np.ndarray, ctx: MetricContext) -> float:
    """Mean over trials of :func:`gamma_per_trial` (trials without any spike skipped)."""
    return _nanmean(gamma_per_trial(v_true, v_pred, ctx))


def gamma_per_trial(v_true: np.ndarray, v_pred: np.ndarray, ctx: MetricContext) -> np.ndarray:
    """Gamma of each trial's predicted spikes against its true spikes, ``[trial]``."""
    return np.array(
        [
            coincidence_factor(d, m, window_ms=ctx.coincidence_window_ms, duration_ms=dur)
            for d, m, dur in zip(_trains(v_true, ctx), _trains(v_pred, ctx),
                                 _durations(v_true, ctx), strict=True)
        ]
    )


def repetition_sets(ctx: MetricContext, n_trials: int) -> list[np.ndarray]:
    """Trial indices of each stimulus repeated at least twice, in increasing id order.

    Raises:
        ConfigError: if ``ctx.repetitions`` is missing, has the wrong length, or no stimulus
            is repeated.
    """
    if ctx.repetitions is None:
        raise ConfigError("this spike metric needs MetricContext.repetitions (id per trial)")
    reps = np.asarray(ctx.repetitions)
    if reps.shape != (n_trials,):
        raise ConfigError(f"repetitions must have shape ({n_trials},); got {reps.shape}")
    ids, counts = np.unique(reps, return_counts=True)
    sets = [np.flatnonzero(reps == i) for i in ids[counts >= 2]]
    if not sets:
        raise ConfigError("no stimulus is repeated: repetitions holds only distinct ids")
    return sets


def gamma_intrinsic(v_true: np.ndarray, v_pred: np.ndarray, ctx: MetricContext) -> float:
    """Gamma_int of the true traces, averaged over repeated stimuli (``v_pred`` is unused)."""
    trains = _trains(v_true, ctx)
    dur = _durations(v_true, ctx)
    return _nanmean(
        [
            intrinsic_reliability(
                [trains[i] for i in s], window_ms=ctx.coincidence_window_ms,
                duration_ms=float(dur[s].min()),
            )
            for s in repetition_sets(ctx, len(trains))
        ]
    )


def gamma_normalised(v_true: np.ndarray, v_pred: np.ndarray, ctx: MetricContext) -> float:
    """Gamma_A per repeated stimulus (see :func:`normalised_gamma`), averaged over stimuli."""
    true, pred = _trains(v_true, ctx), _trains(v_pred, ctx)
    dur = _durations(v_true, ctx)
    return _nanmean(
        [
            normalised_gamma(
                [true[i] for i in s],
                [pred[i] for i in s],
                window_ms=ctx.coincidence_window_ms,
                duration_ms=float(dur[s].min()),
            )
            for s in repetition_sets(ctx, len(true))
        ]
    )


def gamma_bootstrap_se(v_true: np.ndarray, v_pred: np.ndarray, ctx: MetricContext) -> float:
    """Bootstrap standard error of the mean per-trial Gamma (``ctx.n_bootstrap``, ``ctx.seed``)."""
    return bootstrap_se(
        gamma_per_trial(v_true, v_pred, ctx), n_resamples=ctx.n_bootstrap, seed=ctx.seed
    )


def gamma_normalised_se(v_true: np.ndarray, v_pred: np.ndarray, ctx: MetricContext) -> float:
    """Bootstrap standard error of Gamma_A: each repeated trial's Gamma(rep k, model k) divided
    by its stimulus's Gamma_int, resampled over those trials (Gamma_int held fixed)."""
    true, pred = _trains(v_true, ctx), _trains(v_pred, ctx)
    dur = _durations(v_true, ctx)
    w = ctx.coincidence_window_ms
    values: list[float] = []
    for s in repetition_sets(ctx, len(true)):
        d = float(dur[s].min())
        g_int = intrinsic_reliability([true[i] for i in s], window_ms=w, duration_ms=d)
        if not g_int > 0:
            continue
        values += [coincidence_factor(true[i], pred[i], window_ms=w, duration_ms=d) / g_int
                   for i in s]
    return bootstrap_se(np.asarray(values), n_resamples=ctx.n_bootstrap, seed=ctx.seed)


def spike_count_error(v_true: np.ndarray, v_pred: np.ndarray, ctx: MetricContext) -> float:
    """Mean over trials of ``|N_pred - N_true|`` (spikes per trial)."""
    n_true = np.array([len(s) for s in _trains(v_true, ctx)])
    n_pred = np.array([len(s) for s in _trains(v_pred, ctx)])
    return float(np.mean(np.abs(n_pred - n_true)))


def subthreshold_rmse(v_true: np.ndarray, v_pred: np.ndarray, ctx: MetricContext) -> float:
    """Voltage RMSE (mV) over the samples away from every true and predicted spike.

    Samples from ``ctx.spike_exclusion_ms[0]`` before to ``[1]`` after each spike of either
    trace of a trial, and masked samples, are left out. NaN if nothing is left.
    """
    t = np.asarray(v_true, dtype=np.float64)
    p = np.asarray(v_pred, dtype=np.float64)
    keep = ctx.mask_for(t).copy()
    for k, (a, b) in enumerate(zip(_trains(t, ctx), _trains(p, ctx), strict=True)):
        keep[k] &= subthreshold_mask(
            t.shape[1], [a, b], dt_ms=ctx.dt_ms, exclude_ms=ctx.spike_exclusion_ms
        )
    if not keep.any():
        return float("nan")
    return float(np.sqrt(np.mean((t[keep] - p[keep]) ** 2)))
