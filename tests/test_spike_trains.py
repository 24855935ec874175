"""Spike-train stimuli: the events follow the configured rate functions (Poisson statistics),
are seeded, sorted and in range; densify bins them; bad configs are one-line errors."""

from __future__ import annotations

import dataclasses
import json
import math
import time

import numpy as np
import pytest

from neuroreduce.errors import ConfigError
from neuroreduce.spike_trains import (
    Population,
    SpikeTrainConfig,
    densify,
    generate_spike_trains,
    rate_functions,
)

#: Small, strongly modulated configuration (rates up to 1.9 x 20 Hz, tau 50-200 ms).
SMALL = SpikeTrainConfig(
    populations=(
        Population("excitatory", "exc", 40, (5.0, 20.0)),
        Population("inhibitory", "inh", 40, (5.0, 20.0)),
    ),
    duration_ms=2000.0,
    time_constant_ms=(50.0, 200.0),
    spatial_sigma_channels=3.0,
    modulation_depth=0.9,
    seed=7,
)
WINDOW_MS = 100.0
BLOCK = 20  # channels summed per count


def _integral(knots: np.ndarray, rates: np.ndarray, t_ms: np.ndarray) -> np.ndarray:
    """Exact integral (expected events) of the piecewise-linear rates from 0 to each time:
    ``[time, channel]``."""
    h = knots[1] - knots[0]
    cum = np.concatenate([np.zeros((1, rates.shape[1])),
                          np.cumsum(h * (rates[1:] + rates[:-1]) / 2, axis=0)])
    j = np.minimum((t_ms / h).astype(int), len(knots) - 2)
    f = (t_ms / h - j)[:, None]
    partial = h * (rates[j] * f + (rates[j + 1] - rates[j]) * f**2 / 2)
    return (cum[j] + partial) / 1000.0  # Hz * ms -> events


def _counts_and_expected(spikes, rate_fn) -> tuple[np.ndarray, np.ndarray]:
    """Observed and expected counts per (trial, window, block of channels)."""
    edges = np.arange(0.0, spikes.config.duration_ms + WINDOW_MS / 2, WINDOW_MS)
    observed, expected = [], []
    for k in range(spikes.n_trials):
        knots, rates = rate_fn(k)
        lam = np.diff(_integral(knots, rates, edges), axis=0)  # [window, channel]
        dense = densify(spikes.times_ms[k], spikes.channels[k], spikes.n_channels,
                        len(edges) - 1, WINDOW_MS)
        n_blocks = spikes.n_channels // BLOCK
        observed.append(dense.reshape(len(edges) - 1, n_blocks, BLOCK).sum(-1))
        expected.append(lam.reshape(len(edges) - 1, n_blocks, BLOCK).sum(-1))
    return np.concatenate(observed).ravel(), np.concatenate(expected).ravel()


def _poisson_consistent(observed: np.ndarray, expected: np.ndarray) -> bool:
    """Pearson chi-square of independent Poisson counts within 5 standard deviations of its
    mean (df = number of counts; Var[(N - L)^2 / L] = 2 + 1 / L), and the total within 5 sd."""
    chi2 = float(np.sum((observed - expected) ** 2 / expected))
    df = observed.size
    sd = math.sqrt(float(np.sum(2.0 + 1.0 / expected)))
    total_z = (observed.sum() - expected.sum()) / math.sqrt(expected.sum())
    return abs(chi2 - df) < 5 * sd and abs(total_z) < 5


@pytest.fixture(scope="module")
def small():
    return generate_spike_trains(SMALL, 30)


def test_empirical_rate_matches_the_rate_function(small) -> None:
    obs, lam = _counts_and_expected(small, small.rates_hz)
    assert lam.min() > 1 and lam.mean() > 20
    assert _poisson_consistent(obs, lam)


def test_wrong_rate_functions_fail_the_same_check(small) -> None:
    doubled = _counts_and_expected(small, lambda k: (small.rates_hz(k)[0],
                                                     2 * small.rates_hz(k)[1]))
    assert not _poisson_consistent(*doubled)
    # same mean but the time course reversed: the check sees the shape, not only the mean
    reversed_ = _counts_and_expected(small, lambda k: (small.rates_hz(k)[0],
                                                       small.rates_hz(k)[1][::-1]))
    assert not _poisson_consistent(*reversed_)


def test_constant_rates_give_poisson_counts() -> None:
    cfg = SpikeTrainConfig(
        populations=(Population("e", "e", 40, (10.0, 30.0)), Population("i", "i", 40, (5.0, 5.0))),
        duration_ms=2000.0, modulation_depth=0.0, seed=3,
    )
    spikes = generate_spike_trains(cfg, 30)
    fanos = []
    for k in range(spikes.n_trials):
        _, rates = spikes.rates_hz(k)
        for name, cols in cfg.population_slices().items():
            np.testing.assert_allclose(rates[:, cols], spikes.params[k]["mean_rate_hz"][name])
            counts = spikes.dense(k, dt_ms=100.0)[:, cols]
            fanos.append(counts.var(ddof=1) / counts.mean())
    # each Fano factor from 800 counts has sd ~ sqrt(2 / 799) = 0.05; 60 of them averaged
    assert abs(np.mean(fanos) - 1.0) < 0.04
    # rate modulation makes the counts over-dispersed
    modulated = SMALL
    mod = generate_spike_trains(modulated, 5)
    fano_mod = np.mean([c.var() / c.mean() for c in (mod.dense(k, dt_ms=100.0)
                                                      for k in range(5))])
    assert fano_mod > 1.2


