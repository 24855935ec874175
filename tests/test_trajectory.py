"""Trajectory prediction X(t+1) = X(t) + f(X(t)) with scheduled sampling (Wang et al.)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.errors import ConfigError, DatasetError
from neuroreduce.models.registry import build_model
from neuroreduce.wholebrain.trajectory import (
    TrajectoryConfig,
    per_step_mse,
    rollout,
    teacher_forcing_probability,
    train_trajectory,
)

N = 4  # neurons: 2N channels


def oscillator_segments(n: int, length: int, *, seed: int = 0, noise: float = 0.01) -> np.ndarray:
    """Segments ``[n, length, 2N]`` of damped rotations (pairs of neurons) around 0.5, the
    second half of the channels being the frame-to-frame derivative; noisy."""
    rng = np.random.default_rng(seed)
    theta = np.array([0.3, 0.5])
    x = np.empty((n, length + 1, N))
    x[:, 0] = rng.uniform(-0.4, 0.4, (n, N))
    for t in range(length):
        prev = x[:, t]
        nxt = np.empty_like(prev)
        for k, th in enumerate(theta):
            a, b = prev[:, 2 * k], prev[:, 2 * k + 1]
            nxt[:, 2 * k] = 0.98 * (np.cos(th) * a - np.sin(th) * b)
            nxt[:, 2 * k + 1] = 0.98 * (np.sin(th) * a + np.cos(th) * b)
        x[:, t + 1] = nxt + rng.normal(0, noise, prev.shape)
    trace = x[:, 1:] + 0.5
    deriv = np.diff(x, axis=1)
    return np.concatenate([trace, deriv], axis=2).astype(np.float32)


def small(**kw) -> TrajectoryConfig:
    base = dict(model="mlp_agg", hidden=32, epochs=30, anneal_epochs=20, batch_size=32,
                learning_rate=3e-3, train_steps=4, eval_steps=8)
    base.update(kw)
    return TrajectoryConfig(**base)


def test_teacher_forcing_decays_linearly():
    assert [teacher_forcing_probability(e, 4) for e in range(6)] == [1, 0.75, 0.5, 0.25, 0, 0]
    assert teacher_forcing_probability(0, 0) == 0.0


def test_config_checks():
    assert TrajectoryConfig().length == 17  # start + 16 evaluated frames
    assert TrajectoryConfig(burn_in=4).length == 21
    with pytest.raises(ConfigError, match="has no option"):
        TrajectoryConfig(model_options={"bogus": 1})
    with pytest.raises(ConfigError, match="train_steps"):
        TrajectoryConfig(train_steps=0)
    with pytest.raises(ConfigError, match="plateau_factor"):
        TrajectoryConfig(plateau_factor=1.5)


def test_rollout_teacher_forced_is_one_step_and_free_running_is_not():
    torch.manual_seed(0)
    model = build_model("gnn_inferred", n_inputs=2 * N, n_outputs=2 * N, hidden=8,
                        options={"window": 1, "edges": "dynamic"})
    x = torch.from_numpy(oscillator_segments(3, 6))
    forced = rollout(model, x, burn_in=0, steps=5, p_true=1.0)
    one_step = x[:, :5] + model(x[:, :5])  # window 1: f of each true frame
    assert torch.allclose(forced, one_step, atol=1e-6)
    free = rollout(model, x, burn_in=0, steps=5)
    assert torch.allclose(free[:, 0], forced[:, 0])  # the first step sees the true start
    assert not torch.allclose(free[:, 1:], forced[:, 1:], atol=1e-4)


def test_schedule_recorded_and_seeded():
    train, valid = oscillator_segments(64, 9, seed=1), oscillator_segments(32, 9, seed=2)
    cfg = small(epochs=6, anneal_epochs=4)
    r1 = train_trajectory(train, valid, cfg)
    assert [h["p_true"] for h in r1.history] == [1, 0.75, 0.5, 0.25, 0, 0]
    r2 = train_trajectory(train, valid, cfg)
    assert [h["train_loss"] for h in r1.history] == [h["train_loss"] for h in r2.history]
    r3 = train_trajectory(train, valid, dataclasses.replace(cfg, seed=1))
    assert [h["train_loss"] for h in r1.history] != [h["train_loss"] for h in r3.history]


@pytest.mark.parametrize("family", ["mlp_agg", "gnn_inferred"])
def test_learns_dynamics_and_error_grows_with_horizon(family):
    """Trained free-running models beat persistence (f = 0) at every step, and their
    per-step MSE grows with the prediction step."""
    torch.set_num_threads(1)
    train, valid = oscillator_segments(128, 9, seed=1), oscillator_segments(64, 9, seed=2)
    opts = {"window": 1} if family == "mlp_agg" else {"window": 1, "edges": "dynamic"}
    r = train_trajectory(train, valid, small(model=family, model_options=opts))
    mse = r.valid_mse
    assert mse.shape == (8,)
    assert mse[-1] > 2 * mse[0]
    assert np.all(np.diff(mse[:4]) > 0)
    persistence = ((valid[:, 1:] - valid[:, :1]) ** 2).mean(axis=(0, 2))
    assert np.all(mse < persistence), (mse, persistence)
    assert r.best_epoch >= 1
    assert r.history[-1]["train_loss"] < r.history[0]["train_loss"]


def test_lstm_variant_with_burn_in():
    train, valid = oscillator_segments(64, 13, seed=1), oscillator_segments(32, 13, seed=2)
    cfg = small(model_options={"memory": "lstm"}, burn_in=4, epochs=3, hidden=8)
    r = train_trajectory(train, valid, cfg)
    assert r.valid_mse.shape == (8,)
    mse = per_step_mse(r.model, valid, burn_in=4, steps=8)
    np.testing.assert_allclose(mse, r.valid_mse, rtol=1e-6)
    with pytest.raises(DatasetError, match="too short"):
        per_step_mse(r.model, valid[:, :10], burn_in=4, steps=8)


def test_connectome_needs_names_and_bad_segments():
    seg = oscillator_segments(8, 9)
    with pytest.raises(ConfigError, match="neurons"):
        train_trajectory(seg, seg, small(model="gnn_connectome", epochs=1))
    r = train_trajectory(seg, seg, small(model="gnn_connectome", epochs=1, model_options={
        "window": 1, "neurons": ("AVAL", "AVAR", "AVBL", "AVBR")}))
    assert r.model.edges.adjacency[0, 1] == 1  # AVAL-AVAR gap junction
    names = ("AVAL", "AVAR", "AVBL", "AVBR")
    data = Dataset(inputs=seg, outputs=np.zeros((8, seg.shape[1], 0), np.float32), dt_ms=600.0,
                   input_names=names + tuple(f"d_{n}" for n in names), output_names=(),
                   input_units="z", output_units="", families=("w",) * 8, split=None,
                   provenance={})
    r2 = train_trajectory(data, data, small(model="gnn_connectome", epochs=1))
    assert dict(r2.options)["neurons"] == names  # taken from the dataset's channel names
    assert torch.equal(r2.model.edges.adjacency, r.model.edges.adjacency)
    with pytest.raises(DatasetError, match="too short"):
        train_trajectory(seg[:, :4], seg, small(epochs=1))
    bad = seg.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(DatasetError, match="NaN"):
        train_trajectory(bad, seg, small(epochs=1))
