"""The k-of-n worms x inner-fold protocol (neuroreduce.wholebrain.protocol) on tiny windows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.fields import Field, FieldSpec
from neuroreduce.errors import ConfigError, DatasetError
from neuroreduce.execution import Backend
from neuroreduce.wholebrain import protocol as P

WINDOW = 8


def make_windows(n_worms: int = 4, per_worm: int = 40, n_neurons: int = 3, *, seed: int = 0,
                 flip: bool = False, prefix: str = "w") -> Dataset:
    """Layout-2 windows with a planted rule: reversal (1) when neuron 0 is high at the end.

    ``flip`` inverts the rule (a set on which a model of the rule must fail)."""
    rng = np.random.default_rng(seed)
    n = n_worms * per_worm
    x = rng.uniform(0, 1, (n, WINDOW, 2 * n_neurons)).astype(np.float32)
    state = (rng.random(n) < 0.4).astype(np.int16)
    x[:, -3:, 0] = np.where(state == 1, 0.9, 0.1)[:, None] + rng.normal(0, 0.03, (n, 3))
    labels = np.full((n, WINDOW, 1), -1, np.int16)
    labels[:, -1, 0] = 1 - state if flip else state
    worm = np.repeat(np.arange(n_worms), per_worm).astype(np.int32)
    names = tuple(f"n{j}" for j in range(n_neurons))
    fields = (
        Field(FieldSpec("behaviour", "label", "categorical", ("state",),
                        classes=("forward", "reversal"), ignore_label=-1), labels),
        Field(FieldSpec("worm", "group", "categorical",
                        classes=tuple(f"{prefix}{i}" for i in range(n_worms))), worm),
    )
    return Dataset(
        inputs=x, outputs=np.zeros((n, WINDOW, 0), np.float32), dt_ms=600.0,
        input_names=names + tuple(f"d_{m}" for m in names), output_names=(),
        input_units="a.u.", output_units="", families=tuple(f"{prefix}{w}" for w in worm),
        split=None, provenance={"test": "windows"}, fields=fields,
    )


def test_combination_counts_are_n_choose_k():
    worms = [f"w{i}" for i in range(5)]
    for k in range(1, 6):
        combos = P.combinations(worms, k)
        assert len(combos) == math.comb(5, k)
        assert len(set(combos)) == len(combos)
        assert all(len(c) == k for c in combos)


def test_no_training_worm_is_one_line_error():
    with pytest.raises(ConfigError, match="leaves no worm for training"):
        P.combinations(["a", "b"], 0)
    with pytest.raises(ConfigError, match="leaves no worm for training"):
        P.combinations([], 1)
    with pytest.raises(ConfigError, match="only 2 worm"):
        P.combinations(["a", "b"], 3)
    with pytest.raises(ConfigError, match="k must be an integer >= 1"):
        P.ProtocolConfig(k=0)
    # a training worm without labelled windows
    ds = make_windows(3, 12)
    labels = np.asarray(ds.field("behaviour").values)
    labels[ds.field("worm").values == 0] = -1
    with pytest.raises(ConfigError, match="leaves no windows for training"):
        P.fold_plans(ds, P.ProtocolConfig(k=1, folds=3, worms=("w0", "w1")))


def test_fold_plans_partition_and_no_leakage():
    ds = make_windows(4, 30)
    ids, names = P.worm_ids(ds)
    config = P.ProtocolConfig(k=2, folds=5)
    plans = P.fold_plans(ds, config)
    assert len(plans) == math.comb(4, 2) * 5
    for p in plans:
        train_ids = {names[i] for i in ids[np.concatenate([p.train, p.valid, p.test])]}
        unseen_ids = {names[i] for i in ids[p.unseen]}
        assert train_ids == set(p.train_worms)
        assert unseen_ids == set(p.unseen_worms)
        assert not train_ids & unseen_ids  # no window of an unseen worm ever trains
        parts = [p.train, p.valid, p.test, p.unseen]
        allidx = np.concatenate(parts)
        assert allidx.size == np.unique(allidx).size == ds.n_trials
    # within one combination, each window is tested exactly once over the folds
    first = [p for p in plans if p.combination == 0]
    tested = np.concatenate([p.test for p in first])
    assert tested.size == np.unique(tested).size == sum(p.test.size for p in first)
    assert np.unique(tested).size == first[0].train.size + first[0].valid.size + \
        first[0].test.size
    # deliberately wrong control: a plan that trains on an unseen worm is caught by the check
    bad = plans[0].unseen[:1]
    assert {names[i] for i in ids[bad]} & set(plans[0].unseen_worms)


def test_reduced_grid_and_unknown_worm():
    ds = make_windows(4, 30)
    plans = P.fold_plans(ds, P.ProtocolConfig(k=1, folds=10, run_folds=2, max_combinations=3))
    assert [(p.combination, p.fold) for p in plans] == [(c, f) for c in range(3) for f in (0, 1)]
    with pytest.raises(ConfigError, match="not in the data"):
        P.fold_plans(ds, P.ProtocolConfig(worms=("w0", "zz")))
    with pytest.raises(DatasetError, match="no group field 'animal'"):
        P.fold_plans(ds, P.ProtocolConfig(group="animal"))


def test_protocol_end_to_end_finds_planted_rule_and_fails_on_flipped_set():
    ds = make_windows(3, 40, seed=1)
    other = make_windows(2, 40, seed=2, prefix="o")
    flipped = make_windows(2, 40, seed=3, flip=True, prefix="o")
    models = [P.ModelSpec("SVM", "svm", hidden=WINDOW)]
    config = P.ProtocolConfig(k=2, folds=4, run_folds=2)
    res = P.run_protocol(ds, models, config, other=other)
    assert not res.failures
    assert len(res.rows) == 3 * 2
    s = res.summary()["SVM"]
    assert s["test"]["mean"] > 0.9 and s["unseen"]["mean"] > 0.9 and s["other"]["mean"] > 0.9
    cm = np.asarray(s["confusion_unseen"])
    assert cm.shape == (2, 2) and cm.sum() == sum(r["confusion_unseen"] and
                                                  np.sum(r["confusion_unseen"]) for r in res.rows)
    # control: the same model scored on a set with the rule inverted is mostly wrong
    bad = P.run_protocol(ds, models, P.ProtocolConfig(k=2, folds=4, run_folds=1),
                         other=flipped)
    assert bad.summary()["SVM"]["other"]["mean"] < 0.2
    assert res.projected_wall_s(100) <= res.cpu_s


def test_protocol_parallel_workers_match_inline(tmp_path):
    ds = make_windows(3, 30, seed=4)
    models = [P.ModelSpec("SVM", "svm", hidden=WINDOW),
              P.ModelSpec("MLP", "mlp", hidden=8, epochs=3, options=(("window", WINDOW),))]
    config = P.ProtocolConfig(k=1, folds=3, run_folds=2, folds_per_cell=2, max_combinations=1)
    inline = P.run_protocol(ds, models, config)
    pooled = P.run_protocol(ds, models, config, backend=Backend("local", workers=2),
                            work_dir=tmp_path)
    assert not pooled.failures and len(pooled.rows) == len(inline.rows) == 2 * 1 * 2
    for a, b in zip(inline.rows, pooled.rows, strict=True):
        assert (a["model"], a["combination"], a["fold"]) == (b["model"], b["combination"],
                                                              b["fold"])
        assert a["confusion_test"] == b["confusion_test"]
    assert pooled.rows[0]["accuracy_other"] is None  # no other set given


def test_bad_inputs_are_one_line():
    ds = make_windows(3, 20)
    with pytest.raises(ConfigError, match="model family|unknown"):
        P.ModelSpec("X", "no_such_family")
    with pytest.raises(ConfigError, match="channels differ"):
        P.run_protocol(ds, [P.ModelSpec("SVM", "svm", hidden=WINDOW)], P.ProtocolConfig(),
                       other=make_windows(2, 20, n_neurons=4))
    with pytest.raises(ConfigError, match="distinct"):
        P.cell_payloads([], [P.ModelSpec("A", "svm"), P.ModelSpec("A", "svm")], windows="x",
                        other=None, config=P.ProtocolConfig())


def test_trajectory_protocol_rows_per_step():
    from neuroreduce.wholebrain.trajectory import TrajectoryConfig

    ds = make_windows(3, 12, seed=5)
    config = TrajectoryConfig(model="mlp_agg", hidden=8, train_steps=3, eval_steps=4, epochs=1,
                              anneal_epochs=1, batch_size=16)
    rows = P.run_trajectory_protocol(ds, [P.TrajectoryModel("MLP", config)], [1, 2],
                                     other=make_windows(1, 6, seed=6, prefix="o"),
                                     max_combinations=1)
    assert len(rows) == 2  # one combination of 1 and one of 2 training worms
    for r in rows:
        assert "error" not in r, r
        assert len(r["mse_unseen"]) == 4 and np.isfinite(r["mse_unseen"]).all()
        assert len(r["mse_other"]) == 4
        assert r["n_train_worms"] == len(r["train_worms"])
