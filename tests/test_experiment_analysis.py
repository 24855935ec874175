"""Experiment analyses: paper tables, integrated gradients, error vs size, conclusions, report."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from neuroreduce.errors import ConfigError
from neuroreduce.experiments.analysis import AnalysisSpec, error_vs_size, run_analyses
from neuroreduce.experiments.attribution import (
    importance_matrix,
    integrated_gradients,
    time_mean_target,
)
from neuroreduce.experiments.conclusions import behaviour_paragraph, conclusions
from neuroreduce.experiments.expfiles import CellSummary, Stat
from neuroreduce.models.rnn import RecurrentSurrogate
from neuroreduce.studies.barbulescu2023 import tables as paper
from neuroreduce.studies.barbulescu2023.conclusions import exp1, exp3, exp4, exp5
from neuroreduce.studies.registry import get_study

EXPECTED_SHAPES = {"table1": (6, 3), "table2": (6, 3), "table3": (4, 3), "table4": (6, 2),
                   "table5": (6, 1)}


# ----------------------------------------------------------------------------- paper tables
def test_paper_tables_complete_and_positive() -> None:
    assert paper.list_paper_tables() == sorted(EXPECTED_SHAPES)
    for key, (n_cols, n_rows) in EXPECTED_SHAPES.items():
        t = paper.get_paper_table(key)
        assert (len(t.columns), len(t.rows)) == (n_cols, n_rows), key
        assert t.number == t.experiment == int(key[-1])
        for row in t.rows:
            assert len(row.values) == n_cols
            assert all(v > 0 and math.isfinite(v) for v in row.values)
        assert t.conclusion and t.observation
        assert len(t.entries()) == n_cols * n_rows


def test_paper_values_and_parameter_counts_as_printed() -> None:
    t1 = paper.get_paper_table("table1")
    assert t1.value("RNN-16", "Test") == pytest.approx(1.34e-1)
    assert t1.value("GRU-32", "Validation") == pytest.approx(3.50e-2)
    for col in t1.columns:  # the counts stated in the text equal the Keras formula
        assert col.parameters == col.stated_parameters
    assert paper.get_paper_table("table2").value("16 Units", "Test") == pytest.approx(9.36e-3)
    assert paper.get_paper_table("table3").value("Dataset 2-8", "Training") == pytest.approx(
        8.17e-3)
    assert paper.get_paper_table("table4").value("GRU-32", "No-AVB") == pytest.approx(6.57e-2)
    assert paper.get_paper_table("table5").value("GRU-16", "Avg RMSE") == pytest.approx(2.37e-2)
    assert {c.dt_ms for c in paper.get_paper_table("table3").columns} == {0.5, 0.1}
    assert all(c.n_outputs == 28 for c in paper.get_paper_table("table5").columns)
    with pytest.raises(ConfigError, match="table1"):
        paper.get_paper_table("table9")


# --------------------------------------------------------------------- integrated gradients
def test_integrated_gradients_completeness() -> None:
    model = RecurrentSurrogate("gru", 3, 2, 5).double()
    x = torch.randn(4, 60, 3, dtype=torch.float64)
    base = torch.full((1, 1, 3), -0.3, dtype=torch.float64)

    def fn(p: torch.Tensor) -> torch.Tensor:
        return time_mean_target(model(p))

    attr = integrated_gradients(fn, x, base, steps=32)
    assert attr.shape == (4, 60, 3, 2)
    gap = fn(x) - fn(base.expand_as(x))
    assert torch.allclose(attr.sum(dim=(1, 2)), gap, rtol=1e-3, atol=1e-5)
    coarse = integrated_gradients(fn, x, base, steps=2, rule="riemann")
    assert (coarse.sum(dim=(1, 2)) - gap).abs().max() > (attr.sum(dim=(1, 2)) - gap).abs().max()


def test_integrated_gradients_ignore_unused_inputs() -> None:
    model = RecurrentSurrogate("lstm", 4, 3, 6)
    with torch.no_grad():
        model.rnn.weight_ih_l0[:, 1:] = 0.0  # the output depends on input 0 only
    x = torch.rand(3, 40, 4) + 0.5
    attr = integrated_gradients(lambda p: time_mean_target(model(p)), x, torch.zeros(1, 1, 4),
                                steps=8)
    imp = importance_matrix(attr.abs().mean(dim=1).numpy())  # [input, output]
    assert imp.shape == (4, 3)
    np.testing.assert_allclose(imp[0], 1.0, atol=1e-6)
    np.testing.assert_allclose(imp[1:], 0.0, atol=1e-6)


def test_integrated_gradients_bad_steps() -> None:
    with pytest.raises(ConfigError, match="steps"):
        integrated_gradients(lambda p: p.mean(dim=1), torch.zeros(1, 3, 2), torch.zeros(1, 1, 2),
                             steps=0)


# ------------------------------------------------------------------------------ spec, size
def test_analysis_spec_from_dict() -> None:
    spec = AnalysisSpec.from_dict({"attribution": True, "speed_trials": 2})
    assert spec.attribution and spec.speed_trials == 2 and spec.size_tolerance == 0.10
    with pytest.raises(ConfigError, match="allowed: attribution, attribution_steps"):
        AnalysisSpec.from_dict({"atribution": True})
    with pytest.raises(ConfigError, match="speed_trials"):
        AnalysisSpec.from_dict({"speed_trials": 0})
    with pytest.raises(ConfigError, match="true or false"):
        AnalysisSpec.from_dict({"speed": "yes"})


def test_error_vs_size_selection() -> None:
    pts = [{"key": k, "n_parameters": n, "mean": m, "std": 0.0} for k, n, m in
           [("g2", 50, 0.060), ("g4", 140, 0.0105), ("g8", 350, 0.0101), ("g16", 1100, 0.0100),
            ("g64", 14000, 0.0168), ("nan", 10, float("nan"))]]
    r = error_vs_size(pts, tolerance=0.10)
    assert r["best"] == "g16" and r["smallest_within"] == "g4"
    assert r["threshold"] == pytest.approx(0.011)
    assert r["size_ratio"] == pytest.approx(140 / 1100)
    assert [p["key"] for p in r["points"]] == ["g2", "g4", "g8", "g16", "g64"]
    assert error_vs_size(pts, tolerance=0.0)["smallest_within"] == "g16"
    assert error_vs_size(pts, tolerance=0.02)["smallest_within"] == "g8"


# ------------------------------------------------------------------------------ conclusions
def _cell(model: str, hidden: int, test: float, *, variant: str = "all", dt: float = 0.5,
          dataset: str = "fcm", per_output: dict[str, float] | None = None,
          inputs: tuple[str, ...] = ("PLML", "PLMR", "AVBL", "AVBR")) -> CellSummary:
    outs = ("DB1", "LUAL", "PVR", "VB1")
    per = per_output or dict.fromkeys(outs, test)
    key = f"{dataset}/{model}-{hidden}" + ("" if variant == "all" else f"/{variant}")
    return CellSummary(
        key=key, folder=Path("."), dataset=dataset, model=model, hidden=hidden, variant=variant,
        inputs=inputs, outputs=outs, n_parameters=hidden * 40, dt_ms=dt,
        splits={"test": {"rmse": Stat(test, 0.05 * test), "nrmse": Stat(test, 0.05 * test)}},
        per_output={"test": {o: {"rmse": Stat(v, 0.0), "nrmse": Stat(v, 0.0)}
                             for o, v in per.items()}})


def test_exp1_conclusion_follows_the_data() -> None:
    worse = [_cell("rnn", 16, 0.13), _cell("gru", 8, 0.010), _cell("lstm", 8, 0.015)]
    better = [_cell("rnn", 16, 0.009), _cell("gru", 8, 0.010), _cell("lstm", 8, 0.015)]
    (a,), (b,) = exp1(worse), exp1(better)
    assert a["holds"] is True and "holds" in a["text"] and "13x" in a["text"]
    assert b["holds"] is False and "does NOT hold" in b["text"]
    assert a["text"] != b["text"]


def test_exp3_conclusion_follows_the_data() -> None:
    same = [_cell("gru", 4, 0.0117), _cell("gru", 4, 0.0121, dt=0.1, dataset="fine")]
    differ = [_cell("gru", 4, 0.0117), _cell("gru", 4, 0.030, dt=0.1, dataset="fine")]
    (a,), (b,) = exp3(same, tolerance=0.1), exp3(differ, tolerance=0.1)
    assert a["holds"] is True and "+3%" in a["text"]
    assert b["holds"] is False and "+156%" in b["text"]


def _ablation_cells(hurt_without_avb: tuple[str, str]) -> list[CellSummary]:
    base = dict.fromkeys(("DB1", "LUAL", "PVR", "VB1"), 1.0)
    no_avb = {o: (3.0 if o in hurt_without_avb else 1.1) for o in base}
    no_plm = {o: (1.1 if o in hurt_without_avb else 3.0) for o in base}
    return [_cell("gru", 8, 1.0, per_output=base),
            _cell("gru", 8, 2.0, variant="no_avb", per_output=no_avb, inputs=("PLML", "PLMR")),
            _cell("gru", 8, 2.0, variant="no_plm", per_output=no_plm, inputs=("AVBL", "AVBR"))]


def test_exp4_conclusion_follows_the_data() -> None:
    from neuroreduce.experiments.analysis import ablation

    texts = []
    for hurt, expected in ((("LUAL", "PVR"), True), (("DB1", "VB1"), False)):
        cells = _ablation_cells(hurt)
        (para,) = exp4(cells, {"ablation": ablation(cells)})
        assert para["holds"] is expected, para["text"]
        assert "Without AVBL, AVBR (no_avb)" in para["text"]
        texts.append(para["text"])
    assert "stated conclusion \"AVB drives LUAL/PVR\": holds by ablation" in texts[0]
    assert "stated conclusion \"AVB drives LUAL/PVR\": does NOT hold by ablation" in texts[1]


def test_exp5_conclusions_follow_the_data() -> None:
    def wide(model: str, hidden: int, test: float) -> CellSummary:
        c = _cell(model, hidden, test, dataset="mix")
        return dataclasses.replace(c, outputs=tuple(f"N{i}" for i in range(28)),
                                   inputs=tuple(f"I{i}" for i in range(10)))

    # GRU-16 within 10% of the best GRU-32: 16 < 28 units suffice; GRU wins 2 of 3 sizes
    small_ok = [wide("gru", 8, 0.030), wide("gru", 16, 0.0105), wide("gru", 32, 0.0100),
                wide("lstm", 8, 0.040), wide("lstm", 16, 0.0100), wide("lstm", 32, 0.0120)]
    scale, gru = exp5(small_ok, tolerance=0.10)
    assert scale["holds"] is True and "GRU-16" in scale["text"] and "28 outputs" in scale["text"]
    assert gru["holds"] is True and "2 of 3" in gru["text"]
    assert "2 of the 3 differences exceed the seeds' combined standard deviation" in gru["text"]
    # only the 32-unit models get within 10%, and the LSTM wins every size
    big_only = [wide("gru", 8, 0.030), wide("gru", 16, 0.0200), wide("gru", 32, 0.0101),
                wide("lstm", 8, 0.020), wide("lstm", 16, 0.0150), wide("lstm", 32, 0.0100)]
    scale, gru = exp5(big_only, tolerance=0.10)
    assert scale["holds"] is False and "does NOT hold" in scale["text"]
    assert "smallest model within 10% of it is LSTM-32" in scale["text"]
    assert gru["holds"] is False and "0 of 3" in gru["text"]


def test_behaviours_of_a_mixed_scenario_are_scored_apart() -> None:
    from neuroreduce.scenarios import FCM16_OUTPUTS, NICTATION_OUTPUTS

    def mixed(model: str, hidden: int, fcm: float, nictation: float) -> CellSummary:
        per = {**dict.fromkeys(FCM16_OUTPUTS, fcm), **dict.fromkeys(NICTATION_OUTPUTS, nictation)}
        per["DB1"] = 10 * fcm  # one outlier: the median ignores it
        c = _cell(model, hidden, fcm, dataset="mix", per_output=per)
        return dataclasses.replace(c, outputs=FCM16_OUTPUTS + NICTATION_OUTPUTS)

    cells = [mixed("gru", 8, 0.02, 0.08), mixed("lstm", 8, 0.03, 0.06)]
    resolved = {"datasets": {"mix": {"table": {"scenario": "fcm_nictation"}}}}
    (para,) = behaviour_paragraph(cells, resolved)
    assert para["holds"] is None
    assert "GRU-8 scores fcm 0.02 (16 outputs), nictation 0.08 (12 outputs)" in para["text"]
    hard = "nictation outputs are 2-4x as hard as the fcm outputs across the 2 models"
    assert hard in para["text"]
    # a one-behaviour scenario, or an unknown one, gets no paragraph
    assert behaviour_paragraph(cells, {"datasets": {"mix": {"table": {"scenario": "fcm"}}}}) == []
    assert behaviour_paragraph(cells, {}) == []


def test_a_behaviour_must_name_outputs_of_its_scenario() -> None:
    from neuroreduce.scenarios import Scenario

    with pytest.raises(ConfigError, match=r"behaviour 'b' names outputs \['X'\]"):
        Scenario(name="s", description="", inputs=("a",), outputs=("o",),
                 behaviours=(("b", ("o", "X")),))


def test_conclusions_pick_paragraphs_from_the_paper_key() -> None:
    cells = [_cell("rnn", 16, 0.13), _cell("gru", 8, 0.010)]
    study = get_study("barbulescu2023")
    kinds = [p["kind"] for p in conclusions(cells, {}, resolved={"paper": "table1"}, study=study)]
    assert kinds[0] == "ranking" and "exp1" in kinds and "exp4" not in kinds


def test_without_a_study_the_conclusions_are_generic() -> None:
    from neuroreduce.experiments.analysis import ablation

    cells = _ablation_cells(("LUAL", "PVR")) + [_cell("rnn", 16, 0.13)]
    analyses = {"ablation": ablation(cells)}
    generic = conclusions(cells, analyses, resolved={})
    assert [p["kind"] for p in generic] == ["ranking", "importance"]
    assert "Without AVBL, AVBR (no_avb)" in generic[1]["text"]
    assert "paper" not in " ".join(p["text"] for p in generic)  # no claim of any study
    study = conclusions(cells, analyses, resolved={}, study=get_study("barbulescu2023"))
    assert [p["kind"] for p in study] == ["ranking", "exp1", "exp4"]  # exp4 replaces importance
    assert study[2]["text"].startswith(generic[1]["text"])  # the same numbers, then the claims


# ------------------------------------------------------------------- end to end on the toy
TOY_TOML = """
[experiment]
name = "toyabl"
seeds = 2
paper = "table2"

