"""A grid cell whose members diverge still gives strict JSON and a drawable experiment report."""

from __future__ import annotations

import json
import math

from typer.testing import CliRunner

from neuroreduce.cli import app

TOML = """
[experiment]
name = "div"
seeds = 2
metrics = ["rmse", "nrmse"]

[datasets.toy]
scenario = "toy"
stimuli = 8
dt_out_ms = 2.0
seed = 0

[training]
epochs = 2
batch_size = 4

[[grid]]
datasets = ["toy"]
models = ["gru"]
hidden = [3]
learning_rate = {lr}
"""


def _strict(text: str) -> object:
    def refuse(name: str) -> float:
        raise ValueError(f"non-strict JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_diverged_cells_write_strict_json_and_report(tmp_path) -> None:
    from neuroreduce.experiments.expfiles import read_cells

    spec = tmp_path / "div.toml"
    spec.write_text(TOML.format(lr="1e30"))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["experiment", "run", str(spec), "-o", str(out)])
    assert "Traceback" not in result.output
    cell = out / "cells" / "toy__gru-3"
    _strict((cell / "results.json").read_text())  # strict JSON whatever the members did
    (cell_summary,) = read_cells(out)
    mean = cell_summary.splits["test"]["rmse"].mean
    assert math.isnan(mean) or mean >= 0  # null read back as NaN, not None
    report = CliRunner().invoke(app, ["experiment", "report", str(out)])
    assert "Traceback" not in report.output and (out / "report" / "index.html").is_file()


def test_a_healthy_cell_has_no_non_finite_key(tmp_path) -> None:
    spec = tmp_path / "ok.toml"
    spec.write_text(TOML.format(lr="0.01"))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["experiment", "run", str(spec), "-o", str(out)])
    assert result.exit_code == 0, result.output
    results = _strict((out / "cells" / "toy__gru-3" / "results.json").read_text())
    assert "non_finite" not in results


def test_cell_results_with_nan_round_trip_through_strict_json() -> None:
    from neuroreduce.evaluation.evaluate import nan_for_null
    from neuroreduce.experiments.cells import _strict as strict_results

    stat = {"mean": math.nan, "std": math.inf, "min": 0.1, "max": 0.2,
            "per_seed": [0.1, math.nan]}
    written = strict_results({"splits": {"test": {"rmse": stat}}})
    text = json.dumps(written, allow_nan=False)  # would raise on a NaN literal
    assert "non_finite" in written
    back = nan_for_null(_strict(text))["splits"]["test"]["rmse"]
    assert math.isnan(back["mean"]) and math.isnan(back["std"]) and back["min"] == 0.1
    assert back["per_seed"][0] == 0.1 and math.isnan(back["per_seed"][1])
