"""Experiment files (TOML) parsed into frozen, checked dataclasses.

An experiment file declares datasets, a grid of models x hidden sizes x input variants, the seeds,
the training settings, the metrics and the analyses (see ``docs/experiments.md``). Everything a
typo can break is checked here, at load time, before anything is simulated or trained: unknown
keys and sections, unknown model/metric/dataset names, bad seeds, bad training values. Each
problem is one :class:`~neuroreduce.errors.ConfigError` line naming the file, the key and the
allowed keys or values.

A *suite* file holds only ``[experiment]`` with ``name`` and ``include = [...]`` (paths relative
to the suite file); its :attr:`ExperimentSpec.include` holds the loaded experiments.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuroreduce.errors import ConfigError
from neuroreduce.experiments.grid import (
    Cell,
    GridBlock,
    check_keys,
    expand_grid,
    parse_block,
    train_config,
    training_keys,
)

#: Sections of an experiment file.
SECTIONS: tuple[str, ...] = ("experiment", "datasets", "training", "grid", "evaluate", "analysis")
#: Keys of ``[experiment]``.
EXPERIMENT_KEYS: tuple[str, ...] = (
    "name", "title", "description", "study", "paper", "seeds", "metrics", "data_dir", "include",
)
#: Keys of a suite's ``[experiment]`` (a suite has no other section).
SUITE_KEYS: tuple[str, ...] = ("name", "title", "description", "include")
#: Keys of ``[evaluate]`` (``spike_timing``: options of the spike-timing metrics, see
#: :class:`neuroreduce.evaluation.spike_scoring.SpikeScoring`).
EVALUATE_KEYS: tuple[str, ...] = ("extra", "spike_timing")
#: Default metrics (names in :mod:`neuroreduce.evaluation.registry`; see
#: :func:`scorable_metrics`).
DEFAULT_METRICS: tuple[str, ...] = ("rmse", "nrmse")
#: Default number of seeds (ten runs per configuration, as Barbulescu et al. 2023 train).
DEFAULT_SEEDS = 10
_NAME = re.compile(r"^[a-z0-9_-]+$")

__all__ = ["Cell", "ExperimentSpec", "GridBlock", "load_experiment", "parse_experiment"]


@dataclass(frozen=True)
class ExperimentSpec:
    """A declared experiment (or a suite of experiments), checked and with defaults filled.

    Attributes:
        name: Experiment name (``[a-z0-9_-]+``); the output folder of a suite member.
        title: One-line title for reports.
        description: Free text.
        study: Name of the study the experiment belongs to (:mod:`neuroreduce.studies`), or
            None (generic results only). A file with ``paper`` but no ``study`` gets the study
            that publishes that table.
        paper: Key of the study's reference table the experiment compares with (e.g.
            ``"table1"``), or None.
        seeds: One seed per ensemble member.
        metrics: Metric names evaluated per split (:func:`scorable_metrics`; a typed cell
            scores each predicted field with those of its kind).
        data_dir: Dataset cache folder, relative to the output folder (default ``"data"``).
        datasets: Name -> dataset spec (:class:`neuroreduce.experiments.datasets.DatasetSpec`).
        dataset_tables: Name -> the dataset's TOML table as written (provenance).
        training: Training defaults for every cell (TrainConfig fields, as written).
        grid: The grid blocks.
        cells: Every cell of the grid, in file order (keys are unique).
        extra: Test-only datasets every cell is also evaluated on (all their trials).
        spike_timing: ``[evaluate] spike_timing`` options of the spike-timing metrics (window,
            thresholds; :class:`~neuroreduce.evaluation.spike_scoring.SpikeScoring`), as
            written; empty: the defaults.
        analysis: The analysis spec (:class:`neuroreduce.experiments.analysis.AnalysisSpec`).
        analysis_table: The ``[analysis]`` table as written.
        source: The file the spec was loaded from (None when built in code).
        source_text: That file's text (copied into the output folder as ``experiment.toml``).
        include: For a suite: the included experiments, in order (empty otherwise).
    """

    name: str
    title: str = ""
    description: str = ""
    study: str | None = None
    paper: str | None = None
    seeds: tuple[int, ...] = tuple(range(DEFAULT_SEEDS))
    metrics: tuple[str, ...] = DEFAULT_METRICS
    data_dir: str = "data"
    datasets: Mapping[str, Any] = field(default_factory=dict)
    dataset_tables: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)
    grid: tuple[GridBlock, ...] = ()
    cells: tuple[Cell, ...] = ()
    extra: tuple[str, ...] = ()
    spike_timing: Mapping[str, Any] = field(default_factory=dict)
    analysis: Any = None
    analysis_table: Mapping[str, Any] = field(default_factory=dict)
    source: Path | None = None
    source_text: str | None = None
    include: tuple[ExperimentSpec, ...] = ()

    @property
    def is_suite(self) -> bool:
        """True for a suite file (``include = [...]``)."""
        return bool(self.include)

    def cell(self, key: str) -> Cell:
        """The cell called ``key`` (ConfigError listing the keys if unknown)."""
        for c in self.cells:
            if c.key == key:
                return c
        raise ConfigError(f"experiment {self.name!r} has no cell {key!r}; cells: "
                          f"{', '.join(c.key for c in self.cells)}")

    def extra_for(self, dataset: str) -> tuple[str, ...]:
        """The ``evaluate.extra`` datasets evaluated for cells trained on ``dataset``.

        A test-only dataset with ``test_for = [...]`` serves only the training datasets it
        names (e.g. the spiking OOD set only the spiking cells); without it, every cell.
        """
        chosen = []
        for name in self.extra:
            test_for = getattr(self.datasets.get(name), "test_for", None)
            if test_for is None or dataset in test_for:
                chosen.append(name)
        return tuple(chosen)

    def used_datasets(self) -> tuple[str, ...]:
        """Declared dataset names, in file order."""
        return tuple(self.datasets)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able resolved form (every default filled; dataset specs as their tables)."""
        data: dict[str, Any] = {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "source": None if self.source is None else str(self.source),
        }
        if self.is_suite:
            data["include"] = [e.to_dict() for e in self.include]
            return data
        data.update({
            "study": self.study,
            "paper": self.paper,
            "seeds": list(self.seeds),
            "metrics": list(self.metrics),
            "data_dir": self.data_dir,
            "datasets": {n: dict(t) for n, t in self.dataset_tables.items()},
            "training": dict(self.training),
            "grid": [b.to_dict() for b in self.grid],
            "evaluate": {"extra": list(self.extra),
                         **({"spike_timing": dict(self.spike_timing)} if self.spike_timing
                            else {})},
            "analysis": dict(self.analysis_table),
            "cells": [c.to_dict() for c in self.cells],
        })
        return data


