"""Files the tool does not trust: datasets whose arrays live outside the file (external storage,
virtual datasets, external and soft links) are refused before anything is read; a network cache
entry whose generated files changed after it was built is refused before it is run; `experiment
show` prints the resolved paths an experiment file chooses."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.fields import Field, FieldSpec
from neuroreduce.datasets.io import load_dataset, save_dataset
from neuroreduce.datasets.streaming import StreamingDataset
from neuroreduce.errors import DatasetError

N, T = 2, 6


def _dataset(inputs: np.ndarray | None = None) -> Dataset:
    """A small dataset with one typed target field (``fields/t/values``)."""
    x = np.arange(N * T, dtype=np.float32).reshape(N, T, 1) if inputs is None else inputs
    n, t = x.shape[:2]
    target = Field(FieldSpec("t", "target", "continuous", channels=("c",)),
                   np.ones((n, t, 1), np.float32))
    return Dataset(inputs=x, outputs=np.zeros((n, t, 1), np.float32), dt_ms=1.0,
                   input_names=("i",), output_names=("o",), split=np.array([0, 1] * (n // 2)),
                   fields=(target,))


def _saved(tmp_path: Path, inputs: np.ndarray | None = None) -> Path:
    path = tmp_path / "data.h5"
    save_dataset(_dataset(inputs), path)
    return path


def _external(f: h5py.File, name: str, raw: Path) -> None:
    """Replace array ``name`` by one of HDF5 external storage in ``raw`` (same bytes)."""
    arr = f[name][()]
    raw.write_bytes(arr.tobytes())
    del f[name]
    f.create_dataset(name, shape=arr.shape, dtype=arr.dtype,
                     external=[(str(raw), 0, arr.nbytes)])


def _other_file(tmp_path: Path, name: str, arr: np.ndarray) -> Path:
    other = tmp_path / "other.h5"
    with h5py.File(other, "a") as g:
        g.create_dataset(name, data=arr)
    return other


def _external_storage(f, tmp_path):
    _external(f, "inputs", tmp_path / "raw.bin")


def _external_field(f, tmp_path):
    _external(f, "fields/t/values", tmp_path / "raw.bin")


def _virtual(f, tmp_path):
    arr = f["inputs"][()]
    other = _other_file(tmp_path, "inputs", arr)
    layout = h5py.VirtualLayout(shape=arr.shape, dtype=arr.dtype)
    layout[...] = h5py.VirtualSource(str(other), "inputs", shape=arr.shape)
    del f["inputs"]
    f.create_virtual_dataset("inputs", layout)


def _external_link(f, tmp_path):
    other = _other_file(tmp_path, "outputs", f["outputs"][()])
    del f["outputs"]
    f["outputs"] = h5py.ExternalLink(str(other), "/outputs")


def _external_fields_group(f, tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as g:
        f.copy(f["fields"], g, "fields")
    del f["fields"]
    f["fields"] = h5py.ExternalLink(str(other), "/fields")


def _soft_link_through_external(f, tmp_path):
    other = _other_file(tmp_path, "split", f["split"][()])
    f["elsewhere"] = h5py.ExternalLink(str(other), "/")
    del f["split"]
    f["split"] = h5py.SoftLink("/elsewhere/split")


HOSTILE = {
    "external storage": (_external_storage, "'inputs' is stored in external file"),
    "external storage of a field": (_external_field, "'fields/t/values' is stored in external"),
    "virtual dataset": (_virtual, "'inputs' is a virtual dataset"),
    "external link": (_external_link, "'outputs' is an external link to"),
    "external fields group": (_external_fields_group, "'fields' is an external link"),
    "soft link to another file": (_soft_link_through_external, "'split' is a soft link"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_arrays_stored_outside_the_file_are_refused(tmp_path, case) -> None:
    craft, message = HOSTILE[case]
    path = _saved(tmp_path)
    with h5py.File(path, "a") as f:
        craft(f, tmp_path)
    # the crafted file holds the same bytes, so its content hash is still valid
    for opener in (load_dataset, StreamingDataset):
        with pytest.raises(DatasetError, match=message) as info:
            opener(path)
        text = str(info.value)
        assert "\n" not in text and "not stored inside the file" in text and str(path) in text


def test_control_files_without_external_storage_load(tmp_path) -> None:
    path = _saved(tmp_path)
    loaded = load_dataset(path)
    assert loaded.content_hash() == _dataset().content_hash()
    with StreamingDataset(path) as ds:
        assert ds.n_trials == N and ds.extra_specs[0].name == "t"
    # a hard link inside the file is still "inside" (save_dataset writes none, but it is harmless)
    with h5py.File(path, "a") as f:
        f["copy_of_split"] = f["split"]
    assert load_dataset(path).content_hash() == loaded.content_hash()


@pytest.mark.skipif(not Path("/etc/passwd").is_file(), reason="needs /etc/passwd")
def test_a_dataset_cannot_read_etc_passwd_as_training_inputs(tmp_path) -> None:
    """The issue's exploit: inputs mapped onto /etc/passwd with a recomputed, valid hash."""
    size = Path("/etc/passwd").stat().st_size
    t = size // (4 * N)
    if t < 2:
        pytest.skip("/etc/passwd is too small")
    stolen = np.fromfile("/etc/passwd", dtype="<f4", count=N * t).reshape(N, t, 1)
    if not np.isfinite(stolen).all():
        pytest.skip("/etc/passwd does not read as finite float32")
    path = tmp_path / "data.h5"
    save_dataset(_dataset(np.zeros_like(stolen)), path)
    with h5py.File(path, "a") as f:
        del f["inputs"]
        f.create_dataset("inputs", shape=stolen.shape, dtype="<f4",
                         external=[("/etc/passwd", 0, stolen.nbytes)])
        f.attrs["content_hash"] = _dataset(stolen).content_hash()  # the hash load checks
    with pytest.raises(DatasetError, match=r"'inputs' is stored in external file\(s\) /etc/passwd"):
        load_dataset(path)
    with pytest.raises(DatasetError, match="/etc/passwd"):
        StreamingDataset(path)
    assert os.path.getsize(path) < size + 100_000  # nothing was copied in
