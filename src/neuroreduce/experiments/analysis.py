"""Analyses of a finished experiment: error vs size, ablation, out-of-distribution error,
attribution, speed, the study's own analyses and generated conclusions.

:func:`run_analyses` reads the runner's files (``resolved.json``, ``cells/*/``) and writes one
JSON file per analysis into ``<exp_dir>/analysis/``:

===========================  =================================================================
``error_vs_size.json``       test error vs parameter count per dataset; best and smallest model
                             within ``size_tolerance`` of the best
``<study analysis>.json``    each analysis of the experiment's study (:mod:`neuroreduce.studies`),
                             e.g. ``paper_comparison.json`` of ``barbulescu2023``
``ablation.json``            per-output test RMSE increase of input variants vs all inputs
``ood.json``                 out-of-distribution (extra datasets) vs test RMSE per cell
``trust.json``               ensemble mean and calibrated spread on the extra datasets per cell
``attribution.json``         integrated-gradient input x output importance per cell
``speed.json``               simulator vs surrogate seconds per simulated second
``typed_scores.json``        typed-task cells: scores per field and split, folds' mean ± std
                             (:mod:`.typed_scores`)
``conclusions.json``         generated paragraphs (see :mod:`.conclusions`; typed cells and
                             their folds get their own paragraphs)
``analysis.json``            the spec, what ran, wall times, analyses skipped for typed cells
===========================  =================================================================

The analyses of continuous outputs (error vs size, the study's, ablation, OOD, attribution,
speed) read only the schema-v1 cells (dense inputs -> continuous outputs); typed cells are
listed in ``analysis.json`` under ``skipped_for_typed_cells`` and scored in ``typed_scores``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce._io import write_json_atomic
from neuroreduce.errors import ConfigError, NeuroreduceError
from neuroreduce.experiments.expfiles import (
    ANALYSIS_DIR,
    CellSummary,
    load_cell_data,
    read_cells,
    read_json,
)
from neuroreduce.studies.base import StudyContext


@dataclass(frozen=True)
class AnalysisSpec:
    """Which analyses run after an experiment (the ``[analysis]`` table).

    Attributes:
        attribution: Integrated gradients per cell on its test trials.
        attribution_steps: Quadrature intervals of the integrated-gradient path.
        attribution_trials: At most this many test trials per cell are attributed.
        speed: Measure simulator vs surrogate time on the test stimuli.
        speed_trials: Trials re-simulated per dataset for the timing.
        speed_repeats: Timed surrogate calls per batch size (median kept).
        size_tolerance: Relative error margin for "smallest model within x of the best".
    """

    attribution: bool = False
    attribution_steps: int = 32
    attribution_trials: int = 10
    speed: bool = True
    speed_trials: int = 3
    speed_repeats: int = 5
    size_tolerance: float = 0.10

    def __post_init__(self) -> None:
        for name in ("attribution", "speed"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"analysis {name} must be true or false, got "
                                  f"{getattr(self, name)!r}")
        for name in ("attribution_steps", "attribution_trials", "speed_trials", "speed_repeats"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"analysis {name} must be a positive integer, got {v!r}")
        tol = self.size_tolerance
        if isinstance(tol, bool) or not isinstance(tol, int | float) or not 0 <= tol < 10:
            raise ConfigError(f"analysis size_tolerance must be a number in [0, 10) (e.g. 0.10 = "
                              f"10%), got {tol!r}")
        object.__setattr__(self, "size_tolerance", float(tol))

    @classmethod
    def from_dict(cls, table: dict[str, Any] | None) -> AnalysisSpec:
        """Build from the ``[analysis]`` table (missing keys take defaults).

        Raises:
            ConfigError: on an unknown key (naming the allowed keys) or a bad value.
        """
        table = dict(table or {})
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(table) - set(allowed))
        if unknown:
            raise ConfigError(f"unknown analysis key(s) {', '.join(unknown)}; allowed: "
                              f"{', '.join(allowed)}")
        return cls(**table)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------- error vs size
def error_vs_size(points: Sequence[dict[str, Any]], *, tolerance: float) -> dict[str, Any]:
    """Best model and the smallest model within ``tolerance`` of it.

    Args:
        points: One dict per model with ``key``, ``n_parameters``, ``mean`` and ``std`` (test
            error over seeds; any extra keys are kept).
        tolerance: Relative margin, e.g. 0.10: a model qualifies if its mean error is at most
            ``(1 + tolerance) * best``.

    Returns:
        ``points`` sorted by size, ``best``, ``best_mean``, ``threshold``, ``smallest_within``
        (key), its size and the size ratio to the best model.
    """
    pts = sorted((dict(p) for p in points if math.isfinite(p["mean"])),
                 key=lambda p: (p["n_parameters"], p["mean"]))
    if not pts:
        return {"points": [], "best": None, "smallest_within": None, "tolerance": tolerance}
    best = min(pts, key=lambda p: p["mean"])
    threshold = best["mean"] * (1.0 + tolerance)
    small = next(p for p in pts if p["mean"] <= threshold)
    return {
        "points": pts,
        "tolerance": tolerance,
        "best": best["key"],
        "best_mean": best["mean"],
        "best_parameters": best["n_parameters"],
        "threshold": threshold,
        "smallest_within": small["key"],
        "smallest_mean": small["mean"],
        "smallest_parameters": small["n_parameters"],
        "size_ratio": small["n_parameters"] / best["n_parameters"],
    }


def size_points(cells: Sequence[CellSummary], *, metric: str = "nrmse") -> dict[str, list[dict]]:
    """Error-vs-size points (test split, variant "all") grouped by dataset; each point carries
    the cell's study fields (e.g. ``keras_parameters``) after ``n_parameters``."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for c in cells:
        if c.variant != "all":
            continue
        e, r = c.error("test", metric), c.error("test", "rmse")
        groups.setdefault(c.dataset, []).append({
            "key": c.key, "label": c.label, "model": c.model, "hidden": c.hidden,
            "n_parameters": c.n_parameters, **c.study_fields,
            "mean": e.mean, "std": e.std, "values": list(e.values),
            "rmse_mean": r.mean, "rmse_std": r.std,
        })
    return groups


