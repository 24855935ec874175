"""Streaming a dataset file: metadata, reads, chunked statistics, and training == in-memory."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.io import load_dataset, save_dataset
from neuroreduce.datasets.streaming import Moments, StreamingDataset
from neuroreduce.errors import DatasetError
from neuroreduce.training import Normalization, TrainConfig, load_run, train
from neuroreduce.training.data import fit_normalization


def _dataset(n_trials: int = 30, n_time: int = 25) -> Dataset:
    """2 inputs (one constant) -> 2 outputs, a leaky filter; split 60/20/20 % interleaved."""
    rng = np.random.default_rng(3)
    u = rng.normal(0.2, 0.1, size=(n_trials, n_time, 2)).astype(np.float32)
    u[:, :, 1] = 0.05  # a constant channel: std 1 by the normalisation's rule
    y = np.zeros((n_trials, n_time, 2))
    for t in range(1, n_time):
        y[:, t, 0] = 0.8 * y[:, t - 1, 0] + u[:, t, 0]
        y[:, t, 1] = 0.5 * y[:, t - 1, 1] - 2.0 * u[:, t, 0]
    split = np.tile([0, 0, 0, 1, 2], n_trials // 5)
    return Dataset(
        u,
        (y - 58.0).astype(np.float32),
        0.5,
        ("i0", "i1"),
        ("o0", "o1"),
        split=split,
        provenance={"simulator": "test"},
    )


@pytest.fixture()
def stored(tmp_path: Path) -> tuple[Dataset, Path]:
    ds = _dataset()
    return ds, save_dataset(ds, tmp_path / "d.h5")


def test_metadata_and_reads_match_the_loaded_dataset(stored: tuple[Dataset, Path]) -> None:
    ds, path = stored
    loaded = load_dataset(path)
    with StreamingDataset(path) as src:
        assert (src.n_trials, src.n_time) == (30, 25)
        assert src.input_names == ds.input_names and src.output_names == ds.output_names
        assert (src.input_units, src.output_units, src.dt_ms) == ("nA", "mV", 0.5)
        assert src.provenance["simulator"] == "test"
        assert src.content_hash() == loaded.content_hash() == ds.content_hash()
        for split in ("train", "valid", "test"):
            np.testing.assert_array_equal(src.indices(split), ds.indices(split))
        assert src.nbytes == ds.inputs.nbytes + ds.outputs.nbytes
        idx = np.array([7, 2, 2, 29, 0, 7])  # any order, repeats
        x, y = src.read(idx)
        np.testing.assert_array_equal(x, ds.inputs[idx])
        np.testing.assert_array_equal(y, ds.outputs[idx])
        x, _ = src.read([])
        assert x.shape == (0, 25, 2)
        with pytest.raises(DatasetError, match="out of range"):
            src.read([30])
    assert not src._file.id.valid  # closed by the with block


def test_chunked_statistics_equal_normalization_fit(stored: tuple[Dataset, Path]) -> None:
    ds, path = stored
    expected = Normalization.fit(ds)
    with StreamingDataset(path) as src:
        got = fit_normalization(src)
        m_in, _ = src.moments(src.indices("train"), chunk=4)  # 18 trials in pieces of 4
    for name in ("input_mean", "input_std", "output_mean", "output_std"):
        np.testing.assert_allclose(getattr(got, name), getattr(expected, name), rtol=1e-12)
    assert got.input_std[1] == 1.0  # constant channel
    train = ds.inputs[ds.indices("train")]
    np.testing.assert_allclose(m_in.std, train.reshape(-1, 2).astype(np.float64).std(0), 1e-12)
    parts = Moments.of(train[:5]).merge(Moments.of(train[5:]))
    np.testing.assert_allclose(parts.mean, Moments.of(train).mean, rtol=1e-12)


def test_content_hash_is_computed_when_the_file_has_none(
    stored: tuple[Dataset, Path],
) -> None:
    ds, path = stored
    with h5py.File(path, "a") as f:
        del f.attrs["content_hash"]
    with StreamingDataset(path) as src:
        assert src.content_hash() == ds.content_hash()


def test_open_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        StreamingDataset(tmp_path / "missing.h5")
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(DatasetError, match="not a readable HDF5"):
        StreamingDataset(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(DatasetError, match="not a neuroreduce dataset"):
        StreamingDataset(tmp_path / "other.h5")
    ds = _dataset()
    no_split = Dataset(ds.inputs, ds.outputs, ds.dt_ms, ds.input_names, ds.output_names)
    path = save_dataset(no_split, tmp_path / "nosplit.h5")
    with StreamingDataset(path) as src, pytest.raises(DatasetError, match="no split"):
        train(src, TrainConfig(hidden=2, epochs=1), tmp_path / "run", progress=False)


@pytest.mark.parametrize("model", ["gru", "lstm"])
def test_streamed_training_equals_in_memory_training(
    stored: tuple[Dataset, Path], tmp_path: Path, model: str
) -> None:
    ds, path = stored
    cfg = TrainConfig(model=model, hidden=3, seeds=(0, 4), epochs=4, batch_size=5)
    ref = train(ds, cfg, tmp_path / "mem", progress=False)
    with StreamingDataset(path) as src:
        reads: list[int] = []
        real_read = src.read
        src.read = lambda idx: (reads.append(len(idx)), real_read(idx))[1]  # type: ignore[method-assign]
        got = train(src, cfg, tmp_path / "stream", progress=False)
    # minibatches of 2 members x 5 (last 3) trials, then train (18) and valid (6) losses:
    # never the whole file
    assert set(reads) == {10, 6, 18}
    assert len(got.history) == len(ref.history) == 8
    for a, b in zip(got.history, ref.history, strict=True):
        assert (a.epoch, a.member) == (b.epoch, b.member)
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-5)
        assert a.valid_loss == pytest.approx(b.valid_loss, rel=1e-5)
    assert got.best_epochs == ref.best_epochs
    run_s, run_m = load_run(tmp_path / "stream"), load_run(tmp_path / "mem")
    assert run_s.dataset_hash == run_m.dataset_hash == ds.content_hash()
    for k in range(2):
        sm, mm = run_s.model.member_state_dict(k), run_m.model.member_state_dict(k)
        for name in sm:
            np.testing.assert_allclose(sm[name].numpy(), mm[name].numpy(), atol=1e-5)


def test_pipeline_and_cli_stream(stored: tuple[Dataset, Path], tmp_path: Path) -> None:
    from neuroreduce.cli import app
    from neuroreduce.pipeline import evaluate, train_from_file

    ds, path = stored
    cfg = TrainConfig(hidden=2, seeds=(1,), epochs=2, batch_size=6)
    train_from_file(path, cfg, tmp_path / "p", progress=False, stream=True)
    link = json.loads((tmp_path / "p" / "dataset.json").read_text())
    assert link["content_hash"] == ds.content_hash()
    assert "test" in evaluate(tmp_path / "p")["splits"]  # finds and verifies the file
    res = CliRunner().invoke(
        app,
        [
            "train",
            str(path),
            "-o",
            str(tmp_path / "c"),
            "--stream",
            "--hidden",
            "2",
            "--seeds",
            "1",
            "--first-seed",
            "1",
            "--epochs",
            "2",
            "--batch-size",
            "6",
        ],
    )
    assert res.exit_code == 0, res.output
    a = load_run(tmp_path / "p").model.member_state_dict(0)
    b = load_run(tmp_path / "c").model.member_state_dict(0)
    assert all(np.array_equal(a[n].numpy(), b[n].numpy()) for n in a)
