"""The sweep file: which dataset, which search space, how many trials, where trials are stored.

A sweep file is TOML::

    [dataset]                      # either an existing file ...
    path = "data/fcm.h5"
    # ... or a scenario simulated once into <out>/dataset.h5:
    # scenario = "fcm"; n_stimuli = 40; dt_out_ms = 0.5; seed = 0

    [search]                       # TrainConfig fields: a list = choices, a table = a range,
    model = ["gru", "lstm"]        # a plain value = fixed
    hidden = { low = 2, high = 32, log = true }          # integers -> integer range
    learning_rate = { low = 1e-3, high = 0.1, log = true }
    batch_size = [8, 16]
    epochs = 200

    [search.model_options]         # the family's options (``neuroreduce models``), searched
    layers = [1, 2]                # like fields: Optuna names them "model_options.layers"

    [train]                        # fixed TrainConfig options (not searched), tables included:
    loss = "rmse"                  # model_options, objective, targets, split

    [sweep]
    trials = 40                    # total for the study; re-run with more to extend it
    sampler = "tpe"                # tpe | random
    seed = 0                       # sampler seed
    pruner = "median"              # median | hyperband | none
    seeds_per_trial = 3            # ensemble members per trial (seed spread of every trial)
    final_seeds = 10               # retrain the best configuration with this many seeds (0: off)
    metric = "valid_rmse"          # valid_<any registered score>, mean over seeds; its
                                   # direction (min/max) comes from the metrics registry
    metric_field = "spikes"        # typed tasks: the field scored (default: the first predicted
                                   # field of the metric's kind)
    storage = ""                   # Optuna storage URL; default sqlite:///<out>/sweep.db

The metric is computed on the validation split (free-running): ``valid_rmse`` of a dataset of
dense inputs -> continuous outputs as always; for a typed task (spike events, binary or
categorical targets, masks) the named field is scored with :mod:`neuroreduce.evaluation.
registry` (``valid_roc_auc`` of spikes is maximised, ``valid_accuracy`` of labels too).

Every problem is a :class:`~neuroreduce.errors.ConfigError` naming the key and what is allowed.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuroreduce.errors import ConfigError

#: TrainConfig fields a sweep may search (the others are fixed in ``[train]``), plus the
#: family's options as ``[search.model_options]``.
SEARCHABLE: tuple[str, ...] = (
    "model", "hidden", "learning_rate", "batch_size", "epochs", "loss", "early_stopping_patience",
    "optimizer", "weight_decay", "schedule", "plateau_patience", "plateau_factor", "clip_norm",
    "window_ms", "burn_in_ms", "teacher_forcing_interval", "warmup_ms", "forcing", "gtf_alpha",
    "gtf_alpha_end", "min_learning_rate", "windows_per_trial",
)
#: TrainConfig fields that may be fixed in ``[train]`` (seeds come from ``seeds_per_trial``).
FIXED: tuple[str, ...] = (*SEARCHABLE, "checkpoint_every", "threads", "engine", "model_options",
                          "betas", "objective", "targets", "split")
#: Searched fields that are names (choices only) and integers (integer ranges only).
_NAMES = ("model", "loss", "optimizer", "schedule", "forcing")
_INTEGERS = ("hidden", "batch_size", "epochs", "early_stopping_patience", "plateau_patience",
             "teacher_forcing_interval", "windows_per_trial")
OPTION_PREFIX = "model_options."
SAMPLERS: tuple[str, ...] = ("tpe", "random")
PRUNERS: tuple[str, ...] = ("median", "hyperband", "none")
_SECTIONS = ("dataset", "search", "train", "sweep")
_DATASET_KEYS = ("path", "scenario", "n_stimuli", "dt_out_ms", "seed")
_SWEEP_KEYS = (
    "trials", "sampler", "seed", "pruner", "seeds_per_trial", "metric", "metric_field", "storage",
    "study_name", "pruner_warmup_epochs", "pruner_startup_trials", "final_seeds",
)


def sweep_metrics() -> list[str]:
    """Allowed ``[sweep] metric`` values: ``valid_<name>`` of every registered metric that
    scores a field per split and has a direction (:mod:`neuroreduce.evaluation.registry`)."""
    from neuroreduce.evaluation.field_results import DEFAULT_METRICS
    from neuroreduce.evaluation.registry import TASK_METRICS

    return [f"valid_{n}" for n, i in sorted(TASK_METRICS.items())
            if i.kind in (*DEFAULT_METRICS, "spike_times") and i.direction is not None]


@dataclass(frozen=True)
class Choice:
    """A categorical parameter: one of ``values``."""

    values: tuple[Any, ...]


@dataclass(frozen=True)
class Range:
    """A numeric range ``[low, high]``; integer when both bounds are integers.

    Attributes:
        low, high: Inclusive bounds.
        log: Sample on a log scale.
        integer: Draw integers (``hidden``, ``batch_size``, ``epochs``).
    """

    low: float
    high: float
    log: bool = False
    integer: bool = False


@dataclass(frozen=True)
class DatasetSource:
    """Where the sweep's data comes from: an HDF5 dataset file, or a scenario to simulate.

    Attributes:
        path: Dataset file (relative paths are relative to the sweep file).
        scenario: Registered scenario simulated once into ``<out>/dataset.h5``.
        n_stimuli, dt_out_ms, seed: Simulation settings (trials, sampling interval in ms, seed).
    """

    path: str | None = None
    scenario: str | None = None
    n_stimuli: int = 40
    dt_out_ms: float = 0.5
    seed: int = 0


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep file.

    Attributes:
        dataset: Data source.
        search: Parameter name -> :class:`Choice` or :class:`Range` (searched).
        fixed: TrainConfig options held fixed (from ``[search]`` plain values and ``[train]``).
        trials: Total finished (complete or pruned) trials the study should hold.
        sampler: ``"tpe"`` or ``"random"``; ``seed`` seeds it.
        pruner: ``"median"``, ``"hyperband"`` or ``"none"``.
        pruner_warmup_epochs: Epochs before a trial may be pruned.
        pruner_startup_trials: Finished trials before pruning starts (median pruner).
        seeds_per_trial: Ensemble members (seeds 0..n-1) trained per trial.
        final_seeds: Retrain the best configuration with seeds 0..n-1 and report that seed
            spread too (0: report the best trial's own seeds only).
        metric: Objective ``"valid_<name>"`` (:func:`sweep_metrics`), minimised or maximised
            as the registry says (:attr:`direction`).
        metric_field: Typed tasks: the predicted field the metric scores (``None``: the first
            of the metric's kind).
        storage: Optuna storage URL, or ``None`` for ``sqlite:///<out>/sweep.db``.
        study_name: Name of the Optuna study (default: the sweep file's stem).
    """

    dataset: DatasetSource
    search: dict[str, Choice | Range] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    trials: int = 20
    sampler: str = "tpe"
    seed: int = 0
    pruner: str = "median"
    pruner_warmup_epochs: int = 0
    pruner_startup_trials: int = 2
    seeds_per_trial: int = 3
    final_seeds: int = 0
    metric: str = "valid_rmse"
    metric_field: str | None = None
    storage: str | None = None
    study_name: str = "sweep"

    @property
    def metric_name(self) -> str:
        """The registry name of :attr:`metric` (``"rmse"`` for ``"valid_rmse"``)."""
        return self.metric[len("valid_"):]

    @property
    def direction(self) -> str:
        """``"minimize"`` or ``"maximize"``: the metric's direction in the registry."""
        from neuroreduce.evaluation.registry import get_metric_info

        return "maximize" if get_metric_info(self.metric_name).direction == "max" else "minimize"


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and check a sweep file.

    Raises:
        ConfigError: missing/unreadable file, bad TOML, unknown key or bad value (one line,
            naming the key and the allowed values).
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"sweep file {path} does not exist") from exc
    except RecursionError:
        raise ConfigError(f"sweep file {path} is nested too deeply to be read as TOML") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read sweep file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"sweep file {path} is not valid TOML: {exc}") from exc
    return parse_sweep(data, base=path.parent, name=path.stem)


