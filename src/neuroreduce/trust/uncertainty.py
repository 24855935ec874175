"""The seed ensemble as the surrogate: ensemble mean, member spread, calibrated intervals.

A trained run holds M members trained from different seeds. Their mean is usually a better
prediction than a typical member, and their disagreement (the spread, the standard deviation
over members) says where the ensemble is unsure. The spread is not an error bar by itself: it is
*calibrated* on held-out trials by split-conformal prediction (Vovk et al. 2005; Angelopoulos &
Bates 2023, "Conformal prediction: a gentle introduction", Found. Trends ML 16:494), per output
channel:

    score    s_i = |y_i - mean_i| / max(spread_i, floor)          (calibration samples i)
    q_hat    = the ceil((n + 1) * level) / n empirical quantile of s
    interval = mean +- q_hat * max(spread, floor)

On exchangeable data the interval covers a fraction >= ``level`` of new values. Calibration
samples are whole trials' time points, which are not independent, so coverage on held-out
*families* is measured, never assumed (:func:`coverage`, :func:`reliability`).

Shapes: predictions ``[member, trial, time, output]``; truths ``[trial, time, output]``; every
value in output units (mV for the connectome scenarios).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from neuroreduce.errors import ConfigError

#: Nominal coverage levels of the reliability diagram.
RELIABILITY_LEVELS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


@dataclass(frozen=True)
class EnsemblePrediction:
    """An ensemble's prediction: its mean, the members' spread and (optionally) intervals.

    Attributes:
        mean: Mean over members, ``[trial, time, output]`` (output units).
        spread: Standard deviation over members (ddof 0), same shape (output units).
        members: Every member's prediction, ``[member, trial, time, output]``.
        lower: Lower end of the calibrated interval, same shape as ``mean``; ``None`` without a
            calibration.
        upper: Upper end, likewise.
        level: Nominal coverage of ``[lower, upper]`` (e.g. 0.9); ``None`` without intervals.
        range_report: How far each input trial lies from the training inputs
            (:class:`~neuroreduce.trust.range_check.RangeReport`); ``None`` if not checked.
    """

    mean: np.ndarray
    spread: np.ndarray
    members: np.ndarray
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    level: float | None = None
    range_report: Any = None

    @property
    def trial_spread(self) -> np.ndarray:
        """Root-mean-square spread of each trial over time and outputs, ``[trial]``."""
        return trial_spread(self.spread)


@dataclass(frozen=True)
class Calibration:
    """Conformal scale of the ensemble spread, per output channel.

    Attributes:
        level: Nominal coverage the scales were fitted for (0 < level < 1).
        scale: ``q_hat`` per output channel (dimensionless), length ``n_outputs``.
        floor: Smallest spread used per output channel (output units): a fraction of the
            channel's calibration-set standard deviation, so a unanimous ensemble still gets a
            non-zero interval.
        n_samples: Calibration samples (trial x time points) per output channel.
    """

    level: float
    scale: tuple[float, ...]
    floor: tuple[float, ...]
    n_samples: int

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "scale": list(self.scale), "floor": list(self.floor),
                "n_samples": self.n_samples}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        try:
            return cls(float(data["level"]), tuple(float(v) for v in data["scale"]),
                       tuple(float(v) for v in data["floor"]), int(data["n_samples"]))
        except (KeyError, TypeError, ValueError):
            raise ConfigError("calibration data must have level, scale, floor and n_samples; "
                              "re-run `neuroreduce evaluate` to recompute it") from None


def _check_members(predictions: np.ndarray) -> np.ndarray:
    p = np.asarray(predictions)
    if p.ndim != 4:
        raise ConfigError(f"ensemble predictions must be [member, trial, time, output]; got "
                          f"shape {p.shape}")
    return p


def _check_level(level: float) -> float:
    if not (isinstance(level, int | float) and 0.0 < float(level) < 1.0):
        raise ConfigError(f"coverage level must be a number in (0, 1), e.g. 0.9; got {level!r}")
    return float(level)


def ensemble_prediction(predictions: np.ndarray,
                        calibration: Calibration | None = None) -> EnsemblePrediction:
    """Mean and spread of member predictions ``[member, trial, time, output]``, with the
    calibrated interval when ``calibration`` is given."""
    p = _check_members(predictions)
    mean = p.mean(axis=0, dtype=np.float64).astype(np.float32)
    spread = p.std(axis=0, dtype=np.float64).astype(np.float32)
    if calibration is None:
        return EnsemblePrediction(mean, spread, p)
    if len(calibration.scale) != p.shape[3]:
        raise ConfigError(f"calibration has {len(calibration.scale)} outputs, the predictions "
                          f"{p.shape[3]}; recalibrate on this model's outputs")
    half = np.maximum(spread, np.asarray(calibration.floor, np.float32)) * np.asarray(
        calibration.scale, np.float32)
    return EnsemblePrediction(mean, spread, p, mean - half, mean + half, calibration.level)


def calibrate(predictions: np.ndarray, truth: np.ndarray, *, level: float = 0.9,
              floor_fraction: float = 0.01) -> Calibration:
    """Fit the conformal scale of the spread on held-out trials (see the module docstring).

    Args:
        predictions: ``[member, trial, time, output]`` on calibration trials (e.g. the valid
            split).
        truth: ``[trial, time, output]``; NaN marks a missing value (skipped).
        level: Nominal coverage of the intervals.
        floor_fraction: The spread floor as a fraction of each channel's standard deviation.

    Raises:
        ConfigError: on mismatched shapes, a bad level, fewer than 2 members or no known value.
    """
    p = _check_members(predictions)
    level = _check_level(level)
    y = np.asarray(truth, dtype=np.float64)
    if p.shape[1:] != y.shape:
        raise ConfigError(f"truth {y.shape} does not match predictions {p.shape[1:]}")
    if p.shape[0] < 2:
        raise ConfigError("uncertainty needs an ensemble of at least 2 seeds (train --seeds 5)")
    ens = ensemble_prediction(p)
    scales, floors, counts = [], [], []
    for j in range(y.shape[2]):
        known = np.isfinite(y[..., j])
        if not known.any():
            raise ConfigError(f"output {j} has no known value to calibrate on")
        sd = float(np.std(y[..., j][known]))
        floor = max(floor_fraction * sd, 1e-12)
        score = np.abs(y[..., j] - ens.mean[..., j])[known] / np.maximum(
            ens.spread[..., j][known], floor)
        n = score.size
        rank = min(1.0, math.ceil((n + 1) * level) / n)
        scales.append(float(np.quantile(score, rank, method="higher")))
        floors.append(floor)
        counts.append(n)
    return Calibration(level, tuple(scales), tuple(floors), int(min(counts)))


def coverage(prediction: EnsemblePrediction, truth: np.ndarray) -> float:
    """Fraction of known true values inside ``[lower, upper]``."""
    if prediction.lower is None or prediction.upper is None:
        raise ConfigError("this prediction has no intervals; pass a calibration")
    y = np.asarray(truth, dtype=np.float64)
    known = np.isfinite(y)
    inside = (y >= prediction.lower) & (y <= prediction.upper)
    return float(inside[known].mean()) if known.any() else float("nan")


def reliability(predictions: np.ndarray, truth_calibration: np.ndarray,
                predictions_test: np.ndarray, truth_test: np.ndarray,
                levels: Sequence[float] = RELIABILITY_LEVELS) -> list[dict[str, float]]:
    """Observed coverage on test trials of intervals calibrated at each nominal level.

    Returns:
        ``[{"nominal": level, "observed": coverage}, ...]`` — the reliability diagram's points
        (a calibrated ensemble lies on the diagonal).
    """
    out = []
    for level in levels:
        cal = calibrate(predictions, truth_calibration, level=level)
        pred = ensemble_prediction(predictions_test, cal)
        out.append({"nominal": float(level), "observed": coverage(pred, truth_test)})
    return out


def trial_errors(mean: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """RMSE of each trial's prediction over time and outputs (known values), ``[trial]``."""
    y = np.asarray(truth, dtype=np.float64)
    err = (np.asarray(mean, dtype=np.float64) - y) ** 2
    known = np.isfinite(y)
    return np.sqrt(np.array([e[k].mean() if k.any() else np.nan for e, k in zip(err, known,
                                                                                  strict=True)]))


