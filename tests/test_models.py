"""Surrogate models: parameter counts, shapes, initialisation, registry, packed seed ensembles."""

from __future__ import annotations

import pytest
import torch

from neuroreduce.errors import CheckpointError, ConfigError
from neuroreduce.models import (
    ModelSpec,
    RecurrentSurrogate,
    SurrogateEnsemble,
    build_ensemble,
    build_model,
    count_parameters,
    keras_parameter_count,
    list_models,
)

CELLS = ("rnn", "lstm", "gru")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


@pytest.mark.parametrize(
    ("cell", "hidden", "expected"),
    [
        ("rnn", 16, 404),
        ("lstm", 8, 452),
        ("gru", 8, 348),
        ("rnn", 64, 4676),
        ("lstm", 32, 4868),
        ("gru", 32, 3684),
    ],
)
def test_keras_parameter_counts_match_paper(cell: str, hidden: int, expected: int) -> None:
    assert keras_parameter_count(cell, 4, 4, hidden) == expected


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(("n_in", "n_out", "hidden"), [(4, 4, 8), (10, 28, 16), (1, 3, 2)])
def test_pytorch_parameter_count_has_two_biases_per_gate(
    cell: str, n_in: int, n_out: int, hidden: int
) -> None:
    model = RecurrentSurrogate(cell, n_in, n_out, hidden)
    g = GATES[cell]
    assert count_parameters(model) == g * hidden * (n_in + hidden + 2) + n_out * (hidden + 1)
    assert count_parameters(model) - keras_parameter_count(cell, n_in, n_out, hidden) == g * hidden


def test_registry_lists_and_builds_models() -> None:
    assert list_models() == ["adex", "arx_spiking", "elm", "glm", "gnn_connectome",
                             "gnn_inferred", "gru", "lstm", "mat", "mlp", "mlp_agg", "plrnn",
                             "ridge_arx", "rnn", "spike_glm", "stacked_rnn", "svm", "tcn"]
    for name in ("gru", "lstm", "rnn"):
        model = build_model(name, n_inputs=3, n_outputs=2, hidden=5)
        assert isinstance(model, RecurrentSurrogate)
        assert model.cell == name
        assert model.rnn.batch_first and model.rnn.num_layers == 1
    assert build_model("rnn", n_inputs=1, n_outputs=1, hidden=1).rnn.nonlinearity == "tanh"


def test_unknown_model_name_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown model 'transformer'.*gru, lstm, "):
        build_model("transformer", n_inputs=4, n_outputs=4, hidden=8)
    with pytest.raises(ConfigError, match="hidden must be a positive integer"):
        build_model("gru", n_inputs=4, n_outputs=4, hidden=0)


@pytest.mark.parametrize("cell", CELLS)
def test_forward_shape_causality_and_zero_initial_state(cell: str) -> None:
    torch.manual_seed(0)
    model = RecurrentSurrogate(cell, 3, 2, 6)
    x = torch.randn(5, 40, 3)
    y = model(x)
    assert y.shape == (5, 40, 2)
    x2 = x.clone()
    x2[:, 20:] += 1.0  # changing later inputs must not change earlier outputs
    y2 = model(x2)
    torch.testing.assert_close(y2[:, :20], y[:, :20], rtol=0, atol=0)
    assert (y2[:, 20:] - y[:, 20:]).abs().max() > 1e-4
    # zero state and zero input with Keras init (zero biases, candidate tanh(0) = 0 for LSTM
    # despite its forget bias 1): the state stays zero and the output is the zero read-out bias
    torch.testing.assert_close(model(torch.zeros(1, 3, 3)), torch.zeros(1, 3, 2))
    with pytest.raises(ConfigError, match=r"\[batch, time, 3\]; got \(5, 40\)"):
        model(torch.randn(5, 40))


@pytest.mark.parametrize("cell", CELLS)
def test_keras_initialisation(cell: str) -> None:
    torch.manual_seed(1)
    model = RecurrentSurrogate(cell, 4, 4, 8)
    w_hh = model.rnn.weight_hh_l0.detach()
    torch.testing.assert_close(w_hh.T @ w_hh, torch.eye(8), atol=1e-5, rtol=0)  # orthogonal
    limit = (6 / (4 + GATES[cell] * 8)) ** 0.5  # Glorot uniform on the input kernel
    assert model.rnn.weight_ih_l0.abs().max() <= limit
    assert model.rnn.bias_hh_l0.abs().max() == 0
    expected_ih = torch.zeros(GATES[cell] * 8)
    if cell == "lstm":
        expected_ih[8:16] = 1.0  # forget gate
    torch.testing.assert_close(model.rnn.bias_ih_l0.detach(), expected_ih)
    assert model.readout.bias.abs().max() == 0
    torch.manual_seed(1)
    again = RecurrentSurrogate(cell, 4, 4, 8)
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def _lone(cell: str, seed: int, n_in: int = 3, n_out: int = 2, hidden: int = 5):
    torch.manual_seed(seed)
    return RecurrentSurrogate(cell, n_in, n_out, hidden)


