"""Deployable surrogates: one trained model with its normalisation baked in (physical units).

A :class:`RecurrentSurrogate` works on z-scored data. A deployed surrogate wraps one such model
with the per-channel means and standard deviations of its training data as buffers, so it takes
input currents in the training input units (nA) and returns voltages in the output units (mV).
It is TorchScript-compatible (``torch.jit.script``) and has the same stateful step API as the
model, for running the surrogate inside another simulator's time loop::

    state = surrogate.init(batch)
    for t in range(n_steps):                 # one step per dt of the training data
        y, state = surrogate.step(x[:, t], state)

Build one from a trained run with :func:`neuroreduce.export.deployable`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from neuroreduce.errors import ConfigError
from neuroreduce.models.rnn import RecurrentSurrogate


class DeployedSurrogate(nn.Module):
    """Common part of deployed surrogates: the model's layers and the normalisation buffers.

    Args:
        model: The trained model (its layers are copied).
        input_mean: Mean of each input channel (input units, e.g. nA), length ``n_inputs``.
        input_std: Standard deviation of each input channel (> 0).
        output_mean: Mean of each output channel (output units, e.g. mV), length ``n_outputs``.
        output_std: Standard deviation of each output channel (> 0).

    Raises:
        ConfigError: if the statistics do not match the model's channel counts.
    """

    def __init__(
        self,
        model: RecurrentSurrogate,
        *,
        input_mean: Sequence[float],
        input_std: Sequence[float],
        output_mean: Sequence[float],
        output_std: Sequence[float],
    ) -> None:
        super().__init__()
        if not (len(input_mean) == len(input_std) == model.n_inputs) or not (
            len(output_mean) == len(output_std) == model.n_outputs
        ):
            raise ConfigError(
                f"normalisation has {len(input_mean)} inputs / {len(output_mean)} outputs; the "
                f"model has {model.n_inputs} / {model.n_outputs}"
            )
        self.n_inputs = model.n_inputs
        self.n_outputs = model.n_outputs
        self.hidden = model.hidden
        self.cell = model.cell
        src = model.state_dict()
        self.rnn = type(model.rnn)(model.n_inputs, model.hidden, num_layers=1, batch_first=True)
        self.readout = nn.Linear(model.hidden, model.n_outputs)
        self.load_state_dict(src)
        dtype = model.readout.weight.dtype
        for name, values in (
            ("input_mean", input_mean),
            ("input_std", input_std),
            ("output_mean", output_mean),
            ("output_std", output_std),
        ):
            self.register_buffer(name, torch.tensor([float(v) for v in values], dtype=dtype))
        self.eval()

    def _check_sequence(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.size(2) != self.n_inputs:
            raise ValueError("inputs must have shape [batch, time, n_inputs]")

    def _check_step(self, x: torch.Tensor) -> None:
        if x.dim() != 2 or x.size(1) != self.n_inputs:
            raise ValueError("step inputs must have shape [batch, n_inputs]")

    def _zeros(self, batch: int) -> torch.Tensor:
        if batch < 1:
            raise ValueError("batch must be a positive integer")
        return torch.zeros(
            batch, self.hidden, dtype=self.output_mean.dtype, device=self.output_mean.device
        )

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.input_mean) / self.input_std

    def _denormalize(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.output_std + self.output_mean


class DeployedTensorState(DeployedSurrogate):
    """A deployed RNN or GRU surrogate: its state is one tensor ``h [batch, hidden]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run from the zero state: inputs ``[batch, time, n_inputs]`` (nA) -> outputs
        ``[batch, time, n_outputs]`` (mV)."""
        self._check_sequence(x)
        states, _ = self.rnn(self._normalize(x))
        return self._denormalize(self.readout(states))

    @torch.jit.export
    def init(self, batch: int) -> torch.Tensor:
        """Zero state ``h [batch, hidden]``."""
        return self._zeros(batch)

    @torch.jit.export
    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step: inputs ``[batch, n_inputs]`` (nA) and ``h [batch, hidden]`` ->
        outputs ``[batch, n_outputs]`` (mV) and the new ``h``."""
        self._check_step(x)
        out, h = self.rnn(self._normalize(x).unsqueeze(1), state.unsqueeze(0))
        return self._denormalize(self.readout(out[:, 0])), h[0]


class DeployedLSTM(DeployedSurrogate):
    """A deployed LSTM surrogate: its state is the pair ``(h, c)``, each ``[batch, hidden]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run from the zero state: inputs ``[batch, time, n_inputs]`` (nA) -> outputs
        ``[batch, time, n_outputs]`` (mV)."""
        self._check_sequence(x)
        states, _ = self.rnn(self._normalize(x))
        return self._denormalize(self.readout(states))

    @torch.jit.export
    def init(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero state ``(h, c)``, each ``[batch, hidden]``."""
        h = self._zeros(batch)
        return h, torch.zeros_like(h)

    @torch.jit.export
    def step(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One time step: inputs ``[batch, n_inputs]`` (nA) and ``(h, c)`` -> outputs
        ``[batch, n_outputs]`` (mV) and the new ``(h, c)``."""
        self._check_step(x)
        out, (h, c) = self.rnn(
            self._normalize(x).unsqueeze(1), (state[0].unsqueeze(0), state[1].unsqueeze(0))
        )
        return self._denormalize(self.readout(out[:, 0])), (h[0], c[0])


def deploy_model(
    model: RecurrentSurrogate,
    *,
    input_mean: Sequence[float],
    input_std: Sequence[float],
    output_mean: Sequence[float],
    output_std: Sequence[float],
) -> DeployedSurrogate:
    """Wrap ``model`` with its normalisation (see :class:`DeployedSurrogate` for the args).

    Returns:
        A :class:`DeployedLSTM` for an LSTM, else a :class:`DeployedTensorState`, in eval mode.
    """
    cls = DeployedLSTM if model.cell == "lstm" else DeployedTensorState
    return cls(
        model,
        input_mean=input_mean,
        input_std=input_std,
        output_mean=output_mean,
        output_std=output_std,
    )


class StepGraph(nn.Module):
    """The single-step function with flat state tensors, as exported to ONNX (``mode="step"``).

    ``forward(x, h)`` -> ``(y, h_out)`` for RNN/GRU; ``forward(x, h, c)`` -> ``(y, h_out,
    c_out)`` for LSTM; ``x [batch, n_inputs]`` (nA), ``y [batch, n_outputs]`` (mV), states
    ``[batch, hidden]``.
    """

    def __init__(self, deployed: DeployedSurrogate) -> None:
        super().__init__()
        self.deployed = deployed

    def forward(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if isinstance(self.deployed, DeployedLSTM):
            y, (h, c) = self.deployed.step(x, (state[0], state[1]))
            return y, h, c
        y, h = self.deployed.step(x, state[0])
        return y, h
