"""Several recurrent layers of possibly different sizes and a time-distributed linear read-out.

The deeper relative of :mod:`~neuroreduce.models.rnn` (one layer): e.g. the two-layer LSTM
256-64 of the cortical-neuron blog post (read-out to spike and soma voltage). Each layer is a
single-layer, batch-first ``nn.RNN`` (tanh) / ``nn.LSTM`` / ``nn.GRU``, so layer sizes may
differ; optional dropout acts between layers (training mode only). Free-running and causal:
zero initial states, no look-ahead.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from neuroreduce.errors import ConfigError
from neuroreduce.models.mlp import check_choice, check_input, check_int
from neuroreduce.models.rnn import GATES, recurrent_layer


@dataclass(frozen=True)
class StackedRNNConfig:
    """Hyper-parameters of the stacked recurrent network.

    Attributes:
        hidden: Units of every layer when ``sizes`` is empty.
        layers: Recurrent layers.
        cell: ``"rnn"`` (tanh), ``"lstm"`` or ``"gru"``.
        sizes: Units of each layer, first layer first (e.g. ``(256, 64)``); empty: ``hidden``
            for all ``layers``. When given, its length must equal ``layers``.
        dropout: Dropout probability between recurrent layers, in ``[0, 1)``.
    """

    hidden: int = 64
    layers: int = 2
    cell: str = "lstm"
    sizes: tuple[int, ...] = ()
    dropout: float = 0.0

    def __post_init__(self) -> None:
        check_int("hidden", self.hidden)
        check_int("layers", self.layers)
        check_choice("cell", self.cell, GATES)
        if not isinstance(self.sizes, tuple):
            raise ConfigError(f"sizes must be a tuple of integers, got {self.sizes!r}")
        for size in self.sizes:
            check_int("sizes[i]", size)
        if self.sizes and len(self.sizes) != self.layers:
            raise ConfigError(
                f"sizes {self.sizes} has {len(self.sizes)} entries, layers is {self.layers}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")

    def layer_sizes(self) -> tuple[int, ...]:
        """Units of each recurrent layer, first layer first."""
        return self.sizes or (self.hidden,) * self.layers


class StackedRNN(nn.Module):
    """Recurrent layers one after another, then a linear read-out at every time step.

    Weights use PyTorch's default initialisation (uniform in ``±1/sqrt(units)``), drawn from
    the global torch RNG: seed it first for a reproducible model.

    Args:
        config: Hyper-parameters.
        n_inputs: Input channels.
        n_outputs: Output channels.
    """

    def __init__(self, config: StackedRNNConfig, *, n_inputs: int, n_outputs: int) -> None:
        super().__init__()
        check_int("n_inputs", n_inputs)
        check_int("n_outputs", n_outputs)
        self.config = config
        self.n_inputs = n_inputs
        self.n_outputs = n_outputs
        widths = (n_inputs,) + config.layer_sizes()
        self.rnns = nn.ModuleList(
            recurrent_layer(config.cell, a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.dropout = nn.Dropout(config.dropout)
        self.readout = nn.Linear(widths[-1], n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run all layers from zero states.

        Args:
            x: Inputs ``[batch, time, n_inputs]``.

        Returns:
            Outputs ``[batch, time, n_outputs]``.

        Raises:
            ConfigError: if ``x`` does not have shape ``[batch, time, n_inputs]``.
        """
        check_input(x, self.n_inputs)
        h = x
        for i, rnn in enumerate(self.rnns):
            if i > 0:
                h = self.dropout(h)
            h, _ = rnn(h)
        return self.readout(h)


def parameter_count(config: StackedRNNConfig, *, n_inputs: int, n_outputs: int) -> int:
    """Trainable parameters of :func:`build` (PyTorch keeps two bias vectors per gate):
    ``sum_l gates * h_l * (h_{l-1} + h_l + 2) + h_L * n_outputs + n_outputs``, ``h_0 = n_inputs``,
    gates 1/4/3 for RNN/LSTM/GRU."""
    g = GATES[config.cell]
    widths = (n_inputs,) + config.layer_sizes()
    body = sum(g * b * (a + b + 2) for a, b in zip(widths[:-1], widths[1:], strict=True))
    return body + widths[-1] * n_outputs + n_outputs


def build(config: StackedRNNConfig, *, n_inputs: int, n_outputs: int) -> StackedRNN:
    """Build a freshly initialised stacked recurrent network.

    Raises:
        ConfigError: on a non-positive ``n_inputs`` or ``n_outputs``.
    """
    return StackedRNN(config, n_inputs=n_inputs, n_outputs=n_outputs)


FAMILY = dict(
    name="stacked_rnn",
    description="stacked RNN/LSTM/GRU layers (sizes per layer) + time-distributed linear read-out",
    config=StackedRNNConfig,
    build=build,
)