@pytest.mark.parametrize("cell", CELLS)
def test_ensemble_members_equal_lone_models(cell: str) -> None:
    seeds = (4, 11, 7)
    ens = SurrogateEnsemble.from_seeds(cell, seeds, n_inputs=3, n_outputs=2, hidden=5)
    assert ens.n_members == 3
    x = torch.randn(3, 4, 30, 3)  # a different minibatch per member
    y = ens(x)
    assert y.shape == (3, 4, 30, 2)
    for k, seed in enumerate(seeds):
        lone = _lone(cell, seed)
        member = ens.member(k)
        for name, t in lone.state_dict().items():
            assert torch.equal(member.state_dict()[name], t), name
        torch.testing.assert_close(y[k], lone(x[k]), rtol=1e-5, atol=1e-6)
    shared = ens.forward_shared(x[0])
    torch.testing.assert_close(shared[2], _lone(cell, 7)(x[0]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_ensemble_gradients_are_blockwise_the_lone_gradients(cell: str) -> None:
    seeds = (0, 1)
    ens = build_ensemble(cell, seeds=seeds, n_inputs=3, n_outputs=2, hidden=4)
    x, target = torch.randn(2, 3, 25, 3), torch.randn(2, 3, 25, 2)
    per_member = (ens(x) - target).square().mean(dim=(1, 2, 3))
    per_member.sum().backward()
    owners = ens.parameter_owners()
    w = ens.rnn.weight_hh_l0
    assert w.grad is not None and w.grad[owners["rnn.weight_hh_l0"] < 0].abs().max() == 0
    assert ens.rnn.weight_ih_l0.grad[owners["rnn.weight_ih_l0"] < 0].abs().max() == 0
    for k, seed in enumerate(seeds):
        lone = _lone(cell, seed, 3, 2, 4)
        (lone(x[k]) - target[k]).square().mean().backward()
        grads = _member_grads(ens, k)
        for name, p in lone.named_parameters():
            torch.testing.assert_close(grads[name], p.grad, rtol=1e-4, atol=1e-6)


def _member_grads(ens: SurrogateEnsemble, k: int) -> dict[str, torch.Tensor]:
    """Extract member k's gradient by packing gradients into a scratch ensemble."""
    scratch = SurrogateEnsemble(
        ens.cell,
        ens.n_members,
        n_inputs=ens.n_inputs,
        n_outputs=ens.n_outputs,
        hidden=ens.hidden,
    )
    with torch.no_grad():
        for (_, dst), (_, src) in zip(
            scratch.named_parameters(), ens.named_parameters(), strict=True
        ):
            dst.copy_(src.grad)
    return scratch.member_state_dict(k)


def test_ensemble_off_diagonal_blocks_stay_zero_under_adam() -> None:
    ens = build_ensemble("gru", seeds=(0, 1, 2), n_inputs=2, n_outputs=2, hidden=3)
    opt = torch.optim.Adam(ens.parameters(), lr=0.05)
    owners = ens.parameter_owners()
    for _ in range(3):
        opt.zero_grad()
        ens(torch.randn(3, 2, 10, 2)).square().sum().backward()
        opt.step()
    for name, p in ens.named_parameters():
        off = owners[name] < 0
        if off.any():
            assert p.detach()[off].abs().max() == 0, name
    assert ens.rnn.weight_hh_l0.detach()[owners["rnn.weight_hh_l0"] >= 0].abs().max() > 0


def test_ensemble_roundtrip_and_errors() -> None:
    members = [_lone("lstm", s) for s in (3, 5)]
    ens = SurrogateEnsemble.from_members(members)
    again = SurrogateEnsemble.from_members([ens.member(0), ens.member(1)])
    for a, b in zip(ens.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ConfigError, match="member 1 is lstm-6"):
        SurrogateEnsemble.from_members([members[0], RecurrentSurrogate("lstm", 3, 2, 6)])
    with pytest.raises(ConfigError, match="at least one member"):
        SurrogateEnsemble.from_members([])
    with pytest.raises(ConfigError, match=r"\[2, batch, time, 3\]"):
        ens(torch.randn(3, 1, 5, 3))
    with pytest.raises(ConfigError, match="member 2 does not exist"):
        ens.member(2)
    with pytest.raises(CheckpointError, match="does not fit a lstm-5"):
        ens.load_member_state_dicts(
            [members[0].state_dict(), _lone("lstm", 1, 3, 2, 4).state_dict()]
        )


def test_model_spec_roundtrip_and_validation() -> None:
    spec = ModelSpec("gru", n_inputs=4, n_outputs=4, hidden=8)
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert count_parameters(spec.build()) == 372
    assert spec.build_ensemble((0, 1)).n_members == 2
    with pytest.raises(ConfigError, match="unknown model"):
        ModelSpec("no-such-family", 4, 4, 8)
    with pytest.raises(ConfigError, match="needs the keys"):
        ModelSpec.from_dict({"name": "gru"})
