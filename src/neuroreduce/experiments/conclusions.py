"""Generated conclusions: short paragraphs, with numbers, on what an experiment's results show.

Every sentence is computed from the experiment's results; nothing about the outcome is
hard-coded. Each paragraph is a dict with ``kind``, ``title``, ``text`` and ``holds`` (True /
False when it tests a claim, None when it only reports numbers). The generic paragraphs here
report numbers for any experiment: the ranking per dataset, input importance (ablation and
attribution), each behaviour of a mixed scenario, diverged members, error vs size, fidelity
levels, out-of-distribution error and speed. The claims of a publication are tested by its
study (:mod:`neuroreduce.studies`): the experiment file's ``study`` supplies paragraphs that
are placed right after the ranking, and may take over generic kinds (``Study.replaces``).

The helpers :func:`num`, :func:`pm`, :func:`pct`, :func:`paragraph`, :func:`by_dataset` and
:func:`mean_test` are the shared vocabulary of the studies' conclusions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce._io import write_json_atomic
from neuroreduce.experiments.expfiles import ANALYSIS_DIR, CellSummary, dataset_behaviours
from neuroreduce.studies.base import Study, StudyContext


def num(x: float) -> str:
    return "nan" if x is None or not math.isfinite(x) else f"{x:.3g}"


def pm(c: CellSummary, metric: str = "nrmse", split: str = "test") -> str:
    e = c.error(split, metric)
    return f"{num(e.mean)} ± {num(e.std)}"


def pct(x: float) -> str:
    return f"{100 * x:+.0f}%" if math.isfinite(x) else "nan"


def paragraph(kind: str, title: str, text: str, holds: bool | None = None) -> dict[str, Any]:
    return {"kind": kind, "title": title, "text": text, "holds": holds}


def by_dataset(cells: Sequence[CellSummary]) -> dict[str, list[CellSummary]]:
    out: dict[str, list[CellSummary]] = {}
    for c in cells:
        if c.variant == "all":
            out.setdefault(c.dataset, []).append(c)
    return out


def mean_test(c: CellSummary, metric: str = "nrmse") -> float:
    return c.error("test", metric).mean


# --------------------------------------------------------------------------- paragraphs
def ranking(cells: Sequence[CellSummary]) -> list[dict[str, Any]]:
    """Models ranked by mean test NRMSE per dataset."""
    out = []
    for ds, group in by_dataset(cells).items():
        ranked = sorted(group, key=mean_test)
        items = ", ".join(f"{c.label} {pm(c)}" for c in ranked)
        out.append(paragraph("ranking", f"Ranking on {ds}",
                         f"Test NRMSE (mean ± std over seeds), best first: {items}."))
    return out


def ablation_sentences(analyses: Mapping[str, Any]) -> list[str]:
    """One sentence per input variant: how much each output's test RMSE rises without it."""
    parts = []
    for name, v in analyses.get("ablation", {}).get("variants", {}).items():
        rel = v["mean_relative"]
        if not rel:
            continue
        ordered = sorted(rel.items(), key=lambda kv: -kv[1])
        pooled = [cell["pooled_rmse"] for cell in v["cells"]]
        spread = max(pooled) / min(pooled) - 1 if min(pooled) > 0 else float("nan")
        parts.append(f"Without {', '.join(v['removed'])} ({name}) the test RMSE per output rises "
                     f"by {', '.join(f'{o} {pct(r)}' for o, r in ordered)} (mean over "
                     f"{len(v['cells'])} model(s); pooled RMSE differs by {100 * spread:.0f}% "
                     "between model sizes).")
    return parts


