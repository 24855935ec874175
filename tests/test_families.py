"""The surrogate families as pure modules: shapes, causality, parameter counts, init, training.

Every family is checked against the same feature matrix (brian2 style); a deliberately
non-causal control (a centred convolution) proves the causality check can fail.
"""

from __future__ import annotations

import dataclasses
import math
from types import ModuleType

import pytest
import torch
from torch import nn

from neuroreduce.errors import ConfigError
from neuroreduce.models import elm, mlp, plrnn, stacked_rnn, tcn
from neuroreduce.models.registry import Family
from neuroreduce.models.rnn import count_parameters

N_IN, N_OUT = 4, 2

#: (family module, small config, loss drop factor required after 50 Adam steps on the low-pass
#: task; about half of what was measured: tcn 24, mlp 52/9, elm 30/6, rnn stacks 12-16,
#: plrnn 177/9)
CASES: dict[str, tuple[ModuleType, object, float]] = {
    "tcn": (tcn, tcn.TCNConfig(hidden=8, layers=3, first_kernel=5, kernel=3, dilation_base=2), 10),
    "mlp": (mlp, mlp.MLPConfig(hidden=16, layers=2, window=8), 20),
    "mlp_linear": (mlp, mlp.MLPConfig(layers=0, window=3, activation="tanh"), 4),
    "elm": (elm, elm.ELMConfig(hidden=6, tau_min_ms=1.0, tau_max_ms=20.0, learn_tau=True), 10),
    "elm_branch": (
        elm,
        elm.ELMConfig(hidden=4, mlp_layers=2, branches=2, synapses_per_branch=3, interleave=True),
        3,
    ),
    "lstm_stack": (stacked_rnn, stacked_rnn.StackedRNNConfig(cell="lstm", sizes=(12, 6)), 5),
    "gru_stack": (stacked_rnn, stacked_rnn.StackedRNNConfig(hidden=8, layers=3, cell="gru"), 5),
    "rnn_stack": (stacked_rnn, stacked_rnn.StackedRNNConfig(hidden=8, cell="rnn"), 5),
    "plrnn": (plrnn, plrnn.PLRNNConfig(hidden=8, bases=3), 20),
    "plrnn_identity": (plrnn, plrnn.PLRNNConfig(hidden=6, bases=0, observation="identity"), 4),
}
NAMES = list(CASES)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one intra-op thread is several times faster than two on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _build(name: str, seed: int = 0) -> nn.Module:
    family, config, _ = CASES[name]
    torch.manual_seed(seed)
    return family.build(config, n_inputs=N_IN, n_outputs=N_OUT)


def _lowpass_task(batch: int = 8, steps: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs N(0, 1); output 0 = first-order low-pass of input 0 (pole 0.8), output 1 = of
    input 1 minus input 2 (pole 0.6)."""
    gen = torch.Generator().manual_seed(123)
    x = torch.randn(batch, steps, N_IN, generator=gen)
    drive = torch.stack([x[..., 0], x[..., 1] - x[..., 2]], dim=-1)
    pole = torch.tensor([0.8, 0.6])
    y = torch.zeros(batch, steps, N_OUT)
    state = torch.zeros(batch, N_OUT)
    for t in range(steps):
        state = pole * state + (1 - pole) * drive[:, t]
        y[:, t] = state
    return x, y / y.std()


def _outputs_agree_before(model: nn.Module, x: torch.Tensor, t: int) -> tuple[bool, bool]:
    """Perturb inputs after step ``t``: (outputs up to ``t`` bit-identical, later ones moved)."""
    late = x.clone()
    late[:, t + 1 :] += torch.randn_like(late[:, t + 1 :])
    with torch.no_grad():
        a, b = model(x), model(late)
    return torch.equal(a[:, : t + 1], b[:, : t + 1]), not torch.equal(a[:, t + 1 :], b[:, t + 1 :])


class _CentredConv(nn.Module):
    """Non-causal control: a convolution centred on the current step (looks 2 steps ahead)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(N_IN, N_OUT, 5, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.transpose(1, 2)).transpose(1, 2)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_dtype(name: str) -> None:
    y = _build(name)(torch.randn(3, 17, N_IN))
    assert y.shape == (3, 17, N_OUT) and y.dtype == torch.float32


@pytest.mark.parametrize("name", NAMES)
def test_wrong_input_shape_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError, match=r"\[batch, time, 4\]"):
        _build(name)(torch.randn(3, 17, N_IN + 1))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("t", [0, 9, 18])
