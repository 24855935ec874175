"""``arx_spiking``: a linear autoregressive-exogenous voltage model with a threshold and reset.

The ARX baseline the spike-timing study compares against (issue 12): the subthreshold
voltage follows

    V[k] = c + sum_{j=1..order} alpha_j V[k-j] + sum_{j=1..hidden} beta_j I[k-j]
             + sum_m gamma_m h_m[k],   h_m[k] = exp(-dt / tau_m) h_m[k-1] + s[k-1]

with spike-history traces ``h_m`` of the cell's own spikes ``s`` (time constants
``history_ms``; the data's spikes when fitting, the model's when running free: they carry the
adaptation a linear voltage model otherwise lacks), fitted by least squares (ridge
``alpha_ridge`` per sample, on standardised lags) on the training samples whose window
``k - order .. k`` lies away from every data spike (1 ms before to 5 ms after). Run free (its
own past voltage and spikes fed back): when ``V[k] >= theta`` the model fires, draws the spike
sample at the data's mean spike value, and holds ``V`` at ``v_reset`` for ``refractory``
samples (5 ms), ``v_reset`` being the data's median voltage 5 ms after a spike.
``theta`` is the value, among 40 levels between the 90th percentile and the maximum of the
subthreshold voltage, whose free run has the best mean coincidence factor (+-2 ms) on the
training traces. Works in whatever units the trainer gives (z-scored). A binary spikes head
gets logit +8 at spikes, -8 elsewhere. Parameters: ``order + hidden + len(history_ms) + 3``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.signal import lfilter
from torch import nn

from neuroreduce.errors import ConfigError
from neuroreduce.evaluation.spikes import coincidence_factor
from neuroreduce.models.baselines.adex import SPIKE_LOGIT, _detect, _near, _times
from neuroreduce.models.mlp import check_int, check_positive, positive_times

if TYPE_CHECKING:  # only annotations: importing training here would be circular
    from neuroreduce.training.assemble import Assembled
    from neuroreduce.training.task import TaskLayout


@dataclass(frozen=True)
class ARXSpikingConfig:
    """Hyper-parameters of ``arx_spiking``.

    Attributes:
        hidden: Input lags (samples ``k-1 .. k-hidden``).
        order: Voltage lags (autoregressive order).
        sample_ms: The data's sampling interval (ms): sets the spike windows in samples.
        alpha_ridge: Ridge penalty per sample on standardised lags (>= 0).
        window_ms: Coincidence half-window of the threshold search (ms).
        history_ms: Time constants of the spike-history traces (ms; empty: none).
    """

    hidden: int = 20
    order: int = 1
    sample_ms: float = 0.2
    alpha_ridge: float = 1e-6
    window_ms: float = 2.0
    history_ms: tuple[float, ...] = (2.0, 10.0, 50.0, 200.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "history_ms", positive_times("history_ms", self.history_ms))
        check_int("hidden", self.hidden)
        check_int("order", self.order)
        for name in ("sample_ms", "window_ms"):
            check_positive(name, getattr(self, name))
        a = self.alpha_ridge
        if isinstance(a, bool) or not isinstance(a, int | float) or not (
            math.isfinite(a) and a >= 0
        ):
            raise ConfigError(f"alpha_ridge must be a finite number >= 0, got {a!r}")


def run_arx(current: np.ndarray, ar: np.ndarray, ex: np.ndarray, c: float,
            theta: np.ndarray, v_reset: float, refractory: int, v_spike: float,
            v0: float, hist: np.ndarray, decay: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Free run of ``current [trial, time]`` for thresholds ``theta [n]`` at once
    (``hist``: spike-history weights, ``decay``: their per-sample decay factors).

    Returns ``(v [n, trial, time], fired bool [n, trial, time])``.
    """
    n_th, (n_tr, n_time) = theta.size, current.shape
    order, lags = ar.size, ex.size
    drive = np.full(current.shape, c)
    for j in range(1, lags + 1):
        drive[:, j:] += ex[j - 1] * current[:, :-j]
    state = np.full((n_th, n_tr, order), v0)  # state[..., j-1] = V[k-j]
    hold = np.zeros((n_th, n_tr), dtype=np.int64)
    traces = np.zeros((n_th, n_tr, hist.size))
    v = np.empty((n_th, n_tr, n_time))
    fired = np.zeros((n_th, n_tr, n_time), dtype=bool)
    v[..., 0] = v0
    th = theta[:, None]
    for k in range(1, n_time):
        new = drive[:, k] + state @ ar + traces @ hist
        held = hold > 0
        new = np.where(held, v_reset, new)
        spike = ~held & (new >= th)
        hold = np.where(spike, refractory, np.maximum(hold - 1, 0))
        value = np.where(spike, v_reset, new)
        state = np.concatenate([value[..., None], state[..., :-1]], axis=-1)
        traces = traces * decay + spike[..., None]
        v[..., k] = np.where(spike, v_spike, value)
        fired[..., k] = spike
    return v, fired


