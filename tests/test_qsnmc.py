"""QSNMC importers: the real 2007 recordings, small files of both layouts, bad input, the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from neuroreduce.cli import app
from neuroreduce.datasets.importer_registry import get_importer, run_import
from neuroreduce.datasets.io import load_dataset, save_dataset
from neuroreduce.datasets.pieces import apply_split
from neuroreduce.datasets.qsnmc import crossing_samples
from neuroreduce.datasets.split_strategies import SplitSpec
from neuroreduce.errors import ConfigError, DatasetError

runner = CliRunner()
#: README numbers: per-stimulus current mean/std (pA), given to the nearest pA.
README_CURRENT = {"00": (624, 341), "05": (156, 164), "06": (465, 93), "08": (232, 58),
                  "09": (466, 84), "12": (233, 42)}


def _training(shared_data: Path) -> Path:
    path = shared_data / "qsnmc2007" / "training"
    if not path.is_dir():
        pytest.skip(f"{path} is absent")
    return path


# ----------------------------------------------------------------------------- real data


def test_real_2007_layout_counts_and_speed(shared_data: Path) -> None:
    folder = _training(shared_data)
    t0 = time.perf_counter()
    ds = run_import("qsnmc2007", folder)
    elapsed = time.perf_counter() - t0
    assert elapsed < 8.0, f"48 files should import in a few seconds, took {elapsed:.1f} s"
    assert ds.inputs.shape == (24, 34000, 1) and ds.outputs.shape == (24, 34000, 1)
    assert ds.dt_ms == 0.2 and ds.input_units == "pA" and ds.output_units == "mV"
    assert ds.input_names == ("current",) and ds.output_names == ("voltage",)
    assert ds.split is None
    stim = ds.field("stimulus")
    assert stim.spec.classes == ("00", "05", "06", "08", "09", "12")
    assert np.array_equal(stim.values, np.repeat(np.arange(6), 4))
    assert ds.families[4] == "05"
    assert json.loads(ds.stimulus_params[5]) == {"stimulus": "05", "repetition": 1}
    assert len(ds.provenance["sha256"]) == 48
    for name, (mean, std) in README_CURRENT.items():
        x = ds.inputs[np.array(ds.families) == name, :, 0]
        assert abs(x.mean() - mean) < 1 and abs(x.std() - std) < 1, name

    spikes = ds.field("spikes").values[:, :, 0]
    offsets = []
    for i, counts in enumerate(ds.provenance["spike_counts"]):
        # README: the spike-time files list the 0 mV crossings: equal counts in every file
        assert counts["file"] == counts["crossings"] == int(spikes[i].sum())
        cross = crossing_samples(ds.outputs[i, :, 0])
        offsets.append(np.flatnonzero(spikes[i]) - cross)
    d = np.concatenate(offsets)
    assert d.size == 8724
    # measured: the file's sample is the crossing sample (last one below 0 mV) for 91.6 % of
    # the spikes and the one before for the rest
    assert set(np.unique(d).tolist()) == {-1, 0}
    assert 0.90 < np.mean(d == 0) < 0.93
    wrong = np.concatenate([o + 3 for o in offsets])  # control: a 3-sample shift is caught
    assert not set(np.unique(wrong).tolist()) <= {-1, 0}


def test_real_2007_options_select_and_crossing(shared_data: Path) -> None:
    folder = _training(shared_data)
    ds = run_import("qsnmc2007", folder, {"stimuli": "5,12", "repetitions": [0, 2],
                                          "dt_ms": 1.0, "spikes_from": "crossing"})
    assert ds.families == ("05", "05", "12", "12")
    assert [json.loads(p)["repetition"] for p in ds.stimulus_params] == [0, 2, 0, 2]
    assert ds.dt_ms == 1.0 and ds.provenance["options"]["dt_ms"] == 1.0
    assert ds.field("stimulus").spec.classes == ("05", "12")
    for i in range(4):
        cross = crossing_samples(ds.outputs[i, :, 0])
        assert np.array_equal(np.flatnonzero(ds.field("spikes").values[i, :, 0]), cross)
    with pytest.raises(ConfigError, match="stimulus 07 not in"):
        run_import("qsnmc2007", folder, {"stimuli": "07"})


def test_real_2007_cli_import_and_fields(shared_data: Path, tmp_path: Path) -> None:
    folder = _training(shared_data)
    out = tmp_path / "x.h5"
    res = runner.invoke(app, ["import", "qsnmc2007", str(folder), "-o", str(out),
                              "--option", "stimuli=00,06", "--option", "dt_ms=0.2"])
    assert res.exit_code == 0, res.output
    assert "8 trials x 34000 samples" in res.output and "spikes (target, binary)" in res.output
    res = runner.invoke(app, ["fields", str(out)])
    assert res.exit_code == 0, res.output
    assert "stimulus" in res.output and "spikes" in res.output
    ds = load_dataset(out)
    assert ds.field("stimulus").spec.classes == ("00", "06") and ds.split is not None
    bad = runner.invoke(app, ["import", "qsnmc2007", str(folder), "-o", str(tmp_path / "y.h5"),
                              "--option", "dt_ms=-1"])
    assert bad.exit_code == 2 and "dt_ms must be" in bad.output
    assert not (tmp_path / "y.h5").exists()


# ----------------------------------------------------------------------------- written files


def _trace(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A current (pA) and a voltage (mV) that crosses 0 mV a few times."""
    rng = np.random.default_rng(seed)
    current = np.round(rng.normal(100, 30, n), 3)
    v = -60 + 80 * (np.sin(np.arange(n) * 2 * np.pi / 25) > 0.9) + rng.normal(0, 0.5, n)
    return current, np.round(v, 4)


