"""The windowed layout (Layout 2): shapes, label handling, per-worm [0, 1] normalisation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neuroreduce.datasets.importer_registry import run_import
from neuroreduce.datasets.wholebrain_import import WormRecording, recordings_dataset
from neuroreduce.errors import ConfigError, DatasetError
from neuroreduce.wholebrain import windowed


def _recordings(derivatives: bool = False):
    rng = np.random.default_rng(0)
    worms = []
    for k, (n, names) in enumerate([(30, ("A", "B", "C")), (20, ("B", "A")), (12, ("A", "B"))]):
        x = rng.normal(size=(n, len(names))) * (k + 1) + 5 * k
        labels = (np.arange(n) // 5) % 2
        labels[0] = -1
        worms.append(WormRecording(f"w{k}", x, names, labels, 0.5,
                                   derivatives=rng.normal(size=x.shape) if derivatives else None,
                                   targets={"velocity": np.arange(n, dtype=float)}))
    return worms, recordings_dataset(worms, classes=("forward", "reversal"), neurons="all")


def test_window_shapes_and_channels() -> None:
    worms, rec = _recordings()
    assert rec.input_names == ("A", "B", "C")
    w = windowed(rec, window=8)
    n_win = (30 - 7) + (20 - 7) + (12 - 7)
    assert w.inputs.shape == (n_win, 8, 6)
    assert w.input_names == ("A", "B", "C", "d_A", "d_B", "d_C")
    assert w.families[:23] == ("w0",) * 23 and w.families[-1] == "w2"
    assert json.loads(w.stimulus_params[23]) == {"worm": "w1", "start_frame": 0}
    assert np.all(np.asarray(w.field("worm").values) == np.repeat([0, 1, 2], [23, 13, 5]))
    assert w.dt_ms == rec.dt_ms and w.split is None
    strided = windowed(rec, window=8, stride=4, derivatives=False)
    assert strided.inputs.shape == (6 + 4 + 2, 8, 3)
    assert [json.loads(p)["start_frame"] for p in strided.stimulus_params[:6]] == [
        0, 4, 8, 12, 16, 20]


def test_labels_only_last_frame() -> None:
    worms, rec = _recordings()
    w = windowed(rec, window=8)
    lab = np.asarray(w.field("behaviour").values)
    assert lab.shape == (w.n_trials, 8, 1)
    assert np.all(lab[:, :7] == -1)
    starts = np.array([json.loads(p)["start_frame"] for p in w.stimulus_params])
    worm = np.asarray(w.field("worm").values)
    expect = np.array([worms[k].labels[s + 7] for k, s in zip(worm, starts, strict=True)])
    np.testing.assert_array_equal(lab[:, 7, 0], expect)
    vel = np.asarray(w.field("velocity").values)[:, :, 0]  # targets cut alike, frame numbers
    np.testing.assert_array_equal(vel, starts[:, None] + np.arange(8))
    # control: a window cut off by one frame would not match
    assert not np.array_equal(lab[:, 7, 0], np.array(
        [worms[k].labels[s + 6] for k, s in zip(worm, starts, strict=True)]))


def test_minmax_per_worm_and_derivatives() -> None:
    worms, rec = _recordings()
    w = windowed(rec, window=8)
    x = w.inputs
    assert x.min() >= 0.0 and x.max() <= 1.0
    worm = np.asarray(w.field("worm").values)
    for k, wr in enumerate(worms):
        sel = x[worm == k]
        for j, name in enumerate(rec.input_names):
            if name not in wr.names:
                assert np.all(sel[:, :, j] == 0) and np.all(sel[:, :, 3 + j] == 0)
                continue
            # every frame is in some window: the worm's own min and max reach 0 and 1
            assert sel[:, :, j].min() == pytest.approx(0.0)
            assert sel[:, :, j].max() == pytest.approx(1.0)
    # trace values: min-max of the raw recording of worm w1, neuron A (its column 1)
    raw = worms[1].traces[:, 1]
    expect = (raw - raw.min()) / (raw.max() - raw.min())
    first = np.flatnonzero(worm == 1)[0]
    np.testing.assert_allclose(x[first, :, 0], expect[:8], rtol=1e-5, atol=1e-6)
    d = np.gradient(raw)
    np.testing.assert_allclose(x[first, :, 3], ((d - d.min()) / (d.max() - d.min()))[:8],
                               rtol=1e-5, atol=1e-6)
    # control: normalising over all worms together gives other values
    pooled = np.concatenate([wr.traces[:, wr.names.index("A")] for wr in worms])
    wrong = (raw - pooled.min()) / (pooled.max() - pooled.min())
    assert not np.allclose(x[first, :, 0], wrong[:8], atol=1e-3)
    plain = windowed(rec, window=8, normalise="none", derivatives=False)
    np.testing.assert_allclose(plain.inputs[first, :, 0], raw[:8], rtol=1e-6)


def test_file_derivatives() -> None:
    worms, rec = _recordings(derivatives=True)
    assert rec.has_field("derivatives")
    w = windowed(rec, window=8, derivative_source="file", normalise="none")
    first = np.flatnonzero(np.asarray(w.field("worm").values) == 1)[0]
    np.testing.assert_allclose(w.inputs[first, :, 3], worms[1].derivatives[:8, 1], rtol=1e-6)
    g = windowed(rec, window=8, derivative_source="gradient", normalise="none")
    assert not np.allclose(g.inputs[first, :, 3], w.inputs[first, :, 3])
    _, plain = _recordings()
    with pytest.raises(DatasetError, match="derivatives"):
        windowed(plain, derivative_source="file")


def test_bad_window_options() -> None:
    _, rec = _recordings()
    with pytest.raises(ConfigError, match="window"):
        windowed(rec, window=0)
    with pytest.raises(ConfigError, match="normalise"):
        windowed(rec, normalise="zscore")
    with pytest.raises(DatasetError, match="no recording has 40 frames"):
        windowed(rec, window=40)
    short = windowed(rec, window=21)  # only worm w0 is long enough
    assert set(short.families) == {"w0"} and short.n_trials == 10


def test_windows_of_real_recordings(shared_data: Path) -> None:
    rec = run_import("flavell2023", shared_data / "flavell2023", {"check_identities": False})
    w = windowed(rec)
    assert w.inputs.shape == (5 * 793, 8, 72)
    assert float(w.inputs.min()) == 0.0 and float(w.inputs.max()) == 1.0
    last = np.asarray(w.field("behaviour").values)[:, 7, 0]
    assert 0.10 < (last == 1).mean() < 0.31 and set(np.unique(last)) == {0, 1}
