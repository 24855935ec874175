"""Scores of one trained cell on its test trials: spikes (ROC), soma voltage, threshold
precision and the surrogate's cost per simulated second.

Spike scores follow Beniaguev et al. (2021) and Spieler et al. (2023): the ROC of the
predicted spike probability over all test bins (1 ms), its AUC and the TP rate at 0.1, 0.25
and 1 % FP (:mod:`neuroreduce.evaluation.binary`); thresholds by Youden's J and by the G-mean.
The blog's "spread of outputs" question (how precisely must the threshold be set?) is answered
by :func:`threshold_precision`: the range of thresholds whose balanced accuracy is within
``tolerance`` (0.01) of the best one. A wide range: the output separates the classes with room
to spare; a range of 1e-5 (the blog's LSTM): the threshold must be set to the fifth decimal.
Soma voltage: RMSE (mV) and explained variance ``1 - Var(v - v_hat) / Var(v)`` of the
spike-clipped voltage.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from neuroreduce.evaluation.binary import THRESHOLD_RULES, roc, tpr_at

#: False-positive rates at which the TP rate is read off the ROC.
FP_RATES: tuple[float, ...] = (0.001, 0.0025, 0.01)
#: Balanced-accuracy margin of :func:`threshold_precision`.
TOLERANCE = 0.01
#: ROC points kept for figures (thinned evenly in index).
ROC_POINTS = 400


def threshold_precision(fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray, *,
                        tolerance: float = TOLERANCE) -> dict[str, float]:
    """How precisely the probability threshold must be set.

    Balanced accuracy ``(TPR + 1 - FPR) / 2`` at every ROC corner; the thresholds whose
    balanced accuracy is at least ``best - tolerance`` span ``[low, high]``.

    Args:
        fpr, tpr, thresholds: A ROC (``roc``), ``[n]`` each, thresholds decreasing.
        tolerance: Margin of balanced accuracy (absolute, e.g. 0.01 = one point).

    Returns:
        ``{"best_balanced_accuracy", "threshold", "low", "high", "width", "decades"}``:
        ``width = high - low`` (probability units), ``decades = log10(high / low)``.
    """
    ok = np.isfinite(thresholds)
    fpr, tpr, thr = fpr[ok], tpr[ok], thresholds[ok]
    ba = 0.5 * (tpr + 1.0 - fpr)
    k = int(np.argmax(ba))
    near = thr[ba >= ba[k] - tolerance]
    low, high = float(near.min()), float(near.max())
    decades = float(np.log10(high / low)) if low > 0 else float("inf")
    return {"best_balanced_accuracy": float(ba[k]), "threshold": float(thr[k]), "low": low,
            "high": high, "width": high - low, "decades": decades}


def spike_scores(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """ROC scores of spike probabilities ``p`` against 0/1 labels ``y`` (flat or any shape).

    Returns:
        ``{"auc", "tpr_at_fp" {rate: tpr}, "youden_threshold", "gmean_threshold",
        "precision" (:func:`threshold_precision`), "roc" (thinned fpr/tpr/thresholds),
        "n_spikes", "n_bins"}``; NaN scores when ``y`` holds one class only.
    """
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y).ravel().astype(np.int64)
    p = np.asarray(p, dtype=np.float64).ravel()
    out: dict[str, Any] = {"n_spikes": int(y.sum()), "n_bins": int(y.size)}
    if not 0 < y.sum() < y.size:
        nan = float("nan")
        return {**out, "auc": nan, "tpr_at_fp": {str(f): nan for f in FP_RATES},
                "youden_threshold": nan, "gmean_threshold": nan, "precision": {}, "roc": {}}
    fpr, tpr, thr = roc(y, p)
    rules = {}
    for rule in ("youden", "gmean"):
        rules[f"{rule}_threshold"] = float(thr[int(np.argmax(THRESHOLD_RULES[rule](fpr, tpr)))])
    keep = np.unique(np.linspace(0, fpr.size - 1, min(ROC_POINTS, fpr.size)).astype(int))
    return {**out, "auc": float(roc_auc_score(y, p)),
            "tpr_at_fp": {str(f): tpr_at(fpr, tpr, f) for f in FP_RATES}, **rules,
            "precision": threshold_precision(fpr, tpr, thr),
            "roc": {"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist(),
                    "thresholds": np.where(np.isfinite(thr[keep]), thr[keep], 1.0).tolist()}}


def voltage_scores(v: np.ndarray, v_hat: np.ndarray) -> dict[str, float]:
    """RMSE (units of ``v``) and explained variance of a voltage prediction (any shape)."""
    v = np.asarray(v, dtype=np.float64).ravel()
    v_hat = np.asarray(v_hat, dtype=np.float64).ravel()
    ok = np.isfinite(v) & np.isfinite(v_hat)
    err = v[ok] - v_hat[ok]
    var = float(np.var(v[ok]))
    return {"rmse": float(np.sqrt(np.mean(err**2))),
            "explained_variance": float(1.0 - np.var(err) / var) if var > 0 else float("nan")}


def surrogate_cost(run: Any, dataset: Any, trials: np.ndarray, *, repeats: int = 3) -> dict[
        str, float]:
    """Wall time of one ensemble member per simulated second (s/s), CPU, at batch 1 (one trial
    at a time) and batched (all ``trials`` in one pass); best of ``repeats``. Includes making
    the dense input from the spike events, as a deployed surrogate would."""
    import torch

    from neuroreduce.training.inference import predict_fields

    members = max(1, len(getattr(run.config, "seeds", (0,))))
    sim_s = dataset.n_time * dataset.dt_ms / 1000.0
    torch.set_num_threads(1)

    def best(fn: Any) -> float:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    one = best(lambda: predict_fields(run, dataset, trials=trials[:1], batch_size=1))
    many = best(lambda: predict_fields(run, dataset, trials=trials, batch_size=len(trials)))
    return {"batch1_s_per_simulated_s": one / (members * sim_s),
            "batched_s_per_simulated_s": many / (members * sim_s * len(trials)),
            "batch": int(len(trials)), "threads": 1}


def score_cell(run: Any, dataset: Any, *, split: str = "test", timing: bool = True) -> dict[
        str, Any]:
    """All scores of a trained run on ``split`` of ``dataset`` (member scores averaged for the
    voltage; the spike ROC of the ensemble mean probability).

    Args:
        run: A loaded run or a :class:`~neuroreduce.training.trainer.TrainResult`.
        dataset: The L5PC-layout dataset it was trained on (with its split).
        split: Which trials.
        timing: Also measure :func:`surrogate_cost`.
    """
    from neuroreduce.training.inference import predict_fields

    idx = dataset.indices(split)
    pred = predict_fields(run, dataset, trials=idx)
    out: dict[str, Any] = {"split": split, "n_trials": int(idx.size),
                           "n_train_trials": int(dataset.indices("train").size)}
    if "spikes" in pred:
        truth = dataset.field("spikes").values[idx]
        out["spikes"] = spike_scores(truth, pred["spikes"].mean(axis=0))
    if "outputs" in pred:
        v = dataset.outputs[idx]
        per = [voltage_scores(v, m) for m in pred["outputs"]]
        out["soma"] = {k: float(np.mean([s[k] for s in per])) for k in per[0]}
    if timing and idx.size:
        out["cost"] = surrogate_cost(run, dataset, idx[: min(32, idx.size)])
    return out