def _write_2007(folder: Path, stimuli=("00", "05"), reps=3, n=200) -> dict:
    folder.mkdir(exist_ok=True)
    data = {}
    for k, s in enumerate(stimuli):
        for r in range(reps):
            current, v = _trace(n, 10 * k + r)
            np.savetxt(folder / f"{s}-{r}.voltage", np.column_stack([np.arange(n), current, v]))
            spk = crossing_samples(v)
            np.savetxt(folder / f"{s}-{r}.spiketimes",
                       np.column_stack([spk, np.zeros_like(spk)]), fmt="%d")
            data[(s, r)] = (current, v, spk)
    return data


def test_written_2007_round_trip(tmp_path: Path) -> None:
    data = _write_2007(tmp_path / "d")
    ds = run_import("qsnmc2007", tmp_path / "d")
    assert ds.n_trials == 6 and ds.n_time == 200
    for i, key in enumerate(sorted(data)):
        current, v, spk = data[key]
        assert ds.families[i] == key[0]
        assert np.allclose(ds.inputs[i, :, 0], current, atol=1e-4)
        assert np.allclose(ds.outputs[i, :, 0], v, atol=1e-4)
        assert np.array_equal(np.flatnonzero(ds.field("spikes").values[i, :, 0]), spk)
        assert spk.size >= 5
    save_dataset(ds, tmp_path / "d.h5")
    back = load_dataset(tmp_path / "d.h5")
    assert back.content_hash() == ds.content_hash()
    assert np.array_equal(back.field("stimulus").values, [0, 0, 0, 1, 1, 1])


