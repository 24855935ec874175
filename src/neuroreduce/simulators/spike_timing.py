"""Simulated spike-timing ground truth: single neurons with intrinsic noise under OU current.

Two task generators in the layout of the spike-timing recordings (one trial per stimulus x
repetition; dense input ``current`` in pA, dense output ``voltage`` in mV with every spike drawn
as one sample at +20 mV, so upward 0 mV crossings mark the spikes; binary target ``spikes``;
group ``stimulus`` whose equal ids are repetitions; ``split`` None):

* ``adex_ou`` — the adaptive exponential integrate-and-fire neuron (AdEx; Brette & Gerstner
  2005, J Neurophysiol 94:3637)::

      C dV/dt = -gL (V - EL) + gL DT exp((V - VT) / DT) - w + I + noise
      tau_w dw/dt = a (V - EL) - w;   V >= VT + 5 DT:  V <- Vr,  w <- w + b

  with the regular-spiking parameters of :data:`ADEX_TRUE` (Brette & Gerstner's values for
  ``EL, VT, DT, tau_w, a, b``; ``C`` and ``gL`` chosen for a 100 MOhm, 20 ms cell so that the
  currents below make it fire at a few to ~40 Hz). Integrated by exponential Euler at
  ``dt_ms / round(dt_ms / 0.05)`` (about 0.05 ms; the recorded current is held over each
  sample, so the recorded current is exactly what the cell received).
* ``hh_ou`` — the "detailed model": a single-compartment Hodgkin-Huxley neuron (NEURON's
  built-in ``hh`` mechanism, the squid axon parameters of Hodgkin & Huxley 1952, J Physiol
  117:500, at 6.3 degC; soma L = diam = 30 um) integrated by NEURON at a fixed 0.01 ms.
  :func:`simulate_hh` returns its cost per simulated second.

The current of stimulus ``s`` is an Ornstein-Uhlenbeck process (exact update on the sample grid)
with mean, standard deviation and correlation time drawn per stimulus from
:data:`OU_RANGES` (the QSNMC-like ranges: mean 150-600 pA, std 50-350 pA, tau 1-3 ms).
Repetitions share the current and differ only by the intrinsic noise: an independent white
current (``noise_pA`` standard deviation per 0.05 ms step, drawn afresh per repetition), so the
intrinsic reliability Gamma_int is high but below 1. ``n_trials = stimuli x`` :data:`REPETITIONS`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.fields import Field, FieldSpec
from neuroreduce.errors import ConfigError
from neuroreduce.simulators.toy_tasks import TaskGenerator, register_task_generator

#: Repetitions per stimulus (the QSNMC 2007 convention).
REPETITIONS = 4
#: Trace duration of the registered generators (ms).
DURATION_MS = 2000.0
#: Voltage drawn at the sample holding a spike (mV).
SPIKE_PEAK_MV = 20.0
#: Ranges of the OU stimulus parameters, drawn uniformly per stimulus.
OU_RANGES = {"mean_pA": (150.0, 600.0), "std_pA": (50.0, 350.0), "tau_ms": (1.0, 3.0)}
#: Target internal integration step (ms) of the AdEx generator.
ADEX_STEP_MS = 0.05
#: Fixed integration step of the Hodgkin-Huxley model (ms).
HH_STEP_MS = 0.01


@dataclass(frozen=True)
class AdExParams:
    """AdEx parameters in physical units (Brette & Gerstner 2005).

    Attributes:
        C_pF: Membrane capacitance (pF).
        gL_nS: Leak conductance (nS).
        EL_mV: Leak reversal (mV).
        VT_mV: Threshold slope factor's midpoint (mV).
        DT_mV: Slope factor Delta_T (mV, > 0).
        tau_w_ms: Adaptation time constant (ms).
        a_nS: Subthreshold adaptation (nS).
        b_pA: Spike-triggered adaptation increment (pA).
        Vr_mV: Reset voltage (mV).
    """

    C_pF: float = 200.0
    gL_nS: float = 10.0
    EL_mV: float = -70.6
    VT_mV: float = -50.4
    DT_mV: float = 2.0
    tau_w_ms: float = 144.0
    a_nS: float = 4.0
    b_pA: float = 80.5
    Vr_mV: float = -58.0

    def reduced(self) -> dict[str, float]:
        """The voltage-unit form :func:`integrate_adex` runs (see there), ``x0 = 0``."""
        return {
            "tau_m": self.C_pF / self.gL_nS, "EL": self.EL_mV, "DT": self.DT_mV,
            "VT": self.VT_mV, "R": 1.0 / self.gL_nS, "x0": 0.0, "tau_w": self.tau_w_ms,
            "a": self.a_nS / self.gL_nS, "b": self.b_pA / self.gL_nS, "Vr": self.Vr_mV,
        }

    @classmethod
    def from_reduced(cls, p: Mapping[str, float]) -> AdExParams:
        """Inverse of :meth:`reduced` (``x0`` is dropped; it is 0 in physical units)."""
        gl = 1.0 / float(p["R"])
        return cls(
            C_pF=float(p["tau_m"]) * gl, gL_nS=gl, EL_mV=float(p["EL"]), VT_mV=float(p["VT"]),
            DT_mV=float(p["DT"]), tau_w_ms=float(p["tau_w"]), a_nS=float(p["a"]) * gl,
            b_pA=float(p["b"]) * gl, Vr_mV=float(p["Vr"]),
        )


#: The generator's true parameters (regular spiking; see the module docstring).
ADEX_TRUE = AdExParams()
#: Names of the reduced AdEx parameters, in the order the fitter uses.
REDUCED_NAMES = ("tau_m", "EL", "DT", "VT", "R", "x0", "tau_w", "a", "b", "Vr")


def integrate_adex(
    current: np.ndarray,
    params: Mapping[str, np.ndarray | float],
    *,
    substeps: int,
    step: float,
    noise: float = 0.0,
    rng: np.random.Generator | None = None,
    v_spike: float = SPIKE_PEAK_MV,
    forced: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run AdEx neurons in reduced (voltage-unit) form, vectorised over leading axes.

    ``tau_m dV/dt = -(V - EL) + DT exp((V - VT)/DT) - w + R (I + x0 + noise)``,
    ``tau_w dw/dt = a (V - EL) - w``; at ``V >= VT + 5 DT``: ``V <- Vr``, ``w <- w + b``.
    Physical units: ``tau_m = C/gL``, ``R = 1/gL``, ``a = a/gL``, ``b = b/gL``, ``w = w/gL``
    (:meth:`AdExParams.reduced`); any affine rescaling of ``V`` and ``I`` (e.g. z-scored data)
    is again a model of this form. Exponential Euler (the right-hand side frozen over a step).

    Args:
        current: ``[..., time]`` input, held constant over each sample interval.
        params: The :data:`REDUCED_NAMES` entries, scalars or arrays broadcasting against
            ``current[..., 0]``; times in the unit of ``step``.
        substeps: Integration steps per sample.
        step: Integration step (time unit of the parameters; ms for physical ones).
        noise: Standard deviation of an independent white input per integration step (input
            units; 0: deterministic).
        rng: Generator of that noise.
        v_spike: Value written at the sample of each spike.
        forced: Optional bool ``[..., time]``: spikes imposed at these samples (reset and
            adaptation jump at the start of the next interval) instead of the threshold (the
            exponential is capped at ``VT + 5 DT``); used to fit the subthreshold dynamics.

    Returns:
        ``(v [..., time], spiked bool [..., time])``: ``v[..., 0]`` is ``EL``; sample ``k``
        holds the state at the end of interval ``k - 1 .. k`` (driven by ``current[..., k-1]``),
        or ``v_spike`` when the neuron fired within it.
    """
    x = np.asarray(current, dtype=np.float64)
    shape = np.broadcast_shapes(x.shape[:-1], *(np.shape(params[n]) for n in REDUCED_NAMES))
    n_time = x.shape[-1]
    p = {n: np.broadcast_to(np.asarray(params[n], dtype=np.float64), shape) for n in REDUCED_NAMES}
    decay_v = np.exp(-step / p["tau_m"])
    decay_w = np.exp(-step / p["tau_w"])
    el, dt_, vt, r, a, b, vr = p["EL"], p["DT"], p["VT"], p["R"], p["a"], p["b"], p["Vr"]
    v_cut = vt + 5.0 * dt_
    drive = np.expand_dims(r, -1) * (x + np.expand_dims(p["x0"], -1))  # [..., time]
    v = np.array(el, dtype=np.float64)
    w = np.zeros(shape)
    out = np.empty(shape + (n_time,))
    fired = np.zeros(shape + (n_time,), dtype=bool)
    out[..., 0] = v
    noise_r = noise * r
    for k in range(1, n_time):
        d = drive[..., k - 1]
        hit = np.zeros(shape, dtype=bool)
        if forced is not None:
            if k > 1:
                f = np.broadcast_to(forced[..., k - 1], shape)
                v = np.where(f, vr, v)
                w = np.where(f, w + b, w)
            for _ in range(substeps):
                arg = np.minimum((v - vt) / dt_, 5.0)
                v_inf = el + dt_ * np.exp(arg) - w + d
                w_inf = a * (v - el)
                v = v_inf + (v - v_inf) * decay_v
                w = w_inf + (w - w_inf) * decay_w
            v = np.minimum(v, v_cut)
            out[..., k] = v
            continue
        for _ in range(substeps):
            arg = np.minimum((v - vt) / dt_, 20.0)
            v_inf = el + dt_ * np.exp(arg) - w + d
            if noise:
                v_inf = v_inf + noise_r * rng.standard_normal(shape)  # type: ignore[union-attr]
            w_inf = a * (v - el)
            v = v_inf + (v - v_inf) * decay_v
            w = w_inf + (w - w_inf) * decay_w
            spk = v >= v_cut
            if spk.any():
                v = np.where(spk, vr, v)
                w = np.where(spk, w + b, w)
                hit |= spk
        out[..., k] = np.where(hit, v_spike, v)
        fired[..., k] = hit
    return out, fired