def group_shares(attr: Mapping[str, Any]) -> dict[frozenset[str], dict[str, float]]:
    """Mean importance share of paired inputs (e.g. AVBL+AVBR) per output over all cells.

    ``attr`` is ``attribution.json``'s ``cells``; inputs whose names differ only in a final
    ``L``/``R`` form one group.
    """
    acc: dict[frozenset[str], dict[str, list[float]]] = {}
    for cell in attr.values():
        names, outs = cell["inputs"], cell["outputs"]
        imp = np.asarray(cell["importance_mean"])
        groups: dict[str, list[int]] = {}
        for i, n in enumerate(names):
            groups.setdefault(n[:-1] if n[-1:] in "LR" and len(n) > 1 else n, []).append(i)
        if len(groups) < 2:
            continue
        for idx in groups.values():
            key = frozenset(names[i] for i in idx)
            for j, o in enumerate(outs):
                acc.setdefault(key, {}).setdefault(o, []).append(float(imp[idx, j].sum()))
    return {k: {o: float(np.mean(v)) for o, v in d.items()} for k, d in acc.items()}


def attribution_sentences(shares: Mapping[frozenset[str], Mapping[str, float]]) -> list[str]:
    """One sentence per input group: its attribution share of each output (largest first)."""
    parts = []
    for key, share in shares.items():
        ordered = ", ".join(f"{o} {100 * s:.0f}%" for o, s in
                            sorted(share.items(), key=lambda kv: -kv[1]))
        parts.append(f"Attribution share of {'+'.join(sorted(key))} (integrated gradients, "
                     f"models with all inputs): {ordered}.")
    return parts


