"""The studies, by name: the one place a new study is registered.

An experiment file names its study (``study = "barbulescu2023"``); the runner, the analyses
and the report look it up here. A file that names only a reference table (``paper =
"table2"``, the older form) gets the one study that publishes a table of that key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from neuroreduce.errors import ConfigError, unknown_name_error
from neuroreduce.studies import barbulescu2023, cortical_neuron, spike_timing, wang2023
from neuroreduce.studies.base import CellShape, Study

#: Every study, by name. Adding a study: one package under ``studies/`` and one entry here.
STUDIES: dict[str, Study] = {s.name: s for s in (
    barbulescu2023.STUDY,
    cortical_neuron.STUDY,
    spike_timing.STUDY,
    wang2023.STUDY,
)}


def list_studies() -> list[str]:
    """Names of all registered studies."""
    return sorted(STUDIES)


def get_study(name: str) -> Study:
    """The study registered as ``name``.

    Raises:
        ConfigError: for an unknown name (the message lists the known ones).
    """
    try:
        return STUDIES[name]
    except KeyError:
        raise unknown_name_error("study", name, list(STUDIES)) from None


def resolve_study(study: str | None, table: str | None, *, where: str = "experiment") -> (
        str | None):
    """The study an experiment file belongs to, checked: its ``study`` and ``paper`` keys.

    Args:
        study: The file's ``study`` (or None).
        table: The file's ``paper`` (a reference table key, or None).
        where: Names the file in error messages.

    Returns:
        The study's name, or None for a file without a study and without a table.

    Raises:
        ConfigError: for an unknown study, a table the study does not publish, or a table that
            no study (or more than one) publishes when the file names no study.
    """
    if study is None and table is None:
        return None
    if study is None:
        owners = [s.name for s in STUDIES.values() if table in s.tables]
        if len(owners) != 1:
            known = sorted({f"{k} ({s.name})" for s in STUDIES.values() for k in s.tables})
            what = "no study publishes" if not owners else f"{', '.join(owners)} all publish"
            raise ConfigError(f"{where}: experiment.paper = {table!r}: {what} that table; name "
                              f"the study with study = \"...\" (tables: {', '.join(known)})")
        return owners[0]
    try:
        found = get_study(study)
    except ConfigError as exc:
        raise ConfigError(f"{where}: experiment.study: {exc}") from None
    if table is not None and table not in found.tables:
        raise ConfigError(f"{where}: experiment.paper: study {study!r} has no table {table!r}; "
                          f"allowed: {', '.join(sorted(found.tables))}")
    return study


def study_of(resolved: Mapping[str, Any]) -> Study | None:
    """The study of an experiment folder from its ``resolved.json`` (None without one).

    Folders written before studies existed carry only ``paper``; their study is the one that
    publishes that table. An unknown or ambiguous name gives None (generic results only), so an
    old folder always reports.
    """
    try:
        name = resolve_study(resolved.get("study"), resolved.get("paper"))
    except ConfigError:
        return None
    return None if name is None else STUDIES[name]


def cell_fields(study: str | None, shape: CellShape) -> dict[str, Any]:
    """The per-cell record fields of ``study`` for a cell of ``shape`` (empty without one)."""
    return {} if study is None else get_study(study).fields_of(shape)


def field_names(study: Study | None) -> tuple[str, ...]:
    """Names of the study's per-cell fields (the extra results columns), in order."""
    return () if study is None else tuple(f.name for f in study.cell_fields)
