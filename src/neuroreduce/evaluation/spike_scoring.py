"""Spike-timing scores of typed-task heads: spikes from model outputs "as they come".

The spike-timing metrics of the registry (kind ``spike_times``: ``gamma``, ``gamma_intrinsic``,
``gamma_normalised``, ``gamma_normalised_se``, ``gamma_bootstrap_se``, ``spike_count_error``,
``subthreshold_rmse``) take voltage traces ``[trial, time]``. A model's heads are scored with
them as follows:

* a continuous head in mV (a voltage): each channel as it is; a spike is an upward crossing of
  :attr:`SpikeScoring.spike_threshold` (default 0 mV) by the true and by the predicted trace;
* a binary head (a spike train, e.g. the field ``spikes``): a true spike is a sample holding 1;
  a predicted spike is a sample where the predicted probability crosses
  :attr:`SpikeScoring.probability_threshold` upwards, 0.5 by default or ``"count"``: the
  threshold at which the training trials' predicted spike count equals their true count. Both
  become event traces (1 at the spike samples) that cross 0.5 at the same place, so data and
  model spike times are taken the same way. ``subthreshold_rmse`` does not apply.

Repetitions: trials with equal ids of the dataset's group field :attr:`SpikeScoring.group`
(``"stimulus"`` in the spike-timing layout) are repetitions of one stimulus
(:attr:`~neuroreduce.evaluation.context.MetricContext.repetitions`); every metric is also given
per stimulus (``per_stimulus``), the reliability ones on that stimulus's repetitions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from neuroreduce.errors import ConfigError
from neuroreduce.evaluation.context import MetricContext

#: The spike-timing metrics scored by default where a dataset has repeated stimuli.
DEFAULT_SPIKE_METRICS: tuple[str, ...] = (
    "gamma", "gamma_intrinsic", "gamma_normalised", "gamma_normalised_se", "gamma_bootstrap_se",
    "spike_count_error", "subthreshold_rmse",
)
#: Metrics a binary (spike-train) head cannot be scored with.
VOLTAGE_ONLY: frozenset[str] = frozenset({"subthreshold_rmse"})
#: Units of continuous heads that are voltages (scored by threshold crossings).
VOLTAGE_UNITS: frozenset[str] = frozenset({"mV"})


@dataclass(frozen=True)
class SpikeScoring:
    """How spike-timing metrics read spikes out of heads.

    Attributes:
        spike_threshold: Voltage (mV) whose upward crossing is a spike (voltage heads).
        coincidence_window_ms: Coincidence half-window Delta (ms): 2 for QSNMC 2007, 4 for 2009.
        probability_threshold: Binary heads: a number in (0, 1), or ``"count"`` (the threshold
            that reproduces the training trials' spike count).
        group: Group field whose equal ids mark repetitions of one stimulus.
        n_bootstrap: Bootstrap resamples of the error metrics (10,000 in the competition).
        seed: Seed of the bootstrap.
    """

    spike_threshold: float = 0.0
    coincidence_window_ms: float = 2.0
    probability_threshold: float | str = 0.5
    group: str = "stimulus"
    n_bootstrap: int = 10_000
    seed: int = 0

    def __post_init__(self) -> None:
        p = self.probability_threshold
        if not (p == "count" or (isinstance(p, int | float) and not isinstance(p, bool)
                                 and 0 < p < 1)):
            raise ConfigError(f"probability_threshold must be a number in (0, 1) or \"count\"; "
                              f"got {p!r}")
        w = self.coincidence_window_ms
        if isinstance(w, bool) or not isinstance(w, int | float) or not (
                math.isfinite(w) and w > 0):
            raise ConfigError(f"coincidence_window_ms must be a number > 0; got {w!r}")
        t = self.spike_threshold
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
            raise ConfigError(f"spike_threshold must be a finite number (mV); got {t!r}")
        if not isinstance(self.n_bootstrap, int) or self.n_bootstrap < 1:
            raise ConfigError(f"n_bootstrap must be an integer >= 1; got {self.n_bootstrap!r}")

    @classmethod
    def from_dict(cls, data: Any) -> SpikeScoring:
        """From a table (``[evaluate] spike_timing = {...}``, ``--metric-option``).

        Raises:
            ConfigError: on an unknown key (naming the allowed ones) or a bad value.
        """
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ConfigError(f"spike-timing options must be a table, got {data!r}")
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ConfigError(f"unknown spike-timing option(s) {', '.join(unknown)}; allowed: "
                              f"{', '.join(allowed)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def repetitions_of(dataset: Any, group: str = "stimulus") -> np.ndarray | None:
    """Repetition ids ``[trial]`` from the dataset's group field ``group`` (None without it)."""
    for f in getattr(dataset, "fields", ()):
        if f.spec.name == group and f.spec.role == "group":
            return np.asarray(f.values).reshape(-1)
    return None


def default_spike_metrics(dataset: Any, group: str = "stimulus") -> dict[str, tuple[str, ...]]:
    """``{"spike_times": DEFAULT_SPIKE_METRICS}`` for a dataset with repeated stimuli (a group
    field ``group``), else ``{}`` (what ``neuroreduce evaluate`` scores on its own)."""
    return {"spike_times": DEFAULT_SPIKE_METRICS} if repetitions_of(dataset, group) is not None \
        else {}


def group_names(dataset: Any, group: str = "stimulus") -> dict[int, str]:
    """Group id -> name (the field's classes, else the id as text)."""
    for f in getattr(dataset, "fields", ()):
        if f.spec.name == group and f.spec.role == "group":
            ids = np.unique(np.asarray(f.values))
            classes = tuple(f.spec.classes or ())
            return {int(i): (classes[i] if 0 <= i < len(classes) else str(int(i))) for i in ids}
    return {}


def event_trace(x: np.ndarray, threshold: float) -> np.ndarray:
    """float ``[trial, time]``: 1.0 where ``x`` reaches ``threshold`` from below (the first
    sample counts when it is at or above it), else 0; NaN stays NaN."""
    a = np.asarray(x, dtype=np.float64)
    above = a >= threshold
    before = np.concatenate([np.zeros_like(above[:, :1]), above[:, :-1]], axis=1)
    out = (above & ~before).astype(np.float64)
    out[np.isnan(a)] = np.nan
    return out


def upward_crossings(p: np.ndarray, threshold: float, mask: np.ndarray | None = None) -> int:
    """Number of upward crossings of ``threshold`` by ``p`` ``[trial, time]`` (masked: none)."""
    a = np.asarray(p, dtype=np.float64)
    if mask is not None:
        a = np.where(mask, a, -np.inf)
    return int(np.nansum(event_trace(a, threshold)))


def count_matched_threshold(p: np.ndarray, n_spikes: int, mask: np.ndarray | None = None) -> float:
    """The probability threshold at which ``p`` ``[trial, time]`` crosses upwards about
    ``n_spikes`` times (bisection on the crossing count, which falls as the threshold rises).

    Returns 0.5 when ``n_spikes`` is 0 or ``p`` has no finite value.
    """
    a = np.asarray(p, dtype=np.float64)
    finite = a[np.isfinite(a)] if mask is None else a[np.isfinite(a) & mask]
    if n_spikes <= 0 or finite.size == 0:
        return 0.5
    lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        return 0.5
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if upward_crossings(a, mid, mask) > n_spikes:
            lo = mid
        else:
            hi = mid
    return hi


@dataclass(frozen=True)
class Scorable:
    """One channel of a head prepared for the spike-timing metrics.

    Attributes:
        true: Traces ``[trial, time]`` whose upward crossings of ``threshold`` are the data
            spikes (voltage, or event traces of a binary head).
        pred: Traces ``[member, trial, time]``, the same for the model.
        threshold: The crossing level the metrics use.
        voltage: True for a voltage head (``subthreshold_rmse`` applies).
        probability_thresholds: The probability threshold used per member (binary heads),
            else None.
    """

    true: np.ndarray
    pred: np.ndarray
    threshold: float
    voltage: bool
    probability_thresholds: tuple[float, ...] | None = None


def prepare(
    kind: str, y: np.ndarray, p: np.ndarray, mask: np.ndarray, options: SpikeScoring,
    *, train: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> Scorable:
    """Traces of one channel for the spike-timing metrics.

    Args:
        kind: The head's kind, ``"continuous"`` (voltage, mV) or ``"binary"``.
        y: True values ``[trial, time]``.
        p: Predictions ``[member, trial, time]``.
        mask: bool ``[trial, time]``, False where a value is missing.
        options: Thresholds.
        train: ``(y, p, mask)`` of the training trials, for ``probability_threshold = "count"``
            (one threshold per member, from its own predictions).
    """
    if kind == "continuous":
        return Scorable(np.where(mask, y, np.nan), np.asarray(p, np.float64),
                        options.spike_threshold, True)
    if kind != "binary":
        raise ConfigError(f"spike-timing metrics score voltage (mV) or binary spike heads, not "
                          f"{kind} ones")
    thr = options.probability_threshold
    preds = []
    used = []
    for k, pk in enumerate(np.asarray(p, np.float64)):
        t = thr
        if thr == "count":
            if train is None:
                raise ConfigError("probability_threshold \"count\" needs the training trials")
            ty, tp, tm = train
            n = int(np.nansum(event_trace(np.where(tm, ty, 0.0), 0.5)))
            t = count_matched_threshold(tp[k], n, tm)
        used.append(float(t))
        preds.append(event_trace(pk, float(t)))
    return Scorable(event_trace(np.where(mask, y, np.nan), 0.5), np.stack(preds), 0.5, False,
                    tuple(used))


def context(options: SpikeScoring, *, dt_ms: float, mask: np.ndarray,
            repetitions: np.ndarray | None, threshold: float) -> MetricContext:
    """The :class:`MetricContext` of one scored channel."""
    return MetricContext(dt_ms=dt_ms, mask=mask, repetitions=repetitions,
                         spike_threshold=threshold,
                         coincidence_window_ms=float(options.coincidence_window_ms),
                         n_bootstrap=options.n_bootstrap, seed=options.seed)
