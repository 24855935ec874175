"""Expressive Leaky Memory (ELM) neuron and its Branch-ELM input reduction.

Spieler, Rahaman, Martius, Schölkopf & Levina (2023), "The ELM neuron: an efficient and
expressive cortical neuron model can solve long-horizon tasks", ICLR 2024 (arXiv:2306.16922).
Per time step ``t`` (step ``dt``), with ``x_t`` the inputs:

- synapse traces ``s_t = kappa_s * s_{t-1} + w_s ⊙ x_t``, ``kappa_s = exp(-dt / tau_s)``,
  non-negative weights ``w_s = relu(w)``;
- branch inputs ``b_t``: each branch sums the traces of its synapses (plain ELM: one synapse
  per input and per branch, so ``b_t = s_t``);
- synaptic integration ``delta_m_t = g(MLP([b_t, kappa_m ⊙ m_{t-1}]))`` with the ReLU MLP and
  ``g(u) = 1.7159 tanh(2u/3)`` (LeCun's scaled tanh, as the paper's code);
- memory ``m_t = kappa_m ⊙ m_{t-1} + lambda (1 - kappa_m) ⊙ delta_m_t``,
  ``kappa_m = exp(-dt / tau_m)``, with per-unit ``tau_m`` log-spaced over
  ``[tau_min, tau_max]`` at initialisation, kept in that range by a scaled sigmoid when learnt,
  and the scale ``lambda`` (``update_scale``, 5 in the paper);
- output ``y_t = W_y m_t + b_y``.

Branch-ELM (same paper) routes the inputs to ``branches`` branches of ``synapses_per_branch``
synapses: branch ``i`` reads inputs ``i*stride .. i*stride + synapses_per_branch - 1`` with
``stride = ceil(n_inputs / branches)`` (windows may overlap; synapses past the last input read
zero but keep their weight, as in the published models), optionally after interleaving the two
halves of the inputs (NeuronIO: 639 excitatory then 639 inhibitory, so each branch gets both).
All synapses share ``tau_s``, so a branch's summed trace equals the trace of its summed weighted
inputs; the model filters the ``branches`` sums instead of every synapse (same equations).

Causal by construction: state only flows forward in time from a zero start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from neuroreduce.errors import ConfigError
from neuroreduce.models.mlp import check_input, check_int, feedforward, feedforward_parameters

_EPS = 1e-6


@dataclass(frozen=True)
class ELMConfig:
    """Hyper-parameters of the ELM neuron.

    Attributes:
        hidden: Memory units ``d_m`` (the paper's ``num_memory``).
        mlp_hidden: Units per hidden layer of the integration MLP; ``None``: ``2 * hidden``.
        mlp_layers: Hidden layers of the integration MLP (0: a linear map).
        tau_min_ms: Smallest memory time constant at initialisation and when learnt, ms.
        tau_max_ms: Largest memory time constant, ms.
        dt_ms: Time step of the data, ms.
        learn_tau: Learn the memory time constants (else fixed, not counted as parameters).
        tau_syn_ms: Synaptic trace time constant ``tau_s``, ms (fixed).
        w_syn_init: Initial synaptic weight (all synapses).
        update_scale: ``lambda``, the scale of the memory update.
        branches: Branch-ELM branches; ``None``: plain ELM (one branch per input).
        synapses_per_branch: Synapses per branch (Branch-ELM only); must cover the inputs:
            ``synapses_per_branch >= ceil(n_inputs / branches)``.
        interleave: Interleave the first and second halves of the inputs before routing them
            to branches (Branch-ELM only; needs an even number of inputs).
    """

    hidden: int = 20
    mlp_hidden: int | None = None
    mlp_layers: int = 1
    tau_min_ms: float = 1.0
    tau_max_ms: float = 1000.0
    dt_ms: float = 1.0
    learn_tau: bool = False
    tau_syn_ms: float = 5.0
    w_syn_init: float = 0.5
    update_scale: float = 5.0
    branches: int | None = None
    synapses_per_branch: int = 1
    interleave: bool = False

    def __post_init__(self) -> None:
        check_int("hidden", self.hidden)
        if self.mlp_hidden is not None:
            check_int("mlp_hidden", self.mlp_hidden)
        check_int("mlp_layers", self.mlp_layers, minimum=0)
        for name in ("tau_min_ms", "dt_ms", "tau_syn_ms", "update_scale"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value > 0 or math.isinf(value):
                raise ConfigError(f"{name} must be a positive number, got {value!r}")
        if not isinstance(self.tau_max_ms, int | float) or not self.tau_max_ms > self.tau_min_ms:
            raise ConfigError(f"tau_max_ms must exceed tau_min_ms; got {self.tau_max_ms!r}")
        if not isinstance(self.w_syn_init, int | float) or not self.w_syn_init >= 0:
            raise ConfigError(f"w_syn_init must be a number >= 0, got {self.w_syn_init!r}")
        if self.branches is not None:
            check_int("branches", self.branches)
        check_int("synapses_per_branch", self.synapses_per_branch)
        if self.branches is None and (self.synapses_per_branch != 1 or self.interleave):
            raise ConfigError("synapses_per_branch and interleave need branches (Branch-ELM)")

    @property
    def memory_units(self) -> int:
        """Memory units ``d_m`` (an alias of ``hidden``)."""
        return self.hidden

    def mlp_width(self) -> int:
        """Units per hidden layer of the integration MLP (``2 * hidden`` unless set)."""
        return 2 * self.hidden if self.mlp_hidden is None else self.mlp_hidden


def synapse_routing(config: ELMConfig, n_inputs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Which input each synapse reads, and whether it reads one at all.

    Args:
        config: Hyper-parameters.
        n_inputs: Input channels.

    Returns:
        ``index`` (int64) and ``valid`` (bool), each ``[n_synapses]``, synapses ordered branch
        by branch; plain ELM: ``index = arange(n_inputs)``, all valid.

    Raises:
        ConfigError: if the branches do not cover every input, or ``interleave`` is set with
            an odd number of inputs.
    """
    if config.branches is None:
        return torch.arange(n_inputs), torch.ones(n_inputs, dtype=torch.bool)
    stride = math.ceil(n_inputs / config.branches)
    if stride > config.synapses_per_branch:
        raise ConfigError(
            f"{config.branches} branches x {config.synapses_per_branch} synapses leave inputs "
            f"unread; synapses_per_branch must be >= ceil({n_inputs}/{config.branches}) = {stride}"
        )
    order = torch.arange(n_inputs)
    if config.interleave:
        if n_inputs % 2:
            raise ConfigError(f"interleave needs an even number of inputs, got {n_inputs}")
        half = n_inputs // 2
        order = torch.stack([order[:half], order[half:]], dim=1).flatten()
    slot = (
        torch.arange(config.branches)[:, None] * stride
        + torch.arange(config.synapses_per_branch)[None, :]
    ).flatten()
    valid = slot < n_inputs
    return order[slot.clamp(max=n_inputs - 1)], valid


def _lecun_tanh(u: torch.Tensor) -> torch.Tensor:
    return 1.7159 * torch.tanh(u * (2.0 / 3.0))


class ELM(nn.Module):
    """The (Branch-)ELM neuron: leaky memory units updated by an MLP, linear read-out.

    The MLP and read-out use PyTorch's default initialisation, drawn from the global torch RNG
    (seed it first for a reproducible model); synaptic weights start at ``w_syn_init`` and the
    memory time constants log-spaced over ``[tau_min_ms, tau_max_ms]``.

    Args:
        config: Hyper-parameters.
        n_inputs: Input channels (synaptic inputs).
        n_outputs: Output channels.

    Raises:
        ConfigError: on non-positive sizes or a Branch-ELM routing that does not fit the inputs.
    """

    def __init__(self, config: ELMConfig, *, n_inputs: int, n_outputs: int) -> None:
        super().__init__()
        check_int("n_inputs", n_inputs)
        check_int("n_outputs", n_outputs)
        self.config = config
        self.n_inputs = n_inputs
        self.n_outputs = n_outputs
        index, valid = synapse_routing(config, n_inputs)
        self.n_branches = config.branches or n_inputs
        self.register_buffer("synapse_index", index, persistent=False)
        self.register_buffer("synapse_valid", valid.float(), persistent=False)
        self.synapse_weight = nn.Parameter(torch.full((index.numel(),), float(config.w_syn_init)))
        m = config.hidden
        self.mlp = feedforward(self.n_branches + m, config.mlp_width(), config.mlp_layers, m)
        self.readout = nn.Linear(m, n_outputs)
        tau0 = torch.logspace(
            math.log10(config.tau_min_ms), math.log10(config.tau_max_ms), m, dtype=torch.float64
        )
        p = ((tau0 - config.tau_min_ms) / (config.tau_max_ms - config.tau_min_ms)).clamp(
            _EPS, 1 - _EPS
        )
        logit = torch.log(p / (1 - p)).float()
        if config.learn_tau:
            self.tau_logit = nn.Parameter(logit)
        else:
            self.register_buffer("tau_logit", logit)

    def tau_m(self) -> torch.Tensor:
        """Memory time constants ``[hidden]``, ms, within ``[tau_min_ms, tau_max_ms]``."""
        lo, hi = self.config.tau_min_ms, self.config.tau_max_ms
        return lo + (hi - lo) * torch.sigmoid(self.tau_logit)

    def branch_matrix(self) -> torch.Tensor:
        """Weights from inputs to branches ``[n_inputs, n_branches]`` (``relu(w_s)`` summed)."""
        w = torch.relu(self.synapse_weight) * self.synapse_valid
        branch = torch.arange(w.numel(), device=w.device) // self.config.synapses_per_branch
        flat = self.synapse_index * self.n_branches + branch
        out = w.new_zeros(self.n_inputs * self.n_branches).index_add(0, flat, w)
        return out.view(self.n_inputs, self.n_branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the neuron from zero synaptic and memory state.

        Args:
            x: Inputs ``[batch, time, n_inputs]`` (one step is ``dt_ms``).

        Returns:
            Outputs ``[batch, time, n_outputs]``.

        Raises:
            ConfigError: if ``x`` does not have shape ``[batch, time, n_inputs]``.
        """
        check_input(x, self.n_inputs)
        cfg = self.config
        kappa_s = math.exp(-cfg.dt_ms / cfg.tau_syn_ms)
        kappa_m = torch.exp(-cfg.dt_ms / self.tau_m())
        gain = cfg.update_scale * (1.0 - kappa_m)
        if cfg.branches is None:  # one branch per input: the branch matrix is diagonal, so
            # weight the inputs elementwise (the same numbers as ``x @ branch_matrix()``
            # without its n_inputs^2 work: 1,278 inputs made that 1.6 M multiply-adds a step)
            drive = x * (torch.relu(self.synapse_weight) * self.synapse_valid)
        else:
            drive = x @ self.branch_matrix()  # [batch, time, branches]: weighted branch inputs
        first, rest = self.mlp[0], self.mlp[1:]
        w_b, w_m = first.weight[:, : self.n_branches], first.weight[:, self.n_branches :]
        b = drive.new_zeros(x.shape[0], self.n_branches)
        traces = []
        # unbind once: indexing drive[:, t] in the loop makes autograd build a full-size
        # gradient per step (O(time^2 x branches) work in backward; 23 s a step for 1,278
        # branches x 1,000 steps), unbind's backward stacks the step gradients once
        for step in drive.unbind(1):
            b = kappa_s * b + step
            traces.append(b)
        # the MLP's first layer on the branch traces, for all steps at once
        pre = torch.stack(traces, dim=1) @ w_b.T + first.bias
        m = x.new_zeros(x.shape[0], cfg.hidden)
        memory = []
        for pre_t in pre.unbind(1):
            decayed = kappa_m * m
            delta = _lecun_tanh(rest(pre_t + decayed @ w_m.T))
            m = decayed + gain * delta
            memory.append(m)
        return self.readout(torch.stack(memory, dim=1))


def parameter_count(config: ELMConfig, *, n_inputs: int, n_outputs: int) -> int:
    """Trainable parameters of :func:`build`, with ``m = hidden``, ``h = mlp_width()``,
    ``B = branches or n_inputs``, ``S = B * synapses_per_branch``:
    ``S + feedforward_parameters(B + m, h, mlp_layers, m) + m*n_outputs + n_outputs``
    ``(+ m if learn_tau)``; e.g. one hidden layer: ``S + (B+m)*h + h + h*m + m + m*n_out + n_out``.
    """
    m = config.hidden
    n_branches = config.branches or n_inputs
    synapses = n_branches * (config.synapses_per_branch if config.branches else 1)
    mlp = feedforward_parameters(n_branches + m, config.mlp_width(), config.mlp_layers, m)
    return synapses + mlp + m * n_outputs + n_outputs + (m if config.learn_tau else 0)


def build(config: ELMConfig, *, n_inputs: int, n_outputs: int) -> ELM:
    """Build a freshly initialised (Branch-)ELM neuron.

    Raises:
        ConfigError: on non-positive sizes or a Branch-ELM routing that does not fit the inputs.
    """
    return ELM(config, n_inputs=n_inputs, n_outputs=n_outputs)


FAMILY = dict(
    name="elm",
    description="Expressive Leaky Memory neuron (Spieler et al. 2023), optional Branch-ELM routing",
    config=ELMConfig,
    build=build,
    size_name="memory_units",
)
