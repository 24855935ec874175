"""Folder locks: one writing command per run, experiment or sweep folder at a time.

Every command that writes a folder holds that folder's lock while it works: ``train`` (and
:func:`neuroreduce.training.train` with an ``out_dir``) and ``evaluate`` the run folder,
``experiment run`` the experiment (and suite) folder, ``sweep`` the sweep folder. The lock is
taken without waiting; a second command on the same folder fails at once with one line (a
:class:`FolderBusyError`, exit status 2 in the CLI)::

    runs/x is being written by process 4242 (neuroreduce train d.h5 -o runs/x, started
    2026-11-29T13:50:02+00:00); wait for it or use another -o

Mechanism: ``<folder>/.neuroreduce.lock`` is an exclusive, non-blocking :mod:`filelock` lock
(``flock`` on POSIX), and ``<folder>/.neuroreduce.holder.json`` records who holds it (pid,
host, command, start time) for that message. The operating system drops the lock when its
process ends, however it ends, so the lock of a process killed with ``kill -9`` is stale by
construction: the next command takes it over (and overwrites the old record), and resuming an
interrupted run just works. The record is removed on release (the lock file is kept: removing
it could let two processes lock two files of one name); a folder that this lock created and that
holds nothing else is removed with it. Folder checks ignore both files (:data:`LOCK_FILES`).

Nesting: a lock covers its own folder, not its subfolders. An experiment holds its folder's
lock while each grid cell (in this process or in a worker process) trains under the lock of its
own run folder ``cells/<key>/`` -- another file, so the parent never blocks its workers, and a
second command training into a cell folder is refused while that cell trains. Within one
process the lock is re-entrant (``train_from_file`` holds it and calls ``train``, which takes
it again).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import socket
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from neuroreduce._io import remove_stale_temporaries
from neuroreduce.errors import CheckpointError

LOCK_FILE = ".neuroreduce.lock"
HOLDER_FILE = ".neuroreduce.holder.json"
#: Names a folder lock leaves in a folder (ignored when a folder is checked for other files).
LOCK_FILES = frozenset({LOCK_FILE, HOLDER_FILE})

#: Folders this process holds: resolved path -> nesting depth.
_HELD: dict[str, int] = {}


class FolderBusyError(CheckpointError):
    """Another process holds the lock of a folder this command would write.

    Attributes:
        folder: The folder.
        holder: The holder's record (``pid``, ``host``, ``command``, ``started``), or ``{}``
            when it could not be read.
    """

    def __init__(self, folder: Path, holder: dict[str, Any]) -> None:
        self.folder = folder
        self.holder = dict(holder)
        if holder:
            where = "" if holder.get("host") == socket.gethostname() else \
                f" on {holder.get('host')}"
            who = (f"process {holder.get('pid')}{where} ({holder.get('command')}, started "
                   f"{holder.get('started')})")
        else:
            who = "another process"
        super().__init__(f"{folder} is being written by {who}; wait for it or use another -o")


def other_files(folder: Path) -> list[Path]:
    """The entries of ``folder`` other than its lock files (``[]`` for a missing folder).

    Temporaries left by dead writers are removed first (:func:`remove_stale_temporaries`).
    """
    if not folder.is_dir():
        return []
    remove_stale_temporaries(folder, force=True)
    return [p for p in folder.iterdir() if p.name not in LOCK_FILES]


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike[str], *, command: str | None = None) -> Iterator[None]:
    """Hold the write lock of ``folder`` (created if missing) for the ``with`` block.

    Args:
        folder: The run, experiment or sweep folder.
        command: What the holder is doing, shown to a refused second command (default: this
            process's command line).

    Raises:
        FolderBusyError: at once, if another process holds the lock.

    A ``folder`` that exists but is not a folder is left alone (nothing is locked): the caller's
    own check then reports it in its words.
    """
    from filelock import FileLock, Timeout

    path = Path(folder)
    if path.exists() and not path.is_dir():
        yield
        return
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    key = str(path.resolve())
    if key in _HELD:  # this process holds it already: nest
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    lock = FileLock(str(path / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if created:
            _remove_if_empty(path)
        raise FolderBusyError(path, read_holder(path)) from None
    _HELD[key] = 1
    try:
        _write_holder(path, command)
        yield
    finally:
        del _HELD[key]
        with contextlib.suppress(OSError):
            if read_holder(path).get("pid") == os.getpid():
                (path / HOLDER_FILE).unlink()
        lock.release()
        if created and not other_files(path):  # a folder made for nothing: leave no trace
            with contextlib.suppress(OSError):
                (path / LOCK_FILE).unlink(missing_ok=True)
            _remove_if_empty(path)


def read_holder(folder: Path) -> dict[str, Any]:
    """The holder record of ``folder``'s lock; ``{}`` if missing, unreadable, or its process is
    gone from this host (then the record is stale: the holder has not written its own yet)."""
    try:
        holder = json.loads((folder / HOLDER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(holder, dict) or not isinstance(holder.get("pid"), int):
        return {}
    if holder.get("host") == socket.gethostname() and not pid_alive(holder["pid"]):
        return {}
    return holder


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else
    return True


def _write_holder(folder: Path, command: str | None) -> None:
    from neuroreduce._io import write_json_atomic

    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": _shorten(command if command is not None else _command_line()),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_json_atomic(folder / HOLDER_FILE, record)


def _command_line() -> str:
    argv = list(sys.argv) or ["python"]
    argv[0] = Path(argv[0]).name or "python"
    return shlex.join(argv)


def _shorten(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()
