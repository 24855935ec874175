"""``spike_glm``: a point-process GLM with stimulus and spike-history filters, run free.

The model of Pillow et al. (Nature 454:995, 2008) for one cell, in discrete time: the spike
probability of sample ``k`` (spikes binned 0/1 per sample, so a Bernoulli likelihood with a
logistic link stands in for the Poisson one) is

    logit p[k] = b + sum_i w_i (basis_i * I)[k-1] + sum_m h_m H_m[k],
    H_m[k] = exp(-dt / tau_m) H_m[k-1] + s[k-1]

with ``bases`` raised-cosine stimulus filters (:func:`~.filters.raised_cosine_basis`,
``hidden`` samples long, lags ``1 .. hidden``) and exponential spike-history traces ``H_m``
(time constants ``history_ms``). Fitted by L2-penalised logistic regression (scikit-learn) with
the data's own spikes in the history (the standard maximum-likelihood fit). Predictions run
free: the history holds the model's own spikes, drawn by Bernoulli sampling from
``numpy.random.default_rng(seed)`` (``seed`` is the member's; a fixed realisation, so a run is
reproducible). Outputs: a binary spikes head gets the logit of ``p``; a voltage head the data's
median subthreshold value, with each drawn spike as one sample at the data's mean spike value
(so spike-time extraction by 0 mV crossings works; the GLM has no subthreshold voltage).
Parameters: ``1 + bases + len(history_ms)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.signal import lfilter
from torch import nn

from neuroreduce.errors import ConfigError
from neuroreduce.models.baselines.adex import _detect
from neuroreduce.models.baselines.filters import raised_cosine_basis
from neuroreduce.models.mlp import check_int, check_positive, positive_times

if TYPE_CHECKING:  # only annotations: importing training here would be circular
    from neuroreduce.training.assemble import Assembled
    from neuroreduce.training.task import TaskLayout


@dataclass(frozen=True)
class SpikeGLMConfig:
    """Hyper-parameters of ``spike_glm``.

    Attributes:
        hidden: Stimulus filter length in samples.
        bases: Raised-cosine basis functions of the stimulus filter (2 .. hidden).
        history_ms: Time constants of the spike-history traces (ms).
        sample_ms: The data's sampling interval (ms), for the history time constants.
        alpha: L2 penalty per sample (on standardised features).
        max_iter: Iteration limit of the logistic regression.
    """

    hidden: int = 100
    bases: int = 8
    history_ms: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0)
    sample_ms: float = 0.2
    alpha: float = 1e-5
    max_iter: int = 500

    def __post_init__(self) -> None:
        check_int("hidden", self.hidden, minimum=2)
        check_int("bases", self.bases, minimum=2)
        check_int("max_iter", self.max_iter)
        if self.bases > self.hidden:
            raise ConfigError(f"bases must be <= hidden ({self.hidden}), got {self.bases}")
        object.__setattr__(self, "history_ms", positive_times("history_ms", self.history_ms))
        for name in ("sample_ms", "alpha"):
            check_positive(name, getattr(self, name))

    def decays(self) -> np.ndarray:
        return np.exp(-self.sample_ms / np.array(self.history_ms, dtype=np.float64))


def stimulus_drive(current: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """``[trial, time, bases]``: each basis filter applied to ``current [trial, time]`` at lags
    ``1 .. hidden`` (causal)."""
    n_tr, n_time = current.shape
    out = np.zeros((n_tr, n_time, basis.shape[1]))
    for i in range(basis.shape[1]):
        kernel = np.concatenate([[0.0], basis[:, i]])  # lag 0 weight 0
        out[..., i] = lfilter(kernel, [1.0], current, axis=1)
    return out


def history_traces(spikes: np.ndarray, decays: np.ndarray) -> np.ndarray:
    """``[trial, time, len(decays)]``: ``H[k] = d H[k-1] + s[k-1]``."""
    return np.stack([lfilter([0.0, 1.0], [1.0, -d], spikes.astype(np.float64), axis=1)
                     for d in decays], axis=-1)


def run_glm(drive: np.ndarray, hist: np.ndarray, decays: np.ndarray, bias: float,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Free run: ``(logit [trial, time], spikes bool [trial, time])``; ``drive`` is the
    stimulus part ``[trial, time]``."""
    n_tr, n_time = drive.shape
    traces = np.zeros((n_tr, decays.size))
    logit = np.empty((n_tr, n_time))
    spikes = np.zeros((n_tr, n_time), dtype=bool)
    u = rng.random((n_tr, n_time))
    for k in range(n_time):
        z = bias + drive[:, k] + traces @ hist
        logit[:, k] = z
        s = u[:, k] < 1.0 / (1.0 + np.exp(-z))
        spikes[:, k] = s
        traces = traces * decays + s[:, None]
    return logit, spikes


