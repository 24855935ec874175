"""One registry of task metrics: every metric by name, with its target kind and direction.

Each entry is a :class:`~neuroreduce.evaluation.context.MetricInfo`; every metric is called as
``fn(y_true, y_pred, ctx)`` with the task's :class:`~neuroreduce.evaluation.context.MetricContext`
after the shape checks of its kind (:data:`KIND_CHECKS`). Per-channel results keep the channel
on their last axis. Adding a metric = :func:`register_metric` with a new entry.

Built in (kind: names):

- continuous: ``rmse``, ``nrmse``, ``explained_variance`` (masked; equal to
  :mod:`neuroreduce.evaluation.metrics` without a mask);
- rollout: ``rollout_rmse`` (``[horizon, channel]``);
- binary: ``roc_auc``, ``tpr_at_fpr`` (``[fp_rate, channel]``), ``youden_j``, ``gmean``,
  ``youden_threshold``, ``gmean_threshold``;
- categorical: ``accuracy``, ``balanced_accuracy``, ``confusion_matrix`` (``[K, K]``);
- spike_times: ``gamma``, ``gamma_intrinsic``, ``gamma_normalised``, ``gamma_bootstrap_se``,
  ``gamma_normalised_se``, ``spike_count_error``, ``subthreshold_rmse`` (fields of typed
  tasks are scored with them through :mod:`neuroreduce.evaluation.spike_scoring`: voltage
  heads directly, binary spike heads through their threshold crossings).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from neuroreduce.errors import ConfigError, unknown_name_error
from neuroreduce.evaluation import binary, categorical, metrics, spikes
from neuroreduce.evaluation.context import TARGET_KINDS, MetricContext, MetricInfo

ShapeCheck = Callable[[np.ndarray, np.ndarray, MetricContext], None]


def _shape_error(kind: str, t: np.ndarray, p: np.ndarray) -> ConfigError:
    return ConfigError(
        f"{kind} metrics need {TARGET_KINDS[kind]}; got y_true {t.shape} and y_pred {p.shape}"
    )


def _same_shape(ndim: int, kind: str) -> ShapeCheck:
    def check(t: np.ndarray, p: np.ndarray, ctx: MetricContext) -> None:
        if t.ndim != ndim or t.shape != p.shape:
            raise _shape_error(kind, t, p)

    return check


def _check_rollout(t: np.ndarray, p: np.ndarray, ctx: MetricContext) -> None:
    if t.ndim != 3 or p.ndim != 4 or p.shape[0] != t.shape[0] or p.shape[2:] != t.shape[1:]:
        raise _shape_error("rollout", t, p)
    if ctx.horizons is not None and len(ctx.horizons) != p.shape[1]:
        raise ConfigError(
            f"ctx.horizons has {len(ctx.horizons)} entries but y_pred has {p.shape[1]} horizons"
        )


def _check_categorical(t: np.ndarray, p: np.ndarray, ctx: MetricContext) -> None:
    if t.ndim != 2 or not (p.shape == t.shape or (p.ndim == 3 and p.shape[:2] == t.shape)):
        raise _shape_error("categorical", t, p)


#: Shape checks per target kind (the mask is checked against ``y_true`` for every kind).
KIND_CHECKS: dict[str, ShapeCheck] = {
    "continuous": _same_shape(3, "continuous"),
    "rollout": _check_rollout,
    "binary": _same_shape(3, "binary"),
    "categorical": _check_categorical,
    "spike_times": _same_shape(2, "spike_times"),
}

TASK_METRICS: dict[str, MetricInfo] = {}


def register_metric(info: MetricInfo, *, replace: bool = False) -> MetricInfo:
    """Add ``info`` to the registry (``replace=True`` to overwrite an entry of that name)."""
    if info.name in TASK_METRICS and not replace:
        raise ConfigError(f"metric {info.name!r} is already registered (pass replace=True)")
    TASK_METRICS[info.name] = info
    return info


def get_metric_info(name: str) -> MetricInfo:
    """The registry entry of metric ``name`` (error lists the known ones)."""
    try:
        return TASK_METRICS[name]
    except KeyError:
        raise unknown_name_error("metric", name, list(TASK_METRICS)) from None


def list_metrics(kind: str | None = None) -> list[str]:
    """Sorted names of the registered metrics, optionally only those of target ``kind``."""
    if kind is not None and kind not in TARGET_KINDS:
        raise unknown_name_error("target kind", kind, list(TARGET_KINDS))
    return sorted(n for n, info in TASK_METRICS.items() if kind is None or info.kind == kind)


def compute_metric(
    name: str, y_true: np.ndarray, y_pred: np.ndarray, ctx: MetricContext | None = None
) -> float | np.ndarray:
    """Metric ``name`` of a prediction, after its kind's shape checks.

    Args:
        name: A registered metric name (:func:`list_metrics`).
        y_true: True target, layout of the metric's kind (:data:`TARGET_KINDS`).
        y_pred: Prediction, layout of the metric's kind.
        ctx: Task context; default ``MetricContext()`` (dt 1 ms, nothing masked).

    Returns:
        A float, or an array whose shape the entry's ``shape`` describes.

    Raises:
        ConfigError: for an unknown name or shapes that do not fit the kind or the mask.
    """
    info = get_metric_info(name)
    ctx = MetricContext() if ctx is None else ctx
    t, p = np.asarray(y_true), np.asarray(y_pred)
    KIND_CHECKS[info.kind](t, p, ctx)
    ctx.mask_for(t)
    return info.fn(t, p, ctx)


def _builtin() -> list[MetricInfo]:
    def cont(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        return lambda t, p, ctx: fn(t, p, mask=ctx.mask)

    def cat(fn: Callable[..., object]) -> Callable[..., object]:
        return lambda t, p, ctx: fn(
            t, p, n_classes=ctx.n_classes, ignore_label=ctx.ignore_label, mask=ctx.mask
        )

    def rule(fn: Callable[..., np.ndarray], name: str) -> Callable[..., np.ndarray]:
        return lambda t, p, ctx: fn(t, p, rule=name, mask=ctx.mask)

    c, r, b, k, s = "continuous", "rollout", "binary", "categorical", "spike_times"
    return [
        MetricInfo("rmse", c, "min", True, cont(metrics.masked_rmse),
                   description="root mean squared error (data units)"),
        MetricInfo("nrmse", c, "min", True, cont(metrics.masked_nrmse),
                   description="RMSE / range of the true channel"),
        MetricInfo("explained_variance", c, "max", True, cont(metrics.masked_explained_variance),
                   description="1 - Var(true - pred) / Var(true)"),
        MetricInfo("rollout_rmse", r, "min", True, cont(metrics.rollout_rmse),
                   shape="[horizon, channel]", description="RMSE of rollouts per horizon"),
        MetricInfo("roc_auc", b, "max", True,
                   lambda t, p, ctx: binary.roc_auc(t, p, mask=ctx.mask),
                   description="area under the ROC"),
        MetricInfo("tpr_at_fpr", b, "max", True,
                   lambda t, p, ctx: binary.tpr_at_fp_rates(
                       t, p, fp_rates=ctx.fp_rates, mask=ctx.mask),
                   shape="[fp_rate, channel]", description="TP rate at each ctx.fp_rates"),
        MetricInfo("youden_j", b, "max", True, rule(binary.best_rule_score, "youden"),
                   description="max over the ROC of TPR - FPR"),
        MetricInfo("gmean", b, "max", True, rule(binary.best_rule_score, "gmean"),
                   description="max over the ROC of sqrt(TPR (1 - FPR))"),
        MetricInfo("youden_threshold", b, None, True, rule(binary.choose_threshold, "youden"),
                   description="probability threshold maximising Youden's J"),
        MetricInfo("gmean_threshold", b, None, True, rule(binary.choose_threshold, "gmean"),
                   description="probability threshold maximising the G-mean"),
        MetricInfo("accuracy", k, "max", False, cat(categorical.accuracy), shape="scalar",
                   description="fraction of scored steps labelled right"),
        MetricInfo("balanced_accuracy", k, "max", False, cat(categorical.balanced_accuracy),
                   shape="scalar", description="mean recall over the classes present"),
        MetricInfo("confusion_matrix", k, None, False, cat(categorical.confusion_matrix),
                   shape="[K, K]", description="counts, row = true, column = predicted"),
        MetricInfo("gamma", s, "max", False, spikes.mean_gamma, shape="scalar",
                   description="coincidence factor, mean over trials"),
        MetricInfo("gamma_intrinsic", s, None, False, spikes.gamma_intrinsic, shape="scalar",
                   description="Gamma between repetitions of the true traces"),
        MetricInfo("gamma_normalised", s, "max", False, spikes.gamma_normalised,
                   shape="scalar", description="Gamma_A = Gamma(model, reps) / Gamma_int"),
        MetricInfo("gamma_bootstrap_se", s, None, False, spikes.gamma_bootstrap_se,
                   shape="scalar", description="bootstrap standard error of mean Gamma"),
        MetricInfo("gamma_normalised_se", s, None, False, spikes.gamma_normalised_se,
                   shape="scalar", description="bootstrap standard error of Gamma_A"),
        MetricInfo("spike_count_error", s, "min", False, spikes.spike_count_error,
                   shape="scalar", description="mean |N_pred - N_true| per trial (spikes)"),
        MetricInfo("subthreshold_rmse", s, "min", False, spikes.subthreshold_rmse,
                   shape="scalar", description="voltage RMSE away from spikes (mV)"),
    ]  # fmt: skip


for _info in _builtin():
    register_metric(_info)
