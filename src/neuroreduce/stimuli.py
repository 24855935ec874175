"""Seeded input-current waveforms for driving simulators: the "diverse" stimulus sets.

Each stimulus *family* (step, multi-step, ramp, pulse train, sine, chirp, smoothed noise) is a
function that draws one waveform for one input channel from a random generator. Families are
chosen by name from a registry (:func:`register_family`, :func:`list_families`).

The *diverse* families (:func:`diverse_families`) make up the default training sets
(:func:`diverse_set`, ``generate_stimuli(families=None)``). The *out-of-distribution* families
(:func:`ood_families`: sawtooth, two-level square wave with random duty cycle, alpha-function
bursts, smoothed random staircase) are never drawn by default; they exist to test whether a
surrogate generalises to waveform shapes it was not trained on.

Conventions shared by all families:

* Time grid: ``t = k * dt_ms`` for ``k = 0 .. n_time - 1`` (ms), the grid of
  :class:`neuroreduce.simulators.base.Simulator`.
* Every waveform is exactly 0 at ``t = 0`` (the simulator starts at rest) and changes only after
  an onset of at least one sample, so a simulator that interpolates linearly between samples
  sees a finite, continuous current.
* A waveform's peak amplitude ``A`` (nA) is drawn uniformly in ``amplitude_range_na``; the
  current then lies between 0 and ``A``. With the default non-negative ranges the currents are
  depolarising and within ``[0, max(amplitude_range_na)]``.
* Every input channel of a trial gets its own independently drawn waveform of the trial's family,
  so channels vary independently (needed for input-importance experiments). A *trial family*
  (:func:`register_trial_family`) instead draws all channels of a trial at once, so it can set
  cross-input structure (in phase, anti-phase, one input silent); the held-out battery of
  :mod:`neuroreduce.trust.battery` is made of those.
* *Held-out* families (``held_out=True``) are kept out of training sets: an experiment refuses
  them in a ``role = "train"`` dataset unless it sets ``allow_held_out = true``.
* Trial ``i`` draws from ``numpy.random.default_rng([seed, i])``: its waveforms do not depend on
  how many trials are generated.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.signal import lfilter

from neuroreduce.errors import ConfigError, unknown_name_error
from neuroreduce.scenarios import Scenario
from neuroreduce.simulators.base import check_currents, n_samples

#: A family draws one waveform: ``(rng, t_ms [time], (min, max) amplitude nA)`` ->
#: ``(current [time] nA, JSON-able parameters)``.
FamilyFn = Callable[[np.random.Generator, np.ndarray, tuple[float, float]], tuple[np.ndarray, dict]]
#: A trial family draws every channel of a trial at once: ``(rng, t_ms [time], (min, max)
#: amplitude nA, n_inputs)`` -> ``(currents [time, n_inputs] nA, one JSON-able dict per channel)``.
TrialFamilyFn = Callable[
    [np.random.Generator, np.ndarray, tuple[float, float], int], tuple[np.ndarray, list[dict]]
]

_FAMILIES: dict[str, Any] = {}
_DIVERSE: list[str] = []
_TRIAL: set[str] = set()
_HELD_OUT: list[str] = []


@dataclass(frozen=True, eq=False)
class StimulusSet:
    """Input currents of many trials with a record of how each was drawn.

    Attributes:
        currents: Injected currents, shape ``[trial, time, input]``, float64, nA.
        families: Stimulus family of each trial, length ``trial``.
        params: JSON text per trial: ``{"family": ..., "seed": ..., "trial": ...,
            "channels": [{"amplitude_na": ..., "onset_ms": ..., ...}, ...]}``.
    """

    currents: np.ndarray
    families: tuple[str, ...]
    params: tuple[str, ...]

    def __post_init__(self) -> None:
        currents = np.asarray(self.currents, dtype=np.float64)
        object.__setattr__(self, "currents", currents)
        object.__setattr__(self, "families", tuple(self.families))
        object.__setattr__(self, "params", tuple(self.params))
        if currents.ndim != 3:
            raise ConfigError(
                f"currents must have shape [trial, time, input] (nA); got {currents.shape}"
            )
        n = currents.shape[0]
        if len(self.families) != n or len(self.params) != n:
            raise ConfigError(
                f"StimulusSet needs one family and one params entry per trial ({n}); got "
                f"{len(self.families)} and {len(self.params)}"
            )

    @property
    def n_trials(self) -> int:
        return int(self.currents.shape[0])

    def __len__(self) -> int:
        return self.n_trials


def register_family(name: str, fn: FamilyFn, *, diverse: bool = True) -> FamilyFn:
    """Add a stimulus family under ``name`` (names are unique).

    Args:
        name: Registry key.
        fn: Draws one waveform (see :data:`FamilyFn`).
        diverse: Whether the default training sets (:func:`diverse_set`) use it; ``False`` keeps
            it for explicitly requested (e.g. out-of-distribution) sets only.
    """
    if name in _FAMILIES:
        raise ConfigError(f"stimulus family {name!r} is already registered")
    _FAMILIES[name] = fn
    if diverse:
        _DIVERSE.append(name)
    return fn


def register_trial_family(name: str, fn: TrialFamilyFn, *, held_out: bool = True) -> TrialFamilyFn:
    """Add a family that draws all input channels of a trial together (see :data:`TrialFamilyFn`).

    Args:
        name: Registry key (unique among all families).
        fn: Draws one trial.
        held_out: Keep it out of training sets (see :func:`held_out_families`); never diverse.
    """
    register_family(name, fn, diverse=False)  # type: ignore[arg-type]
    _TRIAL.add(name)
    if held_out:
        _HELD_OUT.append(name)
    return fn


def list_families(*, held_out: bool = False) -> list[str]:
    """Names of the registered stimulus families, in registration order.

    Args:
        held_out: Also list the held-out battery families (:func:`held_out_families`).
    """
    return [n for n in _FAMILIES if held_out or n not in _HELD_OUT]


def held_out_families() -> list[str]:
    """Families kept out of training sets by construction (the held-out battery)."""
    return list(_HELD_OUT)


def diverse_families() -> list[str]:
    """Families of the default training sets, in registration order."""
    return list(_DIVERSE)


def ood_families() -> list[str]:
    """Families never used by default (for out-of-distribution test sets), in registration
    order."""
    return [name for name in _FAMILIES if name not in _DIVERSE and name not in _HELD_OUT]


def generate_stimuli(
    *,
    n_inputs: int,
    n_time: int,
    dt_ms: float,
    n_trials: int,
    amplitude_range_na: tuple[float, float],
    families: Sequence[str] | None = None,
    seed: int = 0,
    first_trial: int = 0,
) -> StimulusSet:
    """Draw ``n_trials`` trials of ``n_inputs`` independent input currents.

    Args:
        n_inputs: Number of input channels (>= 1).
        n_time: Samples per trial, both ends included (>= 2).
        dt_ms: Sampling interval (ms).
        n_trials: Number of trials (>= 0).
        amplitude_range_na: ``(min, max)`` peak amplitude of each waveform (nA).
        families: Family names; trial ``i`` uses ``families[i % len(families)]``. ``None``
            uses the diverse families (:func:`diverse_families`; balanced: counts differ by at
            most one).
        seed: Base seed; trial ``i`` uses ``default_rng([seed, first_trial + i])``.
        first_trial: Global index of the first trial, so that several calls (e.g. the groups
            of a mixed dataset) draw distinct trials; recorded as ``"trial"`` in the params.

    Returns:
        A :class:`StimulusSet` with currents of shape ``[n_trials, n_time, n_inputs]`` (nA).

    Raises:
        ConfigError: on an unknown family or invalid sizes/ranges.
    """
    names = tuple(diverse_families() if families is None else families)
    if not names:
        raise ConfigError("families must name at least one stimulus family")
    for name in names:
        if name not in _FAMILIES:
            raise unknown_name_error("stimulus family", name, list_families(held_out=True))
    if n_inputs < 1:
        raise ConfigError(f"n_inputs must be >= 1, got {n_inputs}")
    if n_time < 2:
        raise ConfigError(f"n_time must be >= 2 samples, got {n_time}")
    if n_trials < 0:
        raise ConfigError(f"n_trials must be >= 0, got {n_trials}")
    if not (math.isfinite(dt_ms) and dt_ms > 0):
        raise ConfigError(f"dt_ms must be a positive number, got {dt_ms}")
    lo, hi = (float(a) for a in amplitude_range_na)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise ConfigError(
            "amplitude_range_na must be finite (min, max) with min <= max; got "
            f"{amplitude_range_na}"
        )
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    if first_trial < 0:
        raise ConfigError(f"first_trial must be >= 0, got {first_trial}")

    t_ms = np.arange(n_time, dtype=np.float64) * dt_ms
    currents = np.zeros((n_trials, n_time, n_inputs), dtype=np.float64)
    fams: list[str] = []
    params: list[str] = []
    for i in range(n_trials):
        family = names[i % len(names)]
        rng = np.random.default_rng([seed, first_trial + i])
        channels = []
        if family in _TRIAL:
            waves, drawn = _FAMILIES[family](rng, t_ms, (lo, hi), n_inputs)
            currents[i] = np.asarray(waves, dtype=np.float64).reshape(n_time, n_inputs)
            currents[i, 0] = 0.0
            channels = [_rounded(p) for p in drawn]
        for j in range(0 if family in _TRIAL else n_inputs):
            wave, p = _FAMILIES[family](rng, t_ms, (lo, hi))
            wave = np.asarray(wave, dtype=np.float64)
            wave[0] = 0.0
            currents[i, :, j] = wave
            channels.append(_rounded(p))
        fams.append(family)
        record = {"family": family, "seed": seed, "trial": first_trial + i, "channels": channels}
        params.append(json.dumps(record, sort_keys=True))
    return StimulusSet(currents=currents, families=tuple(fams), params=tuple(params))


def diverse_set(
    scenario: Scenario, *, dt_ms: float, n_trials: int = 40, seed: int = 0
) -> StimulusSet:
    """The default balanced set over the diverse families for ``scenario`` (like the paper's 40).

    Args:
        scenario: Gives the number of inputs, ``duration_ms`` and ``amplitude_range_na``.
        dt_ms: Sampling interval (ms); ``n_time = duration_ms / dt_ms + 1``.
        n_trials: Number of trials (default 40).
        seed: Base seed.

    Returns:
        Currents of shape ``[n_trials, n_time, len(scenario.inputs)]`` (nA).
    """
    return generate_stimuli(
        n_inputs=len(scenario.inputs),
        n_time=n_samples(scenario.duration_ms, dt_ms),
        dt_ms=dt_ms,
        n_trials=n_trials,
        amplitude_range_na=scenario.amplitude_range_na,
        families=None,
        seed=seed,
    )


def check_stimuli(stimuli: StimulusSet, *, n_inputs: int, n_time: int | None = None) -> StimulusSet:
    """Check shape and finiteness of ``stimuli`` for a simulator with ``n_inputs`` inputs.

    Raises:
        ConfigError: on a wrong shape or NaN/inf (as
            :func:`neuroreduce.simulators.base.check_currents`).
    """
    check_currents(stimuli.currents, n_inputs, n_time=n_time)
    return stimuli


# --------------------------------------------------------------------------- families
# Each family returns a waveform in nA on the grid ``t_ms`` and its drawn parameters.


def _duration(t_ms: np.ndarray) -> float:
    return float(t_ms[-1])


def _dt(t_ms: np.ndarray) -> float:
    return float(t_ms[1] - t_ms[0])


def _onset(rng: np.random.Generator, t_ms: np.ndarray, lo: float, hi: float) -> float:
    """An onset time (ms) in ``[lo, hi] * duration``, never before the second sample."""
    return max(float(rng.uniform(lo, hi)) * _duration(t_ms), _dt(t_ms))


def _amplitude(rng: np.random.Generator, amp: tuple[float, float]) -> float:
    return float(rng.uniform(amp[0], amp[1]))


def _freq_range_hz(t_ms: np.ndarray) -> tuple[float, float]:
    """Frequencies (Hz) from one cycle per trial up to 25 cycles, below 1/8 of sampling rate."""
    f_lo = 1000.0 / _duration(t_ms)
    f_hi = max(f_lo, min(25.0 * f_lo, 1000.0 / (8.0 * _dt(t_ms))))
    return f_lo, f_hi


def _step(rng: np.random.Generator, t_ms: np.ndarray, amp: tuple[float, float]):
    a = _amplitude(rng, amp)
    on = _onset(rng, t_ms, 0.05, 0.5)
    off = on + float(rng.uniform(0.2, 0.9)) * _duration(t_ms)
    wave = np.where((t_ms >= on) & (t_ms < off), a, 0.0)
    return wave, {"amplitude_na": a, "onset_ms": on, "offset_ms": off}


def _multi_step(rng: np.random.Generator, t_ms: np.ndarray, amp: tuple[float, float]):
    n_levels = int(rng.integers(2, 5))
    on = _onset(rng, t_ms, 0.05, 0.3)
    edges = np.sort(rng.uniform(on, _duration(t_ms), size=n_levels - 1))
    times = [on, *edges.tolist()]
    levels = [_amplitude(rng, amp) for _ in range(n_levels)]
    wave = np.zeros_like(t_ms)
    for start, level in zip(times, levels, strict=True):
        wave[t_ms >= start] = level
    return wave, {"levels_na": levels, "times_ms": times}


def _ramp(rng: np.random.Generator, t_ms: np.ndarray, amp: tuple[float, float]):
    a = _amplitude(rng, amp)
    duration = _duration(t_ms)
    on = _onset(rng, t_ms, 0.05, 0.4)
    peak = on + float(rng.uniform(0.1, 0.5)) * duration
    off = peak + float(rng.uniform(0.0, 0.5)) * duration
    rise = np.clip((t_ms - on) / (peak - on), 0.0, 1.0)
    fall = np.clip((off - t_ms) / max(off - peak, 1e-12), 0.0, 1.0)
    wave = a * np.where(t_ms <= peak, rise, fall)
    return wave, {"amplitude_na": a, "onset_ms": on, "peak_ms": peak, "offset_ms": off}


def _pulse_train(rng: np.random.Generator, t_ms: np.ndarray, amp: tuple[float, float]):
    a = _amplitude(rng, amp)
    duration, dt = _duration(t_ms), _dt(t_ms)
    on = _onset(rng, t_ms, 0.05, 0.3)
    period = max(float(rng.uniform(0.05, 0.25)) * duration, 2.0 * dt)
    width = max(float(rng.uniform(0.2, 0.6)) * period, dt)
    off = on + float(rng.uniform(0.4, 1.0)) * (duration - on)
    phase = np.mod(t_ms - on, period)
    wave = np.where((t_ms >= on) & (t_ms < off) & (phase < width), a, 0.0)
    return wave, {
        "amplitude_na": a,
        "onset_ms": on,
        "offset_ms": off,
        "period_ms": period,
        "width_ms": width,
    }


def _sine(rng: np.random.Generator, t_ms: np.ndarray, amp: tuple[float, float]):
    a = _amplitude(rng, amp)
    f_lo, f_hi = _freq_range_hz(t_ms)
    f = float(np.exp(rng.uniform(np.log(f_lo), np.log(f_hi))))
    on = _onset(rng, t_ms, 0.0, 0.3)
    tau = np.clip(t_ms - on, 0.0, None)
    wave = 0.5 * a * (1.0 - np.cos(2.0 * np.pi * f * tau / 1000.0))
    return wave, {"amplitude_na": a, "onset_ms": on, "frequency_hz": f}


def _chirp(rng: np.random.Generator, t_ms: np.ndarray, amp: tuple[float, float]):
    a = _amplitude(rng, amp)
    f_lo, f_hi = _freq_range_hz(t_ms)
    f0, f1 = (float(np.exp(rng.uniform(np.log(f_lo), np.log(f_hi)))) for _ in range(2))
    on = _onset(rng, t_ms, 0.0, 0.2)
    span_ms = max(_duration(t_ms) - on, _dt(t_ms))
    tau = np.clip(t_ms - on, 0.0, None)
    phase = 2.0 * np.pi * (f0 * tau + 0.5 * (f1 - f0) * tau**2 / span_ms) / 1000.0
    wave = 0.5 * a * (1.0 - np.cos(phase))
    return wave, {"amplitude_na": a, "onset_ms": on, "f_start_hz": f0, "f_end_hz": f1}


def _noise(rng: np.random.Generator, t_ms: np.ndarray, amp: tuple[float, float]):
    """Ornstein-Uhlenbeck noise (exact update), rescaled to ``[0, A]``, faded in after onset."""
    a = _amplitude(rng, amp)
    duration, dt = _duration(t_ms), _dt(t_ms)
    tau = max(float(np.exp(rng.uniform(np.log(0.01), np.log(0.1)))) * duration, dt)
    on = _onset(rng, t_ms, 0.02, 0.2)
    rise = max(0.05 * duration, dt)
    decay = math.exp(-dt / tau)
    kicks = rng.standard_normal(t_ms.size) * math.sqrt(1.0 - decay**2)
    kicks[0] = rng.standard_normal()  # stationary start
    x = lfilter([1.0], [1.0, -decay], kicks)  # x[k] = decay * x[k-1] + kicks[k]
    span = float(x.max() - x.min())
    unit = (x - x.min()) / span if span > 0 else np.ones_like(x)
    envelope = 0.5 * (1.0 - np.cos(np.pi * np.clip((t_ms - on) / rise, 0.0, 1.0)))
    wave = a * unit * envelope
    return wave, {"amplitude_na": a, "onset_ms": on, "tau_ms": tau, "rise_ms": rise}

# ------------------------------------------------------------- out-of-distribution families
# Shapes the diverse families never produce: linear rises with instantaneous resets, a
# non-zero baseline, brief alpha-function transients, and many small smoothed level changes.


def _sawtooth(rng: np.random.Generator, t_ms: np.ndarray, amp: tuple[float, float]):
    """Periodic linear rise from 0 to ``A`` with an instantaneous reset (or the mirror image)."""
    a = _amplitude(rng, amp)
    duration, dt = _duration(t_ms), _dt(t_ms)
    on = _onset(rng, t_ms, 0.02, 0.3)
    period = max(float(rng.uniform(0.08, 0.4)) * duration, 4.0 * dt)
    falling = bool(rng.integers(0, 2))
    phase = np.mod(np.clip(t_ms - on, 0.0, None), period) / period
    shape = 1.0 - phase if falling else phase
    wave = np.where(t_ms >= on, a * shape, 0.0)
    return wave, {"amplitude_na": a, "onset_ms": on, "period_ms": period, "falling": falling}


def _square(rng: np.random.Generator, t_ms: np.ndarray, amp: tuple[float, float]):
    """Square wave between a non-zero baseline ``b * A`` and ``A`` with a random duty cycle."""
    a = _amplitude(rng, amp)
    duration, dt = _duration(t_ms), _dt(t_ms)
    on = _onset(rng, t_ms, 0.02, 0.2)
    period = max(float(rng.uniform(0.03, 0.3)) * duration, 2.0 * dt)
    duty = float(rng.uniform(0.1, 0.9))
    base = float(rng.uniform(0.2, 0.6))
    phase = np.mod(np.clip(t_ms - on, 0.0, None), period) / period
    wave = np.where(t_ms >= on, np.where(phase < duty, a, base * a), 0.0)
    return wave, {
        "amplitude_na": a,
        "onset_ms": on,
        "period_ms": period,
        "duty": duty,
        "baseline_fraction": base,
    }


def _alpha_bursts(rng: np.random.Generator, t_ms: np.ndarray, amp: tuple[float, float]):
    """1-4 bursts of 2-6 alpha-function transients ``(s/tau) exp(1 - s/tau)``, peak ``A``."""
    a = _amplitude(rng, amp)
    duration, dt = _duration(t_ms), _dt(t_ms)
    tau = max(float(rng.uniform(0.004, 0.02)) * duration, dt)
    n_bursts = int(rng.integers(1, 5))
    starts = np.sort(rng.uniform(0.02, 0.8, size=n_bursts)) * duration
    events: list[float] = []
    for start in starts:
        isi = float(rng.uniform(1.0, 3.0)) * tau
        events.extend(float(start) + k * isi for k in range(int(rng.integers(2, 7))))
    events = [max(e, dt) for e in events]
    unit = np.zeros_like(t_ms)
    for e in events:
        s = np.clip(t_ms - e, 0.0, None) / tau
        unit += s * np.exp(1.0 - s)
    peak = float(unit.max())
    wave = a * unit / peak if peak > 0 else unit
    return wave, {"amplitude_na": a, "tau_ms": tau, "event_times_ms": events}


def _smooth_steps(rng: np.random.Generator, t_ms: np.ndarray, amp: tuple[float, float]):
    """A staircase of 6-16 random levels in ``[0, A]`` low-pass filtered (time constant
    ``tau``), so levels change smoothly and often."""
    a = _amplitude(rng, amp)
    duration, dt = _duration(t_ms), _dt(t_ms)
    n_levels = int(rng.integers(6, 17))
    on = _onset(rng, t_ms, 0.02, 0.15)
    edges = np.sort(rng.uniform(on, duration, size=n_levels - 1))
    times = [on, *edges.tolist()]
    levels = rng.uniform(0.0, 1.0, size=n_levels)
    levels[int(rng.integers(0, n_levels))] = 1.0  # the peak level reaches A
    stairs = np.zeros_like(t_ms)
    for start, level in zip(times, levels, strict=True):
        stairs[t_ms >= start] = level
    tau = max(float(rng.uniform(0.005, 0.05)) * duration, dt)
    decay = math.exp(-dt / tau)
    smooth = lfilter([1.0 - decay], [1.0, -decay], stairs)  # y[k] = d*y[k-1] + (1-d)*x[k]
    wave = a * smooth
    return wave, {
        "amplitude_na": a,
        "levels_fraction": levels.tolist(),
        "times_ms": times,
        "tau_ms": tau,
    }


def _rounded(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters as plain JSON numbers (floats to 9 significant digits)."""

    def conv(v: Any) -> Any:
        if isinstance(v, list | tuple):
            return [conv(x) for x in v]
        if isinstance(v, float | np.floating):
            return float(f"{float(v):.9g}")
        if isinstance(v, np.integer):
            return int(v)
        return v

    return {k: conv(v) for k, v in params.items()}


for _name, _fn in (
    ("step", _step),
    ("multi_step", _multi_step),
    ("ramp", _ramp),
    ("pulse_train", _pulse_train),
    ("sine", _sine),
    ("chirp", _chirp),
    ("noise", _noise),
):
    register_family(_name, _fn)

for _name, _fn in (
    ("sawtooth", _sawtooth),
    ("square", _square),
    ("alpha_bursts", _alpha_bursts),
    ("smooth_steps", _smooth_steps),
):
    register_family(_name, _fn, diverse=False)

import neuroreduce.trust.battery  # noqa: E402, F401  (registers the held-out battery families)