def parse_sweep(
    data: dict[str, Any], *, base: Path | None = None, name: str = "sweep"
) -> SweepSpec:
    """Check a sweep table (parsed TOML); relative dataset paths are taken from ``base``."""
    _keys(data, _SECTIONS, "section")
    dataset = _dataset(_table(data, "dataset"), base)
    search: dict[str, Choice | Range] = {}
    fixed: dict[str, Any] = {}
    for key, value in _searched(_table(data, "search", required=False)):
        param = _param(key, value)
        if param is None and key.startswith(OPTION_PREFIX):
            fixed.setdefault("model_options", {})[key[len(OPTION_PREFIX):]] = value
        elif param is None:
            fixed[key] = value
        else:
            search[key] = param
    for key, value in _table(data, "train", required=False).items():
        if key not in FIXED:
            raise ConfigError(f"[train] unknown option {key!r}; allowed: {', '.join(FIXED)}")
        if key in search:
            raise ConfigError(f"{key!r} is both searched ([search]) and fixed ([train]); keep one")
        if key == "model_options" and isinstance(value, dict):
            both = sorted(f"{OPTION_PREFIX}{k}" for k in value
                          if f"{OPTION_PREFIX}{k}" in search or k in fixed.get(key, {}))
            if both:
                raise ConfigError(f"{both[0]!r} is both searched ([search]) and fixed ([train]);"
                                  " keep one")
            value = {**fixed.get(key, {}), **value}
        fixed[key] = value
    _check_options(search, fixed)
    sweep = _table(data, "sweep", required=False)
    _keys(sweep, _SWEEP_KEYS, "[sweep] key")
    options: dict[str, Any] = {"study_name": str(sweep.get("study_name", name))}
    for key in ("trials", "seeds_per_trial"):
        if key in sweep:
            options[key] = _int(f"[sweep] {key}", sweep[key], minimum=1)
    for key in ("seed", "pruner_warmup_epochs", "pruner_startup_trials", "final_seeds"):
        if key in sweep:
            options[key] = _int(f"[sweep] {key}", sweep[key], minimum=0)
    for key, allowed in (("sampler", SAMPLERS), ("pruner", PRUNERS),
                         ("metric", tuple(sweep_metrics()))):
        if key in sweep:
            if sweep[key] not in allowed:
                raise ConfigError(
                    f"[sweep] {key} = {sweep[key]!r} is not allowed; "
                    f"use one of {', '.join(allowed)}"
                )
            options[key] = sweep[key]
    if "metric_field" in sweep:
        if not isinstance(sweep["metric_field"], str) or not sweep["metric_field"]:
            raise ConfigError(f"[sweep] metric_field must be a field name, got "
                              f"{sweep['metric_field']!r}")
        options["metric_field"] = sweep["metric_field"]
    if sweep.get("storage"):
        if not isinstance(sweep["storage"], str) or "://" not in sweep["storage"]:
            raise ConfigError(
                f"[sweep] storage = {sweep['storage']!r} is not a database URL; use e.g. "
                "sqlite:///sweep.db or postgresql://user@host/db, or leave it out"
            )
        options["storage"] = sweep["storage"]
    spec = SweepSpec(dataset=dataset, search=search, fixed=fixed, **options)
    check_space(spec)
    return spec


