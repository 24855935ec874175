"""High-fidelity simulators behind one interface (:class:`Simulator`), chosen by name."""

from neuroreduce.simulators.base import (
    Simulator,
    SimulatorEntry,
    SimulatorOptions,
    check_currents,
)
from neuroreduce.simulators.registry import (
    SIMULATORS,
    entry_for,
    list_simulators,
    make_simulator,
    register_simulator,
    simulator_entry,
)

__all__ = [
    "SIMULATORS",
    "Simulator",
    "SimulatorEntry",
    "SimulatorOptions",
    "check_currents",
    "entry_for",
    "list_simulators",
    "make_simulator",
    "register_simulator",
    "simulator_entry",
]