# ----------------------------------------------------------------------------- ablation
def ablation(cells: Sequence[CellSummary]) -> dict[str, Any]:
    """Per-output test RMSE of each input variant against the same model with all inputs."""
    base = {(c.dataset, c.model, c.hidden): c for c in cells if c.variant == "all"}
    variants: dict[str, dict[str, Any]] = {}
    for c in cells:
        ref = base.get((c.dataset, c.model, c.hidden))
        if c.variant == "all" or ref is None:
            continue
        v = variants.setdefault(c.variant, {"removed": [n for n in ref.inputs
                                                        if n not in c.inputs], "cells": []})
        per = {}
        for out in c.outputs:
            a = ref.per_output.get("test", {}).get(out, {}).get("rmse")
            b = c.per_output.get("test", {}).get(out, {}).get("rmse")
            if a is None or b is None:
                continue
            per[out] = {"all": a.mean, "variant": b.mean, "variant_std": b.std,
                        "increase": b.mean - a.mean,
                        "relative": (b.mean - a.mean) / a.mean if a.mean > 0 else float("nan")}
        v["cells"].append({"key": c.key, "reference": ref.key, "label": c.label,
                           "pooled_rmse": c.error("test", "rmse").mean,
                           "reference_pooled_rmse": ref.error("test", "rmse").mean,
                           "per_output": per})
    for v in variants.values():
        order = list(dict.fromkeys(o for c in cells for o in c.outputs))  # channel order
        outs = sorted({o for cell in v["cells"] for o in cell["per_output"]}, key=order.index)
        v["outputs"] = outs
        v["mean_increase"] = {o: float(np.mean([cell["per_output"][o]["increase"]
                                                for cell in v["cells"] if o in cell["per_output"]]))
                              for o in outs}
        v["mean_relative"] = {o: float(np.mean([cell["per_output"][o]["relative"]
                                                for cell in v["cells"] if o in cell["per_output"]]))
                              for o in outs}
    return {"variants": variants}


