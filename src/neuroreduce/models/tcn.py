"""Causal temporal convolutional network (TCN) surrogate.

Beniaguev, Segev & London (2021), "Single cortical neurons as deep artificial neural networks",
Neuron 109(17): 2727-2739, model a layer-5 cortical neuron driven by ~1,300 synapses with a deep
causal TCN: a first layer with a wide temporal kernel over all synaptic inputs, further layers
of small kernels, a nonlinearity after each, and a time-distributed linear read-out (spike
probability and soma voltage). This module keeps that shape with optional exponential
dilation (layer ``i >= 1`` uses dilation ``dilation_base ** (i - 1)``). Batch normalisation,
which the paper also used, is left out: in training mode its batch statistics would let the
output at step ``t`` depend on later inputs.

Causality: every convolution is padded on the left only, by ``(kernel - 1) * dilation`` steps
of zeros, so output ``t`` depends on inputs ``t - R + 1 .. t`` where ``R`` is
:func:`receptive_field`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from neuroreduce.models.mlp import ACTIVATIONS, check_choice, check_input, check_int


@dataclass(frozen=True)
class TCNConfig:
    """Hyper-parameters of the causal TCN.

    Attributes:
        hidden: Channels of every convolutional layer.
        layers: Convolutional layers (the first one included).
        first_kernel: Kernel length of the first layer, in time steps.
        kernel: Kernel length of the later layers, in time steps.
        dilation_base: Layer ``i >= 1`` uses dilation ``dilation_base ** (i - 1)``; ``1``: none.
        activation: Nonlinearity after each layer (see :data:`~neuroreduce.models.mlp.ACTIVATIONS`).
    """

    hidden: int = 64
    layers: int = 4
    first_kernel: int = 35
    kernel: int = 5
    dilation_base: int = 1
    activation: str = "relu"

    def __post_init__(self) -> None:
        check_int("hidden", self.hidden)
        check_int("layers", self.layers)
        check_int("first_kernel", self.first_kernel)
        check_int("kernel", self.kernel)
        check_int("dilation_base", self.dilation_base)
        check_choice("activation", self.activation, ACTIVATIONS)

    def dilations(self) -> tuple[int, ...]:
        """Dilation of each layer, first layer first."""
        return (1,) + tuple(self.dilation_base**i for i in range(self.layers - 1))

    def kernels(self) -> tuple[int, ...]:
        """Kernel length of each layer, first layer first."""
        return (self.first_kernel,) + (self.kernel,) * (self.layers - 1)


def receptive_field(config: TCNConfig) -> int:
    """Input steps that output step ``t`` sees: ``1 + sum((k_i - 1) * d_i)`` over layers."""
    return 1 + sum((k - 1) * d for k, d in zip(config.kernels(), config.dilations(), strict=True))


class CausalConv1d(nn.Conv1d):
    """A 1-D convolution padded with zeros on the left only, so it never looks ahead.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Kernel length, in time steps.
        dilation: Spacing between kernel taps, in time steps.

    Shapes: ``[batch, in_channels, time] -> [batch, out_channels, time]``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, dilation: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation)
        self.left_pad = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return super().forward(F.pad(x, (self.left_pad, 0)))


class TCN(nn.Module):
    """Stack of causal convolutions with a nonlinearity each, then a per-step linear read-out.

    Args:
        config: Hyper-parameters.
        n_inputs: Input channels.
        n_outputs: Output channels.
    """

    def __init__(self, config: TCNConfig, *, n_inputs: int, n_outputs: int) -> None:
        super().__init__()
        check_int("n_inputs", n_inputs)
        check_int("n_outputs", n_outputs)
        self.config = config
        self.n_inputs = n_inputs
        self.n_outputs = n_outputs
        blocks: list[nn.Module] = []
        width = n_inputs
        for k, d in zip(config.kernels(), config.dilations(), strict=True):
            blocks += [CausalConv1d(width, config.hidden, k, dilation=d)]
            blocks += [ACTIVATIONS[config.activation]()]
            width = config.hidden
        self.body = nn.Sequential(*blocks)
        self.readout = nn.Linear(config.hidden, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map inputs to outputs.

        Args:
            x: Inputs ``[batch, time, n_inputs]``.

        Returns:
            Outputs ``[batch, time, n_outputs]``; step ``t`` depends on input steps ``<= t``.

        Raises:
            ConfigError: if ``x`` does not have shape ``[batch, time, n_inputs]``.
        """
        check_input(x, self.n_inputs)
        features = self.body(x.transpose(1, 2)).transpose(1, 2)
        return self.readout(features)


def parameter_count(config: TCNConfig, *, n_inputs: int, n_outputs: int) -> int:
    """Trainable parameters of :func:`build`, with ``C = hidden``:
    ``n_inputs*C*first_kernel + C + (layers-1)*(C*C*kernel + C) + C*n_outputs + n_outputs``."""
    c = config.hidden
    first = n_inputs * c * config.first_kernel + c
    later = (config.layers - 1) * (c * c * config.kernel + c)
    return first + later + c * n_outputs + n_outputs


def build(config: TCNConfig, *, n_inputs: int, n_outputs: int) -> TCN:
    """Build a freshly initialised causal TCN (PyTorch's default initialisation, drawn from the
    global torch RNG: seed it first for a reproducible model).

    Raises:
        ConfigError: on a non-positive ``n_inputs`` or ``n_outputs``.
    """
    return TCN(config, n_inputs=n_inputs, n_outputs=n_outputs)


FAMILY = dict(
    name="tcn",
    description="causal temporal convolutional network (Beniaguev et al. 2021) + linear read-out",
    config=TCNConfig,
    build=build,
)