def ou_currents(
    n_stimuli: int, n_time: int, *, dt_ms: float, rng: np.random.Generator
) -> tuple[np.ndarray, list[dict[str, float]]]:
    """OU currents ``[stimulus, time]`` (pA) and each stimulus's drawn parameters."""
    draws = [
        {k: float(rng.uniform(*OU_RANGES[k])) for k in ("mean_pA", "std_pA", "tau_ms")}
        for _ in range(n_stimuli)
    ]
    mean = np.array([d["mean_pA"] for d in draws])
    std = np.array([d["std_pA"] for d in draws])
    rho = np.exp(-dt_ms / np.array([d["tau_ms"] for d in draws]))
    z = rng.standard_normal((n_stimuli, n_time))
    x = np.empty((n_stimuli, n_time))
    x[:, 0] = z[:, 0]
    scale = np.sqrt(1.0 - rho**2)
    for k in range(1, n_time):
        x[:, k] = rho * x[:, k - 1] + scale * z[:, k]  # exact, stationary unit OU
    return mean[:, None] + std[:, None] * x, draws


def _check_task(n_trials: object, dt_ms: float) -> int:
    if (isinstance(n_trials, bool) or not isinstance(n_trials, int)
            or n_trials < REPETITIONS or n_trials % REPETITIONS):
        raise ConfigError(
            f"n_trials must be a positive multiple of {REPETITIONS} (stimuli x {REPETITIONS} "
            f"repetitions), got {n_trials!r}"
        )
    if not (isinstance(dt_ms, int | float) and math.isfinite(dt_ms) and 0.01 <= dt_ms <= 1.0):
        raise ConfigError(f"dt_ms must be in [0.01, 1] ms for spike timing, got {dt_ms!r}")
    return n_trials // REPETITIONS