def _corrupt(path: Path, fn) -> None:
    rows = np.loadtxt(path, ndmin=2)
    np.savetxt(path, fn(rows))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: _corrupt(d / "00-1.voltage", lambda r: r[:, :2]), "has 2 columns"),
        (lambda d: _corrupt(d / "00-1.voltage", lambda r: np.column_stack([r, r[:, :1]])),
         "has 4 columns"),
        (lambda d: _corrupt(d / "00-1.voltage", lambda r: r[np.r_[0:50, 49:200]][:200]),
         "sample index goes back from 49 to 49 at row 51"),
        (lambda d: _corrupt(d / "00-1.voltage", lambda r: np.delete(r, 70, axis=0)),
         "sample index jumps from 69 to 71 at row 71"),
        (lambda d: _corrupt(d / "00-1.voltage", lambda r: r[:150]), "all repetitions must"),
        (lambda d: _corrupt(d / "05-2.voltage", lambda r: np.where(
            np.arange(r.size).reshape(r.shape) == 31, np.nan, r)), "row 11, column 2 is nan"),
        (lambda d: (d / "00-0.voltage").write_text("0 1 2\n1 2\n"), "not a numeric table"),
        (lambda d: (d / "05-0.spiketimes").unlink(), "05-0.spiketimes is missing"),
        (lambda d: (d / "05-0.spiketimes").write_text("-3 0\n"), "negative spike time -3"),
        (lambda d: (d / "05-0.spiketimes").write_text("30 0\n12 0\n"), "not sorted"),
        (lambda d: (d / "05-0.spiketimes").write_text("12 0\n200 0\n"), "outside the trace"),
        (lambda d: (d / "05-0.spiketimes").write_text("12.5 0\n"), "not a whole sample"),
        (lambda d: (d / "junk.voltage").write_text("0 0 0\n"), "STIMULUS-REPETITION"),
    ],
)
def test_written_2007_bad_input(tmp_path: Path, edit, message: str) -> None:
    folder = tmp_path / "d"
    _write_2007(folder)
    run_import("qsnmc2007", folder)  # control: the untouched folder imports
    edit(folder)
    with pytest.raises(DatasetError, match=message) as err:
        run_import("qsnmc2007", folder)
    assert "\n" not in str(err.value)