def importance_paragraph(analyses: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Input importance by retraining without inputs and by attribution (numbers only)."""
    shares = group_shares(analyses.get("attribution", {}).get("cells", {}))
    parts = ablation_sentences(analyses) + attribution_sentences(shares)
    if not parts:
        return []
    return [paragraph("importance", "Input importance", " ".join(parts))]


def _behaviour_scores(c: CellSummary,
                      behaviours: Sequence[tuple[str, Sequence[str]]]) -> dict[str, float]:
    """Median per-output test NRMSE of each behaviour whose outputs ``c`` all has."""
    per = c.per_output.get("test", {})
    return {b: float(np.median([per[o]["nrmse"].mean for o in outs]))
            for b, outs in behaviours if all(o in per for o in outs)}


def behaviour_paragraph(cells: Sequence[CellSummary],
                        resolved: dict[str, Any]) -> list[dict[str, Any]]:
    """Each behaviour of a mixed scenario scored apart (reports numbers; tests no claim).

    A behaviour's score is the median, over its outputs, of the per-output test NRMSE (each
    output's RMSE over its own range), so a behaviour with small voltage swings is not hidden
    by the pooled NRMSE, whose range comes from the widest outputs.
    """
    out = []
    for ds, group in by_dataset(cells).items():
        behaviours = dataset_behaviours(resolved, ds)
        if len(behaviours) < 2:
            continue
        table_scores = {c.label: _behaviour_scores(c, behaviours) for c in group}
        if any(len(v) != len(behaviours) for v in table_scores.values()):
            continue
        best = min(group, key=mean_test)
        b_best = table_scores[best.label]
        easy = min(b_best, key=b_best.get)
        text = (f"On {ds}, per behaviour (median over its outputs of the test NRMSE, each output "
                f"normalised by its own range), {best.label} scores "
                + ", ".join(f"{b} {num(v)} ({len(dict(behaviours)[b])} outputs)"
                            for b, v in b_best.items()) + ".")
        for b in b_best:
            if b == easy:
                continue
            ratios = [v[b] / v[easy] for v in table_scores.values() if v[easy] > 0]
            text += (f" The {b} outputs are {num(min(ratios))}-{num(max(ratios))}x as hard as the "
                     f"{easy} outputs across the {len(ratios)} models.")
        out.append(paragraph("behaviours", f"Per behaviour on {ds}", text))
    return out


def ood_paragraph(analyses: dict[str, Any]) -> list[dict[str, Any]]:
    rows = analyses.get("ood", {}).get("rows", [])
    if not rows:
        return []
    ratios = sorted(rows, key=lambda r: r["ratio"])
    best, worst = ratios[0], ratios[-1]
    text = (f"Out-of-distribution test RMSE / in-distribution test RMSE: median "
            f"{num(float(np.median([r['ratio'] for r in rows])))} over {len(rows)} cell(s); best "
            f"generaliser {best['label']} ({num(best['ratio'])}x, on {best['extra']})"
            f", worst {worst['label']} ({num(worst['ratio'])}x).")
    return [paragraph("ood", "Out-of-distribution stimuli", text)]


def stopped_paragraph(cells: Sequence[CellSummary]) -> list[dict[str, Any]]:
    """Which cells had seeds diverge (frozen at their best epoch before the last one)."""
    hit = [c for c in cells if c.stopped]
    if not hit:
        return []
    parts = []
    for c in hit:
        epochs = [c.best_epochs[k] for k in c.stopped if k < len(c.best_epochs)]
        span = ("" if not epochs else f", best epoch {epochs[0]}" if len(epochs) == 1
                else f", best epochs {min(epochs)}-{max(epochs)}")
        parts.append(f"{c.key} {len(c.stopped)} of {len(c.best_epochs)}{span}")
    text = (f"{len(hit)} of {len(cells)} cell(s) had members stop before the last epoch "
            f"(weights diverged to NaN/inf at this learning rate, or early stopping): "
            f"{'; '.join(parts)}. Those members keep the weights of their best validation epoch, "
            "so their errors are included in the means; a smaller learning_rate may avoid it.")
    return [paragraph("stopped", "Diverged members", text)]


def size_paragraph(analyses: dict[str, Any]) -> list[dict[str, Any]]:
    evs = analyses.get("error_vs_size", {})
    out = []
    for ds, r in evs.get("datasets", {}).items():
        if not r.get("best"):
            continue
        text = (f"Best on {ds}: {r['best']} (test NRMSE {num(r['best_mean'])}, "
                f"{r['best_parameters']} parameters). Smallest within "
                f"{100 * r['tolerance']:.0f}%: {r['smallest_within']} ({num(r['smallest_mean'])}, "
                f"{r['smallest_parameters']} parameters, {num(r['size_ratio'])}x the best's size).")
        out.append(paragraph("size", f"Error vs size on {ds}", text))
    return out


POOR_FIT_RATIO = 5.0  # a level whose best error is this many times another level's is "not fitted"


def fidelity(analyses: dict[str, Any], resolved: dict[str, Any]) -> list[dict[str, Any]]:
    """Model size needed per c302 parameter set (datasets that differ in ``parameter_set``).

    A level whose best test NRMSE is at least :data:`POOR_FIT_RATIO` times the best of another
    level is reported as not fitted by any size (with how much the sizes differ), and is left
    out of the "needs Nx the parameters" comparison, which would otherwise reward a level that
    every size fails on equally.
    """
    tables = resolved.get("datasets", {}) or {}
    evs = {ds: r for ds, r in analyses.get("error_vs_size", {}).get("datasets", {}).items()
           if r.get("best")}
    sets = {}
    for ds in evs:
        info = tables.get(ds) or {}
        sets[ds] = (info.get("table") or info).get("parameter_set")
    if len({s for s in sets.values() if s}) < 2:
        return []
    floor_ds = min(evs, key=lambda ds: evs[ds]["best_mean"])
    floor = evs[floor_ds]["best_mean"]
    parts, fitted = [], {}
    for ds, r in evs.items():
        ratio = r["best_mean"] / floor if floor > 0 else float("inf")
        if ratio >= POOR_FIT_RATIO:
            means = [pt["mean"] for pt in r.get("points", [])] or [r["best_mean"]]
            parts.append(f"{ds} (parameters_{sets[ds]}): no size fits it well; the best test "
                         f"NRMSE {num(r['best_mean'])} ({r['best']}) is {ratio:.2g}x the best on "
                         f"{floor_ds}, and the sizes lie within "
                         f"{100 * (max(means) / min(means) - 1):.0f}% of each other, so size "
                         "does not buy accuracy there")
            continue
        fitted[ds] = r["smallest_parameters"]
        parts.append(f"{ds} (parameters_{sets[ds]}): smallest within "
                     f"{100 * r['tolerance']:.0f}% of the best is {r['smallest_within']} "
                     f"({r['smallest_parameters']} parameters, NRMSE {num(r['smallest_mean'])};"
                     f" best {num(r['best_mean'])})")
    text = "; ".join(parts) + "."
    if len(fitted) >= 2:
        big, small = max(fitted, key=fitted.get), min(fitted, key=fitted.get)
        text += f" {big} needs {fitted[big] / fitted[small]:.2g}x the parameters of {small}."
    return [paragraph("fidelity", "Fidelity levels", text)]


def speed_paragraph(analyses: dict[str, Any]) -> list[dict[str, Any]]:
    sp = analyses.get("speed")
    if not sp:
        return []
    parts = []
    for ds, sim in sp["simulators"].items():
        if "error" in sim:
            parts.append(f"{ds}: simulator not timed ({sim['error']}).")
            continue
        rows = [r for r in sp["surrogates"] if r["dataset"] == ds and "speedup_batch1" in r]
        s1 = [r["speedup_batch1"] for r in rows]
        sb = [r["speedup_batch_all"] for r in rows]
        parts.append(f"{ds}: the {sim['simulator']} simulator takes "
                     f"{num(sim['s_per_simulated_s'])} s per simulated second (mean of "
                     f"{sim['n_trials']} trial(s), {num(sim['setup_s'])} s setup excluded); the "
                     f"surrogates give a speed-up of {num(min(s1))}-{num(max(s1))}x at batch 1 and "
                     f"{num(min(sb))}-{num(max(sb))}x per trial in a batch of "
                     f"{rows[0]['n_trials']}"
                     f"{' (below 1: the surrogate is slower)' if min(s1 + sb) < 1 else ''}."
                     if rows else f"{ds}: no surrogate timed.")
    return [paragraph("speed", "Speed", " ".join(parts))]


# ---------------------------------------------------------------------------------- main
#: The generic paragraphs after the ranking and the study's, in order: (kind, builder).
GENERIC: tuple[tuple[str, Callable[[StudyContext], list[dict[str, Any]]]], ...] = (
    ("importance", lambda ctx: importance_paragraph(ctx.analyses)),
    ("behaviours", lambda ctx: behaviour_paragraph(ctx.cells, ctx.resolved)),
    ("stopped", lambda ctx: stopped_paragraph(ctx.cells)),
    ("size", lambda ctx: size_paragraph(ctx.analyses)),
    ("fidelity", lambda ctx: fidelity(ctx.analyses, ctx.resolved)),
    ("ood", lambda ctx: ood_paragraph(ctx.analyses)),
    ("speed", lambda ctx: speed_paragraph(ctx.analyses)),
)


def conclusions(cells: Sequence[CellSummary], analyses: Mapping[str, Any], *,
                resolved: Mapping[str, Any], tolerance: float = 0.10,
                study: Study | None = None) -> list[dict[str, Any]]:
    """All paragraphs that the data support: the ranking, the study's paragraphs (if the
    experiment names a study), then the generic paragraphs of :data:`GENERIC` that the study
    does not replace (see the module docstring)."""
    ctx = StudyContext(cells=cells, analyses=analyses, resolved=resolved,
                       table=resolved.get("paper"), tolerance=tolerance)
    out = ranking(cells)
    replaced: frozenset[str] = frozenset()
    if study is not None:
        out += study.conclusions(ctx)
        replaced = study.replaces
    for kind, build in GENERIC:
        if kind not in replaced:
            out += build(ctx)
    return out


def write_conclusions(exp_dir: Path, cells: Sequence[CellSummary], analyses: Mapping[str, Any],
                      *, resolved: Mapping[str, Any], spec: Any,
                      study: Study | None = None) -> list[dict[str, Any]]:
    """Generate and write ``<exp_dir>/analysis/conclusions.json``."""
    paras = conclusions(cells, analyses, resolved=resolved, tolerance=spec.size_tolerance,
                        study=study)
    write_json_atomic(Path(exp_dir) / ANALYSIS_DIR / "conclusions.json", {"paragraphs": paras})
    return paras