def test_causal(name: str, t: int) -> None:
    unchanged, moved = _outputs_agree_before(_build(name), torch.randn(2, 20, N_IN), t)
    assert unchanged and moved


def test_centred_convolution_fails_the_causality_check() -> None:
    torch.manual_seed(0)
    unchanged, moved = _outputs_agree_before(_CentredConv(), torch.randn(2, 20, N_IN), 9)
    assert not unchanged and moved


def test_tcn_sees_exactly_its_receptive_field() -> None:
    config = tcn.TCNConfig(hidden=4, layers=3, first_kernel=4, kernel=3, dilation_base=2)
    assert tcn.receptive_field(config) == 1 + 3 + 2 * 1 + 2 * 2
    torch.manual_seed(0)
    model = tcn.build(config, n_inputs=N_IN, n_outputs=N_OUT)
    x = torch.randn(1, 30, N_IN)
    t, r = 25, tcn.receptive_field(config)
    with torch.no_grad():
        base = model(x)[0, t]
        for step, seen in ((t - r + 1, True), (t - r, False)):
            poked = x.clone()
            poked[0, step] += 10.0
            assert torch.equal(model(poked)[0, t], base) is not seen


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_matches_formula(name: str) -> None:
    family, config, _ = CASES[name]
    expected = family.parameter_count(config, n_inputs=N_IN, n_outputs=N_OUT)
    assert count_parameters(_build(name)) == expected


def test_parameter_counts_by_hand() -> None:
    # TCN: 4*8*5+8 + 2*(8*8*3+8) + 8*2+2
    assert tcn.parameter_count(CASES["tcn"][1], n_inputs=4, n_outputs=2) == 168 + 400 + 18
    # MLP window 8: 32*16+16 + 16*16+16 + 16*2+2
    assert mlp.parameter_count(CASES["mlp"][1], n_inputs=4, n_outputs=2) == 528 + 272 + 34
    # LSTM 256-64 on NeuronIO (the blog's ~1.66M): 4*256*(1278+256+2) + 4*64*(256+64+2) + 130
    blog = stacked_rnn.StackedRNNConfig(cell="lstm", sizes=(256, 64))
    assert stacked_rnn.parameter_count(blog, n_inputs=1278, n_outputs=2) == 1_655_426
    # PLRNN M=8, B=3: 8 + 64 + 32 + 8 + 3 + 24 + 16
    assert plrnn.parameter_count(CASES["plrnn"][1], n_inputs=4, n_outputs=2) == 155


@pytest.mark.parametrize(
    ("memory", "published"),
    [(1, 4601), (10, 5852), (15, 6827), (20, 8002), (50, 19252), (100, 54002)],
)
def test_branch_elm_counts_equal_the_published_neuronio_models(memory: int, published: int):
    # Spieler et al.'s NeuronIO Branch-ELMs: 45 branches x 100 synapses, MLP 1 x 2*d_m, fixed tau
    config = elm.ELMConfig(
        hidden=memory, tau_max_ms=150.0, branches=45, synapses_per_branch=100, interleave=True
    )
    model = elm.build(config, n_inputs=1278, n_outputs=2)
    assert count_parameters(model) == published
    assert elm.parameter_count(config, n_inputs=1278, n_outputs=2) == published


def test_branch_routing_interleaves_and_overlaps() -> None:
    config = elm.ELMConfig(branches=2, synapses_per_branch=4, interleave=True)
    index, valid = elm.synapse_routing(config, 6)  # order 0,3,1,4,2,5; stride 3
    assert index.tolist() == [0, 3, 1, 4, 4, 2, 5, 5]
    assert valid.tolist() == [True] * 7 + [False]


