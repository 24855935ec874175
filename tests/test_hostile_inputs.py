"""Hostile inputs of issue 15, items 6 and 7, run through the CLI: each gives one line and exit
status 2 (no traceback), and the normal case still works.

6: numbers typer parses but numpy/torch cannot use, an NPZ split of strings, an over-long CSV
field, JSON files of the wrong type, a deeply nested TOML file.
7: sizes that would not fit in memory are refused before anything is allocated, with the
estimate, the limit and how to change it (``NEUROREDUCE_MEMORY_LIMIT_GB``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from neuroreduce.cli import app

runner = CliRunner()


def invoke(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), env=env)


def refused(result, *words: str) -> None:
    """Exit 2, one line, no traceback, naming ``words``."""
    text = result.output
    assert result.exit_code == 2, text
    assert "Traceback" not in text, text
    assert len(text.strip().splitlines()) == 1, text
    for w in words:
        assert w in text, (w, text)


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    data = folder / "toy.h5"
    assert invoke("simulate", "toy", "--stimuli", "6", "--dt-out", "2.0", "-o",
                  str(data)).exit_code == 0
    return data


@pytest.fixture(scope="module")
def trained(toy) -> Path:
    run = toy.parent / "run"
    r = invoke("train", str(toy), "--seeds", "1", "--epochs", "1", "-o", str(run))
    assert r.exit_code == 0, r.output
    assert invoke("evaluate", str(run)).exit_code == 0
    return run


@pytest.fixture(scope="module")
def experiment(toy) -> tuple[Path, Path]:
    folder = toy.parent
    text = Path(__file__).parents[1].joinpath("experiments/examples/toy.toml").read_text()
    spec = folder / "exp.toml"
    spec.write_text(text.replace("stimuli = 12", "stimuli = 6").replace("epochs = 3",
                                                                        "epochs = 1"))
    out = folder / "exp"
    r = invoke("experiment", "run", str(spec), "-o", str(out))
    assert r.exit_code == 0, r.output
    return spec, out


# ------------------------------------------------------------------ 6: numbers and files
@pytest.mark.parametrize("dt", ["nan", "inf", "-inf", "-1", "0"])
def test_simulate_dt_out_not_finite_positive(tmp_path, dt) -> None:
    refused(invoke("simulate", "toy", "--stimuli", "3", "--dt-out", dt, "-o",
                   str(tmp_path / "x.h5")), "dt")
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.parametrize("first", [str(10**20), "-1", str(2**32 - 1)])
def test_train_seeds_numpy_and_torch_cannot_take(toy, tmp_path, first) -> None:
    refused(invoke("train", str(toy), "--first-seed", first, "--seeds", "2", "--epochs", "1",
                   "-o", str(tmp_path / "r")), "4294967295")


def test_train_largest_seed_still_trains(toy, tmp_path) -> None:
    r = invoke("train", str(toy), "--first-seed", str(2**32 - 2), "--seeds", "2", "--epochs",
               "1", "-o", str(tmp_path / "r"))
    assert r.exit_code == 0, r.output


def _npz(path: Path, **extra) -> Path:
    np.savez(path, inputs=np.random.rand(6, 10, 2), outputs=np.random.rand(6, 10, 1),
             dt_ms=1.0, input_names=np.array(["a", "b"]), output_names=np.array(["c"]), **extra)
    return path


@pytest.mark.parametrize("split", [["train"] * 6, [0.5] * 6, [True] * 6])
def test_npz_split_of_wrong_type(tmp_path, split) -> None:
    src = _npz(tmp_path / "s.npz", split=np.array(split))
    refused(invoke("import", "npz", str(src), "-o", str(tmp_path / "o.h5")), "split")


def test_npz_split_of_integers_imports(tmp_path) -> None:
    src = _npz(tmp_path / "s.npz", split=np.array([0, 1, 2, 0, 1, 2]))
    assert invoke("import", "npz", str(src), "-o", str(tmp_path / "o.h5")).exit_code == 0
    src = _npz(tmp_path / "f.npz", split=np.array([0.0, 1.0, 2.0, 0.0, 1.0, 2.0]))
    assert invoke("import", "npz", str(src), "-o", str(tmp_path / "f.h5")).exit_code == 0


def test_csv_field_over_the_csv_limit(tmp_path) -> None:
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "t1.csv").write_text("t,a,b\n0,1,2\n1,2," + "3" * 140_000 + "\n2,3,4\n")
    refused(invoke("import", "csv", str(folder), "-o", str(tmp_path / "c.h5"),
                   "--input-names", "a", "--output-names", "b"), "t1.csv", "line 3")


WRONG = {"array": "[]", "string": '"x"', "corrupt": "{", "number": "3"}


@pytest.mark.parametrize("name", ["provenance.json", "results.json", "config.json",
                                  "normalization.json", "dataset.json"])
@pytest.mark.parametrize("content", sorted(WRONG))
def test_run_folder_json_of_wrong_type(trained, tmp_path, name, content) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / name).write_text(WRONG[content])
    for command in ("evaluate", "report"):
        r = invoke(command, str(run))
        if r.exit_code != 0:  # results.json is rewritten by evaluate
            refused(r, name)


def test_dataset_json_with_wrong_value_types(trained, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "dataset.json").write_text(json.dumps({"path": [1], "content_hash": 3}))
    refused(invoke("evaluate", str(run)), "dataset.json")


@pytest.mark.parametrize("name", ["cells/toy__gru-4/cell.json", "cells/toy__gru-4/results.json",
                                  "cells/toy__gru-4/extra_results.json", "resolved.json",
                                  "run.json", "results.json"])
@pytest.mark.parametrize("content", ["array", "string", "corrupt", "values"])
def test_experiment_json_of_wrong_type(experiment, tmp_path, name, content) -> None:
    spec, done = experiment
    out = tmp_path / "exp"
    shutil.copytree(done, out)
    path = out / name
    if content == "values":  # an object whose values all have the wrong type
        data = json.loads(path.read_text())
        path.write_text(json.dumps({k: "x" if isinstance(v, list) else [1]
                                    for k, v in data.items()}))
    else:
        path.write_text(WRONG[content])
    for args in (("experiment", "report", str(out)),
                 ("experiment", "run", str(spec), "-o", str(out))):
        r = invoke(*args)
        assert "Traceback" not in r.output and (r.exception is None
                                                or isinstance(r.exception, SystemExit)), \
            (args, r.output, r.exception)
        if r.exit_code != 0:
            assert r.exit_code == 2, r.output


@pytest.mark.parametrize("content", ["[]", '{"experiments": "x"}', '{"experiments": [1]}'])
def test_suite_json_of_wrong_type(experiment, tmp_path, content) -> None:
    _, done = experiment
    suite = tmp_path / "suite"
    shutil.copytree(done, suite / "toy")
    (suite / "suite.json").write_text(content)
    r = invoke("experiment", "report", str(suite))
    refused(r, "suite.json")


def test_deeply_nested_toml(tmp_path) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text('[experiment]\nname = "x"\na = ' + "[" * 50_000 + "]" * 50_000 + "\n")
    refused(invoke("experiment", "show", str(deep)), "deep.toml", "nested")
    refused(invoke("sweep", str(deep), "-o", str(tmp_path / "sw")), "deep.toml", "nested")


# ------------------------------------------------------------------ 7: memory, before allocating
LIMIT = "NEUROREDUCE_MEMORY_LIMIT_GB"


@pytest.mark.parametrize("args", [("--stimuli", "100000000"), ("--dt-out", "1e-7")])
def test_simulate_too_large(tmp_path, args) -> None:
    refused(invoke("simulate", "toy", *args, "-o", str(tmp_path / "x.h5"), env={LIMIT: "16"}),
            "simulate would need about", "16 GB", LIMIT)
    refused(invoke("simulate", "toy_spikes", *args, "-o", str(tmp_path / "x.h5"),
                   env={LIMIT: "16"}), "simulate would need about")


def test_experiment_dataset_too_large(experiment, tmp_path) -> None:
    spec, _ = experiment
    big = tmp_path / "big.toml"
    big.write_text(spec.read_text().replace("stimuli = 6", "stimuli = 100000000"))
    r = invoke("experiment", "run", str(big), "-o", str(tmp_path / "big"), env={LIMIT: "16"})
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "simulate would need about" in r.output


def test_limit_from_the_environment(tmp_path) -> None:
    refused(invoke("simulate", "toy", "-o", str(tmp_path / "x.h5"), env={LIMIT: "0.0001"}),
            "100 kB", LIMIT)
    refused(invoke("simulate", "toy", "-o", str(tmp_path / "x.h5"), env={LIMIT: "lots"}),
            LIMIT)


def test_normal_workloads_fit(monkeypatch) -> None:
    """fcm's 40 stimuli and Experiment 5 (28 outputs x 10 seeds) are far under 2 GB."""
    from neuroreduce.limits import check_simulation, check_training
    from neuroreduce.training import TrainConfig

    monkeypatch.setenv(LIMIT, "2")
    check_simulation(n_stimuli=40, n_time=1001, n_channels=8)
    check_training(TrainConfig(model="gru", hidden=32, seeds=tuple(range(10))),
                   n_inputs=4, n_outputs=28, n_train=20, n_time=1001, dt_ms=0.5)
    check_training(TrainConfig(model="tcn", hidden=64, seeds=tuple(range(10))),
                   n_inputs=4, n_outputs=28, n_train=20, n_time=1001, dt_ms=0.5)