def trial_spread(spread: np.ndarray, truth: np.ndarray | None = None) -> np.ndarray:
    """Root-mean-square spread of each trial, ``[trial]``, over the samples whose true value is
    known (all samples when ``truth`` is ``None``)."""
    s2 = np.asarray(spread, dtype=np.float64) ** 2
    if truth is None:
        return np.sqrt(s2.mean(axis=(1, 2)))
    known = np.isfinite(np.asarray(truth, dtype=np.float64))
    return np.sqrt(np.array([v[k].mean() if k.any() else np.nan for v, k in zip(s2, known,
                                                                              strict=True)]))


def rank_correlation(signal: np.ndarray, error: np.ndarray) -> float:
    """Spearman rank correlation between an uncertainty signal and the real error (per trial);
    NaN with fewer than 3 trials or a constant signal."""
    s, e = np.asarray(signal, np.float64), np.asarray(error, np.float64)
    ok = np.isfinite(s) & np.isfinite(e)
    if ok.sum() < 3 or np.ptp(s[ok]) == 0 or np.ptp(e[ok]) == 0:
        return float("nan")
    return float(spearmanr(s[ok], e[ok]).statistic)


def ensemble_gain(predictions: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Pooled RMSE of the ensemble mean against the members' (output units).

    Returns:
        ``{"ensemble_mean_rmse", "member_rmse_mean", "member_rmse_best", "gain"}`` where
        ``gain = 1 - ensemble_mean_rmse / member_rmse_mean`` (0.4: the mean is 40 % more
        accurate than the average member).
    """
    p = _check_members(predictions)
    y = np.asarray(truth, dtype=np.float64)
    known = np.isfinite(y)

    def pooled(pred: np.ndarray) -> float:
        return float(np.sqrt(np.mean((pred.astype(np.float64)[known] - y[known]) ** 2)))

    members = np.array([pooled(m) for m in p])
    ens = pooled(p.mean(axis=0, dtype=np.float64))
    mean_member = float(np.mean(members))
    return {"ensemble_mean_rmse": ens, "member_rmse_mean": mean_member,
            "member_rmse_best": float(members.min()),
            "gain": float(1.0 - ens / mean_member) if mean_member > 0 else float("nan")}
