"""HDF5 dataset files (round trip, corruption, interrupted and failed writes) and splits."""

from __future__ import annotations

import errno
import json
from collections import Counter

import h5py
import numpy as np
import pytest

from neuroreduce.datasets import Dataset
from neuroreduce.datasets.io import SCHEMA_VERSION, load_dataset, save_dataset
from neuroreduce.datasets.splits import make_splits, split_counts, with_splits
from neuroreduce.errors import ConfigError, DatasetError
from neuroreduce.stimuli import list_families

FAMILIES = tuple(list_families()[i % len(list_families())] for i in range(12))


def _dataset(*, split: bool = True) -> Dataset:
    rng = np.random.default_rng(0)
    n = len(FAMILIES)
    return Dataset(
        inputs=rng.random((n, 21, 3)) * 0.005,
        outputs=-58.0 + rng.standard_normal((n, 21, 2)),
        dt_ms=0.5,
        input_names=("PLML", "PLMR", "AVBL"),
        output_names=("DB1", "VB1"),
        families=FAMILIES,
        stimulus_params=tuple(json.dumps({"trial": i, "name": "µ"}) for i in range(n)),
        split=make_splits(FAMILIES, seed=0) if split else None,
        provenance={"simulator": "toy", "settings": {"dt": 0.05, "cells": ["AVBL"]}},
    )


def _one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    return msg


# ------------------------------------------------------------------------- file round trip


@pytest.mark.parametrize("with_split", [True, False])
def test_round_trip_preserves_everything(tmp_path, with_split: bool) -> None:
    ds = _dataset(split=with_split)
    path = save_dataset(ds, tmp_path / "sub" / "data.h5")
    assert path.is_file()
    back = load_dataset(path)
    np.testing.assert_array_equal(back.inputs, ds.inputs)
    np.testing.assert_array_equal(back.outputs, ds.outputs)
    assert back.inputs.dtype == np.float32
    assert back.dt_ms == ds.dt_ms
    assert back.input_names == ds.input_names and back.output_names == ds.output_names
    assert (back.input_units, back.output_units) == ("nA", "mV")
    assert back.families == ds.families
    assert back.stimulus_params == ds.stimulus_params
    if with_split:
        np.testing.assert_array_equal(back.split, ds.split)
    else:
        assert back.split is None
    assert back.content_hash() == ds.content_hash()
    for key, value in ds.provenance.items():
        assert back.provenance[key] == value
    assert back.provenance["neuroreduce_version"]
    assert back.provenance["created_utc"].startswith("20")
    assert sorted(p.name for p in path.parent.iterdir()) == ["data.h5"]


def test_file_layout_matches_documented_schema(tmp_path) -> None:
    path = save_dataset(_dataset(), tmp_path / "d.h5")
    with h5py.File(path, "r") as f:
        assert f["inputs"].dtype == np.float32 and f["inputs"].shape == (12, 21, 3)
        assert f["inputs"].chunks == (1, 21, 3)
        assert f["split"].dtype == np.int8
        assert list(f["output_names"].asstr()[()]) == ["DB1", "VB1"]
        assert f.attrs["schema_version"] == SCHEMA_VERSION
        assert f.attrs["content_hash"] == _dataset().content_hash()
        assert json.loads(f.attrs["provenance"])["simulator"] == "toy"


def test_saving_again_is_stable(tmp_path) -> None:
    first = load_dataset(save_dataset(_dataset(), tmp_path / "a.h5"))
    second = load_dataset(save_dataset(first, tmp_path / "b.h5"))
    assert second.provenance == first.provenance
    assert second.content_hash() == first.content_hash()


# ------------------------------------------------------------------------- bad files


def test_missing_file(tmp_path) -> None:
    with pytest.raises(DatasetError, match="dataset file not found.*neuroreduce simulate") as e:
        load_dataset(tmp_path / "nope.h5")
    _one_line_error(e)


def test_garbage_file(tmp_path) -> None:
    path = tmp_path / "garbage.h5"
    path.write_bytes(b"this is not hdf5\n" * 100)
    with pytest.raises(DatasetError, match="not a readable HDF5 file") as e:
        load_dataset(path)
    _one_line_error(e)


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_truncated_file(tmp_path, keep: float) -> None:
    path = save_dataset(_dataset(), tmp_path / "t.h5")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(DatasetError) as e:
        load_dataset(path)
    _one_line_error(e)


def test_file_missing_a_key(tmp_path) -> None:
    path = save_dataset(_dataset(), tmp_path / "k.h5")
    with h5py.File(path, "r+") as f:
        del f["outputs"]
    with pytest.raises(DatasetError, match="lacks outputs") as e:
        load_dataset(path)
    _one_line_error(e)


def test_wrong_schema_version(tmp_path) -> None:
    path = save_dataset(_dataset(), tmp_path / "v.h5")
    with h5py.File(path, "r+") as f:
        f.attrs["schema_version"] = 99
    with pytest.raises(DatasetError, match="schema version 99"):
        load_dataset(path)


def test_foreign_hdf5_file(tmp_path) -> None:
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(DatasetError, match="not a neuroreduce dataset"):
        load_dataset(path)


