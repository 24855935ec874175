"""The study's conclusions and report sections, generated from ``analysis/cortical_neuron.json``.

Claims tested (``holds`` True / False with the numbers; None when our data cannot test it):

* Spieler 2023: an ELM neuron below 10,000 parameters reaches test AUC >= 0.99;
* issue 11's target: a surrogate of at most 10,000 parameters with AUC >= 0.99 and soma
  explained variance >= 0.95 on the NMDA cell;
* the blog: LSTMs beat GRUs and vanilla RNNs (best of each);
* Beniaguev 2021: the AMPA-only cell needs a smaller surrogate than the NMDA cell;
* issue 11's speed target: the surrogate (batched) is >= 1,000x faster than NEURON.

Numbers only: the GLM baseline against the best model (how hard the data are), the threshold
precision of the best model of each family (the blog's spread-of-outputs question) and what
the AUC-vs-data curves say it would take.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from neuroreduce.experiments.conclusions import paragraph
from neuroreduce.studies.base import StudyContext
from neuroreduce.studies.cortical_neuron.tables import (
    BLOG_TOP10,
    SPIELER_ELM,
    TARGET_AUC,
    TARGET_EXPLAINED_VARIANCE,
    TARGET_PARAMETERS,
    format_parameter_table,
    parameter_table,
)

SPEED_TARGET = 1000.0


def _n(x: Any, digits: int = 4) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if not math.isfinite(v) else f"{v:.{digits}g}"


def _auc(r: Mapping[str, Any]) -> float:
    v = (r.get("spikes") or {}).get("auc", float("nan"))
    return v if isinstance(v, float) and math.isfinite(v) else -1.0


def _ev(r: Mapping[str, Any]) -> float:
    v = (r.get("soma") or {}).get("explained_variance", float("nan"))
    return v if isinstance(v, float) and math.isfinite(v) else -math.inf


def _best(records: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    ok = [r for r in records if _auc(r) >= 0]
    return max(ok, key=_auc) if ok else None


def _neuron_for(result: Mapping[str, Any], dataset: str,
                costs: Mapping[str, Any]) -> tuple[float | None, str]:
    """NEURON's wall seconds per simulated second to compare ``dataset``'s surrogates with:
    the run measured in this study run at the dataset's own step (both figures then come from
    one run, on one thread), else the dataset's recorded generation cost; ``(None, "")``
    without either."""
    measured = result.get("neuron_measured") or {}
    step = ((result.get("datasets") or {}).get(dataset) or {}).get("neuron_dt_ms")
    if measured.get("available") and step is not None and math.isclose(
            float(measured.get("dt_ms", -1)), float(step)):
        return float(measured["wall_s_per_simulated_s"]), (
            f"measured in this run, same cell and step {_n(step)} ms, one trial of "
            f"{_n(measured['duration_ms'])} ms, wall")
    if costs.get(dataset):
        return float(costs[dataset]), "the dataset's own simulation, wall"
    return None, ""


def _size(r: Mapping[str, Any] | None) -> str:
    return "n/a" if r is None else f"{r['parameters']:,} ({r['label']})"


def _data_note(result: Mapping[str, Any]) -> str:
    parts = [f"{n}: {d['n_trials']} trials x {d['n_time']} samples at {_n(d['dt_ms'])} ms, "
             f"{d['inputs']} inputs, {_n(d['spike_rate_hz'], 3)} spikes/s ({d.get('generator')})"
             for n, d in (result.get("datasets") or {}).items()]
    return ("Our data (not NeuronIO; the published numbers are on NeuronIO): "
            + "; ".join(parts) + ".")


def claims(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The paragraphs (module docstring) from the analysis ``result``."""
    records = [r for r in result.get("cells") or [] if _auc(r) >= 0]
    nmda = [r for r in records if not r["ampa_only"]]
    out = [paragraph("cortical_data", "Data", _data_note(result))]
    if not nmda:
        return out
    best = _best(nmda)
    assert best is not None
    # Spieler: an ELM below 10k parameters reaches AUC >= 0.99
    elms = [r for r in nmda if r["model"] == "elm" and r["parameters"] <= TARGET_PARAMETERS]
    if elms:
        e = _best(elms)
        assert e is not None
        holds = _auc(e) >= TARGET_AUC
        out.append(paragraph(
            "cortical_elm", "ELM below 10k parameters (Spieler 2023)",
            f"Spieler et al. report Branch-ELMs of 6,827 and 8,002 parameters at AUC "
            f"{SPIELER_ELM[15][1]} and {SPIELER_ELM[20][1]} on NeuronIO. On our data the best ELM "
            f"of at most {TARGET_PARAMETERS:,} parameters is {e['label']} ({e['parameters']:,} "
            f"parameters) at test AUC {_n(_auc(e))}: the claim that an ELM below 10k parameters "
            f"reaches AUC >= {TARGET_AUC} {'holds' if holds else 'does NOT hold'} here.", holds))
    # the target
    small = [r for r in nmda if r["parameters"] <= TARGET_PARAMETERS]
    if small:
        s = max(small, key=lambda r: (_auc(r), _ev(r)))
        hit = [r for r in small if _auc(r) >= TARGET_AUC and _ev(r) >= TARGET_EXPLAINED_VARIANCE]
        holds = bool(hit)
        chosen = min(hit, key=lambda r: r["parameters"]) if hit else s
        out.append(paragraph(
            "cortical_target", "Target: <= 10k parameters, AUC >= 0.99, EV >= 0.95",
            f"{'Reached' if holds else 'Not reached'}: the best model of at most "
            f"{TARGET_PARAMETERS:,} parameters on the NMDA cell is {chosen['label']} "
            f"({chosen['parameters']:,} parameters): test AUC {_n(_auc(chosen))}, soma explained "
            f"variance {_n(_ev(chosen), 3)}, RMSE {_n((chosen.get('soma') or {}).get('rmse'), 3)} "
            f"mV. Best of any size: {best['label']} ({best['parameters']:,}) AUC "
            f"{_n(_auc(best))}.", holds))
    # the blog: LSTM best among the recurrent cells
    rec = {fam: _best([r for r in nmda if r["model"] == "stacked_rnn" and r["family"] == fam])
           for fam in ("rnn", "gru", "lstm")}
    rec = {k: v for k, v in rec.items() if v is not None}
    if len(rec) >= 2:
        winner = max(rec, key=lambda k: _auc(rec[k]))
        lstm_top = sum(1 for r in BLOG_TOP10 if r[0] == "lstm")
        items = "; ".join(f"{k.upper()} {_n(_auc(v))} ({v['label']}, {v['parameters']:,})"
                          for k, v in rec.items())
        out.append(paragraph(
            "cortical_lstm", "LSTM vs GRU vs RNN (the blog)",
            f"The blog's top 10 holds {lstm_top} LSTMs. Best test AUC per recurrent cell on our "
            f"data: {items}. That the LSTM is best "
            f"{'holds' if winner == 'lstm' else 'does NOT hold'} here (best: {winner.upper()}).",
            winner == "lstm" if "lstm" in rec else None))
    # GLM baseline
    glms = [r for r in nmda if r["model"] == "glm"]
    if glms:
        g = _best(glms)
        assert g is not None
        out.append(paragraph(
            "cortical_glm", "How hard are the data: the GLM baseline",
            f"The linear-nonlinear GLM ({g['label']}, {g['parameters']:,} parameters) reaches "
            f"test AUC {_n(_auc(g))} (TP rate at 1 % FP "
            f"{_n(g['spikes']['tpr_at_fp'].get('0.01'), 3)}), against {_n(_auc(best))} for the "
            f"best model ({best['label']}): the nonlinear surrogates gain "
            f"{_n(_auc(best) - _auc(g), 3)} AUC."))
    # thresholds
    fams: dict[str, Mapping[str, Any]] = {}
    for r in nmda:
        if r["family"] not in fams or _auc(r) > _auc(fams[r["family"]]):
            fams[r["family"]] = r
    parts = []
    for _, r in sorted(fams.items()):
        sp = r["spikes"]
        p = sp.get("precision") or {}
        parts.append(f"{r['label']}: Youden {_n(sp['youden_threshold'], 3)}, G-mean "
                     f"{_n(sp['gmean_threshold'], 3)}, thresholds within 1 pt of the best "
                     f"balanced accuracy ({_n(p.get('best_balanced_accuracy'), 3)}) span "
                     f"{_n(p.get('low'), 3)}-{_n(p.get('high'), 3)} ({_n(p.get('decades'), 2)} "
                     "decades)")
    out.append(paragraph(
        "cortical_thresholds", "How precisely must the threshold be set (the blog's question)",
        "Best model of each family: " + "; ".join(parts) + ". The blog found its LSTM's "
        "thresholds differing only in the fifth decimal; a span of a decade or more means the "
        "spike output needs no such precision."))
    # contrast
    con = result.get("contrast")
    if con:
        sn, sa = con.get("smallest_nmda"), con.get("smallest_ampa")
        trials = "/".join(str(n) for n in con.get("train_trials") or [])
        text = (f"Training trials compared: {trials or '?'}. "
                f"Best test AUC: NMDA cell {_n(con['best_nmda']['auc'])} "
                f"({con['best_nmda']['label']}), AMPA-only cell {_n(con['best_ampa']['auc'])} "
                f"({con['best_ampa']['label']}). Fewest parameters within {_n(0.005)} of the lower "
                f"best (AUC >= {_n(con['bar_auc'])}): NMDA "
                f"{_size(sn)}, AMPA-only {_size(sa)}.")
        if con.get("same_architecture"):
            text += " Same architecture on both: " + "; ".join(
                f"{k} NMDA {_n(v['nmda_auc'])} / AMPA {_n(v['ampa_auc'])}"
                for k, v in con["same_architecture"].items()) + "."
        h = con.get("holds")
        verdict = ("" if h is None else " That the AMPA-only cell needs a smaller surrogate "
                   f"(Beniaguev 2021) {'holds' if h else 'does NOT hold'} here.")
        out.append(paragraph("cortical_contrast", "NMDA vs AMPA-only", text + verdict, h))
    else:
        out.append(paragraph("cortical_contrast", "NMDA vs AMPA-only",
                             "Not tested: the experiment has no AMPA-only dataset."))
    # data size
    curves = result.get("data_size") or {}
    if curves:
        parts = []
        for label, pts in curves.items():
            need = (result.get("extrapolated_trials") or {}).get(label)
            parts.append(f"{label}: " + ", ".join(f"{int(n)} trials -> {_n(a)}" for n, a in pts)
                         + (f"; AUC {TARGET_AUC} extrapolated at ~{need:,.0f} training trials"
                            if need and need <= 1e6 else
                            f"; AUC {TARGET_AUC} beyond 1,000,000 trials (nearly flat)" if need
                            else "; no extrapolation (AUC not rising)"))
        out.append(paragraph("cortical_data_size", "AUC vs data size (what it would take)",
                             "; ".join(parts) + ". (A straight line of log(1 - AUC) against "
                             "log(trials) through the last two points.)"))
    # speed
    costs = result.get("neuron_cost_s_per_simulated_s") or {}
    b = best.get("cost") or {}
    if b:
        text = (f"{best['label']} ({best['parameters']:,} parameters), one CPU thread: "
                f"{_n(b['batch1_s_per_simulated_s'], 3)} s per simulated second at batch 1, "
                f"{_n(b['batched_s_per_simulated_s'], 3)} s batched ({b['batch']} trials).")
        neuron, source = _neuron_for(result, best["dataset"], costs)
        holds = None
        if neuron:
            ratio = neuron / b["batched_s_per_simulated_s"]
            holds = ratio >= SPEED_TARGET
            text += (f" NEURON ({source}): {_n(neuron, 3)} s per simulated "
                     f"second: the surrogate is {_n(neuron / b['batch1_s_per_simulated_s'], 3)}x "
                     f"faster at batch 1 and {_n(ratio, 3)}x batched; the >= 1,000x target "
                     f"{'holds' if holds else 'does NOT hold'}.")
        else:
            text += (" NEURON's cost is not in the dataset's provenance: no ratio on these data"
                     + ("; see the NeuronIO-scale comparison."
                        if (result.get("neuron_measured") or {}).get("available") else "."))
        out.append(paragraph("cortical_speed", "Surrogate vs NEURON", text, holds))
    rows = result.get("neuronio_speed") or []
    if rows:
        measured = result.get("neuron_measured") or {}
        neuron = measured.get("cpu_s_per_simulated_s") if measured.get("available") else None
        parts, ratios = [], {}
        for r in rows:
            part = (f"{r['label']} ({r['parameters']:,}): {_n(r['batch1_s_per_simulated_s'], 3)} "
                    f"s at batch 1, {_n(r['batched_s_per_simulated_s'], 3)} s batched "
                    f"({r['batch']}) wall; CPU {_n(r['batch1_cpu_s_per_simulated_s'], 3)} / "
                    f"{_n(r['batched_cpu_s_per_simulated_s'], 3)} s")
            if neuron:
                ratios[r["label"]] = neuron / r["batched_cpu_s_per_simulated_s"]
                part += (f": {_n(neuron / r['batch1_cpu_s_per_simulated_s'], 3)}x NEURON at "
                         f"batch 1, {_n(ratios[r['label']], 3)}x batched (CPU time)")
            parts.append(part)
        text = ("Untrained models on random spike input (cost does not depend on the weights), "
                "one CPU thread, seconds per simulated second of one trial: "
                + "; ".join(parts) + ".")
        holds = None
        if neuron:
            small = {k: v for k, v in ratios.items()
                     if next(r for r in rows if r["label"] == k)["parameters"] <= TARGET_PARAMETERS}
            best = max(small or ratios, key=lambda k: (small or ratios)[k])
            holds = (small or ratios)[best] >= SPEED_TARGET
            text += (f" NEURON in the same run (l5pc, {measured['channels']} + "
                     f"{measured['channels']} inputs, fixed step {_n(measured['dt_ms'])} ms, "
                     f"{_n(measured['duration_ms'])} ms of trial {measured['trial']}): "
                     f"{_n(neuron, 3)} CPU s ({_n(measured['wall_s_per_simulated_s'], 3)} wall s "
                     f"on the shared machine) per simulated second")
            fine = result.get("neuron_measured_fine") or {}
            if fine.get("available"):
                text += (f" ({_n(fine['cpu_s_per_simulated_s'], 3)} CPU s at "
                         f"{_n(fine['dt_ms'])} ms)")
            text += (f". The >= {SPEED_TARGET:,.0f}x target (batched, a model of <= "
                     f"{TARGET_PARAMETERS:,} parameters) "
                     f"{'holds' if holds else 'does NOT hold'}: best {best} at "
                     f"{_n((small or ratios)[best], 3)}x.")
        elif measured:
            text += f" NEURON not timed: {measured.get('why', 'n/a')}."
        out.append(paragraph("cortical_speed_neuronio",
                             "Surrogate vs NEURON at NeuronIO scale (1,278 inputs)", text, holds))
    return out


