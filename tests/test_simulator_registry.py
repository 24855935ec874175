"""The simulator registry: every simulator found through its entry, which owns its config,
checks, fingerprint (dataset spec hash), batch runs and rebuild from provenance."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neuroreduce
from neuroreduce.errors import ConfigError
from neuroreduce.experiments.dataset_spec import DatasetSpec
from neuroreduce.pipeline import SimulationSettings, run_simulator
from neuroreduce.scenarios import Scenario, get_scenario
from neuroreduce.simulators import (
    SIMULATORS,
    SimulatorOptions,
    entry_for,
    list_simulators,
    make_simulator,
    register_simulator,
    simulator_entry,
)
from neuroreduce.simulators.toy import LinearToySimulator, ToyConfig

SRC = Path(neuroreduce.__file__).parent

#: Spec hashes computed before the simulators went through the registry (tool and package
#: versions fixed below, so the pins hold on any installation). Experiment caches key on them.
PINNED = {
    "toy": (
        {"scenario": "toy", "stimuli": 12, "dt_out_ms": 1.0},
        "df01648d1cff89b26ec8c0eb6958f3bfb0dd97ca75c4d48266ceaba0dfc5d61f",
    ),
    "toy_ignored_options": (
        {"scenario": "toy", "parameter_set": "C1", "dt_ms": 0.1, "ablated": ["x"]},
        "00091b76cf1a94f3442d73394aab6c4302fb1a163ebe18942934febeec079aed",
    ),
    "fcm": (
        {"scenario": "fcm"},
        "aa89d956d97891690602f62ae533ffca845d67dc8d260cd5ae5d3cfd76f5b175",
    ),
    "fcm_options": (
        {"scenario": "fcm", "parameter_set": "C", "dt_ms": 0.025, "ablated": ["AVBL"]},
        "619f0f16f4ee02f9aeee4f9cd427f6328e91b359c18f762d71cfd7231fe29ea4",
    ),
    "fcm_varshney": (
        {"scenario": "fcm", "reader": "varshney"},
        "31f2597143d27a9b5e1bc4c7f3a474c2176e9a2a1cc2db5ddbc3cd2a0cc09ccb",
    ),
}


@pytest.fixture
def fixed_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    from neuroreduce.simulators import c302_build

    versions = {"c302": "0.0", "neuron": "0.0", "pyneuroml": "0.0", "cect": "0.0"}
    monkeypatch.setattr(c302_build, "tool_versions", lambda: versions)
    monkeypatch.setattr(neuroreduce, "__version__", "0.0.0")


@pytest.mark.parametrize("key", sorted(PINNED))
def test_spec_hash_is_pinned(key: str, fixed_versions: None) -> None:
    table, expected = PINNED[key]
    assert DatasetSpec.from_dict("d", table).spec_hash() == expected


def _sines(n_trials: int = 2) -> np.ndarray:
    t = np.arange(201) * 0.5
    periods = 20.0 * np.arange(1, 5)[None, None, :]
    phase = np.arange(n_trials)[:, None, None]
    return 0.5 + 0.5 * np.sin(2 * np.pi * t[None, :, None] / periods + phase)


def test_toy_numbers_through_run_simulator_are_pinned() -> None:
    y, prov = run_simulator(
        get_scenario("toy"), _sines(), dt_out_ms=0.5, settings=SimulationSettings(), progress=False
    )
    assert y.shape == (2, 201, 4) and y.dtype == np.float64
    np.testing.assert_allclose(
        y[0, 100], [-65.09650951293412, -47.239987707858944, -56.93788054996701,
                    -59.54294159979345], rtol=1e-12)
    np.testing.assert_allclose(y.sum(), -93382.52836325529, rtol=1e-12)
    assert prov["simulator"] == "toy" and prov["config"]["n_inputs"] == 4


def test_every_scenario_simulator_is_registered() -> None:
    assert {"celegans", "toy"} <= set(list_simulators())
    for name in list_simulators():
        assert simulator_entry(name).name == name
    assert entry_for(get_scenario("fcm")) is SIMULATORS["celegans"]
    assert entry_for(get_scenario("toy")) is SIMULATORS["toy"]
    assert SIMULATORS["celegans"].needs_own_process and not SIMULATORS["toy"].needs_own_process


def test_unknown_names_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match=r"unknown simulator 'nope'; known simulators: celegans"):
        simulator_entry("nope")
    odd = Scenario(name="odd", description="", inputs=("a",), outputs=("b",), simulator="nope")
    with pytest.raises(ConfigError, match=r"scenario 'odd' names unknown simulator 'nope'") as e:
        run_simulator(odd, np.zeros((1, 3, 1)), dt_out_ms=1.0, settings=SimulationSettings())
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=r"unknown option 'gain' for simulator 'toy'"):
        make_simulator("toy", gain=1.0)
    with pytest.raises(ConfigError, match="already registered"):
        register_simulator(SIMULATORS["toy"])


def test_no_dispatch_on_simulator_names_outside_the_registry() -> None:
    pattern = re.compile(r"""[=!]=\s*["'](celegans|toy)["']|["'](celegans|toy)["']\s*[=!]=""")
    offenders = [
        str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
        if p.parent.name != "simulators" and pattern.search(p.read_text())
    ]
    assert offenders == []


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="dt_ms must be > 0"):
        SimulatorOptions(dt_ms=0.0)
    with pytest.raises(ConfigError, match="not one string"):
        SimulatorOptions(ablated="AVBL")  # type: ignore[arg-type]
    assert SimulatorOptions(ablated=["AVBL"]).ablated == ("AVBL",)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options, match",
    [
        (SimulatorOptions(parameter_set="Z9"), r"unknown parameter set 'Z9'"),
        (SimulatorOptions(reader="nope"), r"unknown connectome reader 'nope'|unknown reader"),
        (SimulatorOptions(dt_ms=0.3), r"\[x\] dt_out_ms: 0.5 ms must be a whole multiple of the "
                                      r"integration step dt_ms = 0.3 ms"),
    ],
)
def test_celegans_validation(options: SimulatorOptions, match: str) -> None:
    entry = simulator_entry("celegans")
    with pytest.raises(ConfigError, match=match) as e:
        entry.validate(get_scenario("fcm"), options, dt_out_ms=0.5, where="[x]")
    assert "\n" not in str(e.value)


