"""The grid of an experiment file: ``[[grid]]`` blocks expanded into cells.

Each block is the product of its axes (datasets x input variants x models x hidden sizes) with
training overrides (scalars, or the tables/lists of :data:`TABLE_FIELDS`); :func:`expand_grid`
resolves every cell's :class:`TrainConfig` (so a bad value is caught at load time) and its key
``"{dataset}/{model}-{hidden}[/{variant}]"``.

Folds: a ``split`` whose strategy gives several folds (``leave_groups_out``: every k-of-n
combination of groups; ``window_folds``: k) trains one cell per fold, keyed
``".../fold{i}"``. How many folds there are depends on the data (the number of groups), so
:func:`expand_grid` leaves such a cell as a *template* (``Cell.resolved`` False) and
:func:`resolve_folds` expands it once the dataset is built. ``split.fold`` picks folds: absent
or ``"all"`` = every fold (a strategy with one fold keeps the plain key), an integer or a list
of integers = only those (always keyed ``/fold{i}``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from neuroreduce.errors import ConfigError
from neuroreduce.training.config import TrainConfig

#: TrainConfig fields whose value is a table or a list (allowed as such in a ``[[grid]]`` block).
TABLE_FIELDS: tuple[str, ...] = ("model_options", "objective", "targets", "split")

#: TrainConfig fields set per cell by the grid and the seeds, so not allowed in ``[training]``.
CELL_FIELDS: tuple[str, ...] = ("model", "hidden", "seeds")
#: The list-valued axes of a ``[[grid]]`` block (besides ``inputs``).
GRID_AXES: tuple[str, ...] = ("datasets", "models", "hidden")
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
        fold: The split fold this cell trains on (``None``: not one of several folds).
        folds: Template cells only: the folds asked for (``None``: every fold).
        resolved: False for a template whose folds are known only once its dataset is built
            (see :func:`resolve_folds`).
    """

    key: str
    dataset: str
    model: str
    hidden: int
    variant: str
    inputs: tuple[str, ...] | None
    config: TrainConfig
    block: int
    fold: int | None = None
    folds: tuple[int, ...] | None = None
    resolved: bool = True

    @property
    def base_key(self) -> str:
        """The key without its ``/fold{i}`` part (what the folds of one cell share)."""
        suffix = f"/fold{self.fold}"
        return self.key[: -len(suffix)] if self.fold is not None else self.key

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
            **({} if self.fold is None else {"fold": self.fold, "base_key": self.base_key}),
        }


