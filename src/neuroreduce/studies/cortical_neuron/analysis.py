"""The study's analysis (``analysis/cortical_neuron.json``): every cell re-scored on its test
trials (:mod:`.scoring`), AUC against parameters, the top 10, the NMDA vs AMPA-only contrast,
AUC against the number of training trials, and surrogate cost against the NEURON run.

Each cell's run is loaded from its folder and predicts the test trials of its dataset (the
file named in ``resolved.json``), so the ROC curves, threshold ranges and timings come from
the saved models. Datasets whose name or trial families contain ``"ampa"`` are the AMPA-only
cell; the others the NMDA cell. The NEURON cost per simulated second is read from the
dataset's provenance (``cost_s_per_simulated_s`` or ``neuron_s_per_simulated_s``, written by
the ``l5pc`` simulator); without it the speed comparison says so. With ``[analysis] speed =
true`` the cost of surrogates at NeuronIO scale (:mod:`.speed`) is measured as well.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce.studies.base import StudyContext
from neuroreduce.studies.cortical_neuron.scoring import score_cell
from neuroreduce.studies.cortical_neuron.tables import TARGET_AUC

#: Provenance keys holding the simulator's wall time per simulated second (s/s).
NEURON_COST_KEYS: tuple[str, ...] = ("cost_s_per_simulated_s", "neuron_s_per_simulated_s")
#: AUC margin below the best of a dataset that still counts as "as good" (contrast).
CONTRAST_MARGIN = 0.005


def model_label(model: str, options: Mapping[str, Any], hidden: int) -> str:
    """A short architecture label, e.g. ``"LSTM 8-4-2"``, ``"Branch-ELM d_m=4"``, ``"TCN 4x3"``;
    a Branch-ELM whose branches keep excitatory and inhibitory inputs apart (no interleaving,
    unlike Spieler's NeuronIO models) is marked ``E|I``."""
    if model == "stacked_rnn":
        sizes = options.get("sizes") or [hidden] * int(options.get("layers", 2))
        return f"{str(options.get('cell', 'lstm')).upper()} {'-'.join(map(str, sizes))}"
    if model == "elm":
        if not options.get("branches"):
            return f"ELM d_m={hidden}"
        return f"Branch-ELM d_m={hidden}" + ("" if options.get("interleave") else " E|I")
    if model == "tcn":
        return f"TCN {hidden}ch x{options.get('layers', 4)}"
    if model == "glm":
        return f"GLM {hidden} ms"
    return f"{model.upper()}-{hidden}"


def family_of(model: str, options: Mapping[str, Any]) -> str:
    """Colour group of a cell: the recurrent cell type, or the family."""
    return str(options.get("cell", "lstm")) if model == "stacked_rnn" else model


def _pos_weight(config: Mapping[str, Any]) -> Any:
    for term in config.get("objective") or []:
        if term.get("loss") == "bce":
            return term.get("pos_weight")
    return None


def _is_ampa(name: str, dataset: Any) -> bool:
    return "ampa" in name.lower() or any("ampa" in f.lower() for f in dataset.families)


def neuron_cost(dataset: Any) -> float | None:
    """The simulator's wall time per simulated second recorded in ``dataset``'s provenance."""
    prov = dataset.provenance or {}
    for key in NEURON_COST_KEYS:
        value = prov.get(key)
        if isinstance(value, int | float) and math.isfinite(value) and value > 0:
            return float(value)
    return None


def cell_record(cell: Any, folder: Path, dataset: Any, *, timing: bool = True) -> dict[str, Any]:
    """One cell's row: identity, settings, parameters and :func:`.scoring.score_cell`."""
    from neuroreduce.models.registry import get_family
    from neuroreduce.training.runs import load_run

    record = json.loads((folder / "cell.json").read_text())
    config = record.get("config") or {}
    options = config.get("model_options") or {}
    run = load_run(folder)
    scores = score_cell(run, dataset, timing=timing)
    fitted = get_family(cell.model).fit is not None  # closed form: no rate, no pos_weight
    return {
        "key": cell.key, "dataset": cell.dataset, "model": cell.model, "hidden": cell.hidden,
        "label": model_label(cell.model, options, cell.hidden),
        "family": family_of(cell.model, options), "options": options,
        "learning_rate": None if fitted else config.get("learning_rate"),
        "pos_weight": None if fitted else _pos_weight(config),
        "parameters": int(cell.n_parameters), "ampa_only": _is_ampa(cell.dataset, dataset),
        **scores,
    }


def _auc(r: Mapping[str, Any]) -> float:
    v = (r.get("spikes") or {}).get("auc", float("nan"))
    return v if isinstance(v, float) and math.isfinite(v) else -1.0


def top(records: Sequence[Mapping[str, Any]], n: int = 10) -> list[Mapping[str, Any]]:
    """The ``n`` records of highest test AUC."""
    return sorted(records, key=lambda r: -_auc(r))[:n]


def smallest_reaching(records: Sequence[Mapping[str, Any]], auc: float) -> Mapping[str, Any] | None:
    """The record with the fewest parameters whose AUC is at least ``auc`` (None if none)."""
    ok = [r for r in records if _auc(r) >= auc]
    return min(ok, key=lambda r: r["parameters"]) if ok else None


def contrast(records: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """NMDA vs AMPA-only: the best AUC of each cell and the fewest parameters that come within
    :data:`CONTRAST_MARGIN` of the lower of the two bests (so both cells are held to the same
    bar). Where NMDA cells were trained on as many trials as AMPA-only ones, only those count
    (``train_trials`` says which sizes were compared). ``holds`` (the AMPA-only cell needs a smaller surrogate): its smallest model is
    smaller; None without both kinds of data."""
    nmda = [r for r in records if not r["ampa_only"] and _auc(r) >= 0]
    ampa = [r for r in records if r["ampa_only"] and _auc(r) >= 0]
    if not nmda or not ampa:
        return None
    sizes = {r["n_train_trials"] for r in ampa}
    same_size = [r for r in nmda if r["n_train_trials"] in sizes]
    if same_size:  # compare at equal training data where the study has it
        nmda = same_size
    bar = min(_auc(top(nmda, 1)[0]), _auc(top(ampa, 1)[0])) - CONTRAST_MARGIN
    small_n, small_a = smallest_reaching(nmda, bar), smallest_reaching(ampa, bar)

    def brief(r: Mapping[str, Any] | None) -> dict[str, Any] | None:
        return None if r is None else {"key": r["key"], "label": r["label"],
                                       "parameters": r["parameters"], "auc": _auc(r)}

    holds = None
    if small_n is not None and small_a is not None:
        holds = bool(small_a["parameters"] < small_n["parameters"])
    same = {}  # the same architecture on both cells
    for r in nmda:
        twin = [a for a in ampa if a["label"] == r["label"] and a["pos_weight"] == r["pos_weight"]
                and a["learning_rate"] == r["learning_rate"]]
        if twin:
            same[r["label"]] = {"nmda_auc": _auc(r), "ampa_auc": _auc(twin[0]),
                                "parameters": r["parameters"]}
    return {"bar_auc": bar, "train_trials": sorted({r["n_train_trials"] for r in nmda + ampa}),
            "best_nmda": brief(top(nmda, 1)[0]),
            "best_ampa": brief(top(ampa, 1)[0]),
            "smallest_nmda": brief(small_n), "smallest_ampa": brief(small_a), "holds": holds,
            "same_architecture": same}


def data_size_curves(records: Sequence[Mapping[str, Any]]) -> dict[str, list[list[float]]]:
    """AUC against training trials for each architecture trained on several data sizes (NMDA
    cell only): label -> ``[[n_train_trials, auc], ...]`` sorted by size."""
    curves: dict[str, dict[int, float]] = {}
    for r in records:
        if r["ampa_only"] or _auc(r) < 0:
            continue
        label = f"{r['label']} (pw {r['pos_weight']}, lr {r['learning_rate']})"
        curves.setdefault(label, {})[r["n_train_trials"]] = _auc(r)
    return {k: sorted([n, a] for n, a in v.items()) for k, v in curves.items() if len(v) >= 2}


def extrapolate(curve: Sequence[Sequence[float]], target: float = TARGET_AUC) -> float | None:
    """Training trials at which a straight line through ``log(1 - AUC)`` vs ``log(trials)`` (the
    last two points) reaches ``target``; None when the curve does not fall."""
    if len(curve) < 2:
        return None
    (n0, a0), (n1, a1) = curve[-2], curve[-1]
    if not (0 < a0 < 1 and 0 < a1 < 1) or a1 <= a0 or n1 <= n0:
        return None
    slope = (math.log(1 - a1) - math.log(1 - a0)) / (math.log(n1) - math.log(n0))
    if slope >= 0:
        return None
    return float(n1 * math.exp((math.log(1 - target) - math.log(1 - a1)) / slope))


def cortical_analysis(ctx: StudyContext) -> dict[str, Any] | None:
    """The study's analysis (module docstring); None when no cell predicts spikes."""
    from neuroreduce.datasets.io import load_dataset
    from neuroreduce.studies.cortical_neuron.figures import write_figures

    cells = [c for c in ctx.cells if getattr(c, "fold", None) is None and "spikes" in c.fields]
    if not cells:
        return None
    files = {n: d.get("file") for n, d in (ctx.resolved.get("datasets") or {}).items()}
    exp_dir = Path(cells[0].folder).parent.parent  # cell folders are <exp>/cells/<name>
    loaded: dict[str, Any] = {}
    records, costs = [], {}
    for c in cells:
        path = files.get(c.dataset)
        if not path or not Path(path).is_file():
            continue
        if c.dataset not in loaded:
            loaded[c.dataset] = load_dataset(path)
            costs[c.dataset] = neuron_cost(loaded[c.dataset])
        records.append(cell_record(c, Path(c.folder), loaded[c.dataset]))
    if not records:
        return None
    out: dict[str, Any] = {
        "cells": records,
        "top10": [r["key"] for r in top(records)],
        "contrast": contrast(records),
        "data_size": data_size_curves(records),
        "neuron_cost_s_per_simulated_s": costs,
        "datasets": {n: {"n_trials": d.n_trials, "n_time": d.n_time, "dt_ms": d.dt_ms,
                         "inputs": len(d.field("synapses").spec.channels)
                         if any(f.spec.name == "synapses" for f in d.fields) else d.n_inputs,
                         "spike_rate_hz": float(np.mean(d.field("spikes").values) * 1000.0
                                                / d.dt_ms),
                         "neuron_dt_ms": (d.provenance or {}).get("dt_ms")
                         if (d.provenance or {}).get("generator") == "l5pc" else None,
                         "generator": (d.provenance or {}).get("generator")
                         or (d.provenance or {}).get("simulator")
                         or (d.provenance or {}).get("importer")}
                     for n, d in loaded.items()},
    }
    out["extrapolated_trials"] = {k: extrapolate(v) for k, v in out["data_size"].items()}
    if (ctx.resolved.get("analysis") or {}).get("speed"):  # [analysis] speed = true
        from neuroreduce.studies.cortical_neuron import speed

        out["neuronio_speed"] = speed.neuronio_speed()
        # the step `neuroreduce simulate` uses by default (0.05 ms), and Hay's 0.025 ms
        out["neuron_measured"] = speed.neuron_cost(dt_ms=0.05)
        out["neuron_measured_fine"] = speed.neuron_cost(dt_ms=0.025)
    out["figures"] = write_figures(exp_dir / "analysis" / "figures", out)
    return out