[datasets.toy]
scenario = "toy"
stimuli = 12
dt_out_ms = 1.0
seed = 0

[datasets.toy_ood]
scenario = "toy"
stimuli = 4
dt_out_ms = 1.0
seed = 1
families = ["{ood}"]
role = "test"

[training]
epochs = 2
batch_size = 4
learning_rate = 0.01

[[grid]]
datasets = ["toy"]
models = ["gru"]
hidden = [2, 4]
inputs = {{ all = "all", no_in01 = ["in2", "in3"] }}

[evaluate]
extra = ["toy_ood"]

[analysis]
attribution = true
attribution_steps = 4
attribution_trials = 2
speed_trials = 2
speed_repeats = 2
"""


@pytest.fixture(scope="module")
def toy_suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A suite folder holding one finished toy experiment (runner + analyses + report)."""
    from neuroreduce._io import write_json_atomic
    from neuroreduce.experiments.runner import run_experiment
    from neuroreduce.stimuli import ood_families

    root = tmp_path_factory.mktemp("suite")
    src = root / "toyabl.toml"
    src.write_text(TOY_TOML.format(ood=ood_families()[0]))
    torch.manual_seed(0)
    run_experiment(src, root / "toyabl", progress=False)
    write_json_atomic(root / "suite.json", {"suite": "s", "experiments": [
        {"name": "toyabl", "folder": "toyabl", "failed": []}], "wall_s": 1.0})
    return root