# --------------------------------------------------------------------------------- OOD
def ood(cells: Sequence[CellSummary]) -> dict[str, Any]:
    """Out-of-distribution (extra dataset, all trials) vs in-distribution (test) RMSE per cell."""
    rows = []
    for c in cells:
        test = c.error("test", "rmse")
        for name, block in c.extra.items():
            e = block.get("rmse")
            if e is None:
                continue
            rows.append({"cell": c.key, "label": c.label, "dataset": c.dataset, "extra": name,
                         "test_rmse": test.mean, "test_rmse_std": test.std,
                         "ood_rmse": e.mean, "ood_rmse_std": e.std,
                         "ratio": e.mean / test.mean if test.mean > 0 else float("nan")})
    return {"rows": rows}


# ------------------------------------------------------------------------- attribution
def attribution(exp_dir: Path, cells: Sequence[CellSummary], spec: AnalysisSpec,
                *, log: Any) -> dict[str, Any]:
    """Integrated-gradient importance (mean ± std over seeds) per cell, on its test trials."""
    from neuroreduce.experiments.attribution import ensemble_attributions, importance_matrix
    from neuroreduce.training import load_run

    out: dict[str, Any] = {"steps": spec.attribution_steps, "baseline_na": 0.0,
                           "target": "time-averaged output (mV)", "cells": {}}
    for c in cells:
        t0 = time.perf_counter()
        run = load_run(c.folder)
        data = load_cell_data(exp_dir, c)
        idx = data.indices("test")[: spec.attribution_trials]
        raw = ensemble_attributions(run, data.inputs[idx], steps=spec.attribution_steps)
        imp = importance_matrix(raw)  # [member, input, output]
        out["cells"][c.key] = {
            "label": c.label, "inputs": list(run.input_names), "outputs": list(run.output_names),
            "n_trials": int(idx.size), "importance_mean": imp.mean(axis=0).tolist(),
            "importance_std": (imp.std(axis=0, ddof=1) if imp.shape[0] > 1
                               else np.zeros_like(imp[0])).tolist(),
            "mean_abs_mv": raw.mean(axis=(0, 1)).tolist(), "wall_s": time.perf_counter() - t0,
        }
        log(f"attribution {c.key}: {time.perf_counter() - t0:.1f} s")
    return out


# ------------------------------------------------------------------------------- speed
def speed(exp_dir: Path, cells: Sequence[CellSummary], spec: AnalysisSpec,
          *, log: Any) -> dict[str, Any]:
    """Simulator (per dataset) vs surrogate (per cell) seconds per simulated second."""
    import torch

    from neuroreduce.experiments.speed import measure_simulator, measure_surrogate, speedups
    from neuroreduce.training import load_run

    sims: dict[str, Any] = {}
    rows = []
    for c in cells:
        data = load_cell_data(exp_dir, c)
        test = data.indices("test")
        if c.dataset not in sims:
            try:
                sims[c.dataset] = measure_simulator(data, test[: spec.speed_trials])
                log(f"speed {c.dataset}: simulator {sims[c.dataset]['mean_trial_s']:.3f} s/trial")
            except NeuroreduceError as exc:
                sims[c.dataset] = {"error": str(exc)}
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            sur = measure_surrogate(load_run(c.folder), data.inputs[test], dt_ms=data.dt_ms,
                                    repeats=spec.speed_repeats)
        finally:
            torch.set_num_threads(threads)
        row = {"cell": c.key, "label": c.label, "dataset": c.dataset, **sur}
        if "error" not in sims[c.dataset]:
            row.update(speedups(sims[c.dataset], sur))
        rows.append(row)
    return {"simulators": sims, "surrogates": rows,
            "note": "wall times on this machine in this run; surrogate: one member, 1 torch "
                    "thread, median of repeats after a warm-up; simulator: per-trial time "
                    "without the one-off network build (setup_s)"}


