"""Stimulus families: determinism, independence of channels and trials, ranges, errors."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from neuroreduce.errors import ConfigError
from neuroreduce.scenarios import get_scenario
from neuroreduce.stimuli import (
    StimulusSet,
    check_stimuli,
    diverse_families,
    diverse_set,
    generate_stimuli,
    list_families,
    ood_families,
)

EXPECTED_FAMILIES = {"step", "multi_step", "ramp", "pulse_train", "sine", "chirp", "noise"}
OOD_FAMILIES = {"sawtooth", "square", "alpha_bursts", "smooth_steps"}


def _gen(**kw):
    args = dict(n_inputs=3, n_time=201, dt_ms=0.5, n_trials=14, amplitude_range_na=(0.0, 0.005))
    args.update(kw)
    return generate_stimuli(**args)


def test_registry_has_all_families() -> None:
    assert EXPECTED_FAMILIES | OOD_FAMILIES <= set(list_families())
    assert set(diverse_families()) == EXPECTED_FAMILIES
    assert set(ood_families()) == OOD_FAMILIES


def test_diverse_set_for_fcm_shape_balance_and_range() -> None:
    sc = get_scenario("fcm")
    stim = diverse_set(sc, dt_ms=0.5)
    assert stim.currents.shape == (40, 1001, 4)
    assert stim.currents.dtype == np.float64
    counts = Counter(stim.families)
    assert set(counts) == set(diverse_families())  # never an out-of-distribution family
    assert max(counts.values()) - min(counts.values()) <= 1
    lo, hi = sc.amplitude_range_na
    assert np.isfinite(stim.currents).all()
    assert stim.currents.min() >= 0.0
    assert stim.currents.max() <= hi + 1e-15
    np.testing.assert_array_equal(stim.currents[:, 0, :], 0.0)
    # every trial and channel actually does something
    assert (stim.currents.max(axis=1) > 0).all()


@pytest.mark.parametrize("family", sorted(EXPECTED_FAMILIES | OOD_FAMILIES))
def test_each_family_starts_at_zero_stays_in_range_and_records_params(family: str) -> None:
    stim = _gen(families=[family], n_trials=3, amplitude_range_na=(0.001, 0.002))
    assert stim.families == (family,) * 3
    np.testing.assert_array_equal(stim.currents[:, 0, :], 0.0)
    assert stim.currents.min() >= 0.0
    assert stim.currents.max() <= 0.002 + 1e-15
    for trial, text in enumerate(stim.params):
        record = json.loads(text)
        assert record["family"] == family
        assert record["trial"] == trial
        assert len(record["channels"]) == 3


def test_deterministic_given_seed_and_seed_matters() -> None:
    a, b, c = _gen(seed=3), _gen(seed=3), _gen(seed=4)
    np.testing.assert_array_equal(a.currents, b.currents)
    assert a.params == b.params
    assert not np.allclose(a.currents, c.currents)


def test_trial_does_not_depend_on_number_of_trials() -> None:
    few, many = _gen(n_trials=5), _gen(n_trials=30)
    np.testing.assert_array_equal(few.currents, many.currents[:5])
    assert few.params == many.params[:5]


def test_channels_are_drawn_independently() -> None:
    stim = _gen(n_trials=7)
    for trial in range(7):
        x = stim.currents[trial]
        for j in range(1, x.shape[1]):
            assert not np.allclose(x[:, 0], x[:, j])


def test_negative_range_gives_hyperpolarising_currents() -> None:
    stim = _gen(amplitude_range_na=(-0.004, -0.001))
    assert stim.currents.max() <= 0.0
    assert stim.currents.min() >= -0.004 - 1e-15


def test_unknown_family_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown stimulus family 'triangle'.*chirp"):
        _gen(families=["step", "triangle"])


@pytest.mark.parametrize(
    "bad",
    [
        dict(n_inputs=0),
        dict(n_time=1),
        dict(dt_ms=0.0),
        dict(amplitude_range_na=(0.005, 0.0)),
        dict(amplitude_range_na=(0.0, float("nan"))),
        dict(families=[]),
    ],
)
def test_bad_arguments_raise_config_error(bad: dict) -> None:
    with pytest.raises(ConfigError):
        _gen(**bad)


def test_check_stimuli_rejects_nan_and_wrong_shape() -> None:
    stim = _gen(n_trials=2)
    assert check_stimuli(stim, n_inputs=3, n_time=201) is stim
    with pytest.raises(ConfigError, match=r"\[trial, time, 4\]"):
        check_stimuli(stim, n_inputs=4)
    with pytest.raises(ConfigError, match="201 time samples"):
        check_stimuli(stim, n_inputs=3, n_time=200)
    currents = stim.currents.copy()
    currents[1, 5, 0] = np.nan
    broken = StimulusSet(currents=currents, families=stim.families, params=stim.params)
    with pytest.raises(ConfigError, match="NaN or inf .*trial 1"):
        check_stimuli(broken, n_inputs=3)


def test_stimulus_set_checks_lengths() -> None:
    with pytest.raises(ConfigError, match="one family"):
        StimulusSet(currents=np.zeros((2, 5, 1)), families=("step",), params=("{}", "{}"))


def test_default_families_are_the_diverse_ones() -> None:
    stim = _gen(n_trials=22)
    assert set(stim.families) == EXPECTED_FAMILIES


def test_first_trial_continues_the_trial_sequence() -> None:
    # families are assigned by position within the call (each call is balanced on its own)
    whole = _gen(n_trials=10, families=["noise"])
    tail = _gen(n_trials=4, first_trial=6, families=["noise"])
    np.testing.assert_array_equal(tail.currents, whole.currents[6:])
    assert [json.loads(p)["trial"] for p in tail.params] == [6, 7, 8, 9]
    with pytest.raises(ConfigError, match="first_trial"):
        _gen(first_trial=-1)


@pytest.mark.parametrize("family", sorted(OOD_FAMILIES))
def test_ood_families_reach_amplitude_and_differ_from_trial_to_trial(family: str) -> None:
    stim = _gen(families=[family], n_trials=6, n_time=1001, amplitude_range_na=(0.05, 0.1))
    peaks = stim.currents.max(axis=1)  # [trial, input]
    # every waveform reaches a good part of its drawn amplitude A (>= 0.05 nA) ...
    amps = np.array([[c["amplitude_na"] for c in json.loads(p)["channels"]] for p in stim.params])
    assert (peaks <= amps * (1 + 1e-8)).all()  # params keep 9 significant digits
    assert (peaks >= 0.5 * amps).all()
    # ... and trials are not copies of each other
    assert not np.allclose(stim.currents[0], stim.currents[1])


def test_sawtooth_is_piecewise_linear_with_resets() -> None:
    stim = _gen(families=["sawtooth"], n_trials=4, n_time=1001, amplitude_range_na=(0.1, 0.1))
    for trial, text in enumerate(stim.params):
        ch = json.loads(text)["channels"][0]
        x = stim.currents[trial, :, 0]
        t = np.arange(1001) * 0.5
        inside = (t > ch["onset_ms"] + 1) & (np.mod(t - ch["onset_ms"], ch["period_ms"]) > 1)
        slope = np.diff(x)[inside[1:] & inside[:-1]]
        expected = 0.1 / ch["period_ms"] * 0.5 * (-1 if ch["falling"] else 1)
        np.testing.assert_allclose(slope, expected, rtol=1e-6, atol=1e-12)


def test_square_alternates_between_baseline_and_peak_with_its_duty() -> None:
    stim = _gen(families=["square"], n_trials=3, n_time=2001, amplitude_range_na=(0.1, 0.1))
    for trial, text in enumerate(stim.params):
        ch = json.loads(text)["channels"][0]
        x = stim.currents[trial, :, 0]
        after = x[np.arange(2001) * 0.5 >= ch["onset_ms"]]
        levels = np.unique(after)
        assert len(levels) == 2
        np.testing.assert_allclose(levels, [0.1 * ch["baseline_fraction"], 0.1], rtol=1e-8)
        assert abs(np.mean(after == 0.1) - ch["duty"]) < 0.1
