"""Train / validation / test assignment of trials, stratified by stimulus family.

The overall counts follow ``fractions`` by largest-remainder rounding (40 trials at
``(0.5, 0.25, 0.25)`` -> 20 / 10 / 10), and each family is spread over the splits as evenly as
possible: a family of ``m`` trials gets ``floor`` or ``ceil`` of ``m * fraction`` trials in each
split whenever such an assignment exists (found as a maximum flow by augmenting paths). Which
trials of a family go where, and which families receive the rounding leftovers, is drawn from
``seed``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from neuroreduce.datasets.dataset import SPLIT_NAMES, Dataset
from neuroreduce.errors import ConfigError

DEFAULT_FRACTIONS: tuple[float, float, float] = (0.5, 0.25, 0.25)


def make_splits(
    families: Sequence[str],
    *,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
) -> np.ndarray:
    """Assign each trial to train (0), valid (1) or test (2), stratified by family.

    Args:
        families: Stimulus family of each trial, length ``trial``.
        fractions: Fractions of train, valid and test trials (non-negative, sum 1).
        seed: Seed for the random parts of the assignment.

    Returns:
        int8 array of length ``trial`` with values in ``{0, 1, 2}``.

    Raises:
        ConfigError: if ``fractions`` is not three non-negative numbers summing to 1.
    """
    frac = _check_fractions(fractions)
    fams = [str(f) for f in families]
    n = len(fams)
    split = np.zeros(n, dtype=np.int8)
    if n == 0:
        return split
    rng = np.random.default_rng(seed)
    totals = _largest_remainder(n, frac)

    groups: dict[str, list[int]] = {}
    for i, fam in enumerate(fams):
        groups.setdefault(fam, []).append(i)
    names = list(groups)
    rng.shuffle(names)  # which families get the rounding leftovers first

    # Per family: the floor of its ideal share in each split, then the leftovers.
    ideal = {f: [len(groups[f]) * p for p in frac] for f in names}
    base = {f: [math.floor(x + 1e-9) for x in ideal[f]] for f in names}
    need = [totals[s] - sum(base[f][s] for f in names) for s in range(3)]
    extra = _place_leftovers(
        left=[len(groups[f]) - sum(base[f]) for f in names],
        fractional=[[x - b for x, b in zip(ideal[f], base[f], strict=True)] for f in names],
        need=need,
        rng=rng,
    )
    counts = {
        f: [b + e for b, e in zip(base[f], extra[k], strict=True)] for k, f in enumerate(names)
    }

    for f in names:
        members = np.array(groups[f])
        rng.shuffle(members)
        start = 0
        for s in range(3):
            split[members[start : start + counts[f][s]]] = s
            start += counts[f][s]
    return split


def with_splits(
    dataset: Dataset,
    *,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
) -> Dataset:
    """Return a copy of ``dataset`` with a new stratified split assignment (see
    :func:`make_splits`)."""
    split = make_splits(dataset.families, fractions=fractions, seed=seed)
    return dataclasses.replace(dataset, split=split)


def split_counts(split: np.ndarray) -> dict[str, int]:
    """Number of trials per split name, e.g. ``{"train": 20, "valid": 10, "test": 10}``."""
    arr = np.asarray(split)
    return {name: int((arr == k).sum()) for k, name in enumerate(SPLIT_NAMES)}


def _place_leftovers(
    *, left: list[int], fractional: list[list[float]], need: list[int], rng: np.random.Generator
) -> list[list[int]]:
    """Give each family its ``left[f]`` leftover trials, one per split, so split ``s`` gets
    exactly ``need[s]``; a family only tops up splits where its ideal share is fractional.

    This is a maximum flow (family -> split -> total) found by augmenting paths; if the
    constraints cannot all hold, the rest go to splits still short of trials.

    Returns:
        ``extra[f][s]``, the trials added to family ``f`` in split ``s``.
    """
    rem = list(need)
    extra = [[0, 0, 0] for _ in left]
    order = [
        sorted(
            (s for s in range(3) if x[s] > 1e-9),
            key=lambda s, x=x: (-round(x[s], 9), rng.random()),
        )
        for x in fractional
    ]

    def augment(f: int, visited: set[int]) -> bool:
        for s in order[f]:
            if s in visited or extra[f][s]:
                continue
            visited.add(s)
            if rem[s] > 0:
                extra[f][s] = 1
                rem[s] -= 1
                return True
            for g in range(len(left)):
                if extra[g][s] and augment(g, visited):
                    extra[g][s] = 0
                    extra[f][s] = 1
                    return True
        return False

    unplaced = []
    for f, n_left in enumerate(left):
        for _ in range(n_left):
            if not augment(f, set()):
                unplaced.append(f)
    for f in unplaced:  # fallback: keep the overall counts exact
        s = max(range(3), key=lambda s, f=f: (rem[s] > 0, extra[f][s] == 0, rem[s]))
        extra[f][s] += 1
        rem[s] -= 1
    return extra


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    try:
        frac = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise ConfigError(
            f"fractions must be three numbers (train, valid, test); got {fractions!r}"
        ) from None
    if len(frac) != 3:
        raise ConfigError(f"fractions must be three numbers (train, valid, test); got {frac}")
    if not all(math.isfinite(f) and f >= 0 for f in frac) or abs(sum(frac) - 1.0) > 1e-6:
        raise ConfigError(
            f"fractions must be non-negative and sum to 1 (e.g. 0.5, 0.25, 0.25); got {frac}"
        )
    if frac[0] == 0:
        raise ConfigError("the train fraction must be > 0")
    return frac  # type: ignore[return-value]


def _largest_remainder(n: int, frac: tuple[float, ...]) -> list[int]:
    """Integer counts summing to ``n``, closest to ``n * frac`` (ties go to earlier splits)."""
    ideal = [n * p for p in frac]
    counts = [math.floor(x + 1e-9) for x in ideal]
    order = sorted(range(len(frac)), key=lambda s: (-(ideal[s] - counts[s]), s))
    for s in order[: n - sum(counts)]:
        counts[s] += 1
    return counts
