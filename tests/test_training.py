"""Training: config, normalisation, ensemble == lone training, closed form, determinism."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.errors import ConfigError, DatasetError
from neuroreduce.models import RecurrentSurrogate
from neuroreduce.training import (
    Normalization,
    TrainConfig,
    load_run,
    member_losses,
    predict,
    train,
)


def linear_dataset(
    *, n_trials: int = 20, n_time: int = 80, a: float = 0.9, b: float = 0.5, seed: int = 0
) -> Dataset:
    """Two inputs (nA) through y_t = a*y_{t-1} + b*u1_t - 0.2*u2_t (mV); split 60/20/20 %."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(size=(n_trials, n_time // 10 + 1, 2))
    u = np.repeat(steps, 10, axis=1)[:, :n_time].astype(np.float32)
    y = np.zeros((n_trials, n_time, 1))
    for t in range(1, n_time):
        y[:, t, 0] = a * y[:, t - 1, 0] + b * u[:, t, 0] - 0.2 * u[:, t, 1]
    n_tr, n_va = int(0.6 * n_trials), int(0.2 * n_trials)
    split = np.array([0] * n_tr + [1] * n_va + [2] * (n_trials - n_tr - n_va))
    return Dataset(u, (y - 60.0).astype(np.float32), 0.5, ("u1", "u2"), ("y",), split=split)


# ------------------------------------------------------------------------------ config
def test_config_defaults_and_roundtrip() -> None:
    cfg = TrainConfig()
    assert (cfg.model, cfg.hidden, cfg.seeds, cfg.epochs, cfg.batch_size, cfg.loss) == (
        "gru",
        4,
        (0,),
        1000,
        32,
        "rmse",
    )
    assert cfg.effective_learning_rate == 0.05
    assert TrainConfig(model="lstm").effective_learning_rate == 0.05
    assert TrainConfig(model="rnn").effective_learning_rate == 0.001
    assert TrainConfig(model="rnn", learning_rate=0.1).effective_learning_rate == 0.1
    full = TrainConfig(
        model="lstm",
        hidden=8,
        seeds=[3, 1],
        epochs=5,
        batch_size=4,
        learning_rate=0.01,
        loss="mse",
        early_stopping_patience=3,
        checkpoint_every=2,
        threads=2,
    )
    assert full.seeds == (3, 1)
    assert TrainConfig.from_dict(full.to_dict()) == full
    assert TrainConfig.from_dict({"hidden": 16}) == TrainConfig(hidden=16)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "nope"}, r"TrainConfig.model 'nope' is unknown; use one of .*gru, lstm"),
        ({"hidden": 0}, "TrainConfig.hidden must be a positive integer"),
        ({"seeds": ()}, "TrainConfig.seeds must hold at least one seed"),
        ({"seeds": (1, 1)}, "TrainConfig.seeds must be distinct"),
        ({"seeds": (-1,)}, r"TrainConfig.seeds must be integers >= 0"),
        ({"seeds": 3}, "TrainConfig.seeds must be a sequence"),
        ({"epochs": 2.5}, "TrainConfig.epochs must be a positive integer"),
        ({"batch_size": True}, "TrainConfig.batch_size must be a positive integer"),
        ({"learning_rate": -1.0}, "TrainConfig.learning_rate must be a finite number > 0"),
        ({"learning_rate": math.nan}, "TrainConfig.learning_rate must be a finite number > 0"),
        ({"loss": "mae"}, r"TrainConfig.loss 'mae' is unknown; use one of mse, rmse"),
        ({"early_stopping_patience": 0}, "TrainConfig.early_stopping_patience must be"),
        ({"checkpoint_every": 0}, "TrainConfig.checkpoint_every must be"),
        ({"threads": 0}, "TrainConfig.threads must be"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kwargs)


def test_config_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ConfigError, match="unknown training option.*lr; allowed: model, hidden"):
        TrainConfig.from_dict({"lr": 0.1})


