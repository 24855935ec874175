"""Importers: the paper's .dat folders, CSV folders and NPZ archives, well- and malformed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuroreduce.datasets.importers import (
    PAPER_INPUT_NAMES,
    PAPER_OUTPUT_NAMES,
    import_csv_folder,
    import_dat_folder,
    import_npz,
)
from neuroreduce.datasets.io import load_dataset, save_dataset
from neuroreduce.errors import DatasetError

N_TIME = 11
DT_S = 0.0005


def _trial_arrays(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Time (s), outputs [time, 4] and inputs [time, 4] of trial ``k``."""
    t = np.arange(N_TIME) * DT_S
    outputs = -58.0 + k + np.outer(np.sin(t * 1000), [1, 2, 3, 4])
    inputs = 0.001 * k + np.outer(t, [1, 0, 2, 0])
    return t, outputs, inputs


def _write_dat(path, k: int, *, header: bool = False) -> None:
    t, out, inp = _trial_arrays(k)
    lines = ["index time DB1 LUAL PVR VB1 PLML PLMR AVBL AVBR"] if header else []
    for i in range(N_TIME):
        values = [f"{i}", f"{t[i]:.6f}", *(f"{v:.9g}" for v in (*out[i], *inp[i]))]
        lines.append("  ".join(values))
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture()
def dat_folder(tmp_path):
    folder = tmp_path / "dat"
    folder.mkdir()
    for k in (1, 2, 10):  # natural order: 1, 2, 10
        _write_dat(folder / f"{k}.dat", k, header=(k == 2))
    return folder


def test_dat_folder_import(dat_folder) -> None:
    ds = import_dat_folder(dat_folder)
    assert ds.inputs.shape == (3, N_TIME, 4) and ds.outputs.shape == (3, N_TIME, 4)
    assert ds.input_names == PAPER_INPUT_NAMES and ds.output_names == PAPER_OUTPUT_NAMES
    assert ds.dt_ms == pytest.approx(0.5)
    assert (ds.input_units, ds.output_units) == ("a.u.", "a.u.")
    for row, k in enumerate((1, 2, 10)):
        _, out, inp = _trial_arrays(k)
        np.testing.assert_allclose(ds.outputs[row], out, rtol=1e-6)
        np.testing.assert_allclose(ds.inputs[row], inp, rtol=1e-6, atol=1e-9)
        assert json.loads(ds.stimulus_params[row]) == {"source_file": f"{k}.dat"}
    assert ds.provenance["files"] == ["1.dat", "2.dat", "10.dat"]
    assert ds.split is None


def test_dat_units_and_names_are_configurable_and_survive_saving(dat_folder, tmp_path) -> None:
    ds = import_dat_folder(
        dat_folder,
        output_names=("a", "b", "c", "d"),
        input_names=("p", "q", "r", "s"),
        input_units="nA",
        output_units="mV",
    )
    back = load_dataset(save_dataset(ds, tmp_path / "imported.h5"))
    assert back.output_names == ("a", "b", "c", "d")
    assert (back.input_units, back.output_units) == ("nA", "mV")
    assert back.content_hash() == ds.content_hash()


def test_dat_ragged_row_names_file_and_line(dat_folder) -> None:
    path = dat_folder / "2.dat"
    lines = path.read_text().splitlines()
    lines[4] = " ".join(lines[4].split()[:-1])  # header is line 1, so this is line 5
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"2\.dat, line 5: expected 10 columns, found 9"):
        import_dat_folder(dat_folder)


def test_dat_non_numeric_value_names_file_and_line(dat_folder) -> None:
    path = dat_folder / "10.dat"
    lines = path.read_text().splitlines()
    tokens = lines[7].split()
    tokens[3] = "abc"
    lines[7] = " ".join(tokens)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"10\.dat, line 8: value 'abc' is not a finite number"):
        import_dat_folder(dat_folder)


def test_dat_nan_value_is_rejected(dat_folder) -> None:
    path = dat_folder / "1.dat"
    lines = path.read_text().splitlines()
    lines[0] = " ".join([*lines[0].split()[:2], "nan", *lines[0].split()[3:]])
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"1\.dat, line 1: value 'nan'"):
        import_dat_folder(dat_folder)


def test_dat_non_uniform_time_is_rejected(dat_folder) -> None:
    path = dat_folder / "1.dat"
    lines = path.read_text().splitlines()
    tokens = lines[5].split()
    tokens[1] = "0.0027"
    lines[5] = " ".join(tokens)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match="not uniform"):
        import_dat_folder(dat_folder)


def test_dat_files_of_different_length_are_rejected(dat_folder) -> None:
    path = dat_folder / "10.dat"
    path.write_text("\n".join(path.read_text().splitlines()[:-2]) + "\n")
    with pytest.raises(DatasetError, match="same length"):
        import_dat_folder(dat_folder)


def test_dat_missing_or_empty_folder(tmp_path) -> None:
    with pytest.raises(DatasetError, match="folder not found"):
        import_dat_folder(tmp_path / "missing")
    with pytest.raises(DatasetError, match=r"no files matching '\*\.dat'"):
        import_dat_folder(tmp_path)


def test_dat_empty_file(tmp_path) -> None:
    (tmp_path / "1.dat").write_text("# only a comment\n\n")
    with pytest.raises(DatasetError, match="no data rows"):
        import_dat_folder(tmp_path)