@pytest.mark.slow
def test_analyses_and_report_from_a_toy_experiment(toy_suite: Path) -> None:
    exp = toy_suite / "toyabl"
    names = {p.name for p in (exp / "analysis").glob("*.json")}
    assert {"error_vs_size.json", "paper_comparison.json", "ablation.json", "ood.json",
            "attribution.json", "speed.json", "conclusions.json", "analysis.json"} <= names
    attr = json.loads((exp / "analysis" / "attribution.json").read_text())
    full = attr["cells"]["toy/gru-4"]
    np.testing.assert_allclose(np.sum(full["importance_mean"], axis=0), 1.0, atol=1e-9)
    assert len(attr["cells"]["toy/gru-4/no_in01"]["inputs"]) == 2
    abl = json.loads((exp / "analysis" / "ablation.json").read_text())["variants"]["no_in01"]
    assert abl["removed"] == ["in0", "in1"] and len(abl["cells"]) == 2
    pc = json.loads((exp / "analysis" / "paper_comparison.json").read_text())
    matched = {e["column"]: e["cell"] for r in pc["rows"] for e in r["entries"] if e["cell"]}
    assert matched == {"2 Units": "toy/gru-2", "4 Units": "toy/gru-4"}
    ood = json.loads((exp / "analysis" / "ood.json").read_text())["rows"]
    assert len(ood) == 4 and all(r["ratio"] > 0 for r in ood)
    speed = json.loads((exp / "analysis" / "speed.json").read_text())
    assert speed["simulators"]["toy"]["n_trials"] == 2
    assert all(r["batch1_s"] > 0 and r["speedup_batch1"] > 0 for r in speed["surrogates"])
    page = (exp / "report" / "index.html").read_text()
    for heading in ("Our results next to the paper", "Conclusions", "Error vs size",
                    "Out-of-distribution", "attribution and ablation", "Speed", "Provenance",
                    "Wall time"):
        assert heading in page
    figs = {p.name for p in (exp / "report" / "figures").glob("*.png")}
    assert {"loss_curves.png", "error_vs_size.png", "attribution.png", "ablation.png",
            "sequences_0.png"} <= figs