# ------------------------------------------------------------------------------ normalisation
def test_normalization_fits_train_trials_only_and_inverts() -> None:
    ds = linear_dataset()
    train_idx = ds.indices("train")
    norm = Normalization.fit(ds)
    np.testing.assert_allclose(norm.input_mean, ds.inputs[train_idx].mean(axis=(0, 1)), rtol=1e-5)
    np.testing.assert_allclose(norm.output_std, ds.outputs[train_idx].std(axis=(0, 1)), rtol=1e-4)
    all_mean = ds.outputs.mean(axis=(0, 1))
    assert abs(norm.output_mean[0] - all_mean[0]) > 1e-3  # not fitted on valid/test trials
    z = norm.normalize_outputs(ds.outputs[train_idx])
    np.testing.assert_allclose(z.mean(axis=(0, 1)), 0.0, atol=1e-4)
    np.testing.assert_allclose(z.std(axis=(0, 1)), 1.0, rtol=1e-4)
    np.testing.assert_allclose(norm.denormalize_outputs(z), ds.outputs[train_idx], atol=1e-4)
    assert Normalization.from_dict(norm.to_dict()) == norm
    with pytest.raises(DatasetError, match="inputs have 3 channels"):
        norm.normalize_inputs(np.zeros((1, 5, 3)))


def test_normalization_constant_channel_gets_unit_std() -> None:
    ds = linear_dataset()
    inputs = ds.inputs.copy()
    inputs[..., 1] = 0.3
    const = Dataset(inputs, ds.outputs, ds.dt_ms, ds.input_names, ds.output_names, split=ds.split)
    norm = Normalization.fit(const)
    assert norm.input_std[1] == 1.0
    assert norm.input_mean[1] == pytest.approx(0.3)
    assert np.isfinite(norm.normalize_inputs(inputs)).all()


# ------------------------------------------------------------------------------ the key test
def reference_train(ds: Dataset, cfg: TrainConfig, seed: int) -> tuple[dict, list, int]:
    """Lone training written out from the spec: RecurrentSurrogate + Adam + own shuffle RNG."""
    norm = Normalization.fit(ds)
    tr, va = ds.indices("train"), ds.indices("valid")
    x = torch.from_numpy(norm.normalize_inputs(ds.inputs[tr]))
    y = torch.from_numpy(norm.normalize_outputs(ds.outputs[tr]))
    xv = torch.from_numpy(norm.normalize_inputs(ds.inputs[va]))
    yv = torch.from_numpy(norm.normalize_outputs(ds.outputs[va]))
    torch.manual_seed(seed)
    model = RecurrentSurrogate(cfg.model, x.shape[2], y.shape[2], cfg.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.effective_learning_rate)
    rng = np.random.default_rng(seed)
    best, best_state, best_epoch, history, since = math.inf, None, 0, [], 0
    for epoch in range(1, cfg.epochs + 1):
        perm = rng.permutation(x.shape[0])
        for start in range(0, len(perm), cfg.batch_size):
            idx = torch.from_numpy(perm[start : start + cfg.batch_size])
            loss = (model(x[idx]) - y[idx]).square().mean().sqrt()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            tl = float((model(x) - y).square().mean().sqrt())
            vl = float((model(xv) - yv).square().mean().sqrt())
        history.append((epoch, tl, vl))
        if vl < best:
            best, best_state, best_epoch, since = vl, copy.deepcopy(model.state_dict()), epoch, 0
        else:
            since += 1
            if cfg.early_stopping_patience and since >= cfg.early_stopping_patience:
                break
    return best_state, history, best_epoch


