"""The ``neuronio`` importer: NeuronIO-layout pickles written here, the restricted unpickler."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from neuroreduce.datasets.importer_registry import run_import
from neuroreduce.datasets.io import load_dataset
from neuroreduce.datasets.neuronio import NeuronIOOptions, safe_load
from neuroreduce.errors import ConfigError, DatasetError
from neuroreduce.pipeline import import_dataset

N_SEG, N_TIME, N_SIM = 5, 301, 3


def _sim(rng: np.random.Generator, *, n_seg: int = N_SEG, n_time: int = N_TIME) -> dict:
    exc = {s: np.sort(rng.uniform(0, n_time, rng.integers(0, 6))) for s in range(n_seg)}
    inh = {s: np.sort(rng.uniform(0, n_time, rng.integers(0, 6))) for s in range(n_seg)}
    v = -70 + 10 * rng.standard_normal(n_time)
    out = np.sort(rng.uniform(1, n_time - 1, 3))
    v[np.floor(out).astype(int)] = 30.0  # spike peaks, clipped on import
    return {"exInputSpikeTimes": exc, "inhInputSpikeTimes": inh, "somaVoltageLowRes": v,
            "outputSpikeTimes": out, "recordingTimeLowRes": np.arange(n_time, dtype=float),
            "dendriticVoltagesLowRes": rng.standard_normal((n_seg, n_time)) - 60}


def _write(path: Path, *, seed: int = 0, protocol: int = 2, n_sim: int = N_SIM, **kw) -> dict:
    rng = np.random.default_rng(seed)
    doc = {"Params": {"allSegmentsType": ["basal"] * kw.get("n_seg", N_SEG),
                      "totalSimDurationInSec": N_TIME / 1000, "randomSeed": seed},
           "Results": {"listOfSingleSimulationDicts": [_sim(rng, **kw) for _ in range(n_sim)]}}
    path.write_bytes(pickle.dumps(doc, protocol=protocol))
    return doc


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_round_trip_of_the_layout(tmp_path: Path, protocol: int) -> None:
    doc = _write(tmp_path / "sim.p", protocol=protocol)
    data = run_import("neuronio", tmp_path / "sim.p", {"raw_voltage": True, "dendritic": True})
    sims = doc["Results"]["listOfSingleSimulationDicts"]
    assert data.n_trials == N_SIM and data.n_time == N_TIME and data.dt_ms == 1.0
    syn = data.field("synapses")
    assert syn.spec.channels[0] == "exc_0000" and syn.spec.channels[N_SEG] == "inh_0000"
    assert len(syn.spec.channels) == 2 * N_SEG
    for i, sim in enumerate(sims):
        times, chans = syn.values.trial(i)
        for seg in range(N_SEG):
            np.testing.assert_allclose(np.sort(times[chans == seg]),
                                       np.sort(sim["exInputSpikeTimes"][seg]))
            np.testing.assert_allclose(np.sort(times[chans == N_SEG + seg]),
                                       np.sort(sim["inhInputSpikeTimes"][seg]))
        v = sim["somaVoltageLowRes"]
        np.testing.assert_allclose(data.outputs[i, :, 0], np.minimum(v, -55.0), rtol=1e-6)
        np.testing.assert_allclose(data.field("soma_v_raw").values[i, :, 0], v, rtol=1e-6)
        assert data.outputs[i].max() <= -55.0 < v.max()  # clipped, the raw one is not
        spikes = np.flatnonzero(data.field("spikes").values[i, :, 0])
        np.testing.assert_array_equal(spikes, np.floor(sim["outputSpikeTimes"]).astype(int))
        np.testing.assert_allclose(data.field("dend_v").values[i].T,
                                   sim["dendriticVoltagesLowRes"], rtol=1e-6)
    assert set(data.families) == {"nmda"}
    assert data.provenance["segments"] == N_SEG
    assert data.provenance["params"]["sim.p"]["randomSeed"] == 0


def test_folder_cli_path_and_saved_file(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _write(src / "a.p", seed=1)
    _write(src / "b.p", seed=2, n_sim=2)
    out = tmp_path / "x.h5"
    import_dataset("neuronio", src, out=out, options={"family": "ampa_only",
                                                      "max_simulations": 2})
    data = load_dataset(out)
    assert data.n_trials == 4 and set(data.families) == {"ampa_only"}
    assert data.split is not None  # split on import
    assert sorted(data.provenance["sha256"]) == ["a.p", "b.p"]


class _System:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # pickled as a call of os.system
        return (os.system, (f"touch {self.marker}",))


class _Eval:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w').write('x')",))


class Custom:
    """A custom class whose state-setting would leave a trace."""

    def __setstate__(self, state: dict) -> None:
        Path(state["marker"]).write_text("ran")


@pytest.mark.parametrize("kind,named", [("system", r"(os|posix)\.system"),
                                        ("eval", "builtins.eval"), ("custom", "Custom")])
def test_malicious_pickles_are_refused_and_nothing_runs(tmp_path: Path, kind: str,
                                                        named: str) -> None:
    marker = tmp_path / "executed"
    bad = tmp_path / "bad.p"
    if kind == "custom":
        obj = Custom()
        obj.__dict__["marker"] = str(marker)
        payload = obj
    else:
        payload = (_System if kind == "system" else _Eval)(marker)
    doc = {"Params": {}, "Results": {"listOfSingleSimulationDicts": [payload]}}
    bad.write_bytes(pickle.dumps(doc, protocol=2))
    out = tmp_path / "out.h5"
    with pytest.raises(DatasetError, match=named) as info:
        import_dataset("neuronio", bad, out=out)
    assert "\n" not in str(info.value) and "refused" in str(info.value)
    assert not marker.exists() and not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.p"]  # nothing written at all
    # control: the ordinary unpickler does run it (the check above can fail)
    if kind != "eval":  # eval's payload writes the same marker
        pickle.loads(bad.read_bytes())
        assert marker.exists()


def test_plain_arrays_load_and_bad_files_fail_in_one_line(tmp_path: Path) -> None:
    good = tmp_path / "g.p"
    good.write_bytes(pickle.dumps({"a": np.arange(4.0), "s": np.float32(2), "t": {1, 2}}, 2))
    loaded = safe_load(good)
    np.testing.assert_array_equal(loaded["a"], np.arange(4.0))
    assert loaded["t"] == {1, 2}
    trunc = tmp_path / "t.p"
    trunc.write_bytes(good.read_bytes()[:20])
    with pytest.raises(DatasetError, match="not a readable pickle"):
        safe_load(trunc)
    wrong = tmp_path / "w.p"
    wrong.write_bytes(pickle.dumps({"Params": {}, "Results": {}}, 2))
    with pytest.raises(DatasetError, match="listOfSingleSimulationDicts"):
        run_import("neuronio", wrong)
    with pytest.raises(DatasetError, match="does not exist"):
        run_import("neuronio", tmp_path / "missing.p")
    with pytest.raises(ConfigError, match="clip_mv"):
        NeuronIOOptions(clip_mv=float("nan"))


def test_bad_spike_times_and_mismatched_segments(tmp_path: Path) -> None:
    doc = _write(tmp_path / "s.p")
    doc["Results"]["listOfSingleSimulationDicts"][1]["exInputSpikeTimes"][0] = np.array([-1.0])
    (tmp_path / "s.p").write_bytes(pickle.dumps(doc, 2))
    with pytest.raises(DatasetError, match="simulation 1: exInputSpikeTimes"):
        run_import("neuronio", tmp_path / "s.p")
    src = tmp_path / "two"
    src.mkdir()
    _write(src / "a.p")
    _write(src / "b.p", n_seg=4)
    with pytest.raises(DatasetError, match="segments"):
        run_import("neuronio", src)