def test_2007_empty_folder_and_no_spike_files(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no NN-R.voltage files"):
        run_import("qsnmc2007", tmp_path / "empty")
    with pytest.raises(DatasetError, match="does not exist"):
        run_import("qsnmc2007", tmp_path / "nothing")
    data = _write_2007(tmp_path / "d", stimuli=("00",), reps=2)
    for p in (tmp_path / "d").glob("*.spiketimes"):
        p.unlink()
    ds = run_import("qsnmc2007", tmp_path / "d", {"spikes_from": "crossing"})
    assert np.array_equal(np.flatnonzero(ds.field("spikes").values[1, :, 0]), data[("00", 1)][2])
    with pytest.raises(ConfigError, match="spikes_from"):
        run_import("qsnmc2007", tmp_path / "d", {"spikes_from": "both"})


def _write_2009(folder: Path, reps=3, n=400, time_column=False, dt_ms=0.1) -> tuple:
    folder.mkdir(exist_ok=True)
    current, _ = _trace(n, 0)
    volts = np.column_stack([_trace(n, 1 + r)[1] for r in range(reps)])
    t = np.arange(n) * dt_ms / 1000.0
    np.savetxt(folder / "current.txt",
               np.column_stack([t, current]) if time_column else current[:, None])
    np.savetxt(folder / "voltage_allrep.txt",
               np.column_stack([t, volts]) if time_column else volts)
    return current, volts


def test_written_2009_round_trip_and_suggested_split(tmp_path: Path) -> None:
    current, volts = _write_2009(tmp_path / "d")
    ds = run_import("qsnmc2009", tmp_path / "d", {"train_s": 0.03})
    assert ds.inputs.shape == (3, 400, 1) and ds.dt_ms == 0.1
    assert ds.families == ("0",) * 3 and ds.field("stimulus").spec.classes == ("0",)
    assert [json.loads(p)["repetition"] for p in ds.stimulus_params] == [0, 1, 2]
    for r in range(3):
        assert np.allclose(ds.inputs[r, :, 0], current, atol=1e-4)
        assert np.allclose(ds.outputs[r, :, 0], volts[:, r], atol=1e-4)
        # the spike sample is the last one below 0 mV, the next one is at or above it
        s = np.flatnonzero(ds.field("spikes").values[r, :, 0])
        assert s.size >= 10 and (volts[s, r] < 0).all() and (volts[s + 1, r] >= 0).all()
    split = ds.provenance["suggested_split"]
    assert split == {"strategy": "time_segment", "options": {"train_ms": 30.0}}
    assert ds.provenance["options"]["train_s"] == 0.03
    cut = apply_split(ds, SplitSpec(split["strategy"], split["options"]))
    assert cut.n_trials == 9 and int((cut.split == 2).sum()) == 3
    with pytest.raises(ConfigError, match="train_s 1 s is not shorter"):
        run_import("qsnmc2009", tmp_path / "d", {"train_s": 1.0})


def test_written_2009_time_column_checks_dt(tmp_path: Path) -> None:
    _write_2009(tmp_path / "d", time_column=True, dt_ms=0.1)
    ds = run_import("qsnmc2009", tmp_path / "d", {"time_column": True, "train_s": 0.01})
    assert ds.n_time == 400
    with pytest.raises(DatasetError, match="steps by 0.1 ms at row 2 but dt_ms is 0.2"):
        run_import("qsnmc2009", tmp_path / "d", {"time_column": True, "dt_ms": 0.2,
                                                 "train_s": 0.01})
    with pytest.raises(DatasetError, match="has 2 columns"):  # time column not declared
        run_import("qsnmc2009", tmp_path / "d", {"train_s": 0.01})


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: (d / "current.txt").unlink(), "current file .* is missing"),
        (lambda d: _corrupt(d / "current.txt", lambda r: np.column_stack([r, r])),
         "has 2 columns"),
        (lambda d: _corrupt(d / "voltage_allrep.txt", lambda r: r[:300]),
         "has 400 samples but .* has 300"),
        (lambda d: _corrupt(d / "voltage_allrep.txt", lambda r: np.where(
            np.arange(r.size).reshape(r.shape) == 7, np.inf, r)), "row 3, column 2 is inf"),
        (lambda d: (d / "voltage_allrep.txt").write_text(""), "has no data rows"),
    ],
)
def test_written_2009_bad_input(tmp_path: Path, edit, message: str) -> None:
    folder = tmp_path / "d"
    _write_2009(folder)
    run_import("qsnmc2009", folder, {"train_s": 0.01})  # control
    edit(folder)
    with pytest.raises(DatasetError, match=message) as err:
        run_import("qsnmc2009", folder, {"train_s": 0.01})
    assert "\n" not in str(err.value)


def test_options_documented() -> None:
    for name in ("qsnmc2007", "qsnmc2009"):
        doc = get_importer(name).options.__doc__
        assert "Attributes:" in doc and "dt_ms" in doc
    assert "0.2 ms" in get_importer("qsnmc2007").options.__doc__


def test_real_2007_time_segment_with_context(shared_data: Path) -> None:
    ds = run_import("qsnmc2007", _training(shared_data), {"stimuli": "00,05"})
    spec = SplitSpec("time_segment", {"train_ms": 4000.0, "valid_ms": 1000.0,
                                      "context": "preceding"})
    out = apply_split(ds, spec)
    test = np.flatnonzero(out.split == 2)
    assert out.n_time == 34000 and test.size == 8
    src = ds.field("spikes").values
    for row in test:
        r = json.loads(out.stimulus_params[row])
        assert (r["context_start"], r["start"], r["stop"]) == (0, 25000, 34000)
        got = out.field("spikes").values[row, :, 0]
        assert np.isnan(got[:25000]).all()  # context: not scored
        np.testing.assert_array_equal(got[25000:], src[r["source_trial"], 25000:, 0])
        np.testing.assert_array_equal(out.inputs[row], ds.inputs[r["source_trial"]])
    assert np.nansum(out.field("spikes").values[test]) == src[:, 25000:].sum() > 100
