"""Causal linear filters of the inputs: the torch modules the fitted baselines become.

Both map ``x [batch, time, n_inputs]`` to ``[batch, time, n_outputs]`` with

    y[t, o] = b[o] + sum_i sum_{l=0}^{L-1} k[o, i, l] * x[t - l, i]      (x = 0 before t = 0)

a finite-impulse-response (FIR) filter of length ``L`` samples, run as a ``conv1d`` with ``L - 1``
zeros of left padding, so step ``t`` never sees inputs after ``t`` (free running, no output
feedback). :class:`CausalFilter` holds the kernel itself (``L`` weights per input and output);
:class:`BasisFilter` holds ``n_bases`` weights per input and output and builds the kernel as
``weight @ basis.T`` from a fixed basis (raised cosines: :func:`raised_cosine_basis`).

The helpers :func:`lagged` and :func:`basis_features` give the same linear map as a design
matrix over chosen time steps, so a closed-form fit of the design matrix is a fit of the module.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neuroreduce.models.mlp import check_input, check_int

#: Time steps per block when building design matrices (bounds temporary memory).
_BLOCK = 4096


def _causal_conv(x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``x [batch, time, in]``, ``kernel [out, in, L]`` in lag order -> ``[batch, time, out]``."""
    length = kernel.shape[-1]
    padded = F.pad(x.transpose(1, 2), (length - 1, 0))  # zeros before the first step
    # conv1d correlates: tap j of the flipped kernel meets x[t - (L - 1 - j)], i.e. lag L-1-j
    return F.conv1d(padded, kernel.flip(-1), bias).transpose(1, 2)


class CausalFilter(nn.Module):
    """FIR filter of the last ``length`` input steps: a causal (left-padded) ``Conv1d``.

    ``conv.weight [n_outputs, n_inputs, length]`` is in the ``Conv1d`` order: tap ``j`` weighs
    lag ``length - 1 - j`` (:meth:`kernel` gives it in lag order). Parameters:
    ``n_outputs * (n_inputs * length + 1)``.

    Args:
        n_inputs: Input channels.
        n_outputs: Output columns.
        length: Filter length in samples (lags ``0 .. length - 1``).
    """

    def __init__(self, n_inputs: int, n_outputs: int, length: int) -> None:
        super().__init__()
        for name, value in (("n_inputs", n_inputs), ("n_outputs", n_outputs), ("length", length)):
            check_int(name, value)
        self.n_inputs, self.n_outputs, self.length = n_inputs, n_outputs, length
        self.conv = nn.Conv1d(n_inputs, n_outputs, length)

    def kernel(self) -> torch.Tensor:
        """``[n_outputs, n_inputs, length]``, index ``l`` = weight of ``x[t - l]``."""
        return self.conv.weight.flip(-1)

    def set_kernel(self, kernel: np.ndarray, bias: np.ndarray) -> None:
        """Load a lag-ordered kernel ``[n_outputs, n_inputs, length]`` and bias ``[n_outputs]``."""
        with torch.no_grad():
            self.conv.weight.copy_(torch.as_tensor(kernel, dtype=torch.float32).flip(-1))
            self.conv.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [batch, time, n_inputs]`` -> ``[batch, time, n_outputs]`` (causal)."""
        check_input(x, self.n_inputs)
        length = self.length
        return self.conv(F.pad(x.transpose(1, 2), (length - 1, 0))).transpose(1, 2)


class BasisFilter(nn.Module):
    """FIR filter whose kernel is a weighted sum of fixed basis functions of the lag.

    Parameters: ``weight [n_outputs, n_inputs, n_bases]`` and ``bias [n_outputs]``; the basis
    ``[length, n_bases]`` is a non-persistent buffer (rebuilt from the config, not saved).

    Args:
        n_inputs: Input channels.
        n_outputs: Output columns.
        basis: ``[length, n_bases]``, column ``b`` = basis function ``b`` over lags
            ``0 .. length - 1``.
    """

    def __init__(self, n_inputs: int, n_outputs: int, basis: np.ndarray) -> None:
        super().__init__()
        check_int("n_inputs", n_inputs)
        check_int("n_outputs", n_outputs)
        self.n_inputs, self.n_outputs = n_inputs, n_outputs
        self.register_buffer("basis", torch.as_tensor(basis, dtype=torch.float32),
                             persistent=False)
        self.weight = nn.Parameter(torch.zeros(n_outputs, n_inputs, basis.shape[1]))
        self.bias = nn.Parameter(torch.zeros(n_outputs))

    def kernel(self) -> torch.Tensor:
        """``[n_outputs, n_inputs, length]`` in lag order: ``weight @ basis.T``."""
        return torch.einsum("oib,lb->oil", self.weight, self.basis)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [batch, time, n_inputs]`` -> ``[batch, time, n_outputs]`` (causal)."""
        check_input(x, self.n_inputs)
        return _causal_conv(x, self.kernel(), self.bias)


