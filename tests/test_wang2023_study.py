"""The Wang et al. study: study file, tiny end-to-end run through the CLI, conclusions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from neuroreduce.cli import app
from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.fields import Field, FieldSpec
from neuroreduce.datasets.io import save_dataset
from neuroreduce.errors import ConfigError
from neuroreduce.studies.base import StudyContext
from neuroreduce.studies.registry import get_study
from neuroreduce.studies.wang2023 import conclusions as C
from neuroreduce.studies.wang2023.run import load_spec

NEURONS = ("AIBR", "AVAL", "AVAR", "AVBL", "RID", "RMEL")


def recordings(n_worms: int, frames: int, *, seed: int, prefix: str = "w") -> Dataset:
    """Layout-1 recordings with a planted rule: reversal exactly when AVA is up."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n_worms, frames, len(NEURONS))).astype(np.float32)
    labels = np.empty((n_worms, frames, 1), np.int16)
    for i in range(n_worms):
        state = (np.sin(np.arange(frames) / rng.uniform(3, 6) + rng.uniform(0, 6)) > 0.3)
        x[i, :, 1] += 3 * state  # AVAL
        x[i, :, 2] += 3 * state  # AVAR
        labels[i, :, 0] = state
    worms = tuple(f"{prefix}{i}" for i in range(n_worms))
    params = tuple(json.dumps({"worm": w, "n_frames": frames, "frame_s": 0.6,
                               "recorded": list(NEURONS)}) for w in worms)
    fields = (
        Field(FieldSpec("behaviour", "label", "categorical", ("state",),
                        classes=("forward", "reversal"), ignore_label=-1), labels),
        Field(FieldSpec("worm", "group", "categorical", classes=worms),
              np.arange(n_worms, dtype=np.int32)),
    )
    return Dataset(inputs=x, outputs=np.zeros((n_worms, frames, 0), np.float32), dt_ms=600.0,
                   input_names=NEURONS, output_names=(), input_units="z", output_units="",
                   families=worms, stimulus_params=params, provenance={"test": seed},
                   fields=fields)


STUDY_FILE = """
[experiment]
name = "tiny"
study = "wang2023"
title = "tiny study"

[data]
dataset = "rec.h5"
other_dataset = "other.h5"
window = 4

[protocol]
k = 2
folds = 3
run_folds = 1

[[models]]
name = "SVM"
family = "svm"
hidden = 4

[[models]]
name = "GNN"
family = "gnn_inferred"
hidden = 8
epochs = 15
batch_size = 32
learning_rate = 0.01
options = { window = 4 }

[variants]
without = ["AVAL", "AVAR"]
few = ["AVAL", "AIBR"]
models = ["SVM"]
edges = true

[trajectory]
counts = [1, 2]
window = 6
stride = 4
max_combinations = 1

[[trajectory.models]]
name = "MLP"
model = "mlp_agg"
hidden = 8
epochs = 2
train_steps = 2
eval_steps = 4
anneal_epochs = 1

[[trajectory.models]]
name = "GNN"
model = "gnn_inferred"
hidden = 8
epochs = 2
train_steps = 2
eval_steps = 4
anneal_epochs = 1
"""


def test_study_is_registered_with_table1():
    study = get_study("wang2023")
    rows = {r.model: r for r in study.tables["table1"]}
    assert rows["GNN"].unseen == 97.7 and rows["SVM"].other == 79.0
    assert study.conclusions(StudyContext(cells=(), analyses={}, resolved={})) == []


def test_tiny_study_end_to_end(tmp_path):
    save_dataset(recordings(3, 50, seed=0), tmp_path / "rec.h5")
    save_dataset(recordings(2, 50, seed=1, prefix="o"), tmp_path / "other.h5")
    (tmp_path / "tiny.toml").write_text(STUDY_FILE)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["wholebrain", "run", str(tmp_path / "tiny.toml"), "-o",
                                   str(out)])
    assert res.exit_code == 0, res.output
    results = json.loads((out / "results.json").read_text())
    runs = results["runs"]
    assert set(runs) == {"all", "without", "few"}
    assert len(runs["all"]["rows"]) == 3 * 1 * 2  # 3 combinations x 1 fold x 2 models
    svm = runs["all"]["summary"]["SVM"]
    assert svm["unseen"]["mean"] > 0.9 and svm["other"]["mean"] > 0.9
    # control: the planted rule lives in AVA, so without AVA the same model is near chance
    assert runs["without"]["summary"]["SVM"]["unseen"]["mean"] < 0.8
    assert runs["few"]["neurons"] == ["AIBR", "AVAL"]
    assert np.sum(svm["confusion_unseen"]) == sum(
        np.sum(r["confusion_unseen"]) for r in runs["all"]["rows"] if r["model"] == "SVM")
    assert "GNN" in runs["all"]["edges"]["models"]
    paragraphs = json.loads((out / "conclusions.json").read_text())
    kinds = {p["kind"]: p for p in paragraphs}
    assert {"table1", "generalisation", "svm", "few_neurons", "without_ava", "speed"} <= \
        set(kinds)
    assert kinds["few_neurons"]["holds"] in (True, False)
    report = (out / "report.md").read_text()
    assert "| SVM |" in report and "98.8 ± 0.4" in report  # next to the paper's numbers
    traj = results["trajectory"]["summary"]
    assert set(traj) == {"MLP k=1", "MLP k=2", "GNN k=1", "GNN k=2"}
    assert len(traj["GNN k=1"]["unseen"]) == 4 and len(traj["GNN k=1"]["other"]) == 4
    assert "trajectory" in kinds and "Fig. 4C" in report


