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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from neuroreduce.errors import ConfigError
from neuroreduce.training.config import TrainConfig

#: Sections of an experiment file.
SECTIONS: tuple[str, ...] = ("experiment", "datasets", "training", "grid", "evaluate", "analysis")
#: Keys of ``[experiment]``.
EXPERIMENT_KEYS: tuple[str, ...] = (
    "name", "title", "description", "paper", "seeds", "metrics", "data_dir", "include",
)
#: Keys of a suite's ``[experiment]`` (a suite has no other section).
SUITE_KEYS: tuple[str, ...] = ("name", "title", "description", "include")
#: TrainConfig fields set per cell by the grid and the seeds, so not allowed in ``[training]``.
CELL_FIELDS: tuple[str, ...] = ("model", "hidden", "seeds")
#: The list-valued axes of a ``[[grid]]`` block (besides ``inputs``).
GRID_AXES: tuple[str, ...] = ("datasets", "models", "hidden")
#: Keys of ``[evaluate]``.
EVALUATE_KEYS: tuple[str, ...] = ("extra",)
#: Default metrics (names in :mod:`neuroreduce.evaluation.metrics`).
DEFAULT_METRICS: tuple[str, ...] = ("rmse", "nrmse")
#: Default number of seeds (the paper trains 10 runs per configuration).
DEFAULT_SEEDS = 10
#: Name of the input variant that uses every input channel (omitted from cell keys).
ALL_INPUTS = "all"

_NAME = re.compile(r"^[a-z0-9_-]+$")


def training_keys() -> tuple[str, ...]:
    """TrainConfig fields allowed in ``[training]`` and as per-block overrides."""
    return tuple(f.name for f in fields(TrainConfig) if f.name not in CELL_FIELDS)


