"""Shared pieces of the command line: consoles and the one-line error wrapper.

Every command module (``cli.py`` and the ``cli_*.py`` modules it registers) decorates its
commands with :func:`friendly_errors`, so a user-caused problem prints one red line and exits 2.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from neuroreduce._io import describe_os_error
from neuroreduce.errors import NeuroreduceError

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(func: F) -> F:
    """Turn user-caused errors into one red line and exit status 2 (interrupt: 130).

    User-caused are :class:`~neuroreduce.errors.NeuroreduceError`, any ``OSError`` (a path that
    cannot be read or written: permissions, read-only or full disk, a file where a folder is
    expected and the reverse; the line names the path) and h5py's storage errors.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except NeuroreduceError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except OSError as exc:  # unwritable/unreadable paths, full disk, HDF5 storage errors
            _one_line(describe_os_error(exc, verb="access"))
            raise typer.Exit(2) from None
        except RuntimeError as exc:
            if not _raised_by_h5py(exc):
                raise
            _one_line(f"HDF5 storage error: {str(exc).splitlines()[0] if str(exc) else exc!r}")
            raise typer.Exit(2) from None
        except KeyboardInterrupt as exc:  # an operation may say what a re-run will do
            reason = str(exc) or ("finished files were kept, nothing half-written was left; "
                                  "re-run the same command to continue.")
            err.print(f"[bold red]interrupted[/]: {escape(reason)}", highlight=False)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _one_line(message: str) -> None:
    line = " ".join(message.split("\n")) if message else "unknown error"
    err.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)


def _raised_by_h5py(exc: BaseException) -> bool:
    """Whether ``exc`` was raised inside h5py (its storage errors are plain ``RuntimeError``)."""
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is None:
        return False
    name = last.tb_frame.f_globals.get("__name__", "")
    return name.startswith("h5py") or "h5py" in last.tb_frame.f_code.co_filename