# ------------------------------------------------------------------------------------ loading
def load_experiment(path: str | Path) -> ExperimentSpec:
    """Read and check an experiment (or suite) file.

    Args:
        path: A TOML file (see ``docs/experiments.md``).

    Returns:
        The checked spec; a suite's included files are loaded too (relative to the suite).

    Raises:
        ConfigError: naming the file, the bad key and the allowed keys/values.
    """
    return _load(Path(path), stack=())


def _load(path: Path, *, stack: tuple[Path, ...]) -> ExperimentSpec:
    if not path.is_file():
        raise ConfigError(f"experiment file {path} does not exist; check the path")
    resolved = path.resolve()
    if resolved in stack:
        raise ConfigError(f"{stack[-1]}: include: {path} includes itself (cycle); remove it")
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read experiment file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the syntax") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be read as TOML") from None
    head = data.get("experiment")
    if isinstance(head, dict) and "include" in head:
        return _parse_suite(data, path=path, text=text, stack=(*stack, resolved))
    return parse_experiment(data, source=path, source_text=text)


def _parse_suite(
    data: dict[str, Any], *, path: Path, text: str, stack: tuple[Path, ...]
) -> ExperimentSpec:
    where = str(path)
    other = sorted(set(data) - {"experiment"})
    if other:
        raise ConfigError(f"{where}: a suite file (with include) holds only [experiment]; remove "
                          f"{', '.join(other)} (put them in the included files)")
    head = data["experiment"]
    check_keys(head, SUITE_KEYS, where, "[experiment] of a suite")
    name = _name(head.get("name"), where, "experiment.name")
    include = head["include"]
    if not isinstance(include, list) or not include or not all(
        isinstance(p, str) and p for p in include
    ):
        raise ConfigError(f"{where}: experiment.include must be a non-empty list of file paths "
                          f"relative to the suite file, got {include!r}")
    members = tuple(_load(path.parent / p, stack=stack) for p in include)
    names = [m.name for m in members]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{where}: experiment.include: experiment name(s) {', '.join(dup)} "
                          "appear twice; each included experiment needs its own name")
    return ExperimentSpec(
        name=name,
        title=_text(head, "title", where),
        description=_text(head, "description", where),
        source=path,
        source_text=text,
        include=members,
    )


