"""HTML tables of a typed run's scores (``results["fields"]`` of ``results.json``)."""

from __future__ import annotations

import html
from typing import Any

from neuroreduce.datasets.dataset import SPLIT_NAMES
from neuroreduce.errors import NeuroreduceError
from neuroreduce.evaluation.field_results import DEFAULT_METRICS
from neuroreduce.evaluation.registry import get_metric_info
from neuroreduce.reporting.html import table

#: Per-channel tables list at most this many channels.
MAX_TABLE_CHANNELS = 40
_ARROWS = {"min": " ↓", "max": " ↑", None: ""}


def _fmt(stats: dict[str, Any]) -> str:
    return f"{stats['mean']:.4g} ± {stats['std']:.2g}"


def _metric_names(splits: dict[str, Any], kind: str) -> list[str]:
    """Metrics scored in any split: the kind's defaults first, in their order."""
    names = [m for m in DEFAULT_METRICS.get(kind, ()) if any(m in b for b in splits.values())]
    for block in splits.values():
        names += [m for m, v in block.items() if isinstance(v, dict) and m not in names]
    return names


def _header(metric: str, units: str) -> str:
    try:
        info = get_metric_info(metric)
    except NeuroreduceError:  # a metric registered by a plugin that is not loaded now
        return metric
    unit = f" ({units})" if metric == "rmse" and units else ""
    return f"{metric}{unit}{_ARROWS.get(info.direction, '')}"


def field_table(field: str, entry: dict[str, Any], units: str = "") -> str:
    """One field's table (split x metric, mean ± std over seeds), plus a per-channel table of the
    test split (or the last split scored) when the metrics have several channels."""
    splits = {s: entry["splits"][s] for s in (*SPLIT_NAMES, "all") if s in entry["splits"]}
    if not splits:
        return "<p>No split had trials to score.</p>"
    metrics = _metric_names(splits, entry.get("kind", ""))
    overall = table(
        ["split", "trials", *(_header(m, units) for m in metrics)],
        [(s, b["n_trials"], *(_fmt(b[m]) if m in b else "" for m in metrics))
         for s, b in splits.items()],
    )
    last = "test" if "test" in splits else list(splits)[-1]
    per = [m for m in metrics if "per_channel" in splits[last].get(m, {})]
    channels = entry.get("channels", [])
    if not per or len(channels) < 2:
        return overall
    shown = channels[:MAX_TABLE_CHANNELS]
    more = (f" First {len(shown)} of {len(channels)} channels."
            if len(channels) > len(shown) else "")
    rows = [(ch, *(_fmt(splits[last][m]["per_channel"][ch])
                   if ch in splits[last][m]["per_channel"] else "" for m in per))
            for ch in shown]
    return (f"{overall}<p>Per channel, {last} split.{more}</p>"
            + table(["channel", *(_header(m, units) for m in per)], rows))


def results_tables(results: dict[str, Any], units: dict[str, str]) -> str:
    """Every field's tables, with a sentence on what is scored.

    Args:
        results: The ``results.json`` structure of a typed run.
        units: Field name -> physical unit (continuous fields).
    """
    n_seeds = len(results.get("seeds", []))
    parts = [f"<p>Free-running prediction of whole sequences from rest; mean ± std over "
             f"{n_seeds} seed(s); ↑ = higher is better, ↓ = lower is better. Missing values, "
             "unrecorded channels and ignored labels are not scored.</p>"]
    for field, entry in results.get("fields", {}).items():
        parts.append(f"<h3>{html.escape(field)} ({html.escape(str(entry.get('kind', '?')))})</h3>")
        parts.append(field_table(field, entry, units.get(field, "")))
    return "\n".join(parts)
