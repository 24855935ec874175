"""The linear toy simulator against its closed-form answers."""

from __future__ import annotations

import numpy as np
import pytest

from neuroreduce.errors import ConfigError
from neuroreduce.simulators.base import Simulator
from neuroreduce.simulators.toy import LinearToySimulator, ToyConfig
from neuroreduce.stimuli import generate_stimuli


def test_step_response_matches_analytic_formula() -> None:
    sim = LinearToySimulator(ToyConfig(n_inputs=3, n_outputs=2, tau_ms=(5.0, 20.0)))
    dt = 0.5
    t = np.arange(401) * dt
    amps = np.array([0.3, -0.2, 0.7])
    currents = np.broadcast_to(amps, (1, t.size, 3))
    y = sim.run(currents, dt_out_ms=dt)[0]
    final = sim.gain_matrix @ amps
    expected = -58.0 + final * (1.0 - np.exp(-t[:, None] / np.array([5.0, 20.0])))
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-10)
    np.testing.assert_allclose(sim.step_response(t, amps), expected, rtol=0, atol=1e-12)


def test_ramp_response_is_exact_for_linearly_interpolated_input() -> None:
    sim = LinearToySimulator(ToyConfig(n_inputs=1, n_outputs=1, tau_ms=7.0))
    t = np.arange(101) * 1.0
    rate = 0.01  # nA/ms
    y = sim.run((rate * t)[None, :, None], dt_out_ms=1.0)[0, :, 0]
    w = sim.gain_matrix[0, 0]
    expected = -58.0 + w * rate * (t - 7.0 * (1.0 - np.exp(-t / 7.0)))
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-10)


def test_result_does_not_depend_on_sampling_of_a_piecewise_linear_input() -> None:
    sim = LinearToySimulator()
    coarse = generate_stimuli(
        n_inputs=4, n_time=51, dt_ms=2.0, n_trials=3, amplitude_range_na=(0, 1), seed=1
    ).currents
    t_coarse = np.arange(51) * 2.0
    t_fine = np.arange(201) * 0.5
    fine = np.stack(
        [np.stack([np.interp(t_fine, t_coarse, c[:, j]) for j in range(4)], axis=1) for c in coarse]
    )
    y_coarse = sim.run(coarse, dt_out_ms=2.0)
    y_fine = sim.run(fine, dt_out_ms=0.5)
    np.testing.assert_allclose(y_fine[:, ::4], y_coarse, rtol=0, atol=1e-10)


def test_starts_at_rest_and_is_deterministic() -> None:
    a = LinearToySimulator(ToyConfig(seed=2))
    b = LinearToySimulator(ToyConfig(seed=2))
    c = LinearToySimulator(ToyConfig(seed=3))
    u = np.full((2, 30, 4), 0.5)
    ya = a.run(u, dt_out_ms=1.0)
    np.testing.assert_array_equal(ya[:, 0], -58.0)
    np.testing.assert_array_equal(ya, b.run(u, dt_out_ms=1.0))
    assert not np.allclose(ya, c.run(u, dt_out_ms=1.0))


def test_nonlinear_is_tanh_of_linear_response_and_saturates() -> None:
    kw = dict(n_inputs=2, n_outputs=2, saturation_mv=3.0, tau_ms=(2.0, 9.0), seed=5)
    lin = LinearToySimulator(ToyConfig(**kw))
    sat = LinearToySimulator(ToyConfig(nonlinear=True, **kw))
    u = generate_stimuli(
        n_inputs=2, n_time=101, dt_ms=0.5, n_trials=2, amplitude_range_na=(0, 2), seed=0
    ).currents
    y_lin, y_sat = lin.run(u, dt_out_ms=0.5), sat.run(u, dt_out_ms=0.5)
    np.testing.assert_allclose(y_sat, -58.0 + 3.0 * np.tanh((y_lin + 58.0) / 3.0), atol=1e-12)
    assert np.all(np.abs(y_sat + 58.0) <= 3.0)
    assert np.abs(y_lin + 58.0).max() > 3.0  # the saturation is actually reached


def test_interface_names_units_and_provenance() -> None:
    sim = LinearToySimulator(ToyConfig(n_inputs=2, n_outputs=3))
    assert isinstance(sim, Simulator)
    assert sim.input_names == ("in0", "in1")
    assert sim.output_names == ("out0", "out1", "out2")
    assert (sim.input_units, sim.output_units) == ("nA", "mV")
    prov = sim.provenance()
    assert prov["simulator"] == "toy"
    assert prov["config"]["n_outputs"] == 3
    assert np.array(prov["gain_matrix_mv_per_na"]).shape == (3, 2)
    assert len(prov["tau_ms"]) == 3


def test_bad_configs_and_currents_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="one value per output"):
        ToyConfig(n_outputs=3, tau_ms=(1.0, 2.0))
    with pytest.raises(ConfigError, match="positive"):
        ToyConfig(tau_ms=0.0)
    with pytest.raises(ConfigError):
        ToyConfig(n_inputs=0)
    sim = LinearToySimulator()
    with pytest.raises(ConfigError, match=r"\[trial, time, 4\]"):
        sim.run(np.zeros((1, 10, 3)), dt_out_ms=1.0)
    with pytest.raises(ConfigError, match="dt_out_ms"):
        sim.run(np.zeros((1, 10, 4)), dt_out_ms=0.0)