def parse_experiment(
    data: Mapping[str, Any], *, source: Path | None = None, source_text: str | None = None
) -> ExperimentSpec:
    """Check an experiment given as a dict (the TOML structure) and resolve its grid.

    Args:
        data: The parsed TOML document.
        source: The file it came from (named in error messages).
        source_text: The file's text, kept for the output folder.

    Raises:
        ConfigError: naming the bad key and the allowed keys/values.
    """
    where = str(source) if source is not None else "experiment"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: an experiment must be a table, got {type(data).__name__}")
    check_keys(data, SECTIONS, where, "top level (sections)")
    head = data.get("experiment")
    if not isinstance(head, dict):
        raise ConfigError(f"{where}: missing [experiment] table with at least name = \"...\"")
    check_keys(head, EXPERIMENT_KEYS, where, "[experiment]")
    name = _name(head.get("name"), where, "experiment.name")
    seeds = _seeds(head.get("seeds", DEFAULT_SEEDS), where)
    metrics = _metrics(head.get("metrics", list(DEFAULT_METRICS)), where)
    data_dir = head.get("data_dir", "data")
    if not isinstance(data_dir, str) or not data_dir:
        raise ConfigError(f"{where}: experiment.data_dir must be a folder path (text), got "
                          f"{data_dir!r}")
    study, paper = _study(head, where)

    tables = data.get("datasets", {})
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(f"{where}: declare at least one dataset as a [datasets.NAME] table")
    base_dir = source.parent if source is not None else None
    datasets = {n: _dataset_spec(n, t, where, base_dir) for n, t in tables.items()}

    training = data.get("training", {})
    if not isinstance(training, dict):
        raise ConfigError(f"{where}: [training] must be a table of {', '.join(training_keys())}")
    check_keys(training, training_keys(), where, "[training]")
    train_config(training, {}, "gru", 1, seeds, where, "[training]")

    extra = _evaluate(data.get("evaluate", {}), datasets, where)
    blocks = data.get("grid")
    if not isinstance(blocks, list) or not blocks:
        raise ConfigError(f"{where}: declare at least one [[grid]] block with datasets, models "
                          "and hidden")
    grid = tuple(parse_block(b, i, datasets, where) for i, b in enumerate(blocks))
    cells = expand_grid(grid, training, seeds, datasets, where)
    _check_metrics(metrics, datasets, cells, where)
    overlap = sorted({c.dataset for c in cells} & set(extra))
    if overlap:
        raise ConfigError(f"{where}: evaluate.extra lists {', '.join(overlap)}, which the grid "
                          "trains on; extra datasets are test-only")
    analysis_table = data.get("analysis", {})
    return ExperimentSpec(
        name=name,
        title=_text(head, "title", where),
        description=_text(head, "description", where),
        study=study,
        paper=paper,
        seeds=seeds,
        metrics=metrics,
        data_dir=data_dir,
        datasets=datasets,
        dataset_tables={n: dict(t) for n, t in tables.items()},
        training=dict(training),
        grid=grid,
        cells=cells,
        extra=extra,
        spike_timing=_spike_timing(data.get("evaluate", {}), where),
        analysis=_analysis(analysis_table, where),
        analysis_table=dict(analysis_table) if isinstance(analysis_table, dict) else {},
        source=source,
        source_text=source_text,
    )


# ------------------------------------------------------------------------------ the sections
def _name(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ConfigError(f"{where}: {key} must be lower-case letters, digits, '_' or '-' "
                          f"(e.g. \"exp1\"), got {value!r}")
    return value


def _study(head: Mapping[str, Any], where: str) -> tuple[str | None, str | None]:
    """The checked ``study`` and ``paper`` keys (see :func:`~neuroreduce.studies.registry.
    resolve_study`)."""
    from neuroreduce.studies.registry import resolve_study

    for key, example in (("study", "barbulescu2023"), ("paper", "table1")):
        value = head.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{where}: experiment.{key} must be text (e.g. \"{example}\"), got "
                              f"{value!r}")
    paper = head.get("paper")
    return resolve_study(head.get("study"), paper, where=where), paper


def _text(head: Mapping[str, Any], key: str, where: str) -> str:
    value = head.get(key, "")
    if not isinstance(value, str):
        raise ConfigError(f"{where}: experiment.{key} must be text, got {value!r}")
    return value


def _seeds(value: Any, where: str) -> tuple[int, ...]:
    fix = "use a count n >= 1 (seeds 0..n-1) or a list of distinct integers >= 0"
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ConfigError(f"{where}: experiment.seeds = {value!r} is invalid; {fix}")
        return tuple(range(value))
    if isinstance(value, list) and value and all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value
    ) and len(set(value)) == len(value):
        return tuple(value)
    raise ConfigError(f"{where}: experiment.seeds = {value!r} is invalid; {fix}")


