"""Split strategies: which pieces of which trials train, validate and test a model.

A strategy turns a :class:`SplitContext` (trial count and length, stimulus families, group ids,
seed) into one or more folds. Each fold is a :class:`SplitPlan`: pieces
``Piece(trial, start, stop, split)`` (sample indices, ``stop`` exclusive; split 0 = train,
1 = valid, 2 = test) that cover every sample of every trial exactly once. Whole-trial strategies
give pieces spanning ``[0, n_time)``. A run records its :class:`SplitSpec` (strategy name,
resolved options, fold) with :meth:`SplitSpec.to_dict`; the same spec and context give the same
plan again.

Strategies (:data:`SPLIT_STRATEGIES`):

- ``stratified``: trials by stimulus family, as :func:`neuroreduce.datasets.splits.make_splits`.
- ``leave_groups_out``: every ``k``-of-``n`` combination of the groups of ``group`` is the test
  set once (folds in sorted combination order); validation is a family-stratified fraction of
  the remaining trials, or (``valid="group"``) the next group after the test groups in sorted
  cyclic order.
- ``window_folds``: every trial cut into non-overlapping windows of ``window`` samples (the last
  window of a trial also takes the remainder), shuffled within each group and dealt to ``k``
  folds in turn; fold ``i`` tests on fold ``i``, validates on fold ``(i + 1) % k`` and trains on
  the rest. Neighbouring windows of one trial can fall in different splits.
- ``time_segment``: the first ``train_ms`` of every trial train, the next ``valid_ms``
  validate, the rest test (e.g. 38 s train and 22 s test of a 60 s trace). With
  ``valid_ms = 0`` the last ``valid_fraction`` of the train segment validates instead. With
  ``context = "preceding"`` each valid and test piece also carries the samples before it in the
  same trial (at most ``context_ms``; ``None``: all of them) as unscored context: their inputs
  are given, their targets are missing, so a model enters the scored segment in the state the
  trial's own history put it in rather than from rest. ``context = "none"`` (the default) cuts
  the pieces bare.

A piece with context has ``context_start < start``: samples ``[context_start, start)`` are
context (inputs only), ``[start, stop)`` are scored. Context never counts as covering a sample.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from neuroreduce.datasets.splits import DEFAULT_FRACTIONS, make_splits
from neuroreduce.errors import ConfigError, unknown_name_error

SPLIT_LABELS: tuple[str, str, str] = ("train", "valid", "test")


@dataclass(frozen=True)
class SplitContext:
    """What a strategy needs to know about the data.

    Attributes:
        n_trials: Number of trials.
        n_time: Samples per trial.
        dt_ms: Sampling interval (ms).
        families: Stimulus family of each trial, length ``n_trials`` (empty: one family).
        groups: Group name (e.g. ``"animal"``) -> int id per trial, shape ``[trial]``.
        seed: Seed of every random choice.
    """

    n_trials: int
    n_time: int
    dt_ms: float
    families: tuple[str, ...] = ()
    groups: Mapping[str, np.ndarray] = field(default_factory=lambda: MappingProxyType({}))
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_trials < 1 or self.n_time < 1 or not self.dt_ms > 0:
            raise ConfigError(
                "a split needs n_trials >= 1, n_time >= 1 and dt_ms > 0; got "
                f"{self.n_trials}, {self.n_time}, {self.dt_ms}"
            )
        fams = tuple(str(f) for f in self.families) or ("",) * self.n_trials
        if len(fams) != self.n_trials:
            raise ConfigError(f"families has {len(fams)} entries for {self.n_trials} trials")
        groups = {}
        for name, ids in self.groups.items():
            arr = np.asarray(ids)
            if arr.shape != (self.n_trials,) or not np.issubdtype(arr.dtype, np.integer):
                raise ConfigError(
                    f"group {name!r} must be one int id per trial, shape ({self.n_trials},); "
                    f"got {arr.dtype} {arr.shape}"
                )
            groups[str(name)] = arr.astype(np.int64)
        object.__setattr__(self, "families", fams)
        object.__setattr__(self, "groups", MappingProxyType(groups))

    def group(self, name: str) -> np.ndarray:
        """The ids of group ``name`` per trial (error lists the known groups)."""
        if name in self.groups:
            return self.groups[name]
        if not self.groups:
            raise ConfigError(
                f"the dataset has no group fields, so it cannot be split by group {name!r}; add "
                "a group field (role 'group', e.g. the individual of each trial)"
            )
        raise unknown_name_error("group", name, list(self.groups))


class Piece(NamedTuple):
    """Samples ``[start, stop)`` of trial ``trial`` go to ``split`` (0/1/2: train/valid/test).

    ``context_start`` (``None``: no context) is the first sample of the unscored context that
    precedes the piece: samples ``[context_start, start)`` come along as inputs only.
    """

    trial: int
    start: int
    stop: int
    split: int
    context_start: int | None = None


@dataclass(frozen=True)
class SplitPlan:
    """One fold: its pieces and a one-line human description."""

    pieces: tuple[Piece, ...]
    description: str

    def of(self, split: int) -> tuple[Piece, ...]:
        """The pieces of ``split`` (0 train, 1 valid, 2 test)."""
        return tuple(p for p in self.pieces if p.split == split)

    def sample_splits(self, n_trials: int, n_time: int) -> np.ndarray:
        """int8 ``[trial, time]``: the split of every sample, -1 where no piece covers it.

        Raises:
            ConfigError: if two pieces overlap or a piece lies outside the trials.
        """
        out = np.full((n_trials, n_time), -1, dtype=np.int8)
        for p in self.pieces:
            if not (0 <= p.trial < n_trials and 0 <= p.start < p.stop <= n_time):
                raise ConfigError(f"piece {p} lies outside {n_trials} trials x {n_time} samples")
            if p.context_start is not None and not 0 <= p.context_start <= p.start:
                raise ConfigError(f"piece {p}: context_start must lie in 0..start")
            if (out[p.trial, p.start : p.stop] >= 0).any():
                raise ConfigError(f"piece {p} overlaps another piece")
            out[p.trial, p.start : p.stop] = p.split
        return out

    def trial_splits(self, n_trials: int, n_time: int) -> np.ndarray:
        """int8 ``[trial]``: the split of each trial, for plans of whole trials only.

        Raises:
            ConfigError: if some trial is cut into pieces of different splits or not covered.
        """
        s = self.sample_splits(n_trials, n_time)
        if (s < 0).any() or (s != s[:, :1]).any():
            raise ConfigError(f"plan {self.description!r} does not assign whole trials")
        return s[:, 0].copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: description and ``[trial, start, stop, split]`` rows (with a fifth
        entry, ``context_start``, for pieces that carry context)."""
        return {"description": self.description,
                "pieces": [list(p) if p.context_start is not None else list(p[:4])
                           for p in self.pieces]}


