"""Atomic file writing: write to a temporary file beside the target, then rename.

A crash, interrupt or full disk while writing never leaves a partial file under the final name.

What every atomic write guarantees (:func:`atomic_path` and the helpers built on it):

* The target is a new name or an existing regular file. A folder, device, FIFO or socket is
  refused with a one-line :class:`~neuroreduce.errors.OutputError` naming the path (writing
  ``-o /dev/null`` as root never replaces the system's ``/dev/null``).
* A symbolic link is followed only when it points to a regular file (or a new name) in the same
  folder as the link; the file it points to is replaced and the link kept. A link that leaves
  the folder, or points to anything else, is refused.
* Any ``OSError`` while writing (full disk, no permission, read-only file system, a file where a
  folder is expected) becomes one ``OutputError`` naming the path and the reason, and the
  temporary file is removed.
* Temporaries are named ``.<name>.<pid>-<random>.tmp`` after the writing process. Those left by
  a writer that no longer runs (killed with SIGKILL) are removed the next time a process writes
  into that folder (:func:`remove_stale_temporaries`).

Writers that produce bytes through a C library (HDF5, safetensors, torch) should build the bytes
in memory and hand them to :func:`write_bytes_atomic`, so that every disk write is a Python write
whose failure is an ``OSError`` (HDF5 crashes on a full disk while closing the file).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from neuroreduce.errors import OutputError

#: Name pattern of the temporaries :func:`atomic_path` creates; group 1 is the writer's pid.
TEMP_PATTERN = re.compile(r"^\..+\.(\d+)-[^.]+\.tmp$")
_cleaned: set[str] = set()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` on success.

    On any exception (including ``KeyboardInterrupt``) the temporary file is removed and the
    target is left untouched.

    Raises:
        OutputError: if the target may not be written (see the module docstring) or the
            write fails with an ``OSError``; the message names the path and the reason.
    """
    target = check_output_target(path)
    ensure_folder(target.parent)
    remove_stale_temporaries(target.parent)
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.{os.getpid()}-", suffix=".tmp", dir=target.parent
        )
    except OSError as exc:
        raise output_error(exc, target) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():  # mkstemp makes 0600 files; give them the usual umask permissions
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except OutputError:
        _discard(tmp)
        raise
    except OSError as exc:
        _discard(tmp)
        raise output_error(exc, target) from None
    except BaseException:
        _discard(tmp)
        raise


def _discard(tmp: Path) -> None:
    with contextlib.suppress(OSError):
        tmp.unlink()


def check_output_target(path: str | os.PathLike[str]) -> Path:
    """The path to write for ``path``: itself, or the file a same-folder symlink points to.

    Raises:
        OutputError: if ``path`` is a folder, device, FIFO or socket, or a symbolic link that
            leaves its folder or points to anything but a regular file or a new name.
    """
    target = Path(path)
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise output_error(exc, target) from None
    if stat.S_ISLNK(st.st_mode):
        resolved = Path(os.path.realpath(target))
        if resolved.parent != Path(os.path.realpath(target.parent)):
            raise OutputError(
                f"{target} is a symbolic link to {resolved}, outside its folder; refusing to "
                "write through it: remove the link or choose another path"
            )
        if resolved.exists() and not resolved.is_file():
            raise OutputError(f"{target} is a symbolic link to {resolved}, which is not a "
                              "regular file; remove the link or choose another path")
        return resolved
    if stat.S_ISDIR(st.st_mode):
        raise OutputError(f"cannot write {target}: it is a folder; give a file name")
    if not stat.S_ISREG(st.st_mode):
        raise OutputError(
            f"cannot write {target}: it is a {_kind(st.st_mode)}, not a regular file; "
            "choose another path"
        )
    return target


