"""nwb_icephys importer on NWB files written here with pynwb: values, units, grouping, bad files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np
import pytest

pynwb = pytest.importorskip("pynwb")
from pynwb import NWBHDF5IO, NWBFile  # noqa: E402
from pynwb.icephys import CurrentClampSeries, CurrentClampStimulusSeries  # noqa: E402

from neuroreduce.datasets.importer_registry import run_import  # noqa: E402
from neuroreduce.datasets.io import load_dataset, save_dataset  # noqa: E402
from neuroreduce.datasets.qsnmc import crossing_samples  # noqa: E402
from neuroreduce.errors import ConfigError, DatasetError  # noqa: E402

N_TIME, RATE = 300, 20_000.0  # 0.05 ms per sample


def _sweeps(seed: int = 0) -> dict:
    """2 stimuli x 3 sweeps: current (pA) per stimulus, voltage (mV) per sweep, crossing 0 mV."""
    rng = np.random.default_rng(seed)
    currents = [np.round(rng.normal(200 * (k + 1), 50, N_TIME), 2) for k in range(2)]
    volts = {}
    for k in range(2):
        for r in range(3):
            v = -65 + 90 * (np.sin(np.arange(N_TIME) / (6 + k + 0.3 * r)) > 0.95)
            volts[(k, r)] = np.round(v + rng.normal(0, 0.3, N_TIME), 3)
    return {"current": currents, "voltage": volts}


def _write(path: Path, data: dict, *, table: bool = True, descriptions: bool = True,
           column: bool = False, drop_response: int | None = None, short: int | None = None,
           rates: dict | None = None) -> None:
    """Stimulus stored in nA (conversion 1e-9 A), response as mV above -65 mV (conversion
    1e-3 V, offset -0.065 V)."""
    f = NWBFile("test", "id0", datetime(2024, 1, 1, tzinfo=UTC))
    el = f.create_icephys_electrode(name="e0", description="patch",
                                    device=f.create_device("amp"))
    if column:
        f.get_intracellular_recordings().add_column("protocol", "stimulus name")
    order = [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)]  # interleaved, as in a lab
    for sweep, (k, r) in enumerate(order):
        cur = data["current"][k] / 1000.0
        n = short if short is not None and sweep == 3 else N_TIME
        desc = f"OU{k}" if descriptions else "N/A"
        stim = CurrentClampStimulusSeries(
            name=f"stim_{sweep}", data=cur, rate=RATE, electrode=el, gain=1.0,
            conversion=1e-9, sweep_number=np.uint32(sweep), stimulus_description=desc)
        resp = CurrentClampSeries(
            name=f"resp_{sweep}", data=data["voltage"][(k, r)][:n] + 65.0,
            rate=(rates or {}).get(sweep, RATE), electrode=el, gain=1.0, conversion=1e-3,
            offset=-0.065,
            sweep_number=np.uint32(sweep), stimulus_description=desc)
        if table:
            kwargs = {"protocol": f"P{k}"} if column else {}
            if sweep == drop_response:
                f.add_stimulus(stim)
                f.add_intracellular_recording(electrode=el, stimulus=stim, **kwargs)
            else:
                f.add_intracellular_recording(electrode=el, stimulus=stim, response=resp,
                                              **kwargs)
        else:
            f.add_stimulus(stim)
            if sweep != drop_response:
                f.add_acquisition(resp)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(f)


@pytest.mark.parametrize("table", [True, False])
def test_round_trip_values_and_grouping(tmp_path: Path, table: bool) -> None:
    data = _sweeps()
    _write(tmp_path / "a.nwb", data, table=table)
    ds = run_import("nwb_icephys", tmp_path / "a.nwb")
    assert ds.inputs.shape == (6, N_TIME, 1)
    assert ds.dt_ms == pytest.approx(0.05) and ds.input_units == "pA" and ds.output_units == "mV"
    assert ds.families == ("OU0",) * 3 + ("OU1",) * 3
    assert ds.field("stimulus").spec.classes == ("OU0", "OU1")
    np.testing.assert_array_equal(ds.field("stimulus").values, [0, 0, 0, 1, 1, 1])
    params = [json.loads(p) for p in ds.stimulus_params]
    assert [p["repetition"] for p in params] == [0, 1, 2, 0, 1, 2]
    for i, p in enumerate(params):
        k = int(p["stimulus"][-1])
        # nA * 1e-9 A * 1e12 = pA, ((v + 65) 1e-3 - 0.065) V * 1e3 = mV (float32 storage)
        np.testing.assert_allclose(ds.inputs[i, :, 0], data["current"][k], rtol=1e-6)
        v = data["voltage"][(k, p["repetition"])]
        np.testing.assert_allclose(ds.outputs[i, :, 0], v, rtol=1e-6)
        spikes = np.flatnonzero(ds.field("spikes").values[i, :, 0])
        assert spikes.size >= 3 and np.array_equal(spikes, crossing_samples(v))
    assert [s["sweep_number"] for s in ds.provenance["sweeps"]] == [0, 2, 4, 1, 3, 5]
    save_dataset(ds, tmp_path / "a.h5")
    assert load_dataset(tmp_path / "a.h5").content_hash() == ds.content_hash()


def test_grouping_by_data_and_by_column(tmp_path: Path) -> None:
    data = _sweeps()
    _write(tmp_path / "a.nwb", data, descriptions=False, column=True)
    auto = run_import("nwb_icephys", tmp_path / "a.nwb")  # no descriptions: equal data
    assert auto.families == ("stimulus0",) * 3 + ("stimulus1",) * 3
    col = run_import("nwb_icephys", tmp_path / "a.nwb",
                     {"repetitions_by": "column", "stimulus_column": "protocol"})
    assert col.families == ("P0",) * 3 + ("P1",) * 3
    np.testing.assert_array_equal(col.inputs, auto.inputs)
    with pytest.raises(DatasetError, match="no stimulus_description"):
        run_import("nwb_icephys", tmp_path / "a.nwb", {"repetitions_by": "description"})
    with pytest.raises(DatasetError, match="no column 'nope'"):
        run_import("nwb_icephys", tmp_path / "a.nwb",
                   {"repetitions_by": "column", "stimulus_column": "nope"})
    with pytest.raises(ConfigError, match="needs --option stimulus_column"):
        run_import("nwb_icephys", tmp_path / "a.nwb", {"repetitions_by": "column"})
    # control: a stimulus changed by 0.5 pA in one sweep splits its group unless tolerated
    data["current"].append(data["current"][0] + 0.5)
    f = tmp_path / "b.nwb"
    _write(f, data, descriptions=False)
    with h5py.File(f, "r+") as h:
        h["stimulus/presentation/stim_4/data"][...] = data["current"][2] / 1000.0
    assert set(run_import("nwb_icephys", f).families) == {"stimulus0", "stimulus1", "stimulus2"}
    tolerant = run_import("nwb_icephys", f, {"data_atol_pa": 1.0})
    assert tolerant.families == auto.families


def test_folder_of_files(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    _write(tmp_path / "d" / "a.nwb", _sweeps(0))
    _write(tmp_path / "d" / "b.nwb", _sweeps(0))  # the same two stimuli again
    ds = run_import("nwb_icephys", tmp_path / "d")
    assert ds.n_trials == 12 and ds.field("stimulus").spec.classes == ("OU0", "OU1")
    assert [json.loads(p)["repetition"] for p in ds.stimulus_params] == [*range(6), *range(6)]
    assert len(ds.provenance["sha256"]) == 2
    # other currents under the same descriptions: auto (by data) keeps them apart and does not
    # reuse the ambiguous names; by description they are merged
    _write(tmp_path / "d" / "b.nwb", _sweeps(1))
    auto = run_import("nwb_icephys", tmp_path / "d")
    assert auto.field("stimulus").spec.classes == tuple(f"stimulus{k}" for k in range(4))
    desc = run_import("nwb_icephys", tmp_path / "d", {"repetitions_by": "description"})
    assert desc.families == ("OU0",) * 6 + ("OU1",) * 6


def _retag(path: Path, dataset: str, **attrs) -> None:
    with h5py.File(path, "r+") as h:
        for k, v in attrs.items():
            h[dataset].attrs[k] = v


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ({"drop_response": 2}, "recording 2 has no response series"),
        ({"drop_response": 2, "table": False}, "'stim_2' .* has no CurrentClampSeries response"),
        ({"short": 250}, "has 250 voltage samples but its stimulus 'stim_3' has 300"),
        ({"rates": {1: 10_000.0}}, "sampled at 20000 Hz but its response 'resp_1' at 10000 Hz"),
        ({"unit": ("acquisition/resp_0/data", "amperes")}, "unit 'amperes'; expected"),
        ({"unit": ("stimulus/presentation/stim_0/data", "meters")}, "unit 'meters'"),
    ],
)
def test_bad_files(tmp_path: Path, how: dict, message: str) -> None:
    path = tmp_path / "bad.nwb"
    unit = how.pop("unit", None)
    _write(path, _sweeps(), **how)
    if unit is not None:
        _write(tmp_path / "good.nwb", _sweeps())
        run_import("nwb_icephys", tmp_path / "good.nwb")  # control: untouched file imports
        _retag(path, unit[0], unit=unit[1])
    with pytest.raises(DatasetError, match=message) as err:
        run_import("nwb_icephys", path)
    assert "\n" not in str(err.value)


def test_unequal_rates_between_sweeps_and_not_nwb(tmp_path: Path) -> None:
    path = tmp_path / "a.nwb"
    _write(path, _sweeps())
    with h5py.File(path, "r+") as h:
        for kind in ("stimulus/presentation/stim_5", "acquisition/resp_5"):
            h[f"{kind}/starting_time"].attrs["rate"] = 10_000.0
    with pytest.raises(DatasetError, match="all sweeps must share one sampling rate"):
        run_import("nwb_icephys", path)
    (tmp_path / "x.nwb").write_text("not hdf5")
    with pytest.raises(DatasetError, match="is not a readable NWB file"):
        run_import("nwb_icephys", tmp_path / "x.nwb")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no files matching"):
        run_import("nwb_icephys", tmp_path / "empty")