def test_tampered_data_fails_hash_check(tmp_path) -> None:
    path = save_dataset(_dataset(), tmp_path / "h.h5")
    with h5py.File(path, "r+") as f:
        f["outputs"][3, 4, 1] += 1.0
    with pytest.raises(DatasetError, match="corrupt.*content hash"):
        load_dataset(path)


def test_tampered_metadata_fails_hash_check(tmp_path) -> None:
    path = save_dataset(_dataset(), tmp_path / "m.h5")
    with h5py.File(path, "r+") as f:
        f["families"][0] = "ramp"
    with pytest.raises(DatasetError, match="corrupt.*metadata"):
        load_dataset(path)


def test_random_byte_flips_give_dataset_error_or_identical_data(tmp_path) -> None:
    original = _dataset()
    data = save_dataset(original, tmp_path / "base.h5").read_bytes()
    rng = np.random.default_rng(0)
    outcomes = Counter()
    for _ in range(60):
        corrupted = bytearray(data)
        for pos in rng.integers(0, len(data), size=3):
            corrupted[pos] = int(rng.integers(0, 256))
        path = tmp_path / "flipped.h5"
        path.write_bytes(bytes(corrupted))
        try:
            back = load_dataset(path)
        except DatasetError:
            outcomes["error"] += 1
            continue
        outcomes["ok"] += 1
        assert back.content_hash() == original.content_hash()
        assert back.families == original.families
        assert back.stimulus_params == original.stimulus_params
    assert outcomes["error"] > 0


# ------------------------------------------------------------------------- failed writes


def _fail_on(monkeypatch, key: str, exc: BaseException) -> None:
    original = h5py.Group.create_dataset

    def create_dataset(self, name, *args, **kwargs):
        if name == key:
            raise exc
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", create_dataset)


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch) -> None:
    target = tmp_path / "i.h5"
    _fail_on(monkeypatch, "families", KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        save_dataset(_dataset(), target)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(target)


def test_interrupted_overwrite_keeps_old_file(tmp_path, monkeypatch) -> None:
    target = save_dataset(_dataset(split=False), tmp_path / "o.h5")
    _fail_on(monkeypatch, "split", KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        save_dataset(_dataset(split=True), target)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["o.h5"]
    assert load_dataset(target).split is None


def test_full_disk_raises_dataset_error_and_leaves_nothing(tmp_path, monkeypatch) -> None:
    target = tmp_path / "full.h5"
    _fail_on(monkeypatch, "outputs", OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(DatasetError, match="No space left on device") as e:
        save_dataset(_dataset(), target)
    _one_line_error(e)
    assert list(tmp_path.iterdir()) == []


def test_saving_onto_a_folder_is_refused(tmp_path) -> None:
    with pytest.raises(DatasetError, match="is a folder"):
        save_dataset(_dataset(), tmp_path)


# ------------------------------------------------------------------------- splits


def test_split_counts_match_fractions_for_40() -> None:
    families = [list_families()[i % 7] for i in range(40)]
    split = make_splits(families)
    assert split.dtype == np.int8
    assert split_counts(split) == {"train": 20, "valid": 10, "test": 10}


@pytest.mark.parametrize(
    "n,n_families,fractions",
    [(40, 7, (0.5, 0.25, 0.25)), (23, 4, (0.6, 0.2, 0.2)), (10, 3, (0.8, 0.2, 0.0))],
)
def test_splits_are_stratified_by_family(n: int, n_families: int, fractions) -> None:
    families = [f"f{i % n_families}" for i in range(n)]
    for seed in range(5):
        split = make_splits(families, fractions=fractions, seed=seed)
        totals = np.bincount(split, minlength=3)
        assert np.all(np.abs(totals - n * np.array(fractions)) < 1)
        for fam, m in Counter(families).items():
            idx = [i for i, f in enumerate(families) if f == fam]
            counts = np.bincount(split[idx], minlength=3)
            assert np.all(np.abs(counts - m * np.array(fractions)) < 1), (fam, counts)


def test_splits_are_deterministic_and_seeded() -> None:
    families = [f"f{i % 5}" for i in range(40)]
    a = make_splits(families, seed=1)
    np.testing.assert_array_equal(a, make_splits(families, seed=1))
    assert any(not np.array_equal(a, make_splits(families, seed=s)) for s in range(2, 6))


@pytest.mark.parametrize(
    "fractions",
    [(0.5, 0.5), (0.5, 0.3, 0.3), (1.2, -0.1, -0.1), (0.0, 0.5, 0.5), ("a", "b", "c")],
)
def test_bad_fractions_raise_config_error(fractions) -> None:
    with pytest.raises(ConfigError, match="fraction"):
        make_splits(["a"] * 8, fractions=fractions)


def test_with_splits_returns_new_dataset() -> None:
    ds = _dataset(split=False)
    out = with_splits(ds, fractions=(0.5, 0.25, 0.25), seed=3)
    assert ds.split is None
    assert len(out.indices("train")) == 6
    assert len(out.indices("valid")) == 3 and len(out.indices("test")) == 3
    np.testing.assert_array_equal(out.inputs, ds.inputs)
    assert make_splits([]).shape == (0,)