@pytest.mark.parametrize(
    ("model", "patience", "lr"), [("gru", None, 0.01), ("lstm", None, 0.01), ("rnn", 1, 0.05)]
)
def test_ensemble_training_equals_lone_training(
    tmp_path: Path, model: str, patience: int | None, lr: float
) -> None:
    ds = linear_dataset(n_trials=20, n_time=60)
    seeds = (0, 5, 9)
    cfg = TrainConfig(
        model=model,
        hidden=3,
        seeds=seeds,
        epochs=4,
        batch_size=5,
        learning_rate=lr,
        early_stopping_patience=patience,
    )
    ens = train(ds, cfg, tmp_path / "ens", progress=False)
    run = load_run(tmp_path / "ens")
    for k, seed in enumerate(seeds):
        ref_state, ref_history, ref_best = reference_train(ds, cfg, seed)
        lone = train(
            ds,
            TrainConfig.from_dict({**cfg.to_dict(), "seeds": [seed]}),
            tmp_path / f"lone{seed}",
            progress=False,
        )
        lone_run = load_run(tmp_path / f"lone{seed}")
        assert ens.best_epochs[k] == lone.best_epochs[0] == ref_best
        rows = [(r.epoch, r.train_loss, r.valid_loss) for r in ens.history if r.member == k]
        assert [r[0] for r in rows] == [h[0] for h in ref_history]
        np.testing.assert_allclose([r[1:] for r in rows], [h[1:] for h in ref_history], rtol=1e-4)
        member = run.model.member(k).state_dict()
        single = lone_run.model.member(0).state_dict()
        for name, ref in ref_state.items():
            torch.testing.assert_close(member[name], ref, rtol=1e-4, atol=1e-6)
            torch.testing.assert_close(single[name], ref, rtol=1e-4, atol=1e-6)
    last_rows = [max(r.epoch for r in ens.history if r.member == k) for k in range(len(seeds))]
    assert ens.epochs_done == max(last_rows)  # training ends when every member is done
    if patience is not None:
        assert any(ens.stopped_early), "the patience-1 case should stop some member early"


# ------------------------------------------------------------------------------ closed form
@pytest.mark.slow
def test_training_recovers_a_linear_system(tmp_path: Path) -> None:
    a, b = 0.9, 0.5
    ds = linear_dataset(n_trials=40, n_time=150, a=a, b=b, seed=1)
    cfg = TrainConfig(model="gru", hidden=4, seeds=(0,), epochs=40, batch_size=8)
    train(ds, cfg, tmp_path / "run", progress=False)
    run = load_run(tmp_path / "run")
    test = ds.indices("test")
    pred = predict(run, ds.inputs[test])[0]
    rmse = float(np.sqrt(np.mean((pred - ds.outputs[test]) ** 2)))
    assert rmse < 0.06 * float(ds.outputs[test].std())
    # impulse response on input 1: b * a**k after the pulse
    pulse = np.zeros((1, 150, 2), np.float32)
    pulse[0, 5, 0] = 1.0
    response = predict(run, pulse)[0, 0, :, 0] - predict(run, np.zeros_like(pulse))[0, 0, :, 0]
    expected = np.zeros(150)
    expected[5:] = b * a ** np.arange(145)
    assert np.abs(response - expected).max() < 0.1 * b


# ------------------------------------------------------------------------------ determinism
def test_training_is_deterministic(tmp_path: Path) -> None:
    ds = linear_dataset(n_trials=15, n_time=50)
    cfg = TrainConfig(model="gru", hidden=3, seeds=(2, 3), epochs=3, batch_size=4)
    torch.manual_seed(123)  # the global RNG must not matter
    first = train(ds, cfg, tmp_path / "a", progress=False)
    torch.manual_seed(999)
    second = train(ds, cfg, tmp_path / "b", progress=False)
    assert first.history == second.history
    assert first.best_valid_losses == second.best_valid_losses
    a, b = load_run(tmp_path / "a").model, load_run(tmp_path / "b").model
    for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y)
    other = train(
        ds,
        TrainConfig.from_dict({**cfg.to_dict(), "seeds": [4, 3]}),
        tmp_path / "c",
        progress=False,
    )
    assert other.history[1::2] == first.history[1::2]  # member with seed 3 is unchanged
    assert other.history[0::2] != first.history[0::2]


def test_train_needs_train_and_valid_trials(tmp_path: Path) -> None:
    ds = linear_dataset(n_trials=10, n_time=20)
    cfg = TrainConfig(epochs=1)
    no_split = Dataset(ds.inputs, ds.outputs, ds.dt_ms, ds.input_names, ds.output_names)
    with pytest.raises(DatasetError, match="no split"):
        train(no_split, cfg, tmp_path / "x", progress=False)
    no_valid = Dataset(
        ds.inputs,
        ds.outputs,
        ds.dt_ms,
        ds.input_names,
        ds.output_names,
        split=np.where(ds.split == 1, 2, ds.split),
    )
    with pytest.raises(DatasetError, match="no 'valid' trials"):
        train(no_valid, cfg, tmp_path / "y", progress=False)


