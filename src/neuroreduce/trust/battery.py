"""A battery of held-out stimulus families that probe generalisation (issue 14, part 1).

The diverse training families (:mod:`neuroreduce.stimuli`) draw every input channel on its own,
within the scenario's amplitude range and with onsets early in the trial. The battery is built
to differ from them on purpose, one property per family:

=====================  =========================================================================
``bat_in_phase``       one smoothed-noise waveform drives every input (cross-correlation ~ +1)
``bat_anti_phase``     even inputs get ``A u(t)``, odd inputs ``A (1 - u(t))`` (correlation -1)
``bat_one_silent``     one input stays exactly 0, the others get independent smoothed noise
``bat_broadband``      white-like noise (correlation time 1-2 samples), full band to Nyquist
``bat_narrowband``     band-pass noise, 10 % bandwidth around 20-100 Hz (above the sines' band)
``bat_sparse_events``  1-4 brief (0.5-3 ms) rectangular pulses at random times, else 0
``bat_late_onset``     silence until 70-90 % of the trial, then a step or noise
``bat_slow_drift``     a monotone rise (or rise and fall) over the whole trial, one cycle
``bat_over_range``     smoothed noise or steps with peak amplitude 1.0-1.5x the range's maximum
=====================  =========================================================================

Each is a *trial family* (all channels drawn together, :func:`neuroreduce.stimuli.
register_trial_family`) registered as *held out*: ``families = ["bat_in_phase", ...]`` reaches
them in experiment files and in ``neuroreduce simulate --families``, and a ``role = "train"``
dataset refuses them unless it sets ``allow_held_out = true``. Currents are in nA, within
``[0, A]`` with ``A`` drawn in the amplitude range (``bat_over_range``: in ``[hi, 1.5 hi]``);
every waveform is 0 at ``t = 0``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import butter, lfilter, sosfiltfilt

from neuroreduce.stimuli import register_trial_family

#: How far beyond the training range's maximum ``bat_over_range`` goes (peak <= factor * max).
OVER_RANGE_FACTOR = 1.5


def battery_families() -> list[str]:
    """Names of the battery families, in registration order."""
    return list(_BATTERY)


def _grid(t_ms: np.ndarray) -> tuple[float, float]:
    """``(duration, dt)`` in ms."""
    return float(t_ms[-1]), float(t_ms[1] - t_ms[0])


def _unit(x: np.ndarray) -> np.ndarray:
    """``x`` rescaled to ``[0, 1]`` (constant -> ones)."""
    span = float(x.max() - x.min())
    return (x - x.min()) / span if span > 0 else np.ones_like(x)


def _fade_in(t_ms: np.ndarray, onset_ms: float, rise_ms: float) -> np.ndarray:
    """Raised-cosine envelope: 0 before ``onset_ms``, 1 after ``onset_ms + rise_ms``."""
    return 0.5 * (1.0 - np.cos(np.pi * np.clip((t_ms - onset_ms) / rise_ms, 0.0, 1.0)))


def _smooth_noise(rng: np.random.Generator, t_ms: np.ndarray, tau_ms: float) -> np.ndarray:
    """Unit-range Ornstein-Uhlenbeck noise with correlation time ``tau_ms`` (exact update)."""
    _, dt = _grid(t_ms)
    decay = math.exp(-dt / max(tau_ms, dt))
    kicks = rng.standard_normal(t_ms.size) * math.sqrt(1.0 - decay**2)
    kicks[0] = rng.standard_normal()
    return _unit(lfilter([1.0], [1.0, -decay], kicks))


def _amp(rng: np.random.Generator, amp: tuple[float, float]) -> float:
    return float(rng.uniform(amp[0], amp[1]))


def _onset(rng: np.random.Generator, t_ms: np.ndarray, lo: float, hi: float) -> float:
    duration, dt = _grid(t_ms)
    return max(float(rng.uniform(lo, hi)) * duration, dt)


def _shared_unit(rng: np.random.Generator, t_ms: np.ndarray) -> tuple[np.ndarray, dict]:
    """A smoothed-noise unit waveform faded in after an onset, and its parameters."""
    duration, dt = _grid(t_ms)
    tau = float(np.exp(rng.uniform(np.log(0.01), np.log(0.1)))) * duration
    on = _onset(rng, t_ms, 0.02, 0.2)
    rise = max(0.05 * duration, dt)
    return _smooth_noise(rng, t_ms, tau) * _fade_in(t_ms, on, rise), {
        "onset_ms": on, "tau_ms": tau, "rise_ms": rise}


def _in_phase(rng, t_ms, amp, n_inputs):
    unit, p = _shared_unit(rng, t_ms)
    gains = rng.uniform(0.8, 1.0, size=n_inputs)
    a = _amp(rng, amp)
    waves = np.stack([a * g * unit for g in gains], axis=1)
    return waves, [{"amplitude_na": a * float(g), **p} for g in gains]


def _anti_phase(rng, t_ms, amp, n_inputs):
    unit, p = _shared_unit(rng, t_ms)
    a = _amp(rng, amp)
    env = _fade_in(t_ms, p["onset_ms"], p["rise_ms"])
    waves = np.stack([a * unit if j % 2 == 0 else a * (1.0 - unit) * env
                      for j in range(n_inputs)], axis=1)
    return waves, [{"amplitude_na": a, "inverted": bool(j % 2), **p} for j in range(n_inputs)]


def _one_silent(rng, t_ms, amp, n_inputs):
    silent = int(rng.integers(0, n_inputs))
    waves = np.zeros((t_ms.size, n_inputs))
    params = []
    for j in range(n_inputs):
        unit, p = _shared_unit(rng, t_ms)
        a = 0.0 if j == silent else _amp(rng, amp)
        waves[:, j] = a * unit
        params.append({"amplitude_na": a, "silent": j == silent, **p})
    return waves, params


def _broadband(rng, t_ms, amp, n_inputs):
    duration, dt = _grid(t_ms)
    waves = np.zeros((t_ms.size, n_inputs))
    params = []
    for j in range(n_inputs):
        a = _amp(rng, amp)
        tau = float(rng.uniform(1.0, 2.0)) * dt
        on = _onset(rng, t_ms, 0.02, 0.2)
        waves[:, j] = a * _smooth_noise(rng, t_ms, tau) * _fade_in(t_ms, on, max(0.02 * duration,
                                                                                  dt))
        params.append({"amplitude_na": a, "tau_ms": tau, "onset_ms": on})
    return waves, params


def _narrowband(rng, t_ms, amp, n_inputs):
    duration, dt = _grid(t_ms)
    nyquist = 500.0 / dt
    waves = np.zeros((t_ms.size, n_inputs))
    params = []
    for j in range(n_inputs):
        a = _amp(rng, amp)
        f0 = min(float(np.exp(rng.uniform(np.log(20.0), np.log(100.0)))), 0.4 * nyquist)
        sos = butter(2, [0.95 * f0 / nyquist, 1.05 * f0 / nyquist], btype="band", output="sos")
        band = sosfiltfilt(sos, rng.standard_normal(t_ms.size))
        on = _onset(rng, t_ms, 0.02, 0.2)
        waves[:, j] = a * _unit(band) * _fade_in(t_ms, on, max(0.05 * duration, dt))
        params.append({"amplitude_na": a, "centre_hz": f0, "bandwidth": 0.1, "onset_ms": on})
    return waves, params


def _sparse_events(rng, t_ms, amp, n_inputs):
    duration, dt = _grid(t_ms)
    waves = np.zeros((t_ms.size, n_inputs))
    params = []
    for j in range(n_inputs):
        a = _amp(rng, amp)
        n = int(rng.integers(1, 5))
        starts = np.sort(rng.uniform(0.05, 0.95, size=n)) * duration
        widths = np.maximum(rng.uniform(0.5, 3.0, size=n), dt)
        for s, w in zip(starts, widths, strict=True):
            waves[(t_ms >= s) & (t_ms < s + w), j] = a
        params.append({"amplitude_na": a, "event_times_ms": starts.tolist(),
                       "widths_ms": widths.tolist()})
    return waves, params


def _late_onset(rng, t_ms, amp, n_inputs):
    duration, dt = _grid(t_ms)
    waves = np.zeros((t_ms.size, n_inputs))
    params = []
    for j in range(n_inputs):
        a = _amp(rng, amp)
        on = _onset(rng, t_ms, 0.7, 0.9)
        noisy = bool(rng.integers(0, 2))
        unit = _smooth_noise(rng, t_ms, 0.03 * duration) if noisy else np.ones_like(t_ms)
        waves[:, j] = np.where(t_ms >= on, a * unit, 0.0)
        params.append({"amplitude_na": a, "onset_ms": on, "noisy": noisy})
    return waves, params


def _slow_drift(rng, t_ms, amp, n_inputs):
    duration, _ = _grid(t_ms)
    waves = np.zeros((t_ms.size, n_inputs))
    params = []
    for j in range(n_inputs):
        a = _amp(rng, amp)
        power = float(rng.uniform(0.5, 2.0))
        bump = bool(rng.integers(0, 2))  # rise and fall (one half-sine) or a monotone rise
        x = t_ms / duration
        unit = np.sin(np.pi * x) ** power if bump else x**power
        waves[:, j] = a * unit
        params.append({"amplitude_na": a, "power": power, "rise_and_fall": bump})
    return waves, params


def _over_range(rng, t_ms, amp, n_inputs):
    duration, dt = _grid(t_ms)
    hi = float(amp[1])
    waves = np.zeros((t_ms.size, n_inputs))
    params = []
    for j in range(n_inputs):
        a = float(rng.uniform(1.0, OVER_RANGE_FACTOR)) * hi
        step = bool(rng.integers(0, 2))
        if step:
            on = _onset(rng, t_ms, 0.05, 0.5)
            off = on + float(rng.uniform(0.2, 0.9)) * duration
            unit = ((t_ms >= on) & (t_ms < off)).astype(float)
            p = {"onset_ms": on, "offset_ms": off}
        else:
            unit, p = _shared_unit(rng, t_ms)
            unit = unit / unit.max()  # the peak reaches a (beyond the range)
        waves[:, j] = a * unit
        params.append({"amplitude_na": a, "step": step, **p})
    return waves, params


_BATTERY = {
    "bat_in_phase": _in_phase,
    "bat_anti_phase": _anti_phase,
    "bat_one_silent": _one_silent,
    "bat_broadband": _broadband,
    "bat_narrowband": _narrowband,
    "bat_sparse_events": _sparse_events,
    "bat_late_onset": _late_onset,
    "bat_slow_drift": _slow_drift,
    "bat_over_range": _over_range,
}
for _name, _fn in _BATTERY.items():
    register_trial_family(_name, _fn, held_out=True)