#: Check every combination of the searched dimensions' extremes up to this many; beyond it,
#: each dimension's extremes with the others at their first value (for every model choice).
_FULL_PRODUCT_LIMIT = 256


def _extremes(param: Choice | Range) -> tuple[Any, ...]:
    """Every choice, or a range's bounds (as the type Optuna draws: int or float)."""
    if isinstance(param, Choice):
        return param.values
    cast = int if param.integer else float
    return tuple(dict.fromkeys((cast(param.low), cast(param.high))))


def space_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """The trial parameters :func:`check_space` builds a ``TrainConfig`` for: the whole
    product of the extremes when small, else every model with each dimension's extremes."""
    names = list(spec.search)
    values = [_extremes(spec.search[n]) for n in names]
    if math.prod(len(v) for v in values) <= _FULL_PRODUCT_LIMIT:
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]
    base = {n: v[0] for n, v in zip(names, values, strict=True)}
    models = values[names.index("model")] if "model" in names else (base.get("model"),)
    points = []
    for model in models:
        start = {**base, "model": model} if "model" in names else base
        points.append(start)
        for n, vals in zip(names, values, strict=True):
            points += [{**start, n: v} for v in vals if n != "model"]
    return points


def check_space(spec: SweepSpec) -> None:
    """Build the ``TrainConfig`` of the extremes of every searched dimension (and of the
    fixed values), so that a value no trial could train with is refused when the file is
    loaded, before any dataset is simulated.

    Raises:
        ConfigError: one line naming the parameters tried and what is wrong.
    """
    from neuroreduce.training import TrainConfig

    for point in space_points(spec):
        options = {k[len(OPTION_PREFIX):]: v for k, v in point.items()
                   if k.startswith(OPTION_PREFIX)}
        values = {**spec.fixed, **{k: v for k, v in point.items()
                                   if not k.startswith(OPTION_PREFIX)},
                  "seeds": list(range(spec.seeds_per_trial))}
        if options:
            values["model_options"] = {**spec.fixed.get("model_options", {}), **options}
        try:
            TrainConfig.from_dict(values)
        except (ConfigError, TypeError, ValueError) as exc:
            where = ", ".join(f"{k} = {v!r}" for k, v in point.items()) or "the fixed values"
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(f"[search] no trial can train with {where}: {detail}") from None