def test_a_diverged_member_is_frozen_at_its_best_without_touching_the_others() -> None:
    from neuroreduce.models import ModelSpec
    from neuroreduce.training.data import InMemoryData
    from neuroreduce.training.trainer import _Loop

    ds = linear_dataset(n_trials=10, n_time=30)
    cfg = TrainConfig(hidden=3, seeds=(0, 1, 2), epochs=5, batch_size=4)
    loop = _Loop(cfg, ModelSpec("gru", 2, 1, 3), InMemoryData(ds, Normalization.fit(ds)))
    loop.run_epoch()
    before = [loop.model.member_state_dict(k) for k in range(3)]
    best1 = loop.best_model.member_state_dict(1)
    owners = loop.model.parameter_owners()["rnn.weight_hh_l0"]
    with torch.no_grad():
        loop.model.rnn.weight_hh_l0[owners == 1] = math.nan
    with pytest.warns(RuntimeWarning, match=r"members \[1\] \(seeds \[1\]\) diverged"):
        loop._guard_divergence()
    assert loop.done == [False, True, False]
    for name, t in loop.model.member_state_dict(1).items():
        assert torch.equal(t, best1[name])
    for k in (0, 2):
        for name, t in loop.model.member_state_dict(k).items():
            assert torch.equal(t, before[k][name])
    report = loop.run_epoch()  # the others keep training, with finite losses
    assert math.isnan(report.valid_losses[1]) and math.isfinite(report.valid_losses[0])
    assert all(torch.isfinite(p).all() for p in loop.model.parameters())


@pytest.mark.parametrize("loss", ["mse", "rmse"])
def test_member_losses_equal_autograd_of_the_plain_expression_bit_for_bit(loss: str) -> None:
    """The hand-written gradient of member_losses changes speed only, not a single bit."""
    gen = torch.Generator().manual_seed(3)
    pred = torch.randn(4, 5, 33, 7, generator=gen)
    target = torch.randn(4, 5, 33, 7, generator=gen)
    active = torch.tensor([1.0, 0.0, 1.0, 1.0])

    fast = pred.clone().requires_grad_()
    got = member_losses(fast, target, loss)
    (got * active).sum().backward()

    plain = pred.clone().requires_grad_()
    want = (plain - target).square().mean(dim=(1, 2, 3))
    want = want.sqrt() if loss == "rmse" else want
    (want * active).sum().backward()

    assert torch.equal(got, want)
    assert fast.grad is not None and plain.grad is not None
    assert torch.equal(fast.grad, plain.grad)
    assert torch.all(fast.grad[1] == 0)  # a frozen member gets no gradient
    assert not target.requires_grad


def test_wide_data_are_evaluated_in_smaller_pieces_with_the_same_losses(monkeypatch) -> None:
    from neuroreduce.models import ModelSpec
    from neuroreduce.training import ensemble_loop
    from neuroreduce.training.data import InMemoryData

    ds = linear_dataset(n_trials=20, n_time=30)  # 2 inputs -> 1 output
    cfg = TrainConfig(hidden=3, seeds=(0, 1, 2), epochs=2, batch_size=4)
    data = InMemoryData(ds, Normalization.fit(ds))
    loop = ensemble_loop.EnsembleLoop(cfg, ModelSpec("gru", 2, 1, 3), data)
    loop.run_epoch()
    trial_bytes = 3 * 30 * 1 * 4  # members x steps x outputs x float32
    whole = {split: loop._evaluate(split)[0] for split in ("train", "valid")}
    assert loop._eval_piece() == 64
    for budget, piece in ((trial_bytes * 20, 16), (trial_bytes * 3, 3), (1, 1)):
        monkeypatch.setattr(ensemble_loop, "_EVAL_BYTES", budget)
        assert loop._eval_piece() == piece
        loop.piece = piece
        for split, losses in whole.items():
            assert loop._evaluate(split)[0] == pytest.approx(losses, rel=1e-6)
