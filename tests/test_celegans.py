"""The c302 C. elegans network in NEURON: rest, determinism, sampling, ablation, errors.

These tests build the default network (c302 C0, default connectome) in the cache folder
(``$NEUROREDUCE_CACHE_DIR`` or the user cache): the first run pays generation and compilation
(~25 s) and the relaxation to rest (~25 s per ablation set); later runs reuse both. Trials use a
50 ms copy of the FCM scenario (same cells, so the same network) to stay short.
"""

from __future__ import annotations

import numpy as np
import pytest

from neuroreduce.errors import ConfigError, SimulationError
from neuroreduce.scenarios import list_scenarios
from neuroreduce.simulators import make_simulator
from neuroreduce.simulators.c302_build import BuildSpec, BuiltModel
from neuroreduce.simulators.celegans import (
    DEFAULT_PARAMETER_SET,
    CelegansConfig,
    CelegansSimulator,
    network_for,
)

SHORT = "fcm-50ms-test"  # registered in conftest.py: FCM cells, 50 ms


@pytest.fixture(scope="module")
def sim() -> CelegansSimulator:
    simulator = CelegansSimulator(CelegansConfig(scenario=SHORT))
    simulator.prepare()
    return simulator


def _step(n: int, amps_na: tuple[float, ...], *, start: int = 20) -> np.ndarray:
    cur = np.zeros((1, n, len(amps_na)))
    cur[0, start:] = amps_na
    return cur


@pytest.mark.slow
def test_zero_input_stays_at_rest(sim: CelegansSimulator) -> None:
    out = sim.run(np.zeros((2, 101, 4)), dt_out_ms=0.5)
    assert out.shape == (2, 101, 4)
    np.testing.assert_allclose(out, np.broadcast_to(out[:1, :1], out.shape), rtol=0, atol=1e-6)
    assert np.all(out[0, 0] < 0) and np.all(out[0, 0] > -80)  # a resting potential in mV


@pytest.mark.slow
def test_same_stimulus_gives_identical_outputs(sim: CelegansSimulator) -> None:
    cur = _step(101, (0.05, 0.02, 0.08, 0.03))
    first = sim.run(np.concatenate([cur, cur]), dt_out_ms=0.5)
    again = sim.run(cur, dt_out_ms=0.5)
    np.testing.assert_array_equal(first[0], first[1])
    np.testing.assert_array_equal(first[0], again[0])
    assert np.abs(first[0] - first[0, :1]).max() > 1.0  # the stimulus does something (mV)


@pytest.mark.slow
def test_sampling_at_0p5_and_0p1_ms_agree_on_common_samples(sim: CelegansSimulator) -> None:
    t_coarse = np.arange(101) * 0.5
    t_fine = np.arange(501) * 0.1
    wave = 0.06 * np.sin(2 * np.pi * t_coarse / 20.0) ** 2
    coarse = np.stack([wave, wave[::-1], 0.5 * wave, np.zeros_like(wave)], axis=1)[None]
    fine = np.stack([np.interp(t_fine, t_coarse, coarse[0, :, k]) for k in range(4)], axis=1)[None]
    a = sim.run(coarse, dt_out_ms=0.5)
    b = sim.run(fine, dt_out_ms=0.1)
    assert b.shape == (1, 501, 4)
    np.testing.assert_allclose(b[:, ::5], a, rtol=0, atol=1e-9)