@pytest.mark.slow
def test_suite_index_links_members(toy_suite: Path) -> None:
    from neuroreduce.experiments.report import make_experiment_report

    page = make_experiment_report(toy_suite)
    text = page.read_text()
    assert '<a href="../toyabl/report/index.html">toyabl</a>' in text
    assert (toy_suite / "report" / "figures" / "error_vs_size.png").is_file()


@pytest.mark.slow
def test_run_analyses_needs_finished_cells(tmp_path: Path) -> None:
    from neuroreduce.errors import CheckpointError

    with pytest.raises(CheckpointError, match="no finished cells"):
        run_analyses(tmp_path, AnalysisSpec(), progress=False)


def test_simulator_of_dataset_from_provenance() -> None:
    from neuroreduce.datasets.dataset import Dataset
    from neuroreduce.experiments.speed import simulator_of_dataset

    def ds(prov: dict) -> Dataset:
        return Dataset(inputs=np.zeros((1, 3, 4)), outputs=np.zeros((1, 3, 4)), dt_ms=0.5,
                       input_names=("a", "b", "c", "d"), output_names=("w", "x", "y", "z"),
                       provenance=prov)

    name, opts = simulator_of_dataset(ds({"scenario": "fcm", "simulator.simulator": "celegans",
                                          "simulator.parameter_set": "C1",
                                          "simulator.dt_ms": 0.05, "simulator.ablated": [],
                                          "simulator.cache_dir": "/x"}))
    assert name == "celegans"
    assert opts == {"scenario": "fcm", "parameter_set": "C1", "dt_ms": 0.05, "ablated": ()}
    name, opts = simulator_of_dataset(ds({"scenario": "toy"}))
    assert name == "toy" and opts["n_inputs"] == 4
    with pytest.raises(ConfigError, match="speed = false"):
        simulator_of_dataset(ds({"importer": "dat"}))


