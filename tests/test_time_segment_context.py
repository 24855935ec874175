"""time_segment with context = "preceding": valid/test pieces carry the trial's earlier samples as
unscored context (inputs given, targets missing), so a model enters the scored segment in the
state the trial's own history put it in."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.signal import lfilter

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.fields import EventTrains, Field, FieldSpec
from neuroreduce.datasets.pieces import apply_split, split_context
from neuroreduce.datasets.split_strategies import SplitSpec, plan
from neuroreduce.errors import ConfigError

N, T, DT = 4, 40, 0.1
BASE = {"train_ms": 2.0, "valid_ms": 0.8}  # train 0-20, valid 20-28, test 28-40 samples


def _data(seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    times = [np.sort(rng.uniform(0, T * DT, 30)) for _ in range(N)]
    ev = EventTrains.from_lists(times, [rng.integers(0, 2, 30) for _ in range(N)], 2)
    return Dataset(
        rng.normal(size=(N, T, 1)), rng.normal(size=(N, T, 1)), DT, ("i",), ("o",),
        fields=(
            Field(FieldSpec("ev", "input", "events", ("e0", "e1")), ev),
            Field(FieldSpec("sp", "target", "binary", ("s",)),
                  (rng.random((N, T, 1)) < 0.3).astype(np.float32)),
            Field(FieldSpec("lab", "label", "categorical", ("l",), classes=("x", "y"),
                            ignore_label=-1), rng.integers(0, 2, (N, T, 1)).astype(np.int16)),
            Field(FieldSpec("m", "mask", "binary", ("o",), of="outputs"), np.ones((N, T, 1), bool)),
            Field(FieldSpec("rep", "group", "categorical", classes=("a", "b")), np.arange(N) % 2),
        ),
    )


def _rows(out: Dataset) -> list[dict]:
    return [json.loads(p) for p in out.stimulus_params]


def test_default_is_unchanged() -> None:
    ds = _data()
    bare = apply_split(ds, SplitSpec("time_segment", BASE))
    none = apply_split(ds, SplitSpec("time_segment", {**BASE, "context": "none"}))
    assert bare.content_hash() == none.content_hash()
    assert bare.n_time == 20 and all("context_start" not in r for r in _rows(bare))
    p = plan(SplitSpec("time_segment", BASE), split_context(ds))
    assert all(len(row) == 4 for row in p.to_dict()["pieces"])


def test_context_inputs_are_the_preceding_samples_and_only_the_segment_is_scored() -> None:
    ds = _data()
    spec = SplitSpec("time_segment", {**BASE, "context": "preceding"})
    p = plan(spec, split_context(ds))
    assert (p.sample_splits(N, T) >= 0).all()  # context covers nothing: each sample once
    out = apply_split(ds, spec)
    assert out.n_time == T  # the test piece starts at 0 and ends at the trial's end
    src_ev = ds.field("ev").values.dense(np.arange(N), T, DT)
    out_ev = out.field("ev").values.dense(np.arange(out.n_trials), out.n_time, DT)
    seen = {0: 0, 1: 0, 2: 0}
    for row, (r, split) in enumerate(zip(_rows(out), out.split, strict=True)):
        src, a, b = r["source_trial"], r["start"], r["stop"]
        c = r.get("context_start", a)
        assert c == (a if split == 0 else 0)
        seen[int(split)] += b - a
        n = b - c
        # inputs of context and segment: the source's samples c..b
        np.testing.assert_array_equal(out.inputs[row, :n], ds.inputs[src, c:b])
        np.testing.assert_array_equal(out_ev[row, :n], src_ev[src, c:b])
        # scored samples are exactly the segment [a, b)
        _, known = out.known("outputs", np.array([row]))
        assert np.array_equal(np.flatnonzero(known[0, :, 0]), np.arange(a - c, n))
        np.testing.assert_array_equal(out.outputs[row, a - c : n], ds.outputs[src, a:b])
        np.testing.assert_array_equal(out.field("sp").values[row, a - c : n],
                                      ds.field("sp").values[src, a:b])
        assert np.isnan(out.field("sp").values[row, : a - c]).all()
        assert (out.field("lab").values[row, : a - c] == -1).all()
        assert not out.field("m").values[row, : a - c].any()
        assert out.field("m").values[row, a - c : n].all()
    assert seen == {0: N * 20, 1: N * 8, 2: N * 12}
    test_rows = np.flatnonzero(out.split == 2)
    assert all(_rows(out)[i]["context_start"] == 0 and _rows(out)[i]["start"] == 28
               for i in test_rows)
    assert "as unscored context" in out.provenance["split_plan"]


def test_context_ms_limits_the_context() -> None:
    ds = _data()
    out = apply_split(ds, SplitSpec("time_segment",
                                    {**BASE, "context": "preceding", "context_ms": 0.5}))
    for r, split in zip(_rows(out), out.split, strict=True):
        if split:
            assert r["context_start"] == r["start"] - 5
    assert out.n_time == 20 and "preceding 0.5 ms" in out.provenance["split_plan"]


def test_a_stateful_model_enters_the_segment_in_the_right_state() -> None:
    """A leaky integrator run from rest on the test piece: with context its scored outputs equal
    the whole-trial run; without (the control) they do not."""
    ds = _data()
    leak = lambda x: lfilter([0.1], [1.0, -0.95], x)  # noqa: E731  tau ~ 20 samples
    full = leak(ds.inputs[:, :, 0])
    for context, equal in (("preceding", True), ("none", False)):
        out = apply_split(ds, SplitSpec("time_segment", {**BASE, "context": context}))
        for row in np.flatnonzero(out.split == 2):
            r = _rows(out)[row]
            c = r.get("context_start", r["start"])
            pred = leak(out.inputs[row, :, 0])[r["start"] - c : r["stop"] - c]
            assert np.allclose(pred, full[r["source_trial"], r["start"] : r["stop"]]) is equal


@pytest.mark.parametrize(("opts", "message"), [
    ({"context": "after"}, "context='after': must be one of 'none', 'preceding'"),
    ({"context": "preceding", "context_ms": -1}, "must be a time >= 0 ms"),
])
def test_bad_context_options(opts: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SplitSpec("time_segment", {**BASE, **opts})
