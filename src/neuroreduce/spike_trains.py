"""Seeded spike-train stimuli: inhomogeneous Poisson inputs on many synaptic channels.

The spike-train counterpart of :mod:`neuroreduce.stimuli` (currents), for models driven by
synapses, such as the layer-5 pyramidal cell of Beniaguev, Segev & London (2021, "Single
cortical neurons as deep artificial neural networks"), which receives 639 excitatory and 639
inhibitory input channels whose firing rates vary smoothly in time and across neighbouring
channels. Following that paper's recipe in spirit (rates drawn per simulation, smoothed in time
and space; the E/I mean rates are the knobs that set the cell's output rate, ~1-2 Hz), trial
``k`` of a :class:`SpikeTrainConfig` is drawn as follows.

**Rate function.** For each population ``p`` (e.g. excitatory, inhibitory) with ``n_p``
channels:

1. a mean rate ``m_p`` (Hz) is drawn uniformly in the population's ``rate_range_hz`` and one
   temporal smoothing width ``tau`` (ms) log-uniformly in ``time_constant_ms`` (shared by the
   populations of the trial);
2. a Gaussian white-noise field on the knots ``t_j = j * h`` x channels, with knot spacing
   ``h = knot_spacing * tau``, is smoothed by a Gaussian kernel of standard deviation ``tau``
   in time (``1 / knot_spacing`` knots) and ``spatial_sigma_channels`` across neighbouring
   channels (zero: independent channels) and scaled to unit variance, giving ``z[j, c]``. The
   smoothing is a circular convolution (FFT) of a field drawn with margins of at least three
   kernel widths on every side, then cropped: the field is stationary and its two ends are
   uncorrelated (channel 0 and the last channel are not neighbours);
3. the rate on the knots is ``r[j, c] = m_p * (1 + modulation_depth * tanh(z[j, c]))``, so it
   stays within ``m_p * (1 +/- modulation_depth)`` and its expected value is ``m_p``;
4. between knots the rate is linear: ``r_c(t)`` is piecewise linear and continuous. With the
   default ``knot_spacing = 0.5`` neighbouring knots correlate at ``exp(-1/16) = 0.94``; tying
   the knots to ``tau`` keeps the cost of a trial proportional to ``duration / tau``.

:func:`rate_functions` returns exactly this function (knot times and rates), so a test or an
analysis can compare the spikes with the intensity they were drawn from.

**Spikes: thinning** (Lewis & Shedler 1979). For each channel, candidate events are drawn from a
homogeneous Poisson process at the channel's peak rate ``lambda_c = max_j r[j, c]`` (the peak of
a piecewise-linear function is at a knot): a Poisson count, then uniform times on
``[0, duration_ms)``. Each candidate at time ``t`` is kept with probability
``r_c(t) / lambda_c``. The kept events are an exact inhomogeneous Poisson process with intensity
``r_c(t)`` in continuous time; there is no time step. Per-bin Bernoulli draws at a fine ``dt``
were rejected: they allow at most one event per bin, are only approximately Poisson
(``P = r dt`` instead of ``1 - exp(-r dt)`` and no multiple events) and cost
``duration / dt x channels`` random numbers per trial (7.7e8 at 0.01 ms for 6 s x 1,278 channels)
whereas thinning costs a few numbers per candidate event (~2e4 per such trial at a few Hz).
The cost of a trial is dominated by the smoothed field (two FFTs over ``knots x channels``)
and the candidates' sort.

Seeding: trial ``k`` draws its rate function and its spikes from two independent streams spawned
from ``numpy.random.SeedSequence([seed, k])``: its spikes do not depend on how many trials are
generated, and :func:`rate_functions` recomputes a trial's rates without drawing spikes.

Units: times in ms (float64), rates in Hz (events per second), channel indices int32 in the
order of the populations (excitatory first by default: ``exc_000 .. exc_638, inh_000 ..
inh_638``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuroreduce.errors import ConfigError

#: Margin of the smoothed field beyond the trial and the channels, in kernel widths: the two
#: ends of the circularly smoothed field correlate at most at exp(-margin**2) = 1e-4.
_MARGIN_SIGMAS = 3.0


@dataclass(frozen=True)
class Population:
    """One population of input channels.

    Attributes:
        name: Population name (e.g. ``"excitatory"``), the key of its per-trial parameters.
        prefix: Channel-name prefix (channels are ``<prefix>_000``, ``<prefix>_001``, ...).
        n_channels: Number of channels (synapses or synapse groups).
        rate_range_hz: ``(min, max)`` of the trial's mean rate per channel (Hz), drawn
            uniformly per trial.
    """

    name: str
    prefix: str
    n_channels: int
    rate_range_hz: tuple[float, float]

    def __post_init__(self) -> None:
        if not self.name or not self.prefix:
            raise ConfigError("a spike-train population needs a non-empty name and prefix")
        if isinstance(self.n_channels, bool) or not isinstance(self.n_channels, int) or (
            self.n_channels < 1
        ):
            raise ConfigError(
                f"population {self.name!r}: n_channels must be an integer >= 1, "
                f"got {self.n_channels!r}"
            )
        lo, hi = _pair(self.rate_range_hz, f"population {self.name!r} rate_range_hz")
        if not (0.0 <= lo <= hi):
            raise ConfigError(
                f"population {self.name!r}: rate_range_hz must be (min, max) Hz with "
                f"0 <= min <= max, got {self.rate_range_hz!r}"
            )
        object.__setattr__(self, "rate_range_hz", (lo, hi))


def _default_populations() -> tuple[Population, ...]:
    return (
        Population("excitatory", "exc", 639, (1.0, 4.0)),
        Population("inhibitory", "inh", 639, (1.0, 6.0)),
    )


@dataclass(frozen=True)
class SpikeTrainConfig:
    """How spike-train trials are drawn (see the module docstring).

    The default rate ranges are placeholders of the right order (a few Hz per synapse): the
    E/I balance that makes a given cell fire ~1-2 Hz has to be calibrated on that cell.

    Attributes:
        populations: The channel populations, in channel order (default: 639 excitatory
            ``exc_*`` then 639 inhibitory ``inh_*`` channels).
        duration_ms: Length of a trial (ms); events lie in ``[0, duration_ms)``.
        time_constant_ms: ``(min, max)`` standard deviation (ms) of the Gaussian kernel that
            smooths the rates in time, drawn log-uniformly per trial (equal values: fixed).
        spatial_sigma_channels: Standard deviation (channels) of the Gaussian kernel that
            smooths the rates across neighbouring channels of a population; 0: independent.
        modulation_depth: Relative rate modulation in ``[0, 1]``: rates stay within
            ``mean * (1 +/- depth)``; 0 gives constant rates (homogeneous Poisson).
        knot_spacing: Spacing of the knots of the piecewise-linear rate function as a fraction
            of the trial's time constant, in ``(0, 1]``.
        seed: Seed of every trial (trial ``k`` uses ``SeedSequence([seed, k])``).
    """

    populations: tuple[Population, ...] = field(default_factory=_default_populations)
    duration_ms: float = 6000.0
    time_constant_ms: tuple[float, float] = (50.0, 500.0)
    spatial_sigma_channels: float = 10.0
    modulation_depth: float = 0.8
    knot_spacing: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        pops = tuple(self.populations)
        if not pops or not all(isinstance(p, Population) for p in pops):
            raise ConfigError("populations must be a non-empty list of Population entries")
        for attr, plural in (("name", "names"), ("prefix", "prefixes")):
            values = [getattr(p, attr) for p in pops]
            if len(set(values)) != len(values):
                raise ConfigError(f"population {plural} must differ, got {values}")
        object.__setattr__(self, "populations", pops)
        _positive(self.duration_ms, "duration_ms")
        lo, hi = _pair(self.time_constant_ms, "time_constant_ms")
        if not (0.0 < lo <= hi):
            raise ConfigError(
                f"time_constant_ms must be (min, max) ms with 0 < min <= max, "
                f"got {self.time_constant_ms!r}"
            )
        object.__setattr__(self, "time_constant_ms", (lo, hi))
        if not (_number(self.knot_spacing) and 0.0 < self.knot_spacing <= 1.0):
            raise ConfigError(f"knot_spacing must be in (0, 1], got {self.knot_spacing!r}")
        if not (_number(self.spatial_sigma_channels) and self.spatial_sigma_channels >= 0):
            raise ConfigError(
                f"spatial_sigma_channels must be a number >= 0, got {self.spatial_sigma_channels!r}"
            )
        if not (_number(self.modulation_depth) and 0.0 <= self.modulation_depth <= 1.0):
            raise ConfigError(
                f"modulation_depth must be in [0, 1], got {self.modulation_depth!r}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")

    @property
    def n_channels(self) -> int:
        """Channels of all populations together."""
        return sum(p.n_channels for p in self.populations)

    def channel_names(self) -> tuple[str, ...]:
        """``<prefix>_<index>`` per channel, zero-padded to at least 3 digits, in order."""
        names: list[str] = []
        for p in self.populations:
            width = max(3, len(str(p.n_channels - 1)))
            names.extend(f"{p.prefix}_{i:0{width}d}" for i in range(p.n_channels))
        return tuple(names)

    def population_slices(self) -> dict[str, slice]:
        """Population name -> its channels' slice of the channel axis."""
        out, start = {}, 0
        for p in self.populations:
            out[p.name] = slice(start, start + p.n_channels)
            start += p.n_channels
        return out

    def knot_times_ms(self, time_constant_ms: float) -> np.ndarray:
        """Knots of the rate function of a trial with this time constant (ms): ``j * h`` with
        ``h = knot_spacing * time_constant_ms``, up to the first at or past the end; shape
        ``[knot]`` (at least 2)."""
        h = self.knot_spacing * time_constant_ms
        n = max(1, int(math.ceil(self.duration_ms / h - 1e-9)))
        return np.arange(n + 1, dtype=np.float64) * h


