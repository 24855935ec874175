"""The paper's surrogate: one recurrent layer (RNN, LSTM or GRU) and a time-distributed read-out.

Barbulescu et al. (2023) map the input currents of a trial to the output voltages with a single
Keras recurrent layer followed by a dense layer applied at every time step. The model is
free-running: it sees only the inputs, starts from a zero state and never sees true outputs.
"""

from __future__ import annotations

from typing import TypeAlias

import torch
from torch import nn

from neuroreduce.errors import ConfigError

#: Gates per recurrent cell: how many stacked weight blocks PyTorch and Keras keep per layer.
GATES: dict[str, int] = {"rnn": 1, "lstm": 4, "gru": 3}

#: Recurrent state between time steps: ``h [batch, hidden]`` for RNN and GRU, the pair
#: ``(h, c)`` (each ``[batch, hidden]``) for LSTM.
State: TypeAlias = torch.Tensor | tuple[torch.Tensor, torch.Tensor]

_LAYERS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def check_cell(cell: str) -> str:
    """Return ``cell`` if it names a recurrent cell (``"rnn"``, ``"lstm"``, ``"gru"``).

    Raises:
        ConfigError: for any other name, listing the known cells.
    """
    if cell not in GATES:
        raise ConfigError(f"unknown recurrent cell {cell!r}; known cells: {', '.join(GATES)}")
    return cell


def check_sizes(*, n_inputs: int, n_outputs: int, hidden: int) -> None:
    """Raise :class:`ConfigError` unless all sizes are positive integers."""
    for name, value in (("n_inputs", n_inputs), ("n_outputs", n_outputs), ("hidden", hidden)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def recurrent_layer(cell: str, input_size: int, hidden_size: int) -> nn.RNNBase:
    """A single-layer, batch-first PyTorch recurrent layer (tanh for ``"rnn"``)."""
    return _LAYERS[check_cell(cell)](input_size, hidden_size, num_layers=1, batch_first=True)


class RecurrentSurrogate(nn.Module):
    """One recurrent layer followed by a linear read-out applied at every time step.

    Weights are initialised as Keras does for the paper's models (Glorot-uniform input weights,
    orthogonal recurrent weights, zero biases, LSTM forget-gate bias 1, Glorot-uniform read-out,
    zero read-out bias), drawing from the global torch RNG: call ``torch.manual_seed`` first to
    get a reproducible model.

    Args:
        cell: ``"rnn"`` (tanh), ``"lstm"`` or ``"gru"``.
        n_inputs: Input channels (injected currents).
        n_outputs: Output channels (recorded voltages).
        hidden: Units of the recurrent layer.

    Raises:
        ConfigError: on an unknown cell or a non-positive size.
    """

    def __init__(self, cell: str, n_inputs: int, n_outputs: int, hidden: int) -> None:
        super().__init__()
        check_sizes(n_inputs=n_inputs, n_outputs=n_outputs, hidden=hidden)
        self.cell = check_cell(cell)
        self.n_inputs = n_inputs
        self.n_outputs = n_outputs
        self.hidden = hidden
        self.rnn = recurrent_layer(cell, n_inputs, hidden)
        self.readout = nn.Linear(hidden, n_outputs)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw all weights with the Keras initialisation described in the class docstring."""
        with torch.no_grad():
            nn.init.xavier_uniform_(self.rnn.weight_ih_l0)
            nn.init.orthogonal_(self.rnn.weight_hh_l0)
            self.rnn.bias_ih_l0.zero_()
            self.rnn.bias_hh_l0.zero_()
            if self.cell == "lstm":  # gate order i, f, g, o: Keras' unit_forget_bias
                self.rnn.bias_ih_l0[self.hidden : 2 * self.hidden] = 1.0
            nn.init.xavier_uniform_(self.readout.weight)
            self.readout.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the model free from a zero initial state.

        Args:
            x: Normalised inputs, shape ``[batch, time, n_inputs]``.

        Returns:
            Normalised outputs, shape ``[batch, time, n_outputs]``.

        Raises:
            ConfigError: if ``x`` does not have shape ``[batch, time, n_inputs]``.
        """
        if x.ndim != 3 or x.shape[2] != self.n_inputs:
            raise ConfigError(
                f"model input must have shape [batch, time, {self.n_inputs}]; got {tuple(x.shape)}"
            )
        states, _ = self.rnn(x)
        return self.readout(states)

    def init(self, batch: int) -> State:
        """The zero state the model starts from, for ``batch`` parallel trials.

        Args:
            batch: Number of trials stepped together.

        Returns:
            ``h`` of shape ``[batch, hidden]`` (zeros) for ``"rnn"``/``"gru"``; the pair
            ``(h, c)``, each ``[batch, hidden]``, for ``"lstm"``. Same dtype and device as the
            weights.

        Raises:
            ConfigError: if ``batch`` is not a positive integer.
        """
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ConfigError(f"batch must be a positive integer, got {batch!r}")
        w = self.readout.weight
        h = torch.zeros(batch, self.hidden, dtype=w.dtype, device=w.device)
        return (h, torch.zeros_like(h)) if self.cell == "lstm" else h

    def step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Advance the model by one time step (one sample, ``dt`` of the training data).

        Stepping ``T`` times from :meth:`init` gives the same outputs as :meth:`forward` on the
        whole ``[batch, T, n_inputs]`` sequence, so a host simulator can call the surrogate
        once per ``dt`` inside its own loop.

        Args:
            x: Normalised inputs of this step, shape ``[batch, n_inputs]``.
            state: State from :meth:`init` or the previous :meth:`step`.

        Returns:
            Normalised outputs ``[batch, n_outputs]`` and the new state (same layout as
            ``state``).

        Raises:
            ConfigError: if ``x`` or ``state`` has the wrong shape or layout.
        """
        if x.ndim != 2 or x.shape[1] != self.n_inputs:
            raise ConfigError(
                f"step input must have shape [batch, {self.n_inputs}]; got {tuple(x.shape)}"
            )
        parts = state if isinstance(state, tuple) else (state,)
        expected = 2 if self.cell == "lstm" else 1
        if len(parts) != expected or any(p.shape != (x.shape[0], self.hidden) for p in parts):
            layout = "(h, c)" if self.cell == "lstm" else "h"
            raise ConfigError(
                f"{self.cell} state must be {layout} of shape [{x.shape[0]}, {self.hidden}] "
                "each; start from init(batch)"
            )
        hx = tuple(p.unsqueeze(0) for p in parts)
        out, new = self.rnn(x.unsqueeze(1), hx if self.cell == "lstm" else hx[0])
        y = self.readout(out[:, 0])
        if self.cell == "lstm":
            return y, (new[0][0], new[1][0])
        return y, new[0]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars of ``model`` (PyTorch keeps two bias vectors per gate)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