def scorable_metrics() -> list[str]:
    """Registered metrics an experiment cell can report (:mod:`neuroreduce.evaluation.registry`):
    those of the field kinds cells score (continuous, binary, categorical) that have a
    direction (tables and thresholds, e.g. ``confusion_matrix``, are not scores), and the
    spike-timing ones (scored on voltage and spike heads, errors and reliability included)."""
    from neuroreduce.evaluation.field_results import DEFAULT_METRICS
    from neuroreduce.evaluation.registry import TASK_METRICS, list_metrics

    return [n for n in list_metrics() if (TASK_METRICS[n].kind in DEFAULT_METRICS
            and TASK_METRICS[n].direction is not None) or TASK_METRICS[n].kind == "spike_times"]


def _metrics(value: Any, where: str) -> tuple[str, ...]:
    from neuroreduce.evaluation.registry import TASK_METRICS

    allowed = scorable_metrics()
    known = ", ".join(allowed)
    if not isinstance(value, list) or not value or not all(isinstance(m, str) for m in value):
        raise ConfigError(f"{where}: experiment.metrics must be a list of names from: {known}")
    for m in value:
        if m not in TASK_METRICS:
            raise ConfigError(f"{where}: experiment.metrics: unknown metric {m!r}; allowed: "
                              f"{known}")
        if m not in allowed:
            raise ConfigError(f"{where}: experiment.metrics: {m!r} ({TASK_METRICS[m].kind}) is "
                              f"not a score experiment cells report; allowed: {known}")
    return tuple(dict.fromkeys(value))


def _check_metrics(metrics: tuple[str, ...], datasets: Mapping[str, Any], cells: Any,
                   where: str) -> None:
    """Grids on scenario datasets (continuous ``outputs``, the paper's tables) need ``rmse``
    and only continuous metrics; typed datasets (generators, files) may use any score."""
    from neuroreduce.evaluation.registry import TASK_METRICS

    used = list(dict.fromkeys(c.dataset for c in cells))
    plain = [d for d in used if getattr(datasets[d], "scenario", None) is not None]
    if plain and "rmse" not in metrics:
        raise ConfigError(f"{where}: experiment.metrics must include \"rmse\" (the paper's error)")
    if plain and len(plain) == len(used):
        continuous = [n for n in scorable_metrics() if TASK_METRICS[n].kind == "continuous"]
        for m in metrics:
            if m not in continuous:
                raise ConfigError(
                    f"{where}: experiment.metrics: {m!r} scores {TASK_METRICS[m].kind} fields, "
                    f"but the grid's datasets ({', '.join(plain)}) have continuous outputs only; "
                    f"allowed: {', '.join(continuous)}")


def _dataset_spec(name: str, table: Any, where: str, base_dir: Path | None) -> Any:
    from neuroreduce.experiments.datasets import DatasetSpec

    if not _NAME.match(name):
        raise ConfigError(f"{where}: dataset name [datasets.{name}] must be lower-case letters, "
                          "digits, '_' or '-'")
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: datasets.{name} must be a table ([datasets.{name}])")
    try:
        return DatasetSpec.from_dict(name, table, base_dir=base_dir)
    except ConfigError as exc:
        section = f"[datasets.{name}]"
        text = str(exc) if str(exc).startswith(section) else f"{section}: {exc}"
        raise ConfigError(f"{where}: {text}") from None


def _analysis(table: Any, where: str) -> Any:
    from neuroreduce.experiments.analysis import AnalysisSpec

    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [analysis] must be a table")
    try:
        return AnalysisSpec.from_dict(table)
    except ConfigError as exc:
        raise ConfigError(f"{where}: [analysis]: {exc}") from None


def _spike_timing(table: Any, where: str) -> dict[str, Any]:
    """The checked ``[evaluate] spike_timing`` table (empty when absent)."""
    from neuroreduce.evaluation.spike_scoring import SpikeScoring

    value = table.get("spike_timing", {}) if isinstance(table, dict) else {}
    try:
        SpikeScoring.from_dict(value)
    except ConfigError as exc:
        raise ConfigError(f"{where}: evaluate.spike_timing: {exc}") from None
    return dict(value)


def _evaluate(table: Any, datasets: Mapping[str, Any], where: str) -> tuple[str, ...]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [evaluate] must be a table with key extra")
    check_keys(table, EVALUATE_KEYS, where, "[evaluate]")
    extra = table.get("extra", [])
    if not isinstance(extra, list) or not all(isinstance(e, str) for e in extra):
        raise ConfigError(f"{where}: evaluate.extra must be a list of dataset names, got "
                          f"{extra!r}")
    for e in extra:
        if e not in datasets:
            raise ConfigError(f"{where}: evaluate.extra: dataset {e!r} is not declared; declared: "
                              f"{', '.join(datasets)} (add a [datasets.{e}] table)")
    return tuple(dict.fromkeys(extra))