@dataclass(frozen=True, eq=False)
class SpikeTrainSet:
    """Spike events of many trials and how each trial's rates were drawn.

    Attributes:
        config: The generating configuration.
        times_ms: Per trial, event times (ms), sorted, float64, in ``[0, duration_ms)``.
        channels: Per trial, the channel of each event (int32, index into ``channel_names``).
        params: Per trial, the JSON-able rate parameters: ``seed``, ``trial``,
            ``mean_rate_hz`` (per population), ``time_constant_ms``, ``knot_spacing_ms``,
            ``spatial_sigma_channels``, ``modulation_depth``.
        channel_names: Name of each channel (e.g. ``exc_000`` .. ``inh_638``).
    """

    config: SpikeTrainConfig
    times_ms: tuple[np.ndarray, ...]
    channels: tuple[np.ndarray, ...]
    params: tuple[dict[str, Any], ...]
    channel_names: tuple[str, ...]

    @property
    def n_trials(self) -> int:
        """Number of trials."""
        return len(self.times_ms)

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return len(self.channel_names)

    def rates_hz(self, trial: int) -> tuple[np.ndarray, np.ndarray]:
        """The rate function trial ``trial`` was drawn from (see :func:`rate_functions`)."""
        knots, rates, _ = rate_functions(self.config, trial)
        return knots, rates

    def dense(self, trial: int, *, dt_ms: float) -> np.ndarray:
        """Counts per bin of ``dt_ms`` of one trial, ``[time, channel]`` float32 (see
        :func:`densify`); the bins cover ``[0, duration_ms)``."""
        n_time = int(math.ceil(self.config.duration_ms / dt_ms - 1e-9))
        return densify(self.times_ms[trial], self.channels[trial], self.n_channels, n_time, dt_ms)


