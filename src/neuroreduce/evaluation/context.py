"""What a task metric needs besides the arrays: the :class:`MetricContext`, and the
:class:`MetricInfo` that describes one registered metric.

The context carries the task's facts (time step, missing values, label set, repetitions,
groups) and the few settings of individual metrics (false-positive rates, spike threshold,
coincidence window, ...), so every metric has the one signature
``fn(y_true, y_pred, ctx) -> float | np.ndarray``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuroreduce.errors import ConfigError

#: Target kinds a metric can apply to, with the array layouts it is called with.
TARGET_KINDS: dict[str, str] = {
    "continuous": "y_true, y_pred float [trial, time, channel]",
    "rollout": "y_true float [trial, time, channel], y_pred [trial, horizon, time, channel]",
    "binary": "y_true {0, 1} [trial, time, channel], y_pred probabilities, same shape",
    "categorical": "y_true int [trial, time], y_pred probabilities [trial, time, K] or labels",
    "spike_times": "y_true, y_pred membrane voltage (mV) [trial, time], sampled at dt_ms",
}

#: Whether a smaller (``"min"``) or larger (``"max"``) value is better; ``None``: not an
#: objective (a table such as a confusion matrix, or a property of the data alone).
DIRECTIONS: tuple[str | None, ...] = ("min", "max", None)


@dataclass(frozen=True)
class MetricContext:
    """The task's facts and metric settings a metric is computed with.

    Attributes:
        dt_ms: Sampling interval of the time axis (ms).
        mask: bool array shaped like ``y_true``; False marks a missing value, which every
            metric ignores (its true and predicted values may be NaN). ``None``: nothing missing.
        n_classes: Number of categories ``K`` of a categorical target; ``None``: taken from the
            last axis of predicted probabilities, else from the largest label + 1.
        ignore_label: A label value that is skipped wherever it occurs in ``y_true`` (e.g. -1
            for an "unknown" behaviour).
        repetitions: int per trial, shape ``[trial]``; trials with equal ids are repetitions of
            one stimulus (needed by the intrinsic-reliability metrics).
        groups: int per trial, shape ``[trial]`` (individual, cell, session, ...).
        fp_rates: False-positive rates at which the true-positive rate is read off the ROC.
        spike_threshold: Voltage (mV) whose upward crossing is a spike.
        coincidence_window_ms: Half-width Delta (ms) of the window within which a predicted
            spike coincides with a true one.
        spike_exclusion_ms: Time (ms) before and after each spike left out of the
            subthreshold voltage error.
        horizons: Prediction horizon (steps ahead) of each rollout in ``y_pred``'s horizon
            axis; ``None``: ``1, 2, ..., H``.
        n_bootstrap: Number of bootstrap resamples for bootstrap errors.
        seed: Seed of the bootstrap resampling.
    """

    dt_ms: float = 1.0
    mask: np.ndarray | None = None
    n_classes: int | None = None
    ignore_label: int | None = None
    repetitions: np.ndarray | None = None
    groups: np.ndarray | None = None
    fp_rates: tuple[float, ...] = (0.01,)
    spike_threshold: float = 0.0
    coincidence_window_ms: float = 2.0
    spike_exclusion_ms: tuple[float, float] = (2.0, 5.0)
    horizons: tuple[int, ...] | None = None
    n_bootstrap: int = 10_000
    seed: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.dt_ms) and self.dt_ms > 0):
            raise ConfigError(f"MetricContext.dt_ms must be a positive number; got {self.dt_ms}")
        if not self.fp_rates or not all(0.0 <= float(f) <= 1.0 for f in self.fp_rates):
            raise ConfigError(f"fp_rates must be numbers in [0, 1]; got {self.fp_rates}")
        if not self.coincidence_window_ms > 0:
            raise ConfigError(
                f"coincidence_window_ms must be > 0; got {self.coincidence_window_ms}"
            )
        if len(self.spike_exclusion_ms) != 2 or min(self.spike_exclusion_ms) < 0:
            raise ConfigError(
                "spike_exclusion_ms must be two non-negative times (before, after); "
                f"got {self.spike_exclusion_ms}"
            )
        if self.n_classes is not None and self.n_classes < 1:
            raise ConfigError(f"n_classes must be >= 1; got {self.n_classes}")
        if self.horizons is not None and not all(int(h) >= 1 for h in self.horizons):
            raise ConfigError(f"horizons must be positive step counts; got {self.horizons}")
        if self.n_bootstrap < 1:
            raise ConfigError(f"n_bootstrap must be >= 1; got {self.n_bootstrap}")

    def mask_for(self, y_true: np.ndarray) -> np.ndarray:
        """The mask as a bool array of ``y_true``'s shape (all True when ``mask`` is None).

        Raises:
            ConfigError: if the mask's shape differs from ``y_true``'s.
        """
        shape = np.shape(y_true)
        if self.mask is None:
            return np.ones(shape, dtype=bool)
        m = np.asarray(self.mask)
        if m.shape != shape:
            raise ConfigError(f"mask shape {m.shape} differs from y_true shape {shape}")
        return m.astype(bool, copy=False)


MetricFn = Callable[[np.ndarray, np.ndarray, MetricContext], Any]


@dataclass(frozen=True)
class MetricInfo:
    """One entry of the task-metric registry.

    Attributes:
        name: Registry name, e.g. ``"roc_auc"``.
        kind: Target kind it applies to, a key of :data:`TARGET_KINDS`.
        direction: ``"min"`` or ``"max"`` (which is better, for sweeps), or ``None`` when the
            value is not an objective.
        per_channel: True if the result has one value per channel on its last axis.
        fn: ``fn(y_true, y_pred, ctx)``, called after the kind's shape checks.
        shape: Shape of the result in words, e.g. ``"[channel]"`` or ``"[fp_rate, channel]"``.
        description: One line: what it measures, in which units.
    """

    name: str
    kind: str
    direction: str | None
    per_channel: bool
    fn: MetricFn
    shape: str = "[channel]"
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in TARGET_KINDS:
            raise ConfigError(
                f"metric {self.name!r}: unknown target kind {self.kind!r}; "
                f"known: {', '.join(TARGET_KINDS)}"
            )
        if self.direction not in DIRECTIONS:
            raise ConfigError(
                f"metric {self.name!r}: direction must be 'min', 'max' or None; "
                f"got {self.direction!r}"
            )
