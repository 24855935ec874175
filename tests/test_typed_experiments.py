"""Typed toy tasks from an experiment file: ``experiments/examples/typed_tasks.toml`` end to end.

The file runs through ``neuroreduce experiment run`` (typer's CliRunner, in this process):
task generators as datasets, BCE + MSE on spikes, leave-one-individual-out folds, masked
regression on per-individual channel subsets; scores per field, one cell per fold and the
mean ± std over folds, a cached re-run that trains nothing, the report and analyses. Then
one-line errors for bad keys and values (at load time, or once the datasets are built but
before anything trains), and a sweep maximising a typed metric over a model option.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from neuroreduce.cli import app
from neuroreduce.errors import ConfigError
from neuroreduce.experiments.datasets import DatasetSpec, build_dataset
from neuroreduce.experiments.spec import load_experiment

ROOT = Path(__file__).resolve().parents[1]
TYPED = ROOT / "experiments" / "examples" / "typed_tasks.toml"
FOLDS = [f"behaviour/gru-8/fold{i}" for i in range(4)]
#: Test ROC AUC of spike bins (chance 0.5; a time-shifted control reaches ~0.67, see
#: tests/test_typed_tasks.py); accuracy of behaviour in an unseen individual (chance ~0.5).
AUC_BOUND, ACCURACY_BOUND = 0.8, 0.95
#: Masked test RMSE of the recorded channels must beat this fraction of predicting each
#: channel's training mean.
RMSE_FRACTION = 0.6
cli = CliRunner()


def invoke(*args: object):
    return cli.invoke(app, [str(a) for a in args], catch_exceptions=False,
                      env={"COLUMNS": "250"})


def rows(out: Path) -> dict[str, dict]:
    return {r["key"]: r for r in json.loads((out / "results.json").read_text())["rows"]}


@pytest.fixture(scope="module")
def typed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float, str]:
    out = tmp_path_factory.mktemp("typed") / "run"
    t0 = time.perf_counter()
    r = invoke("experiment", "run", TYPED, "-o", out)
    wall = time.perf_counter() - t0
    assert r.exit_code == 0, r.output
    return out, wall, r.output


def test_the_file_declares_generators_folds_and_typed_metrics() -> None:
    spec = load_experiment(TYPED)
    assert [d.generator for d in spec.datasets.values()] == ["toy_spikes", "toy_behaviour",
                                                            "toy_subsets"]
    assert spec.metrics == ("roc_auc", "accuracy", "rmse")
    spikes, behaviour, subsets = spec.cells  # the fold template is expanded once data exist
    assert [t.to_dict()["loss"] for t in spikes.config.objective] == ["bce", "mse"]
    assert spikes.config.objective[0].pos_weight == "balanced"
    assert not behaviour.resolved and behaviour.folds is None and behaviour.config.split.options[
        "group"] == "individual"
    assert subsets.resolved and subsets.config.split is None
    r = invoke("experiment", "show", TYPED, "-o", "/nonexistent/typed")
    assert r.exit_code == 0 and "every fold" in r.output and "split" in r.output


def test_typed_cells_score_real_numbers(typed_run) -> None:
    out, wall, output = typed_run
    table = rows(out)
    assert list(table) == ["spikes/gru-8", *FOLDS, "subsets/gru-8"]  # one cell per fold
    assert all(r["status"] == "ok" for r in table.values())
    spikes = table["spikes/gru-8"]
    assert spikes["test_spikes_roc_auc_mean"] > AUC_BOUND
    assert spikes["test_outputs_rmse_mean"] > 0 and spikes["test_behaviour_accuracy_mean"] is None
    for key in FOLDS:
        assert table[key]["test_behaviour_accuracy_mean"] > ACCURACY_BOUND, key
    assert _recorded_rmse_bound(out) > table["subsets/gru-8"]["test_activity_rmse_mean"] > 0
    data = json.loads((out / "results.json").read_text())
    assert "test_rmse_mean" not in data["columns"]  # no schema-v1 cell: no pooled columns
    scores = {s["column"]: s for s in data["scores"]}
    assert scores["test_spikes_roc_auc"]["direction"] == "max"
    assert scores["test_behaviour_accuracy"]["kind"] == "categorical"
    (folds,) = data["folds"]
    assert folds["key"] == "behaviour/gru-8" and folds["folds"] == [0, 1, 2, 3]
    acc = folds["columns"]["test_behaviour_accuracy"]
    per = [table[k]["test_behaviour_accuracy_mean"] for k in FOLDS]
    assert acc["per_fold"] == per and acc["mean"] == pytest.approx(np.mean(per))
    assert acc["std"] == pytest.approx(np.std(per, ddof=1))
    held_out = []
    for i, key in enumerate(FOLDS):  # each fold tests one individual never trained on
        config = json.loads((out / "cells" / key.replace("/", "__") / "cell.json").read_text())
        assert config["config"]["split"]["fold"] == i
        held_out.append(json.loads((out / "cells" / key.replace("/", "__") / "results.json")
                                   .read_text())["fields"]["behaviour"]["splits"]["test"]["n_trials"])
    assert held_out == [4, 4, 4, 4]
    assert "test behaviour accuracy" in output and "folds" in output
    print(f"\ntyped_tasks wall {wall:.1f} s; AUC {spikes['test_spikes_roc_auc_mean']:.3f}; "
          f"accuracy per fold {[round(a, 3) for a in per]}; masked RMSE "
          f"{table['subsets/gru-8']['test_activity_rmse_mean']:.3f}")
    assert wall < 60


def _recorded_rmse_bound(out: Path) -> float:
    """RMSE_FRACTION x the RMSE of each recorded channel's training mean (mean over channels)."""
    from neuroreduce.datasets.io import load_dataset

    ds = load_dataset(next((out / "data").glob("subsets-*.h5")))
    y = np.asarray(ds.field("activity").values)
    mean = np.nanmean(y[ds.indices("train")], axis=(0, 1))
    per = np.sqrt(np.nanmean((y[ds.indices("test")] - mean) ** 2, axis=(0, 1)))
    return RMSE_FRACTION * float(np.mean(per))


