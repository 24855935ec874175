"""Folder locks: one writing command per run, experiment or sweep folder (issue 15, item 3).

A second ``train``/``evaluate``/``experiment run``/``sweep`` on a folder another process is
writing exits 2 at once with one line naming the holder; the lock of a killed process is stale
and taken over (resume after ``kill -9`` works); nested locks (an experiment and its cells, in
worker processes) never block each other.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from neuroreduce.locks import HOLDER_FILE, LOCK_FILE, FolderBusyError, folder_lock, read_holder

TAIL = "wait for it or use another -o"


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("neuroreduce")
    if script.is_file():
        return [str(script)]
    found = shutil.which("neuroreduce")
    if found is None:
        pytest.skip("the neuroreduce command is not installed")
    return [found]


def _run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "1000", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run([*_cli(), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env, check=False)


def _wait_for(condition, what: str, *, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _assert_refused(done: subprocess.CompletedProcess[str], folder: str, pid: int) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert f"{folder} is being written by process {pid} (" in lines[0]
    assert lines[0].endswith(TAIL) and "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def toy_h5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from neuroreduce.pipeline import simulate

    path = tmp_path_factory.mktemp("lockdata") / "d.h5"
    simulate("toy", n_stimuli=6, dt_out_ms=2.0, seed=0, out=path, progress=False)
    return path


@pytest.fixture()
def holder(tmp_path: Path) -> Iterator[callable]:
    """Start a process that holds ``folder_lock(folder)`` until the test ends; returns its pid."""
    procs: list[subprocess.Popen[str]] = []

    def hold(folder: Path) -> int:
        code = ("import sys, time\nfrom neuroreduce.locks import folder_lock\n"
                "with folder_lock(sys.argv[1], command='holder'):\n"
                "    print('ready', flush=True)\n    time.sleep(300)\n")
        proc = subprocess.Popen([sys.executable, "-c", code, str(folder)],
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        return proc.pid

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ----------------------------------------------------------------------------------- train
@pytest.mark.slow
def test_two_trains_into_one_folder_the_second_is_refused_and_kill_9_then_resume_works(
    toy_h5: Path, tmp_path: Path
) -> None:
    """The issue's case: two ``train`` commands into one ``-o`` (different settings) both wrote
    the folder; now the second exits 2 naming the first. After ``kill -9`` of the first, its
    lock is stale and the same command resumes from its checkpoint."""
    from neuroreduce.pipeline import train_from_file
    from neuroreduce.training import TrainConfig
    from neuroreduce.training import checkpoint as ckpt

    run = tmp_path / "run"
    first = subprocess.Popen(
        [*_cli(), "train", str(toy_h5), "-o", "run", "--epochs", "100000", "--seeds", "1",
         "--hidden", "2", "--batch-size", "4", "--train-option", "checkpoint_every=1",
         "--train-option", "threads=1"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: read_holder(run).get("pid") == first.pid, "the first train's lock")
        second = _run_cli("train", str(toy_h5), "-o", "run", "--epochs", "3", "--seeds", "2",
                          "--hidden", "3", cwd=tmp_path)
        _assert_refused(second, "run", first.pid)
        _assert_refused(_run_cli("evaluate", "run", cwd=tmp_path), "run", first.pid)
        _wait_for(lambda: (run / ckpt.STATE_FILE).is_file(), "the first train's checkpoint",
                  timeout=300)
        assert json.loads((run / ckpt.CONFIG_FILE).read_text())["train"]["hidden"] == 2
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert (run / LOCK_FILE).exists() or (run / HOLDER_FILE).exists()  # left by the killed one
    assert read_holder(run) == {}  # its process is gone: stale
    epoch = int(ckpt.load_state(run)["epoch"])
    config = TrainConfig(model="gru", hidden=2, seeds=(0,), epochs=epoch + 2, batch_size=4)
    result = train_from_file(toy_h5, config, run, progress=False)
    assert result.epochs_done == epoch + 2
    provenance = json.loads((run / "provenance.json").read_text())
    assert provenance["resumed"][-1]["from_epoch"] == epoch
    assert not (run / HOLDER_FILE).exists()


def test_a_stale_lock_of_a_dead_process_is_taken_over(toy_h5: Path, tmp_path: Path) -> None:
    """A folder holding only a dead process's lock files counts as empty and is trained into."""
    from neuroreduce.pipeline import train_from_file
    from neuroreduce.training import TrainConfig

    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).write_text("")
    (run / HOLDER_FILE).write_text(json.dumps({
        "pid": _dead_pid(), "host": os.uname().nodename, "command": "neuroreduce train",
        "started": "2026-01-01T00:00:00+00:00"}))
    assert read_holder(run) == {}
    config = TrainConfig(model="gru", hidden=2, seeds=(0,), epochs=1, batch_size=4)
    result = train_from_file(toy_h5, config, run, progress=False)
    assert result.epochs_done == 1 and (run / "model.safetensors").is_file()
    assert not (run / HOLDER_FILE).exists()


