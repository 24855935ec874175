"""The study's conclusions and report sections, generated from ``analysis/spike_timing.json``.

Per dataset: the ranking by Gamma_A ± bootstrap error (and per stimulus), the thesis's
criterion (holds / does not hold, with the margins), how much the window and the assumed
sampling interval move the scores, and each model's cost per simulated second against the
Hodgkin-Huxley reference.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from neuroreduce.experiments.conclusions import paragraph
from neuroreduce.studies.base import StudyContext


def _n(x: Any, digits: int = 3) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if not math.isfinite(v) else f"{v:.{digits}g}"


def _head(field: str) -> str:
    return "its voltage (0 mV crossings)" if field == "outputs" else f"its {field} head"


def _ranked(models: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    return sorted(models.items(), key=lambda kv: -(kv[1]["gamma_A"]
                                                    if math.isfinite(kv[1]["gamma_A"]) else -1e9))


def dataset_paragraphs(name: str, entry: Mapping[str, Any], hh: Mapping[str, Any]) -> list[
        dict[str, Any]]:
    """The paragraphs of one dataset (see the module docstring)."""
    models = entry.get("models") or {}
    if not models:
        return []
    ranked = _ranked(models)
    items = "; ".join(
        f"{label} {_n(m['gamma_A'])} ± {_n(m['se'])} (spikes from {_head(m['field'])}; Gamma "
        f"{_n(m['gamma'])}, spike-count error {_n(m['spike_count_error'])}"
        + "".join(f"; {_head(f)} gives {_n(v)}" for f, v in (m.get("other_heads") or {}).items())
        + ")" for label, m in ranked)
    out = [paragraph(
        "spike_ranking", f"Gamma_A on {name}",
        f"Test Gamma_A ± bootstrap error of Gamma_A (mean over seeds), best first: {items}. "
        f"Intrinsic reliability Gamma_int of the data: {_n(entry.get('gamma_int'))}.")]
    stims = sorted({s for _, m in ranked for s in m.get("per_stimulus", {})})
    if stims:
        per = []
        for s in stims:
            scores = {label: m["per_stimulus"].get(s, {}).get("gamma_A", float("nan"))
                      for label, m in ranked}
            best = max(scores, key=lambda k: scores[k] if math.isfinite(scores[k]) else -1e9)
            per.append(f"stimulus {s}: best {best} {_n(scores[best])} (Gamma_int "
                       f"{_n(ranked[0][1]['per_stimulus'].get(s, {}).get('gamma_int'))})")
        out.append(paragraph("spike_per_stimulus", f"Per stimulus on {name}",
                             "Best Gamma_A per test stimulus: " + "; ".join(per) + "."))
    w = entry.get("winner") or {}
    if w.get("holds") is not None:
        margins = "; ".join(
            f"vs {k}: {_n(v['difference'])} {'>' if v['beats'] else '<='} error "
            f"{_n(v['error'])}" for k, v in (w.get("margins") or {}).items())
        verdict = ("holds: it wins" if w["holds"] else
                   "does NOT hold: no model wins (the best is within one error of another)")
        out.append(paragraph(
            "spike_winner", f"Winner on {name}",
            f"Best model {w['label']} (Gamma_A {_n(models[w['label']]['gamma_A'])}). The "
            f"criterion (a model wins if its Gamma_A exceeds every other's by more than one "
            f"bootstrap error) {verdict}. Margins: {margins}.", bool(w["holds"])))
    wr = entry.get("winner_reliable") or {}
    if wr.get("holds") is not None:
        stims = ", ".join(wr.get("stimuli") or [])
        ranked_r = sorted(((k, m["reliable"]) for k, m in models.items()
                           if math.isfinite(m["reliable"]["gamma_A"])),
                          key=lambda kv: -kv[1]["gamma_A"])
        scores = "; ".join(f"{k} {_n(r['gamma_A'])} ± {_n(r['se'])}" for k, r in ranked_r)
        verdict = "holds: it wins" if wr["holds"] else "does NOT hold: no model wins"
        out.append(paragraph(
            "spike_winner_reliable", f"Winner on {name}, reliable stimuli",
            f"On the stimuli whose repetitions agree (Gamma_int >= 0.5: {stims}) Gamma_A is "
            f"{scores}. Best {wr['label']}; the criterion {verdict}.", bool(wr["holds"])))
    sens = entry.get("sensitivity") or {}
    if sens:
        parts = [f"{label}: " + ", ".join(f"{k.replace('_', ' ')} {_n(v)}" for k, v in s.items())
                 for label, s in sens.items()]
        out.append(paragraph(
            "spike_sensitivity", f"Window and sampling interval on {name}",
            "Gamma_A re-scored from the saved spike trains with a +-2 and +-4 ms window and "
            f"with the sampling interval assumed to be 0.2 or 1 ms (recorded dt "
            f"{_n(entry.get('dt_ms'))} ms): " + "; ".join(parts) + "."))
    costs = [(label, m.get("predict_s_per_simulated_s")) for label, m in ranked
             if m.get("predict_s_per_simulated_s") is not None]
    if costs:
        text = "Prediction wall time per simulated second (one member, CPU): " + "; ".join(
            f"{label} {_n(c)} s" for label, c in costs) + "."
        if hh.get("available"):
            ref = float(hh["cost_s_per_simulated_s"])
            text += (f" Hodgkin-Huxley at {_n(hh['step_ms'])} ms (NEURON): {_n(ref)} s per "
                     "simulated second; ratios HH / model: " + "; ".join(
                         f"{label} {_n(ref / c) if c else 'n/a'}x" for label, c in costs) + ".")
        else:
            text += f" Hodgkin-Huxley reference not measured ({hh.get('why', 'n/a')})."
        out.append(paragraph("spike_cost", f"Cost on {name}", text))
    return out


def study_conclusions(ctx: StudyContext) -> list[dict[str, Any]]:
    """Every dataset's paragraphs (none before the analysis has run)."""
    result = ctx.analyses.get("spike_timing")
    if not result:
        return []
    out = []
    for name, entry in (result.get("datasets") or {}).items():
        out += dataset_paragraphs(name, entry, result.get("hh") or {})
    return out


