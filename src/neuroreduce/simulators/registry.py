"""Simulators by name: ``make_simulator("celegans", parameter_set="C1")``.

Each entry builds a simulator from keyword options that are the fields of its frozen config
dataclass. Simulator modules are imported only when their entry is used, so listing names is
cheap and NEURON is not loaded by asking for the toy simulator.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Callable
from typing import Any

from neuroreduce.errors import ConfigError, unknown_name_error
from neuroreduce.simulators.base import Simulator


def _celegans(**options: Any) -> Simulator:
    from neuroreduce.simulators.celegans import CelegansConfig, CelegansSimulator

    return CelegansSimulator(_config(CelegansConfig, "celegans", options))


def _toy(**options: Any) -> Simulator:
    from neuroreduce.simulators.toy import LinearToySimulator, ToyConfig

    return LinearToySimulator(_config(ToyConfig, "toy", options))


#: Simulator name -> factory taking the config fields as keyword options.
SIMULATORS: dict[str, Callable[..., Simulator]] = {"celegans": _celegans, "toy": _toy}
#: Module each simulator lives in (to list only the simulators present in this installation).
_MODULES = {"celegans": "neuroreduce.simulators.celegans", "toy": "neuroreduce.simulators.toy"}


def list_simulators() -> list[str]:
    """Names of the simulators available in this installation."""
    return sorted(name for name in SIMULATORS if importlib.util.find_spec(_MODULES[name]))


def make_simulator(name: str, **options: Any) -> Simulator:
    """Build the simulator called ``name`` from its config fields.

    Args:
        name: Registry key (see :func:`list_simulators`).
        **options: Fields of that simulator's config dataclass (e.g. ``parameter_set``).

    Raises:
        ConfigError: on an unknown simulator name or option (the message lists the known ones).
    """
    if name not in list_simulators():
        raise unknown_name_error("simulator", name, list_simulators())
    return SIMULATORS[name](**options)


def _config(cls: type, name: str, options: dict[str, Any]) -> Any:
    fields = [f.name for f in dataclasses.fields(cls)]
    for key in options:
        if key not in fields:
            raise ConfigError(
                f"unknown option {key!r} for simulator {name!r}; known options: {', '.join(fields)}"
            )
    return cls(**options)
