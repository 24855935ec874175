"""Integrated gradients for sequence surrogates: which input drives which output.

For output ``o`` the explained quantity is the time average of its predicted voltage,
``F_o(x) = mean_t y_o(t)`` (mV), for an input sequence ``x [time, input]`` (nA). Integrated
gradients (Sundararajan et al. 2017) attribute ``F_o(x) - F_o(x')`` to every input sample along
the straight path from the baseline ``x'`` (zero current in physical units: the network at rest)
to ``x``::

    IG[t, i, o] = (x[t, i] - x'[t, i]) * integral_0^1 dF_o(x' + a (x - x')) / dx[t, i] da

The integral is a trapezoid (or midpoint Riemann) sum over ``steps`` intervals. By the
completeness axiom ``sum_{t,i} IG[t, i, o] = F_o(x) - F_o(x')`` up to the quadrature error.
The importance of input ``i`` for output ``o`` is ``mean over trials and time of |IG[t, i, o]|``,
normalised so that each output's importances sum to 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from neuroreduce.errors import ConfigError

RULES: tuple[str, ...] = ("trapezoid", "riemann")


def path_weights(steps: int, rule: str = "trapezoid") -> tuple[torch.Tensor, torch.Tensor]:
    """Points ``alpha`` in [0, 1] and quadrature weights (summing to 1) of the path integral.

    Args:
        steps: Number of intervals (>= 1).
        rule: ``"trapezoid"`` (``steps + 1`` points, both ends) or ``"riemann"`` (midpoints).

    Returns:
        ``(alphas [points], weights [points])``, float64.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"integrated-gradient steps must be a positive integer, got {steps!r}")
    if rule == "trapezoid":
        alphas = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
        weights = torch.full((steps + 1,), 1.0 / steps, dtype=torch.float64)
        weights[0] = weights[-1] = 0.5 / steps
    elif rule == "riemann":
        alphas = (torch.arange(steps, dtype=torch.float64) + 0.5) / steps
        weights = torch.full((steps,), 1.0 / steps, dtype=torch.float64)
    else:
        raise ConfigError(f"unknown integration rule {rule!r}; use one of {', '.join(RULES)}")
    return alphas, weights


def integrated_gradients(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    baseline: torch.Tensor,
    *,
    steps: int = 32,
    rule: str = "trapezoid",
) -> torch.Tensor:
    """Integrated gradients of every output of ``fn`` with respect to every input sample.

    ``fn`` must treat the batch dimension (third from the end) independently per sample, as
    recurrent models do; the path points are stacked along it and evaluated in one call.

    Args:
        fn: Maps ``[..., batch, time, input]`` to targets ``[..., batch, output]``.
        x: Inputs, shape ``[..., batch, time, input]``.
        baseline: Baseline, broadcastable to ``x``.
        steps: Quadrature intervals along the path.
        rule: ``"trapezoid"`` or ``"riemann"``.

    Returns:
        Attributions ``[..., batch, time, input, output]`` (units of the targets), detached.
    """
    alphas, weights = path_weights(steps, rule)
    x = x.detach()
    base = torch.broadcast_to(baseline.detach().to(x.dtype), x.shape)
    delta = x - base
    n_pts, batch = alphas.numel(), x.shape[-3]
    a = alphas.to(x.dtype).view(n_pts, *([1] * x.ndim))
    path = (base.unsqueeze(0) + a * delta.unsqueeze(0))  # [pts, ..., batch, time, input]
    path = torch.movedim(path, 0, -4).reshape(*x.shape[:-3], n_pts * batch, *x.shape[-2:])
    path.requires_grad_(True)
    targets = fn(path)  # [..., pts * batch, output]
    n_out = targets.shape[-1]
    w = weights.to(x.dtype).view(n_pts, *([1] * x.ndim))
    out = torch.empty((*x.shape, n_out), dtype=x.dtype)
    for o in range(n_out):
        (grad,) = torch.autograd.grad(targets[..., o].sum(), path, retain_graph=o < n_out - 1)
        grad = grad.reshape(*x.shape[:-3], n_pts, batch, *x.shape[-2:])
        avg = (torch.movedim(grad, -4, 0) * w).sum(dim=0)
        out[..., o] = delta * avg
    return out


def time_mean_target(y: torch.Tensor) -> torch.Tensor:
    """``[..., batch, time, output] -> [..., batch, output]``: mean over time."""
    return y.mean(dim=-2)


def ensemble_attributions(
    run: Any,
    inputs: np.ndarray,
    *,
    steps: int = 32,
    rule: str = "trapezoid",
    baseline_na: float = 0.0,
) -> np.ndarray:
    """Integrated gradients of every member of a trained run, one trial at a time.

    Args:
        run: A :class:`~neuroreduce.training.TrainedRun` (``training.load_run``).
        inputs: Currents ``[trial, time, input]`` in the run's input units (nA).
        steps: Quadrature intervals along the path.
        rule: ``"trapezoid"`` or ``"riemann"``.
        baseline_na: Constant baseline current (nA) of every input; 0 = no injected current.

    Returns:
        Mean ``|IG|`` over time, shape ``[member, trial, input, output]``, in output units (mV,
        attribution of the time-averaged output).
    """
    norm = run.normalization
    x = np.asarray(inputs, dtype=np.float64)
    if x.ndim != 3 or x.shape[2] != run.spec.n_inputs:
        raise ConfigError(
            f"inputs must have shape [trial, time, {run.spec.n_inputs}]; got {tuple(x.shape)}"
        )
    xn = torch.from_numpy(norm.normalize_inputs(x).astype(np.float32))
    bn = torch.from_numpy(
        norm.normalize_inputs(np.full((1, 1, x.shape[2]), baseline_na)).astype(np.float32)
    )
    out_std = torch.tensor(norm.output_std, dtype=torch.float32)
    model = run.model
    k = run.n_members

    def fn(path: torch.Tensor) -> torch.Tensor:  # [member, batch, time, in] -> [member, batch, out]
        return time_mean_target(model(path)) * out_std  # mean offset cancels in differences

    result = np.empty((k, x.shape[0], x.shape[2], run.spec.n_outputs))
    with torch.enable_grad():
        for trial in range(x.shape[0]):
            xt = xn[trial : trial + 1].unsqueeze(0).expand(k, -1, -1, -1).contiguous()
            attr = integrated_gradients(fn, xt, bn.expand_as(xt), steps=steps, rule=rule)
            result[:, trial] = attr.abs().mean(dim=2)[:, 0].double().numpy()
    return result


def importance_matrix(mean_abs: np.ndarray) -> np.ndarray:
    """Normalise ``[..., trial, input, output]`` mean |IG| into importances.

    Averages over trials, then divides each output's column by its sum over inputs.

    Returns:
        ``[..., input, output]``; every output column sums to 1 (0 where all are 0).
    """
    m = np.asarray(mean_abs, dtype=np.float64).mean(axis=-3)
    total = m.sum(axis=-2, keepdims=True)
    return np.divide(m, total, out=np.zeros_like(m), where=total > 0)
