"""Sweeps: a tiny toy sweep finishes, continues, prunes, recovers interrupted trials; bad files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest

from neuroreduce.errors import ConfigError, DatasetError
from neuroreduce.execution import Backend
from neuroreduce.sweeps import Choice, Range, load_sweep, parse_sweep, run_sweep

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def toy_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from neuroreduce.pipeline import simulate

    path = tmp_path_factory.mktemp("sweepdata") / "toy.h5"
    simulate("toy", n_stimuli=12, dt_out_ms=2.0, seed=0, out=path, progress=False)
    return path


def _spec(dataset: Path, **sweep: object) -> dict:
    return {
        "dataset": {"path": str(dataset)},
        "search": {"model": ["gru", "rnn"], "hidden": {"low": 2, "high": 6, "log": True},
                   "learning_rate": {"low": 0.005, "high": 0.05, "log": True}, "epochs": 3,
                   "batch_size": 4},
        "sweep": {"trials": 2, "seeds_per_trial": 2, "pruner": "none", "seed": 1, **sweep},
    }


def _trials(out: Path, name: str = "sweep") -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'sweep.db'}")
    return study.get_trials()


@pytest.mark.slow
def test_a_tiny_sweep_finishes_and_a_rerun_with_more_trials_continues_it(
    toy_dataset: Path, tmp_path: Path
) -> None:
    spec = parse_sweep(_spec(toy_dataset, final_seeds=3))
    first = run_sweep(spec, tmp_path, progress=False)
    assert first.counts["complete"] == 2 and not first.errors
    best = json.loads((tmp_path / "best.json").read_text())
    final = best["final"]  # the best configuration retrained with 3 seeds
    assert final["seeds"] == [0, 1, 2] and len(final["test_rmse"]["per_seed"]) == 3
    assert math.isfinite(final["test_rmse"]["std"]) and Path(final["run_dir"]).is_dir()
    for split in ("valid_rmse", "test_rmse"):
        assert math.isfinite(best[split]["mean"]) and math.isfinite(best[split]["std"])
        assert len(best[split]["per_seed"]) == 2
    assert best["value"] == best["valid_rmse"]["mean"]
    assert best["config"]["seeds"] == [0, 1] and best["config"]["epochs"] == 3
    assert Path(best["run_dir"], "provenance.json").exists()
    before = [(t.number, t.params, t.value) for t in _trials(tmp_path)]

    again = run_sweep(spec, tmp_path, trials=3, progress=True)
    after = _trials(tmp_path)
    assert again.counts["complete"] == 3 and len(after) == 3
    assert [(t.number, t.params, t.value) for t in after[:2]] == before
    assert run_sweep(spec, tmp_path, trials=3, progress=False).counts["complete"] == 3


@pytest.mark.slow
def test_trials_left_running_by_an_interrupt_are_failed_and_requeued(
    toy_dataset: Path, tmp_path: Path
) -> None:
    spec = parse_sweep(_spec(toy_dataset, trials=1))
    run_sweep(spec, tmp_path, progress=False)
    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{tmp_path / 'sweep.db'}")
    lost = study.ask({"model": optuna.distributions.CategoricalDistribution(["gru", "rnn"]),
                      "hidden": optuna.distributions.IntDistribution(2, 6, log=True),
                      "learning_rate": optuna.distributions.FloatDistribution(0.005, 0.05,
                                                                              log=True)})
    result = run_sweep(spec, tmp_path, trials=2, progress=False)  # as if killed mid-trial
    trials = _trials(tmp_path)
    assert trials[lost.number].state == optuna.trial.TrialState.FAIL
    rerun = trials[-1]
    assert rerun.user_attrs["requeued_from"] == lost.number and rerun.params == lost.params
    assert rerun.state == optuna.trial.TrialState.COMPLETE
    assert result.counts == {"complete": 2, "pruned": 0, "fail": 1, "running": 0}


@pytest.mark.slow
def test_the_median_pruner_stops_a_trial_that_does_not_learn(
    toy_dataset: Path, tmp_path: Path
) -> None:
    data = _spec(toy_dataset, pruner="median", pruner_startup_trials=1, trials=2)
    data["search"]["learning_rate"] = [0.05, 1e-9]
    spec = parse_sweep(data)
    study = optuna.create_study(study_name="sweep", storage=f"sqlite:///{tmp_path / 'sweep.db'}")
    study.enqueue_trial({"model": "gru", "hidden": 4, "learning_rate": 0.05})
    study.enqueue_trial({"model": "gru", "hidden": 4, "learning_rate": 1e-9})
    result = run_sweep(spec, tmp_path, progress=False)
    assert result.counts["complete"] == 1 and result.counts["pruned"] == 1
    pruned = _trials(tmp_path)[1]
    assert pruned.params["learning_rate"] == 1e-9
    assert pruned.user_attrs["pruned_at_epoch"] >= 1
    assert result.best is not None and result.best["params"]["learning_rate"] == 0.05


@pytest.mark.slow
def test_two_local_workers_run_trials_side_by_side(toy_dataset: Path, tmp_path: Path) -> None:
    spec = parse_sweep(_spec(toy_dataset, trials=2))
    result = run_sweep(spec, tmp_path, backend=Backend(workers=2), progress=False)
    assert result.counts["complete"] == 2 and not result.errors


def test_shipped_sweep_files_parse() -> None:
    tiny = load_sweep(ROOT / "experiments" / "sweeps" / "toy_tiny.toml")
    assert tiny.dataset.scenario == "toy" and tiny.study_name == "toy_tiny"
    assert tiny.final_seeds == 3
    gru = load_sweep(ROOT / "experiments" / "sweeps" / "gru_fcm.toml")
    assert gru.search["hidden"] == Range(low=2, high=32, log=True, integer=True)
    assert gru.search["model"] == Choice(("gru", "lstm"))
    assert gru.fixed == {"epochs": 300, "loss": "rmse"} and gru.pruner == "median"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["search"].update(dropout=[0.1]), "'dropout' cannot be searched; allowed"),
        (lambda d: d["sweep"].update(pruner="asha"),
         "pruner = 'asha' is not allowed; use one of median, hyperband, none"),
        (lambda d: d["sweep"].update(sampler="cmaes"), "use one of tpe, random"),
        (lambda d: d["sweep"].update(trials=0), r"\[sweep\] trials must be an integer >= 1"),
        (lambda d: d["sweep"].update(metric="loss"), "use one of valid_accuracy, .*valid_rmse"),
        (lambda d: d["sweep"].update(tirals=3), r"unknown \[sweep\] key 'tirals'; allowed: "),
        (lambda d: d["search"].update(hidden={"low": 2.5, "high": 8}), "hidden is an integer"),
        (lambda d: d["search"].update(hidden={"low": 8, "high": 2}), "needs low <= high"),
        (lambda d: d["search"].update(learning_rate={"low": 0, "high": 1, "log": True}),
         "log range needs low > 0"),
        (lambda d: d["search"].update(model={"low": 1, "high": 2}), "give a list of choices"),
        (lambda d: d["search"].update(batch_size=[]), "has no choices"),
        (lambda d: d.update(train={"epochs": 5}), "'epochs' is both searched"),
        (lambda d: d.update(train={"colour": 5}), "unknown option 'colour'"),
        (lambda d: d.update(extra={}), "unknown section 'extra'"),
        (lambda d: d["dataset"].update(scenario="fcm"), "exactly one of path"),
        (lambda d: d.pop("dataset"), r"needs a \[dataset\] section"),
        (lambda d: d["sweep"].update(storage="sweep.db"), "is not a database URL"),
    ],
)
def test_malformed_sweeps_are_one_line_config_errors(change: object, message: str) -> None:
    data = _spec(Path("/nonexistent/data.h5"))
    data["search"]["epochs"] = {"low": 2, "high": 4}
    change(data)  # type: ignore[operator]
    with pytest.raises(ConfigError, match=message) as info:
        parse_sweep(data)
    assert "\n" not in str(info.value)


def test_bad_files_and_missing_data_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_sweep(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[sweep\ntrials = 3\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_sweep(bad)
    spec = parse_sweep(_spec(tmp_path / "nothing.h5"))
    with pytest.raises(DatasetError, match="nothing.h5 does not exist; fix \\[dataset\\] path"):
        run_sweep(spec, tmp_path / "out", progress=False)
    with pytest.raises(ConfigError, match="cannot open sweep storage"):
        run_sweep(parse_sweep({**_spec(tmp_path / "nothing.h5"),
                               "sweep": {"storage": "nosuchdb://x"}}), tmp_path / "o2",
                  progress=False)


@pytest.mark.slow
def test_a_changed_search_space_does_not_mix_into_an_existing_study(
    toy_dataset: Path, tmp_path: Path
) -> None:
    run_sweep(parse_sweep(_spec(toy_dataset, trials=1)), tmp_path, progress=False)
    data = _spec(toy_dataset, trials=1)
    data["search"]["hidden"] = {"low": 2, "high": 16}
    with pytest.raises(ConfigError, match="different search space"):
        run_sweep(parse_sweep(data), tmp_path, progress=False)
