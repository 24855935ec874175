"""One tiny end-to-end run of the CLI on the closed-form toy simulator, plus its error paths."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from neuroreduce.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.mark.slow
def test_simulate_train_evaluate_report_on_toy(tmp_path) -> None:
    data = tmp_path / "toy.h5"
    run = tmp_path / "run"
    r = invoke("simulate", "toy", "--stimuli", "12", "--dt-out", "1.0", "-o", str(data))
    assert r.exit_code == 0, r.output
    assert data.exists() and "12 trials x 101 samples" in r.output

    r = invoke("train", str(data), "--model", "gru", "--hidden", "4", "--seeds", "2",
               "--epochs", "30", "--batch-size", "6", "-o", str(run))
    assert r.exit_code == 0, r.output
    for name in ("config.json", "model.safetensors", "history.csv", "normalization.json"):
        assert (run / name).exists(), name

    r = invoke("evaluate", str(run))
    assert r.exit_code == 0, r.output
    results = json.loads((run / "results.json").read_text())
    assert set(results["splits"]) == {"train", "valid", "test"}
    test_rmse = results["splits"]["test"]["rmse"]
    assert len(test_rmse["per_seed"]) == 2
    # A trained GRU-4 must be far better than a constant predictor on unseen stimuli.
    assert results["splits"]["test"]["nrmse"]["mean"] < 0.2
    rows = list(csv.DictReader((run / "results.csv").open()))
    assert {r["output"] for r in rows} == {"ALL", "out0", "out1", "out2", "out3"}

    r = invoke("report", str(run))
    assert r.exit_code == 0, r.output
    page = run / "report" / "index.html"
    html = page.read_text()
    for fig in ("test_sequences.png", "loss_curves.png", "errors_per_output.png"):
        assert (run / "report" / "figures" / fig).stat().st_size > 10_000
        assert f"figures/{fig}" in html
    assert "GRU-4" in html and "RMSE" in html


def test_unknown_scenario_is_one_line_error(tmp_path) -> None:
    r = invoke("simulate", "walking", "-o", str(tmp_path / "x.h5"))
    assert r.exit_code == 2
    assert "unknown scenario 'walking'" in r.output and "fcm" in r.output
    assert "Traceback" not in r.output
    assert not (tmp_path / "x.h5").exists()


def test_missing_dataset_is_one_line_error(tmp_path) -> None:
    r = invoke("train", str(tmp_path / "nope.h5"), "-o", str(tmp_path / "run"))
    assert r.exit_code == 2
    assert "not found" in r.output and "Traceback" not in r.output


def test_missing_run_folder_is_one_line_error(tmp_path) -> None:
    r = invoke("evaluate", str(tmp_path / "no_run"))
    assert r.exit_code == 2
    assert "Traceback" not in r.output


def test_import_paper_dat_folder(tmp_path) -> None:
    folder = tmp_path / "dat"
    folder.mkdir()
    t_s = np.arange(11) * 0.0005
    for k in range(8):
        cols = [np.arange(11), t_s] + [np.sin(t_s * 1000 * (k + j + 1)) for j in range(8)]
        np.savetxt(folder / f"{k}.dat", np.column_stack(cols))
    out_file = tmp_path / "paper.h5"
    r = invoke("import", "dat", str(folder), "-o", str(out_file))
    assert r.exit_code == 0, r.output
    assert "8 trials x 11 samples (dt 0.5 ms)" in r.output
    from neuroreduce.datasets.io import load_dataset

    ds = load_dataset(out_file)
    assert ds.input_names == ("PLML", "PLMR", "AVBL", "AVBR")
    assert ds.output_names == ("DB1", "LUAL", "PVR", "VB1")
    assert sorted(np.bincount(ds.split).tolist()) == [2, 2, 4]


def test_help_lists_every_command() -> None:
    r = invoke("--help")
    assert r.exit_code == 0
    for cmd in ("simulate", "train", "evaluate", "report", "demo", "scenarios", "import"):
        assert cmd in r.output


def test_dataset_not_matching_checkpoint_is_one_line_error(tmp_path) -> None:
    toy = tmp_path / "toy.h5"
    r = invoke("simulate", "toy", "--stimuli", "6", "--dt-out", "2.0", "-o", str(toy))
    assert r.exit_code == 0
    run = tmp_path / "run"
    r = invoke("train", str(toy), "--seeds", "1", "--epochs", "2", "-o", str(run))
    assert r.exit_code == 0, r.output
    other = tmp_path / "other.npz"
    rng = np.random.default_rng(0)
    np.savez(other, inputs=rng.normal(size=(4, 51, 3)), outputs=rng.normal(size=(4, 51, 4)),
             dt_ms=2.0, input_names=np.array(["a", "b", "c"]),
             output_names=np.array(["out0", "out1", "out2", "out3"]))
    other_h5 = tmp_path / "other.h5"
    assert invoke("import", "npz", str(other), "-o", str(other_h5)).exit_code == 0
    r = invoke("evaluate", str(run), "--dataset", str(other_h5))
    assert r.exit_code == 2
    assert "input" in r.output and "Traceback" not in r.output
    assert not (run / "results.json").exists()


def test_training_into_a_folder_of_another_run_is_refused(tmp_path) -> None:
    toy = tmp_path / "toy.h5"
    invoke("simulate", "toy", "--stimuli", "6", "--dt-out", "2.0", "-o", str(toy))
    run = tmp_path / "run"
    assert invoke("train", str(toy), "--seeds", "1", "--epochs", "1", "-o", str(run)).exit_code == 0
    r = invoke("train", str(toy), "--model", "lstm", "--seeds", "1", "--epochs", "1",
               "-o", str(run))
    assert r.exit_code == 2 and "Traceback" not in r.output
