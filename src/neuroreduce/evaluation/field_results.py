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

Spike-timing metrics (``metrics["spike_times"]``) score voltage heads (continuous, mV) and
binary spike heads (:mod:`neuroreduce.evaluation.spike_scoring`), with the dataset's
``stimulus`` group as the repetitions; their block adds ``per_stimulus`` (stimulus name ->
stats over seeds) and, for binary heads, the ``probability_threshold`` used.
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


def head_units(dataset: Dataset, head: Head) -> str:
    """Units of a head's field (the dense outputs' units for ``"outputs"``)."""
    if head.field == "outputs":
        return dataset.output_units
    return dataset.field(head.field).spec.units or ""


def spike_capable(dataset: Dataset, head: Head) -> bool:
    """Whether spike-timing metrics apply to ``head``: a voltage (mV) or a binary head."""
    from neuroreduce.evaluation.spike_scoring import VOLTAGE_UNITS

    return head.kind == "binary" or (
        head.kind == "continuous" and head_units(dataset, head) in VOLTAGE_UNITS)


def score_spikes(
    dataset: Dataset,
    head: Head,
    prediction: np.ndarray,
    idx: np.ndarray,
    metrics: Sequence[str],
    options: Any = None,
    *,
    train: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Spike-timing metrics of one voltage or binary head on trials ``idx``.

    Args:
        dataset: The data (true values, masks, the repetition group).
        head: A head for which :func:`spike_capable` holds.
        prediction: ``[member, trial, time, channel]`` for trials ``idx``.
        idx: Trial indices.
        metrics: Registered ``spike_times`` metric names.
        options: :class:`~neuroreduce.evaluation.spike_scoring.SpikeScoring` (default one).
        train: ``(train trial indices, their predictions [member, trial, time, channel])``, for
            ``probability_threshold = "count"``.

    Returns:
        ``{metric: stats over seeds + "per_stimulus": {name: stats}}`` (+
        ``"probability_threshold"``: stats over members of the threshold used and its
        ``"rule"``, ``"fixed"`` or ``"count"``, for a binary head).
    """
    from neuroreduce.evaluation import spike_scoring as ss

    opts = options if options is not None else ss.SpikeScoring()
    y, mask = truth_and_mask(dataset, head, idx)
    reps_all = ss.repetitions_of(dataset, opts.group)
    reps = None if reps_all is None else reps_all[idx]
    names = ss.group_names(dataset, opts.group)
    chosen = [m for m in metrics if head.kind != "binary" or m not in ss.VOLTAGE_ONLY]
    values: dict[str, list[list[float]]] = {m: [] for m in chosen}  # [channel][member]
    per_stim: dict[str, dict[str, list[list[float]]]] = {m: {} for m in chosen}
    used = []
    for c in range(len(head.channels)):
        tr = None
        if train is not None:
            ty, tm = truth_and_mask(dataset, head, train[0])
            tr = (ty[..., c], train[1][..., c], tm[..., c])
        sc = ss.prepare(head.kind, y[..., c], prediction[..., c], mask[..., c], opts, train=tr)
        used.append(sc.probability_thresholds)
        m_c = mask[..., c] & np.isfinite(sc.true)
        for name in chosen:
            needs_reps = name in ("gamma_intrinsic", "gamma_normalised", "gamma_normalised_se")
            if needs_reps and reps is None:
                continue
            ctx = ss.context(opts, dt_ms=dataset.dt_ms, mask=m_c, repetitions=reps,
                             threshold=sc.threshold)
            values[name].append([_safe(name, sc.true, pk, ctx) for pk in sc.pred])
            if reps is None:
                continue
            for g in np.unique(reps):
                sel = reps == g
                if needs_reps and sel.sum() < 2:
                    continue
                sub = ss.context(opts, dt_ms=dataset.dt_ms, mask=m_c[sel],
                                 repetitions=reps[sel], threshold=sc.threshold)
                per_stim[name].setdefault(names.get(int(g), str(int(g))), []).append(
                    [_safe(name, sc.true[sel], pk[sel], sub) for pk in sc.pred])
    out: dict[str, Any] = {}
    for name in chosen:
        if not values[name]:
            continue
        block = _stats(_over_channels(values[name]))
        block["per_stimulus"] = {g: _stats(_over_channels(v)) for g, v in per_stim[name].items()}
        out[name] = block
    if head.kind == "binary" and out:  # per member, mean over channels
        out["probability_threshold"] = {
            **_stats(np.mean(np.asarray(used, np.float64), axis=0)),
            "rule": "count" if opts.probability_threshold == "count" else "fixed"}
    return out


def _over_channels(values: list[list[float]]) -> np.ndarray:
    """``[channel][member]`` -> per-member mean over channels (NaN channels skipped)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.asarray(values, np.float64), axis=0)


def _safe(name: str, t: np.ndarray, p: np.ndarray, ctx: MetricContext) -> float:
    """A scalar spike metric; NaN where it does not apply (e.g. no repeated stimulus)."""
    try:
        return float(compute_metric(name, t, p, ctx))
    except ConfigError:
        return float("nan")


def evaluate_fields(
    dataset: Dataset,
    predictions: Mapping[str, np.ndarray],
    layout: TaskLayout,
    *,
    metrics: Mapping[str, Sequence[str]] | None = None,
    splits: Sequence[str] = SPLIT_NAMES,
    spike_options: Any = None,
) -> dict[str, Any]:
    """Scores of every predicted field on every split with trials.

    Args:
        dataset: The data (with a split assignment).
        predictions: Field -> ``[member, trial, time, ...]`` (:func:`predict_fields`).
        layout: The model's heads.
        metrics: Field kind -> metric names (default :data:`DEFAULT_METRICS`); the key
            ``"spike_times"`` names spike-timing metrics for the voltage and spike heads.
        splits: Splits to score; a split without trials is skipped.
        spike_options: :class:`~neuroreduce.evaluation.spike_scoring.SpikeScoring` for the
            spike-timing metrics (default thresholds 0 mV / 0.5, window 2 ms).
    """
    chosen = {**DEFAULT_METRICS, **(metrics or {})}
    spike_metrics = tuple(chosen.get("spike_times", ()))
    out: dict[str, Any] = {}
    for head in layout.heads:
        per_split = {}
        train = None
        if spike_metrics and dataset.split is not None:
            t_idx = dataset.indices("train")
            train = (t_idx, predictions[head.field][:, t_idx]) if t_idx.size else None
        for split in splits:
            idx = (np.arange(dataset.n_trials) if split == "all" else dataset.indices(split))
            if idx.size == 0:
                continue
            pred = predictions[head.field][:, idx]
            per_split[split] = score_field(dataset, head, pred, idx, chosen[head.kind])
            if spike_metrics and spike_capable(dataset, head):
                per_split[split].update(score_spikes(dataset, head, pred, idx, spike_metrics,
                                                     spike_options, train=train))
        out[head.field] = {"kind": head.kind, "channels": list(head.channels),
                           "splits": per_split}
    return out