class ARXSpikingModule(nn.Module):
    """Fitted ``arx_spiking`` member: ``[batch, time, 1] -> [batch, time, n_outputs]``."""

    def __init__(self, n_outputs: int, order: int, lags: int, decay: np.ndarray,
                 refractory: int) -> None:
        super().__init__()
        self.decay, self.refractory = decay, refractory  # from the config
        self.hist = nn.Parameter(torch.zeros(decay.size, dtype=torch.float64))
        self.ar = nn.Parameter(torch.zeros(order, dtype=torch.float64))
        self.ex = nn.Parameter(torch.zeros(lags, dtype=torch.float64))
        #: c, theta, v_reset, v_spike, v0
        self.scalars = nn.Parameter(torch.zeros(5, dtype=torch.float64))
        self.head_kind = nn.Parameter(torch.zeros(n_outputs, dtype=torch.float64),
                                      requires_grad=False)  # 0: voltage, 1: spike logit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cur = x[..., 0].detach().double().cpu().numpy()
        c, theta, v_reset, v_spike, v0 = self.scalars.detach().tolist()
        v, fired = run_arx(cur, self.ar.detach().numpy(), self.ex.detach().numpy(), c,
                           np.array([theta]), v_reset, self.refractory, v_spike, v0,
                           self.hist.detach().numpy(), self.decay)
        kind = self.head_kind.detach().cpu().numpy()
        out = np.where(kind == 0, v[0][..., None],
                       np.where(fired[0], SPIKE_LOGIT, -SPIKE_LOGIT)[..., None])
        return torch.as_tensor(out, dtype=x.dtype, device=x.device)


def build(config: ARXSpikingConfig, *, n_inputs: int, n_outputs: int) -> ARXSpikingModule:
    """An unfitted module (one input channel: the current)."""
    if n_inputs != 1:
        raise ConfigError(f"model 'arx_spiking' takes one input channel (the current), got "
                          f"{n_inputs}")
    return ARXSpikingModule(n_outputs, config.order, config.hidden, _decays(config),
                            _refractory(config))


def _refractory(config: ARXSpikingConfig) -> int:
    return max(1, round(5.0 / config.sample_ms))


def _decays(config: ARXSpikingConfig) -> np.ndarray:
    return np.exp(-config.sample_ms / np.array(config.history_ms, dtype=np.float64))


def check(config: ARXSpikingConfig, layout: TaskLayout) -> None:
    """Same tasks as ``adex``: one current -> voltage and/or binary spikes."""
    from neuroreduce.models.baselines.adex import check as adex_check

    adex_check(config, layout)


