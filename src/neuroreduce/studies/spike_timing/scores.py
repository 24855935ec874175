"""The study's analysis: Gamma_A ± bootstrap error per model, per stimulus and overall, the
winner criterion, the score's dependence on the window and the assumed sampling interval, and
each model's cost per simulated second against Hodgkin-Huxley at 0.01 ms.

Reads what the cells wrote: ``results.json`` (test split, the spike-timing metrics of
:mod:`neuroreduce.evaluation.spike_scoring`) and ``spike_trains.json``
(:mod:`neuroreduce.evaluation.spike_record`). A model is scored on its spikes "as they come":
its spike head when it has one (GRU/LSTM/GLM trained on the ``spikes`` field; predicted
probability crossing the experiment's ``probability_threshold``), else the upward 0 mV
crossings of its voltage (dendPLRNN, voltage-only baselines). The other head's Gamma_A is
reported next to it (``other_heads``).

The thesis's criterion (seed 002, after Jolivet et al. 2008): a model outperforms the others if
its performance is one standard error above all of them; here: ``Gamma_A(best) - Gamma_A(other)
> max(SE(best), SE(other))`` for every other model, SE the bootstrap error of Gamma_A. It is
tested on all stimuli and on the reliable ones (Gamma_int >= :data:`RELIABLE_GAMMA_INT`; their
mean's error ``sqrt(sum SE_s^2) / n``), since Gamma_A divides by Gamma_int.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce.evaluation.spikes import coincidence_factor, intrinsic_reliability
from neuroreduce.jsonfiles import read_json_object
from neuroreduce.studies.base import StudyContext

#: Coincidence windows (ms) of the sensitivity analysis (QSNMC 2007 and 2009).
WINDOWS_MS: tuple[float, ...] = (2.0, 4.0)
#: Assumed sampling intervals (ms) of the sensitivity analysis (the 2007 scripts' 0.2 ms; 1 ms).
ASSUMED_DT_MS: tuple[float, ...] = (0.2, 1.0)
#: Heads a model's spikes are read from, in order of preference.
HEAD_ORDER: tuple[str, ...] = ("spikes", "outputs")
#: Simulated time (ms) of the Hodgkin-Huxley cost measurement.
HH_MS = 500.0
#: Stimuli whose repetitions agree at least this well (Gamma_int) make the "reliable" summary:
#: Gamma_A = Gamma / Gamma_int is ill-conditioned where Gamma_int is near 0.
RELIABLE_GAMMA_INT = 0.5
CRITERION = ("a model wins if its Gamma_A exceeds every other model's by more than one "
             "bootstrap error (the larger of the two models' errors)")


def _num(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return float("nan")
    return v


def model_label(cell: Any) -> str:
    """``"GRU-16"``, ``"PLRNN-16 gtf"``: the cell's label without its dataset."""
    return str(cell.label)


def cell_score(cell: Any) -> dict[str, Any] | None:
    """The headline spike-timing scores of one cell (None if it has none)."""
    heads = {}
    for field in HEAD_ORDER:
        block = ((cell.fields.get(field) or {}).get("splits") or {}).get("test") or {}
        if isinstance(block.get("gamma_normalised"), dict):
            heads[field] = block
    if not heads:
        return None
    field = next(iter(heads))
    block = heads[field]

    def stat(name: str) -> float:
        return _num((block.get(name) or {}).get("mean"))

    per = {}
    for stim, s in ((block.get("gamma_normalised") or {}).get("per_stimulus") or {}).items():
        per[stim] = {
            "gamma_A": _num(s.get("mean")),
            "se": _num(((block.get("gamma_normalised_se") or {}).get("per_stimulus") or {})
                       .get(stim, {}).get("mean")),
            "gamma_int": _num(((block.get("gamma_intrinsic") or {}).get("per_stimulus") or {})
                              .get(stim, {}).get("mean")),
            "gamma": _num(((block.get("gamma") or {}).get("per_stimulus") or {})
                          .get(stim, {}).get("mean")),
        }
    other = {f: _num((b.get("gamma_normalised") or {}).get("mean"))
             for f, b in heads.items() if f != field}
    rel = [k for k, v in per.items()
           if v["gamma_int"] >= RELIABLE_GAMMA_INT and math.isfinite(v["gamma_A"])]
    reliable = {"stimuli": rel, "min_gamma_int": RELIABLE_GAMMA_INT,
                "gamma_A": float(np.mean([per[k]["gamma_A"] for k in rel])) if rel else math.nan,
                "se": float(math.sqrt(sum(_finite(per[k]["se"]) ** 2 for k in rel)) / len(rel))
                if rel else math.nan}
    return {
        "key": cell.key, "model": cell.model, "field": field,
        "gamma_A": stat("gamma_normalised"), "gamma_A_std_seeds":
            _num((block.get("gamma_normalised") or {}).get("std")),
        "se": stat("gamma_normalised_se"), "gamma": stat("gamma"),
        "gamma_int": stat("gamma_intrinsic"), "spike_count_error": stat("spike_count_error"),
        "subthreshold_rmse_mV": stat("subthreshold_rmse"), "per_stimulus": per,
        "other_heads": other, "reliable": reliable,
        "n_parameters": int(getattr(cell, "n_parameters", 0)),
        "probability_threshold": block.get("probability_threshold"),
    }


