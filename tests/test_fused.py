"""The compiled fused recurrence equals the packed PyTorch ensemble and lone models."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from neuroreduce.errors import ConfigError, DependencyError
from neuroreduce.models import fused
from neuroreduce.models.ensemble import SurrogateEnsemble
from neuroreduce.models.registry import ModelSpec
from neuroreduce.models.rnn import GATES
from neuroreduce.training import TrainConfig, train

CELLS = ("gru", "lstm", "rnn")


@pytest.fixture(scope="module")
def kernels():
    k = fused.load_kernels()
    if k is None:
        pytest.skip(f"fused recurrence not buildable here: {fused.failure_reason()}")
    return k


def _pair(cell: str, seeds, **sizes) -> tuple[SurrogateEnsemble, SurrogateEnsemble]:
    a = SurrogateEnsemble.from_seeds(cell, seeds, engine="fused", **sizes)
    b = SurrogateEnsemble.from_seeds(cell, seeds, engine="packed", **sizes)
    return a, b


def _grads(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    model.zero_grad()
    y = model(x)
    (y - target).square().mean().backward()
    return y.detach()


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(
    "sizes",
    [
        dict(members=3, batch=5, time=37, n_inputs=3, n_outputs=2, hidden=4),
        dict(members=1, batch=1, time=1, n_inputs=1, n_outputs=1, hidden=1),
        dict(members=2, batch=9, time=4, n_inputs=2, n_outputs=3, hidden=1),
        dict(members=2, batch=3, time=6, n_inputs=13, n_outputs=2, hidden=2),  # projected path
    ],
)
def test_fused_equals_packed_and_lone_models(kernels, cell, sizes) -> None:
    k, b, t = sizes["members"], sizes["batch"], sizes["time"]
    dims = {n: sizes[n] for n in ("n_inputs", "n_outputs", "hidden")}
    torch.manual_seed(123)
    x = torch.randn(k, b, t, dims["n_inputs"])
    target = torch.randn(k, b, t, dims["n_outputs"])
    fast, packed = _pair(cell, list(range(10, 10 + k)), **dims)
    y_fast = _grads(fast, x, target)
    y_packed = _grads(packed, x, target)
    np.testing.assert_allclose(y_fast, y_packed, atol=1e-5, rtol=0)
    for (name, p), (_, q) in zip(fast.named_parameters(), packed.named_parameters(), strict=True):
        np.testing.assert_allclose(p.grad, q.grad, atol=1e-5, rtol=1e-4, err_msg=name)
    for m in range(k):  # each member equals a lone model with the same weights
        lone = fast.member(m)
        y_lone = lone(x[m])
        (y_lone - target[m]).square().mean().backward()
        np.testing.assert_allclose(y_fast[m], y_lone.detach(), atol=1e-5, rtol=0)
        lone_grad = lone.rnn.weight_hh_l0.grad.view(GATES[cell], dims["hidden"], -1)
        fast_grad = fast.rnn.weight_hh_l0.grad.view(GATES[cell], k, dims["hidden"], k, -1)
        np.testing.assert_allclose(k * fast_grad[:, m, :, m, :], lone_grad, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("projected", [False, True])
def test_gradcheck_float64(kernels, cell, projected) -> None:
    """Every input of the autograd function, h0 and c0 included, against finite differences."""
    torch.manual_seed(0)
    k, b, t, i, h = 2, 3, 4, 2, 2
    gh = GATES[cell] * h

    def leaf(*shape):
        return (0.5 * torch.randn(*shape, dtype=torch.float64)).requires_grad_()

    x = leaf(k, b, t, gh if projected else i)
    w_ih = None if projected else leaf(k, gh, i)
    b_ih = None if projected else leaf(k, gh)
    w_hh, b_hh, h0 = leaf(k, gh, h), leaf(k, gh), leaf(k, b, h)
    w_out, b_out = leaf(k, 3, h), leaf(k, 3)
    c0 = leaf(k, b, h) if cell == "lstm" else None

    def f(x, w_ih, b_ih, w_hh, b_hh, w_out, b_out, h0, c0):
        y, h_last, c_last = fused.fused_surrogate(
            kernels, cell, x, w_ih, b_ih, w_hh, b_hh, w_out, b_out, h0, c0, projected=projected
        )
        out = (y.sin(), h_last.cos())
        return out + ((c_last.exp(),) if c_last is not None else ())

    inputs = (x, w_ih, b_ih, w_hh, b_hh, w_out, b_out, h0, c0)
    assert torch.autograd.gradcheck(f, inputs, atol=1e-6)


def test_shared_inputs_and_no_grad(kernels) -> None:
    fast, packed = _pair("gru", [0, 1, 2], n_inputs=4, n_outputs=3, hidden=5)
    x = torch.randn(6, 11, 4)
    with torch.no_grad():
        np.testing.assert_allclose(fast.forward_shared(x), packed.forward_shared(x), atol=1e-5)
        np.testing.assert_allclose(
            fast.forward_shared(x), fast(x.expand(3, *x.shape).contiguous()), atol=1e-6
        )


def test_saved_buffers_are_not_shared_between_live_graphs(kernels) -> None:
    """Two forwards before their backwards: recycled workspaces must not be overwritten."""
    fast, packed = _pair("lstm", [3, 4], n_inputs=2, n_outputs=2, hidden=3)
    x1, x2 = torch.randn(2, 4, 9, 2), torch.randn(2, 4, 9, 2)
    for model in (fast, packed):
        model.zero_grad()
        loss1, loss2 = model(x1).square().sum(), model(x2).abs().sum()
        loss2.backward()
        loss1.backward()
    for p, q in zip(fast.parameters(), packed.parameters(), strict=True):
        np.testing.assert_allclose(p.grad, q.grad, atol=1e-5, rtol=1e-4)


def test_nan_propagates(kernels) -> None:
    fast = SurrogateEnsemble.from_seeds("gru", [0], n_inputs=2, n_outputs=1, hidden=3)
    x = torch.zeros(1, 2, 5, 2)
    x[0, 0, 2, 0] = float("nan")
    y = fast(x)
    assert torch.isnan(y[0, 0, 2:]).all() and torch.isfinite(y[0, 1]).all()


@pytest.mark.slow
def test_training_same_losses_fused_and_packed(kernels, tmp_path) -> None:
    from neuroreduce import pipeline

    ds = pipeline.simulate("toy", n_stimuli=12, dt_out_ms=2.0, seed=0, progress=False)
    results = {}
    for engine in ("fused", "packed"):
        cfg = TrainConfig(model="gru", hidden=4, seeds=(0, 1, 2), epochs=4, batch_size=4,
                          engine=engine)
        results[engine] = train(ds, cfg, tmp_path / engine, progress=False)
    a, b = results["fused"], results["packed"]
    np.testing.assert_allclose(a.best_valid_losses, b.best_valid_losses, rtol=1e-4)
    train_a = [r.train_loss for r in a.history]
    train_b = [r.train_loss for r in b.history]
    np.testing.assert_allclose(train_a, train_b, rtol=1e-4)


def test_engine_option_is_checked() -> None:
    with pytest.raises(ConfigError, match="auto, fused, packed"):
        TrainConfig(engine="turbo")
    with pytest.raises(ConfigError, match="engine"):
        ModelSpec("gru", 1, 1, 2).build_ensemble([0], engine="turbo")
    cfg = TrainConfig(engine="packed")
    assert TrainConfig.from_dict(cfg.to_dict()).engine == "packed"
    assert TrainConfig.from_dict({}).engine == "auto"


@pytest.fixture
def broken_build(monkeypatch):
    def fail():
        raise RuntimeError("compiler exploded\nmore detail")

    monkeypatch.setattr(fused, "_build", fail)
    fused.reset_kernels()
    yield
    fused.reset_kernels()


def test_build_failure_falls_back_to_packed(broken_build, tmp_path) -> None:
    from neuroreduce import pipeline

    ens = ModelSpec("gru", 2, 2, 3).build_ensemble([0, 1])
    ref = ModelSpec("gru", 2, 2, 3).build_ensemble([0, 1], engine="packed")
    x = torch.randn(2, 3, 7, 2)
    with pytest.warns(RuntimeWarning, match=r"compiler exploded\); using the slower packed"):
        y = ens(x)
    assert torch.equal(y, ref(x))  # the packed path itself, bit for bit
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once only
        ens(x)
    with pytest.raises(DependencyError, match="engine='packed'"):
        ModelSpec("gru", 2, 2, 3).build_ensemble([0], engine="fused")(x[:1])
    ds = pipeline.simulate("toy", n_stimuli=8, dt_out_ms=5.0, seed=0, progress=False)
    result = train(ds, TrainConfig(hidden=2, seeds=(0, 1), epochs=2), tmp_path / "r",
                   progress=False)
    assert np.isfinite(result.best_valid_losses).all()


def test_stale_build_lock_is_cleared(kernels) -> None:
    """A lock file left by a killed build must not make later processes wait forever."""
    from torch.utils import cpp_extension

    name = fused.build_name(fused.compile_flags())
    build_dir = Path(cpp_extension._get_build_directory(name, verbose=False))
    (build_dir / "lock").write_text("")
    fused.reset_kernels()
    try:
        assert fused.load_kernels(required=True) is not None
        assert not (build_dir / "lock").exists()
    finally:
        fused.reset_kernels()
        fused.load_kernels()