def report_sections(analyses: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A table of Gamma_A per model and stimulus, and the figures, per dataset."""
    from neuroreduce.reporting.html import figure

    result = analyses.get("spike_timing")
    if not result:
        return []
    sections = []
    for name, entry in (result.get("datasets") or {}).items():
        ranked = _ranked(entry.get("models") or {})
        stims = sorted({s for _, m in ranked for s in m.get("per_stimulus", {})})
        head = "".join(f"<th>{html.escape(h)}</th>" for h in
                       ["model", "spikes from", "Gamma_A", "± error", "Gamma",
                        "count error", "subthr. RMSE (mV)", "other head Gamma_A",
                        *[f"stim {s}" for s in stims]])
        rows = []
        for label, m in ranked:
            cells = [label, m["field"], _n(m["gamma_A"]), _n(m["se"]), _n(m["gamma"]),
                     _n(m["spike_count_error"]), _n(m["subthreshold_rmse_mV"]),
                     ", ".join(f"{f} {_n(v)}" for f, v in (m.get("other_heads") or {}).items()),
                     *[_n(m["per_stimulus"].get(s, {}).get("gamma_A")) for s in stims]]
            rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
                        + "</tr>")
        body = f"<table><tr>{head}</tr>{''.join(rows)}</table>"
        for kind, path in (entry.get("figures") or {}).items():
            body += figure(f"../analysis/figures/{Path(path).name}", f"{name}: {kind}")
        sections.append((f"Spike timing on {name} (test, Gamma_A per model and stimulus)",
                         body))
    return sections
