"""Issue 15, item 14: small hostile cases, each refused in one line or reported truthfully.

Missing-column errors are truncated, complex NPZ values, duplicate channel names and 1-sample
NPZ trials are refused, the demo re-simulates a dataset at its cache path that is not the one
it simulated, ``export`` prints its success line literally, and an interrupted ``simulate``
says that re-running starts again from scratch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from neuroreduce.cli import app
from neuroreduce.datasets.dataset import Dataset
from neuroreduce.errors import DatasetError

runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def _one_line_error(result, *needles: str) -> str:
    """Exit status 2, one non-empty line of output, no traceback; returns the line."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output[:2000]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _npz(path: Path, **overrides: object) -> Path:
    rng = np.random.default_rng(0)
    arrays: dict[str, object] = {
        "inputs": rng.normal(size=(6, 20, 2)),
        "outputs": rng.normal(size=(6, 20, 1)),
        "dt_ms": np.float64(0.5),
        "input_names": np.array(["a", "b"]),
        "output_names": np.array(["y"]),
    }
    arrays.update(overrides)
    np.savez(path, **arrays)
    return path


# ------------------------------------------------------------------ missing CSV column
def test_missing_column_error_is_truncated(tmp_path: Path) -> None:
    folder = tmp_path / "csv"
    folder.mkdir()
    header = ["t_ms", *(f"col{i}" for i in range(5000))]
    rows = [",".join(header), ",".join(["0"] * len(header)), ",".join(["1"] * len(header))]
    (folder / "1.csv").write_text("\n".join(rows) + "\n")
    res = _invoke("import", "csv", folder, "-o", tmp_path / "x.h5",
                  "--input-names", "col1", "--output-names", "nothere")
    line = _one_line_error(res, "missing column(s) nothere", "... and 4981 more")
    assert len(line) < 1000 and "col4999" not in line


# ------------------------------------------------------------------ NPZ contents
def test_complex_npz_values_are_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    src = _npz(tmp_path / "c.npz", outputs=rng.normal(size=(6, 20, 1)) * (1 + 1j))
    res = _invoke("import", "npz", src, "-o", tmp_path / "x.h5")
    _one_line_error(res, "outputs", "complex")
    assert not (tmp_path / "x.h5").exists()


def test_complex_arrays_refused_by_dataset() -> None:
    with pytest.raises(DatasetError, match="complex"):
        Dataset(np.ones((2, 3, 1), complex), np.zeros((2, 3, 1)), 1.0, ("a",), ("y",))


def test_one_sample_npz_is_refused(tmp_path: Path) -> None:
    src = _npz(tmp_path / "one.npz", inputs=np.zeros((6, 1, 2)), outputs=np.zeros((6, 1, 1)))
    res = _invoke("import", "npz", src, "-o", tmp_path / "x.h5")
    _one_line_error(res, "at least 2 time samples")


@pytest.mark.parametrize("key", ["input_names", "output_names"])
def test_duplicate_channel_names_npz(tmp_path: Path, key: str) -> None:
    rng = np.random.default_rng(2)
    names = {"input_names": np.array(["a", "a"]),
             "output_names": np.array(["y", "y"])}
    src = _npz(tmp_path / "d.npz", outputs=rng.normal(size=(6, 20, 2)),
               **{"output_names": np.array(["y", "z"]), key: names[key]})
    res = _invoke("import", "npz", src, "-o", tmp_path / "x.h5")
    _one_line_error(res, "duplicate", "channel name")


def test_duplicate_channel_names_csv(tmp_path: Path) -> None:
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "1.csv").write_text("t_ms,a,y\n0,1,2\n1,1,2\n2,1,2\n")
    res = _invoke("import", "csv", folder, "-o", tmp_path / "x.h5",
                  "--input-names", "a,a", "--output-names", "y")
    _one_line_error(res, "duplicate input channel name(s) a")


def test_duplicate_channel_names_dataset() -> None:
    with pytest.raises(DatasetError, match="duplicate output channel name"):
        Dataset(np.zeros((2, 3, 1)), np.zeros((2, 3, 2)), 1.0, ("a",), ("y", "y"))
    Dataset(np.zeros((2, 3, 1)), np.zeros((2, 3, 1)), 1.0, ("a",), ("a",))  # in and out: fine


