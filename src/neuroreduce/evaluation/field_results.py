"""Scores of every predicted field of a typed task, per split, mean ± std over seeds.

Each predicted field is scored with the registry's metrics for its kind
(:mod:`neuroreduce.evaluation.registry`), called with the task's context: the mask of missing
values and unavailable channels, the ignored label, dt. Defaults per kind are
:data:`DEFAULT_METRICS`; any registered metric of the right kind can be asked for.

The result (``results["fields"]`` of ``results.json``)::

    {field: {"kind": ..., "splits": {split: {"n_trials": n,
                                             metric: {"mean", "std", "min", "max", "per_seed",
                                                      "per_channel": {channel: stats}}}}}}

Per-channel metrics are summarised by their mean over channels (NaN channels skipped, e.g. a
channel with no spike in the split has no ROC AUC).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from neuroreduce.datasets.dataset import SPLIT_NAMES, Dataset
from neuroreduce.errors import ConfigError
from neuroreduce.evaluation.context import MetricContext
from neuroreduce.evaluation.registry import compute_metric, get_metric_info
from neuroreduce.training.task import Head, TaskLayout

#: Metrics computed for each kind of predicted field when none are asked for.
DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    "continuous": ("rmse", "nrmse", "explained_variance"),
    "binary": ("roc_auc", "tpr_at_fpr"),
    "categorical": ("accuracy", "balanced_accuracy"),
}


def _stats(values: Sequence[float]) -> dict[str, Any]:
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "min": float("nan"),
                "max": float("nan"), "per_seed": v.tolist()}
    return {
        "mean": float(finite.mean()),
        "std": float(finite.std(ddof=1)) if finite.size > 1 else 0.0,
        "min": float(finite.min()),
        "max": float(finite.max()),
        "per_seed": v.tolist(),
    }


def truth_and_mask(dataset: Dataset, head: Head, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True values of ``head``'s field for trials ``idx`` and the mask of values that count
    (:meth:`Dataset.known`, the rule training uses too)."""
    return dataset.known(head.field, idx)


def _channel_summary(value: Any) -> tuple[float, np.ndarray | None]:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return float(arr), None
    flat = arr.reshape(-1, arr.shape[-1]) if arr.ndim > 1 else arr[None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per_channel = np.nanmean(flat, axis=0)
        return float(np.nanmean(per_channel)), per_channel


def score_field(
    dataset: Dataset,
    head: Head,
    prediction: np.ndarray,
    idx: np.ndarray,
    metrics: Sequence[str],
) -> dict[str, Any]:
    """Every member's metrics of one field on trials ``idx``.

    Args:
        dataset: The data (true values, masks, groups).
        head: The field's head in the model's layout.
        prediction: ``[member, trial, time, channel(, class)]`` for trials ``idx``.
        idx: Trial indices.
        metrics: Registered metric names of the field's kind.
    """
    y, mask = truth_and_mask(dataset, head, idx)
    out: dict[str, Any] = {"n_trials": int(idx.size)}
    for name in metrics:
        info = get_metric_info(name)
        if info.kind != head.kind:
            raise ConfigError(
                f"metric {name!r} scores {info.kind} fields; {head.field!r} is {head.kind}"
            )
        if info.direction is None:  # tables and thresholds are not summarised over seeds
            continue
        means, channels = [], []
        for p in prediction:
            if head.kind == "categorical":  # one channel of labels: [trial, time] vs [.., K]
                value = np.mean([
                    compute_metric(name, y[..., c], p[..., c, :], MetricContext(
                        dt_ms=dataset.dt_ms, mask=mask[..., c], n_classes=head.n_classes,
                        ignore_label=head.ignore_label))
                    for c in range(len(head.channels))
                ])
            else:
                ctx = MetricContext(dt_ms=dataset.dt_ms, mask=mask)
                value = compute_metric(name, np.where(mask, y, 0.0), p, ctx)
            mean, per = _channel_summary(value)
            means.append(mean)
            channels.append(per)
        block = _stats(means)
        if channels and channels[0] is not None and len(channels[0]) == len(head.channels):
            block["per_channel"] = {
                ch: _stats([c[j] for c in channels]) for j, ch in enumerate(head.channels)
            }
        out[name] = block
    return out


def evaluate_fields(
    dataset: Dataset,
    predictions: Mapping[str, np.ndarray],
    layout: TaskLayout,
    *,
    metrics: Mapping[str, Sequence[str]] | None = None,
    splits: Sequence[str] = SPLIT_NAMES,
) -> dict[str, Any]:
    """Scores of every predicted field on every split with trials.

    Args:
        dataset: The data (with a split assignment).
        predictions: Field -> ``[member, trial, time, ...]`` (:func:`predict_fields`).
        layout: The model's heads.
        metrics: Field kind -> metric names (default :data:`DEFAULT_METRICS`).
        splits: Splits to score; a split without trials is skipped.
    """
    chosen = {**DEFAULT_METRICS, **(metrics or {})}
    out: dict[str, Any] = {}
    for head in layout.heads:
        per_split = {}
        for split in splits:
            idx = (np.arange(dataset.n_trials) if split == "all" else dataset.indices(split))
            if idx.size == 0:
                continue
            pred = predictions[head.field][:, idx]
            per_split[split] = score_field(dataset, head, pred, idx, chosen[head.kind])
        out[head.field] = {"kind": head.kind, "channels": list(head.channels),
                           "splits": per_split}
    return out
