"""Split strategies: coverage, counts, determinism, group separation, option checks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from neuroreduce.datasets.split_strategies import (
    SPLIT_STRATEGIES,
    Piece,
    SplitContext,
    SplitPlan,
    SplitSpec,
    n_folds,
    plan,
    plans,
)
from neuroreduce.datasets.splits import make_splits
from neuroreduce.errors import ConfigError

FAMILIES = tuple(["step"] * 8 + ["ramp"] * 6 + ["sine"] * 6)
ANIMAL = np.repeat(np.arange(5), 4)  # 5 animals x 4 trials
N_TIME = 200


def _ctx(seed: int = 0, n_time: int = N_TIME) -> SplitContext:
    return SplitContext(
        n_trials=20, n_time=n_time, dt_ms=0.5, families=FAMILIES,
        groups={"animal": ANIMAL}, seed=seed,
    )  # fmt: skip


def _covered_once(p: SplitPlan, n_time: int = N_TIME) -> np.ndarray:
    s = p.sample_splits(20, n_time)  # raises on overlap
    assert (s >= 0).all(), "every sample belongs to one split"
    return s


def test_stratified_equals_make_splits() -> None:
    for seed in (0, 3):
        spec = SplitSpec("stratified", {"fractions": [0.6, 0.2, 0.2]})
        (p,) = plans(spec, _ctx(seed))
        _covered_once(p)
        expected = make_splits(FAMILIES, fractions=(0.6, 0.2, 0.2), seed=seed)
        assert np.array_equal(p.trial_splits(20, N_TIME), expected)
    other = make_splits(FAMILIES, fractions=(0.6, 0.2, 0.2), seed=1)  # control: seed matters
    assert not np.array_equal(p.trial_splits(20, N_TIME), other)


@pytest.mark.parametrize("k", [1, 2])
def test_leave_groups_out_every_combination_once(k: int) -> None:
    spec = SplitSpec("leave_groups_out", {"group": "animal", "k": k, "valid": 0.25})
    folds = plans(spec, _ctx())
    assert n_folds(spec, _ctx()) == len(folds) == len(list(itertools.combinations(range(5), k)))
    seen = []
    for p in folds:
        split = p.trial_splits(20, N_TIME)
        test = tuple(sorted(set(ANIMAL[split == 2].tolist())))
        seen.append(test)
        assert not set(ANIMAL[split == 0]) & set(test), "no animal in both train and test"
        assert (split == 2).sum() == 4 * k
        assert (split == 1).sum() == round(0.25 * (20 - 4 * k))
    assert seen == list(itertools.combinations(range(5), k))  # all, once, sorted order


def test_leave_groups_out_valid_group_is_another_whole_group() -> None:
    spec = SplitSpec("leave_groups_out", {"group": "animal", "valid": "group"})
    pairs = []
    for p in plans(spec, _ctx()):
        split = p.trial_splits(20, N_TIME)
        test, valid = set(ANIMAL[split == 2]), set(ANIMAL[split == 1])
        assert len(test) == len(valid) == 1 and not test & valid
        assert not (set(ANIMAL[split == 0]) & (test | valid))
        pairs.append((test.pop(), valid.pop()))
    assert pairs == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0)]
    with pytest.raises(ConfigError, match="cannot hold k=4"):
        plans(SplitSpec("leave_groups_out", {"group": "animal", "k": 4, "valid": "group"}), _ctx())


def test_window_folds_cover_balance_and_rotate() -> None:
    spec = SplitSpec("window_folds", {"window": 30, "k": 3, "group": "animal"})
    folds = plans(spec, _ctx())
    assert len(folds) == 3
    test_of = []
    for p in folds:
        _covered_once(p)
        assert all(q.stop - q.start in (30, 50) for q in p.pieces)  # 200 = 5 x 30 + remainder 50
        test_of.append({(q.trial, q.start) for q in p.of(2)})
        for a in range(5):  # balanced per animal: 4 trials x 6 windows = 24 -> 8 per fold
            assert sum(ANIMAL[q.trial] == a for q in p.of(2)) == 8
    assert set().union(*test_of) == {(t, 30 * j) for t in range(20) for j in range(6)}
    assert sum(len(s) for s in test_of) == 120  # every window tested exactly once
    for i, p in enumerate(folds):  # valid = the next fold's test windows
        assert {(q.trial, q.start) for q in p.of(1)} == test_of[(i + 1) % 3]


def test_window_folds_are_seeded() -> None:
    spec = SplitSpec("window_folds", {"window": 40, "k": 4})
    a, b = plans(spec, _ctx(seed=5)), plans(spec, _ctx(seed=5))
    assert a == b
    assert plans(spec, _ctx(seed=6)) != a  # control: another seed, another deal


def test_time_segment_cuts_every_trial() -> None:
    ctx = SplitContext(n_trials=3, n_time=60_001, dt_ms=1.0)  # 60 s at 1 ms, both ends
    p = plan(SplitSpec("time_segment", {"train_ms": 38_000, "valid_ms": 0}), ctx)
    assert p.sample_splits(3, 60_001).min() == 0
    assert p.of(0)[0] == Piece(0, 0, 30_400, 0)  # valid = last 20% of the first 38 s
    assert p.of(1)[0] == Piece(0, 30_400, 38_000, 1)
    assert p.of(2)[0] == Piece(0, 38_000, 60_001, 2)
    assert len(p.pieces) == 9
    q = plan(SplitSpec("time_segment", {"train_ms": 30_000, "valid_ms": 8_000}), ctx)
    assert q.of(1)[0] == Piece(0, 30_000, 38_000, 1)
    with pytest.raises(ConfigError, match="whole trials"):
        p.trial_splits(3, 60_001)
    with pytest.raises(ConfigError, match="at least one"):
        plans(SplitSpec("time_segment", {"train_ms": 70_000}), ctx)


def test_spec_round_trip_and_bad_options() -> None:
    spec = SplitSpec("leave_groups_out", {"group": "animal", "k": 2}, fold=3)
    again = SplitSpec.from_dict(spec.to_dict())
    assert again == spec and again.options["valid"] == 0.25
    assert plan(again, _ctx()) == plans(spec, _ctx())[3]
    with pytest.raises(ConfigError, match="unknown split strategy 'random'.*leave_groups_out"):
        SplitSpec("random")
    with pytest.raises(ConfigError, match="unknown option 'size'.*allowed: window, k, group"):
        SplitSpec("window_folds", {"window": 10, "size": 3})
    with pytest.raises(ConfigError, match="needs option 'group'"):
        SplitSpec("leave_groups_out")
    with pytest.raises(ConfigError, match="k=2: must be an integer >= 3"):
        SplitSpec("window_folds", {"window": 10, "k": 2})
    with pytest.raises(ConfigError, match="sum to 1"):
        SplitSpec("stratified", {"fractions": [0.5, 0.5, 0.5]})
    with pytest.raises(ConfigError, match="fraction in"):
        SplitSpec("leave_groups_out", {"group": "animal", "valid": "half"})
    with pytest.raises(ConfigError, match="unknown group 'cell'"):
        plans(SplitSpec("leave_groups_out", {"group": "cell"}), _ctx())
    with pytest.raises(ConfigError, match="fold 9 does not exist"):
        plan(SplitSpec("stratified", fold=9), _ctx())
    with pytest.raises(ConfigError, match="unknown key 'folds'"):
        SplitSpec.from_dict({"strategy": "stratified", "folds": 2})
    with pytest.raises(ConfigError, match="exceeds"):
        plans(SplitSpec("window_folds", {"window": 500}), _ctx())
    with pytest.raises(ConfigError, match="one int id per trial"):
        SplitContext(n_trials=3, n_time=5, dt_ms=1.0, groups={"animal": np.zeros(4, int)})
    assert set(SPLIT_STRATEGIES) == {
        "stratified", "leave_groups_out", "window_folds", "time_segment"
    }  # fmt: skip


def test_overlapping_pieces_are_caught() -> None:
    bad = SplitPlan((Piece(0, 0, 10, 0), Piece(0, 5, 20, 2)), "overlap")  # control of the checker
    with pytest.raises(ConfigError, match="overlaps"):
        bad.sample_splits(1, 20)