def _dataset(
    current: np.ndarray, voltage: np.ndarray, fired: np.ndarray, *, dt_ms: float,
    draws: list[dict[str, float]], provenance: dict,
) -> Dataset:
    """The spike-timing layout from ``[trial, time]`` arrays (trial = stimulus-major)."""
    n_trials = current.shape[0]
    n_stim = n_trials // REPETITIONS
    names = tuple(f"{s:02d}" for s in range(n_stim))
    stim = np.repeat(np.arange(n_stim), REPETITIONS).astype(np.int32)
    params = tuple(
        json.dumps({"stimulus": names[s], "repetition": r, **draws[s]})
        for s in range(n_stim) for r in range(REPETITIONS)
    )
    fields = (
        Field(FieldSpec("spikes", "target", "binary", ("soma",), "spikes"),
              fired[..., None].astype(np.float32)),
        Field(FieldSpec("stimulus", "group", "categorical", classes=names), stim),
    )
    return Dataset(
        inputs=current[..., None].astype(np.float32), outputs=voltage[..., None].astype(np.float32),
        dt_ms=float(dt_ms), input_names=("current",), output_names=("voltage",),
        input_units="pA", output_units="mV", families=tuple(names[s] for s in stim),
        stimulus_params=params, split=None, provenance=provenance, fields=fields,
    )


