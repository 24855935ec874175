"""apply_split: pieces of time_segment/window_folds cover every sample once, padding is marked
missing, events are cut and shifted, source_trial is recorded; whole-trial strategies only set
the split."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.fields import EventTrains, Field, FieldSpec
from neuroreduce.datasets.pieces import SOURCE_TRIAL, apply_split, split_context
from neuroreduce.datasets.split_strategies import SplitSpec, n_folds
from neuroreduce.errors import ConfigError

N, T, DT = 6, 23, 0.1  # dt 0.1 ms: sample edges are inexact in float, as in real data


def every_kind(seed: int = 0, *, ignore: int | None = -1) -> Dataset:
    rng = np.random.default_rng(seed)
    # many events exactly on (float) sample edges, a few past the trial's end
    times = [np.round(rng.uniform(0, T * DT + 0.3, 60), 1) for _ in range(N)]
    ev = EventTrains.from_lists(times, [rng.integers(0, 3, 60) for _ in range(N)], 3)
    lab = rng.integers(0, 2, (N, T, 1)).astype(np.int16)
    if ignore is not None:
        lab[0, :3] = ignore
    y = rng.normal(size=(N, T, 1)).astype(np.float32)
    y[1, 4] = np.nan
    return Dataset(
        rng.normal(5.0, 1.0, (N, T, 2)), y, DT, ("i0", "i1"), ("o",),
        families=tuple("ab"[i % 2] for i in range(N)),
        fields=(
            Field(FieldSpec("ev", "input", "events", ("e0", "e1", "e2")), ev),
            Field(FieldSpec("sp", "target", "binary", ("s",)),
                  (rng.random((N, T, 1)) < 0.3).astype(np.float32)),
            Field(FieldSpec("lab", "label", "categorical", ("l",), classes=("x", "y"),
                            ignore_label=ignore), lab),
            Field(FieldSpec("m", "mask", "binary", ("o",), of="outputs"),
                  rng.random((N, T, 1)) < 0.9),
            Field(FieldSpec("ind", "group", "categorical", classes=("w0", "w1", "w2")),
                  np.arange(N) % 3),
            Field(FieldSpec("act", "target", "continuous", ("a0", "a1"), availability_group="ind"),
                  rng.normal(size=(N, T, 2)), np.array([[1, 1], [1, 0], [0, 1]], bool)),
        ),
    )


def pieces_of(out: Dataset) -> list[tuple[int, int, int]]:
    """(source trial, start, stop) of every trial of a split dataset."""
    rows = [json.loads(p) for p in out.stimulus_params]
    return [(r["source_trial"], r["start"], r["stop"]) for r in rows]


def check_pieces(ds: Dataset, out: Dataset) -> None:
    """Every source sample lies in exactly one piece, each piece holds the source's values,
    and its padding is marked missing."""
    pieces = pieces_of(out)
    np.testing.assert_array_equal(out.field(SOURCE_TRIAL).values, [p[0] for p in pieces])
    assert out.field(SOURCE_TRIAL).spec.role == "group"
    cover = np.zeros((ds.n_trials, ds.n_time), int)
    dense_src = ds.field("ev").values.dense(np.arange(ds.n_trials), ds.n_time, DT)
    dense_out = out.field("ev").values.dense(np.arange(out.n_trials), out.n_time, DT)
    for row, (src, a, b) in enumerate(pieces):
        cover[src, a:b] += 1
        n = b - a
        assert out.families[row] == ds.families[src]
        np.testing.assert_array_equal(out.inputs[row, :n], ds.inputs[src, a:b])
        np.testing.assert_array_equal(out.outputs[row, :n], ds.outputs[src, a:b])
        np.testing.assert_array_equal(dense_out[row, :n], dense_src[src, a:b])
        for name in ("sp", "lab", "m", "act"):
            np.testing.assert_array_equal(out.field(name).values[row, :n],
                                          ds.field(name).values[src, a:b])
        assert out.field("ind").values[row] == ds.field("ind").values[src]
        # padding: zero inputs, no events, NaN targets, ignored labels, False masks
        assert (out.inputs[row, n:] == 0).all() and (dense_out[row, n:] == 0).all()
        assert np.isnan(out.outputs[row, n:]).all()
        assert np.isnan(out.field("sp").values[row, n:]).all()
        assert np.isnan(out.field("act").values[row, n:]).all()
        assert (out.field("lab").values[row, n:] == -1).all()
        assert not out.field("m").values[row, n:].any()
    assert (cover == 1).all()
    np.testing.assert_array_equal(out.field("act").availability, ds.field("act").availability)
    # every event inside the trial is in some piece (those past its end in none)
    assert dense_out.sum() == dense_src.sum()


def test_time_segment_pieces() -> None:
    ds = every_kind()
    spec = SplitSpec("time_segment", {"train_ms": 1.2, "valid_ms": 0.5})
    out = apply_split(ds, spec)
    assert out.n_trials == 3 * N and out.n_time == 12  # train 12, valid 5, test 6 samples
    check_pieces(ds, out)
    lengths = {s: {b - a for (_, a, b), sp in zip(pieces_of(out), out.split, strict=True)
                   if sp == s} for s in range(3)}
    assert lengths == {0: {12}, 1: {5}, 2: {6}}
    assert "train 0-1.2 ms, valid 1.2-1.7 ms, test 1.7-2.3 ms" in out.provenance["split_plan"]


def test_window_folds_pieces_and_every_window_tested_once() -> None:
    ds = every_kind()
    spec = SplitSpec("window_folds", {"window": 5, "k": 3, "group": "ind"})
    k = n_folds(spec, split_context(ds))
    tested = np.zeros((N, T), int)
    for fold in range(k):
        out = apply_split(ds, replace(spec, fold=fold))
        check_pieces(ds, out)
        assert out.n_time == 8  # 4 windows of 5 per trial, the last takes the remaining 3
        for (src, a, b), s in zip(pieces_of(out), out.split, strict=True):
            tested[src, a:b] += s == 2
        assert set(out.split.tolist()) == {0, 1, 2}
    assert (tested == 1).all()


def test_pieces_without_the_source_offsets_would_differ() -> None:
    """Control: the value checks above can fail (a piece compared at the wrong offset)."""
    ds = every_kind()
    out = apply_split(ds, SplitSpec("time_segment", {"train_ms": 1.2, "valid_ms": 0.5}))
    src, a, b = next(p for p in pieces_of(out) if p[1] > 0)
    row = pieces_of(out).index((src, a, b))
    assert not np.array_equal(out.inputs[row, : b - a], ds.inputs[src, : b - a])
    with pytest.raises(AssertionError):
        broken = replace(out, stimulus_params=tuple(
            json.dumps({"source_trial": s, "start": 0, "stop": b - a})
            for s, a, b in pieces_of(out)))
        check_pieces(ds, broken)


def test_label_without_ignore_label_cannot_be_padded() -> None:
    ds = every_kind(ignore=None)
    with pytest.raises(ConfigError, match="label field 'lab' needs an ignore_label to pad"):
        apply_split(ds, SplitSpec("time_segment", {"train_ms": 1.2, "valid_ms": 0.5}))
    # equal pieces need no padding: fine without an ignore_label
    out = apply_split(ds, SplitSpec("window_folds", {"window": 23, "k": 3}))
    assert SOURCE_TRIAL not in [f.name for f in out.fields]  # whole trials: only the split


@pytest.mark.parametrize("spec", [
    SplitSpec("stratified", {"fractions": (0.5, 0.25, 0.25)}),
    SplitSpec("leave_groups_out", {"group": "ind", "k": 1, "valid": "group"}, fold=2),
])
def test_whole_trial_strategies_only_set_the_split(spec: SplitSpec) -> None:
    ds = every_kind()
    out = apply_split(ds, spec)
    assert out.split is not None and ds.split is None
    assert replace(out, split=None).content_hash() == ds.content_hash()
    assert [f.name for f in out.fields] == [f.name for f in ds.fields]
    assert out.stimulus_params == ds.stimulus_params
    if spec.strategy == "leave_groups_out":  # fold 2: individual w2 tests, the next one validates
        ind = ds.field("ind").values
        np.testing.assert_array_equal(out.split == 2, ind == 2)
        np.testing.assert_array_equal(out.split == 1, ind == 0)