def test_report_and_analyses_handle_typed_cells(typed_run) -> None:
    out, _, _ = typed_run
    page = (out / "report" / "index.html").read_text()
    assert "behaviour (categorical)" in page and "mean ± std over folds" in page
    assert "spikes (binary)" in page and "drawn for cells with continuous outputs only" in page
    scores = json.loads((out / "analysis" / "typed_scores.json").read_text())
    assert set(scores["cells"]) == {"spikes/gru-8", *FOLDS, "subsets/gru-8"}
    assert scores["folds"]["behaviour/gru-8"]["strategy"] == "leave_groups_out"
    meta = json.loads((out / "analysis" / "analysis.json").read_text())
    assert "error_vs_size" in meta["skipped_for_typed_cells"] and meta["n_cells"] == 6
    assert not (out / "analysis" / "error_vs_size.json").exists()
    kinds = [p["kind"] for p in json.loads((out / "analysis" / "conclusions.json").read_text())[
        "paragraphs"]]
    assert kinds == ["typed", "folds"]  # no NaN ranking of continuous outputs
    r = invoke("experiment", "report", out)
    assert r.exit_code == 0, r.output


def test_cached_rerun_retrains_nothing(typed_run) -> None:
    out, _, _ = typed_run
    stamps = {p: p.stat().st_mtime_ns for p in (out / "cells").glob("*/*") if p.is_file()}
    data = {p: p.stat().st_mtime_ns for p in (out / "data").glob("*.h5")}
    before = rows(out)
    r = invoke("experiment", "run", TYPED, "-o", out)
    assert r.exit_code == 0, r.output
    run = json.loads((out / "run.json").read_text())
    assert run["cells"] == 6 and run["cells_run"] == 0 and run["cells_skipped"] == 6
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert {p: p.stat().st_mtime_ns for p in data} == data  # datasets reused by spec hash
    after = rows(out)
    for key, row in before.items():
        assert {k: v for k, v in row.items() if not k.startswith("wall")} == {
            k: v for k, v in after[key].items() if not k.startswith("wall")}
    r = invoke("experiment", "show", TYPED, "-o", out)
    assert r.exit_code == 0 and "behaviour/gru-8/fold3" in r.output and "finished" in r.output