@pytest.mark.parametrize("name", NAMES)
def test_init_is_deterministic_under_manual_seed(name: str) -> None:
    a, b, c = _build(name, 7).state_dict(), _build(name, 7).state_dict(), _build(name, 8)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], v) for k, v in c.state_dict().items())


@pytest.mark.parametrize("name", NAMES)
def test_learns_a_low_pass_filter(name: str) -> None:
    x, y = _lowpass_task()
    model, factor = _build(name), CASES[name][2]
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(50):
        optimiser.zero_grad()
        loss = torch.mean((model(x) - y) ** 2)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / factor, losses[::10]


def test_plrnn_step_matches_forward() -> None:
    model = _build("plrnn")
    x = torch.randn(3, 12, N_IN)
    with torch.no_grad():
        z, ys = model.init(3), []
        for t in range(12):
            z, y = model.step(z, x[:, t])
            ys.append(y)
        torch.testing.assert_close(torch.stack(ys, dim=1), model(x))


@pytest.mark.parametrize("name", ["plrnn", "plrnn_identity"])
def test_plrnn_forcing_never_uses_the_current_target(name: str) -> None:
    model = _build(name)
    x, y = torch.randn(2, 20, N_IN), torch.randn(2, 20, N_OUT)
    with torch.no_grad():
        free, forced = model(x), model(x, forcing=(y, 5))
        assert torch.equal(free[:, :1], forced[:, :1])  # step 0 predicted before forcing
        assert not torch.equal(free[:, 1:], forced[:, 1:])
        late = y.clone()
        late[:, 9:] += 1.0
        again = model(x, forcing=(late, 5))
    assert torch.equal(again[:, :10], forced[:, :10])  # target 9 is not used before step 10


def test_plrnn_forcing_with_its_own_predictions_changes_nothing() -> None:
    for config in (
        plrnn.PLRNNConfig(hidden=N_OUT, bases=2),  # invertible B_obs: B^+ B z = z
        plrnn.PLRNNConfig(hidden=5, observation="identity"),
    ):
        torch.manual_seed(0)
        model = plrnn.build(config, n_inputs=N_IN, n_outputs=N_OUT)
        x = torch.randn(2, 15, N_IN)
        with torch.no_grad():
            free = model(x)
            torch.testing.assert_close(model(x, forcing=(free, 3)), free, rtol=1e-4, atol=1e-5)


def test_plrnn_sparse_teacher_forcing_trains() -> None:
    x, y = _lowpass_task()
    model = _build("plrnn")
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        optimiser.zero_grad()
        loss = torch.mean((model(x, forcing=(y, 8)) - y) ** 2)
        loss.backward()
        optimiser.step()
        first = loss.item() if first is None else first
    assert loss.item() < first / 3


def test_family_records_can_be_registered() -> None:
    for family in (tcn, mlp, elm, stacked_rnn, plrnn):
        record = family.FAMILY
        assert {"name", "description", "config", "build"} <= set(record)
        assert set(record) <= {f.name for f in dataclasses.fields(Family)}
        model = record["build"](record["config"](), n_inputs=N_IN, n_outputs=N_OUT)
        assert record["config"]().hidden >= 1 and count_parameters(model) > 0