@pytest.mark.parametrize("args", [("--hidden", "100000"), ("--seeds", "100000"),
                                  ("--seeds", "5000000000")])
def test_train_too_large(toy, tmp_path, args) -> None:
    refused(invoke("train", str(toy), *args, "--epochs", "1", "-o", str(tmp_path / "r"),
                   env={LIMIT: "16"}), LIMIT if args[1] != "5000000000" else "--seeds")
    assert not (tmp_path / "r" / "model.safetensors").exists()


def test_config_with_hidden_2e5(toy, experiment, tmp_path) -> None:
    spec, _ = experiment
    big = tmp_path / "big.toml"
    big.write_text(spec.read_text().replace("hidden = [4]", "hidden = [200000]"))
    r = invoke("experiment", "run", str(big), "-o", str(tmp_path / "big"), env={LIMIT: "16"})
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "training would need about" in r.output


def test_gzip_bomb_dataset(toy, tmp_path) -> None:
    bomb = tmp_path / "bomb.h5"
    shutil.copy(toy, bomb)
    with h5py.File(bomb, "a") as f:
        del f["inputs"]
        f.create_dataset("inputs", shape=(10**6, 10**5, 4), dtype="f4", chunks=(1, 1000, 4),
                         compression="gzip")
    assert bomb.stat().st_size < 10**6
    refused(invoke("train", str(bomb), "--epochs", "1", "-o", str(tmp_path / "r"),
                   env={LIMIT: "16"}), "bomb.h5", "--stream", LIMIT)


def test_npz_bomb_is_refused_before_decompressing(tmp_path) -> None:
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**5, 2)})
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("inputs.npy", header.getvalue() + b"\0" * 1000)
    refused(invoke("import", "npz", str(bomb), "-o", str(tmp_path / "o.h5"), env={LIMIT: "16"}),
            "bomb.npz", "declare", LIMIT)
