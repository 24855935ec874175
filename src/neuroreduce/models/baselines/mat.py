"""``mat``: the multi-timescale adaptive threshold model (Kobayashi, Tsubo & Shinomoto 2009).

The winner of the QSNMC 2009 (Front Comput Neurosci 3:9): a non-resetting leaky integrator
for the voltage and a threshold that jumps at every spike and relaxes on two time scales,

    V[k] = a V[k-1] + r I[k-1] + c                          (leaky integrator, tau = -dt/ln a)
    theta[k] = omega + alpha_1 H_1[k] + alpha_2 H_2[k],  H_j[k] = exp(-dt/tau_j) H_j[k-1] + s[k-1]
    s[k] = 1 if V[k] >= theta[k] and no spike in the last ``refractory_ms``

with ``tau_1 = 10 ms``, ``tau_2 = 200 ms`` and a 2 ms refractory period (the paper's values).
The integrator is fitted by least squares on the samples away from data spikes (1 ms before to
5 ms after), then ``(omega, alpha_1, alpha_2)`` by CMA-ES (``cma``) maximising the mean
coincidence factor (+-``window_ms``) of the free runs on the training traces (the threshold
loop is cheap: the voltage does not depend on the spikes). Outputs: the voltage head gets ``V``
with each spike drawn as one sample at the data's mean spike value; a binary spikes head logit
+8 at spikes, -8 elsewhere. Parameters: 6 (``a, r, c, omega, alpha_1, alpha_2``).
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
from neuroreduce.models.mlp import check_int, check_positive

if TYPE_CHECKING:  # only annotations: importing training here would be circular
    from neuroreduce.training.assemble import Assembled
    from neuroreduce.training.task import TaskLayout


@dataclass(frozen=True)
class MATConfig:
    """Hyper-parameters of ``mat``.

    Attributes:
        hidden: Unused (6 parameters); kept for the registry.
        sample_ms: The data's sampling interval (ms).
        tau_ms: The two threshold time constants (ms).
        refractory_ms: Absolute refractory period (ms).
        popsize: CMA-ES population size.
        iterations: CMA-ES generations.
        window_ms: Coincidence half-window of the fit (ms).
    """

    hidden: int = 1
    sample_ms: float = 0.2
    tau_ms: tuple[float, float] = (10.0, 200.0)
    refractory_ms: float = 2.0
    popsize: int = 16
    iterations: int = 40
    window_ms: float = 2.0

    def __post_init__(self) -> None:
        check_int("hidden", self.hidden)
        check_int("popsize", self.popsize, minimum=4)
        check_int("iterations", self.iterations)
        taus = self.tau_ms
        if not isinstance(taus, list | tuple) or len(taus) != 2 or not all(
            isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t) and t > 0
            for t in taus
        ):
            raise ConfigError(f"tau_ms must be two finite numbers > 0, got {taus!r}")
        object.__setattr__(self, "tau_ms", (float(taus[0]), float(taus[1])))
        for name in ("sample_ms", "refractory_ms", "window_ms"):
            check_positive(name, getattr(self, name))

    def decays(self) -> np.ndarray:
        return np.exp(-self.sample_ms / np.array(self.tau_ms))

    @property
    def refractory(self) -> int:
        return max(1, round(self.refractory_ms / self.sample_ms))


def integrate(current: np.ndarray, a: float, r: float, c: float, v0: float) -> np.ndarray:
    """The leaky integrator ``V [trial, time]`` from ``V[0] = v0``."""
    drive = np.zeros(current.shape)
    drive[:, 1:] = r * current[:, :-1] + c
    drive[:, 0] = v0
    return lfilter([1.0], [1.0, -a], drive, axis=1)


def threshold_run(v: np.ndarray, omega: np.ndarray, alpha: np.ndarray, decays: np.ndarray,
                  refractory: int) -> np.ndarray:
    """Spikes bool ``[n, trial, time]`` of ``n`` threshold settings (``omega [n]``,
    ``alpha [n, 2]``) on the voltage ``v [trial, time]``."""
    n, (n_tr, n_time) = omega.size, v.shape
    traces = np.zeros((n, n_tr, 2))
    since = np.full((n, n_tr), refractory)
    fired = np.zeros((n, n_tr, n_time), dtype=bool)
    om, al = omega[:, None], alpha[:, None, :]
    for k in range(1, n_time):
        theta = om + (traces * al).sum(-1)
        s = (v[:, k] >= theta) & (since >= refractory)
        fired[..., k] = s
        since = np.where(s, 0, since + 1)
        traces = traces * decays + s[..., None]
    return fired


class MATModule(nn.Module):
    """Fitted ``mat`` member: ``[batch, time, 1] -> [batch, time, n_outputs]``."""

    def __init__(self, config: MATConfig, n_outputs: int) -> None:
        super().__init__()
        self.decays, self.refractory = config.decays(), config.refractory
        #: a, r, c, omega, alpha_1, alpha_2
        self.theta = nn.Parameter(torch.zeros(6, dtype=torch.float64))
        #: v0, v_spike (fitted constants; parameters so copies keep them)
        self.consts = nn.Parameter(torch.zeros(2, dtype=torch.float64), requires_grad=False)
        self.head_kind = nn.Parameter(torch.zeros(n_outputs, dtype=torch.float64),
                                      requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cur = x[..., 0].detach().double().cpu().numpy()
        a, r, c, omega, a1, a2 = self.theta.detach().tolist()
        v0, v_spike = self.consts.detach().tolist()
        v = integrate(cur, a, r, c, v0)
        fired = threshold_run(v, np.array([omega]), np.array([[a1, a2]]), self.decays,
                              self.refractory)[0]
        kind = self.head_kind.detach().cpu().numpy()
        out = np.where(kind == 0, np.where(fired, v_spike, v)[..., None],
                       np.where(fired, SPIKE_LOGIT, -SPIKE_LOGIT)[..., None])
        return torch.as_tensor(out, dtype=x.dtype, device=x.device)


def build(config: MATConfig, *, n_inputs: int, n_outputs: int) -> MATModule:
    """An unfitted module (one input channel: the current)."""
    if n_inputs != 1:
        raise ConfigError(f"model 'mat' takes one input channel (the current), got {n_inputs}")
    return MATModule(config, n_outputs)


def check(config: MATConfig, layout: TaskLayout) -> None:
    """Same tasks as ``adex``: one current -> voltage and/or binary spikes."""
    from neuroreduce.models.baselines.adex import check as adex_check

    adex_check(config, layout)


def fit_mat(current: np.ndarray, voltage: np.ndarray, spikes: np.ndarray | None,
            config: MATConfig, *, seed: int = 0, known: np.ndarray | None = None) -> dict:
    """Fit on ``[trial, time]`` traces (see the module docstring); returns the values.
    ``known``: bool ``[trial, time]`` voltage samples that count (None: all)."""
    import cma

    cur = np.asarray(current, dtype=np.float64)
    vol = np.asarray(voltage, dtype=np.float64)
    spk = _detect(vol) if spikes is None else np.asarray(spikes, dtype=bool)
    dt = config.sample_ms
    near = _near(spk, max(1, round(1.0 / dt)), max(1, round(5.0 / dt)))
    if known is not None:
        near |= ~np.asarray(known, dtype=bool)
    ok = ~near[:, 1:] & ~near[:, :-1]
    design = np.column_stack([vol[:, :-1][ok], cur[:, :-1][ok], np.ones(int(ok.sum()))])
    a, r, c = np.linalg.lstsq(design, vol[:, 1:][ok], rcond=None)[0]
    a = float(min(a, 0.9999))
    sub = vol[~near]
    v0 = float(np.median(sub))
    v = integrate(cur, a, float(r), float(c), v0)
    data = _times(spk)
    duration = float(vol.shape[1] - 1)
    window = config.window_ms / dt
    vs = float(v.std()) or 1.0
    start = np.array([float(np.percentile(v, 95)), 0.0, 0.0])
    decays = config.decays()

    def decode(z: np.ndarray) -> tuple[float, np.ndarray]:
        return start[0] + vs * z[0], vs * np.asarray(z[1:3])

    def losses(zs: list) -> list[float]:
        dec = [decode(np.asarray(z)) for z in zs]
        fired = threshold_run(v, np.array([d[0] for d in dec]), np.array([d[1] for d in dec]),
                              decays, config.refractory)
        out = []
        for f in fired:
            g = [coincidence_factor(d, m, window_ms=window, duration_ms=duration)
                 for d, m in zip(data, _times(f), strict=True) if d.size]
            out.append(1.0 - (float(np.mean([0.0 if math.isnan(x) else x for x in g]))
                              if g else 0.0))
        return out

    es = cma.CMAEvolutionStrategy(np.zeros(3), 0.5, {
        "popsize": config.popsize, "seed": int(seed) + 1, "verbose": -9,
        "maxiter": config.iterations, "bounds": [-10.0, 10.0]})
    best, best_z = math.inf, np.zeros(3)
    while not es.stop():
        zs = es.ask()
        ls = losses(zs)
        es.tell(zs, ls)
        k = int(np.argmin(ls))
        if ls[k] < best:
            best, best_z = ls[k], np.array(zs[k])
    omega, alpha = decode(best_z)
    return {"a": a, "r": float(r), "c": float(c), "omega": float(omega),
            "alpha": alpha.tolist(), "v0": v0,
            "v_spike": float(vol[spk].mean()) if spk.any() else float(vol.max()),
            "train_gamma": 1.0 - best}


def fit(config: MATConfig, *, train: Assembled, valid: Assembled, layout: TaskLayout,
        seed: int) -> MATModule:
    """One fitted member on the (z-scored) training split; ``seed`` seeds CMA-ES."""
    check(config, layout)
    voltage_head = next((h for h in layout.heads if h.kind == "continuous"), None)
    spike_head = next((h for h in layout.heads if h.kind == "binary"), None)
    if voltage_head is None:
        raise ConfigError("model 'mat' is fitted to voltage: the task needs a continuous "
                          "voltage target (the dataset's outputs)")
    cur = train.x[..., 0].double().numpy()
    vol = train.targets[voltage_head.field][..., 0].double().numpy()
    spk = None if spike_head is None else train.targets[spike_head.field][..., 0].numpy() > 0.5
    mask = train.masks.get(voltage_head.field)
    f = fit_mat(cur, vol, spk, config, seed=seed,
                known=None if mask is None else mask[..., 0].numpy())
    module = build(config, n_inputs=1, n_outputs=layout.n_outputs)
    with torch.no_grad():
        module.theta.copy_(torch.tensor([f["a"], f["r"], f["c"], f["omega"], *f["alpha"]]))
        module.consts.copy_(torch.tensor([f["v0"], f["v_spike"]]))
        for h in layout.heads:
            module.head_kind[h.start] = 1 if h.kind == "binary" else 0
    return module


FAMILY = dict(
    name="mat",
    description="multi-timescale adaptive threshold (Kobayashi 2009): leaky integrator + "
    "2-timescale threshold, CMA-ES on Gamma (no gradient)",
    config=MATConfig,
    build=build,
    fit=fit,
    check=check,
)