def _kind(mode: int) -> str:
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def ensure_folder(folder: str | os.PathLike[str]) -> Path:
    """Create ``folder`` (and its parents) if needed; one-line ``OutputError`` if impossible."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(exc, folder, folder=True) from None
    return folder


def check_writable_folder(folder: str | os.PathLike[str]) -> Path:
    """Create ``folder`` if needed and check a file can be written in it (before long work).

    Raises:
        OutputError: if the folder cannot be created or written (read-only, a file in the way).
    """
    folder = ensure_folder(folder)
    try:
        fd, name = tempfile.mkstemp(prefix=f".probe.{os.getpid()}-", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise output_error(exc, folder, folder=True) from None
    os.close(fd)
    _discard(Path(name))
    return folder


def output_error(
    exc: OSError, path: str | os.PathLike[str] | None = None, *, folder: bool = False
) -> OutputError:
    """A one-line :class:`OutputError` for ``exc`` raised while writing ``path``."""
    return OutputError(describe_os_error(exc, path, folder=folder))


def describe_os_error(
    exc: OSError,
    path: str | os.PathLike[str] | None = None,
    *,
    folder: bool = False,
    verb: str = "write",
) -> str:
    """One line naming the path and the reason of an ``OSError``, with a hint how to fix it.

    ``verb`` says what failed ("write", or "access" when it is not known whether it was a read).
    """
    name = path if path is not None else (exc.filename or exc.filename2)
    reason = exc.strerror or (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    code = exc.errno
    if isinstance(exc, (FileExistsError, NotADirectoryError)) or code in (
        errno.EEXIST, errno.ENOTDIR
    ):
        hint = "a file is in the way where a folder is expected; choose another path"
    elif isinstance(exc, IsADirectoryError) or code == errno.EISDIR:
        hint = "it is a folder; give a file name"
    elif code == errno.ENOSPC or code == errno.EDQUOT:
        hint = "free disk space or choose another path"
    elif code == errno.EROFS:
        hint = "choose another path"
    elif isinstance(exc, PermissionError):
        hint = "check the permissions or choose another path"
    elif isinstance(exc, FileNotFoundError):
        hint = "check the path"
    else:
        hint = "check the path or choose another one"
    if code in (errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EEXIST, errno.EISDIR):
        verb = "write"  # these only happen when writing
    what = "folder " if folder else ""
    where = f" {what}{name}" if name is not None else ""
    if name is None and exc.filename is None:  # e.g. h5py: the path is in the message
        return f"cannot {verb}: {' '.join(str(exc).split())}"
    return f"cannot {verb}{where}: {' '.join(str(reason).split())}; {hint}"


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes | bytearray | memoryview) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def remove_stale_temporaries(folder: str | os.PathLike[str], *, force: bool = False) -> int:
    """Delete ``.*.<pid>-*.tmp`` files in ``folder`` whose writing process no longer runs.

    Done once per folder and process unless ``force``; returns how many files were removed.
    Temporaries of live processes (and files not named by :func:`atomic_path`) are kept.
    """
    key = os.path.realpath(folder)
    if key in _cleaned and not force:
        return 0
    _cleaned.add(key)
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        match = TEMP_PATTERN.match(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        if _alive(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    return True


def check_not_input(
    output: str | os.PathLike[str],
    *,
    inputs: Iterable[str | os.PathLike[str]] = (),
    folders: Iterable[str | os.PathLike[str]] = (),
) -> None:
    """Refuse an output that would overwrite an input of the same command.

    Args:
        output: The file the command will write.
        inputs: Files the command reads; ``output`` may not resolve to (or be a hard link of)
            any of them.
        folders: Folders the command reads (a run folder, an import folder); ``output`` may not
            resolve to a file already inside one of them.

    Raises:
        OutputError: naming the output and the input it would destroy.
    """
    out = Path(os.path.realpath(output))
    for src in inputs:
        real = Path(os.path.realpath(src))
        if out == real or _same_file(out, real):
            raise OutputError(f"output {output} is the input {src}; writing it would destroy "
                              "the input: choose another output path")
    for folder in folders:
        real = Path(os.path.realpath(folder))
        if real.is_dir() and out.is_relative_to(real) and (out.exists() or out == real):
            raise OutputError(f"output {output} would overwrite {out.relative_to(real)} in "
                              f"{folder}, an input of this command: choose a path outside it")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=json_default) + "\n")


def json_default(obj: Any) -> Any:
    """``json.dumps(default=...)`` for numpy scalars/arrays, paths and dataclasses."""
    import dataclasses

    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")
