"""Declared experiments: TOML checking, the resumable runner and the ``experiment`` CLI.

Everything runs on the closed-form toy simulator (no NEURON): 12 stimuli of 101 samples,
2 models x 2 seeds x 3 epochs.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from neuroreduce.cli import app
from neuroreduce.errors import CheckpointError, ConfigError
from neuroreduce.experiments import cells as cellmod
from neuroreduce.experiments.report import wall_summary
from neuroreduce.experiments.runner import (
    CellsFailedError,
    default_output_dir,
    results_table,
    run_experiment,
)
from neuroreduce.experiments.spec import load_experiment

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "experiments" / "examples" / "toy.toml"
cli = CliRunner()

HEAD = """
[experiment]
name = "{name}"
seeds = {seeds}

[datasets.toy]
scenario = "toy"
stimuli = 12
dt_out_ms = 1.0

[training]
epochs = {epochs}
batch_size = 4
checkpoint_every = {checkpoint_every}
"""
GRID = """
[[grid]]
datasets = ["toy"]
models = {models}
hidden = [4]
learning_rate = 0.01
"""


def toy_file(folder: Path, *, name: str = "toy", seeds: int = 2, epochs: int = 3,
             models: str = '["gru", "lstm"]', checkpoint_every: int = 1, extra: str = "") -> Path:
    """Write a small toy experiment file and return its path."""
    path = folder / f"{name}.toml"
    path.write_text(HEAD.format(name=name, seeds=seeds, epochs=epochs,
                                checkpoint_every=checkpoint_every)
                    + GRID.format(models=models) + extra)
    return path


def invoke(*args: str):
    return cli.invoke(app, list(args), catch_exceptions=False)


def rows_of(out: Path) -> list[dict]:
    return json.loads((out / "results.json").read_text())["rows"]


# ------------------------------------------------------------------------------- spec checks
def test_shipped_toy_file_resolves_to_two_cells() -> None:
    spec = load_experiment(TOY)
    assert [c.key for c in spec.cells] == ["toy/gru-4", "toy/lstm-4"]
    assert spec.seeds == (0, 1)
    cell = spec.cell("toy/lstm-4")
    assert cell.config.epochs == 3 and cell.config.learning_rate == 0.01
    assert cell.config.seeds == (0, 1) and cell.config.threads == 1
    assert cell.folder == "toy__lstm-4"
    assert default_output_dir(TOY, spec) == Path("runs") / "examples" / "toy"


def test_input_variants_make_keyed_cells(tmp_path) -> None:
    extra = '[[grid]]\ndatasets = "toy"\nmodels = "gru"\nhidden = [2, 8]\n' \
            'inputs = { all = "all", no01 = ["in2", "in3"] }\n'
    spec = load_experiment(toy_file(tmp_path, models='["gru"]', extra=extra))
    keys = [c.key for c in spec.cells]
    assert keys == ["toy/gru-4", "toy/gru-2", "toy/gru-8", "toy/gru-2/no01", "toy/gru-8/no01"]
    assert spec.cell("toy/gru-8/no01").inputs == ("in2", "in3")
    assert spec.cell("toy/gru-8/no01").folder == "toy__gru-8__no01"
    assert spec.cell("toy/gru-4").config.learning_rate == 0.01  # block 1 override
    assert spec.cell("toy/gru-2").config.learning_rate is None  # block 2: paper default


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (("epochs = 3", "epochz = 3"), ["epochz", "[training]", "allowed", "batch_size"]),
        (('models = ["gru", "lstm"]', 'models = ["gru", "transformer"]'),
         ["models", "transformer", "allowed", "lstm"]),
        (("seeds = 2", "seeds = 0"), ["experiment.seeds", "0"]),
        (("seeds = 2", "seeds = [1, 1]"), ["experiment.seeds", "distinct"]),
        (('datasets = ["toy"]', 'datasets = ["nope"]'), ["datasets", "'nope'", "declared: toy"]),
        (("[training]", "[trainig]"), ["trainig", "allowed", "training"]),
        (('hidden = [4]', 'hidden = [4]\ninputs = { a = ["PLML"] }'), ["inputs.a", "PLML", "in0"]),
        (("scenario = \"toy\"", "scenario = \"toy\"\nstimulii = 3"),
         ["stimulii", "datasets.toy", "allowed"]),
        (("seeds = 2", 'seeds = 2\nstudy = "barbulescu"'),
         ["experiment.study", "'barbulescu'", "barbulescu2023"]),
        (("seeds = 2", 'seeds = 2\nstudy = "barbulescu2023"\npaper = "table9"'),
         ["experiment.paper", "'table9'", "allowed", "table1"]),
        (("seeds = 2", 'seeds = 2\npaper = "table9"'),
         ["experiment.paper", "'table9'", "no study publishes", "table5 (barbulescu2023)"]),
    ],
)
def test_malformed_file_is_one_line_error_naming_the_key(tmp_path, edit, words) -> None:
    path = toy_file(tmp_path)
    text = path.read_text()
    assert edit[0] in text
    path.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    for w in words:
        assert w in message, (w, message)
    r = invoke("experiment", "run", str(path), "-o", str(tmp_path / "out"))
    assert r.exit_code == 2
    assert "Traceback" not in r.output and words[0] in r.output
    assert not (tmp_path / "out").exists()  # rejected before anything ran


# ------------------------------------------------------------------------------------ runner
@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exp") / "toy"
    assert run_experiment(TOY, out, progress=False) == out
    return out


def test_toy_experiment_runs_end_to_end(toy_run) -> None:
    data = json.loads((toy_run / "results.json").read_text())
    rows, columns = data["rows"], data["columns"]
    assert len(rows) == 2 and all(set(r) == set(columns) for r in rows)
    assert [r["key"] for r in rows] == ["toy/gru-4", "toy/lstm-4"]
    metric_cols = [c for c in columns if c.startswith(("train_", "valid_", "test_"))]
    assert len(metric_cols) == 3 * 2 * 2  # (train, valid, test) x (rmse, nrmse) x (mean, std)
    for r in rows:
        assert r["status"] == "ok" and data["failed"] == []
        assert all(isinstance(r[c], float) and math.isfinite(r[c]) for c in metric_cols)
        assert r["test_rmse_mean"] > 0 and r["n_parameters"] > 0
        assert r["keras_parameters"] is None  # no study: the legacy column stays empty
    csv_lines = (toy_run / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 3 and csv_lines[0].split(",") == columns
    for folder in ("toy__gru-4", "toy__lstm-4"):
        cell = toy_run / "cells" / folder
        for name in ("cell.json", "results.json", "extra_results.json", "model.safetensors"):
            assert (cell / name).is_file(), (folder, name)
        record = json.loads((cell / "cell.json").read_text())
        assert record["seeds"] == [0, 1] and len(record["best_epochs"]) == 2
        assert "keras_parameters" not in record  # a study's field; the toy names no study
    resolved = json.loads((toy_run / "resolved.json").read_text())
    assert resolved["seeds"] == [0, 1] and len(resolved["cells"]) == 2
    assert resolved["study"] is None and resolved["paper"] is None
    assert len(resolved["datasets"]["toy"]["content_hash"]) == 64
    assert resolved["versions"]["torch"]
    assert (toy_run / "experiment.toml").read_text() == TOY.read_text()
    run = json.loads((toy_run / "run.json").read_text())
    assert run["cells_run"] == 2 and run["wall_s"] > 0 and "finished" in run
    assert set(run["phases_s"]) == {"datasets", "cells", "analyses", "report"}
    assert (toy_run / "report" / "index.html").is_file()


def test_rerun_skips_finished_cells(toy_run) -> None:
    stamps = {p: p.stat().st_mtime_ns for p in (toy_run / "cells").glob("*/*") if p.is_file()}
    before = rows_of(toy_run)
    run_experiment(TOY, toy_run, progress=False)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing retrained or rewritten
    run = json.loads((toy_run / "run.json").read_text())
    assert run["resumed"] and run["cells_run"] == 0 and run["cells_skipped"] == 2
    assert len(run["previous_runs"]) == 1 and run["previous_runs"][0]["cells_run"] == 2
    assert run["total_wall_s"] > run["previous_runs"][0]["wall_s"] > 0
    assert rows_of(toy_run) == before
    page = (toy_run / "report" / "index.html").read_text()
    assert "over 2 invocations" in page and "times sum to" in page  # written just before run.json


def test_wall_summary_adds_earlier_invocations() -> None:
    run = {"wall_s": 30.0, "total_wall_s": 150.0, "backend": {"workers": 2},
           "previous_runs": [{"wall_s": 100.0}, {"wall_s": 20.0}], "cells_wall_s_sum": 260.0}
    assert wall_summary(run) == ("150 s (2.5 min) over 3 invocations, latest with 2 workers; "
                                 "the cells' training + evaluation times sum to 260 s")
    assert wall_summary({}) == "not recorded"


def test_changed_training_settings_are_refused(toy_run, tmp_path) -> None:
    changed = tmp_path / "toy.toml"
    changed.write_text(TOY.read_text().replace("epochs = 3", "epochs = 4"))
    with pytest.raises(CheckpointError, match=r"toy/gru-4 \(config\).*new -o folder"):
        run_experiment(changed, toy_run, progress=False)
    with pytest.raises(CheckpointError, match="already holds files"):
        run_experiment(TOY, toy_run, resume=False, progress=False)
    other = tmp_path / "other.toml"
    other.write_text(TOY.read_text().replace('name = "toy"', 'name = "other"'))
    with pytest.raises(CheckpointError, match="holds experiment 'toy'"):
        run_experiment(other, toy_run, progress=False)


def test_failed_cell_is_reported_and_retried_on_rerun(tmp_path, monkeypatch) -> None:
    path = toy_file(tmp_path, seeds=1, epochs=2)
    real = cellmod.run_cell

    def flaky(payload):
        if payload["cell"]["model"] == "lstm":
            raise RuntimeError("injected failure")
        return real(payload)

    monkeypatch.setattr(cellmod, "run_cell", flaky)
    out = tmp_path / "out"
    with pytest.raises(CellsFailedError) as info:
        run_experiment(path, out, progress=False)
    assert list(info.value.failures) == ["toy/lstm-4"]
    assert "injected failure" in str(info.value) and "\n" not in str(info.value)
    data = json.loads((out / "results.json").read_text())
    assert [r["status"] for r in data["rows"]] == ["ok", "missing"]
    assert data["failed"][0]["key"] == "toy/lstm-4"
    assert (out / "cells" / "toy__gru-4" / "cell.json").is_file()

    monkeypatch.setattr(cellmod, "run_cell", real)
    run_experiment(path, out, progress=False)
    run = json.loads((out / "run.json").read_text())
    assert run["cells_run"] == 1 and run["failed"] == {}
    assert [r["status"] for r in rows_of(out)] == ["ok", "ok"]


def test_extra_dataset_added_later_is_evaluated_without_retraining(tmp_path) -> None:
    path = toy_file(tmp_path, models='["gru"]', seeds=1, epochs=2)
    out = tmp_path / "out"
    run_experiment(path, out, progress=False)
    cell = out / "cells" / "toy__gru-4"
    weights = load_file(cell / "model.safetensors")
    history = (cell / "history.csv").read_text()
    text = path.read_text().replace(
        "[training]", '[datasets.ood]\nscenario = "toy"\nstimuli = 4\ndt_out_ms = 1.0\n'
        'seed = 7\nfamilies = ["sine"]\nrole = "test"\n\n[training]')
    path.write_text(text + '\n[evaluate]\nextra = ["ood"]\n')
    run_experiment(path, out, progress=False)
    again = load_file(cell / "model.safetensors")  # same weights, same history: not retrained
    assert again.keys() == weights.keys()
    assert all(torch.equal(again[k], weights[k]) for k in weights)
    assert (cell / "history.csv").read_text() == history
    row = rows_of(out)[0]
    assert math.isfinite(row["ood_rmse_mean"]) and row["ood_rmse_mean"] > 0
    extra = json.loads((out / "cells" / "toy__gru-4" / "extra_results.json").read_text())
    assert extra["ood"]["splits"]["all"]["n_trials"] == 4


# ------------------------------------------------------------------------------------- CLI
@pytest.mark.slow
def test_cli_run_show_and_report_on_toy(tmp_path) -> None:
    out = tmp_path / "out"
    r = invoke("experiment", "show", str(TOY), "-o", str(out))
    assert r.exit_code == 0, r.output
    assert "2 cells, 4 trained models" in r.output and "pending" in r.output
    r = invoke("experiment", "run", str(TOY), "-o", str(out))
    assert r.exit_code == 0, r.output
    assert "toy/gru-4" in r.output and "toy/lstm-4" in r.output
    assert len(rows_of(out)) == 2
    page = out / "report" / "index.html"
    page.unlink()
    r = invoke("experiment", "report", str(out))
    assert r.exit_code == 0, r.output
    assert page.is_file() and str(page) in r.output.replace("\n", "")
    r = invoke("experiment", "report", str(tmp_path))
    assert r.exit_code == 2 and "no experiment run" in r.output


@pytest.mark.slow
def test_suite_runs_members_into_subfolders_sharing_data(tmp_path) -> None:
    for name in ("one", "two"):
        toy_file(tmp_path, name=name, seeds=1, epochs=2, models='["gru"]')
        p = tmp_path / f"{name}.toml"
        p.write_text(p.read_text().replace("seeds = 1", 'seeds = 1\ndata_dir = "../data"'))
    suite = tmp_path / "all.toml"
    suite.write_text('[experiment]\nname = "both"\ninclude = ["one.toml", "two.toml"]\n')
    spec = load_experiment(suite)
    assert spec.is_suite and [m.name for m in spec.include] == ["one", "two"]
    assert default_output_dir(suite, spec) == Path("runs") / "both"
    out = tmp_path / "runs"
    run_experiment(suite, out, progress=False)
    for name in ("one", "two"):
        assert [r["status"] for r in rows_of(out / name)] == ["ok"]
    assert len(list((out / "data").glob("*.h5"))) == 1  # one simulation serves both
    summary = json.loads((out / "suite.json").read_text())
    assert [m["name"] for m in summary["experiments"]] == ["one", "two"]


@pytest.mark.slow
def test_resume_after_kill_equals_uninterrupted_run(tmp_path) -> None:
    # LSTM first (fast), then GRU (no fused CPU kernel: seconds), so the kill lands mid-GRU.
    path = toy_file(tmp_path, epochs=20, checkpoint_every=2, models='["lstm", "gru"]')
    reference = tmp_path / "reference"
    run_experiment(path, reference, progress=False)

    out = tmp_path / "killed"
    first = out / "cells" / "toy__lstm-4" / "cell.json"
    second = out / "cells" / "toy__gru-4" / "cell.json"
    cmd = [sys.executable, "-m", "neuroreduce.cli", "experiment", "run", str(path), "-o", str(out)]
    log = (tmp_path / "killed.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not first.is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert proc.poll() is None, (tmp_path / "killed.log").read_text()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        log.close()
    assert first.is_file(), "the first cell never finished"
    assert not second.is_file(), "killed too late: the second cell had already finished"
    stamp = first.stat().st_mtime_ns, (first.parent / "model.safetensors").stat().st_mtime_ns

    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (first.stat().st_mtime_ns,
            (first.parent / "model.safetensors").stat().st_mtime_ns) == stamp  # not retrained
    run = json.loads((out / "run.json").read_text())
    assert run["resumed"] and run["cells_run"] == 1 and run["cells_skipped"] == 1
    killed_run = run["previous_runs"][0]  # its wall time survived the kill
    assert len(run["previous_runs"]) == 1 and killed_run["finished"] is None
    assert killed_run["wall_s"] > 0
    assert run["total_wall_s"] >= run["wall_s"] + killed_run["wall_s"]
    spec = load_experiment(path)
    _, ref_rows = results_table(spec, reference)
    _, rows = results_table(spec, out)
    for a, b in zip(ref_rows, rows, strict=True):
        assert a["key"] == b["key"] and b["status"] == "ok"
        for col in ("train_rmse_mean", "valid_rmse_mean", "test_rmse_mean", "test_rmse_std",
                    "best_epoch_mean"):
            assert b[col] == pytest.approx(a[col], rel=1e-5), (a["key"], col)


def test_test_only_datasets_serve_the_training_sets_they_name(tmp_path) -> None:
    text = TOY.read_text().replace(
        "[training]",
        '[datasets.toy2]\nscenario = "toy"\nstimuli = 12\ndt_out_ms = 1.0\nseed = 5\n\n'
        '[datasets.ood_a]\nscenario = "toy"\nstimuli = 4\ndt_out_ms = 1.0\nseed = 7\n'
        'role = "test"\ntest_for = ["toy"]\n\n'
        '[datasets.ood_all]\nscenario = "toy"\nstimuli = 4\ndt_out_ms = 1.0\nseed = 8\n'
        'role = "test"\n\n[evaluate]\nextra = ["ood_a", "ood_all"]\n\n[training]',
    ).replace('datasets = ["toy"]', 'datasets = ["toy", "toy2"]')
    path = tmp_path / "toy.toml"
    path.write_text(text)
    spec = load_experiment(path)
    assert spec.extra_for("toy") == ("ood_a", "ood_all")
    assert spec.extra_for("toy2") == ("ood_all",)