def simulate_adex_ou(
    n_stimuli: int, *, seed: int = 0, dt_ms: float = 0.2, duration_ms: float = DURATION_MS,
    params: AdExParams = ADEX_TRUE, noise_pA: float = 50.0,
) -> Dataset:
    """The ``adex_ou`` dataset with every setting open (see the module docstring).

    Args:
        n_stimuli: OU stimuli; each is repeated :data:`REPETITIONS` times.
        seed: Seed of the stimuli and the intrinsic noise.
        dt_ms: Sampling interval (ms).
        duration_ms: Trace duration (ms).
        params: The neuron (physical units); recorded in the provenance.
        noise_pA: Intrinsic noise: std of the white current per ~0.05 ms step (pA).
    """
    _check_task(n_stimuli * REPETITIONS, dt_ms)
    if not (math.isfinite(duration_ms) and 10.0 <= duration_ms <= 600_000.0):
        raise ConfigError(f"duration_ms must be in [10, 600000] ms, got {duration_ms!r}")
    if not (math.isfinite(noise_pA) and noise_pA >= 0):
        raise ConfigError(f"noise_pA must be a finite number >= 0, got {noise_pA!r}")
    rng = np.random.default_rng(seed)
    n_time = int(round(duration_ms / dt_ms)) + 1
    currents, draws = ou_currents(n_stimuli, n_time, dt_ms=dt_ms, rng=rng)
    current = np.repeat(currents, REPETITIONS, axis=0)
    substeps = max(1, int(round(dt_ms / ADEX_STEP_MS)))
    step = dt_ms / substeps
    v, fired = integrate_adex(current, params.reduced(), substeps=substeps, step=step,
                              noise=noise_pA, rng=rng)
    provenance = {
        "generator": "adex_ou", "seed": seed, "dt_ms": dt_ms, "duration_ms": duration_ms,
        "integration_step_ms": step, "repetitions": REPETITIONS, "noise_pA": noise_pA,
        "true_params": asdict(params), "model": "AdEx (Brette & Gerstner 2005)",
    }
    return _dataset(current, v, fired, dt_ms=dt_ms, draws=draws, provenance=provenance)


# ---------------------------------------------------------------------------- Hodgkin-Huxley
#: Soma of the HH model: a cylinder L = diam (um).
HH_DIAM_UM = 30.0


@dataclass(frozen=True)
class HHRun:
    """Result of :func:`simulate_hh`.

    Attributes:
        voltage: ``[trial, time]`` mV at the input's samples (spikes as NEURON computed them).
        spikes: bool ``[trial, time]``: upward 0 mV crossings (sample after the crossing).
        wall_s: Wall time of the NEURON run (s).
        cost_s_per_simulated_s: ``wall_s / (trials * duration)``: seconds per simulated
            second of one neuron.
    """

    voltage: np.ndarray
    spikes: np.ndarray
    wall_s: float
    cost_s_per_simulated_s: float


