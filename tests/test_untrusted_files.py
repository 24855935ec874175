"""Files the tool does not trust: datasets whose arrays live outside the file (external storage,
virtual datasets, external and soft links) are refused before anything is read; a network cache
entry whose generated files changed after it was built is refused before it is run; `experiment
show` prints the resolved paths an experiment file chooses."""

from __future__ import annotations

import json
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


def _unread_external_link(f, tmp_path):
    """An entry no loader reads still must not make anything open another file."""
    other = _other_file(tmp_path, "x", np.zeros(3))
    f.create_group("junk")["deep"] = h5py.ExternalLink(str(other), "/x")


def _cycle_then_external(f, tmp_path):
    g = f.create_group("a")
    g["back"] = g  # a hard-link cycle: the walk must end
    inner = g.create_group("b")
    inner["loop"] = f["a"]
    arr = f["inputs"][()]
    raw = tmp_path / "raw.bin"
    raw.write_bytes(arr.tobytes())
    inner.create_dataset("x", shape=arr.shape, dtype=arr.dtype,
                         external=[(str(raw), 0, arr.nbytes)])


HOSTILE = {
    "external storage": (_external_storage, "'inputs' is stored in external file"),
    "external storage of a field": (_external_field, "'fields/t/values' is stored in external"),
    "virtual dataset": (_virtual, "'inputs' is a virtual dataset"),
    "external link": (_external_link, "'outputs' is an external link to"),
    "external fields group": (_external_fields_group, "'fields' is an external link"),
    "soft link to another file": (_soft_link_through_external,
                                  "'split' is a soft link|'elsewhere' is an external link"),
    "external link under any name": (_unread_external_link, "'junk/deep' is an external link"),
    "external storage under a cycle": (_cycle_then_external, "is stored in external file"),
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


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_an_external_link_to_a_fifo_is_refused_without_opening_it(tmp_path) -> None:
    """Nothing may open a linked file before the check (opening a FIFO would hang)."""
    import subprocess
    import sys

    path = _saved(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with h5py.File(path, "a") as f:
        f["junk"] = h5py.ExternalLink(str(fifo), "/")
    script = (
        "import sys\nfrom neuroreduce.datasets.io import load_dataset\n"
        "from neuroreduce.datasets.streaming import StreamingDataset\n"
        "from neuroreduce.errors import DatasetError\n"
        "for opener in (load_dataset, StreamingDataset):\n"
        "    try:\n        opener(sys.argv[1])\n    except DatasetError as exc:\n"
        "        print(exc)\n"
    )
    run = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.count("'junk' is an external link") == 2, run.stdout


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


# ---------------------------------------------------------------- the c302 network cache


def _fake_build(calls: list[Path]):
    """A stand-in for the ~20 s c302 build: network.py, a .hoc template and a "library"."""

    def build(spec, folder, *, log):
        calls.append(folder)
        (folder / "network.py").write_text("class NeuronSimulation:\n    pass\n")
        (folder / "GenericNeuronCell.hoc").write_text("begintemplate X\nendtemplate X\n")
        (folder / "x86_64").mkdir()
        (folder / "x86_64" / "libnrnmech.so").write_bytes(b"\x7fELF compiled mechanisms")
        (folder / "x86_64" / "Leak.o").write_bytes(b"not run")
        return {"timings": {}, "cells": ["AVBL"], "synapses": []}

    return build


@pytest.fixture
def fake_entry(tmp_path, monkeypatch):
    from neuroreduce.simulators import c302_build

    calls: list[Path] = []
    monkeypatch.setattr(c302_build, "_build_into", _fake_build(calls))
    built = c302_build.ensure_built(c302_build.BuildSpec(parameter_set="C0"), cache_dir=tmp_path)
    return built, calls


def test_a_cache_entry_records_the_hashes_of_the_files_it_runs(fake_entry) -> None:
    import hashlib

    from neuroreduce.simulators.c302_build import ENTRY_HASHES, verify_entry

    built, _ = fake_entry
    record = json.loads((built.path / "build.json").read_text())[ENTRY_HASHES]
    assert sorted(record) == ["GenericNeuronCell.hoc", "network.py", "x86_64/libnrnmech.so"]
    for rel, digest in record.items():
        assert hashlib.sha256((built.path / rel).read_bytes()).hexdigest() == digest
    assert verify_entry(built)["network.py"] == (built.path / "network.py").read_bytes()


@pytest.mark.parametrize("changed", ["network.py", "GenericNeuronCell.hoc",
                                     "x86_64/libnrnmech.so"])
def test_a_changed_cache_entry_is_refused_before_it_runs(fake_entry, tmp_path, changed) -> None:
    from neuroreduce.errors import DependencyError
    from neuroreduce.simulators.c302_build import load_network

    built, _ = fake_entry
    marker = tmp_path / "ran"
    if changed == "network.py":  # code that would show it ran
        (built.path / changed).write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    else:
        with (built.path / changed).open("ab") as f:
            f.write(b"\n// tampered")
    with pytest.raises(DependencyError) as info:
        load_network(built)
    text = str(info.value)
    assert "\n" not in text and changed in text and f"delete {built.path} to rebuild it" in text
    assert not marker.exists()


def test_a_missing_file_or_record_is_refused(fake_entry) -> None:
    from dataclasses import replace

    from neuroreduce.errors import DependencyError
    from neuroreduce.simulators.c302_build import ENTRY_HASHES, load_network, verify_entry

    built, _ = fake_entry
    unrecorded = replace(built, info={k: v for k, v in built.info.items() if k != ENTRY_HASHES})
    with pytest.raises(DependencyError, match="no valid file hashes; delete .* to rebuild"):
        load_network(unrecorded)
    (built.path / "GenericNeuronCell.hoc").unlink()
    with pytest.raises(DependencyError, match="lacks GenericNeuronCell.hoc; delete"):
        verify_entry(built)


def test_an_entry_without_hashes_or_with_a_corrupt_build_json_is_rebuilt(fake_entry) -> None:
    from neuroreduce.simulators import c302_build

    built, calls = fake_entry
    info = json.loads((built.path / "build.json").read_text())
    del info[c302_build.ENTRY_HASHES]  # as written by neuroreduce before the hashes
    (built.path / "build.json").write_text(json.dumps(info))
    again = c302_build.ensure_built(built.spec, cache_dir=built.path.parent.parent)
    assert len(calls) == 2 and c302_build.ENTRY_HASHES in again.info
    good = json.loads((built.path / "build.json").read_text())
    broken = ["[1, 2", "[1, 2]", json.dumps({**good, "cells": "AVBL"}),
              json.dumps({**good, "synapses": [["a", "b", "c", "1"]]}),
              json.dumps({**good, c302_build.ENTRY_HASHES: {"../../x": "0" * 64}})]
    for n, text in enumerate(broken, start=3):
        (built.path / "build.json").write_text(text)
        c302_build.ensure_built(built.spec, cache_dir=built.path.parent.parent)
        assert len(calls) == n, text
    c302_build.verify_entry(c302_build.ensure_built(built.spec,
                                                    cache_dir=built.path.parent.parent))
    assert len(calls) == 2 + len(broken)


def test_a_record_pointing_outside_the_entry_is_refused(fake_entry) -> None:
    from dataclasses import replace

    from neuroreduce.errors import DependencyError
    from neuroreduce.simulators.c302_build import ENTRY_HASHES, verify_entry

    built, _ = fake_entry
    outside = {**built.info[ENTRY_HASHES], "../elsewhere/x86_64/libnrnmech.so": "0" * 64}
    with pytest.raises(DependencyError, match="no valid file hashes"):
        verify_entry(replace(built, info={**built.info, ENTRY_HASHES: outside}))


@pytest.mark.slow
def test_a_real_build_is_verified_and_loads_and_a_changed_library_is_refused(tmp_path) -> None:
    """One real (~20 s) c302 build of two neurons; loaded in a fresh process (NEURON holds one
    set of mechanisms per process)."""
    import subprocess
    import sys

    pytest.importorskip("c302")
    from neuroreduce.errors import DependencyError
    from neuroreduce.simulators.c302_build import BuildSpec, ensure_built, load_network

    spec = BuildSpec(parameter_set="C0", cells=("AVBL", "VB1"))
    try:
        built = ensure_built(spec, cache_dir=tmp_path)
    except DependencyError as exc:
        pytest.skip(f"c302 tools unavailable: {exc}")
    assert any(rel.endswith("/libnrnmech.so") for rel in built.info["files_sha256"])
    script = (
        "from neuroreduce.simulators.c302_build import BuildSpec, ensure_built, load_network\n"
        f"b = ensure_built(BuildSpec(parameter_set='C0', cells=('AVBL', 'VB1')), "
        f"cache_dir={str(tmp_path)!r})\n"
        "h, net = load_network(b)\nprint('sections', len(list(h.allsec())))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "sections 2" in run.stdout
    library = next(built.path.glob("*/libnrnmech.so"))
    library.write_bytes(library.read_bytes() + b"\0")
    with pytest.raises(DependencyError, match=f"{library.parent.name}/libnrnmech.so does not"):
        load_network(built)


# ---------------------------------------------------------------- experiment files choose paths

EXPERIMENT = """
[experiment]
name = "paths"
seeds = 1
data_dir = "../shared"

[datasets.toy]
scenario = "toy"
stimuli = 4
dt_out_ms = 1.0
seed = 0

[datasets.given]
path = "link/given.h5"
role = "test"

[training]
epochs = 1

[[grid]]
datasets = ["toy"]
models = ["gru"]
hidden = [4]
"""


def test_experiment_show_prints_every_path_resolved(tmp_path) -> None:
    from typer.testing import CliRunner

    from neuroreduce.cli import app

    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    (tmp_path / "exp.toml").write_text(EXPERIMENT)
    result = CliRunner().invoke(app, ["experiment", "show", str(tmp_path / "exp.toml"),
                                      "-o", str(tmp_path / "link" / "out")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    resolved = os.path.realpath(real)
    assert f"output folder: {resolved}/out" in lines
    assert f"data cache: {resolved}/shared" in lines
    assert any(ln.startswith(f"dataset toy: {resolved}/shared/toy-") for ln in lines)
    assert f"dataset given (given path): {resolved}/given.h5" in lines