def test_dat_random_corruption_gives_dataset_error_or_valid_data(dat_folder) -> None:
    path = dat_folder / "1.dat"
    text = path.read_text()
    rng = np.random.default_rng(0)
    alphabet = list("0123456789.-+eE \n\tx,#")
    for _ in range(40):
        chars = list(text)
        for pos in rng.integers(0, len(chars), size=3):
            chars[pos] = str(rng.choice(alphabet))
        path.write_text("".join(chars))
        try:
            ds = import_dat_folder(dat_folder)
        except DatasetError as exc:
            assert "\n" not in str(exc)
        else:
            assert np.isfinite(ds.inputs).all() and ds.n_trials == 3


# ------------------------------------------------------------------------- CSV


def _write_csv(path, k: int, *, time_col: str = "t_ms", scale: float = 1000.0) -> None:
    t, out, inp = _trial_arrays(k)
    rows = [f"{time_col},extra,in_b,in_a,out_a"]
    for i in range(N_TIME):
        rows.append(f"{t[i] * scale:.9g},7,{inp[i, 2]:.9g},{inp[i, 0]:.9g},{out[i, 1]:.9g}")
    path.write_text("\n".join(rows) + "\n")


def test_csv_folder_selects_columns_by_name(tmp_path) -> None:
    _write_csv(tmp_path / "trial1.csv", 1)
    _write_csv(tmp_path / "trial2.csv", 2, time_col="time_s", scale=1.0)
    ds = import_csv_folder(tmp_path, input_names=("in_a", "in_b"), output_names=("out_a",))
    assert ds.inputs.shape == (2, N_TIME, 2) and ds.outputs.shape == (2, N_TIME, 1)
    assert ds.dt_ms == pytest.approx(0.5)
    assert (ds.input_units, ds.output_units) == ("nA", "mV")
    _, out, inp = _trial_arrays(2)
    np.testing.assert_allclose(ds.inputs[1], inp[:, [0, 2]], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ds.outputs[1, :, 0], out[:, 1], rtol=1e-6)


def test_csv_missing_column_is_named(tmp_path) -> None:
    _write_csv(tmp_path / "a.csv", 1)
    with pytest.raises(DatasetError, match=r"a\.csv: missing column\(s\) in_z; header has t_ms"):
        import_csv_folder(tmp_path, input_names=("in_a", "in_z"), output_names=("out_a",))


def test_csv_without_time_column(tmp_path) -> None:
    (tmp_path / "a.csv").write_text("x,in_a,out_a\n0,1,2\n1,1,2\n")
    with pytest.raises(DatasetError, match="no time column; name one of t_ms"):
        import_csv_folder(tmp_path, input_names=("in_a",), output_names=("out_a",))


def test_csv_ragged_and_non_numeric_rows(tmp_path) -> None:
    (tmp_path / "a.csv").write_text("t_ms,in_a,out_a\n0,1,2\n0.5,1\n")
    with pytest.raises(DatasetError, match=r"a\.csv, line 3: expected 3 columns, found 2"):
        import_csv_folder(tmp_path, input_names=("in_a",), output_names=("out_a",))
    (tmp_path / "a.csv").write_text("t_ms,in_a,out_a\n0,1,2\n0.5,1,x2\n")
    with pytest.raises(DatasetError, match=r"a\.csv, line 3: value 'x2'"):
        import_csv_folder(tmp_path, input_names=("in_a",), output_names=("out_a",))


# ------------------------------------------------------------------------- NPZ


def _npz_arrays() -> dict:
    rng = np.random.default_rng(0)
    return {
        "inputs": rng.random((3, 8, 2)),
        "outputs": rng.random((3, 8, 1)),
        "dt_ms": np.float64(0.25),
        "input_names": np.array(["i0", "i1"]),
        "output_names": np.array(["o0"]),
    }


def test_npz_import_with_optional_fields(tmp_path) -> None:
    arrays = _npz_arrays()
    arrays.update(
        families=np.array(["step", "sine", "step"]),
        split=np.array([0, 1, 2]),
        output_units=np.array("mV"),
        input_units=np.array("pA"),
    )
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    ds = import_npz(path)
    np.testing.assert_allclose(ds.inputs, arrays["inputs"], rtol=1e-6)
    assert ds.dt_ms == 0.25
    assert ds.input_names == ("i0", "i1") and ds.output_names == ("o0",)
    assert ds.families == ("step", "sine", "step")
    np.testing.assert_array_equal(ds.split, [0, 1, 2])
    assert ds.input_units == "pA"


def test_npz_missing_array(tmp_path) -> None:
    arrays = _npz_arrays()
    del arrays["dt_ms"]
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(DatasetError, match="lacks array\\(s\\) dt_ms"):
        import_npz(tmp_path / "d.npz")


def test_npz_bad_shapes_and_pickled_objects(tmp_path) -> None:
    arrays = _npz_arrays()
    arrays["output_names"] = np.array(["o0", "o1"])
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(DatasetError, match=r"d\.npz: .*names do not match"):
        import_npz(tmp_path / "d.npz")
    arrays = _npz_arrays()
    arrays["input_names"] = np.array(["i0", None], dtype=object)
    np.savez(tmp_path / "o.npz", **arrays)
    with pytest.raises(DatasetError, match="not a readable NPZ"):
        import_npz(tmp_path / "o.npz")


def test_npz_missing_and_garbage_files(tmp_path) -> None:
    with pytest.raises(DatasetError, match="NPZ file not found"):
        import_npz(tmp_path / "none.npz")
    (tmp_path / "g.npz").write_bytes(b"\x00garbage" * 20)
    with pytest.raises(DatasetError, match="not a readable NPZ"):
        import_npz(tmp_path / "g.npz")
    np.save(tmp_path / "single.npy", np.arange(3))
    with pytest.raises(DatasetError, match="single array, not an NPZ"):
        import_npz(tmp_path / "single.npy")