def simulate_hh(
    current_pA: np.ndarray, dt_ms: float, *, noise_pA: float = 0.0, seed: int = 0,
    step_ms: float = HH_STEP_MS,
) -> HHRun:
    """Hodgkin-Huxley neurons (NEURON ``hh``, fixed step) under recorded currents.

    Args:
        current_pA: ``[trial, time]`` currents (pA), one sample every ``dt_ms``; each trial is
            one soma (all run together in one NEURON simulation).
        dt_ms: Sampling interval of the current and the returned voltage (ms).
        noise_pA: Intrinsic noise: std of an independent white current per 0.05 ms (pA).
        seed: Seed of that noise.
        step_ms: Fixed integration step (ms).

    Returns:
        :class:`HHRun` (voltage, spikes, measured cost).
    """
    from neuron import h

    x = np.asarray(current_pA, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 2 or not np.isfinite(x).all():
        raise ConfigError(f"simulate_hh needs finite currents [trial, time>=2]; got {x.shape}")
    h.load_file("stdrun.hoc")
    n_trials, n_time = x.shape
    rng = np.random.default_rng(seed)
    sub = max(1, int(round(dt_ms / ADEX_STEP_MS)))
    fine = np.repeat(x, sub, axis=1)  # held over each sample, as the AdEx generator does
    if noise_pA:
        fine = fine + noise_pA * rng.standard_normal(fine.shape)
    t_fine = h.Vector(np.arange(fine.shape[1]) * (dt_ms / sub))
    keep = []
    records = []
    for i in range(n_trials):
        sec = h.Section(name=f"hh_soma_{i}")
        sec.L = sec.diam = HH_DIAM_UM
        sec.insert("hh")
        clamp = h.IClamp(sec(0.5))
        clamp.delay, clamp.dur = 0.0, 1e9
        amp = h.Vector(fine[i] * 1e-3)  # nA
        amp.play(clamp._ref_amp, t_fine, False)  # stepwise (held) between points
        rec = h.Vector().record(sec(0.5)._ref_v, dt_ms)
        keep += [sec, clamp, amp]
        records.append(rec)
    h.dt = step_ms
    h.steps_per_ms = 1.0 / step_ms
    h.celsius = 6.3
    start = time.perf_counter()
    h.finitialize(-65.0)
    h.continuerun((n_time - 1) * dt_ms + 0.5 * step_ms)  # the last sample included
    wall = time.perf_counter() - start
    v = np.stack([_length(np.asarray(r), n_time) for r in records])
    spikes = np.zeros(v.shape, dtype=bool)
    spikes[:, 1:] = (v[:, :-1] < 0.0) & (v[:, 1:] >= 0.0)
    del keep
    duration_s = (n_time - 1) * dt_ms / 1000.0
    return HHRun(v, spikes, wall, wall / (n_trials * duration_s))


def _length(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` cut or padded (with its last value) to ``n`` samples."""
    return x[:n] if x.size >= n else np.concatenate([x, np.full(n - x.size, x[-1])])


def simulate_hh_ou(
    n_stimuli: int, *, seed: int = 0, dt_ms: float = 0.2, duration_ms: float = DURATION_MS,
    noise_pA: float = 50.0,
) -> Dataset:
    """The ``hh_ou`` dataset (the same OU currents as ``adex_ou`` for equal seeds)."""
    _check_task(n_stimuli * REPETITIONS, dt_ms)
    rng = np.random.default_rng(seed)
    n_time = int(round(duration_ms / dt_ms)) + 1
    currents, draws = ou_currents(n_stimuli, n_time, dt_ms=dt_ms, rng=rng)
    current = np.repeat(currents, REPETITIONS, axis=0)
    run = simulate_hh(current, dt_ms, noise_pA=noise_pA, seed=seed + 1)
    provenance = {
        "generator": "hh_ou", "seed": seed, "dt_ms": dt_ms, "duration_ms": duration_ms,
        "integration_step_ms": HH_STEP_MS, "repetitions": REPETITIONS, "noise_pA": noise_pA,
        "model": "Hodgkin-Huxley 1952 squid axon (NEURON hh, 6.3 degC), L = diam = 30 um",
        "hh_wall_s": round(run.wall_s, 4),
        "hh_cost_s_per_simulated_s": run.cost_s_per_simulated_s,
    }
    return _dataset(current, run.voltage, run.spikes, dt_ms=dt_ms, draws=draws,
                    provenance=provenance)


def _adex_task(n_trials: int, *, seed: int = 0, dt_ms: float = 0.2) -> Dataset:
    return simulate_adex_ou(_check_task(n_trials, dt_ms), seed=seed, dt_ms=dt_ms)


def _hh_task(n_trials: int, *, seed: int = 0, dt_ms: float = 0.2) -> Dataset:
    return simulate_hh_ou(_check_task(n_trials, dt_ms), seed=seed, dt_ms=dt_ms)


for _gen in (
    TaskGenerator("adex_ou", "AdEx neuron + intrinsic noise under OU current, 4 repetitions "
                  "per stimulus, 2 s: current -> voltage + spikes", _adex_task, 0.2),
    TaskGenerator("hh_ou", "Hodgkin-Huxley neuron (NEURON, 0.01 ms) + intrinsic noise under "
                  "OU current, 4 repetitions per stimulus, 2 s", _hh_task, 0.2),
):
    register_task_generator(_gen)