def test_locks_nest_within_a_process_and_cover_their_own_folder_only(
    tmp_path: Path, holder
) -> None:
    parent = tmp_path / "exp"
    with folder_lock(parent):
        assert read_holder(parent)["pid"] == os.getpid()
        with folder_lock(parent):  # re-entrant (train_from_file -> train)
            pass
        assert (parent / HOLDER_FILE).exists()
        with folder_lock(parent / "cells" / "a"):  # a cell under the experiment's lock
            assert read_holder(parent / "cells" / "a")["pid"] == os.getpid()
    assert not (parent / HOLDER_FILE).exists()  # the record goes with the holder
    assert not (parent / "cells" / "a").exists()  # created by the lock, left empty: removed
    pid = holder(tmp_path / "busy")
    with pytest.raises(FolderBusyError, match=rf"busy is being written by process {pid} "
                                              r"\(holder, started "):
        with folder_lock(tmp_path / "busy"):
            pass
    with folder_lock(tmp_path / "busy" / "cells" / "a"):  # a child of a held folder is free
        pass


def test_evaluate_does_not_create_a_missing_run_folder(tmp_path: Path) -> None:
    from neuroreduce.errors import NeuroreduceError
    from neuroreduce.pipeline import evaluate

    with pytest.raises(NeuroreduceError):
        evaluate(tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()


# ------------------------------------------------------------------------ experiment, sweep
EXPERIMENT = """
[experiment]
name = "locks"
seeds = 1

[datasets.toy]
scenario = "toy"
stimuli = 6
dt_out_ms = 2.0

[training]
epochs = 1
batch_size = 4

[[grid]]
datasets = ["toy"]
models = ["gru", "rnn"]
hidden = [2]
"""


def test_a_second_experiment_run_into_a_folder_being_written_is_refused(
    tmp_path: Path, holder
) -> None:
    (tmp_path / "exp.toml").write_text(EXPERIMENT)
    pid = holder(tmp_path / "out")
    done = _run_cli("experiment", "run", "exp.toml", "-o", "out", cwd=tmp_path)
    _assert_refused(done, "out", pid)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [HOLDER_FILE, LOCK_FILE]


def test_a_second_sweep_into_a_folder_being_written_is_refused(
    toy_h5: Path, tmp_path: Path, holder
) -> None:
    (tmp_path / "sweep.toml").write_text(
        f'[dataset]\npath = "{toy_h5}"\n\n[search]\nmodel = ["gru"]\nhidden = [2]\n'
        'epochs = 1\nbatch_size = 4\n\n[sweep]\ntrials = 1\nseeds_per_trial = 1\n'
        'pruner = "none"\n')
    pid = holder(tmp_path / "out")
    done = _run_cli("sweep", "sweep.toml", "-o", "out", cwd=tmp_path)
    _assert_refused(done, "out", pid)
    assert not (tmp_path / "out" / "sweep.db").exists()


@pytest.mark.slow
def test_an_experiment_with_two_workers_runs_under_its_lock(tmp_path: Path) -> None:
    """The parent holds the experiment folder's lock while worker processes train the cells
    in its subfolders (each under its own lock): no self-deadlock, nothing left behind."""
    from neuroreduce.execution import Backend
    from neuroreduce.experiments.runner import run_experiment

    (tmp_path / "exp.toml").write_text(EXPERIMENT)
    out = tmp_path / "out"
    run_experiment(tmp_path / "exp.toml", out, backend=Backend(kind="local", workers=2),
                   progress=False)
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert len(rows) == 2
    left = [p for p in out.rglob(".neuroreduce.*")]
    assert left == [] or all(p.name == LOCK_FILE for p in left)  # filelock 3 keeps lock files
    run_experiment(tmp_path / "exp.toml", out, progress=False)  # resume: every cell skipped


# ------------------------------------------------------------------- orphans (item 14)
def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_workers_die_with_a_parent_killed_by_kill_9(tmp_path: Path) -> None:
    """Workers orphaned by ``kill -9`` of the command went on training and writing (a cell's
    ``cell.json``) for seconds, into a folder a re-run now owns; now they exit with it."""
    from neuroreduce.locks import pid_alive

    code = ("from neuroreduce.execution import Backend, run_tasks\nimport time\n"
            "for _ in run_tasks(time.sleep, {'a': 60, 'b': 60}, "
            "Backend(kind='local', workers=2), progress=False):\n    pass\n")
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path)
    try:
        def workers() -> list[int]:
            return [p for p in _children(parent.pid)
                    if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
        _wait_for(lambda: len(workers()) >= 2, "two workers", timeout=120)
        time.sleep(1.0)  # let them start their tasks
        orphans = workers()
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    try:
        _wait_for(lambda: not any(pid_alive(p) and _is_live(p) for p in orphans),
                  "the orphaned workers to exit", timeout=5)
    finally:
        for pid in orphans:  # survivors only (a pid, once free, may be someone else's)
            with contextlib.suppress(OSError):
                if _is_live(pid) and b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)


def _is_live(pid: int) -> bool:
    """Alive and not a zombie waiting for its (new) parent to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
