"""Simulators by name: one :class:`~neuroreduce.simulators.base.SimulatorEntry` per simulator.

An entry owns everything the rest of the package needs to know about its simulator: how its
config is built from a scenario and the user's
:class:`~neuroreduce.simulators.base.SimulatorOptions`, how those options are checked, which
settings enter a dataset's spec hash, how many stimuli are run, and how the simulator of a
stored dataset is rebuilt. Callers dispatch through
:func:`simulator_entry` (by name) or :func:`entry_for` (by scenario), never on the name::

    entry = entry_for(get_scenario("fcm"))
    outputs, provenance = entry.run_many(scenario, SimulatorOptions(), currents, dt_out_ms=0.5)

Simulator modules are imported only when an entry's method needs them, so listing names is
cheap and NEURON is not loaded by asking for the toy simulator.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from neuroreduce.errors import ConfigError, unknown_name_error
from neuroreduce.simulators.base import Simulator, SimulatorEntry, SimulatorOptions

if TYPE_CHECKING:
    from neuroreduce.scenarios import Scenario


class CelegansEntry(SimulatorEntry):
    """The c302 C. elegans network in NEURON (:mod:`neuroreduce.simulators.celegans`).

    Uses every option: parameter set, connectome reader, integration step, ablations. Many
    stimuli run through :func:`neuroreduce.simulators.parallel.simulate_many` on the given
    execution backend (one network per worker process).
    """

    name = "celegans"
    module = "neuroreduce.simulators.celegans"
    needs_own_process = True

    def make(self, **options: Any) -> Simulator:
        from neuroreduce.simulators.celegans import CelegansConfig, CelegansSimulator

        return CelegansSimulator(_config(CelegansConfig, self.name, options))

    def config(self, scenario: Scenario, options: SimulatorOptions) -> Any:
        from neuroreduce.simulators.celegans import CelegansConfig

        fields: dict[str, Any] = {
            "scenario": scenario.name,
            "reader": options.reader,
            "dt_ms": options.dt_ms,
            "ablated": tuple(options.ablated),
        }
        if options.parameter_set is not None:
            fields["parameter_set"] = options.parameter_set
        return CelegansConfig(**fields)

    def validate(
        self, scenario: Scenario, options: SimulatorOptions, *, dt_out_ms: float, where: str = ""
    ) -> None:
        from neuroreduce.simulators.c302_build import PARAMETER_SETS
        from neuroreduce.simulators.connectome import get_reader

        if options.parameter_set is not None and options.parameter_set not in PARAMETER_SETS:
            raise unknown_name_error("parameter set", options.parameter_set, list(PARAMETER_SETS))
        get_reader(options.reader)
        ratio = dt_out_ms / options.dt_ms
        if abs(ratio - round(ratio)) > 1e-6:
            prefix = f"{where} " if where else ""
            raise ConfigError(
                f"{prefix}dt_out_ms: {dt_out_ms} ms must be a whole multiple of the "
                f"integration step dt_ms = {options.dt_ms} ms"
            )

    def fingerprint(self, scenario: Scenario, options: SimulatorOptions) -> dict[str, Any]:
        """The c302 build key (parameter set, reader and its revision, integration step,
        stimulated cells, tool versions) and the parameter set actually used."""
        from neuroreduce.simulators.c302_build import build_key

        build = self.config(scenario, options).build_spec()
        return {"celegans_build_key": build_key(build), "parameter_set": build.parameter_set}

    def run_many(
        self,
        scenario: Scenario,
        options: SimulatorOptions,
        currents: np.ndarray,
        *,
        dt_out_ms: float,
        backend: Any = None,
        progress: bool = True,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        from neuroreduce.simulators.celegans import CelegansSimulator
        from neuroreduce.simulators.parallel import simulate_many

        config = self.config(scenario, options)
        # builds or finds the cached network (no NEURON in this process) and checks the names
        provenance = dict(CelegansSimulator(config).provenance())
        outputs = simulate_many(
            config, currents, dt_out_ms=dt_out_ms, backend=backend, progress=progress
        )
        return outputs, provenance

    def rerun_options(
        self,
        provenance: Mapping[str, Any],
        *,
        scenario: str | None,
        n_inputs: int,
        n_outputs: int,
    ) -> dict[str, Any]:
        from neuroreduce.simulators.celegans import CelegansConfig

        allowed = {f.name for f in dataclasses.fields(CelegansConfig)} - {"cache_dir"}
        options = {k: v for k, v in provenance.items() if k in allowed}
        if scenario is not None:
            options.setdefault("scenario", scenario)
        if "ablated" in options:
            options["ablated"] = tuple(options["ablated"] or ())
        return options


class ToyEntry(SimulatorEntry):
    """The closed-form linear toy system (:mod:`neuroreduce.simulators.toy`).

    Uses none of the options: its config is the scenario's number of inputs and outputs with
    the toy defaults. Runs in this process (it is exact and fast).
    """

    name = "toy"
    module = "neuroreduce.simulators.toy"
    needs_own_process = False

    def make(self, **options: Any) -> Simulator:
        from neuroreduce.simulators.toy import LinearToySimulator, ToyConfig

        return LinearToySimulator(_config(ToyConfig, self.name, options))

    def config(self, scenario: Scenario, options: SimulatorOptions) -> Any:
        from neuroreduce.simulators.toy import ToyConfig

        return ToyConfig(n_inputs=len(scenario.inputs), n_outputs=len(scenario.outputs))

    def _simulator(self, scenario: Scenario, options: SimulatorOptions) -> Simulator:
        from neuroreduce.simulators.toy import LinearToySimulator

        return LinearToySimulator(self.config(scenario, options))

    def validate(
        self, scenario: Scenario, options: SimulatorOptions, *, dt_out_ms: float, where: str = ""
    ) -> None:
        """Nothing to check: the toy uses none of the options and samples any grid exactly."""

    def fingerprint(self, scenario: Scenario, options: SimulatorOptions) -> dict[str, Any]:
        """The full provenance (config, mixing matrix, package version)."""
        return {"toy": dict(self._simulator(scenario, options).provenance())}

    def run_many(
        self,
        scenario: Scenario,
        options: SimulatorOptions,
        currents: np.ndarray,
        *,
        dt_out_ms: float,
        backend: Any = None,
        progress: bool = True,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        toy = self._simulator(scenario, options)
        return toy.run(currents, dt_out_ms=dt_out_ms), dict(toy.provenance())

    def rerun_options(
        self,
        provenance: Mapping[str, Any],
        *,
        scenario: str | None,
        n_inputs: int,
        n_outputs: int,
    ) -> dict[str, Any]:
        from neuroreduce.simulators.toy import ToyConfig

        stored = provenance.get("config")
        config = stored if isinstance(stored, Mapping) else {}
        allowed = {f.name for f in dataclasses.fields(ToyConfig)}
        options = {k: v for k, v in config.items() if k in allowed}
        if isinstance(options.get("tau_ms"), list):
            options["tau_ms"] = tuple(options["tau_ms"])
        options.setdefault("n_inputs", n_inputs)
        options.setdefault("n_outputs", n_outputs)
        return options


#: Simulator name -> its registry entry.
SIMULATORS: dict[str, SimulatorEntry] = {e.name: e for e in (CelegansEntry(), ToyEntry())}


def register_simulator(entry: SimulatorEntry) -> SimulatorEntry:
    """Add ``entry`` to the registry under ``entry.name`` (names are unique).

    Raises:
        ConfigError: if the name is taken.
    """
    if entry.name in SIMULATORS:
        raise ConfigError(f"simulator {entry.name!r} is already registered")
    SIMULATORS[entry.name] = entry
    return entry


def list_simulators() -> list[str]:
    """Names of the simulators available in this installation."""
    return sorted(n for n, e in SIMULATORS.items() if importlib.util.find_spec(e.module))


def simulator_entry(name: str) -> SimulatorEntry:
    """The registry entry of the simulator called ``name``.

    Raises:
        ConfigError: on an unknown (or not installed) simulator; the message lists the known.
    """
    if name not in list_simulators():
        raise unknown_name_error("simulator", name, list_simulators())
    return SIMULATORS[name]


def entry_for(scenario: Scenario) -> SimulatorEntry:
    """The registry entry of the simulator that runs ``scenario``.

    Raises:
        ConfigError: naming the scenario if its simulator is unknown.
    """
    if scenario.simulator not in list_simulators():
        raise ConfigError(
            f"scenario {scenario.name!r} names unknown simulator {scenario.simulator!r}; known "
            f"simulators: {', '.join(list_simulators())}"
        )
    return SIMULATORS[scenario.simulator]


def make_simulator(name: str, **options: Any) -> Simulator:
    """Build the simulator called ``name`` from its config fields.

    Args:
        name: Registry key (see :func:`list_simulators`).
        **options: Fields of that simulator's config dataclass (e.g. ``parameter_set``).

    Raises:
        ConfigError: on an unknown simulator name or option (the message lists the known ones).
    """
    return simulator_entry(name).make(**options)


def _config(cls: type, name: str, options: Mapping[str, Any]) -> Any:
    fields = [f.name for f in dataclasses.fields(cls)]
    for key in options:
        if key not in fields:
            raise ConfigError(
                f"unknown option {key!r} for simulator {name!r}; known options: {', '.join(fields)}"
            )
    return cls(**options)
