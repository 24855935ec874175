"""Is the uncertainty right where it matters? Trust scores on held-out stimulus families.

An experiment cell scores its ensemble on every extra (``role = "test"``) dataset, e.g. the
held-out battery of :mod:`neuroreduce.trust.battery`. :func:`held_out_trust` records, per
dataset: the gain of the ensemble mean, the coverage of intervals calibrated on the training
data's valid split, and per trial the real error, the member spread and the input distance from
the training stimuli (:mod:`neuroreduce.trust.range_check`) — plus a quantile sketch of the
conformal scores, so intervals can be recalibrated *across* families afterwards.

:func:`battery_summary` pools those records over families: how well the spread (and the cheaper
input distance) ranks held-out trials by their real error (Spearman), and the coverage of
nominal intervals calibrated (a) on the in-distribution valid split and (b) leave-one-family-out
on the other held-out families (split-conformal with the pooled scores of the other families).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuroreduce.trust.range_check import InputEnvelope, check_inputs, envelope_of
from neuroreduce.trust.uncertainty import (
    Calibration,
    coverage,
    ensemble_gain,
    ensemble_prediction,
    rank_correlation,
    trial_errors,
    trial_spread,
)

#: Points of the conformal-score quantile sketch kept per dataset and output channel.
SKETCH_POINTS = 201


def envelope_of_dataset(dataset: Any) -> InputEnvelope | None:
    """The envelope of ``dataset``'s training inputs (``None`` without inputs or train trials)."""
    train = dataset.indices("train")
    if dataset.inputs.shape[2] == 0 or train.size < 2:
        return None
    return envelope_of(dataset.inputs[train], dataset.input_names)


def _f(x: float) -> float | None:
    return float(f"{x:.6g}") if np.isfinite(x) else None


def held_out_trust(predictions: np.ndarray, truth: np.ndarray, calibration: Calibration | None,
                   envelope: InputEnvelope | None, inputs: np.ndarray) -> dict[str, Any]:
    """Trust record of one held-out dataset (JSON-able; see the module docstring).

    Args:
        predictions: ``[member, trial, time, output]``.
        truth: ``[trial, time, output]`` (NaN = missing).
        calibration: Fitted on the training data's valid split (``None``: no intervals).
        envelope: The training inputs' envelope (``None``: no input distances).
        inputs: ``[trial, time, input]`` of the held-out trials.
    """
    y = np.asarray(truth, dtype=np.float64)
    ens = ensemble_prediction(predictions, calibration)
    errors = trial_errors(ens.mean, y)
    spread = trial_spread(ens.spread, y)
    out: dict[str, Any] = {
        "gain": {k: _f(v) for k, v in ensemble_gain(predictions, y).items()},
        "spearman_spread_vs_error": _f(rank_correlation(spread, errors)),
        "trials": {"error": [_f(v) for v in errors], "spread": [_f(v) for v in spread]},
    }
    if envelope is not None:
        report = check_inputs(envelope, inputs)
        out["trials"]["input_distance"] = [_f(v) for v in report.distance]
        out["trials"]["flagged"] = [bool(v) for v in report.flagged]
        out["spearman_distance_vs_error"] = _f(rank_correlation(report.distance, errors))
    if calibration is not None:
        out["level"] = calibration.level
        out["coverage_valid_calibrated"] = _f(coverage(ens, y))
        floor = np.asarray(calibration.floor)
        score = np.abs(y - ens.mean) / np.maximum(ens.spread, floor)
        grid = np.linspace(0.0, 1.0, SKETCH_POINTS)
        sketch, counts = [], []
        for j in range(y.shape[2]):
            known = np.isfinite(score[..., j])
            counts.append(int(known.sum()))
            sketch.append([_f(v) for v in np.quantile(score[..., j][known], grid)]
                          if known.any() else [])
        out["score_quantiles"] = sketch
        out["score_counts"] = counts
    return out


def _cdf(sketch: list[float], q: float) -> float:
    """Fraction of scores <= q, read off a quantile sketch (linear between points)."""
    values = np.asarray(sketch, dtype=np.float64)
    grid = np.linspace(0.0, 1.0, values.size)
    if q < values[0]:
        return 0.0
    if q >= values[-1]:
        return 1.0
    return float(np.interp(q, values, grid))


def _pooled_quantile(blocks: list[dict[str, Any]], channel: int, level: float) -> float:
    """The ``level`` quantile of the scores of ``blocks`` pooled (weighted by their counts)."""
    lo = min(b["score_quantiles"][channel][0] for b in blocks)
    hi = max(b["score_quantiles"][channel][-1] for b in blocks)
    weights = np.array([b["score_counts"][channel] for b in blocks], dtype=np.float64)

    def mixture(q: float) -> float:
        return float(sum(w * _cdf(b["score_quantiles"][channel], q)
                         for w, b in zip(weights, blocks, strict=True)) / weights.sum())

    for _ in range(60):  # bisection on the mixture CDF
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if mixture(mid) < level else (lo, mid)
    return hi


