"""``adex``: the adaptive exponential integrate-and-fire neuron fitted by CMA-ES.

The AdEx model (Brette & Gerstner 2005, J Neurophysiol 94:3637) in the reduced form of
:func:`~neuroreduce.simulators.spike_timing.integrate_adex` (10 parameters: ``tau_m, EL, DT,
VT, R, x0, tau_w, a, b, Vr``). That form is closed under affine changes of the voltage and
current units, so the family fits it directly on the z-scored training data the trainer
assembles (``x0``, an input offset, is 0 in physical units and absorbs the current's mean here);
times are in samples of ``sample_ms``.

**Fit** (:func:`fit_adex`): CMA-ES (Hansen & Ostermeier 2001; the ``cma`` package) over the
parameters (log scale for the positive ones), started from a linear subthreshold fit (an
autoregressive ``V[k] = alpha V[k-1] + beta I[k-1] + c`` on samples away from spikes gives
``tau_m``, ``R`` and ``EL``), minimising on free-running simulations of the training traces

    loss = RMSE(subthreshold V) / std(subthreshold V) + spike_weight * (1 - mean Gamma)

in two stages: first all parameters on the subthreshold RMSE of runs whose spikes (reset and
adaptation jump) are imposed at the data's spike times (``forced_iterations``), then the
threshold parameters ``VT, DT`` (:data:`SPIKE_PARAMS`) on the full loss: a 13 x 9 grid around
the first stage's values, then CMA-ES from the grid's best (``iterations``). The
RMSE leaves out samples from 1 ms before to 5 ms after every data spike (not the model's: a
spurious model spike, drawn at the spike value, counts as a large error; excluding model
spikes too would let a model that fires all the time escape the RMSE) and
Gamma is the coincidence factor (+-``window_ms``) per trace (a trace with data spikes whose
model train is undefined counts Gamma = 0). Data spikes are the ``spikes`` target when the task
has one, else upward crossings of the midpoint between the median and the maximum voltage.

**Output**: the voltage head gets the simulated voltage, with each spike drawn as one sample at
the data's mean value at spike samples (+20 mV for ``adex_ou``, so 0 mV crossings mark the
spikes after de-normalisation); a binary ``spikes`` head gets logit +8 at spike samples, -8
elsewhere. Parameters: 10 (plus the spike value).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from neuroreduce.errors import ConfigError
from neuroreduce.evaluation.spikes import coincidence_factor
from neuroreduce.models.mlp import check_int, check_positive
from neuroreduce.simulators.spike_timing import REDUCED_NAMES, integrate_adex

if TYPE_CHECKING:  # only annotations: importing training here would be circular
    from neuroreduce.training.assemble import Assembled
    from neuroreduce.training.task import TaskLayout

#: Logit magnitude written to a binary spikes head.
SPIKE_LOGIT = 8.0
#: Parameters the second (spike-timing) stage adjusts; the first fixes the others.
SPIKE_PARAMS = ("VT", "DT")
#: Offsets (scaled coordinates) of the grid the second stage starts with: VT in steps of
#: half the voltage's standard deviation, DT by factors of exp(0.25).
GRID_VT = tuple(np.linspace(-3.0, 3.0, 13))
GRID_DT = tuple(np.linspace(-2.0, 2.0, 9))
#: Parameters kept positive (fitted on a log scale).
_POSITIVE = ("tau_m", "DT", "R", "tau_w")


@dataclass(frozen=True)
class AdExConfig:
    """Hyper-parameters of ``adex``.

    Attributes:
        hidden: Unused (the model has 10 parameters); kept for the registry.
        sample_ms: The data's sampling interval (ms): sets the ~0.05 ms integration step,
            the coincidence window and the spike-exclusion windows in samples.
        popsize: CMA-ES population size.
        forced_iterations: CMA-ES generations of the first stage (subthreshold voltage with
            resets imposed at the data spikes).
        iterations: CMA-ES generations of the second stage (free runs, voltage + spikes).
        step_ms: Integration step (ms; rounded to divide ``sample_ms``).
        sigma0: Initial CMA-ES step size (in the scaled parameter coordinates).
        spike_weight: Weight of ``1 - Gamma`` against the normalised subthreshold RMSE.
        window_ms: Coincidence half-window of the spike term (ms).
        max_trials: Most training traces to simulate per evaluation (seeded subset).
    """

    hidden: int = 1
    sample_ms: float = 0.2
    popsize: int = 24
    forced_iterations: int = 60
    iterations: int = 20
    step_ms: float = 0.1
    sigma0: float = 0.5
    spike_weight: float = 1.0
    window_ms: float = 2.0
    max_trials: int = 12

    def __post_init__(self) -> None:
        check_int("hidden", self.hidden)
        check_int("popsize", self.popsize, minimum=4)
        check_int("iterations", self.iterations)
        check_int("forced_iterations", self.forced_iterations, minimum=0)
        check_int("max_trials", self.max_trials)
        for name in ("sample_ms", "sigma0", "window_ms", "step_ms"):
            check_positive(name, getattr(self, name))
        w = self.spike_weight
        if isinstance(w, bool) or not isinstance(w, int | float) or not (
            math.isfinite(w) and w >= 0
        ):
            raise ConfigError(f"spike_weight must be a finite number >= 0, got {w!r}")

    @property
    def substeps(self) -> int:
        return max(1, int(round(self.sample_ms / self.step_ms)))


class AdExModule(nn.Module):
    """A fitted AdEx neuron as a module: ``[batch, time, 1] -> [batch, time, n_outputs]``.

    State (all parameters, so that saving and best-weight copies keep them): ``theta [10]``
    reduced parameters (:data:`REDUCED_NAMES`, times in samples), ``v_spike`` (value drawn at
    spikes), ``head_kind [n_outputs]`` (0: voltage, 1: spike logit).
    """

    def __init__(self, n_outputs: int, substeps: int) -> None:
        super().__init__()
        self.substeps = substeps
        self.theta = nn.Parameter(torch.zeros(len(REDUCED_NAMES), dtype=torch.float64))
        # fitted values, not trained: parameters (not buffers) so best-weight copies keep them
        self.v_spike = nn.Parameter(torch.zeros((), dtype=torch.float64), requires_grad=False)
        self.head_kind = nn.Parameter(torch.zeros(n_outputs, dtype=torch.float64),
                                      requires_grad=False)

    def params(self) -> dict[str, float]:
        return dict(zip(REDUCED_NAMES, self.theta.detach().double().tolist(), strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cur = x[..., 0].detach().double().cpu().numpy()
        p = self.params()
        if all(v == 0 for v in p.values()):  # unfitted: silence
            return torch.zeros(*x.shape[:-1], self.head_kind.numel(), dtype=x.dtype)
        v, fired = simulate(cur, p, self.substeps, float(self.v_spike))
        kind = self.head_kind.detach().cpu().numpy()
        out = np.where(kind == 0, v[..., None], np.where(fired, SPIKE_LOGIT, -SPIKE_LOGIT)[
            ..., None])
        return torch.as_tensor(out, dtype=x.dtype, device=x.device)


def simulate(current: np.ndarray, p: dict, substeps: int, v_spike: float, forced=None):
    """:func:`integrate_adex` in sample time units, ``current [..., time]``."""
    return integrate_adex(current, p, substeps=substeps, step=1.0 / substeps, v_spike=v_spike,
                          forced=forced)


def build(config: AdExConfig, *, n_inputs: int, n_outputs: int) -> AdExModule:
    """An unfitted AdEx module (needs exactly one input channel, the current)."""
    if n_inputs != 1:
        raise ConfigError(f"model 'adex' takes one input channel (the current), got {n_inputs}")
    return AdExModule(n_outputs, config.substeps)


def check(config: AdExConfig, layout: TaskLayout) -> None:
    """``ConfigError`` unless the task maps one current to voltage and/or binary spikes."""
    if layout.n_inputs != 1:
        raise ConfigError(f"model 'adex' takes one input channel (the current); the task has "
                          f"{layout.n_inputs}")
    for h in layout.heads:
        if len(h.channels) != 1 or h.kind not in ("continuous", "binary"):
            raise ConfigError(f"model 'adex' predicts one voltage and/or one binary spike "
                              f"channel; {h.field!r} is {h.kind} with {len(h.channels)} channels")


# ---------------------------------------------------------------------------- fitting
def _detect(v: np.ndarray) -> np.ndarray:
    """bool ``[trial, time]``: upward crossings of the midpoint of median and max."""
    level = 0.5 * (np.median(v) + v.max())
    out = np.zeros(v.shape, dtype=bool)
    out[:, 1:] = (v[:, :-1] < level) & (v[:, 1:] >= level)
    return out


def _near(spikes: np.ndarray, before: int, after: int) -> np.ndarray:
    """bool mask of samples within ``[-before, +after]`` samples of a spike (per row)."""
    near = np.zeros(spikes.shape, dtype=bool)
    for shift in range(-before, after + 1):
        if shift >= 0:
            near[..., shift:] |= spikes[..., : spikes.shape[-1] - shift]
        else:
            near[..., :shift] |= spikes[..., -shift:]
    return near


def _times(spikes: np.ndarray) -> list[np.ndarray]:
    return [np.flatnonzero(row).astype(np.float64) for row in spikes.reshape(-1, spikes.shape[-1])]


def initial_guess(current: np.ndarray, voltage: np.ndarray, near: np.ndarray) -> dict:
    """Data-driven start (see the module docstring); times in samples."""
    ok = ~near[:, 1:] & ~near[:, :-1]
    y, v0, i0 = voltage[:, 1:][ok], voltage[:, :-1][ok], current[:, :-1][ok]
    design = np.column_stack([v0, i0, np.ones_like(v0)])
    alpha, beta, c = np.linalg.lstsq(design, y, rcond=None)[0]
    alpha = float(np.clip(alpha, 0.5, 0.9999))
    tau = -1.0 / math.log(alpha)
    r = max(beta / (1.0 - alpha), 1e-6)
    el = c / (1.0 - alpha)
    sub = voltage[~near]
    s = float(sub.std()) or 1.0
    return {"tau_m": tau, "EL": el, "DT": 0.3 * s, "VT": float(np.percentile(sub, 99.5)),
            "R": r, "x0": 0.0, "tau_w": 5.0 * tau, "a": 0.2, "b": 0.5 * s,
            "Vr": float(np.median(sub))}


def _segment(arrays: tuple[np.ndarray, ...], length: int, burn: int) -> tuple[np.ndarray, ...]:
    """Overlapping segments ``[segment, length]`` of ``[trial, time]`` arrays, and (last) a
    bool mask of their scored samples (all of the first segment of a trace, after ``burn`` in
    the others); the scored parts tile each trace once."""
    n_trials, n_time = arrays[0].shape
    if length >= n_time or length <= burn:
        return (*arrays, np.ones(arrays[0].shape, dtype=bool))
    starts = list(range(0, n_time - length, length - burn)) + [n_time - length]
    pieces: list[list[np.ndarray]] = [[] for _ in range(len(arrays) + 1)]
    for i in range(n_trials):
        scored_until = 0
        for s in starts:
            mask = np.zeros(length, dtype=bool)
            mask[max(0, scored_until - s):] = True
            scored_until = s + length
            for out, arr in zip(pieces, (*(a[i] for a in arrays), mask), strict=True):
                out.append(arr[s:s + length] if arr.shape[0] == n_time else arr)
    return tuple(np.stack(p) for p in pieces)


class _Coords:
    """Scaled coordinates for CMA-ES: log for positive parameters, else shift/scale.

    ``EL`` is searched as the effective rest ``EL + R x0`` (what the subthreshold voltage
    pins down), so that moving ``x0`` (scale: the input's standard deviation) does not move
    the rest; with z-scored inputs ``x0`` sits a few scales away from 0.
    """

    def __init__(self, start: dict, v_scale: float, i_scale: float) -> None:
        self.start = dict(start, EL=start["EL"] + start["R"] * start["x0"])
        self.scale = {"tau_m": 0.5, "DT": 0.5, "R": 0.5, "tau_w": 1.0, "a": 0.5,
                      "EL": v_scale, "VT": v_scale, "Vr": v_scale, "b": v_scale,
                      "x0": i_scale}

    def decode(self, z: np.ndarray) -> dict:
        out = {}
        for k, name in enumerate(REDUCED_NAMES):
            if name in _POSITIVE:
                out[name] = self.start[name] * math.exp(self.scale[name] * z[k])
            else:
                out[name] = self.start[name] + self.scale[name] * z[k]
        out["EL"] -= out["R"] * out["x0"]
        return out


@dataclass(frozen=True)
class AdExFit:
    """Result of :func:`fit_adex`.

    Attributes:
        params: Fitted reduced parameters (:data:`REDUCED_NAMES`; times in units of ``dt``).
        loss: Best loss found.
        evaluations: Loss evaluations (population members simulated).
    """

    params: dict
    loss: float
    evaluations: int


def fit_adex(
    current: np.ndarray, voltage: np.ndarray, spikes: np.ndarray | None = None, *,
    dt: float = 1.0, sample_ms: float = 0.2, popsize: int = 24, iterations: int = 20,
    sigma0: float = 0.5, spike_weight: float = 1.0, window_ms: float = 2.0, seed: int = 0,
    start: dict | None = None, forced_iterations: int = 60, segment_ms: float | None = None,
    burn_in_ms: float = 500.0, step_ms: float = 0.1, known: np.ndarray | None = None,
) -> AdExFit:
    """Fit the reduced AdEx to traces by CMA-ES (see the module docstring).

    Args:
        current: ``[trial, time]`` input (any units).
        voltage: ``[trial, time]`` voltage (any units; spikes as drawn in the data).
        spikes: bool ``[trial, time]`` data spike samples (None: detected from ``voltage``).
        dt: Time per sample in the unit wanted for the fitted time constants (1: samples;
            ``sample_ms``: ms).
        sample_ms: The sampling interval in ms (integration step ~0.05 ms, windows).
        popsize: CMA-ES population size.
        forced_iterations: CMA-ES generations of the first stage (subthreshold voltage with
            resets imposed at the data spikes).
        iterations: CMA-ES generations of the second stage (free runs, voltage + spikes).
        step_ms: Integration step (ms; rounded to divide ``sample_ms``).
        sigma0: Initial step size (scaled coordinates).
        spike_weight: Weight of the spike term.
        window_ms: Coincidence half-window (ms).
        seed: CMA-ES seed.
        start: Starting parameters (default: :func:`initial_guess`).
        forced_iterations: Generations of the first stage (subthreshold RMSE with resets
            imposed at the data spikes; 0: skip it).
        segment_ms: If given, the traces are cut into overlapping segments this long,
            simulated side by side (for long recordings: the cost of a generation grows with
            the segment length, not with the number of segments); None: whole traces.
        burn_in_ms: Start of each segment (but the first) that is simulated, not scored
            (each segment starts at rest, so this should be a few ``tau_w``).
        step_ms: Integration step (ms), rounded to divide ``sample_ms``.
        known: bool ``[trial, time]``: voltage samples that count (None: all); the others
            (e.g. masked targets) are simulated through but never scored.
    """
    import cma

    cur = np.asarray(current, dtype=np.float64)
    vol = np.asarray(voltage, dtype=np.float64)
    spk = _detect(vol) if spikes is None else np.asarray(spikes, dtype=bool)
    substeps = max(1, int(round(sample_ms / step_ms)))
    before, after = max(1, round(1.0 / sample_ms)), max(1, round(5.0 / sample_ms))
    ok = np.ones(vol.shape, dtype=bool) if known is None else np.asarray(known, dtype=bool)
    near = _near(spk, before, after) | ~ok
    v_spike = float(vol[spk].mean()) if spk.any() else float(vol.max())
    v_scale = float(vol[~near].std()) or 1.0
    window = window_ms / sample_ms
    guess = initial_guess(cur, vol, near) if start is None else {
        k: (v / dt if k in ("tau_m", "tau_w") else v) for k, v in start.items()}
    coords = _Coords(guess, v_scale, float(cur.std()) or 1.0)
    seg_len = cur.shape[-1] if segment_ms is None else max(2, round(segment_ms / sample_ms))
    cur, vol, spk, ok, scored = _segment((cur, vol, spk, ok), seg_len,
                                         round(burn_in_ms / sample_ms))
    near = _near(spk, before, after)
    counted = scored & ~near & ok
    data_times = _times(spk & scored)
    durations = (scored.sum(axis=1) - 1).astype(np.float64)

    def stacked_params(zs: list[np.ndarray]) -> dict:
        ps = [coords.decode(z) for z in zs]
        return {n: np.array([p[n] for p in ps])[:, None] for n in REDUCED_NAMES}

    def forced_losses(zs: list[np.ndarray]) -> list[float]:
        with np.errstate(over="ignore", invalid="ignore"):
            v, _ = simulate(cur[None], stacked_params(zs), substeps, v_spike, forced=spk[None])
        err = np.where(counted[None], v - vol[None], 0.0)
        rmse = np.sqrt((err**2).sum(axis=(1, 2)) / max(1, int(counted.sum()))) / v_scale
        return [float(x) if math.isfinite(x) else 10.0 for x in rmse]

    def losses(zs: list[np.ndarray]) -> list[float]:
        with np.errstate(over="ignore", invalid="ignore"):
            v, fired = simulate(cur[None], stacked_params(zs), substeps, v_spike)
        out = []
        for m in range(len(zs)):
            keep = counted  # model spikes off the data's count as (large) voltage errors
            err = v[m][keep] - vol[keep]
            rmse = float(np.sqrt(np.mean(err**2))) / v_scale if keep.any() else 10.0
            if not math.isfinite(rmse):
                rmse = 10.0
            gammas = []
            for d, f, dur in zip(data_times, _times(fired[m] & scored), durations, strict=True):
                if d.size == 0:
                    continue
                g = coincidence_factor(d, f, window_ms=window, duration_ms=dur)
                gammas.append(0.0 if math.isnan(g) else g)
            gamma = float(np.mean(gammas)) if gammas else 1.0
            out.append(min(rmse, 10.0) + spike_weight * (1.0 - gamma))
        return out

    best_z, evals = np.zeros(len(REDUCED_NAMES)), 0
    best_loss = math.inf
    spike_idx = [REDUCED_NAMES.index(n) for n in SPIKE_PARAMS]
    stages = ((forced_losses, list(range(len(REDUCED_NAMES))), sigma0, forced_iterations),
              (losses, spike_idx, sigma0, iterations))
    for stage, (loss_fn, active, sigma, n_iter) in enumerate(stages):
        if n_iter == 0:
            continue
        base = best_z.copy()
        if stage == 1:  # a coarse grid over (VT, DT) first: the spike loss is rugged
            grid = [base.copy() for _ in range(len(GRID_VT) * len(GRID_DT))]
            for z, (u, d) in zip(grid, itertools.product(GRID_VT, GRID_DT), strict=True):
                z[spike_idx] += (u, d)
            ls = loss_fn(grid)
            evals += len(grid)
            base = grid[int(np.argmin(ls))]
            sigma = 0.5 * sigma

        def full(z_sub, base=base, active=active):
            z = base.copy()
            z[active] = z_sub
            return z

        es = cma.CMAEvolutionStrategy(
            base[active], sigma,
            {"popsize": popsize, "seed": int(seed) + 1 + stage, "verbose": -9,
             "maxiter": n_iter, "bounds": [-6.0, 6.0]},
        )
        best_loss = math.inf
        while not es.stop():
            zs = es.ask()
            ls = loss_fn([full(z) for z in zs])
            evals += len(zs)
            es.tell(zs, ls)
            k = int(np.argmin(ls))
            if ls[k] < best_loss:
                best_loss, best_z = ls[k], full(np.array(zs[k]))
    if iterations:  # re-check the winner against the grid's best with a fresh evaluation
        final = losses([best_z, base])
        evals += 2
        best_loss, best_z = min(zip(final, (best_z, base), strict=True), key=lambda t: t[0])
    params = coords.decode(best_z)
    for name in ("tau_m", "tau_w"):
        params[name] *= dt
    return AdExFit(params, float(best_loss), evals)


def fit(
    config: AdExConfig, *, train: Assembled, valid: Assembled, layout: TaskLayout, seed: int
) -> AdExModule:
    """One fitted member on the (z-scored) training split; ``seed`` seeds CMA-ES and the
    subset of traces."""
    check(config, layout)
    voltage_head = next((h for h in layout.heads if h.kind == "continuous"), None)
    spike_head = next((h for h in layout.heads if h.kind == "binary"), None)
    if voltage_head is None:
        raise ConfigError("model 'adex' is fitted to voltage: the task needs a continuous "
                          "voltage target (the dataset's outputs)")
    cur = train.x[..., 0].double().numpy()
    vol = train.targets[voltage_head.field][..., 0].double().numpy()
    spk = None if spike_head is None else train.targets[spike_head.field][..., 0].numpy() > 0.5
    mask = train.masks.get(voltage_head.field)
    known = None if mask is None else mask[..., 0].numpy()
    rng = np.random.default_rng(seed)
    if cur.shape[0] > config.max_trials:
        idx = np.sort(rng.choice(cur.shape[0], config.max_trials, replace=False))
        cur, vol = cur[idx], vol[idx]
        spk = None if spk is None else spk[idx]
        known = None if known is None else known[idx]
    result = fit_adex(cur, vol, spk, dt=1.0, sample_ms=config.sample_ms,
                      popsize=config.popsize, iterations=config.iterations,
                      sigma0=config.sigma0, spike_weight=config.spike_weight,
                      window_ms=config.window_ms, seed=seed,
                      forced_iterations=config.forced_iterations, step_ms=config.step_ms,
                      known=known)
    module = build(config, n_inputs=1, n_outputs=layout.n_outputs)
    spikes = _detect(vol) if spk is None else spk
    with torch.no_grad():
        module.theta.copy_(torch.tensor([result.params[n] for n in REDUCED_NAMES]))
        module.v_spike.fill_(float(vol[spikes].mean()) if spikes.any() else float(vol.max()))
        for h in layout.heads:
            module.head_kind[h.start] = 1 if h.kind == "binary" else 0
    return module


FAMILY = dict(
    name="adex",
    description="AdEx neuron (Brette & Gerstner 2005) fitted by CMA-ES on subthreshold V + "
    "spike timing (no gradient)",
    config=AdExConfig,
    build=build,
    fit=fit,
    check=check,
)