def fit_arx_spiking(current: np.ndarray, voltage: np.ndarray, spikes: np.ndarray | None,
                    config: ARXSpikingConfig, known: np.ndarray | None = None) -> dict:
    """Fit on ``[trial, time]`` traces; returns the module's values (see the docstring).
    ``known``: bool ``[trial, time]`` voltage samples that count (None: all)."""
    cur = np.asarray(current, dtype=np.float64)
    vol = np.asarray(voltage, dtype=np.float64)
    spk = _detect(vol) if spikes is None else np.asarray(spikes, dtype=bool)
    dt = config.sample_ms
    before, after = max(1, round(1.0 / dt)), max(1, round(5.0 / dt))
    near = _near(spk, before, after)
    if known is not None:
        near |= ~np.asarray(known, dtype=bool)
    p, q = config.order, config.hidden
    start = max(p, q)
    ok = ~near[:, start:].copy()
    for j in range(1, p + 1):
        ok &= ~near[:, start - j: vol.shape[1] - j]
    cols = [vol[:, start - j: vol.shape[1] - j][ok] for j in range(1, p + 1)]
    cols += [cur[:, start - j: cur.shape[1] - j][ok] for j in range(1, q + 1)]
    decay = _decays(config)
    for d in decay:
        trace = lfilter([0.0, 1.0], [1.0, -d], spk.astype(np.float64), axis=1)
        cols.append(trace[:, start:][ok])
    x = np.column_stack(cols)
    y = vol[:, start:][ok]
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    xs = (x - mean) / scale
    gram = xs.T @ xs + config.alpha_ridge * y.size * np.eye(xs.shape[1])
    w = np.linalg.solve(gram, xs.T @ (y - y.mean())) / scale
    c = float(y.mean() - mean @ w)
    ar, ex, hist = w[:p], w[p:p + q], w[p + q:]
    sub = vol[~near]
    v_spike = float(vol[spk].mean()) if spk.any() else float(vol.max())
    idx = np.argwhere(spk)
    later = idx[:, 1] + after
    inside = later < vol.shape[1]
    v_reset = float(np.median(vol[idx[inside, 0], later[inside]])) if inside.any() else float(
        np.median(sub))
    thetas = np.linspace(np.percentile(sub, 90), sub.max(), 40)
    _, fired = run_arx(cur, ar, ex, c, thetas, v_reset, after, v_spike, float(np.median(sub)),
                       hist, decay)
    data = _times(spk)
    duration = float(vol.shape[1] - 1)
    window = config.window_ms / dt
    scores = []
    for f in fired:
        g = [coincidence_factor(d, m, window_ms=window, duration_ms=duration)
             for d, m in zip(data, _times(f), strict=True) if d.size]
        scores.append(np.mean([0.0 if math.isnan(x) else x for x in g]) if g else 0.0)
    best = int(np.argmax(scores))
    return {"ar": ar, "ex": ex, "hist": hist, "decay": decay, "c": c,
            "theta": float(thetas[best]), "v_reset": v_reset,
            "v_spike": v_spike, "v0": float(np.median(sub)), "refractory": after,
            "train_gamma": float(scores[best])}


def fit(config: ARXSpikingConfig, *, train: Assembled, valid: Assembled, layout: TaskLayout,
        seed: int) -> ARXSpikingModule:
    """One fitted member on the z-scored training split (deterministic: ``seed`` unused)."""
    check(config, layout)
    voltage_head = next((h for h in layout.heads if h.kind == "continuous"), None)
    spike_head = next((h for h in layout.heads if h.kind == "binary"), None)
    if voltage_head is None:
        raise ConfigError("model 'arx_spiking' is fitted to voltage: the task needs a "
                          "continuous voltage target (the dataset's outputs)")
    cur = train.x[..., 0].double().numpy()
    vol = train.targets[voltage_head.field][..., 0].double().numpy()
    spk = None if spike_head is None else train.targets[spike_head.field][..., 0].numpy() > 0.5
    mask = train.masks.get(voltage_head.field)
    values = fit_arx_spiking(cur, vol, spk, config,
                             None if mask is None else mask[..., 0].numpy())
    module = build(config, n_inputs=1, n_outputs=layout.n_outputs)
    with torch.no_grad():
        module.ar.copy_(torch.as_tensor(values["ar"]))
        module.ex.copy_(torch.as_tensor(values["ex"]))
        module.hist.copy_(torch.as_tensor(values["hist"]))
        module.scalars.copy_(torch.tensor([values[k] for k in
                                           ("c", "theta", "v_reset", "v_spike", "v0")]))
        for h in layout.heads:
            module.head_kind[h.start] = 1 if h.kind == "binary" else 0
    return module


FAMILY = dict(
    name="arx_spiking",
    description="linear ARX voltage model + fitted threshold and reset (spike timing; no "
    "gradient)",
    config=ARXSpikingConfig,
    build=build,
    fit=fit,
    check=check,
)