@pytest.mark.slow
def test_ensemble_attribution_completeness_on_a_trained_run(toy_suite: Path) -> None:
    """Input gradients flow through the trained ensemble (whatever engine runs it)."""
    from neuroreduce.training import load_run

    run = load_run(toy_suite / "toyabl" / "cells" / "toy__gru-4")
    x = torch.rand(run.n_members, 2, 50, 4, dtype=torch.float32)

    def fn(p: torch.Tensor) -> torch.Tensor:
        return time_mean_target(run.model(p))

    attr = integrated_gradients(fn, x, torch.zeros(1, 1, 1, 4), steps=32)
    gap = (fn(x) - fn(torch.zeros_like(x))).detach()
    assert attr.abs().sum() > 0
    torch.testing.assert_close(attr.sum(dim=(2, 3)), gap, rtol=2e-2, atol=2e-4)


# ----------------------------------------------------------------------------- stopped members
def test_stopped_members_are_the_ones_the_trainer_froze(tmp_path: Path) -> None:
    from neuroreduce.datasets.dataset import Dataset
    from neuroreduce.experiments.expfiles import stopped_members
    from neuroreduce.training import TrainConfig, train

    rng = np.random.default_rng(0)
    u = rng.normal(size=(10, 40, 2)).astype(np.float32)
    y = np.cumsum(u[:, :, :1] - 0.5 * u[:, :, 1:], axis=1).astype(np.float32)
    ds = Dataset(u, y, 0.5, ("u1", "u2"), ("y",), split=np.array([0] * 6 + [1] * 2 + [2] * 2))
    cfg = TrainConfig(model="gru", hidden=3, seeds=(0, 1, 2, 3), epochs=8, batch_size=3,
                      learning_rate=0.01, early_stopping_patience=1)
    result = train(ds, cfg, tmp_path / "run", progress=False)
    frozen = tuple(k for k, s in enumerate(result.stopped_early) if s)
    assert frozen and len(frozen) < len(cfg.seeds), result.stopped_early  # a mixed ensemble
    assert stopped_members(tmp_path / "run") == frozen
    assert stopped_members(tmp_path / "missing") == ()