def _results(gnn: float, mlp: float, svm: float, svm_test: float) -> dict:
    def entry(test, unseen):
        return {"test": {"mean": test, "std": 0.01, "n": 5},
                "unseen": {"mean": unseen, "std": 0.02, "n": 5},
                "other": {"mean": None, "std": None, "n": 0}}

    summary = {"SVM": entry(svm_test, svm), "MLP": entry(0.99, mlp), "GNN": entry(0.99, gnn)}
    return {"paper_rows": {}, "runs": {"all": {"summary": summary, "rows": []}}}


def test_conclusions_hold_and_fail_on_planted_numbers():
    good = {p["kind"]: p for p in C.table1(_results(0.97, 0.93, 0.82, 0.985))}
    assert good["generalisation"]["holds"] is True and good["svm"]["holds"] is True
    bad = {p["kind"]: p for p in C.table1(_results(0.85, 0.93, 0.95, 0.90))}
    assert bad["generalisation"]["holds"] is False and bad["svm"]["holds"] is False
    assert "does NOT hold" in bad["generalisation"]["text"]


def test_trajectory_conclusions_on_planted_numbers():
    def res(gnn: float, mlp: float) -> dict:
        summary = {"GNN k=1": {"unseen": [gnn] * 4, "other": None, "cells": 1},
                   "GNN k=4": {"unseen": [gnn / 2] * 4, "other": None, "cells": 1},
                   "MLP k=1": {"unseen": [mlp] * 4, "other": None, "cells": 1},
                   "MLP k=4": {"unseen": [mlp * 2] * 4, "other": None, "cells": 1}}
        return {"trajectory": {"summary": summary}}

    good = {p["kind"]: p for p in C.trajectories(res(0.01, 0.02))}
    assert good["trajectory"]["holds"] is True
    assert good["trajectory_worms"]["holds"] is False  # MLP got worse with more worms
    bad = {p["kind"]: p for p in C.trajectories(res(0.05, 0.02))}
    assert bad["trajectory"]["holds"] is False
    assert C.table1(res(0.01, 0.02) | {"runs": {}}) == []  # a trajectory-only run


def test_study_file_errors_are_one_line(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text(STUDY_FILE.replace("[variants]", "[variants]\nbogus = 1"))
    with pytest.raises(ConfigError, match="unknown key 'bogus'"):
        load_spec(f)
    f.write_text(STUDY_FILE.replace('dataset = "rec.h5"', 'dataset = "rec.h5"\n'
                                    'importer = "flavell2023"'))
    with pytest.raises(ConfigError, match="exactly one of"):
        load_spec(f)
    f.write_text(STUDY_FILE.replace('models = ["SVM"]', 'models = ["LSTM"]'))
    with pytest.raises(ConfigError, match="not a declared model"):
        load_spec(f)
    f.write_text(STUDY_FILE.replace("k = 2", "k = 0"))
    with pytest.raises(ConfigError, match="k must be an integer >= 1"):
        load_spec(f)
    f.write_text(STUDY_FILE.replace("window = 6", "window = 3"))
    with pytest.raises(ConfigError, match="window must be an integer >= 5"):
        load_spec(f)
    start = STUDY_FILE.index("[[models]]")
    only = STUDY_FILE[:start] + STUDY_FILE[STUDY_FILE.index("[trajectory]"):]
    f.write_text(only)
    assert load_spec(f).models == () and load_spec(f).trajectory["counts"] == (1, 2)
    f.write_text(only[: only.index("[trajectory]")])
    with pytest.raises(ConfigError, match="at least one \\[\\[models\\]\\]"):
        load_spec(f)
    with pytest.raises(ConfigError, match="cannot read"):
        load_spec(tmp_path / "missing.toml")


@pytest.mark.slow
def test_tiny_simulated_study_file(tmp_path):
    """experiments/wang2023/tiny_simulated.toml end to end (NEURON; ~1-2 min)."""
    from pathlib import Path

    from neuroreduce.studies.wang2023.run import run_study

    file = Path(__file__).parents[1] / "experiments" / "wang2023" / "tiny_simulated.toml"
    results = run_study(load_spec(file), tmp_path)
    summary = results["runs"]["all"]["summary"]
    assert summary["SVM"]["unseen"]["n"] == 3  # 3-choose-2 combinations x 1 fold
    edges = results["runs"]["all"]["edges"]
    assert edges["reference"].startswith("true wiring")
    assert 0.0 <= edges["models"]["GNN"]["auroc_mean"] <= 1.0
    assert (tmp_path / "report.md").is_file()
    assert list((tmp_path / "data").glob("wholebrain_sim-*.h5"))  # cached by spec hash