@pytest.mark.slow
def test_ablating_the_input_neurons_removes_their_influence(sim: CelegansSimulator) -> None:
    cur = _step(101, (0.08, 0.08, 0.08, 0.08))
    intact = sim.run(cur, dt_out_ms=0.5)
    assert np.abs(intact - intact[:, :1]).max() > 2.0
    try:
        sim.ablate(sim.input_names)
        assert sim.provenance()["ablated"] == sorted(sim.input_names)
        cut = sim.run(cur, dt_out_ms=0.5)
    finally:
        sim.ablate(())
    np.testing.assert_allclose(cut, np.broadcast_to(cut[:, :1], cut.shape), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(sim.run(cur, dt_out_ms=0.5), intact)  # connections restored


@pytest.mark.slow
def test_bad_currents_are_rejected_with_shapes(sim: CelegansSimulator) -> None:
    with pytest.raises(ConfigError, match=r"shape \[trial, time, 4\].*\(1, 101, 3\)"):
        sim.run(np.zeros((1, 101, 3)), dt_out_ms=0.5)
    with pytest.raises(ConfigError, match="100 time samples; this simulation needs 101"):
        sim.run(np.zeros((1, 100, 4)), dt_out_ms=0.5)
    bad = np.zeros((2, 101, 4))
    bad[1, 7, 2] = np.nan
    with pytest.raises(ConfigError, match="NaN or inf .*trial 1"):
        sim.run(bad, dt_out_ms=0.5)
    bad[1, 7, 2] = np.inf
    with pytest.raises(ConfigError, match="NaN or inf"):
        sim.run(bad, dt_out_ms=0.5)
    with pytest.raises(ConfigError, match="whole multiple of the integration step"):
        sim.run(np.zeros((1, 1001, 4)), dt_out_ms=0.05 / 2)


@pytest.mark.slow
def test_diverging_trial_is_a_simulation_error_naming_it(sim: CelegansSimulator) -> None:
    cur = np.zeros((2, 101, 4))
    cur[1] = 5.0  # nA: far outside the network's range
    with pytest.raises(SimulationError, match="trial 1 .*smaller dt_ms"):
        sim.run(cur, dt_out_ms=0.5)
    after = sim.run(np.zeros((1, 101, 4)), dt_out_ms=0.5)  # the next trial starts from rest
    np.testing.assert_allclose(after, np.broadcast_to(after[:, :1], after.shape), atol=1e-6)


@pytest.mark.slow
def test_unknown_neuron_names_list_the_known_ones(sim: CelegansSimulator) -> None:
    with pytest.raises(ConfigError, match="unknown neuron 'NOPE'; known neurons: ADAL, ADAR"):
        sim.ablate(["AVBL", "NOPE"])
    with pytest.raises(ConfigError, match="unknown neuron 'XYZ'"):
        CelegansSimulator(CelegansConfig(scenario=SHORT, ablated=("XYZ",)))
    assert len(sim.neuron_names) == 302


@pytest.mark.slow
def test_provenance_and_registry(sim: CelegansSimulator) -> None:
    prov = sim.provenance()
    assert prov["parameter_set"] == DEFAULT_PARAMETER_SET and prov["reader"] == "default"
    assert prov["dt_ms"] == 0.05 and prov["cache_key"] == sim.built.key
    assert prov["c302_version"] and prov["neuron_version"] and prov["ablated"] == []
    made = make_simulator("celegans", scenario=SHORT)
    assert isinstance(made, CelegansSimulator) and made.built.key == sim.built.key


@pytest.mark.slow
def test_a_second_network_in_one_process_is_refused(sim: CelegansSimulator) -> None:
    other = BuiltModel(
        path=sim.built.path, key="0" * 16, spec=BuildSpec(parameter_set="C1"), cells=(), synapses=()
    )
    with pytest.raises(ConfigError, match="one compiled model per process.*workers=1"):
        network_for(other)


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ConfigError, match="unknown parameter set 'Z'"):
        CelegansConfig(parameter_set="Z")
    with pytest.raises(ConfigError, match="unknown scenario"):
        CelegansConfig(scenario="no-such-scenario")
    with pytest.raises(ConfigError, match="dt_ms must be a positive"):
        CelegansConfig(dt_ms=0)
    with pytest.raises(ConfigError, match="list of neuron names"):
        CelegansConfig(ablated="AVBL")
    if "toy" in list_scenarios():
        with pytest.raises(ConfigError, match="not a C. elegans scenario"):
            CelegansConfig(scenario="toy")