def winner(models: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The criterion (module docstring) on ``label -> {"gamma_A", "se"}``."""
    ok = {k: v for k, v in models.items() if math.isfinite(v["gamma_A"])}
    if len(ok) < 2:
        return {"label": next(iter(ok), None), "holds": None, "margins": {}}
    best = max(ok, key=lambda k: ok[k]["gamma_A"])
    b = ok[best]
    margins = {}
    holds = True
    for k, v in ok.items():
        if k == best:
            continue
        err = max(_finite(b["se"]), _finite(v["se"]))
        diff = b["gamma_A"] - v["gamma_A"]
        margins[k] = {"difference": diff, "error": err, "beats": bool(diff > err)}
        holds &= diff > err
    return {"label": best, "holds": bool(holds), "margins": margins}


def _finite(x: float) -> float:
    return x if math.isfinite(x) else 0.0


def _record(cell: Any) -> dict[str, Any] | None:
    path = Path(cell.folder) / "spike_trains.json"
    return read_json_object(path) if path.is_file() else None


def rescored(record: Mapping[str, Any], field: str, *, window_ms: float,
             dt_ms: float | None = None) -> float:
    """Gamma_A of a cell's test trials (mean over members and stimuli) with another window or
    assumed sampling interval (spike times and durations scaled by ``dt_ms / recorded dt``)."""
    scale = 1.0 if dt_ms is None else dt_ms / float(record["dt_ms"])
    trials = [t for t in record["trials"] if t.get("split") in (None, "test")
              and field in t.get("data", {})]
    by_stim: dict[Any, list[dict[str, Any]]] = {}
    for t in trials:
        by_stim.setdefault(t.get("stimulus"), []).append(t)
    n_members = len(trials[0]["model"][field]) if trials else 0
    values = []
    for k in range(n_members):
        per = []
        for group in by_stim.values():
            if len(group) < 2:
                continue
            dur = min(t["duration_ms"] for t in group) * scale
            data = [np.asarray(t["data"][field]) * scale for t in group]
            model = [np.asarray(t["model"][field][k]) * scale for t in group]
            g_int = intrinsic_reliability(data, window_ms=window_ms, duration_ms=dur)
            g = [coincidence_factor(d, m, window_ms=window_ms, duration_ms=dur)
                 for d, m in zip(data, model, strict=True)]
            g = [x for x in g if math.isfinite(x)]
            if g and g_int > 0:
                per.append(float(np.mean(g)) / g_int)
        if per:
            values.append(float(np.mean(per)))
    return float(np.mean(values)) if values else float("nan")


def hh_cost(dt_ms: float = 0.2, duration_ms: float = HH_MS) -> dict[str, Any]:
    """Wall time of the Hodgkin-Huxley reference (NEURON, 0.01 ms) per simulated second."""
    try:
        from neuroreduce.simulators.spike_timing import HH_STEP_MS, simulate_hh
    except ImportError as exc:
        return {"available": False, "why": f"simulate_hh not available ({exc})"}
    rng = np.random.default_rng(0)
    n = int(round(duration_ms / dt_ms)) + 1
    current = (300.0 + 150.0 * rng.standard_normal((1, n))).astype(np.float64)
    t0 = time.perf_counter()
    try:
        run = simulate_hh(current, dt_ms)
    except Exception as exc:  # NEURON missing or failing: report, do not fail the study
        return {"available": False, "why": f"simulate_hh failed: {exc}"}
    wall = time.perf_counter() - t0
    cost = getattr(run, "cost_s_per_simulated_s", None)
    return {"available": True, "step_ms": HH_STEP_MS, "simulated_ms": duration_ms,
            "cost_s_per_simulated_s": float(cost) if cost is not None
            else wall / (duration_ms / 1000.0)}


def spike_timing_analysis(ctx: StudyContext) -> dict[str, Any] | None:
    """The study's analysis (``analysis/spike_timing.json``; see the module docstring)."""
    from neuroreduce.studies.spike_timing.figures import write_figures

    cells = [c for c in ctx.cells if getattr(c, "fold", None) is None]
    datasets: dict[str, Any] = {}
    records: dict[str, dict[str, Any]] = {}
    for c in cells:
        score = cell_score(c)
        if score is None:
            continue
        rec = _record(c)
        entry = datasets.setdefault(c.dataset, {"models": {}, "sensitivity": {}})
        label = model_label(c)
        if rec is not None:
            records.setdefault(c.dataset, {})[label] = {**rec, "field": score["field"]}
            score["predict_s_per_simulated_s"] = rec.get("predict_s_per_simulated_s")
            entry["dt_ms"] = rec.get("dt_ms")
            entry["sensitivity"][label] = {
                **{f"window_{w:g}ms": rescored(rec, score["field"], window_ms=w)
                   for w in WINDOWS_MS},
                **{f"dt_{d:g}ms": rescored(rec, score["field"], window_ms=_window(rec),
                                           dt_ms=d) for d in ASSUMED_DT_MS},
            }
        entry["models"][label] = score
    if not datasets:
        return None
    for entry in datasets.values():
        entry["winner"] = winner(entry["models"])
        entry["winner_reliable"] = winner({k: m["reliable"] for k, m in entry["models"].items()})
        entry["winner_reliable"]["stimuli"] = next(
            (m["reliable"]["stimuli"] for m in entry["models"].values()), [])
        entry["gamma_int"] = _first([m["gamma_int"] for m in entry["models"].values()])
    exp_dir = Path(cells[0].folder).parent.parent
    out: dict[str, Any] = {"criterion": CRITERION, "windows_ms": list(WINDOWS_MS),
                           "assumed_dt_ms": list(ASSUMED_DT_MS), "datasets": datasets,
                           "hh": hh_cost()}
    for name, entry in datasets.items():
        entry["figures"] = write_figures(exp_dir / "analysis" / "figures", name,
                                         records.get(name, {}), entry)
    return out


def _window(record: Mapping[str, Any]) -> float:
    return float((record.get("options") or {}).get("coincidence_window_ms", 2.0))


def _first(values: Sequence[float]) -> float:
    for v in values:
        if math.isfinite(v):
            return v
    return float("nan")