def test_seeded_and_independent_of_the_number_of_trials(small) -> None:
    again = generate_spike_trains(SMALL, 3)
    for k in range(3):
        np.testing.assert_array_equal(again.times_ms[k], small.times_ms[k])
        np.testing.assert_array_equal(again.channels[k], small.channels[k])
        assert again.params[k] == small.params[k]
        knots, rates, params = rate_functions(SMALL, k)
        np.testing.assert_array_equal(rates, small.rates_hz(k)[1])
        assert params == small.params[k]
    other = generate_spike_trains(dataclasses.replace(SMALL, seed=8), 1)
    assert other.params[0] != small.params[0]
    assert other.times_ms[0].shape != small.times_ms[0].shape or not np.array_equal(
        other.times_ms[0], small.times_ms[0])


def test_events_sorted_typed_and_in_range(small) -> None:
    assert small.n_trials == 30 and small.n_channels == 80
    assert small.channel_names[0] == "exc_000" and small.channel_names[-1] == "inh_039"
    for t, c in zip(small.times_ms, small.channels, strict=True):
        assert t.dtype == np.float64 and c.dtype == np.int32 and t.shape == c.shape
        assert np.all(np.diff(t) >= 0)
        assert t.min() >= 0 and t.max() < SMALL.duration_ms
        assert c.min() >= 0 and c.max() < small.n_channels
    params = json.loads(json.dumps(small.params))
    assert params[0]["trial"] == 0 and set(params[0]["mean_rate_hz"]) == {"excitatory",
                                                                         "inhibitory"}
    assert 50.0 <= params[0]["time_constant_ms"] <= 200.0


def test_default_config_names_1278_channels() -> None:
    cfg = SpikeTrainConfig()
    names = cfg.channel_names()
    assert cfg.n_channels == 1278 and len(set(names)) == 1278
    assert (names[0], names[638], names[639], names[-1]) == ("exc_000", "exc_638", "inh_000",
                                                             "inh_638")


def test_densify_bins_and_counts() -> None:
    times = np.array([0.0, 0.999, 1.0, 2.5, 2.5])
    chans = np.array([0, 0, 1, 2, 2], dtype=np.int32)
    dense = densify(times, chans, 3, 3, 1.0)
    assert dense.dtype == np.float32 and dense.shape == (3, 3)
    np.testing.assert_array_equal(dense, [[2, 0, 0], [0, 1, 0], [0, 0, 2]])
    spikes = generate_spike_trains(SMALL, 1)
    assert spikes.dense(0, dt_ms=0.5).sum() == spikes.times_ms[0].size
    with pytest.raises(ConfigError, match="outside the grid"):
        densify(times, chans, 3, 2, 1.0)
    with pytest.raises(ConfigError, match="outside the grid"):
        densify(times, chans, 2, 3, 1.0)
    with pytest.raises(ConfigError, match="same length"):
        densify(times, chans[:3], 3, 3, 1.0)
    assert densify(np.array([]), np.array([], dtype=np.int32), 2, 4, 1.0).sum() == 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"duration_ms": 0.0}, "duration_ms must be a positive number"),
        ({"time_constant_ms": (100.0, 50.0)}, "time_constant_ms must be"),
        ({"time_constant_ms": (0.0, 50.0)}, "time_constant_ms must be"),
        ({"modulation_depth": 1.5}, r"modulation_depth must be in \[0, 1\]"),
        ({"spatial_sigma_channels": -1.0}, "spatial_sigma_channels must be"),
        ({"knot_spacing": 0.0}, "knot_spacing must be"),
        ({"seed": -1}, "seed must be"),
        ({"populations": ()}, "populations must be a non-empty"),
        ({"populations": (Population("a", "x", 2, (1.0, 2.0)),
                          Population("b", "x", 2, (1.0, 2.0)))}, "population prefixes must differ"),
    ],
)
def test_bad_configs(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as err:
        SpikeTrainConfig(**kwargs)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "args, match",
    [
        (("e", "e", 0, (1.0, 2.0)), "n_channels must be an integer >= 1"),
        (("e", "e", 3, (2.0, 1.0)), "rate_range_hz must be"),
        (("e", "e", 3, (-1.0, 1.0)), "rate_range_hz must be"),
        (("e", "e", 3, (1.0,)), r"rate_range_hz must be a \(min, max\) pair"),
    ],
)
def test_bad_populations(args: tuple, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Population(*args)


def test_bad_trial_counts() -> None:
    with pytest.raises(ConfigError, match="n_trials must be"):
        generate_spike_trains(SMALL, 0)
    with pytest.raises(ConfigError, match="trial must be"):
        rate_functions(SMALL, -1)


@pytest.mark.slow
def test_generation_speed_at_full_size() -> None:
    """200 trials x 6 s x 1,278 channels (the default config) in seconds."""
    start = time.perf_counter()
    spikes = generate_spike_trains(SpikeTrainConfig(), 200)
    elapsed = time.perf_counter() - start
    n_events = sum(t.size for t in spikes.times_ms)
    print(f"\n200 trials x 6 s x 1278 channels: {elapsed:.2f} s, {n_events} events "
          f"({n_events / (200 * 6.0 * 1278):.2f} Hz per channel)")
    assert elapsed < 30.0