Folds = Callable[[SplitContext, Mapping[str, Any]], list[SplitPlan]]
_REQUIRED = object()


@dataclass(frozen=True)
class Option:
    """One strategy option: its default (``_REQUIRED`` if none) and a checker that returns the
    cleaned value or raises ``ValueError`` with a short reason."""

    default: Any
    check: Callable[[Any], Any]


@dataclass(frozen=True)
class SplitStrategy:
    """A registry entry: name, one-line description, options, and the fold builder."""

    name: str
    description: str
    options: Mapping[str, Option]
    folds: Folds


@dataclass(frozen=True)
class SplitSpec:
    """Which strategy, with which options, and which fold of it a run uses.

    ``options`` is resolved on creation: unknown names are rejected, values checked and missing
    ones filled with their defaults, so :meth:`to_dict` records everything that decides the split.
    """

    strategy: str
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    fold: int = 0

    def __post_init__(self) -> None:
        entry = get_split_strategy(self.strategy)
        unknown = sorted(set(self.options) - set(entry.options))
        if unknown:
            raise ConfigError(
                f"unknown option {unknown[0]!r} for split strategy {self.strategy!r}; "
                f"allowed: {', '.join(entry.options) or '(none)'}"
            )
        resolved = {}
        for name, opt in entry.options.items():
            value = self.options.get(name, opt.default)
            if value is _REQUIRED:
                raise ConfigError(f"split strategy {self.strategy!r} needs option {name!r}")
            try:
                resolved[name] = opt.check(value)
            except (TypeError, ValueError) as err:
                raise ConfigError(
                    f"split strategy {self.strategy!r}, option {name}={value!r}: {err}"
                ) from None
        if isinstance(self.fold, bool) or not isinstance(self.fold, int) or self.fold < 0:
            raise ConfigError(f"fold must be an integer >= 0; got {self.fold!r}")
        object.__setattr__(self, "options", MappingProxyType(resolved))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (tuples become lists)."""
        opts = {k: list(v) if isinstance(v, tuple) else v for k, v in self.options.items()}
        return {"strategy": self.strategy, "options": opts, "fold": self.fold}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SplitSpec:
        """Inverse of :meth:`to_dict`, with the same checks as the constructor."""
        extra = sorted(set(data) - {"strategy", "options", "fold"})
        if extra or "strategy" not in data:
            raise ConfigError(
                "a split spec has keys strategy, options, fold; "
                + (f"unknown key {extra[0]!r}" if extra else "'strategy' is missing")
            )
        options = data.get("options", {})
        if not isinstance(options, Mapping):
            raise ConfigError(f"split options must be a table; got {options!r}")
        return cls(str(data["strategy"]), dict(options), data.get("fold", 0))


def plans(spec: SplitSpec, ctx: SplitContext) -> list[SplitPlan]:
    """Every fold of ``spec``'s strategy on ``ctx``, in their fixed order."""
    return get_split_strategy(spec.strategy).folds(ctx, spec.options)