def _dataset(table: dict[str, Any], base: Path | None) -> DatasetSource:
    _keys(table, _DATASET_KEYS, "[dataset] key")
    if ("path" in table) == ("scenario" in table):
        raise ConfigError("[dataset] needs exactly one of path (an HDF5 dataset file) or scenario")
    if "path" in table:
        extra = sorted(set(table) - {"path"})
        if extra:
            raise ConfigError(f"[dataset] {', '.join(extra)} only apply with scenario, not path")
        p = Path(str(table["path"]))
        if base is not None and not p.is_absolute():
            p = base / p
        return DatasetSource(path=str(p))
    options: dict[str, Any] = {"scenario": str(table["scenario"])}
    if "n_stimuli" in table:
        options["n_stimuli"] = _int("[dataset] n_stimuli", table["n_stimuli"], minimum=3)
    if "seed" in table:
        options["seed"] = _int("[dataset] seed", table["seed"], minimum=0)
    if "dt_out_ms" in table:
        dt = table["dt_out_ms"]
        if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not dt > 0:
            raise ConfigError(f"[dataset] dt_out_ms must be a number > 0 (ms), got {dt!r}")
        options["dt_out_ms"] = float(dt)
    return DatasetSource(**options)


def _check_options(search: dict[str, Choice | Range], fixed: dict[str, Any]) -> None:
    """Every model a trial may use must have the model options searched or fixed."""
    from dataclasses import fields

    from neuroreduce.models.registry import get_family

    names = [k[len(OPTION_PREFIX):] for k in search if k.startswith(OPTION_PREFIX)]
    names += list(fixed.get("model_options") or {})
    model = search.get("model")
    models = model.values if isinstance(model, Choice) else (fixed.get("model", "gru"),)
    for m in models:
        try:
            allowed = [f.name for f in fields(get_family(str(m)).config) if f.name != "hidden"]
        except ConfigError:
            continue  # an unknown model is reported by the trial's TrainConfig
        for name in names:
            if name not in allowed:
                raise ConfigError(f"model_options.{name}: model {m!r} has no option {name!r}; "
                                  f"its options: {', '.join(allowed) or 'none besides hidden'}")


def _searched(table: dict[str, Any]) -> list[tuple[str, Any]]:
    """``[search]`` entries, ``[search.model_options]`` flattened to ``model_options.<name>``."""
    out = []
    for key, value in table.items():
        if key == "model_options":
            if not isinstance(value, dict) or not value:
                raise ConfigError("[search] model_options must be a table of the family's "
                                  "options, e.g. [search.model_options] layers = [1, 2]")
            out += [(f"{OPTION_PREFIX}{k}", v) for k, v in value.items()]
        elif key not in SEARCHABLE:
            raise ConfigError(
                f"[search] {key!r} cannot be searched; allowed: "
                f"{', '.join(SEARCHABLE)}, model_options"
            )
        else:
            out.append((key, value))
    return out


def _param(key: str, value: Any) -> Choice | Range | None:
    if isinstance(value, list):
        if not value:
            raise ConfigError(f"[search] {key} = [] has no choices; give at least one value")
        return Choice(tuple(value))
    if not isinstance(value, dict):
        return None
    _keys(value, ("low", "high", "log"), f"[search] {key} range key")
    if "low" not in value or "high" not in value:
        raise ConfigError(f"[search] {key} range needs low and high, e.g. {{ low = 2, high = 32 }}")
    low, high, log = value["low"], value["high"], value.get("log", False)
    for bound in (low, high):
        number = isinstance(bound, (int, float)) and not isinstance(bound, bool)
        if not number or not math.isfinite(bound):
            raise ConfigError(f"[search] {key} bounds must be finite numbers, got {bound!r}")
    if not low <= high:
        raise ConfigError(f"[search] {key} needs low <= high, got low = {low}, high = {high}")
    if not isinstance(log, bool):
        raise ConfigError(f"[search] {key} log must be true or false, got {log!r}")
    if log and low <= 0:
        raise ConfigError(f"[search] {key} log range needs low > 0, got {low}")
    integer = isinstance(low, int) and isinstance(high, int)
    if key in _INTEGERS and not integer:
        raise ConfigError(f"[search] {key} is an integer; give integer bounds, got {low}, {high}")
    if key in _NAMES:
        raise ConfigError(f"[search] {key} is a name; give a list of choices, not a range")
    return Range(low=low, high=high, log=log, integer=integer)


def _table(data: dict[str, Any], key: str, *, required: bool = True) -> dict[str, Any]:
    if key not in data:
        if required:
            raise ConfigError(f"the sweep file needs a [{key}] section")
        return {}
    if not isinstance(data[key], dict):
        raise ConfigError(f"[{key}] must be a table, got {type(data[key]).__name__}")
    return data[key]


def _keys(table: dict[str, Any], allowed: tuple[str, ...], what: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"unknown {what} {key!r}; allowed: {', '.join(allowed)}")


def _int(name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value