@pytest.mark.parametrize(
    "make",
    [
        lambda: tcn.TCNConfig(hidden=0),
        lambda: tcn.TCNConfig(kernel=0),
        lambda: tcn.TCNConfig(activation="sigmoidish"),
        lambda: tcn.TCNConfig(layers=True),
        lambda: mlp.MLPConfig(window=0),
        lambda: mlp.MLPConfig(layers=-1),
        lambda: elm.ELMConfig(hidden=0),
        lambda: elm.ELMConfig(tau_min_ms=10.0, tau_max_ms=5.0),
        lambda: elm.ELMConfig(dt_ms=0.0),
        lambda: elm.ELMConfig(mlp_hidden=0),
        lambda: elm.ELMConfig(synapses_per_branch=3),  # needs branches
        lambda: stacked_rnn.StackedRNNConfig(cell="transformer"),
        lambda: stacked_rnn.StackedRNNConfig(sizes=(8, 0)),
        lambda: stacked_rnn.StackedRNNConfig(layers=3, sizes=(8, 4)),
        lambda: stacked_rnn.StackedRNNConfig(dropout=1.0),
        lambda: plrnn.PLRNNConfig(bases=-1),
        lambda: plrnn.PLRNNConfig(observation="poisson"),
        lambda: plrnn.PLRNNConfig(a_init=(0.5, 1.2)),
        lambda: elm.build(
            elm.ELMConfig(branches=2, synapses_per_branch=2), n_inputs=6, n_outputs=1
        ),
        lambda: elm.build(
            elm.ELMConfig(branches=1, synapses_per_branch=5, interleave=True),
            n_inputs=5,
            n_outputs=1,
        ),
        lambda: plrnn.build(
            plrnn.PLRNNConfig(hidden=1, observation="identity"), n_inputs=2, n_outputs=2
        ),
        lambda: tcn.build(tcn.TCNConfig(), n_inputs=0, n_outputs=1),
        lambda: _build("plrnn")(torch.randn(1, 5, N_IN), forcing=(torch.randn(1, 4, N_OUT), 2)),
        lambda: _build("plrnn")(torch.randn(1, 5, N_IN), forcing=(torch.randn(1, 5, N_OUT), 0)),
    ],
)
def test_bad_configs_raise_config_error(make) -> None:
    with pytest.raises(ConfigError):
        make()


def test_plain_elm_weights_inputs_elementwise_as_the_branch_matrix_does() -> None:
    """Plain ELM (one branch per input) skips the diagonal branch matmul: same numbers."""
    torch.manual_seed(0)
    model = elm.build(elm.ELMConfig(hidden=4), n_inputs=50, n_outputs=2)
    with torch.no_grad():
        model.synapse_weight.uniform_(-0.5, 1.0)  # some synapses clipped to 0 by the ReLU
    x = (torch.rand(3, 40, 50) < 0.1).float()
    fast = x * (torch.relu(model.synapse_weight) * model.synapse_valid)
    assert torch.equal(fast, x @ model.branch_matrix())
    out = model(x)
    out.sum().backward()
    assert out.shape == (3, 40, 2) and model.synapse_weight.grad.abs().sum() > 0


def _elm_step_by_step(model: elm.ELM, x: torch.Tensor) -> torch.Tensor:
    """The ELM equations written per step with plain indexing (the reference of forward)."""
    cfg = model.config
    kappa_s = math.exp(-cfg.dt_ms / cfg.tau_syn_ms)
    kappa_m = torch.exp(-cfg.dt_ms / model.tau_m())
    drive = x @ model.branch_matrix()
    b = x.new_zeros(x.shape[0], model.n_branches)
    m = x.new_zeros(x.shape[0], cfg.hidden)
    outs = []
    for t in range(x.shape[1]):
        b = kappa_s * b + drive[:, t]
        delta = 1.7159 * torch.tanh(model.mlp(torch.cat([b, kappa_m * m], dim=1)) * (2 / 3))
        m = kappa_m * m + cfg.update_scale * (1 - kappa_m) * delta
        outs.append(model.readout(m))
    return torch.stack(outs, dim=1)


@pytest.mark.parametrize("config", [elm.ELMConfig(hidden=3),
                                    elm.ELMConfig(hidden=3, branches=4, synapses_per_branch=5)])
def test_elm_forward_and_gradients_match_the_step_by_step_equations(config) -> None:
    torch.manual_seed(1)
    model = elm.build(config, n_inputs=16, n_outputs=2)
    x = (torch.rand(2, 30, 16) < 0.2).float()
    fast = model(x)
    (g_fast,) = torch.autograd.grad(fast.square().sum(), [model.synapse_weight])
    ref = _elm_step_by_step(model, x)
    (g_ref,) = torch.autograd.grad(ref.square().sum(), [model.synapse_weight])
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g_fast, g_ref, rtol=1e-4, atol=1e-6)
    # control: a wrong time constant of the synaptic trace is caught
    wrong = elm.build(dataclasses.replace(config, tau_syn_ms=config.tau_syn_ms * 2),
                      n_inputs=16, n_outputs=2)
    wrong.load_state_dict(model.state_dict())
    assert not torch.allclose(wrong(x), ref, atol=1e-4)