def battery_summary(blocks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Pool the trust records of several held-out datasets (family name -> record).

    Returns:
        ``{"n_trials", "spearman_spread_vs_error", "spearman_distance_vs_error",
        "coverage_valid_calibrated", "coverage_cross_family", "level", "per_family": {name:
        {"coverage_valid_calibrated", "coverage_cross_family", "flagged_fraction"}}}`` —
        coverages are means over families (each family weighs the same).
    """
    usable = {n: b for n, b in blocks.items() if b and b.get("trials")}
    errors = np.array([v if v is not None else np.nan for b in usable.values()
                       for v in b["trials"]["error"]], dtype=np.float64)
    spread = np.array([v if v is not None else np.nan for b in usable.values()
                       for v in b["trials"]["spread"]], dtype=np.float64)
    out: dict[str, Any] = {
        "n_trials": int(errors.size),
        "spearman_spread_vs_error": _f(rank_correlation(spread, errors)),
        "per_family": {},
    }
    if all("input_distance" in b["trials"] for b in usable.values()) and usable:
        distance = np.array([v if v is not None else np.nan for b in usable.values()
                             for v in b["trials"]["input_distance"]], dtype=np.float64)
        out["spearman_distance_vs_error"] = _f(rank_correlation(distance, errors))
    calibrated = {n: b for n, b in usable.items() if b.get("score_quantiles")}
    for name, b in usable.items():
        fam: dict[str, Any] = {}
        if "flagged" in b["trials"]:
            fam["flagged_fraction"] = _f(float(np.mean(b["trials"]["flagged"])))
        if name in calibrated:
            fam["coverage_valid_calibrated"] = b.get("coverage_valid_calibrated")
        out["per_family"][name] = fam
    if len(calibrated) >= 2:
        level = float(next(iter(calibrated.values()))["level"])
        out["level"] = level
        for name, b in calibrated.items():
            others = [o for n, o in calibrated.items() if n != name]
            per_channel = []
            for j, counts in enumerate(b["score_counts"]):
                if not counts or not all(o["score_counts"][j] for o in others):
                    continue
                q = _pooled_quantile(others, j, level)
                per_channel.append((_cdf(b["score_quantiles"][j], q), counts))
            if per_channel:
                total = sum(c for _, c in per_channel)
                out["per_family"][name]["coverage_cross_family"] = _f(
                    sum(c * w for c, w in per_channel) / total)
        fams = out["per_family"].values()
        for key in ("coverage_valid_calibrated", "coverage_cross_family"):
            values = [f[key] for f in fams if f.get(key) is not None]
            out[key] = _f(float(np.mean(values))) if values else None
    return out


def experiment_trust(exp_dir: Any, cells: Any) -> dict[str, Any] | None:
    """Trust on the extra (held-out) datasets of every schema-v1 cell of an experiment.

    Reads each cell's ``results.json`` (the ensemble block of its test split) and
    ``extra_results.json`` (the ``trust`` record per extra dataset, see
    :func:`held_out_trust`).

    Returns:
        ``{"cells": {key: {"label", "test_ensemble_rmse", "families": {name: {"ensemble_rmse",
        "ratio", "gain", "flagged_fraction", "coverage_valid_calibrated",
        "coverage_cross_family"}}, "summary": battery_summary(...)}}}``, or ``None`` when no
        cell has trust records (older cells, typed cells).
    """
    import json
    from pathlib import Path

    out: dict[str, Any] = {"cells": {}}
    for c in cells:
        folder = Path(c.folder) if Path(c.folder).is_absolute() else Path(exp_dir) / c.folder
        try:
            results = json.loads((folder / "results.json").read_text())
            extra = json.loads((folder / "extra_results.json").read_text())
        except (OSError, ValueError):
            continue
        blocks = {n: b["trust"] for n, b in extra.items()
                  if isinstance(b, dict) and isinstance(b.get("trust"), dict)}
        test = (results.get("ensemble") or {}).get("test") or {}
        if not blocks or test.get("ensemble_mean_rmse") is None:
            continue
        summary = battery_summary(blocks)
        base = test["ensemble_mean_rmse"]
        families = {}
        for name, block in blocks.items():
            ens = (block.get("gain") or {}).get("ensemble_mean_rmse")
            fam = dict(summary["per_family"].get(name, {}))
            fam.update(ensemble_rmse=ens, gain=(block.get("gain") or {}).get("gain"),
                       ratio=_f(ens / base) if ens is not None and base > 0 else None)
            families[name] = fam
        out["cells"][c.key] = {"label": c.label, "test_ensemble_rmse": base,
                               "test_coverage": (results.get("uncertainty") or {}).get(
                                   "test_coverage"),
                               "families": families, "summary": summary}
    return out if out["cells"] else None