class SpikeGLMModule(nn.Module):
    """Fitted ``spike_glm`` member: ``[batch, time, 1] -> [batch, time, n_outputs]``."""

    def __init__(self, config: SpikeGLMConfig, n_outputs: int) -> None:
        super().__init__()
        self.basis = raised_cosine_basis(config.hidden, config.bases)
        self.decays = config.decays()
        self.stim = nn.Parameter(torch.zeros(config.bases, dtype=torch.float64))
        self.hist = nn.Parameter(torch.zeros(self.decays.size, dtype=torch.float64))
        #: bias, v_rest, v_spike, seed (fitted constants; parameters so copies keep them)
        self.scalars = nn.Parameter(torch.zeros(4, dtype=torch.float64), requires_grad=False)
        self.head_kind = nn.Parameter(torch.zeros(n_outputs, dtype=torch.float64),
                                      requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cur = x[..., 0].detach().double().cpu().numpy()
        bias, v_rest, v_spike, seed = self.scalars.detach().tolist()
        drive = stimulus_drive(cur, self.basis) @ self.stim.detach().numpy()
        logit, spikes = run_glm(drive, self.hist.detach().numpy(), self.decays, bias,
                                np.random.default_rng(int(seed)))
        v = np.where(spikes, v_spike, v_rest)
        kind = self.head_kind.detach().cpu().numpy()
        out = np.where(kind == 0, v[..., None], logit[..., None])
        return torch.as_tensor(out, dtype=x.dtype, device=x.device)


def build(config: SpikeGLMConfig, *, n_inputs: int, n_outputs: int) -> SpikeGLMModule:
    """An unfitted module (one input channel: the current)."""
    if n_inputs != 1:
        raise ConfigError(f"model 'spike_glm' takes one input channel (the current), got "
                          f"{n_inputs}")
    return SpikeGLMModule(config, n_outputs)


def check(config: SpikeGLMConfig, layout: TaskLayout) -> None:
    """Same tasks as ``adex``: one current -> voltage and/or binary spikes."""
    from neuroreduce.models.baselines.adex import check as adex_check

    adex_check(config, layout)


def fit_spike_glm(current: np.ndarray, spikes: np.ndarray, config: SpikeGLMConfig) -> dict:
    """Maximum-likelihood (L2) fit on ``[trial, time]`` current and bool spikes."""
    from sklearn.linear_model import LogisticRegression

    cur = np.asarray(current, dtype=np.float64)
    spk = np.asarray(spikes, dtype=bool)
    basis = raised_cosine_basis(config.hidden, config.bases)
    feats = np.concatenate([stimulus_drive(cur, basis), history_traces(spk, config.decays())],
                           axis=-1).reshape(-1, config.bases + len(config.history_ms))
    y = spk.reshape(-1).astype(np.int64)
    if y.min() == y.max():
        raise ConfigError("model 'spike_glm' needs training traces with and without spikes")
    mean, scale = feats.mean(axis=0), feats.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    model = LogisticRegression(C=1.0 / (2.0 * config.alpha * y.size), max_iter=config.max_iter)
    model.fit((feats - mean) / scale, y)
    w = model.coef_[0] / scale
    bias = float(model.intercept_[0] - mean / scale @ model.coef_[0])
    return {"stim": w[:config.bases], "hist": w[config.bases:], "bias": bias}


def fit(config: SpikeGLMConfig, *, train: Assembled, valid: Assembled, layout: TaskLayout,
        seed: int) -> SpikeGLMModule:
    """One fitted member on the training split; ``seed`` fixes its spike realisation."""
    check(config, layout)
    voltage_head = next((h for h in layout.heads if h.kind == "continuous"), None)
    spike_head = next((h for h in layout.heads if h.kind == "binary"), None)
    cur = train.x[..., 0].double().numpy()
    vol = None if voltage_head is None else train.targets[voltage_head.field][..., 0].double()
    if spike_head is not None:
        spk = train.targets[spike_head.field][..., 0].numpy() > 0.5
    elif vol is not None:
        spk = _detect(vol.numpy())
    else:
        raise ConfigError("model 'spike_glm' needs a spikes target or a voltage target")
    values = fit_spike_glm(cur, spk, config)
    if vol is not None:
        v = vol.numpy()
        v_rest, v_spike = float(np.median(v[~spk])), float(v[spk].mean())
    else:
        v_rest, v_spike = 0.0, 1.0
    module = build(config, n_inputs=1, n_outputs=layout.n_outputs)
    with torch.no_grad():
        module.stim.copy_(torch.as_tensor(values["stim"]))
        module.hist.copy_(torch.as_tensor(values["hist"]))
        module.scalars.copy_(torch.tensor([values["bias"], v_rest, v_spike, float(seed)]))
        for h in layout.heads:
            module.head_kind[h.start] = 1 if h.kind == "binary" else 0
    return module


FAMILY = dict(
    name="spike_glm",
    description="point-process GLM (Pillow 2008): stimulus + spike-history filters, "
    "Bernoulli fit, run free (no gradient)",
    config=SpikeGLMConfig,
    build=build,
    fit=fit,
    check=check,
)
