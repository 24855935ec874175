"""High-fidelity simulators behind one interface (:class:`Simulator`), chosen by name."""

from neuroreduce.simulators.base import Simulator, check_currents
from neuroreduce.simulators.registry import SIMULATORS, list_simulators, make_simulator

__all__ = ["SIMULATORS", "Simulator", "check_currents", "list_simulators", "make_simulator"]
