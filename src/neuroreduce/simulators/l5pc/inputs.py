"""Synaptic input of the L5PC: inhomogeneous Poisson spike trains, one channel per segment.

The rates come from :mod:`neuroreduce.spike_trains` (rates drawn per trial, smoothed in time
and across neighbouring channels, thinned into exact inhomogeneous Poisson events): population
``excitatory`` (channels ``exc_0000 ..``, one per dendritic segment) then ``inhibitory``
(``inh_0000 ..``). The E/I mean-rate ranges are the knobs that set the cell's output rate; the
defaults were calibrated on the Hay cell with 639 + 639 channels (docs/l5pc.md, "Calibration")
to give ~1-2 Hz on average with trial-to-trial variability.

Units: rates in Hz per channel, times in ms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from neuroreduce.errors import ConfigError
from neuroreduce.spike_trains import Population, SpikeTrainConfig, _draw_rates, _streams, _thin


@dataclass(frozen=True)
class InputConfig:
    """How the synaptic spike trains of a trial are drawn.

    Attributes:
        exc_rate_range_hz: ``(min, max)`` of a trial's mean rate per excitatory channel (Hz),
            drawn uniformly per trial.
        inh_rate_range_hz: The same for the inhibitory channels (Hz).
        time_constant_ms: ``(min, max)`` temporal smoothing width of the rates (ms), drawn
            log-uniformly per trial.
        spatial_sigma_channels: Smoothing of the rates across neighbouring channels (channels).
        modulation_depth: Relative rate modulation in ``[0, 1]`` (rates stay within
            ``mean (1 +/- depth)``).
    """

    exc_rate_range_hz: tuple[float, float] = (6.0, 8.0)
    inh_rate_range_hz: tuple[float, float] = (6.0, 9.0)
    time_constant_ms: tuple[float, float] = (50.0, 500.0)
    spatial_sigma_channels: float = 10.0
    modulation_depth: float = 0.8

    def __post_init__(self) -> None:
        for name in ("exc_rate_range_hz", "inh_rate_range_hz", "time_constant_ms"):
            value = getattr(self, name)
            try:
                lo, hi = (float(x) for x in value)
            except (TypeError, ValueError):
                raise ConfigError(f"{name} must be a pair (min, max), got {value!r}") from None
            if not (math.isfinite(lo) and math.isfinite(hi)) or lo < 0 or hi < lo:
                raise ConfigError(
                    f"{name} must be (min, max) with 0 <= min <= max and no NaN, got {value!r}; "
                    "rates are spikes per second per channel and cannot be negative")
            object.__setattr__(self, name, (lo, hi))


def spike_config(inputs: InputConfig, *, n_channels: int, duration_ms: float,
                 seed: int) -> SpikeTrainConfig:
    """The :class:`~neuroreduce.spike_trains.SpikeTrainConfig` of ``n_channels`` excitatory and
    ``n_channels`` inhibitory channels."""
    return SpikeTrainConfig(
        populations=(
            Population("excitatory", "exc", n_channels, inputs.exc_rate_range_hz),
            Population("inhibitory", "inh", n_channels, inputs.inh_rate_range_hz),
        ),
        duration_ms=duration_ms,
        time_constant_ms=inputs.time_constant_ms,
        spatial_sigma_channels=inputs.spatial_sigma_channels,
        modulation_depth=inputs.modulation_depth,
        seed=seed,
    )


def channel_names(n_channels: int) -> tuple[str, ...]:
    """``exc_0000 .. exc_<n-1>, inh_0000 .. inh_<n-1>`` (4 digits, as NeuronIO's layout)."""
    return tuple(f"{p}_{k:04d}" for p in ("exc", "inh") for k in range(n_channels))


def draw_trial(inputs: InputConfig, *, n_channels: int, duration_ms: float, seed: int,
               trial: int) -> tuple[Any, Any, dict[str, Any]]:
    """The spike events of trial ``trial`` (independent of how many trials are drawn); the
    same events as trial ``trial`` of :func:`neuroreduce.spike_trains.generate_spike_trains`.

    Returns:
        Event times (ms, sorted, float64 ``[event]``), channels (int32 ``[event]``: ``k`` is
        ``exc_k``, ``n_channels + k`` is ``inh_k``) and the trial's JSON-able rate parameters.
    """
    config = spike_config(inputs, n_channels=n_channels, duration_ms=duration_ms, seed=seed)
    rate_rng, spike_rng = _streams(config, trial)
    knots, rates, params = _draw_rates(config, trial, rate_rng)
    times, channels = _thin(knots, rates, config.duration_ms, spike_rng)
    return times, channels, params