def n_folds(spec: SplitSpec, ctx: SplitContext) -> int:
    """Number of folds ``spec`` gives on ``ctx``."""
    return len(plans(spec, ctx))


def plan(spec: SplitSpec, ctx: SplitContext) -> SplitPlan:
    """The fold ``spec.fold`` of ``spec`` on ``ctx`` (error if there is no such fold)."""
    folds = plans(spec, ctx)
    if spec.fold >= len(folds):
        raise ConfigError(
            f"fold {spec.fold} does not exist: split {spec.strategy!r} gives {len(folds)} folds"
        )
    return folds[spec.fold]


# --- option checkers ---------------------------------------------------------------------------


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ValueError("must be a number")
    return float(value)


def _fractions(value: Any) -> tuple[float, float, float]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError("must be three fractions (train, valid, test)")
    frac = tuple(_number(f) for f in value)
    make_splits([], fractions=frac)  # the owner of stratified splits checks its fractions
    return frac  # type: ignore[return-value]


def _int_at_least(low: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if _number(value) != int(value) or value < low:
            raise ValueError(f"must be an integer >= {low}")
        return int(value)

    return check


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a group name")
    return value


def _optional_name(value: Any) -> str | None:
    return None if value is None else _name(value)


def _unit_fraction(value: Any) -> float:
    if not 0.0 <= _number(value) < 1.0:
        raise ValueError("must be a fraction in [0, 1)")
    return float(value)


def _valid(value: Any) -> float | str:
    if value == "group":
        return "group"
    try:
        return _unit_fraction(value)
    except ValueError:
        raise ValueError('must be a fraction in [0, 1) or "group"') from None


def _ms(value: Any) -> float:
    if not _number(value) >= 0.0:
        raise ValueError("must be a time >= 0 ms")
    return float(value)


def _optional_ms(value: Any) -> float | None:
    return None if value is None else _ms(value)


CONTEXT_MODES: tuple[str, ...] = ("none", "preceding")


def _context(value: Any) -> str:
    if value not in CONTEXT_MODES:
        raise ValueError(f"must be one of {', '.join(repr(m) for m in CONTEXT_MODES)}")
    return str(value)


# --- strategies --------------------------------------------------------------------------------


def _whole_trials(split: np.ndarray, n_time: int, description: str) -> SplitPlan:
    pieces = tuple(Piece(i, 0, n_time, int(s)) for i, s in enumerate(split))
    return SplitPlan(pieces, description)


def _counts(split: np.ndarray) -> str:
    return "/".join(str(int((split == s).sum())) for s in range(3)) + " trials"


def _stratified(ctx: SplitContext, opts: Mapping[str, Any]) -> list[SplitPlan]:
    split = make_splits(ctx.families, fractions=opts["fractions"], seed=ctx.seed)
    desc = f"stratified by family, fractions {opts['fractions']}, seed {ctx.seed}: "
    return [_whole_trials(split, ctx.n_time, desc + _counts(split))]


def _leave_groups_out(ctx: SplitContext, opts: Mapping[str, Any]) -> list[SplitPlan]:
    name, k, valid = opts["group"], opts["k"], opts["valid"]
    g = ctx.group(name)
    ids = sorted(int(i) for i in np.unique(g))
    spare = 2 if valid == "group" else 1
    if k + spare > len(ids):
        raise ConfigError(
            f"leave_groups_out: {len(ids)} {name} group(s) cannot hold k={k} test group(s) and "
            f"{spare} more for train/valid"
        )
    folds = []
    for i, test_ids in enumerate(itertools.combinations(ids, k)):
        split = np.zeros(ctx.n_trials, dtype=np.int8)
        split[np.isin(g, test_ids)] = 2
        if valid == "group":
            after = ids.index(test_ids[-1]) + 1
            valid_id = next(j for j in ids[after:] + ids[:after] if j not in test_ids)
            split[g == valid_id] = 1
            how = f"{name} {valid_id}"
        else:
            rest = np.flatnonzero(split == 0)
            sub = make_splits(
                [ctx.families[r] for r in rest], fractions=(1 - valid, valid, 0), seed=ctx.seed + i
            )
            split[rest[sub == 1]] = 1
            how = f"{valid:g} of the rest by family"
        desc = f"{name} {list(test_ids)} held out (test), valid {how}: {_counts(split)}"
        folds.append(_whole_trials(split, ctx.n_time, desc))
    return folds


def _window_folds(ctx: SplitContext, opts: Mapping[str, Any]) -> list[SplitPlan]:
    w, k, name = opts["window"], opts["k"], opts["group"]
    if w > ctx.n_time:
        raise ConfigError(f"window_folds: window {w} exceeds the {ctx.n_time} samples of a trial")
    g = np.zeros(ctx.n_trials, dtype=np.int64) if name is None else ctx.group(name)
    per_trial = ctx.n_time // w
    if ctx.n_trials * per_trial < k:
        raise ConfigError(
            f"window_folds: {ctx.n_trials * per_trial} windows cannot fill k={k} folds"
        )
    rng = np.random.default_rng(ctx.seed)
    fold_of: dict[tuple[int, int], int] = {}
    offset = 0
    for gid in np.unique(g):
        windows = [(int(t), j) for t in np.flatnonzero(g == gid) for j in range(per_trial)]
        order = rng.permutation(len(windows))
        for pos, idx in enumerate(order):
            fold_of[windows[idx]] = (offset + pos) % k
        offset += len(windows)

    def bounds(j: int) -> tuple[int, int]:
        return j * w, ctx.n_time if j == per_trial - 1 else (j + 1) * w

    by = "" if name is None else f" within each {name}"
    folds = []
    for i in range(k):
        role = {i: 2, (i + 1) % k: 1}
        pieces = tuple(
            Piece(t, *bounds(j), role.get(fold_of[(t, j)], 0))
            for t in range(ctx.n_trials)
            for j in range(per_trial)
        )
        desc = (
            f"windows of {w} samples ({w * ctx.dt_ms:g} ms) dealt to {k} folds{by}: "
            f"fold {i} test, fold {(i + 1) % k} valid"
        )
        folds.append(SplitPlan(pieces, desc))
    return folds


def _time_segment(ctx: SplitContext, opts: Mapping[str, Any]) -> list[SplitPlan]:
    train_end = int(round(opts["train_ms"] / ctx.dt_ms))
    if opts["valid_ms"] > 0:
        cuts = (train_end, train_end + int(round(opts["valid_ms"] / ctx.dt_ms)))
    else:
        cuts = (train_end - int(round(opts["valid_fraction"] * train_end)), train_end)
    if not 0 < cuts[0] <= cuts[1] < ctx.n_time:
        raise ConfigError(
            f"time_segment: train/valid/test cut at samples {cuts} must leave each of train and "
            f"test at least one of the {ctx.n_time} samples (dt {ctx.dt_ms} ms)"
        )
    edges = (0, *cuts, ctx.n_time)
    preceding = opts["context"] == "preceding"
    most = None if opts["context_ms"] is None else int(round(opts["context_ms"] / ctx.dt_ms))

    def context_start(s: int) -> int | None:
        if not preceding or s == 0:
            return None
        return 0 if most is None else max(0, edges[s] - most)

    pieces = tuple(
        Piece(t, edges[s], edges[s + 1], s, context_start(s))
        for t in range(ctx.n_trials)
        for s in range(3)
        if edges[s + 1] > edges[s]
    )
    ms = [f"{e * ctx.dt_ms:g}" for e in edges]
    desc = (
        f"every trial: train {ms[0]}-{ms[1]} ms, valid {ms[1]}-{ms[2]} ms, "
        f"test {ms[2]}-{ms[3]} ms"
    )
    if preceding:
        desc += ("; valid/test pieces carry the preceding " + (
            "samples" if most is None else f"{most * ctx.dt_ms:g} ms") + " as unscored context")
    return [SplitPlan(pieces, desc)]


_STRATEGIES = (
    SplitStrategy(
        "stratified",
        "whole trials, stratified by stimulus family",
        {"fractions": Option(DEFAULT_FRACTIONS, _fractions)},
        _stratified,
    ),
    SplitStrategy(
        "leave_groups_out",
        "every k-of-n combination of groups is the test set once",
        {"group": Option(_REQUIRED, _name), "k": Option(1, _int_at_least(1)),
         "valid": Option(0.25, _valid)},
        _leave_groups_out,
    ),
    SplitStrategy(
        "window_folds",
        "k folds of non-overlapping windows, balanced within groups",
        {"window": Option(_REQUIRED, _int_at_least(1)), "k": Option(5, _int_at_least(3)),
         "group": Option(None, _optional_name)},
        _window_folds,
    ),
    SplitStrategy(
        "time_segment",
        "the first part of every trial trains, the rest tests",
        {"train_ms": Option(_REQUIRED, _ms), "valid_ms": Option(0.0, _ms),
         "valid_fraction": Option(0.2, _unit_fraction),
         "context": Option("none", _context), "context_ms": Option(None, _optional_ms)},
        _time_segment,
    ),
)  # fmt: skip
SPLIT_STRATEGIES: dict[str, SplitStrategy] = {s.name: s for s in _STRATEGIES}


def get_split_strategy(name: str) -> SplitStrategy:
    """The strategy called ``name`` (error lists the known ones)."""
    try:
        return SPLIT_STRATEGIES[name]
    except KeyError:
        raise unknown_name_error("split strategy", name, list(SPLIT_STRATEGIES)) from None
