"""The study's report (Markdown): Table 1 layout next to the paper, confusion matrices,
variants, edge AUROC, timing and the conclusions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from neuroreduce.studies.wang2023.tables import paper_row


def _cell(entry: Mapping[str, Any] | None) -> str:
    if not entry or entry.get("mean") is None:
        return "-"
    return f"{100 * entry['mean']:.1f} ± {100 * (entry.get('std') or 0):.1f}"


def _paper(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "-"
    return f"{mean:g}" + ("" if std is None else f" ± {std:g}")


def table1_markdown(results: Mapping[str, Any], run: str = "all") -> str:
    """Our accuracy (%) per model and set next to the paper's Table 1 row."""
    summary = results["runs"][run]["summary"]
    lines = ["| model | training set | unseen worms | other set | paper (train / unseen / "
             "other) |", "|---|---|---|---|---|"]
    for name, e in summary.items():
        p = paper_row(results.get("paper_rows", {}).get(name, name))
        paper = "-" if p is None else " / ".join(
            (_paper(p.train, p.train_std), _paper(p.unseen, p.unseen_std),
             _paper(p.other, p.other_std)))
        lines.append(f"| {name} | {_cell(e['test'])} | {_cell(e['unseen'])} | "
                     f"{_cell(e['other'])} | {paper} |")
    return "\n".join(lines)


def confusion_markdown(results: Mapping[str, Any], split: str = "unseen",
                       run: str = "all") -> str:
    """Row-normalised confusion matrices (% of each true class) per model."""
    doc = results["runs"][run]
    classes = doc["classes"]
    parts = []
    for name, e in doc["summary"].items():
        cm = e.get(f"confusion_{split}")
        if not cm:
            continue
        head = "| true \\ predicted | " + " | ".join(classes) + " |"
        rows = [head, "|---" * (len(classes) + 1) + "|"]
        for c, row in zip(classes, cm, strict=True):
            total = sum(row) or 1
            rows.append(f"| {c} | " + " | ".join(f"{100 * v / total:.1f}" for v in row) + " |")
        parts.append(f"**{name}** ({split}, {sum(map(sum, cm))} windows)\n\n" + "\n".join(rows))
    return "\n\n".join(parts)


def report_markdown(results: Mapping[str, Any], paragraphs: Sequence[Mapping[str, Any]]) -> str:
    """The whole report."""
    runs = results["runs"]
    out = [f"# {results.get('title') or results['name']}", "",
           f"Worms: {', '.join(results['data']['worms'])}.", ""]
    if "all" in runs:
        out += [f"Neurons ({len(runs['all']['neurons'])}): {', '.join(runs['all']['neurons'])}; "
                f"{runs['all']['n_windows']} windows of {results['data']['window']} frames.", "",
                "## Table 1 layout (forward/reversal accuracy, %)", "",
                table1_markdown(results), ""]
    for name, title in (("without", "Without " + ", ".join(results.get("without", []))),
                        ("few", "Few neurons: " + ", ".join(runs.get("few", {}).get(
                            "neurons", [])))):
        if name in runs:
            out += [f"## {title}", "", table1_markdown(results, name), ""]
    if "all" in runs:
        out += ["## Confusion matrices (unseen worms, % of true class)", "",
                confusion_markdown(results), ""]
    if "all" in runs and any(e.get("confusion_other") for e in runs["all"]["summary"].values()):
        out += ["## Confusion matrices (other set)", "", confusion_markdown(results, "other"), ""]
    traj = (results.get("trajectory") or {}).get("summary") or {}
    if traj:
        out += ["## Trajectories: MSE per prediction step (Fig. 4C; steps 1 / 8 / 16 as Fig. 4D)",
                "", "| model | unseen worms | other set | cells |", "|---|---|---|---|"]
        for k, v in traj.items():
            cols = []
            for s in ("unseen", "other"):
                m = v.get(s)
                cols.append("-" if not m else " / ".join(
                    f"{m[i - 1]:.4g}" for i in (1, 8, 16) if i <= len(m)))
            out.append(f"| {k} | {cols[0]} | {cols[1]} | {v['cells']} |")
        out.append("")
    out += ["## Conclusions", ""]
    for p in paragraphs:
        tag = {True: " [holds]", False: " [does not hold]"}.get(p.get("holds"), "")
        out += [f"**{p['title']}**{tag}: {p['text']}", ""]
    out.append(f"Wall time {results['wall_s']:.0f} s ({results['backend']}, "
               f"{results['workers']} worker(s)).")
    return "\n".join(out) + "\n"