def raised_cosine_basis(length: int, n_bases: int, *, log_offset: float = 1.0) -> np.ndarray:
    """Raised-cosine bumps on a logarithmically stretched lag axis (Pillow et al. 2008).

    ``b_j(l) = (1 + cos(clip((log(l + c) - phi_j) * pi / (2 d), -pi, pi))) / 2`` for lags
    ``l = 0 .. length - 1``, with centres ``phi_j`` evenly spaced (step ``d``) from
    ``log(c)`` to ``log(length - 1 + c)``: narrow bumps at short lags, wide ones at long lags,
    neighbours overlapping by half (Pillow, Shlens, Paninski et al., Nature 454:995, 2008,
    Methods; ``c`` = ``log_offset`` in samples: larger values space the bumps more evenly).

    Args:
        length: Filter length in samples (>= 2).
        n_bases: Basis functions (2 .. length).
        log_offset: ``c`` > 0, in samples.

    Returns:
        float64 ``[length, n_bases]``.
    """
    check_int("length", length, minimum=2)
    check_int("n_bases", n_bases, minimum=2)
    u = np.log(np.arange(length, dtype=np.float64) + log_offset)
    centres = np.linspace(u[0], u[-1], n_bases)
    step = centres[1] - centres[0]
    arg = np.clip((u[:, None] - centres[None, :]) * math.pi / (2.0 * step), -math.pi, math.pi)
    return 0.5 * (1.0 + np.cos(arg))


def lagged(x: np.ndarray, trial: np.ndarray, time: np.ndarray, length: int) -> Iterator[np.ndarray]:
    """Blocks of the lagged inputs of time steps ``(trial[n], time[n])``.

    Args:
        x: Inputs ``[trial, time, n_inputs]``.
        trial: Trial index per chosen step ``[n]``.
        time: Time index per chosen step ``[n]``.
        length: Lags ``0 .. length - 1``.

    Yields:
        float64 ``[block, n_inputs, length]``: ``out[n, i, l] = x[trial[n], time[n] - l, i]``
        (0 before the trial starts), blocks of at most :data:`_BLOCK` steps, in order.
    """
    padded = np.pad(x, ((0, 0), (length - 1, 0), (0, 0)))
    lags = np.arange(length)
    for start in range(0, trial.size, _BLOCK):
        tr, tt = trial[start : start + _BLOCK], time[start : start + _BLOCK]
        idx = tt[:, None] + (length - 1) - lags[None, :]  # [block, length]
        yield padded[tr[:, None], idx].astype(np.float64).transpose(0, 2, 1)


def lag_features(x: np.ndarray, trial: np.ndarray, time: np.ndarray, length: int) -> np.ndarray:
    """Design matrix of :class:`CausalFilter`: ``[n, n_inputs * length]`` (input-major)."""
    blocks = [b.reshape(b.shape[0], -1) for b in lagged(x, trial, time, length)]
    return np.concatenate(blocks) if blocks else np.zeros((0, x.shape[-1] * length))


def basis_features(
    x: np.ndarray, trial: np.ndarray, time: np.ndarray, basis: np.ndarray
) -> np.ndarray:
    """Design matrix of :class:`BasisFilter`: ``[n, n_inputs * n_bases]`` (input-major)."""
    length, n_bases = basis.shape
    blocks = [(b @ basis).reshape(b.shape[0], -1) for b in lagged(x, trial, time, length)]
    return np.concatenate(blocks) if blocks else np.zeros((0, x.shape[-1] * n_bases))
