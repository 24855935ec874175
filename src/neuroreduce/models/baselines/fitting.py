"""The shared fitting driver of the linear baselines: sample steps, build features, fit heads.

:func:`fit_heads` turns the assembled train and validation splits
(:class:`~neuroreduce.training.assemble.Assembled`, normalised model units) into one design
matrix per split and fits every output channel of every head of the
:class:`~neuroreduce.training.task.TaskLayout` on its own with the solver of its kind
(:mod:`.solvers`), on the time steps where that channel's value counts (``masks``) and nowhere
else: masked values (NaN, unrecorded channels, ignored labels) never enter a fit.

**Subsampling.** A split with more candidate steps than ``max_samples`` (steps where any head
has a value that counts) is fitted on ``max_samples`` of them drawn without replacement by
``numpy.random.default_rng(seed)`` (train first, then validation, from the same stream), so the
cost stays bounded (about ``max_samples * n_features`` values per split) and a member's fit is
reproducible from its seed; different seeds then give different members. With fewer candidate
steps every step is used and all seeds give the same fit.

Features are standardised (mean and standard deviation over the sampled train steps; constant
features are left unscaled), the solvers work in that space, and the weights are mapped back,
so the penalty treats every feature alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import TYPE_CHECKING

import numpy as np
import torch

from neuroreduce.errors import ConfigError
from neuroreduce.models.baselines.solvers import Problem, Solver
from neuroreduce.models.mlp import check_choice, check_int

if TYPE_CHECKING:  # only annotations: importing training here would be circular
    from neuroreduce.training.assemble import Assembled
    from neuroreduce.training.task import TaskLayout

#: ``x [trial, time, input], trial [n], time [n] -> float64 [n, n_features]``.
Features = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

CLASS_WEIGHTS = ("none", "balanced")


def check_common(config: object) -> None:
    """Validate (and freeze) the fields the baseline configs share; one-line ConfigError.

    ``alphas``: non-empty, finite, > 0 (a list becomes a sorted tuple of floats);
    ``class_weight``: ``none`` or ``balanced``; ``max_samples`` >= 10; ``max_iter`` >= 1.
    """
    names = {f.name for f in fields(config)}  # type: ignore[arg-type]
    alphas = config.alphas  # type: ignore[attr-defined]
    if isinstance(alphas, int | float) and not isinstance(alphas, bool):
        alphas = (alphas,)
    if (
        not isinstance(alphas, list | tuple)
        or not alphas
        or not all(isinstance(a, int | float) and not isinstance(a, bool) for a in alphas)
        or not all(math.isfinite(a) and a > 0 for a in alphas)
    ):
        raise ConfigError(f"alphas must be a non-empty list of finite numbers > 0, got {alphas!r}")
    object.__setattr__(config, "alphas", tuple(sorted({float(a) for a in alphas})))
    if "class_weight" in names:
        check_choice("class_weight", config.class_weight, CLASS_WEIGHTS)  # type: ignore[attr-defined]
    check_int("max_samples", config.max_samples, minimum=10)  # type: ignore[attr-defined]
    check_int("max_iter", config.max_iter)  # type: ignore[attr-defined]


def sample_steps(
    data: Assembled, max_samples: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``(trial [n], time [n])`` of the steps to fit on (see the module docstring)."""
    n_trials, n_time = data.x.shape[0], data.x.shape[1]
    if all(name in data.masks for name in data.targets):  # else some field counts everywhere
        counts = np.zeros((n_trials, n_time), bool)
        for mask in data.masks.values():
            counts |= mask.numpy().any(axis=-1)
    else:
        counts = np.ones((n_trials, n_time), bool)
    flat = np.flatnonzero(counts.ravel())
    if flat.size > max_samples:
        flat = np.sort(rng.choice(flat, size=max_samples, replace=False))
    return flat // n_time, flat % n_time


def _rows(data: Assembled, name: str, channel: int, trial: np.ndarray, time: np.ndarray):
    """bool ``[n]``: whether the target of ``name``/``channel`` counts at each chosen step."""
    mask = data.masks.get(name)
    if mask is None:
        return np.ones(trial.size, bool)
    return mask[..., channel].numpy()[trial, time]


def fit_heads(
    config: object,
    *,
    train: Assembled,
    valid: Assembled,
    layout: TaskLayout,
    seed: int,
    features: Features,
    solvers: Mapping[str, Solver],
) -> tuple[np.ndarray, np.ndarray]:
    """Fit every head channel of ``layout`` (see the module docstring).

    Args:
        config: A baseline config (``alphas``, ``max_samples``, ``max_iter``, optionally
            ``class_weight``).
        train: The assembled train split.
        valid: The assembled validation split (chooses each channel's ``alpha``).
        layout: Output heads (kinds, channels, classes, output columns).
        seed: Seed of the step subsampling and of liblinear.
        features: Design matrix of the chosen steps.
        solvers: Head kind -> solver (the caller refuses kinds it has none for).

    Returns:
        ``(W [n_outputs, n_features], b [n_outputs])`` in the units of ``train.x``.
    """
    rng = np.random.default_rng(seed)
    x_tr, x_va = train.x.numpy(), valid.x.numpy()
    steps_tr = sample_steps(train, config.max_samples, rng)  # type: ignore[attr-defined]
    steps_va = sample_steps(valid, config.max_samples, rng)  # type: ignore[attr-defined]
    f_tr, f_va = features(x_tr, *steps_tr), features(x_va, *steps_va)
    mean = f_tr.mean(axis=0) if f_tr.shape[0] else np.zeros(f_tr.shape[1])
    scale = f_tr.std(axis=0) if f_tr.shape[0] else np.ones(f_tr.shape[1])
    scale = np.where(scale > 1e-12, scale, 1.0)
    f_tr = (f_tr - mean) / scale
    f_va = (f_va - mean) / scale
    weights = np.zeros((layout.n_outputs, f_tr.shape[1]))
    bias = np.zeros(layout.n_outputs)
    balanced = getattr(config, "class_weight", "none") == "balanced"
    for h in layout.heads:
        for c in range(len(h.channels)):
            rows_tr = _rows(train, h.field, c, *steps_tr)
            rows_va = _rows(valid, h.field, c, *steps_va)
            y_tr = _values(train.targets[h.field], c, steps_tr, h.kind)[rows_tr]
            y_va = _values(valid.targets[h.field], c, steps_va, h.kind)[rows_va]
            problem = Problem(
                f_tr[rows_tr], y_tr, f_va[rows_va], y_va, h.kind, h.n_classes,
                config.alphas, balanced=balanced,  # type: ignore[attr-defined]
                max_iter=config.max_iter, seed=seed,  # type: ignore[attr-defined]
            )
            w, b = solvers[h.kind](problem)
            cols = slice(h.start + c * problem.width, h.start + (c + 1) * problem.width)
            weights[cols] = (w / scale[:, None]).T
            bias[cols] = b - mean / scale @ w
    return weights, bias


def _values(target: torch.Tensor, channel: int, steps: tuple[np.ndarray, np.ndarray], kind: str):
    """float64 values (continuous) or int64 classes (binary 0/1, categorical) at ``steps``."""
    values = target[..., channel].numpy()[steps]
    if kind == "continuous":
        return values.astype(np.float64)
    return np.rint(values).astype(np.int64)
