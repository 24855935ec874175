"""Our results next to a published table: the ``paper_comparison`` analysis and its report section.

The comparison is scale-free (see :mod:`.tables`): our NRMSE against the paper's RMSE divided by
:data:`~.tables.PAPER_OUTPUT_RANGE`, and within each printed row the ranks of the models and
their ratios to the row's best value, on both sides.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from neuroreduce.experiments.expfiles import CellSummary
from neuroreduce.reporting.html import table as html_table
from neuroreduce.studies.barbulescu2023.tables import PAPER_OUTPUT_RANGE, get_paper_table
from neuroreduce.studies.base import StudyContext


def paper_comparison(cells: Sequence[CellSummary], key: str) -> dict[str, Any]:
    """Our test/train/valid NRMSE next to the paper's table ``key`` (scale-free comparison).

    For every printed value the matching cell has the same model, size and input variant (and
    sampling interval when the table's columns differ in it). Within each row both sides are
    ranked and divided by the row's best value.

    Raises:
        ConfigError: for an unknown table key.
    """
    from scipy.stats import spearmanr

    table = get_paper_table(key)
    dts = {c.dt_ms for c in table.columns}
    rows = []
    for row in table.rows:
        entries = []
        for col, value in zip(table.columns, row.values, strict=True):
            match = [c for c in cells if c.model == col.model and c.hidden == col.hidden
                     and c.variant == row.variant]
            if len(dts) > 1:
                match = [c for c in match if math.isclose(c.dt_ms, col.dt_ms, rel_tol=1e-6)]
            ours = match[0] if match else None
            stat = ours.error(row.split, "nrmse") if ours else None
            entries.append({
                "column": col.label, "cell": ours.key if ours else None,
                "paper_rmse": value, "paper_nrmse": value / PAPER_OUTPUT_RANGE,
                "paper_parameters": col.parameters,
                "our_nrmse": stat.mean if stat else None,
                "our_nrmse_std": stat.std if stat else None,
                "our_rmse": ours.error(row.split, "rmse").mean if ours else None,
                "our_parameters": ours.n_parameters if ours else None,
            })
        have = [e for e in entries if e["our_nrmse"] is not None and math.isfinite(e["our_nrmse"])]
        if have:
            p_best = min(e["paper_rmse"] for e in have)
            o_best = min(e["our_nrmse"] for e in have)
            p_rank = _ranks([e["paper_rmse"] for e in have])
            o_rank = _ranks([e["our_nrmse"] for e in have])
            for e, pr, orank in zip(have, p_rank, o_rank, strict=True):
                e.update(paper_rank=pr, our_rank=orank,
                         paper_ratio_to_best=e["paper_rmse"] / p_best,
                         our_ratio_to_best=e["our_nrmse"] / o_best if o_best > 0 else None)
        rho = None
        if len(have) >= 3:
            rho = float(spearmanr([e["paper_rmse"] for e in have],
                                  [e["our_nrmse"] for e in have]).statistic)
        rows.append({"row": row.label, "split": row.split, "variant": row.variant,
                     "entries": entries, "rank_correlation": rho, "matched": len(have)})
    return {"table": key, "number": table.number, "title": table.title,
            "paper_output_range": PAPER_OUTPUT_RANGE, "rows": rows,
            "observation": table.observation, "conclusion": table.conclusion,
            "note": "scale-free: our NRMSE (RMSE / range of our outputs) vs the paper's RMSE / "
                    f"{PAPER_OUTPUT_RANGE} (range of its published data); ranks and ratios "
                    "within a row compare models independently of units"}


def comparison_analysis(ctx: StudyContext) -> dict[str, Any] | None:
    """The study's ``paper_comparison`` analysis: None when the file names no table."""
    return paper_comparison(ctx.cells, ctx.table) if ctx.table else None


def _ranks(values: Sequence[float]) -> list[int]:
    order = np.argsort(np.asarray(values), kind="stable")
    ranks = np.empty(len(values), dtype=int)
    ranks[order] = np.arange(1, len(values) + 1)
    return ranks.tolist()


# ---------------------------------------------------------------------------------- report
def _g(x: Any) -> str:
    if x is None:
        return "-"
    x = float(x)
    return "nan" if not np.isfinite(x) else f"{x:.3g}"


def _pm(mean: Any, std: Any) -> str:
    return f"{_g(mean)} ± {_g(std)}"


def paper_html(pc: Mapping[str, Any]) -> str:
    """The report section of a ``paper_comparison`` result: one table per printed row."""
    parts = [f"<p>Paper Table {pc['number']} ({html.escape(pc['title'])}). "
             f"{html.escape(pc['note'])}.</p>"]
    for row in pc["rows"]:
        header = ["column", "paper RMSE", f"paper RMSE / {pc['paper_output_range']}",
                  "our NRMSE", "paper rank", "our rank", "paper / best", "ours / best",
                  "params (paper)", "params (ours)"]
        body = [[e["column"], _g(e["paper_rmse"]), _g(e["paper_nrmse"]),
                 _pm(e["our_nrmse"], e["our_nrmse_std"]) if e["our_nrmse"] is not None else
                 "not run", e.get("paper_rank", "-"), e.get("our_rank", "-"),
                 _g(e.get("paper_ratio_to_best")), _g(e.get("our_ratio_to_best")),
                 e["paper_parameters"], e["our_parameters"] or "-"] for e in row["entries"]]
        rho = row.get("rank_correlation")
        parts.append(f"<h3>{html.escape(row['row'])} ({row['split']} split)"
                     f"{'' if rho is None else f', rank correlation {rho:.2f}'}</h3>")
        parts.append(html_table(header, body))
    parts.append(f"<p><b>Paper observed:</b> {html.escape(pc['observation'])}<br>"
                 f"<b>Paper concluded:</b> {html.escape(pc['conclusion'])}</p>")
    return "".join(parts)


def report_sections(analyses: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The study's report sections: our results next to the paper's table, if compared."""
    if "paper_comparison" not in analyses:
        return []
    return [("Our results next to the paper's", paper_html(analyses["paper_comparison"]))]
