"""Generated conclusions: short paragraphs, with numbers, on whether the paper's findings hold.

Every sentence is computed from the experiment's results and the paper's published tables
(:mod:`.paper`); nothing about the outcome is hard-coded. Each paragraph is a dict with
``kind``, ``title``, ``text`` and ``holds`` (True / False when it tests a claim of the paper,
None when it only reports numbers). Which paragraphs appear depends on the data: the paper
table of the experiment (``paper`` key) and what the grid contains (RNN and gated models, sizes,
sampling intervals, input variants, extra datasets, parameter sets, speed).

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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce._io import write_json_atomic
from neuroreduce.experiments.expfiles import ANALYSIS_DIR, CellSummary, dataset_behaviours

CLEARLY_WORSE_RATIO = 1.5


def _g(x: float) -> str:
    return "nan" if x is None or not math.isfinite(x) else f"{x:.3g}"


def _pm(c: CellSummary, metric: str = "nrmse", split: str = "test") -> str:
    e = c.error(split, metric)
    return f"{_g(e.mean)} ± {_g(e.std)}"


def _pct(x: float) -> str:
    return f"{100 * x:+.0f}%" if math.isfinite(x) else "nan"


def _para(kind: str, title: str, text: str, holds: bool | None = None) -> dict[str, Any]:
    return {"kind": kind, "title": title, "text": text, "holds": holds}


def _by_dataset(cells: Sequence[CellSummary]) -> dict[str, list[CellSummary]]:
    out: dict[str, list[CellSummary]] = {}
    for c in cells:
        if c.variant == "all":
            out.setdefault(c.dataset, []).append(c)
    return out


def _mean(c: CellSummary, metric: str = "nrmse") -> float:
    return c.error("test", metric).mean


# --------------------------------------------------------------------------- paragraphs
def ranking(cells: Sequence[CellSummary]) -> list[dict[str, Any]]:
    """Models ranked by mean test NRMSE per dataset."""
    out = []
    for ds, group in _by_dataset(cells).items():
        ranked = sorted(group, key=_mean)
        items = ", ".join(f"{c.label} {_pm(c)}" for c in ranked)
        out.append(_para("ranking", f"Ranking on {ds}",
                         f"Test NRMSE (mean ± std over seeds), best first: {items}."))
    return out


def exp1(cells: Sequence[CellSummary]) -> list[dict[str, Any]]:
    """RNN vs LSTM vs GRU (Table 1)."""
    from neuroreduce.experiments.paper import get_paper_table

    t = get_paper_table("table1")
    test = next(r for r in t.rows if r.split == "test").values
    p_rnn = min(v for c, v in zip(t.columns, test, strict=True) if c.model == "rnn")
    p_gated = min(v for c, v in zip(t.columns, test, strict=True) if c.model != "rnn")
    out = []
    for ds, group in _by_dataset(cells).items():
        rnn = [c for c in group if c.model == "rnn"]
        gated = [c for c in group if c.model in ("lstm", "gru")]
        if not rnn or not gated:
            continue
        br, bg = min(rnn, key=_mean), min(gated, key=_mean)
        ratio = _mean(br) / _mean(bg)
        holds = all(_mean(r) > _mean(g) for r in rnn for g in gated) and (
            ratio >= CLEARLY_WORSE_RATIO)
        text = (f"On {ds} the best RNN ({br.label}, test NRMSE {_pm(br)}) has {ratio:.2g}x the "
                f"error of the best gated model ({bg.label}, {_pm(bg)}); in the paper the ratio "
                f"is {p_rnn / p_gated:.2g}x. The paper's \"RNN clearly worse\" "
                f"{'holds' if holds else 'does NOT hold'} on our data (criterion: every RNN "
                f"worse than every LSTM/GRU and at least {CLEARLY_WORSE_RATIO}x the best).")
        pairs = [(lstm, gru) for lstm in group for gru in group if lstm.model == "lstm"
                 and gru.model == "gru" and lstm.hidden == gru.hidden]
        if pairs:
            wins = sum(_mean(g) < _mean(lstm) for lstm, g in pairs)
            detail = "; ".join(f"{g.label} {_g(_mean(g))} vs {lo.label} {_g(_mean(lo))}"
                               for lo, g in pairs)
            text += (f" GRU beats the LSTM of the same size in {wins} of {len(pairs)} "
                     f"pair(s) ({detail}); "
                     "in the paper GRU-8 and GRU-32 beat LSTM-8 and LSTM-32.")
        out.append(_para("exp1", f"Experiment 1 (RNN vs LSTM vs GRU) on {ds}", text, holds))
    return out


def exp2(cells: Sequence[CellSummary], *, tolerance: float) -> list[dict[str, Any]]:
    """GRU size reduction (Table 2)."""
    from neuroreduce.experiments.paper import get_paper_table

    t = get_paper_table("table2")
    ptest = {c.hidden: v for c, v in zip(t.columns, next(r for r in t.rows if r.split == "test")
                                         .values, strict=True)}
    p_best_h = min(ptest, key=ptest.get)
    out = []
    for ds, group in _by_dataset(cells).items():
        models = {}
        for c in group:
            models.setdefault(c.model, {})[c.hidden] = c
        model = max(models, key=lambda m: (len(models[m]), m == "gru"))
        sizes = models[model]
        if len(sizes) < 3:
            continue
        best = min(sizes.values(), key=_mean)
        parts = [f"On {ds} the best {model.upper()} size is {best.label} (test NRMSE "
                 f"{_pm(best)}; paper: {p_best_h} units)."]
        holds: list[bool] = []
        if 4 in sizes:
            rel = _mean(sizes[4]) / _mean(best) - 1
            p_rel = ptest[4] / ptest[p_best_h] - 1
            within = rel <= tolerance
            parts.append(f"{model.upper()}-4 is within {100 * rel:.0f}% of the best (paper: "
                         f"{100 * p_rel:.0f}%), {'inside' if within else 'outside'} the "
                         f"{100 * tolerance:.0f}% tolerance.")
        if 16 in sizes and any(h > 16 for h in sizes):
            big = {h: c for h, c in sizes.items() if h > 16}
            worse = all(_mean(c) > _mean(sizes[16]) for c in big.values())
            holds.append(worse)
            detail = ", ".join(f"{c.label} {_g(_mean(c))}" for c in big.values())
            parts.append(f"More than 16 units {'is worse' if worse else 'is NOT worse'} than 16 "
                         f"({sizes[16].label} {_g(_mean(sizes[16]))} vs {detail}); the paper "
                         "reports worse test error above 16 units.")
        if 4 in sizes and 64 in sizes:
            beats = _mean(sizes[4]) < _mean(sizes[64])
            holds.append(beats)
            parts.append(f"The paper's \"a 4-unit GRU beats a 64-unit GRU\" "
                         f"{'holds' if beats else 'does NOT hold'} "
                         f"({_g(_mean(sizes[4]))} vs {_g(_mean(sizes[64]))}).")
        out.append(_para("exp2", f"Experiment 2 (size reduction) on {ds}", " ".join(parts),
                         all(holds) if holds else None))
    return out


def exp3(cells: Sequence[CellSummary], *, tolerance: float) -> list[dict[str, Any]]:
    """Coarse vs fine sampling interval (Table 3)."""
    from neuroreduce.experiments.paper import get_paper_table

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
            paper = f" (paper: {_pct(pt[(hidden, fine.dt_ms)] / pt[(hidden, coarse.dt_ms)] - 1)})"
        parts.append(f"{model.upper()}-{hidden}: test RMSE {_g(a.mean)} ± {_g(a.std)} at "
                     f"{coarse.dt_ms:g} ms vs {_g(b.mean)} ± {_g(b.std)} at {fine.dt_ms:g} ms, "
                     f"{_pct(rel)}{paper}.")
    if not parts:
        return []
    ok = all(holds)
    parts.append(f"The paper's \"no noticeable difference between time steps\" "
                 f"{'holds' if ok else 'does NOT hold'} on our data (criterion: within "
                 f"{100 * tolerance:.0f}% or within the seeds' spread).")
    return [_para("exp3", "Experiment 3 (long sequences)", " ".join(parts), ok)]


def _top(values: dict[str, float], k: int) -> list[str]:
    return [o for o, _ in sorted(values.items(), key=lambda kv: -kv[1])[:k]]


def exp4(cells: Sequence[CellSummary], analyses: dict[str, Any]) -> list[dict[str, Any]]:
    """Input importance by retraining without inputs (Table 4) and by attribution."""
    from neuroreduce.experiments.paper import INPUT_CLAIMS

    abl = analyses.get("ablation", {}).get("variants", {})
    attr = analyses.get("attribution", {}).get("cells", {})
    out = []
    parts = []
    verdicts: dict[str, bool] = {}
    for name, v in abl.items():
        rel = v["mean_relative"]
        if not rel:
            continue
        ordered = sorted(rel.items(), key=lambda kv: -kv[1])
        pooled = [cell["pooled_rmse"] for cell in v["cells"]]
        spread = max(pooled) / min(pooled) - 1 if min(pooled) > 0 else float("nan")
        parts.append(f"Without {', '.join(v['removed'])} ({name}) the test RMSE per output rises "
                     f"by {', '.join(f'{o} {_pct(r)}' for o, r in ordered)} (mean over "
                     f"{len(v['cells'])} model(s); pooled RMSE differs by {100 * spread:.0f}% "
                     "between model sizes).")
        for claim in INPUT_CLAIMS:
            if set(claim.inputs) == set(v["removed"]) and set(claim.outputs) <= set(rel):
                verdicts[f"{claim.source}:{claim.group}:ablation"] = (
                    set(_top(rel, len(claim.outputs))) == set(claim.outputs))
    shares = _group_shares(attr)
    for claim in INPUT_CLAIMS:
        key = frozenset(claim.inputs)
        if key in shares and set(claim.outputs) <= set(shares[key]):
            verdicts[f"{claim.source}:{claim.group}:attribution"] = (
                set(_top(shares[key], len(claim.outputs))) == set(claim.outputs))
    for key, share in shares.items():
        ordered = ", ".join(f"{o} {100 * s:.0f}%" for o, s in
                            sorted(share.items(), key=lambda kv: -kv[1]))
        parts.append(f"Attribution share of {'+'.join(sorted(key))} (integrated gradients, "
                     f"models with all inputs): {ordered}.")
    if not parts:
        return out
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
    out.append(_para("exp4", "Experiment 4 (input importance)", " ".join(parts), holds))
    return out


def _group_shares(attr: dict[str, Any]) -> dict[frozenset[str], dict[str, float]]:
    """Mean importance share of paired inputs (e.g. AVBL+AVBR) per output over all cells."""
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


def exp5(cells: Sequence[CellSummary], *, tolerance: float) -> list[dict[str, Any]]:
    """Scalability (Table 5): two paragraphs per dataset.

    "Fewer units than outputs" holds when the smallest model (by parameters) whose mean test
    NRMSE is within ``tolerance`` of the best has fewer recurrent units than the data have
    outputs; "GRU beats LSTM" holds when the GRU wins in more than half of the sizes both have.
    """
    from neuroreduce.experiments.paper import get_paper_table

    t = get_paper_table("table5")
    pv = dict(zip([(c.model, c.hidden) for c in t.columns], t.rows[0].values, strict=True))
    p_best = min(pv, key=pv.get)
    p_wins = sum(pv[("gru", h)] < pv[("lstm", h)] for (m, h) in pv if m == "gru"
                 and ("lstm", h) in pv)
    out = []
    for ds, group in _by_dataset(cells).items():
        best = min(group, key=_mean)
        n_out, n_in = len(best.outputs), len(best.inputs)
        near = [c for c in group if _mean(c) <= (1 + tolerance) * _mean(best)]
        small = min(near, key=lambda c: (c.n_parameters, _mean(c)))
        holds = small.hidden < n_out
        text = (f"On {ds} ({n_in} inputs, {n_out} outputs) the best model is {best.label} "
                f"(test NRMSE {_pm(best)}; paper: {p_best[0].upper()}-{p_best[1]}). The "
                f"smallest model within {100 * tolerance:.0f}% of it is {small.label} "
                f"({_g(_mean(small))}, {small.n_parameters} parameters), with {small.hidden} "
                f"recurrent units for {n_out} outputs.")
        per = best.per_output.get("test", {})
        worst = sorted(((o, s["nrmse"].mean) for o, s in per.items() if "nrmse" in s),
                       key=lambda kv: -kv[1])[:3]
        if worst:
            text += (f" Hardest outputs for {best.label}: "
                     + ", ".join(f"{o} {_g(v)}" for o, v in worst) + ".")
        text += (f" The paper's \"scales to {n_out} outputs with fewer recurrent units than "
                 f"outputs\" {'holds' if holds else 'does NOT hold'} on our data.")
        out.append(_para("exp5", f"Experiment 5 (scalability) on {ds}", text, holds))

        sizes = {(c.model, c.hidden): c for c in group}
        pairs = [(sizes[("gru", h)], sizes[("lstm", h)]) for (m, h) in sorted(sizes)
                 if m == "gru" and ("lstm", h) in sizes]
        if pairs:
            wins = sum(_mean(g) < _mean(lo) for g, lo in pairs)
            detail = "; ".join(f"{g.label} {_g(_mean(g))} vs {lo.label} {_g(_mean(lo))}"
                               for g, lo in pairs)
            gru_holds = wins > len(pairs) / 2
            clear = sum(abs(_mean(g) - _mean(lo)) > math.hypot(g.error("test", "nrmse").std,
                                                               lo.error("test", "nrmse").std)
                        for g, lo in pairs)
            text = (f"On {ds} the GRU beats the LSTM of the same size in {wins} of "
                    f"{len(pairs)} sizes ({detail}; paper: {p_wins} of 3); {clear} of the "
                    f"{len(pairs)} differences exceed the seeds' combined standard deviation. "
                    f"\"GRU in particular\" {'holds' if gru_holds else 'does NOT hold'} on our "
                    "data.")
            out.append(_para("exp5", f"Experiment 5 (GRU vs LSTM) on {ds}", text, gru_holds))
    return out


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
    for ds, group in _by_dataset(cells).items():
        behaviours = dataset_behaviours(resolved, ds)
        if len(behaviours) < 2:
            continue
        table_scores = {c.label: _behaviour_scores(c, behaviours) for c in group}
        if any(len(v) != len(behaviours) for v in table_scores.values()):
            continue
        best = min(group, key=_mean)
        b_best = table_scores[best.label]
        easy = min(b_best, key=b_best.get)
        text = (f"On {ds}, per behaviour (median over its outputs of the test NRMSE, each output "
                f"normalised by its own range), {best.label} scores "
                + ", ".join(f"{b} {_g(v)} ({len(dict(behaviours)[b])} outputs)"
                            for b, v in b_best.items()) + ".")
        for b in b_best:
            if b == easy:
                continue
            ratios = [v[b] / v[easy] for v in table_scores.values() if v[easy] > 0]
            text += (f" The {b} outputs are {_g(min(ratios))}-{_g(max(ratios))}x as hard as the "
                     f"{easy} outputs across the {len(ratios)} models.")
        out.append(_para("behaviours", f"Per behaviour on {ds}", text))
    return out


def ood_paragraph(analyses: dict[str, Any]) -> list[dict[str, Any]]:
    rows = analyses.get("ood", {}).get("rows", [])
    if not rows:
        return []
    ratios = sorted(rows, key=lambda r: r["ratio"])
    text = (f"Out-of-distribution test RMSE / in-distribution test RMSE: median "
            f"{_g(float(np.median([r['ratio'] for r in rows])))} over {len(rows)} cell(s); best "
            f"generaliser {ratios[0]['label']} ({_g(ratios[0]['ratio'])}x, on {ratios[0]['extra']})"
            f", worst {ratios[-1]['label']} ({_g(ratios[-1]['ratio'])}x).")
    return [_para("ood", "Out-of-distribution stimuli", text)]


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
    return [_para("stopped", "Diverged members", text)]


def size_paragraph(analyses: dict[str, Any]) -> list[dict[str, Any]]:
    evs = analyses.get("error_vs_size", {})
    out = []
    for ds, r in evs.get("datasets", {}).items():
        if not r.get("best"):
            continue
        text = (f"Best on {ds}: {r['best']} (test NRMSE {_g(r['best_mean'])}, "
                f"{r['best_parameters']} parameters). Smallest within "
                f"{100 * r['tolerance']:.0f}%: {r['smallest_within']} ({_g(r['smallest_mean'])}, "
                f"{r['smallest_parameters']} parameters, {_g(r['size_ratio'])}x the best's size).")
        out.append(_para("size", f"Error vs size on {ds}", text))
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
                         f"NRMSE {_g(r['best_mean'])} ({r['best']}) is {ratio:.2g}x the best on "
                         f"{floor_ds}, and the sizes lie within "
                         f"{100 * (max(means) / min(means) - 1):.0f}% of each other, so size "
                         "does not buy accuracy there")
            continue
        fitted[ds] = r["smallest_parameters"]
        parts.append(f"{ds} (parameters_{sets[ds]}): smallest within "
                     f"{100 * r['tolerance']:.0f}% of the best is {r['smallest_within']} "
                     f"({r['smallest_parameters']} parameters, NRMSE {_g(r['smallest_mean'])};"
                     f" best {_g(r['best_mean'])})")
    text = "; ".join(parts) + "."
    if len(fitted) >= 2:
        big, small = max(fitted, key=fitted.get), min(fitted, key=fitted.get)
        text += f" {big} needs {fitted[big] / fitted[small]:.2g}x the parameters of {small}."
    return [_para("fidelity", "Fidelity levels", text)]


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
                     f"{_g(sim['s_per_simulated_s'])} s per simulated second (mean of "
                     f"{sim['n_trials']} trial(s), {_g(sim['setup_s'])} s setup excluded); the "
                     f"surrogates give a speed-up of {_g(min(s1))}-{_g(max(s1))}x at batch 1 and "
                     f"{_g(min(sb))}-{_g(max(sb))}x per trial in a batch of "
                     f"{rows[0]['n_trials']}"
                     f"{' (below 1: the surrogate is slower)' if min(s1 + sb) < 1 else ''}."
                     if rows else f"{ds}: no surrogate timed.")
    return [_para("speed", "Speed", " ".join(parts))]


# ---------------------------------------------------------------------------------- main
PAPER_KINDS = {"table1": "exp1", "table2": "exp2", "table3": "exp3", "table4": "exp4",
               "table5": "exp5"}


def conclusions(cells: Sequence[CellSummary], analyses: dict[str, Any], *,
                resolved: dict[str, Any], tolerance: float = 0.10) -> list[dict[str, Any]]:
    """All paragraphs that the data support (see the module docstring)."""
    kind = PAPER_KINDS.get(resolved.get("paper") or "")
    models = {c.model for c in cells}
    out = ranking(cells)
    if kind == "exp1" or (kind is None and "rnn" in models and models & {"lstm", "gru"}):
        out += exp1(cells)
    if kind == "exp2" or kind is None:
        out += exp2(cells, tolerance=tolerance)
    if kind in ("exp3", None):
        out += exp3(cells, tolerance=tolerance)
    if kind == "exp4" or "ablation" in analyses or "attribution" in analyses:
        out += exp4(cells, analyses)
    if kind == "exp5":
        out += exp5(cells, tolerance=tolerance)
    out += behaviour_paragraph(cells, resolved)
    out += stopped_paragraph(cells)
    out += size_paragraph(analyses) + fidelity(analyses, resolved)
    out += ood_paragraph(analyses) + speed_paragraph(analyses)
    return out


def write_conclusions(exp_dir: Path, cells: Sequence[CellSummary], analyses: dict[str, Any], *,
                      resolved: dict[str, Any], spec: Any) -> list[dict[str, Any]]:
    """Generate and write ``<exp_dir>/analysis/conclusions.json``."""
    paras = conclusions(cells, analyses, resolved=resolved, tolerance=spec.size_tolerance)
    write_json_atomic(Path(exp_dir) / ANALYSIS_DIR / "conclusions.json", {"paragraphs": paras})
    return paras
