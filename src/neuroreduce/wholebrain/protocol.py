"""The generalisation protocol of Wang et al. (2023): k-of-n training worms, 10-fold CV inside.

For every ``k``-of-``n`` combination of the worms in use (``n`` = the distinct ids of the
window dataset's ``worm`` group field) the windows of the ``k`` *training worms* are shuffled
(seeded) and dealt to ``folds`` folds; fold ``f`` tests ("training set" accuracy: windows of
the same worms, as the paper's Table 1 column), fold ``(f + 1) % folds`` validates (best epoch)
and the rest trains. Each trained model is then scored on every window of the left-out worms
("unseen") and of another recording set ("other set", e.g. the Nichols worms in the paper's
layout; optional). One *cell* = one (combination, fold, model): it trains with
:func:`neuroreduce.training.trainer.train` in memory and returns accuracies and confusion
matrices. The grid of cells runs on the project's execution backends
(:func:`neuroreduce.execution.run_tasks`: worker processes, or Ray); ``folds_per_cell`` > 1
groups folds of one (combination, model) into one task (the data are loaded once per worker,
the folds fitted one after another).

Windows follow Layout 2 of the whole-brain task (``wholebrain/windows.py``): one trial per
window, the label field's value counts at the window's last frame only (earlier frames -1),
group field ``worm``. Accuracy is the fraction of scored windows (last-frame label not the
ignored label) whose most probable class (members' mean probability) is the label.

Neighbouring windows (stride 1) of one worm overlap, so the "training set" column shares frames
between train and test windows, as in the paper; the unseen worms share nothing with training.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.errors import ConfigError, DatasetError
from neuroreduce.execution import Backend, run_tasks

#: The evaluation sets of a cell, in table order (Table 1's columns).
SETS: tuple[str, ...] = ("test", "unseen", "other")


@dataclass(frozen=True)
class ProtocolConfig:
    """Which combinations and folds the protocol runs.

    Attributes:
        k: Training worms per combination (1 <= k <= n; k = n leaves no unseen worm).
        folds: Cross-validation folds of the training worms' shuffled windows (>= 3).
        run_folds: Run only the first this many folds of each combination (reduced grids);
            None: all ``folds``.
        max_combinations: Run only the first this many combinations (sorted order); None: all.
        worms: The worms in use (ids of the group field); empty: every worm of the data.
        group: The group field naming each window's worm.
        label: The label field (categorical) to classify.
        seed: Seed of the window shuffling (combination ``c`` uses ``seed + c``).
        folds_per_cell: Folds of one (combination, model) run as one task (>= 1).
    """

    k: int = 1
    folds: int = 10
    run_folds: int | None = None
    max_combinations: int | None = None
    worms: tuple[str, ...] = ()
    group: str = "worm"
    label: str = "behaviour"
    seed: int = 0
    folds_per_cell: int = 1

    def __post_init__(self) -> None:
        for name, low in (("k", 1), ("folds", 3), ("folds_per_cell", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"protocol {name} must be an integer >= {low}, got {value!r}")
        for name in ("run_folds", "max_combinations"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ConfigError(f"protocol {name} must be None or an integer >= 1, "
                                  f"got {value!r}")
        if self.run_folds is not None and self.run_folds > self.folds:
            raise ConfigError(f"protocol run_folds={self.run_folds} exceeds folds={self.folds}")
        object.__setattr__(self, "worms", tuple(str(w) for w in self.worms))


@dataclass(frozen=True)
class ModelSpec:
    """One model of the comparison and how it trains.

    Attributes:
        name: Row label in the tables (e.g. ``"SVM"``, ``"GNN"``).
        family: Registered model family (``svm``, ``mlp``, ``gru``, ``gnn_inferred``, ...).
        hidden: Hidden units (the paper: 16 for classification).
        epochs: Training epochs (the paper: 800); ignored by non-gradient families.
        learning_rate: Adam step size (the paper: 1e-3).
        batch_size: Windows per minibatch.
        patience: Early stopping after this many epochs without a better validation loss
            (None: all epochs).
        plateau_patience: Epochs without improvement before the rate is multiplied by 0.25
            (the paper: 50).
        seeds: Ensemble members (their mean probability classifies).
        options: The family's further hyper-parameters as ``(name, value)`` pairs.
    """

    name: str
    family: str
    hidden: int = 16
    epochs: int = 800
    learning_rate: float = 1e-3
    batch_size: int = 64
    patience: int | None = None
    plateau_patience: int = 50
    seeds: tuple[int, ...] = (0,)
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        from neuroreduce.models.registry import get_family

        if not self.name:
            raise ConfigError("a protocol model needs a name")
        get_family(self.family)  # unknown family: one line listing the known ones
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        object.__setattr__(self, "options", tuple((str(k), v) for k, v in self.options))
        self.train_config()  # every training value checked now, before any work

    def train_config(self) -> Any:
        """The :class:`~neuroreduce.training.config.TrainConfig` of one cell of this model."""
        from neuroreduce.training.config import TrainConfig

        return TrainConfig(
            model=self.family, hidden=self.hidden, seeds=self.seeds, epochs=self.epochs,
            batch_size=self.batch_size, learning_rate=self.learning_rate,
            early_stopping_patience=self.patience, schedule="plateau",
            plateau_patience=self.plateau_patience, plateau_factor=0.25,
            model_options=self.options, checkpoint_every=10**6,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        d = dataclasses.asdict(self)
        d["seeds"] = list(self.seeds)
        d["options"] = {k: v for k, v in self.options}
        return d


@dataclass(frozen=True)
class FoldPlan:
    """One (combination, fold): which windows train, validate and test, and the unseen worms.

    Attributes:
        combination: Index of the combination in sorted order.
        train_worms: The ``k`` training worms.
        unseen_worms: The other worms in use (evaluated on all their windows).
        fold: Fold index (``0 .. folds-1``).
        train: Window (trial) indices that train, int64 ``[n]``.
        valid: Window indices that validate.
        test: Window indices of the training worms held out ("training set" accuracy).
        unseen: Window indices of the unseen worms.
    """

    combination: int
    train_worms: tuple[str, ...]
    unseen_worms: tuple[str, ...]
    fold: int
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    unseen: np.ndarray

    @property
    def key(self) -> str:
        """``c<combination>/f<fold>``."""
        return f"c{self.combination:03d}/f{self.fold:02d}"


def worm_ids(windows: Dataset, group: str = "worm") -> tuple[np.ndarray, tuple[str, ...]]:
    """Per-window worm index ``[trial]`` and the worm names (the group field's classes).

    Raises:
        DatasetError: if the dataset has no such group field.
    """
    if not windows.has_field(group):
        raise DatasetError(f"the window dataset has no group field {group!r} (one worm id per "
                           "window); build it with neuroreduce.wholebrain.windows.windowed")
    fld = windows.field(group)
    if fld.spec.role != "group":
        raise DatasetError(f"field {group!r} is a {fld.spec.role} field, not a group field")
    ids = np.asarray(fld.values).astype(np.int64).reshape(-1)
    names = tuple(fld.spec.classes) or tuple(str(i) for i in range(int(ids.max()) + 1))
    return ids, names


def combinations(worms: Sequence[str], k: int) -> list[tuple[str, ...]]:
    """Every ``k``-of-``n`` combination of ``worms`` (sorted), as training sets.

    Raises:
        ConfigError: if no worm would be left for training (``k < 1`` or no worms) or ``k``
            exceeds the number of worms.
    """
    names = sorted(dict.fromkeys(str(w) for w in worms))
    if isinstance(k, bool) or not isinstance(k, int) or k < 1 or not names:
        raise ConfigError(f"this split leaves no worm for training (k={k!r} of {len(names)} "
                          "worms); use k >= 1 and at least one worm")
    if k > len(names):
        raise ConfigError(f"k={k} training worms, but only {len(names)} worm(s) are in use "
                          f"({', '.join(names)}); use k <= {len(names)}")
    return list(itertools.combinations(names, k))


def fold_plans(windows: Dataset, config: ProtocolConfig) -> list[FoldPlan]:
    """Every (combination, fold) the protocol runs, in order (see the module docstring).

    Raises:
        ConfigError: for a split that leaves no worm for training, worms not in the data, or
            too few scored windows of the training worms to fill the folds.
        DatasetError: without the group field.
    """
    ids, names = worm_ids(windows, config.group)
    present = [names[i] for i in sorted(set(ids.tolist()))]
    use = list(config.worms) or present
    missing = [w for w in use if w not in present]
    if missing:
        raise ConfigError(f"worm {missing[0]!r} is not in the data; worms: {', '.join(present)}")
    combos = combinations(use, config.k)
    if config.max_combinations is not None:
        combos = combos[: config.max_combinations]
    scored = _scored(windows, config.label)
    index_of = {n: i for i, n in enumerate(names)}
    plans = []
    n_run = config.run_folds or config.folds
    for c, train_worms in enumerate(combos):
        unseen_worms = tuple(w for w in sorted(use) if w not in train_worms)
        own = np.flatnonzero(np.isin(ids, [index_of[w] for w in train_worms]) & scored)
        if own.size < config.folds:
            raise ConfigError(
                f"training worms {', '.join(train_worms)} have {own.size} labelled window(s), "
                f"too few for {config.folds} folds; this split leaves no windows for training"
            )
        unseen = np.flatnonzero(np.isin(ids, [index_of[w] for w in unseen_worms]))
        rng = np.random.default_rng(config.seed + c)
        fold_of = np.empty(own.size, np.int64)
        fold_of[rng.permutation(own.size)] = np.arange(own.size) % config.folds
        for f in range(n_run):
            v = (f + 1) % config.folds
            plans.append(FoldPlan(
                combination=c, train_worms=tuple(train_worms), unseen_worms=unseen_worms,
                fold=f, train=own[(fold_of != f) & (fold_of != v)], valid=own[fold_of == v],
                test=own[fold_of == f], unseen=unseen,
            ))
    return plans


def _scored(windows: Dataset, label: str) -> np.ndarray:
    """bool ``[trial]``: the window's last-frame label counts."""
    if not windows.has_field(label):
        raise DatasetError(f"the window dataset has no label field {label!r}")
    fld = windows.field(label)
    last = np.asarray(fld.values)[:, -1, 0].astype(np.int64)
    ignore = fld.spec.ignore_label
    return last != ignore if ignore is not None else np.ones(last.shape, bool)


def last_labels(windows: Dataset, label: str) -> np.ndarray:
    """int64 ``[trial]``: each window's last-frame label (the ignored label where unknown)."""
    return np.asarray(windows.field(label).values)[:, -1, 0].astype(np.int64)


def confusion(trained: Any, windows: Dataset, idx: np.ndarray, label: str) -> np.ndarray:
    """Counts ``[K, K]`` (row = true class, column = predicted) of windows ``idx``.

    The predicted class of a window is the argmax of the members' mean class probability at
    its last frame; windows whose last-frame label is ignored are skipped.
    """
    from neuroreduce.training.inference import predict_fields

    spec = windows.field(label).spec
    k = len(spec.classes)
    cm = np.zeros((k, k), np.int64)
    idx = np.asarray(idx, np.int64)
    idx = idx[_scored(windows, label)[idx]] if idx.size else idx
    if idx.size == 0:
        return cm
    prob = predict_fields(trained, windows, trials=idx, batch_size=512)[label]
    pred = prob.mean(axis=0)[:, -1, 0, :].argmax(axis=-1)
    true = last_labels(windows, label)[idx]
    np.add.at(cm, (true, pred), 1)
    return cm


def inferred_edges(trained: Any, windows: Dataset, idx: np.ndarray) -> np.ndarray | None:
    """The members' mean pooled edge weights ``[N, N]`` over windows ``idx`` (the paper's
    static per-worm graph), or None for a model without ``pooled_adjacency`` (no edges)."""
    import torch

    from neuroreduce.errors import NeuroreduceError
    from neuroreduce.training.assemble import Assembler
    from neuroreduce.training.inference import _parts

    model, norm, layout = _parts(trained)
    members = list(getattr(model, "members", [model]))
    if not members or not all(hasattr(m, "pooled_adjacency") for m in members):
        return None
    piece = Assembler(layout, norm, windows).assemble(windows.select_trials(np.asarray(idx)))
    with torch.no_grad():
        try:
            mats = [m.pooled_adjacency(piece.x).detach().cpu().numpy() for m in members]
        except NeuroreduceError:  # e.g. mlp_agg: no edges
            return None
    return np.mean(mats, axis=0)


def accuracy(cm: np.ndarray) -> float:
    """Fraction on the diagonal of a confusion matrix (NaN when empty)."""
    total = int(np.sum(cm))
    return float(np.trace(cm) / total) if total else float("nan")


# ----------------------------------------------------------------------------- cells
_DATA: dict[str, Dataset] = {}


def _dataset(path: str | None) -> Dataset | None:
    """The window dataset at ``path``, loaded once per process."""
    if path is None:
        return None
    if path not in _DATA:
        from neuroreduce.datasets.io import load_dataset

        _DATA[path] = load_dataset(path)
    return _DATA[path]


def _with_split(windows: Dataset, plan: FoldPlan) -> Dataset:
    idx = np.concatenate([plan.train, plan.valid, plan.test])
    sub = windows.select_trials(idx)
    split = np.repeat(np.array([0, 1, 2], np.int8),
                      [plan.train.size, plan.valid.size, plan.test.size])
    return dataclasses.replace(sub, split=split)


def train_fold(windows: Dataset, plan: FoldPlan, model: ModelSpec, *, label: str) -> Any:
    """Train ``model`` on the plan's train/valid windows (in memory); the TrainResult."""
    import torch

    from neuroreduce.training.trainer import train

    torch.set_num_threads(1)
    config = dataclasses.replace(model.train_config(), targets=(label,))
    return train(_with_split(windows, plan), config, None, progress=False)


def run_cell(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Task function: train and score the folds of one cell (see :func:`cell_payloads`).

    Returns:
        One row per fold: ``model``, ``combination``, ``fold``, ``train_worms``,
        ``unseen_worms``, ``accuracy`` and ``confusion`` per set (``test``, ``unseen``,
        ``other``; None where the set is empty), window counts, ``seconds``.
    """
    windows = _dataset(payload["windows"])
    other = _dataset(payload.get("other"))
    model = ModelSpec(**{**payload["model"], "seeds": tuple(payload["model"]["seeds"]),
                         "options": tuple(payload["model"]["options"].items())})
    label = payload["label"]
    rows = []
    for p in payload["plans"]:
        start = time.perf_counter()
        plan = FoldPlan(**{k: (np.asarray(v, np.int64) if k in ("train", "valid", "test",
                                                               "unseen") else v)
                           for k, v in p.items()})
        trained = train_fold(windows, plan, model, label=label)
        cms = {"test": confusion(trained, windows, plan.test, label),
               "unseen": confusion(trained, windows, plan.unseen, label)}
        if other is not None:
            cms["other"] = confusion(trained, other, np.arange(other.n_trials), label)
        row: dict[str, Any] = {
            "model": model.name, "family": model.family, "combination": plan.combination,
            "fold": plan.fold, "train_worms": list(plan.train_worms),
            "unseen_worms": list(plan.unseen_worms),
            "n_train": int(plan.train.size), "n_valid": int(plan.valid.size),
        }
        for s in SETS:
            cm = cms.get(s)
            empty = cm is None or int(cm.sum()) == 0
            row[f"accuracy_{s}"] = None if empty else accuracy(cm)
            row[f"confusion_{s}"] = None if empty else cm.tolist()
        row["best_epoch"] = int(trained.best_epochs[0]) if trained.best_epochs else None
        if payload.get("edges"):
            w = inferred_edges(trained, windows, plan.train)
            row["edge_weights"] = None if w is None else w.tolist()
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
    return rows


def _plan_dict(plan: FoldPlan) -> dict[str, Any]:
    return {f.name: (getattr(plan, f.name).tolist() if isinstance(getattr(plan, f.name),
                                                                    np.ndarray)
                     else getattr(plan, f.name)) for f in dataclasses.fields(plan)}


def cell_payloads(plans: Sequence[FoldPlan], models: Sequence[ModelSpec], *, windows: str,
                  other: str | None, config: ProtocolConfig,
                  edges: bool = False) -> dict[str, dict[str, Any]]:
    """Task key (``<model>/c<comb>/f<first fold>``) -> payload of :func:`run_cell`
    (``edges``: also return inferred edge weights, ``edge_weights``, where a model has them)."""
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(f"protocol model names must be distinct, got {names}")
    by_combination: dict[int, list[FoldPlan]] = {}
    for p in plans:
        by_combination.setdefault(p.combination, []).append(p)
    tasks = {}
    for m in models:
        for group in by_combination.values():
            for i in range(0, len(group), config.folds_per_cell):
                chunk = group[i : i + config.folds_per_cell]
                tasks[f"{m.name}/{chunk[0].key}"] = {
                    "windows": windows, "other": other, "label": config.label, "edges": edges,
                    "model": m.to_dict(), "plans": [_plan_dict(p) for p in chunk],
                }
    return tasks


@dataclass(frozen=True)
class ProtocolResult:
    """Everything one protocol run produced.

    Attributes:
        rows: One row per (model, combination, fold) (see :func:`run_cell`), sorted.
        failures: Task key -> one-line error of the cells that failed.
        classes: Class names of the label.
        config: The protocol settings.
        models: The model specs, in order.
        wall_s: Wall time of the whole grid (s).
        cpu_s: Sum of the cells' own times (s): the serial cost, for projections.
        workers: Concurrent workers used.
        backend: ``"local"`` or ``"ray"``.
    """

    rows: tuple[dict[str, Any], ...]
    failures: Mapping[str, str]
    classes: tuple[str, ...]
    config: ProtocolConfig
    models: tuple[ModelSpec, ...]
    wall_s: float
    cpu_s: float
    workers: int
    backend: str

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per model: mean, std and count of each set's accuracy over the cells, and the
        summed confusion matrix of each set (counts)."""
        out: dict[str, dict[str, Any]] = {}
        for m in self.models:
            rows = [r for r in self.rows if r["model"] == m.name]
            entry: dict[str, Any] = {"family": m.family, "cells": len(rows)}
            for s in SETS:
                acc = [r[f"accuracy_{s}"] for r in rows if r[f"accuracy_{s}"] is not None]
                entry[s] = {"mean": float(np.mean(acc)) if acc else None,
                            "std": float(np.std(acc)) if acc else None, "n": len(acc)}
                cms = [np.asarray(r[f"confusion_{s}"]) for r in rows
                       if r[f"confusion_{s}"] is not None]
                entry[f"confusion_{s}"] = np.sum(cms, axis=0).tolist() if cms else None
            out[m.name] = entry
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (rows, summary, timing)."""
        return {
            "config": dataclasses.asdict(self.config), "classes": list(self.classes),
            "models": [m.to_dict() for m in self.models], "summary": self.summary(),
            "rows": list(self.rows), "failures": dict(self.failures),
            "wall_s": self.wall_s, "cpu_s": self.cpu_s, "workers": self.workers,
            "backend": self.backend,
        }

    def projected_wall_s(self, workers: int) -> float:
        """Wall time of the same grid on ``workers`` cores: the serial cost spread evenly,
        never less than the longest cell (s)."""
        longest = max((r["seconds"] for r in self.rows), default=0.0)
        return max(self.cpu_s / max(workers, 1), longest)


def run_protocol(
    windows: Dataset,
    models: Sequence[ModelSpec],
    config: ProtocolConfig,
    *,
    other: Dataset | None = None,
    backend: Backend | None = None,
    work_dir: str | Path | None = None,
    progress: bool = False,
    edges: bool = False,
) -> ProtocolResult:
    """Run the (combination x fold x model) grid (see the module docstring).

    Args:
        windows: Window dataset (Layout 2) of the worms in use.
        models: The models to compare (distinct names).
        config: Combinations and folds.
        other: Window dataset of another recording set (same channels), scored whole; None:
            no "other set" column.
        backend: Where the cells run (default: this process).
        work_dir: Folder for the window files the workers read (default: a temporary one).
        progress: Show a progress bar.
        edges: Return each cell's inferred edge weights (``edge_weights`` ``[N, N]``, the
            members' pooled adjacency over the training windows) for models that infer edges.

    Raises:
        ConfigError: for a bad protocol, a model whose channels differ from ``other``'s, or
            no model.
    """
    if not models:
        raise ConfigError("the protocol needs at least one model")
    if other is not None and tuple(other.input_names) != tuple(windows.input_names):
        raise ConfigError("the other set's channels differ from the training windows'; build "
                          "both with the same neurons (e.g. the names shared by both sets)")
    backend = backend or Backend()
    plans = fold_plans(windows, config)
    classes = tuple(windows.field(config.label).spec.classes)
    with tempfile.TemporaryDirectory(prefix="wholebrain-") as tmp:
        folder = Path(work_dir) if work_dir is not None else Path(tmp)
        paths = _write_inputs(folder, windows, other)
        tasks = cell_payloads(plans, models, windows=paths[0], other=paths[1], config=config,
                              edges=edges)
        start = time.perf_counter()
        rows: list[dict[str, Any]] = []
        failures: dict[str, str] = {}
        for outcome in run_tasks(run_cell, tasks, backend, progress=progress,
                                 description="protocol cells"):
            if outcome.ok:
                rows.extend(outcome.value)
            else:
                failures[outcome.key] = outcome.error or "failed"
        wall = time.perf_counter() - start
    order = {m.name: i for i, m in enumerate(models)}
    rows.sort(key=lambda r: (order[r["model"]], r["combination"], r["fold"]))
    return ProtocolResult(
        rows=tuple(rows), failures=failures, classes=classes, config=config,
        models=tuple(models), wall_s=wall, cpu_s=float(sum(r["seconds"] for r in rows)),
        workers=backend.workers, backend=backend.kind,
    )


def _write_inputs(folder: Path, windows: Dataset,
                  other: Dataset | None) -> tuple[str, str | None]:
    """Window files the workers load (written once; this process reuses the objects)."""
    from neuroreduce.datasets.io import save_dataset

    out: list[str | None] = []
    for name, ds in (("windows", windows), ("other", other)):
        if ds is None:
            out.append(None)
            continue
        path = folder / f"{name}-{ds.content_hash()[:16]}.h5"
        if not path.is_file():
            save_dataset(ds, path)
        _DATA[str(path)] = ds
        out.append(str(path))
    return out[0] or "", out[1]


def mean_std(values: Sequence[float | None]) -> tuple[float, float, int]:
    """Mean, std and count of the finite values (NaN, NaN, 0 when none)."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    return (float(np.mean(v)), float(np.std(v)), len(v)) if v else (math.nan, math.nan, 0)


# ----------------------------------------------------------------------- trajectories (Fig. 4C)
@dataclass(frozen=True)
class TrajectoryModel:
    """One trajectory model of the Fig. 4C comparison.

    Attributes:
        name: Row label (e.g. ``"GNN"``, ``"MLP"``).
        config: Its :class:`~neuroreduce.wholebrain.trajectory.TrajectoryConfig`.
    """

    name: str
    config: Any


def run_trajectory_cell(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Task function: train one trajectory model on the training worms' segments (a seeded
    10 % of them validate) and return the free-running MSE per prediction step on the unseen
    worms' segments (``mse_unseen``) and the other set's (``mse_other``; None without)."""
    from neuroreduce.wholebrain.trajectory import per_step_mse, train_trajectory

    start = time.perf_counter()
    segments = _dataset(payload["segments"])
    other = _dataset(payload.get("other"))
    config = payload["config"]
    train_idx = np.asarray(payload["train"], np.int64)
    rng = np.random.default_rng(payload["seed"])
    order = rng.permutation(train_idx)
    n_valid = max(1, order.size // 10)
    result = train_trajectory(segments.select_trials(order[n_valid:]),
                              segments.select_trials(order[:n_valid]), config)
    unseen = np.asarray(payload["unseen"], np.int64)

    def mse(ds: Dataset | None, idx: np.ndarray) -> list[float] | None:
        if ds is None or idx.size == 0:
            return None
        return per_step_mse(result.model, ds.inputs[idx], burn_in=config.burn_in,
                            steps=config.eval_steps).tolist()

    return {"model": payload["name"], "n_train_worms": len(payload["train_worms"]),
            "train_worms": list(payload["train_worms"]), "best_epoch": result.best_epoch,
            "mse_unseen": mse(segments, unseen),
            "mse_other": mse(other, np.arange(0 if other is None else other.n_trials)),
            "seconds": time.perf_counter() - start}


def run_trajectory_protocol(
    segments: Dataset,
    models: Sequence[TrajectoryModel],
    train_counts: Sequence[int],
    *,
    other: Dataset | None = None,
    max_combinations: int | None = None,
    group: str = "worm",
    seed: int = 0,
    backend: Backend | None = None,
    work_dir: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Fig. 4C: MSE per prediction step of models trained on ``k`` worms (each ``k`` of
    ``train_counts``; every k-of-n combination, at most ``max_combinations``), evaluated on
    the other worms' segments and on ``other``'s.

    Args:
        segments: Window dataset of segments long enough for burn-in + 1 + eval steps
            (e.g. ``windowed(recordings, window=17, stride=4)``).
        models: The trajectory models.
        train_counts: Numbers of training worms (the paper: 1 and 5).
        other: Segments of another recording set (same channels) or None.
        max_combinations: Cap on combinations per count.
        group: The worm group field.
        seed: Seed of the train/valid draw.
        backend: Where the cells run.
        work_dir: Folder for the files the workers read.

    Returns:
        One row per (model, count, combination) (see :func:`run_trajectory_cell`); failed
        cells as rows with ``error``.
    """
    ids, names = worm_ids(segments, group)
    present = [names[i] for i in sorted(set(ids.tolist()))]
    backend = backend or Backend()
    with tempfile.TemporaryDirectory(prefix="wholebrain-") as tmp:
        folder = Path(work_dir) if work_dir is not None else Path(tmp)
        seg_path, other_path = _write_inputs(folder, segments, other)
        tasks = {}
        for k in train_counts:
            combos = combinations(present, k)[: max_combinations or None]
            for c, worms in enumerate(combos):
                in_train = np.isin(ids, [names.index(w) for w in worms])
                for m in models:
                    tasks[f"{m.name}/k{k}/c{c:03d}"] = {
                        "segments": seg_path, "other": other_path, "name": m.name,
                        "config": m.config, "train_worms": list(worms), "seed": seed + c,
                        "train": np.flatnonzero(in_train).tolist(),
                        "unseen": np.flatnonzero(~in_train).tolist(),
                    }
        rows = []
        for outcome in run_tasks(run_trajectory_cell, tasks, backend, progress=False,
                                 description="trajectory cells"):
            rows.append(outcome.value if outcome.ok else {"key": outcome.key,
                                                          "error": outcome.error})
    return rows