@dataclass(frozen=True)
class Cell:
    """One grid cell: a seed ensemble of one architecture trained on one dataset variant.

    Attributes:
        key: ``"{dataset}/{model}-{hidden}"`` plus ``"/{variant}"`` unless the variant is "all".
        dataset: Name of the dataset (a ``[datasets.NAME]`` table).
        model: Registered model name.
        hidden: Recurrent units per member.
        variant: Name of the input variant (``"all"``: every input channel).
        inputs: Input channel names kept (``None``: all of the dataset's inputs).
        config: The resolved training configuration (seeds from the experiment).
        block: Index (0-based) of the ``[[grid]]`` block the cell comes from.
    """

    key: str
    dataset: str
    model: str
    hidden: int
    variant: str
    inputs: tuple[str, ...] | None
    config: TrainConfig
    block: int

    @property
    def folder(self) -> str:
        """Folder name under ``<out>/cells/``: the key with ``/`` replaced by ``__``."""
        return self.key.replace("/", "__")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (the config as :meth:`TrainConfig.to_dict`)."""
        return {
            "key": self.key,
            "folder": self.folder,
            "dataset": self.dataset,
            "model": self.model,
            "hidden": self.hidden,
            "variant": self.variant,
            "inputs": None if self.inputs is None else list(self.inputs),
            "config": self.config.to_dict(),
            "block": self.block,
        }


@dataclass(frozen=True)
class GridBlock:
    """One ``[[grid]]`` block: the product of its axes, with scalar training overrides.

    Attributes:
        datasets: Dataset names.
        models: Registered model names.
        hidden: Hidden sizes.
        inputs: ``(variant, names)`` pairs; ``names`` is ``None`` for all inputs.
        overrides: TrainConfig fields set for this block's cells (scalars).
    """

    datasets: tuple[str, ...]
    models: tuple[str, ...]
    hidden: tuple[int, ...]
    inputs: tuple[tuple[str, tuple[str, ...] | None], ...] = ((ALL_INPUTS, None),)
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "datasets": list(self.datasets),
            "models": list(self.models),
            "hidden": list(self.hidden),
            "inputs": {v: ALL_INPUTS if n is None else list(n) for v, n in self.inputs},
            **dict(self.overrides),
        }


@dataclass(frozen=True)
class ExperimentSpec:
    """A declared experiment (or a suite of experiments), checked and with defaults filled.

    Attributes:
        name: Experiment name (``[a-z0-9_-]+``); the output folder of a suite member.
        title: One-line title for reports.
        description: Free text.
        paper: Key into the analysis's paper-reference registry (e.g. ``"table1"``) or None.
        seeds: One seed per ensemble member.
        metrics: Metric names evaluated per split (see :mod:`neuroreduce.evaluation.metrics`).
        data_dir: Dataset cache folder, relative to the output folder (default ``"data"``).
        datasets: Name -> dataset spec (:class:`neuroreduce.experiments.datasets.DatasetSpec`).
        dataset_tables: Name -> the dataset's TOML table as written (provenance).
        training: Training defaults for every cell (TrainConfig fields, as written).
        grid: The grid blocks.
        cells: Every cell of the grid, in file order (keys are unique).
        extra: Test-only datasets every cell is also evaluated on (all their trials).
        analysis: The analysis spec (:class:`neuroreduce.experiments.analysis.AnalysisSpec`).
        analysis_table: The ``[analysis]`` table as written.
        source: The file the spec was loaded from (None when built in code).
        source_text: That file's text (copied into the output folder as ``experiment.toml``).
        include: For a suite: the included experiments, in order (empty otherwise).
    """

    name: str
    title: str = ""
    description: str = ""
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
            "paper": self.paper,
            "seeds": list(self.seeds),
            "metrics": list(self.metrics),
            "data_dir": self.data_dir,
            "datasets": {n: dict(t) for n, t in self.dataset_tables.items()},
            "training": dict(self.training),
            "grid": [b.to_dict() for b in self.grid],
            "evaluate": {"extra": list(self.extra)},
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
    _check_keys(head, SUITE_KEYS, where, "[experiment] of a suite")
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
    _check_keys(data, SECTIONS, where, "top level (sections)")
    head = data.get("experiment")
    if not isinstance(head, dict):
        raise ConfigError(f"{where}: missing [experiment] table with at least name = \"...\"")
    _check_keys(head, EXPERIMENT_KEYS, where, "[experiment]")
    name = _name(head.get("name"), where, "experiment.name")
    seeds = _seeds(head.get("seeds", DEFAULT_SEEDS), where)
    metrics = _metrics(head.get("metrics", list(DEFAULT_METRICS)), where)
    data_dir = head.get("data_dir", "data")
    if not isinstance(data_dir, str) or not data_dir:
        raise ConfigError(f"{where}: experiment.data_dir must be a folder path (text), got "
                          f"{data_dir!r}")
    paper = head.get("paper")
    if paper is not None and not isinstance(paper, str):
        raise ConfigError(f"{where}: experiment.paper must be text (e.g. \"table1\"), got "
                          f"{paper!r}")

    tables = data.get("datasets", {})
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(f"{where}: declare at least one dataset as a [datasets.NAME] table")
    base_dir = source.parent if source is not None else None
    datasets = {n: _dataset_spec(n, t, where, base_dir) for n, t in tables.items()}

    training = data.get("training", {})
    if not isinstance(training, dict):
        raise ConfigError(f"{where}: [training] must be a table of {', '.join(training_keys())}")
    _check_keys(training, training_keys(), where, "[training]")
    _train_config(training, {}, "gru", 1, seeds, where, "[training]")

    extra = _evaluate(data.get("evaluate", {}), datasets, where)
    blocks = data.get("grid")
    if not isinstance(blocks, list) or not blocks:
        raise ConfigError(f"{where}: declare at least one [[grid]] block with datasets, models "
                          "and hidden")
    grid = tuple(_block(b, i, datasets, where) for i, b in enumerate(blocks))
    cells = _cells(grid, training, seeds, datasets, where)
    overlap = sorted({c.dataset for c in cells} & set(extra))
    if overlap:
        raise ConfigError(f"{where}: evaluate.extra lists {', '.join(overlap)}, which the grid "
                          "trains on; extra datasets are test-only")
    analysis_table = data.get("analysis", {})
    return ExperimentSpec(
        name=name,
        title=_text(head, "title", where),
        description=_text(head, "description", where),
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
        analysis=_analysis(analysis_table, where),
        analysis_table=dict(analysis_table) if isinstance(analysis_table, dict) else {},
        source=source,
        source_text=source_text,
    )


# ------------------------------------------------------------------------------ the sections
def _check_keys(table: Mapping[str, Any], allowed: Sequence[str], where: str, what: str) -> None:
    unknown = [k for k in table if k not in allowed]
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))} in {what}; "
                          f"allowed: {', '.join(allowed)}")


def _name(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ConfigError(f"{where}: {key} must be lower-case letters, digits, '_' or '-' "
                          f"(e.g. \"exp1\"), got {value!r}")
    return value


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


def _metrics(value: Any, where: str) -> tuple[str, ...]:
    from neuroreduce.evaluation.metrics import METRICS

    known = ", ".join(sorted(METRICS))
    if not isinstance(value, list) or not value or not all(isinstance(m, str) for m in value):
        raise ConfigError(f"{where}: experiment.metrics must be a list of names from: {known}")
    for m in value:
        if m not in METRICS:
            raise ConfigError(f"{where}: experiment.metrics: unknown metric {m!r}; allowed: "
                              f"{known}")
    if "rmse" not in value:
        raise ConfigError(f"{where}: experiment.metrics must include \"rmse\" (the paper's error)")
    return tuple(dict.fromkeys(value))


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


def _evaluate(table: Any, datasets: Mapping[str, Any], where: str) -> tuple[str, ...]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [evaluate] must be a table with key extra")
    _check_keys(table, EVALUATE_KEYS, where, "[evaluate]")
    extra = table.get("extra", [])
    if not isinstance(extra, list) or not all(isinstance(e, str) for e in extra):
        raise ConfigError(f"{where}: evaluate.extra must be a list of dataset names, got "
                          f"{extra!r}")
    for e in extra:
        if e not in datasets:
            raise ConfigError(f"{where}: evaluate.extra: dataset {e!r} is not declared; declared: "
                              f"{', '.join(datasets)} (add a [datasets.{e}] table)")
    return tuple(dict.fromkeys(extra))


def _axis(block: Mapping[str, Any], key: str, kind: type, where: str) -> tuple[Any, ...]:
    if key not in block:
        raise ConfigError(f"{where}: missing key {key!r}; a [[grid]] block needs "
                          f"{', '.join(GRID_AXES)}")
    value = block[key]
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, kind) and not isinstance(v, bool) for v in items):
        raise ConfigError(f"{where}: {key} must be a {kind.__name__} or a non-empty list of "
                          f"them, got {value!r}")
    return tuple(dict.fromkeys(items))


def _block(block: Any, index: int, datasets: Mapping[str, Any], where: str) -> GridBlock:
    from neuroreduce.models.registry import list_models

    here = f"{where}: [[grid]] block {index + 1}"
    if not isinstance(block, dict):
        raise ConfigError(f"{here} must be a table")
    allowed = (*GRID_AXES, "inputs", *training_keys())
    _check_keys(block, allowed, here, "the block")
    names = _axis(block, "datasets", str, here)
    for d in names:
        if d not in datasets:
            raise ConfigError(f"{here}: datasets: {d!r} is not declared; declared: "
                              f"{', '.join(datasets)} (add a [datasets.{d}] table)")
        if getattr(datasets[d], "role", "train") != "train":
            raise ConfigError(f"{here}: datasets: {d!r} has role = \"test\" (evaluation only); "
                              "train on a role = \"train\" dataset and list it in evaluate.extra")
    models = _axis(block, "models", str, here)
    for m in models:
        if m not in list_models():
            raise ConfigError(f"{here}: models: unknown model {m!r}; allowed: "
                              f"{', '.join(list_models())}")
    hidden = _axis(block, "hidden", int, here)
    if any(h < 1 for h in hidden):
        raise ConfigError(f"{here}: hidden must be integers >= 1, got {list(hidden)}")
    overrides = {k: v for k, v in block.items() if k in training_keys()}
    for k, v in overrides.items():
        if isinstance(v, (list, dict)):
            raise ConfigError(f"{here}: {k} must be a single value, got {v!r}; for several "
                              "values write one [[grid]] block per value")
    return GridBlock(datasets=names, models=models, hidden=hidden,
                     inputs=_variants(block.get("inputs"), here), overrides=overrides)


def _variants(value: Any, here: str) -> tuple[tuple[str, tuple[str, ...] | None], ...]:
    if value is None:
        return ((ALL_INPUTS, None),)
    fix = 'e.g. inputs = { all = "all", no_avb = ["PLML", "PLMR"] } (the input channels kept)'
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{here}: inputs must be a table of variant = \"all\" or a list of "
                          f"input names; {fix}")
    out: list[tuple[str, tuple[str, ...] | None]] = []
    for variant, names in value.items():
        if not _NAME.match(variant):
            raise ConfigError(f"{here}: inputs: variant name {variant!r} must be lower-case "
                              "letters, digits, '_' or '-'")
        if names == ALL_INPUTS:
            out.append((variant, None))
        elif variant == ALL_INPUTS:
            raise ConfigError(f"{here}: inputs.all must be \"all\"; give a subset another "
                              f"variant name; {fix}")
        elif (isinstance(names, list) and names and all(isinstance(n, str) for n in names)
              and len(set(names)) == len(names)):
            out.append((variant, tuple(names)))
        else:
            raise ConfigError(f"{here}: inputs.{variant} must be \"all\" or a non-empty list of "
                              f"distinct input names, got {names!r}")
    return tuple(out)


def _train_config(
    training: Mapping[str, Any], overrides: Mapping[str, Any], model: str, hidden: int,
    seeds: tuple[int, ...], where: str, what: str,
) -> TrainConfig:
    values = {**training, **overrides, "model": model, "hidden": hidden, "seeds": list(seeds)}
    try:
        return TrainConfig.from_dict(values)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {what}: {exc}") from None


def _cells(
    grid: tuple[GridBlock, ...], training: Mapping[str, Any], seeds: tuple[int, ...],
    datasets: Mapping[str, Any], where: str,
) -> tuple[Cell, ...]:
    cells: dict[str, Cell] = {}
    for i, block in enumerate(grid):
        for d in block.datasets:
            known = _known_inputs(datasets[d])
            for variant, names in block.inputs:
                missing = [n for n in names or () if known is not None and n not in known]
                if missing:
                    raise ConfigError(f"{where}: [[grid]] block {i + 1}: inputs.{variant}: "
                                      f"{', '.join(missing)} not among dataset {d!r}'s inputs; "
                                      f"allowed: {', '.join(known or ())}")
                for m in block.models:
                    for h in block.hidden:
                        key = f"{d}/{m}-{h}" + ("" if variant == ALL_INPUTS else f"/{variant}")
                        config = _train_config(training, block.overrides, m, h, seeds, where,
                                               f"[[grid]] block {i + 1}")
                        cell = Cell(key=key, dataset=d, model=m, hidden=h, variant=variant,
                                    inputs=names, config=config, block=i)
                        if key in cells and cells[key].config != config:
                            raise ConfigError(f"{where}: cell {key} appears in [[grid]] blocks "
                                              f"{cells[key].block + 1} and {i + 1} with different"
                                              " settings; keep one")
                        cells.setdefault(key, cell)
    return tuple(cells.values())


def _known_inputs(spec: Any) -> tuple[str, ...] | None:
    """Input names of a dataset spec if knowable before simulating (its scenario's inputs)."""
    names = getattr(spec, "input_names", None)
    if names:
        return tuple(names)
    scenario = getattr(spec, "scenario", None)
    if isinstance(scenario, str) and scenario:
        from neuroreduce.scenarios import get_scenario, list_scenarios

        if scenario in list_scenarios():
            return get_scenario(scenario).inputs
    return None
