"""Simulated spike-timing ground truth: adex_ou / hh_ou layout, determinism, reliability, cost."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuroreduce.errors import ConfigError
from neuroreduce.evaluation.spikes import intrinsic_reliability, spike_trains
from neuroreduce.simulators import spike_timing as st
from neuroreduce.simulators.toy_tasks import get_task_generator


@pytest.fixture(scope="module")
def adex():
    return st.simulate_adex_ou(3, seed=1, duration_ms=1000.0)


def test_layout(adex):
    ds = adex
    n_time = int(round(1000 / 0.2)) + 1
    assert ds.inputs.shape == (12, n_time, 1) and ds.outputs.shape == (12, n_time, 1)
    assert ds.input_names == ("current",) and ds.input_units == "pA"
    assert ds.output_names == ("voltage",) and ds.output_units == "mV"
    assert ds.split is None and ds.dt_ms == 0.2
    spikes, stim = ds.field("spikes"), ds.field("stimulus")
    assert (spikes.spec.role, spikes.spec.kind, spikes.spec.channels) == (
        "target", "binary", ("soma",))
    assert stim.spec.classes == ("00", "01", "02")
    assert stim.values.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert ds.families[4] == "01"
    p = json.loads(ds.stimulus_params[5])
    assert p["stimulus"] == "01" and p["repetition"] == 1
    assert 150 <= p["mean_pA"] <= 600 and 50 <= p["std_pA"] <= 350 and 1 <= p["tau_ms"] <= 3
    assert ds.provenance["true_params"]["b_pA"] == st.ADEX_TRUE.b_pA
    # the spikes field marks exactly the upward 0 mV crossings (the +20 mV spike samples)
    v = ds.outputs[..., 0]
    crossing = np.zeros(v.shape, bool)
    crossing[:, 1:] = (v[:, :-1] < 0) & (v[:, 1:] >= 0)
    assert np.array_equal(crossing, spikes.values[..., 0] > 0.5)
    assert crossing.sum() > 30
    # repetitions share their current exactly
    assert np.array_equal(ds.inputs[0], ds.inputs[3]) and not np.array_equal(
        ds.inputs[0], ds.inputs[4])


def test_deterministic_and_registered():
    a = get_task_generator("adex_ou").make(4, seed=3, dt_ms=0.5)
    b = get_task_generator("adex_ou").make(4, seed=3, dt_ms=0.5)
    assert np.array_equal(a.outputs, b.outputs) and a.provenance == b.provenance
    c = st.simulate_adex_ou(1, seed=3, dt_ms=0.5, duration_ms=200.0)
    d = st.simulate_adex_ou(1, seed=4, dt_ms=0.5, duration_ms=200.0)
    assert not np.array_equal(c.inputs, d.inputs)
    assert a.dt_ms == 0.5 and a.outputs.shape[1] == 4001


def test_intrinsic_noise_reliability(adex):
    """Gamma_int between repetitions is high but below 1; without noise it is exactly 1."""
    trains = spike_trains(adex.outputs[..., 0], dt_ms=0.2)
    g = [intrinsic_reliability(trains[4 * s: 4 * s + 4], window_ms=2.0, duration_ms=1000.0)
         for s in range(3)]
    print("Gamma_int per stimulus (noise 50 pA):", np.round(g, 3))
    assert 0.6 < np.mean(g) < 0.97
    quiet = st.simulate_adex_ou(3, seed=1, duration_ms=1000.0, noise_pA=0.0)
    trains = spike_trains(quiet.outputs[..., 0], dt_ms=0.2)
    g0 = [intrinsic_reliability(trains[4 * s: 4 * s + 4], window_ms=2.0, duration_ms=1000.0)
          for s in range(3)]
    assert np.allclose(g0, 1.0)  # the wrong control: no noise, no unreliability


def test_adex_integrator_rheobase():
    """A constant current below rheobase never fires; well above it fires regularly."""
    p = st.ADEX_TRUE
    rheobase = p.gL_nS * (p.VT_mV - p.EL_mV - p.DT_mV)  # pA (Brette & Gerstner 2005, a = 0)
    cur = np.array([[0.8 * rheobase] * 2501, [2.0 * rheobase] * 2501])
    _, fired = st.integrate_adex(cur, p.reduced(), substeps=4, step=0.05)
    assert fired[0].sum() == 0 and fired[1].sum() > 5


@pytest.mark.parametrize("n_trials,dt", [(6, 0.2), (0, 0.2), (True, 0.2), (8, 0.0),
                                         (8, float("nan")), (8, 3.0)])
def test_bad_options(n_trials, dt):
    with pytest.raises(ConfigError) as err:
        get_task_generator("adex_ou").make(n_trials, seed=0, dt_ms=dt)
    assert "\n" not in str(err.value)


def test_bad_direct_options():
    with pytest.raises(ConfigError, match="noise_pA"):
        st.simulate_adex_ou(1, noise_pA=-1.0)
    with pytest.raises(ConfigError, match="duration_ms"):
        st.simulate_adex_ou(1, duration_ms=1.0)
    with pytest.raises(ConfigError, match="simulate_hh"):
        st.simulate_hh(np.zeros(5), 0.2)


def test_hh_cost_and_layout():
    """The HH 'detailed model': same layout; its cost per simulated second is recorded."""
    ds = st.simulate_hh_ou(1, seed=0, duration_ms=500.0)
    assert ds.outputs.shape == (4, 2501, 1) and ds.provenance["generator"] == "hh_ou"
    spikes = ds.field("spikes").values[..., 0]
    assert spikes.sum() > 4  # the squid axon fires under these currents
    assert ds.outputs.max() > 20.0  # real action potentials, not drawn ones
    cost = ds.provenance["hh_cost_s_per_simulated_s"]
    print(f"HH (NEURON, dt 0.01 ms): {cost:.4f} s per simulated second per neuron")
    assert cost > 0
