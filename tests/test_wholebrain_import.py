"""Whole-brain importers: the real Flavell-lab recordings (identities checked on behaviour, with a
deliberately wrong ROI link as control) and written files of the Kato, NWB and NPZ layouts."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from typer.testing import CliRunner

from neuroreduce.datasets.importer_registry import get_importer, list_importers, run_import
from neuroreduce.errors import ConfigError, DatasetError
from neuroreduce.wholebrain.identities import (
    identity_check,
    link_rois,
    neuron_class,
    read_neuropal_labels,
    select_neurons,
    shared_neurons,
    worm_identity_check,
)

IDENTIFIED = ("2022-07-26-31", "2022-07-26-38", "2022-07-27-31", "2022-07-27-45", "2022-08-02-31")


@pytest.fixture
def flavell(shared_data: Path) -> Path:
    folder = shared_data / "flavell2023"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    return folder


@pytest.fixture
def flavell_all(flavell: Path):
    return run_import("flavell2023", flavell, {"neurons": "all"})


# ------------------------------------------------------------------------ real data


def test_importers_registered() -> None:
    for name in ("flavell2023", "kato2015", "nwb_ophys", "wholebrain_npz", "wholebrain_csv"):
        assert name in list_importers()
        assert "Attributes:" in get_importer(name).options.__doc__


def test_flavell_shared_layout(shared_data: Path) -> None:
    ds = run_import("flavell2023", shared_data / "flavell2023", {})
    assert ds.families == IDENTIFIED
    # default rule: confidence >= 3, no '?' names: 36 names shared by the 5 worms
    assert ds.inputs.shape == (5, 800, 36)
    assert {"AVAL", "AVAR", "AIBL", "AIBR", "RID", "RMEL", "SMDVL", "SMDVR"} <= set(
        ds.input_names)
    assert ds.dt_ms == pytest.approx(600.0, abs=1.0)
    beh = ds.field("behaviour")
    assert beh.spec.classes == ("forward", "reversal") and beh.spec.ignore_label == -1
    frac = (np.asarray(beh.values)[:, :, 0] == 1).mean(axis=1)
    assert np.all((frac >= 0.10) & (frac < 0.315)), frac  # README: 10-31 % reversal
    assert ds.field("worm").spec.classes == IDENTIFIED
    params = [json.loads(p) for p in ds.stimulus_params]
    assert [p["n_frames"] for p in params] == [800] * 5
    assert all(len(p["recorded"]) == 36 for p in params)
    prov = ds.provenance
    assert set(prov["files_sha256"]) >= {f"{w}-data.h5" for w in IDENTIFIED}
    assert "roi_match[ROI_ID - 1] - 1" in prov["identity_rule"]
    assert all(prov["identity_check"][w]["holds"] for w in IDENTIFIED)
    assert sum(len(v) for v in prov["low_confidence"].values()) > 0


def test_flavell_confidence_rule_counts(flavell: Path) -> None:
    counts = {}
    for mc in (0, 3, 4):
        ds = run_import("flavell2023", flavell, {"min_confidence": mc, "check_identities": False})
        counts[mc] = (len(ds.input_names), ds.provenance["named_per_worm"])
    assert counts[0][0] == 48 and counts[3][0] == 36 and counts[4][0] == 24
    assert sorted(counts[0][1].values()) == [90, 100, 102, 104, 109]
    assert sorted(counts[3][1].values()) == [80, 90, 92, 97, 102]


def test_flavell_identity_check_real(flavell_all) -> None:
    """Reference check: AVA/AIB up and RIB/AVB down in reversals, in every identified worm."""
    checks = identity_check(flavell_all)
    assert set(checks) == set(IDENTIFIED)
    for worm, c in checks.items():
        assert c.holds, c.summary()
        assert c.positive_mean > 0.1, c.summary()  # weakest worm 2022-07-26-38: +0.13
        pos = [v for k, v in c.correlations.items() if neuron_class(k) in ("AVA", "AIB")]
        assert len(pos) == 4, worm  # AVAL/R and AIBL/R in every worm
        if not np.isnan(c.negative_mean):
            assert c.negative_mean < 0
    # RIB or AVB present (confidence >= 3) in 4 of 5 worms
    assert sum(not np.isnan(c.negative_mean) for c in checks.values()) == 4


def test_flavell_wrong_roi_link_fails_check(flavell: Path) -> None:
    """Control: shifting the ROI index by one breaks the pattern in most worms."""
    held = {}
    for offset in (0, 1, -1):
        n_hold = 0
        for worm in IDENTIFIED:
            labels = read_neuropal_labels(flavell / "neuropal_labels" / f"{worm} Neuron ID.xlsx")
            with h5py.File(flavell / "data" / f"{worm}-data.h5", "r") as f:
                traces = f["gcamp/trace_array"][()]
                roi_match = f["neuropal_registration/roi_match"][()]
                rev = f["behavior/reversal_vec"][()]
            link = link_rois(labels, roi_match, traces.shape[1], roi_offset=offset)
            names = sorted(link.columns)
            check = worm_identity_check(traces[:, [link.columns[n] for n in names]], names, rev)
            n_hold += check.holds
        held[offset] = n_hold
    assert held[0] == 5
    assert held[1] <= 2 and held[-1] <= 2, held


def test_flavell_low_confidence_identity_would_fail(flavell: Path) -> None:
    """RIBR of 2022-07-26-31 (confidence 2) correlates positively: the rule keeps it apart."""
    with pytest.warns(UserWarning, match="2022-07-26-31"):
        ds = run_import("flavell2023", flavell, {"min_confidence": 2, "neurons": "all"})
    assert "RIBR" in json.loads(ds.stimulus_params[0])["recorded"]


def test_flavell_extra_targets_and_unidentified(flavell: Path) -> None:
    ds = run_import("flavell2023", flavell, {"targets": ["velocity"], "neurons": ["AVAL", "RIBL"]})
    assert ds.input_names == ("AVAL", "RIBL")
    v = ds.field("velocity")
    assert v.spec.role == "target" and np.isfinite(np.asarray(v.values)).all()
    # 2022-07-27-31 has no confident RIBL: its channel is 0 and not listed as recorded
    k = ds.families.index("2022-07-27-31")
    assert np.all(ds.inputs[k, :, 1] == 0)
    assert json.loads(ds.stimulus_params[k])["recorded"] == ["AVAL"]
    with pytest.warns(UserWarning, match="frame intervals differ"):  # 0.737 s and 0.6 s
        un = run_import("flavell2023", flavell, {"worms": "unidentified", "neurons": "all"})
    assert un.families == ("2022-01-16-01", "2022-05-02-01")
    assert un.inputs.shape == (2, 1137, 136)
    p0 = json.loads(un.stimulus_params[0])
    assert p0["n_frames"] == 799 and p0["frame_s"] == pytest.approx(0.737, abs=0.01)
    assert np.all(np.asarray(un.field("behaviour").values)[0, 799:] == -1)
    with pytest.raises(ConfigError, match="neurons=all"):
        run_import("flavell2023", flavell, {"worms": "unidentified"})


def test_flavell_bad_requests(flavell: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="AVAL"):
        run_import("flavell2023", flavell, {"neurons": ["AVAX"]})
    with pytest.raises(ConfigError, match="trace"):
        run_import("flavell2023", flavell, {"trace": "nope"})
    with pytest.raises(DatasetError, match="no data"):
        run_import("flavell2023", tmp_path, {})
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"not a workbook")
    with pytest.raises(DatasetError, match="not a readable xlsx"):
        read_neuropal_labels(bad)


def test_flavell_missing_field_one_line(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    with h5py.File(tmp_path / "data" / "w1-data.h5", "w") as f:
        f["gcamp/trace_array"] = np.zeros((10, 3))
        f["timing/timestamp_confocal"] = np.arange(10) * 0.6
    with pytest.raises(DatasetError, match="behavior/reversal_vec"):
        run_import("flavell2023", tmp_path, {"worms": ["w1"], "neurons": "all"})
    with h5py.File(tmp_path / "data" / "w1-data.h5", "a") as f:
        f["behavior/reversal_vec"] = np.r_[np.zeros(9, int), 2]
    with pytest.raises(DatasetError, match="unknown state code"):
        run_import("flavell2023", tmp_path, {"worms": ["w1"], "neurons": "all"})


def test_cli_import_flavell(flavell: Path, tmp_path: Path) -> None:
    from neuroreduce.cli import app
    from neuroreduce.datasets.io import load_dataset

    out = tmp_path / "x.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = CliRunner().invoke(app, ["import", "flavell2023", str(flavell), "-o", str(out)])
    assert result.exit_code == 0, result.output
    ds = load_dataset(out)
    assert ds.inputs.shape == (5, 800, 36) and ds.has_field("behaviour")
    bad = CliRunner().invoke(app, ["import", "flavell2023", str(flavell), "-o",
                                   str(tmp_path / "y.h5"), "--option", "neurons=AVAX"])
    assert bad.exit_code == 2 and "AVAX" in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "y.h5").exists()


# ------------------------------------------------------------------------ alignment


def test_shared_and_selected_neurons() -> None:
    lists = [("AVAL", "AVAR", "RIML"), ("AVAL", "RIML", "SMDVL"), ("RIML", "AVAL")]
    assert shared_neurons(lists) == ("AVAL", "RIML")
    assert select_neurons(lists, "all") == ("AVAL", "AVAR", "RIML", "SMDVL")
    assert select_neurons(lists, ("SMDVL", "AVAL")) == ("SMDVL", "AVAL")
    with pytest.raises(DatasetError, match="closest: SMDVL"):
        select_neurons(lists, ("SMDVX",))
    with pytest.raises(DatasetError, match="share no neuron"):
        select_neurons([("A",), ("B",)], "shared")
    assert neuron_class("AVAL") == "AVA" and neuron_class("RID") == "RID"
    assert neuron_class("AVL") == "AVL" and neuron_class("SMDVR") == "SMDV"


def test_identity_check_detects_sign() -> None:
    rng = np.random.default_rng(0)
    rev = (rng.random(500) < 0.3).astype(int)
    x = np.stack([rev + rng.normal(0, 0.5, 500), -rev + rng.normal(0, 0.5, 500)], axis=1)
    good = worm_identity_check(x, ["AVAL", "AVBL"], rev)
    assert good.holds and good.correlations["AVAL"] > 0.5
    swapped = worm_identity_check(x, ["AVBL", "AVAL"], rev)  # control: swapped names
    assert not swapped.holds


# ------------------------------------------------------------------------ kato2015


def _cell(items: list) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    for i, x in enumerate(items):
        out[i] = x
    return out


def _kato_file(path: Path, *, n_states: int = 8, struct_states: bool = False,
               codes_offset: int = 0, bad_code: bool = False) -> dict:
    rng = np.random.default_rng(1)
    names8 = ("FWD", "SLOW", "DT", "VT", "REV1", "REV2", "REVSUS", "NOSTATE")
    names4 = ("FWD", "REV", "REVSUS", "TURN")
    worms = []
    for k, (n, ids) in enumerate([(60, ["AVAL", "AVAR", "", "RIML", ["SMDVL", "SMDVR"]]),
                                  (50, ["RIML", "AVAL", "AVAR", "AVBL"])]):
        codes = rng.integers(0, n_states, n)
        if bad_code and k == 1:
            codes[3] = n_states + 2
        traces = rng.normal(size=(n, len(ids)))
        states = ({nm.lower(): (codes == j).astype(float) for j, nm in
                   enumerate(names8 if n_states == 8 else names4)} if struct_states
                  else codes + codes_offset)
        worms.append((traces, np.diff(traces, axis=0), _cell(ids), states, f"w{k}", n))
    rec = {
        "traces": _cell([w[0] for w in worms]), "tracesDif": _cell([w[1] for w in worms]),
        "IDs": _cell([_cell(w[2]) for w in worms]),
        "States": [w[3] for w in worms] if struct_states else _cell([w[3] for w in worms]),
        "fps": _cell([2.85, 2.85]), "dataset": _cell([w[4] for w in worms]),
        "timeVectorSeconds": _cell([np.arange(w[5]) / 2.85 for w in worms]),
    }
    if struct_states:
        rec["States"] = _cell(rec["States"])
    scipy.io.savemat(path, {"WT_NoStim": rec})
    return {"worms": worms}


def test_kato_written_file_native_7_states(tmp_path: Path) -> None:
    path = tmp_path / "WT_NoStim.mat"
    written = _kato_file(path)
    ds = run_import("kato2015", path, {})
    assert ds.families == ("w0", "w1")
    assert ds.input_names == ("AVAL", "AVAR", "RIML")  # shared; '' and 2-candidate IDs left out
    assert ds.field("behaviour").spec.classes == ("FWD", "SLOW", "DT", "VT", "REV1", "REV2",
                                                   "REVSUS")
    lab = np.asarray(ds.field("behaviour").values)[:, :, 0]
    codes0 = written["worms"][0][3]
    np.testing.assert_array_equal(lab[0], np.where(codes0 == 7, -1, codes0))
    assert np.all(lab[1, 50:] == -1)  # padding
    np.testing.assert_allclose(ds.inputs[1, :50, 0], written["worms"][1][0][:, 1])  # AVAL
    assert ds.dt_ms == pytest.approx(1000 / 2.85)
    deriv = np.asarray(ds.field("derivatives").values)
    np.testing.assert_allclose(deriv[0, :59, 2], written["worms"][0][1][:, 3], rtol=1e-6)


def test_kato_state_maps(tmp_path: Path) -> None:
    path = tmp_path / "k.mat"
    written = _kato_file(path, codes_offset=1)
    ds4 = run_import("kato2015", path, {"states": 4, "state_base": 1})
    assert ds4.field("behaviour").spec.classes == ("FWD", "REV", "REVSUS", "TURN")
    lab = np.asarray(ds4.field("behaviour").values)[0, :60, 0]
    expect = np.array([0, 0, 3, 3, 1, 1, 2, -1])[written["worms"][0][3] - 1]
    np.testing.assert_array_equal(lab, expect)
    ds2 = run_import("kato2015", path, {"states": "2", "state_base": 1})
    assert ds2.field("behaviour").spec.classes == ("forward", "reversal")
    struct = tmp_path / "s.mat"
    w2 = _kato_file(struct, n_states=4, struct_states=True)
    ds = run_import("kato2015", struct, {})
    assert ds.field("behaviour").spec.classes == ("FWD", "REV", "REVSUS", "TURN")
    onehot = np.stack(list(w2["worms"][1][3].values()), axis=1)  # [frame, state] in 4-state order
    np.testing.assert_array_equal(np.asarray(ds.field("behaviour").values)[1, :50, 0],
                                  onehot.argmax(axis=1))
    with pytest.raises(ConfigError, match="8-state"):
        run_import("kato2015", struct, {"states": 7})


def test_kato_bad_inputs(tmp_path: Path) -> None:
    path = tmp_path / "bad.mat"
    _kato_file(path, bad_code=True)
    with pytest.raises(DatasetError, match="unknown state code"):
        run_import("kato2015", path, {})
    scipy.io.savemat(tmp_path / "nofield.mat", {"WT_NoStim": {"traces": _cell([np.zeros((5, 2))]),
                                                              "IDs": _cell([_cell(["A", "B"])])}})
    with pytest.raises(DatasetError, match="States"):
        run_import("kato2015", tmp_path / "nofield.mat", {})
    scipy.io.savemat(tmp_path / "len.mat", {
        "traces": np.zeros((5, 2)), "IDs": _cell(["AVAL", "AVAR"]), "States": np.zeros(4),
        "fps": 3.0})
    with pytest.raises(DatasetError, match="one state per frame"):
        run_import("kato2015", tmp_path / "len.mat", {})
    (tmp_path / "junk.mat").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="not a readable MATLAB"):
        run_import("kato2015", tmp_path / "junk.mat", {})


def test_kato_single_worm_v73(tmp_path: Path) -> None:
    """A MATLAB v7.3 (HDF5) file of one worm, written as MATLAB lays it out (column-major)."""
    path = tmp_path / "one.mat"
    rng = np.random.default_rng(2)
    traces = rng.normal(size=(40, 2))
    with h5py.File(path, "w") as f:
        f["traces"] = traces.T
        f["traces"].attrs["MATLAB_class"] = b"double"
        refs = []
        grp = f.create_group("#refs#")
        for i, name in enumerate(("AVAL", "RIML")):
            d = grp.create_dataset(f"n{i}", data=np.array([[ord(c)] for c in name], np.uint16))
            d.attrs["MATLAB_class"] = b"char"
            refs.append(d.ref)
        ids = f.create_dataset("IDs", data=np.array([refs], dtype=h5py.ref_dtype).T)
        ids.attrs["MATLAB_class"] = b"cell"
        f["States"] = (np.arange(40) % 2)[None, :].astype(float)
        f["fps"] = np.array([[2.0]])
    ds = run_import("kato2015", path, {})
    assert ds.input_names == ("AVAL", "RIML") and ds.dt_ms == pytest.approx(500.0)
    np.testing.assert_allclose(ds.inputs[0, :, 1], traces[:, 1], rtol=1e-6)


# ------------------------------------------------------------------------ nwb_ophys


def _nwb_file(path: Path, *, worm: str, names: tuple[str, ...], n: int = 40,
              intervals: bool = True, codes: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.epoch import TimeIntervals
    from pynwb.ophys import DfOverF, ImageSegmentation, OpticalChannel, RoiResponseSeries

    data = np.random.default_rng(seed).normal(size=(n, len(names)))
    nwb = NWBFile("whole brain", worm, datetime(2020, 1, 1, tzinfo=UTC))
    dev = nwb.create_device("scope")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ch = OpticalChannel("green", "GCaMP", 525.0)
    plane = nwb.create_imaging_plane(name="plane", optical_channel=ch, description="head",
                                     device=dev, excitation_lambda=488.0, imaging_rate=2.0,
                                     indicator="GCaMP6s", location="head")
    mod = nwb.create_processing_module("ophys", "calcium")
    seg = ImageSegmentation()
    mod.add(seg)
    ps = seg.create_plane_segmentation("neurons", plane, "PlaneSegmentation")
    ps.add_column("neuron_name", "identity")
    for k, name in enumerate(names):
        ps.add_roi(pixel_mask=[(k, k, 1.0)], neuron_name=name)
    region = ps.create_roi_table_region("all", region=list(range(len(names))))
    mod.add(DfOverF(RoiResponseSeries(name="RoiResponseSeries", data=data, rois=region,
                                      unit="dF/F", rate=2.0)))
    if intervals:
        ti = TimeIntervals(name="behaviour", description="states")
        ti.add_column("label", "state")
        ti.add_interval(0.0, 5.0, label="forward")
        ti.add_interval(5.0, 12.0, label="reversal")
        nwb.add_time_intervals(ti)
    else:
        beh = nwb.create_processing_module("behavior", "behaviour")
        beh.add(TimeSeries(name="behaviour", data=codes, unit="n.a.", rate=2.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with NWBHDF5IO(str(path), "w") as io:
            io.write(nwb)
    return data


@pytest.mark.filterwarnings("ignore:The linked table for DynamicTableRegion")
def test_nwb_intervals_and_series(tmp_path: Path) -> None:
    d1 = _nwb_file(tmp_path / "a.nwb", worm="wa", names=("AVAL", "AVAR", "RIML", "X?"))
    _nwb_file(tmp_path / "b.nwb", worm="wb", names=("RIML", "AVAL", "SMDVL"), seed=1)
    ds = run_import("nwb_ophys", tmp_path, {})
    assert ds.families == ("wa", "wb") and ds.input_names == ("AVAL", "RIML")
    assert ds.field("behaviour").spec.classes == ("forward", "reversal")
    lab = np.asarray(ds.field("behaviour").values)[0, :, 0]
    # frames at 0.5 s: 0..9 forward (t < 5 s), 10..23 reversal (t < 12 s), rest unknown
    np.testing.assert_array_equal(lab, [0] * 10 + [1] * 14 + [-1] * 16)
    np.testing.assert_allclose(ds.inputs[0, :, 1], d1[:, 2], rtol=1e-6)
    assert ds.dt_ms == pytest.approx(500.0)
    codes = np.array([0, 1, 1, 2, -1] * 8)
    single = tmp_path / "series"
    single.mkdir()
    _nwb_file(single / "c.nwb", worm="wc", names=("AVAL", "RIML"), intervals=False, codes=codes)
    ds = run_import("nwb_ophys", single / "c.nwb", {"classes": "fwd,rev,turn"})
    np.testing.assert_array_equal(np.asarray(ds.field("behaviour").values)[0, :, 0], codes)
    with pytest.raises(ConfigError, match="classes"):
        run_import("nwb_ophys", single / "c.nwb", {})
    with pytest.raises(DatasetError, match="unknown behaviour code"):
        run_import("nwb_ophys", single / "c.nwb", {"classes": "fwd,rev"})
    with pytest.raises(DatasetError, match="no behaviour named"):
        run_import("nwb_ophys", single / "c.nwb", {"classes": "a,b,c", "behaviour": "nope"})
    (tmp_path / "junk.nwb").write_bytes(b"junk")
    with pytest.raises(DatasetError, match="not a readable NWB"):
        run_import("nwb_ophys", tmp_path / "junk.nwb", {})


# ------------------------------------------------------------------------ wholebrain_npz


def test_wholebrain_npz(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    x1, x2 = rng.normal(size=(30, 3)), rng.normal(size=(20, 2))
    np.savez(tmp_path / "w1.npz", traces=x1, names=np.array(["AVAL", "AVAR", "RIML"]),
             behaviour=np.r_[np.zeros(15, int), np.ones(15, int)], frame_s=0.5)
    np.savez(tmp_path / "w2.npz", traces=x2, names=np.array(["RIML", "AVAL"]),
             behaviour=-np.ones(20, int), frame_s=0.5)
    ds = run_import("wholebrain_npz", tmp_path, {})
    assert ds.families == ("w1", "w2") and ds.input_names == ("AVAL", "RIML")
    np.testing.assert_allclose(ds.inputs[1, :20, 0], x2[:, 1], rtol=1e-6)
    assert np.all(ds.inputs[1, 20:] == 0)
    all_ = run_import("wholebrain_npz", tmp_path, {"neurons": "all"})
    assert all_.input_names == ("AVAL", "AVAR", "RIML") and np.all(all_.inputs[1, :, 1] == 0)
    np.savez(tmp_path / "w3.npz", traces=x2, names=np.array(["RIML", "AVAL"]),
             behaviour=-np.ones(19, int), frame_s=0.5)
    with pytest.raises(DatasetError, match="20 frames but behaviour has 19"):
        run_import("wholebrain_npz", tmp_path / "w3.npz", {})
    np.savez(tmp_path / "w4.npz", traces=x2, names=np.array(["RIML", "AVAL"]),
             behaviour=np.full(20, 5), frame_s=0.5)
    with pytest.raises(DatasetError, match="unknown behaviour code"):
        run_import("wholebrain_npz", tmp_path / "w4.npz", {})
    np.savez(tmp_path / "w5.npz", traces=x2, names=np.array(["RIML", "AVAL"]))
    with pytest.raises(DatasetError, match="lacks array"):
        run_import("wholebrain_npz", tmp_path / "w5.npz", {})
    np.savez(tmp_path / "w6.npz", traces=x2, names=np.array(["SMDVL", "RMEL"]),
             behaviour=np.zeros(20, int), frame_s=0.5)
    one = tmp_path / "pair"
    one.mkdir()
    for name in ("w1.npz", "w6.npz"):
        (one / name).write_bytes((tmp_path / name).read_bytes())
    with pytest.raises(DatasetError, match="share no neuron"):
        run_import("wholebrain_npz", one, {})


def test_wholebrain_csv(tmp_path: Path) -> None:
    (tmp_path / "w1.csv").write_text("time_s,behaviour,AVAL,RIML\n0,forward,1,2\n0.5,reversal,3,4\n"
                                     "1.0,,5,6\n")
    (tmp_path / "w2.csv").write_text("time_s,RIML,behaviour,AVAL\n0,7,unknown,8\n"
                                     "0.5,9,forward,10\n")
    ds = run_import("wholebrain_csv", tmp_path, {})
    assert ds.input_names == ("AVAL", "RIML") and ds.dt_ms == pytest.approx(500.0)
    np.testing.assert_array_equal(ds.inputs[1, :2], [[8, 7], [10, 9]])
    np.testing.assert_array_equal(np.asarray(ds.field("behaviour").values)[:, :, 0],
                                  [[0, 1, -1], [-1, 0, -1]])
    with pytest.raises(DatasetError, match="unknown behaviour label"):
        run_import("wholebrain_csv", tmp_path, {"classes": "forward,turn"})
    (tmp_path / "w3.csv").write_text("time_s,AVAL\n0,1\n0.5,2\n")
    with pytest.raises(DatasetError, match="behaviour"):
        run_import("wholebrain_csv", tmp_path / "w3.csv", {})
