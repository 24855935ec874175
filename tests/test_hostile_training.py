"""Hostile training inputs (issue 15, items 8-10): streamed data validated as it is read,
divergence named and drawable with strict JSON results, sweep spaces checked when loaded."""

from __future__ import annotations

import json
import math
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from neuroreduce.cli import app
from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.io import save_dataset
from neuroreduce.datasets.streaming import StreamingDataset
from neuroreduce.errors import ConfigError, DatasetError
from neuroreduce.evaluation.evaluate import read_results, write_results
from neuroreduce.reporting import figures
from neuroreduce.sweeps import load_sweep
from neuroreduce.training import TrainConfig, train

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def _strict(text: str) -> object:
    def refuse(name: str) -> None:
        raise ValueError(f"non-JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def _lines(text: str) -> list[str]:
    """The error lines of a command's output (a progress bar may come before them)."""
    return [line for line in text.splitlines() if line.startswith("error")]


# ---------------------------------------------------------------- item 8: streamed data
def _dataset(n_trials: int = 10, n_time: int = 12) -> Dataset:
    rng = np.random.default_rng(0)
    u = rng.normal(size=(n_trials, n_time, 1)).astype(np.float32)
    y = np.cumsum(u, axis=1).astype(np.float32)
    split = np.tile([0, 0, 0, 1, 2], n_trials // 5)
    return Dataset(u, y, 1.0, ("i",), ("o",), split=split, provenance={"simulator": "test"})


@pytest.fixture()
def stored(tmp_path: Path) -> Path:
    return save_dataset(_dataset(), tmp_path / "d.h5")


def _poke(path: Path, key: str, trial: int, value: float) -> None:
    with h5py.File(path, "r+") as f:
        f[key][trial, 3, 0] = value


_CONFIG = TrainConfig(model="gru", hidden=2, seeds=(0,), epochs=1, batch_size=4)


@pytest.mark.parametrize(("key", "value", "what"), [
    ("inputs", math.nan, "NaN or inf inputs"),
    ("inputs", math.inf, "NaN or inf inputs"),
    ("outputs", math.inf, "inf outputs"),
    ("outputs", math.nan, "NaN (missing) outputs"),  # the file declares no missing outputs
])
def test_streamed_bad_values_stop_training_naming_the_file_and_trial(
    stored: Path, key: str, value: float, what: str
) -> None:
    _poke(stored, key, 3, value)  # trial 3 is a validation trial
    with StreamingDataset(stored) as src, pytest.raises(DatasetError) as err:
        train(src, _CONFIG, None)
    msg = str(err.value)
    assert "\n" not in msg and str(stored) in msg and "trial 3 " in msg and what in msg


def test_a_bad_test_trial_is_found_by_the_first_pass(stored: Path) -> None:
    _poke(stored, "inputs", 4, math.nan)  # trial 4 is a test trial: training never reads it
    with StreamingDataset(stored) as src, pytest.raises(DatasetError, match="trial 4 has NaN"):
        train(src, _CONFIG, None)


def test_a_wrong_content_hash_stops_streamed_training_after_the_first_pass(
    stored: Path, tmp_path: Path
) -> None:
    _poke(stored, "outputs", 4, 1234.5)  # finite and plausible, but not what was hashed
    with StreamingDataset(stored) as src:
        assert not src.hash_verified
        with pytest.raises(DatasetError, match="do not match the stored content hash"):
            train(src, _CONFIG, None)
    with StreamingDataset(stored) as src, pytest.raises(DatasetError, match="content hash"):
        src.verify()
    r = invoke("train", str(stored), "--stream", "--hidden", "2", "--seeds", "1", "--epochs",
               "1", "-o", str(tmp_path / "run"))
    assert r.exit_code == 2
    assert len(_lines(r.output)) == 1 and "content hash" in _lines(r.output)[0]


def test_an_intact_file_verifies_and_streams_as_before(stored: Path) -> None:
    with StreamingDataset(stored) as src:
        train(src, _CONFIG, None)
        assert src.hash_verified
    with StreamingDataset(stored) as src:
        src.verify()
        assert src.hash_verified


# ---------------------------------------------------------------- item 9: divergence
def test_lr_1e30_names_the_diverged_members_writes_strict_json_and_the_report_draws(
    tmp_path: Path,
) -> None:
    data, run = tmp_path / "toy.h5", tmp_path / "run"
    assert invoke("simulate", "toy", "--stimuli", "6", "--dt-out", "2.0", "-o",
                  str(data)).exit_code == 0
    r = invoke("train", str(data), "--hidden", "2", "--seeds", "2", "--epochs", "2",
               "--batch-size", "4", "--lr", "1e30", "-o", str(run))
    assert r.exit_code == 2  # every member diverged: nothing was trained
    warned = [line for line in r.output.splitlines() if "diverged (" in line]
    assert len(warned) == 1 and warned[0].startswith("error: every member diverged")
    assert "0 (seed 0)" in warned[0] and "1 (seed 1)" in warned[0]
    provenance = _strict((run / "provenance.json").read_text())
    assert provenance["diverged_members"] == [0, 1]
    assert invoke("evaluate", str(run)).exit_code == 0
    _strict((run / "results.json").read_text())
    r = invoke("report", str(run))
    assert r.exit_code == 0, r.output
    page = (run / "report" / "index.html").read_text()
    assert "diverged" in page and (run / "report" / "figures" / "loss_curves.png").exists()


def test_some_members_diverged_is_one_warning_line_and_exit_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import warnings
    from types import SimpleNamespace

    import torch

    import neuroreduce.pipeline
    from neuroreduce.training.ensemble_loop import DivergenceWarning

    def fake_train(*args: object, **kwargs: object) -> SimpleNamespace:
        warnings.warn("members [1] (seeds [8]) diverged", DivergenceWarning, stacklevel=1)
        return SimpleNamespace(seeds=(7, 8, 9), diverged=(1,), best_epochs=(3, 0, 2),
                               layout=None, model=SimpleNamespace(member=lambda k: torch.nn.Linear(
                                   1, 1)))

    monkeypatch.setattr(neuroreduce.pipeline, "train_from_file", fake_train)
    r = invoke("train", str(tmp_path / "d.h5"), "--seeds", "3", "-o", str(tmp_path / "run"))
    assert r.exit_code == 0
    warned = [line for line in r.output.splitlines() if "diverged (" in line]
    assert len(warned) == 1 and warned[0].startswith("warning: members 1 (seed 8) diverged")


def test_nan_results_are_written_as_null_and_read_back_as_nan(tmp_path: Path) -> None:
    results = {"seeds": [0, 1], "output_names": ["o"], "splits": {"test": {
        "n_trials": 2,
        "rmse": {"mean": math.nan, "std": math.inf, "min": 1.0, "max": math.nan,
                 "per_seed": [1.0, np.float32("nan")]},
        "nrmse": {"mean": 0.5, "std": 0.0, "min": 0.5, "max": 0.5, "per_seed": [0.5, 0.5]},
        "output_range": {"o": 2.0}, "per_output": {}}}}
    write_results(tmp_path, results)
    text = (tmp_path / "results.json").read_text()
    data = _strict(text)
    assert data["splits"]["test"]["rmse"]["mean"] is None
    assert "4 NaN/inf values" in data["non_finite"]
    back = read_results(tmp_path / "results.json")["splits"]["test"]["rmse"]
    assert math.isnan(back["mean"]) and back["min"] == 1.0
    assert back["per_seed"][0] == 1.0 and math.isnan(back["per_seed"][1])


def test_loss_curves_of_only_inf_or_nan_losses_draw(tmp_path: Path) -> None:
    epochs = np.arange(1, 4)
    bad = np.array([[np.inf, np.inf, np.inf], [np.nan, -1.0, 0.0]])
    figures.plot_loss_curves(tmp_path / "a.png", epochs=epochs, train_loss=bad, valid_loss=bad,
                             best_epochs=[0, 1], diverged=[0, 1], seeds=[5, 6])
    figures.plot_loss_terms(tmp_path / "b.png", epochs=epochs, train_loss=bad, valid_loss=bad,
                            terms={"x": bad}, diverged=[1], seeds=[5, 6])
    assert (tmp_path / "a.png").stat().st_size > 0 and (tmp_path / "b.png").stat().st_size > 0


# ---------------------------------------------------------------- item 10: sweeps
def _sweep_file(tmp_path: Path, search: str, train_table: str = "", dataset: str = "") -> Path:
    path = tmp_path / "s.toml"
    path.write_text(
        (dataset or '[dataset]\nscenario = "toy"\nn_stimuli = 6\ndt_out_ms = 2.0\n')
        + f"[search]\n{search}\n" + (f"[train]\n{train_table}\n" if train_table else "")
        + '[sweep]\ntrials = 1\nseeds_per_trial = 1\npruner = "none"\n'
    )
    return path


@pytest.mark.parametrize(("search", "message"), [
    ("batch_size = [0]\nepochs = 1", "batch_size"),
    ("epochs = -4", "epochs"),
    ('model = ["gru", "nope"]\nepochs = 1', "'nope' is unknown"),
    ("hidden = { low = 0, high = 4 }\nepochs = 1", "hidden"),
    ('model = "stacked_rnn"\nepochs = 1\n[search.model_options]\nlayers = [1, 0]', "layers"),
    ("learning_rate = { low = 0.0, high = 0.1 }\nepochs = 1", "learning_rate"),
])
def test_an_invalid_search_space_is_refused_when_loaded_before_any_simulation(
    tmp_path: Path, search: str, message: str
) -> None:
    path = _sweep_file(tmp_path, search)
    with pytest.raises(ConfigError, match=message):
        load_sweep(path)
    out = tmp_path / "out"
    r = invoke("sweep", str(path), "-o", str(out))
    assert r.exit_code == 2 and len(_lines(r.output)) == 1 and message in _lines(r.output)[0]
    assert not (out / "dataset.h5").exists()


def test_a_valid_search_space_loads() -> None:
    from neuroreduce.sweeps.spec import parse_sweep, space_points

    spec = parse_sweep({"dataset": {"path": "x.h5"}, "search": {
        "model": ["gru", "stacked_rnn"], "hidden": {"low": 1, "high": 64, "log": True},
        "batch_size": [1, 64], "epochs": 3}})
    assert len(space_points(spec)) == 8


def test_a_sweep_whose_every_trial_fails_exits_non_zero(tmp_path: Path) -> None:
    ds = _dataset()
    no_train = Dataset(ds.inputs, ds.outputs, 1.0, ("i",), ("o",),
                       split=np.full(ds.n_trials, 2), provenance={"simulator": "test"})
    data = save_dataset(no_train, tmp_path / "d.h5")  # no training trials: every trial fails
    path = _sweep_file(tmp_path, "hidden = [2]\nepochs = 1",
                       dataset=f'[dataset]\npath = "{data}"\n')
    r = invoke("sweep", str(path), "-o", str(tmp_path / "out"))
    assert r.exit_code == 2
    assert "no trial of the sweep succeeded" in _lines(r.output)[-1]
