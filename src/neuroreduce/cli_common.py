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

from neuroreduce.errors import NeuroreduceError

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(func: F) -> F:
    """Turn user-caused errors into one red line and exit status 2 (interrupt: 130)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except NeuroreduceError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt as exc:  # an operation may say what a re-run will do
            reason = str(exc) or ("finished files were kept, nothing half-written was left; "
                                  "re-run the same command to continue.")
            err.print(f"[bold red]interrupted[/]: {escape(reason)}", highlight=False)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]