def rate_functions(config: SpikeTrainConfig, trial: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """The piecewise-linear rate function of trial ``trial`` (drawn, no spikes).

    Returns:
        Knot times (ms) ``[knot]``, rates at the knots (Hz) ``[knot, channel]`` float64 (linear in
        between), and the trial's JSON-able parameters.
    """
    rate_rng, _ = _streams(config, trial)
    return _draw_rates(config, trial, rate_rng)


def generate_spike_trains(config: SpikeTrainConfig, n_trials: int) -> SpikeTrainSet:
    """Draw ``n_trials`` trials of spike trains (see the module docstring).

    Args:
        config: Populations, duration, rate statistics and seed.
        n_trials: Number of trials (trial ``k`` is the same whatever ``n_trials``).

    Returns:
        The events of every trial with their rate parameters and the channel names.

    Raises:
        ConfigError: if ``n_trials < 1``.
    """
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ConfigError(f"n_trials must be an integer >= 1, got {n_trials!r}")
    times, channels, params = [], [], []
    for k in range(n_trials):
        rate_rng, spike_rng = _streams(config, k)
        knots, rates, p = _draw_rates(config, k, rate_rng)
        t, c = _thin(knots, rates, config.duration_ms, spike_rng)
        times.append(t)
        channels.append(c)
        params.append(p)
    return SpikeTrainSet(
        config=config,
        times_ms=tuple(times),
        channels=tuple(channels),
        params=tuple(params),
        channel_names=config.channel_names(),
    )


def densify(
    times_ms: np.ndarray, channels: np.ndarray, n_channels: int, n_time: int, dt_ms: float
) -> np.ndarray:
    """Event lists to counts per time bin and channel.

    Bin ``k`` covers ``[k * dt_ms, (k + 1) * dt_ms)``.

    Args:
        times_ms: Event times (ms), shape ``[event]``, in ``[0, n_time * dt_ms)``.
        channels: Channel of each event, shape ``[event]``, in ``[0, n_channels)``.
        n_channels: Number of channels.
        n_time: Number of bins.
        dt_ms: Bin width (ms).

    Returns:
        Counts, shape ``[n_time, n_channels]``, float32.

    Raises:
        ConfigError: on mismatched shapes, a bad size, or events outside the grid.
    """
    t = np.asarray(times_ms, dtype=np.float64)
    c = np.asarray(channels)
    if t.ndim != 1 or c.shape != t.shape:
        raise ConfigError(
            f"times_ms and channels must be 1-D of the same length, got {t.shape} and {c.shape}"
        )
    if n_channels < 1 or n_time < 1 or not (_number(dt_ms) and dt_ms > 0):
        raise ConfigError(
            f"need n_channels >= 1, n_time >= 1 and dt_ms > 0; got {n_channels}, {n_time}, {dt_ms}"
        )
    bins = np.floor(t / dt_ms).astype(np.int64)
    if t.size and (bins.min() < 0 or bins.max() >= n_time or c.min() < 0 or c.max() >= n_channels):
        raise ConfigError(
            f"events outside the grid: times must lie in [0, {n_time * dt_ms}) ms and channels in "
            f"[0, {n_channels}); crop the events to the window first"
        )
    flat = bins * n_channels + c.astype(np.int64)
    counts = np.bincount(flat, minlength=n_time * n_channels)
    return counts.reshape(n_time, n_channels).astype(np.float32)


# --------------------------------------------------------------------------- internals


def _streams(config: SpikeTrainConfig, trial: int) -> tuple[np.random.Generator, ...]:
    if isinstance(trial, bool) or not isinstance(trial, int | np.integer) or trial < 0:
        raise ConfigError(f"trial must be an integer >= 0, got {trial!r}")
    seeds = np.random.SeedSequence([config.seed, int(trial)]).spawn(2)
    return tuple(np.random.default_rng(s) for s in seeds)


def _draw_rates(
    config: SpikeTrainConfig, trial: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    lo, hi = config.time_constant_ms
    tau_ms = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    knots = config.knot_times_ms(tau_ms)
    means = {p.name: float(rng.uniform(*p.rate_range_hz)) for p in config.populations}
    rates = np.empty((knots.size, config.n_channels), dtype=np.float64)
    slices = config.population_slices()
    for p in config.populations:
        z = _smooth_field(
            rng, knots.size, p.n_channels, 1.0 / config.knot_spacing,
            float(config.spatial_sigma_channels),
        )
        rates[:, slices[p.name]] = means[p.name] * (1.0 + config.modulation_depth * np.tanh(z))
    params = {
        "seed": config.seed,
        "trial": int(trial),
        "mean_rate_hz": means,
        "time_constant_ms": tau_ms,
        "knot_spacing_ms": float(knots[1]),
        "spatial_sigma_channels": float(config.spatial_sigma_channels),
        "modulation_depth": float(config.modulation_depth),
    }
    return knots, rates, params


def _smooth_field(
    rng: np.random.Generator, n_time: int, n_chan: int, sigma_t: float, sigma_c: float
) -> np.ndarray:
    """Unit-variance Gaussian field ``[n_time, n_chan]`` with Gaussian correlations of widths
    ``sigma_t`` (samples) and ``sigma_c`` (channels), made by filtering white noise in the
    Fourier domain with margins of ``_MARGIN_SIGMAS`` widths (so wrap-around is negligible)."""
    from scipy import fft

    # margins of >= _MARGIN_SIGMAS widths, rounded up to sizes the FFT handles fast
    shape = tuple(
        fft.next_fast_len(n + 2 * int(math.ceil(_MARGIN_SIGMAS * sigma)), real=True)
        for n, sigma in ((n_time, sigma_t), (n_chan, sigma_c))
    )
    noise = rng.standard_normal(shape, dtype=np.float32)
    h_t = _gaussian_transfer(shape[0], sigma_t)
    h_c = _gaussian_transfer(shape[1], sigma_c)
    spectrum = fft.rfft2(noise)
    spectrum *= (h_t[:, None] * h_c[None, : spectrum.shape[1]]).astype(np.float32)
    field_ = fft.irfft2(spectrum, s=shape)
    # variance of circularly filtered unit white noise: mean of |H|^2 over all frequencies
    std = math.sqrt(float(np.mean(h_t**2)) * float(np.mean(h_c**2)))
    start_t, start_c = (shape[0] - n_time) // 2, (shape[1] - n_chan) // 2
    return field_[start_t : start_t + n_time, start_c : start_c + n_chan] / std


def _gaussian_transfer(n: int, sigma: float) -> np.ndarray:
    """Transfer function of a Gaussian kernel of ``sigma`` samples on an ``n``-point circle,
    ordered as ``np.fft.fftfreq(n)`` (the first ``n // 2 + 1`` entries serve ``rfft``)."""
    freq = np.fft.fftfreq(n)
    return np.exp(-2.0 * (math.pi * sigma * freq) ** 2)


def _thin(
    knots: np.ndarray, rates: np.ndarray, duration_ms: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Lewis-Shedler thinning of the piecewise-linear intensity ``rates`` [knot, channel] (Hz)."""
    peak = rates.max(axis=0)  # [channel], Hz
    counts = rng.poisson(peak * (duration_ms / 1000.0))
    chan = np.repeat(np.arange(rates.shape[1], dtype=np.int32), counts)
    t = rng.uniform(0.0, duration_ms, size=chan.size)
    pos = t / knots[1]
    j = np.minimum(pos.astype(np.int64), knots.size - 2)
    frac = pos - j
    r = rates[j, chan] * (1.0 - frac) + rates[j + 1, chan] * frac
    keep = rng.uniform(0.0, 1.0, size=chan.size) * peak[chan] < r
    t, chan = t[keep], chan[keep]
    order = np.argsort(t, kind="stable")
    return t[order], chan[order]


def _pair(value: Any, where: str) -> tuple[float, float]:
    ok = (
        isinstance(value, tuple | list) and len(value) == 2 and all(_number(v) for v in value)
    )
    if not ok:
        raise ConfigError(f"{where} must be a (min, max) pair of finite numbers, got {value!r}")
    return (float(value[0]), float(value[1]))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value: Any, where: str) -> None:
    if not (_number(value) and value > 0):
        raise ConfigError(f"{where} must be a positive number, got {value!r}")
