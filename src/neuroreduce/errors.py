"""User-facing error types.

Every error a user can cause (bad names, bad files, bad shapes, unstable simulations, missing
tools) is raised as a subclass of :class:`NeuroreduceError` with a one-line message that says what
was wrong and how to fix it. The CLI prints such errors as one line and exits with status 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class NeuroreduceError(Exception):
    """Base class of errors caused by input, configuration or environment (not by bugs)."""


class ConfigError(NeuroreduceError, ValueError):
    """An invalid option, name, shape or configuration value."""


class DatasetError(NeuroreduceError):
    """A dataset file that is missing, corrupt, or does not fit what it is used with."""


class SimulationError(NeuroreduceError):
    """The high-fidelity simulator failed (e.g. NaN voltages) for a given stimulus."""


class CheckpointError(NeuroreduceError):
    """A run folder or checkpoint that is missing, corrupt, or incompatible."""


class DependencyError(NeuroreduceError):
    """An external tool (java, nrnivmodl, c302) is missing or failed."""


class OutputError(NeuroreduceError, OSError):
    """An output path that cannot or must not be written (special file, input, full disk).

    Also an ``OSError``, so code that tolerates failed writes (``except OSError``) still does.
    """


def unknown_name_error(kind: str, name: str, known: list[str] | tuple[str, ...]) -> ConfigError:
    """Build the standard "unknown X 'name'; known: a, b, c" error.

    Args:
        kind: What the name refers to, e.g. ``"neuron"`` or ``"scenario"``.
        name: The name the user gave.
        known: The names that exist.
    """
    shown = ", ".join(sorted(known)[:40])
    more = f" (and {len(known) - 40} more)" if len(known) > 40 else ""
    return ConfigError(f"unknown {kind} {name!r}; known {kind}s: {shown}{more}")