def test_generator_datasets_are_cached_by_spec_hash(tmp_path: Path) -> None:
    spec = DatasetSpec.from_dict("sp", {"scenario": "toy_spikes", "stimuli": 6})
    assert spec.to_dict() == {"scenario": "toy_spikes", "stimuli": 6, "dt_out_ms": 1.0,
                              "seed": 0, "role": "train"}
    path = build_dataset(spec, data_dir=tmp_path, progress=False)
    stamp = path.stat().st_mtime_ns
    assert build_dataset(spec, data_dir=tmp_path, progress=False) == path
    assert path.stat().st_mtime_ns == stamp
    other = DatasetSpec.from_dict("sp", {"scenario": "toy_spikes", "stimuli": 6, "seed": 1})
    assert other.spec_hash() != spec.spec_hash()
    test = DatasetSpec.from_dict("sp", {"scenario": "toy_spikes", "stimuli": 3, "role": "test"})
    from neuroreduce.datasets.io import load_dataset

    ds = load_dataset(build_dataset(test, data_dir=tmp_path, progress=False))
    assert (ds.split == 2).all() and ds.provenance["task_generator"] == "toy_spikes"


BAD_AT_LOAD = [
    (('stimuli = 24\n', 'stimuli = 24\nfamilies = ["ramp"]\n'),
     ["[datasets.spikes]", "'families'", "task generator 'toy_spikes'", "allowed keys"]),
    (('scenario = "toy_spikes"', 'scenario = "toy_spikez"'),
     ["unknown scenario 'toy_spikez'", "toy_spikes"]),
    (('metrics = ["roc_auc", "accuracy", "rmse"]', 'metrics = ["roc_aucc"]'),
     ["experiment.metrics", "unknown metric 'roc_aucc'", "allowed", "roc_auc"]),
    (('metrics = ["roc_auc", "accuracy", "rmse"]', 'metrics = ["confusion_matrix"]'),
     ["'confusion_matrix'", "not a score", "balanced_accuracy"]),
    (('[analysis]', '[evaluate]\nspike_timing = { window = 4 }\n\n[analysis]'),
     ["evaluate.spike_timing", "unknown spike-timing option(s) window", "coincidence_window_ms"]),
    (('strategy = "leave_groups_out"', 'strategy = "leave_group_out"'),
     ["[[grid]] block 2", "unknown split strategy 'leave_group_out'", "leave_groups_out"]),
    (('options = { group = "individual" }', 'options = { groop = "individual" }'),
     ["block 2", "unknown option 'groop'", "allowed: group, k, valid"]),
    (('options = { group = "individual" } }', 'options = { group = "individual" }, fold = -1 }'),
     ["block 2", "split.fold must be", "-1"]),
    (('pos_weight = "balanced"', 'pos_wieght = "balanced"'),
     ["block 1", "pos_wieght", "allowed"]),
    (('hidden = 8\nobjective', 'hidden = 8\nmodel_options = { layers = 2 }\nobjective'),
     ["block 1", "model 'gru' has no option(s) layers"]),
    (('epochs = 10', 'epochs = [10, 20]'), ["block 2", "epochs must be a single value"]),
]


@pytest.mark.parametrize(("edit", "words"), BAD_AT_LOAD)
def test_bad_keys_are_one_line_errors_at_load(tmp_path: Path, edit, words) -> None:
    path = _edited(tmp_path, edit)
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    for w in words:
        assert w in message, (w, message)
    r = invoke("experiment", "run", path, "-o", tmp_path / "out")
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert not (tmp_path / "out").exists()


BAD_WITH_DATA = [
    (('group = "individual"', 'group = "animal"'),
     ["cell behaviour/gru-8: split", "unknown group 'animal'", "individual"]),
    (('options = { group = "individual" } }', 'options = { group = "individual" }, fold = 7 }'),
     ["cell behaviour/gru-8", "split.fold 7 does not exist", "folds 0..3"]),
    (('field = "spikes", loss = "bce"', 'field = "spikez", loss = "bce"'),
     ["cell spikes/gru-8: objective", "'spikez' is not predicted", "outputs, spikes"]),
]