def study_conclusions(ctx: StudyContext) -> list[dict[str, Any]]:
    """The claims (none before the analysis has run)."""
    result = ctx.analyses.get("cortical_neuron")
    return claims(result) if result else []


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    h = "".join(f"<th>{html.escape(str(x))}</th>" for x in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in r) + "</tr>"
                   for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def report_sections(analyses: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Top 10 next to the blog's, every cell's scores, the parameter table and the figures."""
    from neuroreduce.reporting.html import figure

    result = analyses.get("cortical_neuron")
    if not result:
        return []
    records = {r["key"]: r for r in result.get("cells") or []}
    head = ["cell", "model", "parameters", "lr", "pos_weight", "AUC", "TPR@0.1%", "TPR@0.25%",
            "TPR@1%", "Youden thr", "G-mean thr", "thr range (1 pt)", "soma RMSE mV", "soma EV",
            "s/sim s batch 1", "s/sim s batched"]

    def row(r: Mapping[str, Any]) -> list[Any]:
        sp, so, c = r.get("spikes") or {}, r.get("soma") or {}, r.get("cost") or {}
        t = sp.get("tpr_at_fp") or {}
        p = sp.get("precision") or {}
        return [r["key"], r["label"], f"{r['parameters']:,}", r["learning_rate"], r["pos_weight"],
                _n(sp.get("auc")), _n(t.get("0.001"), 3), _n(t.get("0.0025"), 3),
                _n(t.get("0.01"), 3), _n(sp.get("youden_threshold"), 3),
                _n(sp.get("gmean_threshold"), 3), f"{_n(p.get('low'), 3)}-{_n(p.get('high'), 3)}",
                _n(so.get("rmse"), 3), _n(so.get("explained_variance"), 3),
                _n(c.get("batch1_s_per_simulated_s"), 3), _n(c.get("batched_s_per_simulated_s"), 3)]

    top = [records[k] for k in result.get("top10") or [] if k in records]
    sections = [("Top 10 (test AUC, ours)", _table(head, [row(r) for r in top])),
                ("The blog's top 10 (NeuronIO, validation AUC)", _table(
                    ["model", "parameters", "sizes", "lr", "class weight", "AUC"],
                    [[m.upper(), f"{p:,}", s, lr, w, a] for m, p, s, lr, w, a in BLOG_TOP10]))]
    sections.append(("Every cell (test split)", _table(head, [row(r) for r in records.values()])))
    sections.append(("Parameter counts: ours next to the published (1,278 inputs, 2 outputs)",
                     "<pre>" + html.escape(format_parameter_table(parameter_table())) + "</pre>"))
    speed_rows = result.get("neuronio_speed") or []
    neuron_rows = [m for m in (result.get("neuron_measured"), result.get("neuron_measured_fine"))
                   if m and m.get("available")]
    if speed_rows:
        sections.append(("Surrogate cost at NeuronIO scale (s per simulated second, 1 thread)",
                         _table(["model", "parameters", "batch 1 (wall)", "batched (wall)",
                                 "batch 1 (CPU)", "batched (CPU)", "batch"], [
                             [r["label"], f"{r['parameters']:,}",
                              _n(r["batch1_s_per_simulated_s"], 3),
                              _n(r["batched_s_per_simulated_s"], 3),
                              _n(r.get("batch1_cpu_s_per_simulated_s"), 3),
                              _n(r.get("batched_cpu_s_per_simulated_s"), 3), r["batch"]]
                             for r in speed_rows])))
        if neuron_rows:
            sections.append(("NEURON in the same run (l5pc)", _table(
                ["trial", "duration ms", "step ms", "CPU s / sim s", "wall s / sim s", "spikes"],
                [[m["trial"], _n(m["duration_ms"]), _n(m["dt_ms"]),
                  _n(m["cpu_s_per_simulated_s"], 3), _n(m["wall_s_per_simulated_s"], 3),
                  m["spikes"]] for m in neuron_rows])))
    body = "".join(figure(f"../analysis/figures/{Path(p).name}", name.replace("_", " "))
                   for name, p in (result.get("figures") or {}).items())
    if body:
        sections.append(("Figures: AUC vs parameters, ROC coloured by threshold, AUC vs data",
                         body))
    return sections