def test_stopped_paragraph_names_cells_and_best_epochs() -> None:
    from dataclasses import replace

    from neuroreduce.experiments.conclusions import stopped_paragraph

    ok = replace(_cell("gru", 8, 0.01), best_epochs=(990, 995))
    bad = replace(_cell("gru", 32, 0.02, variant="no_avb"), best_epochs=(900, 16, 601),
                  stopped=(1, 2))
    assert stopped_paragraph([ok]) == []
    (para,) = stopped_paragraph([ok, bad])
    assert para["kind"] == "stopped" and para["holds"] is None
    assert para["text"].startswith("1 of 2 cell(s) had members stop")
    assert "fcm/gru-32/no_avb 2 of 3, best epochs 16-601" in para["text"]


def _size_result(best: float, params: int, means: tuple[float, ...]) -> dict:
    return {"best": f"x/gru-{params}", "best_mean": best, "best_parameters": params,
            "smallest_within": f"x/gru-{params}", "smallest_mean": best,
            "smallest_parameters": params, "tolerance": 0.1,
            "points": [{"mean": m} for m in means]}


def test_fidelity_paragraph_compares_sizes_only_between_fitted_levels() -> None:
    from neuroreduce.experiments.conclusions import fidelity

    resolved = {"datasets": {"graded": {"parameter_set": "C0"}, "spiking": {"parameter_set": "C"}}}
    fitted = {"error_vs_size": {"datasets": {
        "graded": _size_result(0.004, 1124, (0.05, 0.004)),
        "spiking": _size_result(0.006, 140, (0.006, 0.0062))}}}
    (para,) = fidelity(fitted, resolved)
    assert para["text"].endswith("graded needs 8x the parameters of spiking.")
    unfitted = {"error_vs_size": {"datasets": {
        "graded": _size_result(0.004, 1124, (0.05, 0.004)),
        "spiking": _size_result(0.107, 60, (0.107, 0.113))}}}
    (para,) = fidelity(unfitted, resolved)
    assert "spiking (parameters_C): no size fits it well" in para["text"]
    assert "27x the best on graded" in para["text"] and "within 6% of each other" in para["text"]
    assert "needs" not in para["text"]
    assert fidelity(unfitted, {"datasets": {"graded": {"parameter_set": "C0"}}}) == []


def test_sequence_figure_shows_each_behaviour_of_a_mixed_dataset() -> None:
    from neuroreduce.experiments.report import sequence_outputs, sequence_trials

    inputs = np.zeros((6, 10, 3))
    inputs[[0, 1, 3], :, 0] = 1.0  # behaviour A drives input 0
    inputs[[2, 4], :, 2] = 1.0  # behaviour B drives input 2
    test = np.array([1, 3, 4, 5])
    assert sequence_trials(inputs, test).tolist() == [1, 4]  # 3 drives the same input as 1
    same = np.zeros((6, 10, 3))
    same[:, :, 1] = 1.0
    assert sequence_trials(same, test).tolist() == [1, 3]  # one behaviour: the first two
    assert sequence_trials(inputs, np.array([5])).tolist() == [5]

    names = ("a1", "a2", "a3", "b1", "b2", "b3")
    variance = np.array([9.0, 8.0, 7.0, 0.3, 0.1, 0.2])
    assert sequence_outputs(variance, names, ()).tolist() == [0, 1, 2, 3]
    behaviours = (("A", ("a1", "a2", "a3")), ("B", ("b1", "b2", "b3")))
    assert sequence_outputs(variance, names, behaviours).tolist() == [0, 1, 3, 5]
