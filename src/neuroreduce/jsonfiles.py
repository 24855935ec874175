"""Reading the tool's own JSON and TOML files so that any bad content is one line.

Run, experiment and cache folders hold JSON files (``config.json``, ``provenance.json``,
``results.json``, ``cell.json``, ``suite.json``, the network cache's ``build.json``, ...). A
file that is unreadable, not JSON, JSON of the wrong type (a list where an object is expected)
or an object whose values have the wrong types (a string where a number is expected) must give
one line that names the file, never a traceback:

* :func:`read_json_object` reads a file and checks that it holds a JSON object;
* :func:`content_of` wraps the code that takes values out of such an object and turns the
  ``KeyError``/``TypeError``/``ValueError``/``AttributeError`` of a wrong value into one line.

(TOML files: a deeply nested document raises ``RecursionError`` in ``tomllib``; the experiment
and sweep loaders catch it.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from neuroreduce.errors import CheckpointError, NeuroreduceError

#: Exceptions raised by code that expects one JSON type and finds another.
CONTENT_ERRORS: tuple[type[Exception], ...] = (
    KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError,
)


def read_json_object(
    path: str | Path,
    *,
    error: type[NeuroreduceError] = CheckpointError,
    hint: str = "delete it and re-run",
    missing: str | None = None,
) -> dict[str, Any]:
    """Parse ``path`` and check that it holds a JSON object.

    Args:
        path: The file.
        error: The error type to raise.
        hint: What the user can do, appended to the message.
        missing: The message for a missing file (default: "<path> is missing; <hint>").

    Raises:
        error: one line naming the file when it is missing, unreadable, not JSON or not an
            object.
    """
    path = Path(path)
    if not path.is_file():
        raise error(missing or f"{path} is missing; {hint}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise error(f"{path} is corrupt ({type(exc).__name__}); {hint}") from None
    if not isinstance(data, dict):
        raise error(f"{path} holds a JSON {_json_type(data)} where an object is expected; "
                    f"{hint}")
    return data


@contextmanager
def content_of(
    path: str | Path, *, error: type[NeuroreduceError] = CheckpointError,
    hint: str = "delete it and re-run",
) -> Iterator[None]:
    """Turn a wrong value met while reading ``path``'s content into one line naming the file.

    Errors of the tool itself (:class:`~neuroreduce.errors.NeuroreduceError`) pass unchanged.
    """
    try:
        yield
    except NeuroreduceError:
        raise
    except CONTENT_ERRORS as exc:
        detail = f"{type(exc).__name__}: {exc}"
        if len(detail) > 120:
            detail = detail[:117] + "..."
        raise error(f"{path} has a value of the wrong type or a missing entry ({detail}); "
                    f"{hint}") from None


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "null" if value is None else type(value).__name__


def frozen(value: Any) -> Any:
    """Lists (from JSON/TOML) become tuples, recursively, so a config stays hashable."""
    if isinstance(value, list | tuple):
        return tuple(frozen(v) for v in value)
    return value


def thawed(value: Any) -> Any:
    """The inverse of :func:`frozen`: tuples become lists again, for JSON."""
    if isinstance(value, tuple):
        return [thawed(v) for v in value]
    return value