# ------------------------------------------------------------------ demo cache
def test_demo_resimulates_a_foreign_cached_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from neuroreduce import pipeline
    from neuroreduce.datasets.io import load_dataset
    from neuroreduce.demo import DemoConfig, cached_dataset_valid, dataset_cache_path, run_demo

    monkeypatch.setenv("NEUROREDUCE_CACHE_DIR", str(tmp_path / "cache"))
    config = DemoConfig(scenario="toy", n_stimuli=6, dt_out_ms=2.0, hidden_sizes=(2,),
                        seeds=1, epochs=1, workers=1)
    cache = dataset_cache_path(config)
    cache.parent.mkdir(parents=True)
    foreign = pipeline.simulate("toy", n_stimuli=9, dt_out_ms=2.0, seed=3, out=cache,
                                progress=False)
    assert not cached_dataset_valid(cache, config)
    trained: list[Path] = []  # training and reports are not what is tested here: skip them
    monkeypatch.setattr(pipeline, "train_from_file", lambda data, *a, **k: trained.append(data))
    monkeypatch.setattr(pipeline, "evaluate", lambda *a, **k: None)
    monkeypatch.setattr("neuroreduce.reporting.report.make_report", lambda run: run)
    run_demo(tmp_path / "out", config=config, progress=False)
    assert trained == [cache]
    expected = pipeline.simulate("toy", n_stimuli=6, dt_out_ms=2.0, seed=0, progress=False)
    assert load_dataset(cache).content_hash() == expected.content_hash()
    assert expected.content_hash() != foreign.content_hash()
    assert cached_dataset_valid(cache, config)
    # the record beside it does not vouch for a file replaced afterwards
    hash_record = json.loads(cache.with_name(cache.name + ".hash.json").read_text())
    assert hash_record["content_hash"] == expected.content_hash()
    pipeline.simulate("toy", n_stimuli=6, dt_out_ms=2.0, seed=4, out=cache, progress=False)
    assert not cached_dataset_valid(cache, config)
    cache.write_bytes(b"not a dataset")
    assert not cached_dataset_valid(cache, config)


# ------------------------------------------------------------------ export's success line
def test_export_success_line_is_literal(tmp_path: Path) -> None:
    from neuroreduce.training import TrainConfig, train

    rng = np.random.default_rng(0)
    ds = Dataset(rng.normal(size=(4, 10, 1)), rng.normal(size=(4, 10, 1)), 1.0, ("a",), ("y",),
                 split=np.array([0, 0, 1, 2]))
    train(ds, TrainConfig(model="gru", hidden=2, seeds=(0,), epochs=1, batch_size=2),
          tmp_path / "run", progress=False)
    res = _invoke("export", tmp_path / "run", "-o", tmp_path / "m.onnx")
    assert res.exit_code == 0, res.output
    assert "[onnx (sequence), member 0]" in res.output


# ------------------------------------------------------------------ Ctrl-C during simulate
def test_interrupted_simulate_says_a_rerun_starts_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from neuroreduce import pipeline

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "run_simulator", interrupted)
    res = _invoke("simulate", "toy", "--stimuli", "6", "-o", tmp_path / "x.h5")
    assert res.exit_code == 130, res.output
    assert "Traceback" not in res.output
    assert "again from the start" in res.output and "to continue" not in res.output
    assert not (tmp_path / "x.h5").exists()
    with pytest.raises(KeyboardInterrupt, match="again from the start"):
        pipeline.simulate("toy", n_stimuli=6, progress=False)


def test_duplicate_channel_names_in_a_dataset_file(tmp_path: Path) -> None:
    import h5py

    from neuroreduce import pipeline
    from neuroreduce.datasets.io import load_dataset
    from neuroreduce.datasets.streaming import StreamingDataset

    path = tmp_path / "d.h5"
    pipeline.simulate("toy", n_stimuli=6, dt_out_ms=2.0, out=path, progress=False)
    with h5py.File(path, "r+") as f:
        names = f["input_names"].asstr()[()]
        assert len(names) >= 2
        f["input_names"][1] = names[0]
    with pytest.raises(DatasetError, match="duplicate"):
        StreamingDataset(path)
    with pytest.raises(DatasetError, match="duplicate"):
        load_dataset(path)
