"""High-fidelity simulators behind one interface (:class:`Simulator`), chosen by name."""

from neuroreduce.simulators.base import Simulator, check_currents

__all__ = ["Simulator", "check_currents"]
