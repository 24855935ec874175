"""Hostile output paths (issue 15, items 1, 2, 4, 5, 13): one line and exit 2, nothing destroyed.

Device nodes and the full-disk / read-only tmpfs cases need root and are skipped otherwise.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from neuroreduce._io import (
    TEMP_PATTERN,
    atomic_path,
    remove_stale_temporaries,
    write_bytes_atomic,
    write_text_atomic,
)
from neuroreduce.cli import app
from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.io import load_dataset, save_dataset
from neuroreduce.errors import DatasetError, OutputError
from neuroreduce.training import checkpoint as ckpt

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod, mount)")


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def one_line_error(r, *words: str) -> str:
    """Assert exit status 2 with a single error line (no traceback) that contains ``words``."""
    text = r.output.strip()
    assert r.exit_code == 2, r.output
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    for word in words:
        assert word in text, text
    return text


def _dataset(n: int = 12, t: int = 40, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(n, t, 3)).astype(np.float32)
    y = (rng.normal(size=(n, t, 2)) - 60).astype(np.float32)
    split = np.array(([0] * 8 + [1] * 2 + [2] * 2) * (n // 12))
    return Dataset(u, y, 0.5, ("a", "b", "c"), ("p", "q"), split=split)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    save_dataset(_dataset(), folder / "d.h5")
    out = folder / "run"
    r = invoke("train", folder / "d.h5", "--seeds", 1, "--epochs", 1, "--hidden", 3, "-o", out)
    assert r.exit_code == 0, r.output
    assert invoke("evaluate", out).exit_code == 0
    return out


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ------------------------------------------------------------ 1: special files and symlinks
def test_fifo_socket_and_folder_targets_are_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    sock_path = tmp_path / "sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    try:
        for target, kind in ((fifo, "FIFO"), (sock_path, "socket"), (tmp_path, "folder")):
            with pytest.raises(OutputError, match=kind):
                write_text_atomic(target, "x")
    finally:
        sock.close()
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and stat.S_ISSOCK(os.lstat(sock_path).st_mode)
    r = invoke("simulate", "toy", "--stimuli", 3, "-o", fifo)
    one_line_error(r, str(fifo), "FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@root_only
def test_device_target_is_refused_and_kept(tmp_path: Path) -> None:
    dev = tmp_path / "null"
    try:
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:  # root without CAP_MKNOD (some containers)
        pytest.skip("cannot create device nodes here")
    r = invoke("simulate", "toy", "--stimuli", 3, "-o", dev)
    one_line_error(r, str(dev), "device")
    assert stat.S_ISCHR(os.lstat(dev).st_mode)
    with pytest.raises(DatasetError, match="device"):
        save_dataset(_dataset(), dev)
    assert stat.S_ISCHR(os.lstat(dev).st_mode)


def test_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "precious.txt"
    outside.write_text("keep")
    folder = tmp_path / "out"
    folder.mkdir()
    link = folder / "x.h5"
    link.symlink_to(outside)
    r = invoke("simulate", "toy", "--stimuli", 3, "-o", link)
    one_line_error(r, str(link), "symbolic link")
    assert outside.read_text() == "keep" and link.is_symlink()


def test_symlink_inside_the_folder_writes_its_target(tmp_path: Path) -> None:
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to("real.txt")
    write_text_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    (tmp_path / "sub").mkdir()
    (tmp_path / "dirlink").symlink_to("sub")
    with pytest.raises(OutputError, match="not a regular file"):
        write_text_atomic(tmp_path / "dirlink", "x")


# ------------------------------------------------------------------ 2: output == an input
def test_import_onto_its_source_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "same.npz"
    rng = np.random.default_rng(0)
    np.savez(src, inputs=rng.normal(size=(4, 11, 3)), outputs=rng.normal(size=(4, 11, 2)),
             dt_ms=2.0, input_names=np.array(["a", "b", "c"]), output_names=np.array(["p", "q"]))
    before = src.read_bytes()
    r = invoke("import", "npz", src, "-o", src)
    one_line_error(r, "is the input")
    assert src.read_bytes() == before
    hard = tmp_path / "hard.h5"
    os.link(src, hard)
    one_line_error(invoke("import", "npz", src, "-o", hard), "is the input")
    assert src.read_bytes() == before


@pytest.mark.parametrize("name", ["model.safetensors", "config", "checkpoint/last.pt"])
def test_export_into_the_run_folders_files_is_refused(run_dir: Path, name: str) -> None:
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    r = invoke("export", run_dir, "--format", "torchscript", "-o", run_dir / name)
    one_line_error(r, "would overwrite")
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


# ------------------------------------------------------------------------ 4: full disk
@pytest.fixture
def tiny_tmpfs(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    mnt = tmp_path / "full"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(folder: Path) -> None:
    with open(folder / "filler", "wb") as fh, pytest.raises(OSError):
        while True:
            fh.write(b"\0" * 65536)
            fh.flush()


def test_full_disk_while_simulating_is_one_line(tiny_tmpfs: Path) -> None:
    r = invoke("simulate", "toy", "--stimuli", 1000, "-o", tiny_tmpfs / "x.h5")
    one_line_error(r, str(tiny_tmpfs / "x.h5"), "No space left")
    assert list(tiny_tmpfs.iterdir()) == []
    with pytest.raises(DatasetError, match="No space left"):
        save_dataset(_dataset(n=1200, t=200), tiny_tmpfs / "y.h5")
    assert list(tiny_tmpfs.iterdir()) == []


def test_full_disk_in_a_child_process_does_not_crash(tiny_tmpfs: Path) -> None:
    cmd = [sys.executable, "-c", "from neuroreduce.cli import app; app()", "simulate", "toy",
           "--stimuli", "1000", "-o", str(tiny_tmpfs / "x.h5")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and list(tiny_tmpfs.iterdir()) == []


def test_full_disk_for_checkpoint_results_and_report(tiny_tmpfs: Path, run_dir: Path) -> None:
    import shutil

    copy = tiny_tmpfs / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("report"))
    empty = tiny_tmpfs / "empty"
    empty.mkdir()
    _fill(tiny_tmpfs)
    with pytest.raises(OutputError, match="No space left"):
        ckpt.save_state(empty, {"epoch": 1, "weights": np.zeros(100_000)})
    with pytest.raises(OutputError, match="No space left"):
        write_text_atomic(empty / "results.json", "{}" * 100_000)
    one_line_error(invoke("evaluate", copy), "No space left")
    one_line_error(invoke("report", copy), "No space left")
    for fmt, name in (("torchscript", "m.pt"), ("onnx", "m.onnx")):  # torch aborted (exit 134)
        r = invoke("export", run_dir, "--format", fmt, "-o", tiny_tmpfs / name)
        one_line_error(r, str(tiny_tmpfs / name), "No space left")
    assert not list(tiny_tmpfs.rglob("*.tmp"))
    assert not [p for p in empty.rglob("*") if p.is_file()]


# ------------------------------------------------------------- 5: OSErrors in every command
def test_export_to_a_folder_is_one_line(run_dir: Path, tmp_path: Path) -> None:
    one_line_error(invoke("export", run_dir, "-o", tmp_path), str(tmp_path), "folder")


def test_sweep_into_a_file_is_one_line(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    r = invoke("sweep", ROOT / "experiments" / "sweeps" / "toy_tiny.toml", "-o", afile)
    one_line_error(r, str(afile))
    assert afile.read_text() == "x"


def test_demo_checks_its_folder_before_simulating(tmp_path: Path, monkeypatch) -> None:
    from neuroreduce import pipeline

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("the demo simulated before checking its output folder")

    monkeypatch.setattr(pipeline, "simulate", boom)
    monkeypatch.setenv("NEUROREDUCE_CACHE_DIR", str(tmp_path / "cache"))
    afile = tmp_path / "afile"
    afile.write_text("x")
    one_line_error(invoke("demo", "-o", afile), str(afile))
    one_line_error(invoke("demo", "-o", afile / "sub"), str(afile))


def test_report_over_a_file_named_report_is_one_line(run_dir: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    shutil.rmtree(run / "report", ignore_errors=True)
    (run / "report").write_text("in the way")
    one_line_error(invoke("report", run), "report")


def test_friendly_errors_turn_any_oserror_into_one_line(tmp_path: Path, monkeypatch) -> None:
    from neuroreduce import pipeline

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(tmp_path / "secret"))

    monkeypatch.setattr(pipeline, "simulate", denied)
    one_line_error(invoke("simulate", "toy", "-o", tmp_path / "x.h5"), "secret",
                   "Permission denied")


def test_read_only_folder_is_one_line(tmp_path: Path, run_dir: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() == 0:
        mount = ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)]
        if subprocess.run(mount).returncode:
            pytest.skip("cannot mount a read-only tmpfs")
    else:
        ro.chmod(0o500)
    try:
        one_line_error(invoke("simulate", "toy", "--stimuli", 3, "-o", ro / "x.h5"), str(ro))
        one_line_error(invoke("export", run_dir, "-o", ro / "m.pt", "--format", "torchscript"),
                       str(ro))
        one_line_error(invoke("train", ROOT / "nope.h5", "-o", ro / "run"))
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", str(ro)], check=False)
        else:
            ro.chmod(0o700)


# ------------------------------------------------------- 13: temporaries of dead writers
def test_temporaries_are_named_after_their_writer(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "x.json") as tmp:
        match = TEMP_PATTERN.match(tmp.name)
        assert match and int(match.group(1)) == os.getpid()
        tmp.write_text("{}")


def test_stale_temporaries_are_removed_on_the_next_write(tmp_path: Path) -> None:
    dead, alive = _dead_pid(), os.getpid()
    stale = tmp_path / f".results.json.{dead}-abc123.tmp"
    live = tmp_path / f".results.json.{alive}-def456.tmp"
    other = tmp_path / ".notes.tmp"
    for p in (stale, live, other):
        p.write_text("partial")
    write_bytes_atomic(tmp_path / "results.json", b"{}")
    assert not stale.exists() and live.exists() and other.exists()
    stale.write_text("partial")
    assert remove_stale_temporaries(tmp_path, force=True) == 1


def test_folder_of_stale_temporaries_does_not_block_training(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    dead = _dead_pid()
    (run / f".config.json.{dead}-x1y2z3.tmp").write_text("{")
    (run / f".model.safetensors.{dead}-a1b2c3.tmp").write_bytes(b"\0" * 10)
    ds_path = tmp_path / "d.h5"
    save_dataset(_dataset(), ds_path)
    r = invoke("train", ds_path, "--seeds", 1, "--epochs", 1, "--hidden", 3, "-o", run)
    assert r.exit_code == 0, r.output
    assert not list(run.rglob("*.tmp")) and (run / "model.safetensors").is_file()
    assert load_dataset(ds_path).n_trials == 12
