"""The paper's conclusions (Experiments 1-5) tested on our results, with numbers.

Each function turns the finished cells (and analyses) of one experiment into paragraphs
(:func:`neuroreduce.experiments.conclusions.paragraph`) that compare our numbers with the
published table and say whether the paper's claim holds. :func:`study_conclusions` picks them
from the experiment's ``paper`` key, or, for a file of the study without one (e.g. the fidelity
comparison), from what the grid contains (RNN and gated models, sizes, sampling intervals).

Criteria (stated in the text as well):

* "RNN clearly worse": every RNN's mean test NRMSE is above every LSTM/GRU's, and the best RNN
  is at least 1.5x the best gated model.
* "no noticeable difference" between time steps: relative difference of the mean test RMSE
  within ``size_tolerance`` or within the seeds' combined standard deviation.
* an input group "drives" outputs: removing it raises those outputs' test RMSE the most
  (relative increase), or its inputs carry the largest share of their attribution.
* "fewer recurrent units than outputs" (Experiment 5): the smallest model within
  ``size_tolerance`` of the best has fewer units than the data have outputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from neuroreduce.experiments.conclusions import (
    ablation_sentences,
    attribution_sentences,
    by_dataset,
    group_shares,
    mean_test,
    num,
    paragraph,
    pct,
    pm,
)
from neuroreduce.experiments.expfiles import CellSummary
from neuroreduce.studies.barbulescu2023.tables import INPUT_CLAIMS, get_paper_table
from neuroreduce.studies.base import StudyContext

CLEARLY_WORSE_RATIO = 1.5


def _top(values: Mapping[str, float], k: int) -> list[str]:
    return [o for o, _ in sorted(values.items(), key=lambda kv: -kv[1])[:k]]


def exp1(cells: Sequence[CellSummary]) -> list[dict[str, Any]]:
    """RNN vs LSTM vs GRU (Table 1)."""
    t = get_paper_table("table1")
    test = next(r for r in t.rows if r.split == "test").values
    p_rnn = min(v for c, v in zip(t.columns, test, strict=True) if c.model == "rnn")
    p_gated = min(v for c, v in zip(t.columns, test, strict=True) if c.model != "rnn")
    out = []
    for ds, group in by_dataset(cells).items():
        rnn = [c for c in group if c.model == "rnn"]
        gated = [c for c in group if c.model in ("lstm", "gru")]
        if not rnn or not gated:
            continue
        br, bg = min(rnn, key=mean_test), min(gated, key=mean_test)
        ratio = mean_test(br) / mean_test(bg)
        holds = all(mean_test(r) > mean_test(g) for r in rnn for g in gated) and (
            ratio >= CLEARLY_WORSE_RATIO)
        text = (f"On {ds} the best RNN ({br.label}, test NRMSE {pm(br)}) has {ratio:.2g}x the "
                f"error of the best gated model ({bg.label}, {pm(bg)}); in the paper the ratio "
                f"is {p_rnn / p_gated:.2g}x. The paper's \"RNN clearly worse\" "
                f"{'holds' if holds else 'does NOT hold'} on our data (criterion: every RNN "
                f"worse than every LSTM/GRU and at least {CLEARLY_WORSE_RATIO}x the best).")
        pairs = [(lstm, gru) for lstm in group for gru in group if lstm.model == "lstm"
                 and gru.model == "gru" and lstm.hidden == gru.hidden]
        if pairs:
            wins = sum(mean_test(g) < mean_test(lstm) for lstm, g in pairs)
            detail = "; ".join(f"{g.label} {num(mean_test(g))} vs {lo.label} {num(mean_test(lo))}"
                               for lo, g in pairs)
            text += (f" GRU beats the LSTM of the same size in {wins} of {len(pairs)} "
                     f"pair(s) ({detail}); "
                     "in the paper GRU-8 and GRU-32 beat LSTM-8 and LSTM-32.")
        out.append(paragraph("exp1", f"Experiment 1 (RNN vs LSTM vs GRU) on {ds}", text, holds))
    return out


def exp2(cells: Sequence[CellSummary], *, tolerance: float) -> list[dict[str, Any]]:
    """GRU size reduction (Table 2)."""
    t = get_paper_table("table2")
    ptest = {c.hidden: v for c, v in zip(t.columns, next(r for r in t.rows if r.split == "test")
                                         .values, strict=True)}
    p_best_h = min(ptest, key=ptest.get)
    out = []
    for ds, group in by_dataset(cells).items():
        models = {}
        for c in group:
            models.setdefault(c.model, {})[c.hidden] = c
        model = max(models, key=lambda m: (len(models[m]), m == "gru"))
        sizes = models[model]
        if len(sizes) < 3:
            continue
        best = min(sizes.values(), key=mean_test)
        parts = [f"On {ds} the best {model.upper()} size is {best.label} (test NRMSE "
                 f"{pm(best)}; paper: {p_best_h} units)."]
        holds: list[bool] = []
        if 4 in sizes:
            rel = mean_test(sizes[4]) / mean_test(best) - 1
            p_rel = ptest[4] / ptest[p_best_h] - 1
            within = rel <= tolerance
            parts.append(f"{model.upper()}-4 is within {100 * rel:.0f}% of the best (paper: "
                         f"{100 * p_rel:.0f}%), {'inside' if within else 'outside'} the "
                         f"{100 * tolerance:.0f}% tolerance.")
        if 16 in sizes and any(h > 16 for h in sizes):
            big = {h: c for h, c in sizes.items() if h > 16}
            worse = all(mean_test(c) > mean_test(sizes[16]) for c in big.values())
            holds.append(worse)
            detail = ", ".join(f"{c.label} {num(mean_test(c))}" for c in big.values())
            parts.append(f"More than 16 units {'is worse' if worse else 'is NOT worse'} than 16 "
                         f"({sizes[16].label} {num(mean_test(sizes[16]))} vs {detail}); the paper "
                         "reports worse test error above 16 units.")
        if 4 in sizes and 64 in sizes:
            beats = mean_test(sizes[4]) < mean_test(sizes[64])
            holds.append(beats)
            parts.append(f"The paper's \"a 4-unit GRU beats a 64-unit GRU\" "
                         f"{'holds' if beats else 'does NOT hold'} "
                         f"({num(mean_test(sizes[4]))} vs {num(mean_test(sizes[64]))}).")
        out.append(paragraph("exp2", f"Experiment 2 (size reduction) on {ds}", " ".join(parts),
                         all(holds) if holds else None))
    return out


def exp3(cells: Sequence[CellSummary], *, tolerance: float) -> list[dict[str, Any]]:
    """Coarse vs fine sampling interval (Table 3)."""
    t = get_paper_table("table3")
    pt = dict(zip([(c.hidden, c.dt_ms) for c in t.columns],
                  next(r for r in t.rows if r.split == "test").values, strict=True))
    groups: dict[tuple[str, int], list[CellSummary]] = {}
    for c in cells:
        if c.variant == "all" and math.isfinite(c.dt_ms):
            groups.setdefault((c.model, c.hidden), []).append(c)
    parts, holds = [], []
    for (model, hidden), group in sorted(groups.items()):
        if len({c.dt_ms for c in group}) < 2:
            continue
        coarse = max(group, key=lambda c: c.dt_ms)
        fine = min(group, key=lambda c: c.dt_ms)
        a, b = coarse.error("test", "rmse"), fine.error("test", "rmse")
        rel = b.mean / a.mean - 1
        same = abs(rel) <= tolerance or abs(b.mean - a.mean) <= math.hypot(a.std, b.std)
        holds.append(same)
        paper = ""
        if (hidden, coarse.dt_ms) in pt and (hidden, fine.dt_ms) in pt:
            paper = f" (paper: {pct(pt[(hidden, fine.dt_ms)] / pt[(hidden, coarse.dt_ms)] - 1)})"
        parts.append(f"{model.upper()}-{hidden}: test RMSE {num(a.mean)} ± {num(a.std)} at "
                     f"{coarse.dt_ms:g} ms vs {num(b.mean)} ± {num(b.std)} at {fine.dt_ms:g} ms, "
                     f"{pct(rel)}{paper}.")
    if not parts:
        return []
    ok = all(holds)
    parts.append(f"The paper's \"no noticeable difference between time steps\" "
                 f"{'holds' if ok else 'does NOT hold'} on our data (criterion: within "
                 f"{100 * tolerance:.0f}% or within the seeds' spread).")
    return [paragraph("exp3", "Experiment 3 (long sequences)", " ".join(parts), ok)]


def exp4(cells: Sequence[CellSummary], analyses: dict[str, Any]) -> list[dict[str, Any]]:
    """Input importance by retraining without inputs (Table 4) and by attribution."""
    abl = analyses.get("ablation", {}).get("variants", {})
    attr = analyses.get("attribution", {}).get("cells", {})
    verdicts: dict[str, bool] = {}
    for v in abl.values():
        rel = v["mean_relative"]
        if not rel:
            continue
        for claim in INPUT_CLAIMS:
            if set(claim.inputs) == set(v["removed"]) and set(claim.outputs) <= set(rel):
                verdicts[f"{claim.source}:{claim.group}:ablation"] = (
                    set(_top(rel, len(claim.outputs))) == set(claim.outputs))
    shares = group_shares(attr)
    for claim in INPUT_CLAIMS:
        key = frozenset(claim.inputs)
        if key in shares and set(claim.outputs) <= set(shares[key]):
            verdicts[f"{claim.source}:{claim.group}:attribution"] = (
                set(_top(shares[key], len(claim.outputs))) == set(claim.outputs))
    parts = ablation_sentences(analyses) + attribution_sentences(shares)
    if not parts:
        return []
    holds = None
    for claim in INPUT_CLAIMS:
        tests = {m: verdicts[f"{claim.source}:{claim.group}:{m}"] for m in ("ablation",
                 "attribution") if f"{claim.source}:{claim.group}:{m}" in verdicts}
        if not tests:
            continue
        label = "paper's stated conclusion" if claim.source == "stated" else "paper's observation"
        verdict = "; ".join(f"{'holds' if ok else 'does NOT hold'} by {m}"
                            for m, ok in tests.items())
        parts.append(f"The {label} \"{claim.group} drives {'/'.join(claim.outputs)}\": "
                     f"{verdict}.")
        if claim.source == "stated":
            holds = (holds if holds is not None else True) and all(tests.values())
    return [paragraph("exp4", "Experiment 4 (input importance)", " ".join(parts), holds)]


def exp5(cells: Sequence[CellSummary], *, tolerance: float) -> list[dict[str, Any]]:
    """Scalability (Table 5): two paragraphs per dataset.

    "Fewer units than outputs" holds when the smallest model (by parameters) whose mean test
    NRMSE is within ``tolerance`` of the best has fewer recurrent units than the data have
    outputs; "GRU beats LSTM" holds when the GRU wins in more than half of the sizes both have.
    """
    t = get_paper_table("table5")
    pv = dict(zip([(c.model, c.hidden) for c in t.columns], t.rows[0].values, strict=True))
    p_best = min(pv, key=pv.get)
    p_wins = sum(pv[("gru", h)] < pv[("lstm", h)] for (m, h) in pv if m == "gru"
                 and ("lstm", h) in pv)
    out = []
    for ds, group in by_dataset(cells).items():
        best = min(group, key=mean_test)
        n_out, n_in = len(best.outputs), len(best.inputs)
        near = [c for c in group if mean_test(c) <= (1 + tolerance) * mean_test(best)]
        small = min(near, key=lambda c: (c.n_parameters, mean_test(c)))
        holds = small.hidden < n_out
        text = (f"On {ds} ({n_in} inputs, {n_out} outputs) the best model is {best.label} "
                f"(test NRMSE {pm(best)}; paper: {p_best[0].upper()}-{p_best[1]}). The "
                f"smallest model within {100 * tolerance:.0f}% of it is {small.label} "
                f"({num(mean_test(small))}, {small.n_parameters} parameters), with {small.hidden} "
                f"recurrent units for {n_out} outputs.")
        per = best.per_output.get("test", {})
        worst = sorted(((o, s["nrmse"].mean) for o, s in per.items() if "nrmse" in s),
                       key=lambda kv: -kv[1])[:3]
        if worst:
            text += (f" Hardest outputs for {best.label}: "
                     + ", ".join(f"{o} {num(v)}" for o, v in worst) + ".")
        text += (f" The paper's \"scales to {n_out} outputs with fewer recurrent units than "
                 f"outputs\" {'holds' if holds else 'does NOT hold'} on our data.")
        out.append(paragraph("exp5", f"Experiment 5 (scalability) on {ds}", text, holds))

        sizes = {(c.model, c.hidden): c for c in group}
        pairs = [(sizes[("gru", h)], sizes[("lstm", h)]) for (m, h) in sorted(sizes)
                 if m == "gru" and ("lstm", h) in sizes]
        if pairs:
            wins = sum(mean_test(g) < mean_test(lo) for g, lo in pairs)
            detail = "; ".join(f"{g.label} {num(mean_test(g))} vs {lo.label} {num(mean_test(lo))}"
                               for g, lo in pairs)
            gru_holds = wins > len(pairs) / 2
            clear = sum(abs(mean_test(g) - mean_test(lo)) > math.hypot(g.error("test", "nrmse").std,
                                                               lo.error("test", "nrmse").std)
                        for g, lo in pairs)
            text = (f"On {ds} the GRU beats the LSTM of the same size in {wins} of "
                    f"{len(pairs)} sizes ({detail}; paper: {p_wins} of 3); {clear} of the "
                    f"{len(pairs)} differences exceed the seeds' combined standard deviation. "
                    f"\"GRU in particular\" {'holds' if gru_holds else 'does NOT hold'} on our "
                    "data.")
            out.append(paragraph("exp5", f"Experiment 5 (GRU vs LSTM) on {ds}", text, gru_holds))
    return out


def _default_kinds(ctx: StudyContext) -> tuple[str, ...]:
    """Without a paper table: Experiments 1-3 wherever the grid can test them."""
    models = {c.model for c in ctx.cells}
    return (("exp1",) if "rnn" in models and models & {"lstm", "gru"} else ()) + ("exp2", "exp3")


#: The paper table of an experiment file (its ``paper`` key) -> the experiment it tests.
TABLE_KINDS: dict[str, str] = {"table1": "exp1", "table2": "exp2", "table3": "exp3",
                               "table4": "exp4", "table5": "exp5"}

#: Paragraph builders by experiment, in the order they appear.
EXPERIMENTS: dict[str, Any] = {
    "exp1": lambda ctx: exp1(ctx.cells),
    "exp2": lambda ctx: exp2(ctx.cells, tolerance=ctx.tolerance),
    "exp3": lambda ctx: exp3(ctx.cells, tolerance=ctx.tolerance),
    "exp4": lambda ctx: exp4(ctx.cells, ctx.analyses),
    "exp5": lambda ctx: exp5(ctx.cells, tolerance=ctx.tolerance),
}


def study_conclusions(ctx: StudyContext) -> list[dict[str, Any]]:
    """The paper's experiments that this experiment tests, in paper order.

    The experiment of the file's table (``paper`` key), or without one Experiments 1-3 where
    the grid allows them; Experiment 4 also whenever ablation or attribution ran.
    """
    kind = TABLE_KINDS.get(ctx.table or "")
    kinds = set(_default_kinds(ctx) if kind is None else (kind,))
    if "ablation" in ctx.analyses or "attribution" in ctx.analyses:
        kinds.add("exp4")
    out: list[dict[str, Any]] = []
    for name, build in EXPERIMENTS.items():
        if name in kinds:
            out += build(ctx)
    return out
