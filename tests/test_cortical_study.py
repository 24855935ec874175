"""The ``cortical_neuron`` study: parameter counts against the published ones, the blog's grid
file, spike/threshold/voltage scores on closed-form cases, the contrast and data-size logic,
and the tiny study end to end through ``neuroreduce experiment run``."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from neuroreduce.studies.cortical_neuron import tables
from neuroreduce.studies.cortical_neuron.analysis import contrast, data_size_curves, extrapolate
from neuroreduce.studies.cortical_neuron.conclusions import claims
from neuroreduce.studies.cortical_neuron.scoring import (
    spike_scores,
    voltage_scores,
)

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT / "experiments" / "cortical_neuron"


def test_parameter_table_matches_the_published_counts() -> None:
    rows = {r["label"]: r for r in tables.parameter_table()}
    # the blog's top-10 counts: ours add only the 2 x 2 read-out (6 parameters)
    for cell, params, sizes, *_ in tables.BLOG_TOP10:
        row = rows[f"{cell.upper()} {sizes}"]
        assert row["published"] == params and row["difference"] == 6
    # Spieler's Branch-ELMs exactly
    for d_m, (params, _) in tables.SPIELER_ELM.items():
        assert rows[f"Branch-ELM d_m={d_m}"]["parameters"] == params
    # control: the same LSTM without its 2-unit output layer is not the blog's network
    no_out = tables.blog_parameters("lstm", (256, 64))
    assert no_out != 1_655_840 and tables.blog_parameters("lstm", (256, 64, 2)) == 1_655_840
    small = tables.parameter_table(max_parameters=10_000)
    assert small and all(r["parameters"] <= 10_000 for r in small)
    assert "Branch-ELM d_m=15" in tables.format_parameter_table(small)


def test_blog_grid_file_is_the_generated_216_runs() -> None:
    from neuroreduce.experiments.spec import load_experiment
    from neuroreduce.studies.cortical_neuron.grid_file import blog_grid_toml

    path = GRID / "blog_grid.toml"
    assert path.read_text() == blog_grid_toml()
    spec = load_experiment(path)
    assert len(spec.cells) == 216 and spec.study == "cortical_neuron"
    seen = {(dict(c.config.model_options)["cell"], dict(c.config.model_options)["sizes"],
             c.config.learning_rate, c.config.objective[0].pos_weight) for c in spec.cells}
    assert len(seen) == 216
    assert {s[2] for s in seen} == {0.001, 0.003, 0.006, 0.01}
    assert {s[3] for s in seen} == {None, 5, 20}
    assert {s[1] for s in seen} == {c.sizes for c in tables.BLOG_CONFIGS}
    c = spec.cells[0].config
    assert (c.optimizer, c.weight_decay, c.schedule, c.window_ms, c.batch_size, c.epochs) == (
        "adamw", 0.01, "cosine", 1000.0, 32, 200)


def test_reduced_and_tiny_files_load() -> None:
    from neuroreduce.experiments.spec import load_experiment

    reduced = load_experiment(GRID / "reduced.toml")
    models = {c.model for c in reduced.cells}
    assert {"stacked_rnn", "tcn", "elm", "glm"} <= models
    assert len(load_experiment(GRID / "tiny.toml").cells) == 4
    l5pc = load_experiment(GRID / "l5pc.toml")  # datasets are files simulated beforehand
    assert {c.dataset for c in l5pc.cells} == {"nmda", "nmda_n16", "nmda_n32", "ampa_only"}
    assert l5pc.datasets["nmda_n16"].train_trials == 16
    # every block makes 256 training windows per epoch (same optimiser steps per data size)
    sizes = {"nmda": 64, "nmda_n16": 16, "nmda_n32": 32, "ampa_only": 32}
    from neuroreduce.models.registry import get_family

    for c in l5pc.cells:
        if get_family(c.model).fit is None:  # gradient-trained (the GLM is fitted in one go)
            assert c.config.windows_per_trial * sizes[c.dataset] == 256, c.key


def test_threshold_precision_closed_form() -> None:
    # 90 negatives below 0.4, 10 positives above 0.6: balanced accuracy 1 at the lowest
    # positive score; admitting one negative costs 1/180 < 0.01, two cost 2/180 > 0.01.
    neg = np.linspace(0.0, 0.4, 90)
    pos = np.linspace(0.6, 1.0, 10)
    y = np.r_[np.zeros(90), np.ones(10)]
    s = spike_scores(y, np.r_[neg, pos])
    p = s["precision"]
    assert p["best_balanced_accuracy"] == pytest.approx(1.0)
    assert p["high"] == pytest.approx(0.6) and p["low"] == pytest.approx(neg[-1])
    assert s["auc"] == 1.0 and s["tpr_at_fp"]["0.01"] == 1.0
    # control: squeezing the same ranking into 1e-4 leaves the same AUC, a tiny range
    squeezed = spike_scores(y, 0.5 + 1e-4 * np.r_[neg, pos])
    assert squeezed["auc"] == 1.0
    assert squeezed["precision"]["width"] < 1e-4 * p["width"] * 1.01


def test_spike_scores_match_sklearn_and_interpolate() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(5000) < 0.02).astype(float)
    p = np.clip(0.3 * y + rng.random(5000) * 0.8, 0, 1)
    s = spike_scores(y, p)
    assert s["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    tp = [s["tpr_at_fp"][k] for k in ("0.001", "0.0025", "0.01")]
    assert tp == sorted(tp) and 0 <= tp[0] <= tp[-1] <= 1
    assert 0 < s["youden_threshold"] < 1 and 0 < s["gmean_threshold"] < 1
    one = spike_scores(np.zeros(10), np.linspace(0, 1, 10))
    assert math.isnan(one["auc"])


def test_voltage_scores() -> None:
    v = np.sin(np.linspace(0, 20, 1000)) * 5 - 65
    assert voltage_scores(v, v) == {"rmse": 0.0, "explained_variance": 1.0}
    flat = voltage_scores(v, np.full_like(v, v.mean()))
    assert flat["explained_variance"] == pytest.approx(0.0, abs=1e-12)
    assert flat["rmse"] == pytest.approx(np.std(v))


def _rec(key: str, params: int, auc: float, *, ampa: bool = False, n: int = 64,
         model: str = "elm", family: str = "elm", ev: float = 0.9) -> dict:
    return {"key": key, "label": key.split("/")[-1], "parameters": params, "ampa_only": ampa,
            "model": model, "family": family, "dataset": "ampa" if ampa else "nmda",
            "pos_weight": 5.0, "learning_rate": 0.01, "n_train_trials": n,
            "spikes": {"auc": auc, "tpr_at_fp": {"0.01": 0.5}, "youden_threshold": 0.3,
                       "gmean_threshold": 0.3, "precision": {"low": 0.2, "high": 0.4}},
            "soma": {"rmse": 1.0, "explained_variance": ev}}


def test_contrast_holds_only_when_ampa_needs_fewer_parameters() -> None:
    nmda = [_rec("n/small", 1000, 0.90), _rec("n/big", 9000, 0.98)]
    ampa = [_rec("a/small", 1000, 0.985, ampa=True), _rec("a/big", 9000, 0.99, ampa=True)]
    c = contrast(nmda + ampa)
    assert c["holds"] is True and c["smallest_ampa"]["parameters"] == 1000
    assert c["smallest_nmda"]["parameters"] == 9000
    # control: when the small model is as good on the NMDA cell, the claim fails
    nmda[0]["spikes"]["auc"] = 0.98
    assert contrast(nmda + ampa)["holds"] is False
    assert contrast(nmda) is None
    # NMDA cells trained on more trials than the AMPA-only ones are left out of the comparison
    more = _rec("n/more-data", 500, 0.999, n=128)
    c = contrast([*nmda, more, *ampa])
    assert c["best_nmda"]["key"] != "n/more-data" and c["train_trials"] == [64]


def test_data_size_curve_and_extrapolation() -> None:
    recs = [_rec("d1/elm", 500, 0.9, n=100), _rec("d2/elm", 500, 0.99, n=1000)]
    for r in recs:
        r["label"] = "ELM"
    curves = data_size_curves(recs)
    assert list(curves.values()) == [[[100, 0.9], [1000, 0.99]]]
    # 1 - AUC falls tenfold per tenfold data: 0.999 at 10,000 trials
    assert extrapolate([[100, 0.9], [1000, 0.99]], 0.999) == pytest.approx(10_000)
    assert extrapolate([[100, 0.9], [1000, 0.85]]) is None  # not rising: no extrapolation


def test_claims_say_holds_and_does_not_hold_with_numbers() -> None:
    result = {"cells": [_rec("n/elm", 6000, 0.992, ev=0.96),
                        _rec("n/glm", 20000, 0.9, model="glm", family="glm")],
              "datasets": {"nmda": {"n_trials": 4, "n_time": 10, "dt_ms": 1.0, "inputs": 2,
                                    "spike_rate_hz": 1.0, "generator": "test"}}}
    by_kind = {p["kind"]: p for p in claims(result)}
    assert by_kind["cortical_elm"]["holds"] is True and "0.992" in by_kind["cortical_elm"]["text"]
    assert by_kind["cortical_target"]["holds"] is True
    assert by_kind["cortical_contrast"]["holds"] is None  # no AMPA-only data
    result["cells"][0]["soma"]["explained_variance"] = 0.5  # control: EV below 0.95
    by_kind = {p["kind"]: p for p in claims(result)}
    assert by_kind["cortical_target"]["holds"] is False
    assert by_kind["cortical_elm"]["holds"] is True  # the AUC claim alone still holds


@pytest.mark.slow
def test_tiny_study_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "tiny"
    run = subprocess.run(
        [sys.executable, "-m", "neuroreduce.cli", "experiment", "run",
         str(GRID / "tiny.toml"), "-o", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads((out / "analysis" / "cortical_neuron.json").read_text())
    assert len(result["cells"]) == 4 and len(result["top10"]) == 4
    for r in result["cells"]:
        assert 0.0 <= r["spikes"]["auc"] <= 1.0
        assert r["cost"]["batched_s_per_simulated_s"] > 0
        assert r["parameters"] > 0
    glm = next(r for r in result["cells"] if r["model"] == "glm")
    assert glm["spikes"]["auc"] > 0.8  # the toy neuron's spikes follow its inputs
    figures = result["figures"]
    assert "auc_vs_parameters" in figures and any(k.startswith("roc_") for k in figures)
    assert all(Path(p).is_file() for p in figures.values())
    written = json.loads((out / "analysis" / "conclusions.json").read_text())
    kinds = {p["kind"] for p in written["paragraphs"]}
    assert {"cortical_elm", "cortical_target", "cortical_thresholds"} <= kinds
    page = (out / "report" / "index.html").read_text()
    assert "Top 10 (test AUC, ours)" in page and "auc_vs_parameters.png" in page


def test_neuronio_speed_rows_and_missing_morphology(monkeypatch: pytest.MonkeyPatch) -> None:
    from neuroreduce.studies.cortical_neuron import speed

    monkeypatch.setattr(speed, "SPEED_MODELS", speed.SPEED_MODELS[1:2])  # LSTM 4-4-2 only
    rows = speed.neuronio_speed(duration_ms=20.0, batch=2, repeats=1)
    assert [r["parameters"] for r in rows] == [20_774]
    assert all(r[k] > 0 for r in rows for k in ("batch1_s_per_simulated_s",
                                                  "batched_s_per_simulated_s"))
    monkeypatch.setattr(speed, "_morphology", lambda: None)
    missing = speed.neuron_cost()
    assert missing["available"] is False and "morphology" in missing["why"]


def test_speed_ratio_prefers_neuron_measured_in_the_same_run() -> None:
    from neuroreduce.studies.cortical_neuron.conclusions import _neuron_for

    result = {"neuron_measured": {"available": True, "dt_ms": 0.05, "duration_ms": 500.0,
                                  "wall_s_per_simulated_s": 4.5},
              "datasets": {"nmda": {"neuron_dt_ms": 0.05}, "fine": {"neuron_dt_ms": 0.025},
                           "toy": {"neuron_dt_ms": None}}}
    costs = {"nmda": 13.0, "fine": 30.0}
    assert _neuron_for(result, "nmda", costs)[0] == 4.5  # same step: this run's measurement
    value, source = _neuron_for(result, "fine", costs)  # other step: the dataset's own cost
    assert value == 30.0 and "dataset" in source
    assert _neuron_for(result, "toy", {}) == (None, "")
