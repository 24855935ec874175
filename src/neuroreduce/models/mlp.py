"""Feed-forward surrogate over a causal window of the last ``window`` time steps.

At every step ``t`` the model sees the inputs of steps ``t - window + 1 .. t`` (zeros before the
start of the trial), flattens them and maps them through a multilayer perceptron to the outputs
of step ``t``: a time-distributed MLP, the per-step baseline of the whole-brain decoding study
(window of 8 frames). It has no state, so it is causal by construction.

This module also holds the small checks and the feed-forward stack the other family modules
(:mod:`~neuroreduce.models.tcn`, :mod:`~neuroreduce.models.elm`, ...) share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from neuroreduce.errors import ConfigError

#: Element-wise nonlinearities the families accept by name.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "silu": nn.SiLU,
}


def check_int(name: str, value: object, *, minimum: int = 1) -> None:
    """Raise :class:`ConfigError` unless ``value`` is an ``int`` (not ``bool``) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_positive(name: str, value: object) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a finite number > 0 (not ``bool``)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
        math.isfinite(value) and value > 0
    ):
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")


def positive_times(name: str, value: object) -> tuple[float, ...]:
    """``value`` (one number or a list) as a tuple of floats, each finite and > 0.

    Raises:
        ConfigError: naming ``name`` otherwise.
    """
    items = (value,) if isinstance(value, int | float) and not isinstance(value, bool) else value
    if not isinstance(items, list | tuple) or not all(
        isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t) and t > 0
        for t in items
    ):
        raise ConfigError(f"{name} must be a list of finite numbers > 0, got {value!r}")
    return tuple(float(t) for t in items)


def check_choice(name: str, value: object, choices: tuple[str, ...] | dict[str, object]) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``choices``, listing them."""
    if value not in choices:
        raise ConfigError(f"unknown {name} {value!r}; known: {', '.join(choices)}")


def check_input(x: torch.Tensor, n_inputs: int) -> None:
    """Raise :class:`ConfigError` unless ``x`` has shape ``[batch, time, n_inputs]``."""
    if x.ndim != 3 or x.shape[2] != n_inputs:
        raise ConfigError(
            f"model input must have shape [batch, time, {n_inputs}]; got {tuple(x.shape)}"
        )


def feedforward(
    n_in: int, hidden: int, layers: int, n_out: int, *, activation: str = "relu"
) -> nn.Sequential:
    """``layers`` hidden ``Linear + activation`` blocks of width ``hidden``, then ``Linear``.

    With ``layers == 0`` it is one linear map ``n_in -> n_out``. Parameters:
    ``n_in*h + h + (layers-1)*(h*h + h) + h*n_out + n_out`` (``n_in*n_out + n_out`` if 0 layers).
    """
    check_choice("activation", activation, ACTIVATIONS)
    blocks: list[nn.Module] = []
    width = n_in
    for _ in range(layers):
        blocks += [nn.Linear(width, hidden), ACTIVATIONS[activation]()]
        width = hidden
    blocks.append(nn.Linear(width, n_out))
    return nn.Sequential(*blocks)


def feedforward_parameters(n_in: int, hidden: int, layers: int, n_out: int) -> int:
    """Closed-form parameter count of :func:`feedforward`."""
    if layers == 0:
        return n_in * n_out + n_out
    return (
        n_in * hidden + hidden + (layers - 1) * (hidden * hidden + hidden) + hidden * n_out + n_out
    )


@dataclass(frozen=True)
class MLPConfig:
    """Hyper-parameters of the windowed MLP.

    Attributes:
        hidden: Units per hidden layer.
        layers: Hidden layers (0: a linear map of the window, an ARX-like model).
        window: Time steps seen at each step, the current one included (``1``: no history).
        activation: Nonlinearity of the hidden layers (see :data:`ACTIVATIONS`).
    """

    hidden: int = 64
    layers: int = 2
    window: int = 8
    activation: str = "relu"

    def __post_init__(self) -> None:
        check_int("hidden", self.hidden)
        check_int("layers", self.layers, minimum=0)
        check_int("window", self.window)
        check_choice("activation", self.activation, ACTIVATIONS)


class WindowMLP(nn.Module):
    """A time-distributed MLP applied to the flattened last ``window`` input steps.

    Args:
        config: Hyper-parameters.
        n_inputs: Input channels.
        n_outputs: Output channels.
    """

    def __init__(self, config: MLPConfig, *, n_inputs: int, n_outputs: int) -> None:
        super().__init__()
        check_int("n_inputs", n_inputs)
        check_int("n_outputs", n_outputs)
        self.config = config
        self.n_inputs = n_inputs
        self.n_outputs = n_outputs
        self.net = feedforward(
            config.window * n_inputs,
            config.hidden,
            config.layers,
            n_outputs,
            activation=config.activation,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map inputs to outputs step by step.

        Args:
            x: Inputs ``[batch, time, n_inputs]``.

        Returns:
            Outputs ``[batch, time, n_outputs]``; step ``t`` depends on input steps
            ``max(0, t - window + 1) .. t`` only.

        Raises:
            ConfigError: if ``x`` does not have shape ``[batch, time, n_inputs]``.
        """
        check_input(x, self.n_inputs)
        w = self.config.window
        padded = F.pad(x, (0, 0, w - 1, 0))  # zeros before the first step
        # [batch, time, n_inputs, window] -> [batch, time, window * n_inputs], oldest step first
        frames = padded.unfold(1, w, 1).transpose(2, 3).reshape(x.shape[0], x.shape[1], -1)
        return self.net(frames)


def parameter_count(config: MLPConfig, *, n_inputs: int, n_outputs: int) -> int:
    """Trainable parameters of :func:`build`:
    ``feedforward_parameters(window * n_inputs, hidden, layers, n_outputs)``."""
    return feedforward_parameters(config.window * n_inputs, config.hidden, config.layers, n_outputs)


def build(config: MLPConfig, *, n_inputs: int, n_outputs: int) -> WindowMLP:
    """Build a freshly initialised windowed MLP (PyTorch's default initialisation, drawn from
    the global torch RNG: seed it first for a reproducible model).

    Raises:
        ConfigError: on a non-positive ``n_inputs`` or ``n_outputs``.
    """
    return WindowMLP(config, n_inputs=n_inputs, n_outputs=n_outputs)


FAMILY = dict(
    name="mlp",
    description="time-distributed MLP over a causal window of the last `window` input steps",
    config=MLPConfig,
    build=build,
)