# --------------------------------------------------------------------------------- main
def run_analyses(exp_dir: Path, spec: AnalysisSpec, *, progress: bool = True) -> None:
    """Run every analysis of ``spec`` on the finished cells of ``exp_dir``; write
    ``<exp_dir>/analysis/*.json`` atomically (see the module docstring).

    Raises:
        CheckpointError: if the folder holds no finished cells or its files are corrupt.
    """
    from neuroreduce.errors import CheckpointError
    from neuroreduce.experiments.conclusions import conclusions
    from neuroreduce.experiments.typed_scores import (
        CONTINUOUS_ONLY,
        typed_paragraphs,
        typed_scores,
    )
    from neuroreduce.studies.registry import field_names, study_of

    exp_dir = Path(exp_dir)
    resolved = read_json(exp_dir / "resolved.json", required=False) or {}
    study = study_of(resolved)
    cells = read_cells(exp_dir, study_fields=field_names(study))
    if not cells:
        raise CheckpointError(f"{exp_dir} has no finished cells; run the experiment first "
                              "(neuroreduce experiment run)")
    out = exp_dir / ANALYSIS_DIR
    log = _logger(progress)
    timings: dict[str, float] = {}
    results: dict[str, Any] = {}

    def step(name: str, fn: Any) -> None:
        t0 = time.perf_counter()
        result = fn()
        if result is not None:  # a study's analysis that does not apply returns None
            results[name] = result
            write_json_atomic(out / f"{name}.json", result)
            timings[name] = time.perf_counter() - t0

    typed = [c for c in cells if c.typed]
    cells = [c for c in cells if not c.typed]  # the analyses below need continuous outputs
    if cells:
        step("error_vs_size", lambda: {
            "split": "test", "metric": "nrmse", "tolerance": spec.size_tolerance,
            "datasets": {d: error_vs_size(p, tolerance=spec.size_tolerance)
                         for d, p in size_points(cells).items()}})
    for extra in study.analyses if study is not None and (cells or typed) else ():
        ctx = StudyContext(cells=[*cells, *typed], analyses=dict(results), resolved=resolved,
                           table=resolved.get("paper"), tolerance=spec.size_tolerance)
        step(extra.name, lambda extra=extra, ctx=ctx: extra.run(ctx))
    if any(c.variant != "all" for c in cells):
        step("ablation", lambda: ablation(cells))
    if any(c.extra for c in cells):
        step("ood", lambda: ood(cells))
        from neuroreduce.trust.held_out import experiment_trust

        step("trust", lambda: experiment_trust(exp_dir, cells))
    if spec.attribution and cells:
        step("attribution", lambda: attribution(exp_dir, cells, spec, log=log))
    if spec.speed and cells:
        step("speed", lambda: speed(exp_dir, cells, spec, log=log))
    if typed:
        step("typed_scores", lambda: typed_scores(typed, resolved))
    t0 = time.perf_counter()
    paragraphs = conclusions(cells, results, resolved=resolved, tolerance=spec.size_tolerance,
                             study=study) + typed_paragraphs(results.get("typed_scores", {}))
    write_json_atomic(out / "conclusions.json", {"paragraphs": paragraphs})
    timings["conclusions"] = time.perf_counter() - t0
    meta = {"spec": spec.to_dict(), "ran": sorted(results), "wall_s": timings,
            "n_cells": len(cells) + len(typed)}
    if typed:  # scored in typed_scores instead
        meta["typed_cells"] = [c.key for c in typed]
        meta["skipped_for_typed_cells"] = dict(CONTINUOUS_ONLY)
    write_json_atomic(out / "analysis.json", meta)


def _logger(progress: bool) -> Any:
    if not progress:
        return lambda msg: None
    from rich.console import Console

    console = Console(stderr=True)
    return lambda msg: console.print(f"[dim]analysis[/dim] {msg}")
