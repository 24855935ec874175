"""Run folders: files written, resume equals an uninterrupted run, loading, predict, errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.errors import CheckpointError, ConfigError, DatasetError
from neuroreduce.training import (
    EpochReport,
    TrainConfig,
    check_compatible,
    load_run,
    predict,
    train,
)


def small_dataset(*, seed: int = 0, n_trials: int = 16, n_time: int = 40) -> Dataset:
    """Random steps (nA) through a first-order linear filter (mV); 10 train, 3 valid, 3 test."""
    rng = np.random.default_rng(seed)
    u = np.repeat(rng.normal(size=(n_trials, n_time // 8, 2)), 8, axis=1).astype(np.float32)
    y = np.zeros((n_trials, n_time, 2), np.float32)
    for t in range(1, n_time):
        y[:, t] = 0.8 * y[:, t - 1] + u[:, t] @ np.array([[0.5, 0.1], [-0.3, 0.4]], np.float32)
    split = np.array([0] * 10 + [1] * 3 + [2] * (n_trials - 13))
    return Dataset(u, y, 0.5, ("PLML", "AVBL"), ("DB1", "VB1"), split=split)


CFG = TrainConfig(model="gru", hidden=3, seeds=(1, 2), epochs=6, batch_size=4, checkpoint_every=2)


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(run_dir / "model.safetensors"), framework="pt") as fh:
        return {name: fh.get_tensor(name) for name in fh.keys()}  # noqa: SIM118


def _assert_same_run(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name
    assert (a / "history.csv").read_text() == (b / "history.csv").read_text()


def test_run_folder_contents(tmp_path: Path) -> None:
    ds = small_dataset()
    result = train(ds, CFG, tmp_path / "run", progress=False, dataset_path="data/x.h5")
    run_dir = tmp_path / "run"
    assert {p.name for p in run_dir.iterdir()} >= {
        "config.json",
        "normalization.json",
        "model.safetensors",
        "history.csv",
        "provenance.json",
        "checkpoint",
    }
    config = json.loads((run_dir / "config.json").read_text())
    assert TrainConfig.from_dict(config["train"]) == CFG
    assert config["model"] == {"name": "gru", "n_inputs": 2, "n_outputs": 2, "hidden": 3}
    assert config["io"]["input_names"] == ["PLML", "AVBL"] and config["io"]["dt_ms"] == 0.5
    prov = json.loads((run_dir / "provenance.json").read_text())
    assert prov["dataset_hash"] == ds.content_hash()
    assert prov["torch_version"] == torch.__version__ and prov["numpy_version"] == np.__version__
    assert prov["dataset_path"].endswith("data/x.h5") and "finished" in prov
    with (run_dir / "history.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["epoch", "member", "seed", "train_loss", "valid_loss"]
    assert len(rows) == 6 * 2 and {r["seed"] for r in rows} == {"1", "2"}
    best = [
        min((r for r in rows if r["member"] == str(k)), key=lambda r: float(r["valid_loss"]))
        for k in range(2)
    ]
    assert result.best_epochs == tuple(int(r["epoch"]) for r in best)
    with safe_open(str(run_dir / "model.safetensors"), framework="pt") as fh:
        meta = fh.metadata()
        names = set(fh.keys())
    assert "member0.rnn.weight_hh_l0" in names and "member1.readout.bias" in names
    assert json.loads(meta["seeds"]) == [1, 2] and json.loads(meta["complete"]) is True
    assert not list(run_dir.rglob("*.tmp"))


def test_load_run_and_predict_in_physical_units(tmp_path: Path) -> None:
    ds = small_dataset()
    train(ds, CFG, tmp_path / "run", progress=False)
    run = load_run(tmp_path / "run")
    assert not run.model.training and run.complete and run.epochs_done == 6
    assert run.input_names == ("PLML", "AVBL") and run.seeds == (1, 2)
    assert run.dataset_hash == ds.content_hash() and len(run.history) == 12
    out = predict(run, ds.inputs[:5], batch_size=2)
    assert out.shape == (2, 5, 40, 2) and out.dtype == np.float32
    norm = run.normalization
    with torch.no_grad():
        z = run.member(1)(torch.from_numpy(norm.normalize_inputs(ds.inputs[:5]))).numpy()
    np.testing.assert_allclose(out[1], norm.denormalize_outputs(z), rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError, match=r"\[trial, time, 2\] \(PLML, AVBL\); got \(5, 40, 3\)"):
        predict(run, np.zeros((5, 40, 3)))
    with pytest.raises(ConfigError, match="NaN"):
        predict(run, np.full((1, 4, 2), np.nan))


def test_check_compatible(tmp_path: Path) -> None:
    ds = small_dataset()
    train(ds, TrainConfig(hidden=2, epochs=1, batch_size=8), tmp_path / "run", progress=False)
    run = load_run(tmp_path / "run")
    check_compatible(run, small_dataset(seed=5))  # other data, same channels: fine
    renamed = Dataset(ds.inputs, ds.outputs, 0.5, ("PLMR", "AVBL"), ds.output_names)
    with pytest.raises(DatasetError, match="input names .*PLMR.* do not match"):
        check_compatible(run, renamed)
    finer = Dataset(ds.inputs, ds.outputs, 0.25, ds.input_names, ds.output_names)
    with pytest.raises(DatasetError, match="dt 0.25 ms differs"):
        check_compatible(run, finer)


def test_resume_after_a_crash_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    ds = small_dataset()
    train(ds, CFG, tmp_path / "full", progress=False)

    def crash(report: EpochReport) -> None:
        if report.epoch == 3:  # last checkpoint at epoch 2: epoch 3 must be redone
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(ds, CFG, tmp_path / "resumed", progress=False, on_epoch_end=crash)
    partial = load_run(tmp_path / "resumed")
    assert not partial.complete and partial.epochs_done == 2
    seen: list[int] = []
    result = train(
        ds, CFG, tmp_path / "resumed", progress=False, on_epoch_end=lambda r: seen.append(r.epoch)
    )
    assert seen == [3, 4, 5, 6]
    assert result.epochs_done == 6
    _assert_same_run(tmp_path / "full", tmp_path / "resumed")
    prov = json.loads((tmp_path / "resumed" / "provenance.json").read_text())
    assert prov["resumed"][0]["from_epoch"] == 2


def test_training_more_epochs_continues_a_finished_run(tmp_path: Path) -> None:
    ds = small_dataset()
    train(ds, CFG, tmp_path / "full", progress=False)
    short = TrainConfig.from_dict({**CFG.to_dict(), "epochs": 3, "checkpoint_every": 5})
    train(ds, short, tmp_path / "grown", progress=False)
    assert load_run(tmp_path / "grown").epochs_done == 3
    train(ds, CFG, tmp_path / "grown", progress=False)
    _assert_same_run(tmp_path / "full", tmp_path / "grown")
    again = train(ds, CFG, tmp_path / "grown", progress=False)  # finished: nothing to do
    assert again.epochs_done == 6
    _assert_same_run(tmp_path / "full", tmp_path / "grown")
    with pytest.raises(CheckpointError, match="already trained 6 epochs, more than the 3"):
        train(ds, short, tmp_path / "grown", progress=False)


def test_existing_folder_with_other_config_or_data_is_refused(tmp_path: Path) -> None:
    ds = small_dataset()
    train(ds, TrainConfig(hidden=2, epochs=1, batch_size=8), tmp_path / "run", progress=False)
    with pytest.raises(CheckpointError, match=r"different config \(hidden\); use a new -o folder"):
        train(ds, TrainConfig(hidden=3, epochs=1, batch_size=8), tmp_path / "run", progress=False)
    with pytest.raises(CheckpointError, match="different dataset; use a new -o folder"):
        train(
            small_dataset(seed=7),
            TrainConfig(hidden=2, epochs=1, batch_size=8),
            tmp_path / "run",
            progress=False,
        )
    with pytest.raises(CheckpointError, match="already holds a training run"):
        train(
            ds,
            TrainConfig(hidden=2, epochs=1, batch_size=8),
            tmp_path / "run",
            resume=False,
            progress=False,
        )
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(CheckpointError, match="not empty and holds no training run"):
        train(ds, TrainConfig(epochs=1), tmp_path / "other", progress=False)


def test_load_run_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="has no config.json"):
        load_run(tmp_path / "empty")
    ds = small_dataset()
    train(ds, TrainConfig(hidden=2, epochs=1, batch_size=8), tmp_path / "run", progress=False)
    weights = tmp_path / "run" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="model.safetensors is corrupt") as info:
        load_run(tmp_path / "run")
    assert "\n" not in str(info.value)
    (tmp_path / "run" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json is corrupt"):
        load_run(tmp_path / "run")


def test_corrupt_resume_state_is_reported(tmp_path: Path) -> None:
    ds = small_dataset()
    cfg = TrainConfig(hidden=2, epochs=2, batch_size=8)
    train(ds, cfg, tmp_path / "run", progress=False)
    (tmp_path / "run" / "checkpoint" / "last.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="last.pt is corrupt.*delete it"):
        train(ds, cfg, tmp_path / "run", progress=False)
