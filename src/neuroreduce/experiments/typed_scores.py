"""Scores of typed-task cells (per predicted field) and their summaries over split folds.

A typed cell (spike events in, binary spikes / categorical labels / masked channels out; see
:mod:`neuroreduce.training.task`) is scored per field with the metrics registry
(``results.json``'s ``fields``). Here those scores become the ``typed_scores.json`` analysis,
the report's tables and the conclusions' paragraphs:

- per cell, per field, per metric with a direction: train/valid/test mean ± std over seeds;
- per cell trained on several folds (``.../fold{i}``): each fold's test mean and the mean ± std
  over folds (ddof 1, over the folds' seed means);
- the *headline* metrics of a field: the experiment's metrics of its kind, or the kind's first
  default (``rmse``, ``roc_auc``, ``accuracy``) when the experiment names none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from neuroreduce.experiments.expfiles import CellSummary

SPLITS: tuple[str, ...] = ("train", "valid", "test")
#: Analyses that read dense inputs and continuous outputs, and skip typed cells.
CONTINUOUS_ONLY: dict[str, str] = {
    "error_vs_size": "test NRMSE of continuous outputs",
    "ablation": "per-output RMSE of input variants",
    "ood": "RMSE on extra datasets",
    "attribution": "integrated gradients of dense inputs",
    "speed": "re-simulation and dense-input timing",
}


def headline(kind: str, metrics: Sequence[str]) -> tuple[str, ...]:
    """The metrics shown for a field of ``kind`` (see the module docstring)."""
    from neuroreduce.evaluation.field_results import DEFAULT_METRICS
    from neuroreduce.evaluation.registry import TASK_METRICS

    chosen = tuple(m for m in metrics if m in TASK_METRICS and TASK_METRICS[m].kind == kind)
    return chosen or DEFAULT_METRICS.get(kind, ())[:1]


def _direction(metric: str) -> str | None:
    from neuroreduce.evaluation.registry import TASK_METRICS

    info = TASK_METRICS.get(metric)
    return None if info is None else info.direction


def cell_scores(cell: CellSummary) -> dict[str, Any]:
    """``{field: {"kind", "metrics": {metric: {split: {"mean", "std"}}}}}`` of a typed cell."""
    out: dict[str, Any] = {}
    for name, block in cell.fields.items():
        metrics: dict[str, dict[str, Any]] = {}
        for split, scores in (block.get("splits") or {}).items():
            for metric, stats in scores.items():
                if isinstance(stats, dict) and "mean" in stats and _direction(metric):
                    metrics.setdefault(metric, {})[split] = {"mean": stats["mean"],
                                                             "std": stats["std"]}
        out[name] = {"kind": block.get("kind"), "metrics": metrics}
    return out


def fold_groups(cells: Sequence[CellSummary]) -> dict[str, list[CellSummary]]:
    """Cells trained on folds, grouped by their key without ``/fold{i}`` (fold order)."""
    groups: dict[str, list[CellSummary]] = {}
    for c in cells:
        if c.fold is not None:
            groups.setdefault(c.base_key, []).append(c)
    return {k: sorted(v, key=lambda c: c.fold or 0) for k, v in groups.items()}


def over_folds(group: Sequence[CellSummary], field: str, metric: str,
               split: str = "test") -> dict[str, Any]:
    """Per-fold mean over seeds of ``field``'s ``metric`` and their mean ± std over folds."""
    per = {c.fold: c.score(field, metric, split).mean for c in group}
    v = np.asarray([x for x in per.values() if math.isfinite(x)], dtype=np.float64)
    return {"per_fold": per, "n": int(v.size),
            "mean": float(v.mean()) if v.size else float("nan"),
            "std": float(v.std(ddof=1)) if v.size > 1 else 0.0 if v.size else float("nan")}


def typed_scores(cells: Sequence[CellSummary], resolved: Mapping[str, Any]) -> dict[str, Any]:
    """The ``typed_scores.json`` analysis of the typed cells (see the module docstring)."""
    metrics = resolved.get("metrics") or ()
    splits = {c.get("key"): (c.get("config") or {}).get("split")
              for c in resolved.get("cells", []) if isinstance(c, dict)}
    out: dict[str, Any] = {"metrics": list(metrics), "cells": {}, "folds": {}}
    for c in cells:
        out["cells"][c.key] = {"label": c.label, "dataset": c.dataset, "fold": c.fold,
                               "base_key": c.base_key, "split": splits.get(c.key),
                               "fields": cell_scores(c)}
    for base, group in fold_groups(cells).items():
        fields = {}
        for name, block in group[0].fields.items():
            fields[name] = {m: over_folds(group, name, m)
                            for m in headline(block.get("kind", ""), metrics)}
        split = splits.get(group[0].key) or {}
        out["folds"][base] = {"strategy": split.get("strategy"), "options": split.get("options"),
                              "folds": [c.fold for c in group], "fields": fields}
    return out


def _num(x: float) -> str:
    return "nan" if x is None or not math.isfinite(x) else f"{x:.3g}"


def typed_paragraphs(scores: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Conclusions on typed cells: headline test scores of each cell, then each cell's folds."""
    metrics = scores.get("metrics") or ()
    parts = []
    for key, cell in scores.get("cells", {}).items():
        if cell.get("fold") is not None:
            continue
        items = [f"{field} {m} {_num(s['metrics'][m]['test']['mean'])} ± "
                 f"{_num(s['metrics'][m]['test']['std'])}"
                 for field, s in cell["fields"].items() for m in headline(s["kind"], metrics)
                 if "test" in s["metrics"].get(m, {})]
        if items:
            parts.append(f"{key}: {', '.join(items)}")
    out = []
    if parts:
        out.append({"kind": "typed", "title": "Typed tasks", "holds": None,
                    "text": "Test scores per predicted field (mean ± std over seeds): "
                            + "; ".join(parts) + "."})
    for base, group in scores.get("folds", {}).items():
        items = []
        for field, per_metric in group["fields"].items():
            for m, f in per_metric.items():
                folds = ", ".join(f"{_num(v)}" for v in f["per_fold"].values())
                items.append(f"{field} {m} per fold {folds}; mean ± std over {f['n']} folds "
                             f"{_num(f['mean'])} ± {_num(f['std'])}")
        opts = ", ".join(f"{k}={v}" for k, v in (group.get("options") or {}).items())
        out.append({"kind": "folds", "title": f"Folds of {base}", "holds": None,
                    "text": f"Split {group.get('strategy')} ({opts}), {len(group['folds'])} "
                            f"folds, test: {'; '.join(items)}."})
    return out