@pytest.mark.parametrize(("edit", "words"), BAD_WITH_DATA)
def test_bad_values_for_the_data_stop_before_training(tmp_path: Path, edit, words) -> None:
    path = _edited(tmp_path, edit)
    load_experiment(path)  # valid on its own: only the data can tell
    r = invoke("experiment", "run", path, "-o", tmp_path / "out")
    assert r.exit_code == 2 and "Traceback" not in r.output
    text = " ".join(r.output.split())
    for w in words:
        assert w in text, (w, text)
    assert not (tmp_path / "out" / "cells").exists()  # nothing trained


def test_continuous_grids_keep_the_rmse_rule(tmp_path: Path) -> None:
    head = ('[experiment]\nname = "c"\nmetrics = {m}\n[datasets.toy]\nscenario = "toy"\n'
            'stimuli = 6\n[[grid]]\ndatasets = "toy"\nmodels = "gru"\nhidden = 2\n')
    for metrics, words in ((['"nrmse"'], 'must include "rmse"'),
                           (['"rmse"', '"roc_auc"'], "'roc_auc' scores binary fields")):
        path = tmp_path / "c.toml"
        path.write_text(head.format(m=f"[{', '.join(metrics)}]"))
        with pytest.raises(ConfigError, match=words):
            load_experiment(path)


def _edited(folder: Path, edit: tuple[str, str]) -> Path:
    text = TYPED.read_text()
    assert edit[0] in text, edit[0]
    path = folder / "typed.toml"
    path.write_text(text.replace(edit[0], edit[1], 1))
    return path


def test_a_sweep_maximises_a_typed_metric_over_a_model_option(tmp_path: Path) -> None:
    from neuroreduce.sweeps import parse_sweep, run_sweep

    data = {
        "dataset": {"scenario": "toy_behaviour", "n_stimuli": 8, "dt_out_ms": 1.0},
        "search": {"model": ["stacked_rnn"], "hidden": 4, "epochs": 2, "batch_size": 4,
                   "learning_rate": {"low": 0.01, "high": 0.05, "log": True},
                   "model_options": {"layers": [1, 2], "cell": "gru"}},
        "sweep": {"trials": 3, "seeds_per_trial": 2, "pruner": "none", "seed": 0,
                  "metric": "valid_accuracy"},
    }
    spec = parse_sweep(data)
    assert spec.direction == "maximize" and "model_options.layers" in spec.search
    assert spec.fixed["model_options"] == {"cell": "gru"}
    result = run_sweep(spec, tmp_path, progress=False)
    assert result.counts["complete"] == 3 and not result.errors
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["direction"] == "maximize" and best["value"] == best["valid_accuracy"]["mean"]
    assert best["config"]["model_options"]["layers"] == best["params"]["model_options.layers"]
    assert math.isfinite(best["test_accuracy"]["mean"])
    import optuna

    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{tmp_path / 'sweep.db'}")
    assert best["value"] == max(t.value for t in study.trials)
    bad = {**data, "sweep": {**data["sweep"], "metric": "valid_roc_auc"}}
    with pytest.raises(ConfigError, match="needs a binary field.*behaviour \\(categorical\\)"):
        run_sweep(parse_sweep(bad), tmp_path / "bad", progress=False)
    with pytest.raises(ConfigError, match="model 'gru' has no option 'layers'"):
        parse_sweep({**data, "search": {**data["search"], "model": ["gru", "stacked_rnn"]}})


def test_shipped_typed_sweep_parses() -> None:
    from neuroreduce.sweeps import Choice, load_sweep

    spec = load_sweep(ROOT / "experiments" / "sweeps" / "toy_spikes_auc.toml")
    assert spec.metric == "valid_roc_auc" and spec.direction == "maximize"
    assert spec.metric_field == "spikes" and spec.dataset.scenario == "toy_spikes"
    assert spec.search["model_options.layers"] == Choice((1, 2))
    assert spec.fixed["model_options"] == {"cell": "gru"} and spec.fixed["targets"] == ["spikes"]