def test_toy_accepts_any_options() -> None:
    simulator_entry("toy").validate(
        get_scenario("toy"), SimulatorOptions(parameter_set="Z9", dt_ms=0.3), dt_out_ms=0.5
    )


def test_celegans_config_and_fingerprint_follow_the_options() -> None:
    from neuroreduce.simulators.c302_build import BuildSpec, build_key

    entry, fcm = simulator_entry("celegans"), get_scenario("fcm")
    config = entry.config(fcm, SimulatorOptions(dt_ms=0.025, ablated=("AVBL",)))
    assert (config.scenario, config.parameter_set, config.dt_ms, config.ablated) == (
        "fcm", "C0", 0.025, ("AVBL",))
    fp = entry.fingerprint(fcm, SimulatorOptions(parameter_set="C1"))
    build = BuildSpec(parameter_set="C1", stimulated=fcm.inputs, dt_ms=0.05)
    assert fp == {"celegans_build_key": build_key(build), "parameter_set": "C1"}


def test_celegans_rerun_options_from_provenance() -> None:
    prov = {"simulator": "celegans", "parameter_set": "C1", "dt_ms": 0.05, "ablated": None,
            "cache_dir": "/x", "neuron_version": "9"}
    opts = simulator_entry("celegans").rerun_options(prov, scenario="fcm", n_inputs=4, n_outputs=4)
    assert opts == {"scenario": "fcm", "parameter_set": "C1", "dt_ms": 0.05, "ablated": ()}


def test_toy_runs_in_process_and_rebuilds_from_its_provenance() -> None:
    entry, toy = simulator_entry("toy"), get_scenario("toy")
    u = _sines(3)
    y, prov = entry.run_many(toy, SimulatorOptions(), u, dt_out_ms=0.5, progress=False)
    direct = LinearToySimulator(ToyConfig(n_inputs=4, n_outputs=4)).run(u, dt_out_ms=0.5)
    np.testing.assert_array_equal(y, direct)
    assert entry.fingerprint(toy, SimulatorOptions()) == {"toy": prov}
    options = entry.rerun_options(prov, scenario="toy", n_inputs=4, n_outputs=4)
    np.testing.assert_array_equal(make_simulator("toy", **options).run(u, dt_out_ms=0.5), y)


def test_asking_for_the_toy_does_not_load_neuron() -> None:
    code = (
        "import sys, numpy as np\n"
        "from neuroreduce.experiments.dataset_spec import DatasetSpec\n"
        "from neuroreduce.simulators import simulator_entry, list_simulators\n"
        "list_simulators()\n"
        "DatasetSpec.from_dict('d', {'scenario': 'toy'}).spec_hash()\n"
        "assert 'neuron' not in sys.modules and 'neuroreduce.simulators.celegans' not in "
        "sys.modules, sorted(m for m in sys.modules if 'neuron' in m)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_celegans_through_the_registry_equals_simulate_many() -> None:
    """run_simulator on a C. elegans scenario is the parallel runner on the same config."""
    from neuroreduce.execution import Backend
    from neuroreduce.simulators.celegans import CelegansConfig
    from neuroreduce.simulators.parallel import simulate_many

    short = get_scenario("fcm-50ms-test")  # registered in conftest.py
    t = np.arange(101) * 0.5
    u = np.zeros((2, 101, len(short.inputs)))
    u[0, 20:, 0] = 0.003
    u[1, :, 1] = 0.002 * np.sin(2 * np.pi * t / 25.0) ** 2
    settings = SimulationSettings(parameter_set="C0", dt_ms=0.05)
    y, prov = run_simulator(short, u, dt_out_ms=0.5, settings=settings, progress=False)
    config = CelegansConfig(scenario=short.name, parameter_set="C0", dt_ms=0.05)
    direct = simulate_many(config, u, dt_out_ms=0.5, backend=Backend(), progress=False)
    np.testing.assert_array_equal(y, direct)
    assert prov["simulator"] == "celegans" and prov["parameter_set"] == "C0"
    assert np.abs(y[0] - y[1]).max() > 0  # the stimuli act


def test_speed_reruns_a_toy_dataset_from_its_provenance() -> None:
    from neuroreduce.experiments.speed import measure_simulator, simulator_of_dataset
    from neuroreduce.pipeline import simulate

    ds = simulate("toy", n_stimuli=4, dt_out_ms=1.0, seed=2, progress=False)
    name, options = simulator_of_dataset(ds)
    assert name == "toy"
    rerun = make_simulator(name, **options).run(np.asarray(ds.inputs), dt_out_ms=1.0)
    np.testing.assert_allclose(rerun, ds.outputs, rtol=1e-6, atol=1e-4)
    timing = measure_simulator(ds, np.array([0, 1]))  # in-process: the entry needs no worker
    assert timing["simulator"] == "toy" and len(timing["trial_s"]) == 2