@dataclass(frozen=True)
class GridBlock:
    """One ``[[grid]]`` block: the product of its axes, with scalar training overrides.

    Attributes:
        datasets: Dataset names.
        models: Registered model names.
        hidden: Hidden sizes.
        inputs: ``(variant, names)`` pairs; ``names`` is ``None`` for all inputs.
        overrides: TrainConfig fields set for this block's cells (scalars, or tables/lists for
            :data:`TABLE_FIELDS`).
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


def check_keys(table: Mapping[str, Any], allowed: Sequence[str], where: str, what: str) -> None:
    """Raise a ConfigError naming the unknown keys of ``table`` and the ``allowed`` ones."""
    unknown = [k for k in table if k not in allowed]
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))} in {what}; "
                          f"allowed: {', '.join(allowed)}")


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


def parse_block(block: Any, index: int, datasets: Mapping[str, Any], where: str) -> GridBlock:
    """Check one ``[[grid]]`` table (``index`` 0-based) against the declared ``datasets``."""
    from neuroreduce.models.registry import list_models

    here = f"{where}: [[grid]] block {index + 1}"
    if not isinstance(block, dict):
        raise ConfigError(f"{here} must be a table")
    allowed = (*GRID_AXES, "inputs", *training_keys())
    check_keys(block, allowed, here, "the block")
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
        if isinstance(v, (list, dict)) and k not in TABLE_FIELDS:
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


def train_config(
    training: Mapping[str, Any], overrides: Mapping[str, Any], model: str, hidden: int,
    seeds: tuple[int, ...], where: str, what: str,
) -> TrainConfig:
    """The TrainConfig of one cell; a bad value is reported at ``where: what``.

    ``split.fold`` (folds to run, see the module docstring) is not part of it: the config
    trains fold 0 (see :func:`split_folds` and :func:`resolve_folds`).
    """
    values = {**training, **overrides, "model": model, "hidden": hidden, "seeds": list(seeds)}
    try:
        values["split"] = split_folds(values.get("split"))[0]
        return TrainConfig.from_dict(values)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {what}: {exc}") from None


def split_folds(value: Any) -> tuple[Any, tuple[int, ...] | None]:
    """A ``split`` table without its ``fold`` key, and the folds asked for (``None``: all).

    Raises:
        ConfigError: if ``split`` is not a table or ``fold`` is not "all", an integer >= 0 or a
            non-empty list of distinct integers >= 0.
    """
    if value is None:
        return None, None
    if not isinstance(value, Mapping):
        raise ConfigError(f"split must be a table such as {{ strategy = \"leave_groups_out\", "
                          f"options = {{ group = \"individual\" }} }}, got {value!r}")
    table = {k: v for k, v in value.items() if k != "fold"}
    fold = value.get("fold", "all")
    if fold == "all":
        return table, None
    items = fold if isinstance(fold, list) else [fold]
    if not items or len(set(items)) != len(items) or not all(
            isinstance(f, int) and not isinstance(f, bool) and f >= 0 for f in items):
        raise ConfigError(f"split.fold must be \"all\", an integer >= 0 or a list of distinct "
                          f"integers >= 0, got {fold!r}")
    return table, tuple(items)


def expand_grid(
    grid: tuple[GridBlock, ...], training: Mapping[str, Any], seeds: tuple[int, ...],
    datasets: Mapping[str, Any], where: str,
) -> tuple[Cell, ...]:
    """Every cell of ``grid`` in order dataset -> variant -> model -> hidden (keys unique)."""
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
                try:
                    folds = split_folds({**training, **block.overrides}.get("split"))[1]
                except ConfigError as exc:
                    raise ConfigError(f"{where}: [[grid]] block {i + 1}: {exc}") from None
                for m in block.models:
                    for h in block.hidden:
                        key = f"{d}/{m}-{h}" + ("" if variant == ALL_INPUTS else f"/{variant}")
                        config = train_config(training, block.overrides, m, h, seeds, where,
                                               f"[[grid]] block {i + 1}")
                        cell = Cell(key=key, dataset=d, model=m, hidden=h, variant=variant,
                                    inputs=names, config=config, block=i, folds=folds,
                                    resolved=config.split is None)
                        if key in cells and cells[key].config != config:
                            raise ConfigError(f"{where}: cell {key} appears in [[grid]] blocks "
                                              f"{cells[key].block + 1} and {i + 1} with different"
                                              " settings; keep one")
                        cells.setdefault(key, cell)
    return tuple(cells.values())


def split_key(cell: Cell) -> tuple[str, str]:
    """``(dataset, split without fold as JSON)``: what decides a template's number of folds."""
    import json

    split = cell.config.split
    table = {} if split is None else {k: v for k, v in split.to_dict().items() if k != "fold"}
    return cell.dataset, json.dumps(table, sort_keys=True)


def resolve_folds(cells: tuple[Cell, ...], counts: Mapping[tuple[str, str], int],
                  where: str) -> tuple[Cell, ...]:
    """Template cells expanded into one cell per fold (see the module docstring).

    Args:
        cells: Cells of :func:`expand_grid` (resolved ones are kept as they are).
        counts: :func:`split_key` -> number of folds of that split on that dataset.
        where: Names the experiment file in errors.

    Raises:
        ConfigError: if a cell asks for a fold its split does not have.
    """
    from dataclasses import replace

    out: list[Cell] = []
    for cell in cells:
        if cell.resolved:
            out.append(cell)
            continue
        n = counts[split_key(cell)]
        split = cell.config.split
        if cell.folds is None and n == 1:
            out.append(replace(cell, resolved=True))
            continue
        wanted = cell.folds if cell.folds is not None else tuple(range(n))
        bad = [f for f in wanted if f >= n]
        if bad:
            raise ConfigError(f"{where}: cell {cell.key}: split.fold {bad[0]} does not exist; "
                              f"split {split.strategy!r} gives folds 0..{n - 1} on dataset "
                              f"{cell.dataset!r}")
        for f in wanted:
            config = replace(cell.config, split=replace(split, fold=f))
            out.append(replace(cell, key=f"{cell.key}/fold{f}", config=config, fold=f,
                               folds=None, resolved=True))
    return tuple(out)


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
