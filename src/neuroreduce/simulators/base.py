"""The simulator interfaces: a :class:`Simulator` (named input currents in, named output
voltages out) and a :class:`SimulatorEntry` (what the registry knows about one simulator: its
config, checks, fingerprint and batch runs)."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from neuroreduce.errors import ConfigError

if TYPE_CHECKING:
    from neuroreduce.scenarios import Scenario


class Simulator(ABC):
    """A high-fidelity model driven by input currents, recorded at named outputs.

    Time grid convention: a trial of ``duration_ms`` sampled at ``dt_out_ms`` has
    ``round(duration_ms / dt_out_ms) + 1`` samples at ``t = k * dt_out_ms`` (both ends included:
    500 ms at 0.5 ms gives 1001 samples). Inputs are given on that grid and interpolated
    linearly in between; outputs are sampled on the same grid.
    """

    #: Names of the input channels (cells receiving current), in order.
    input_names: tuple[str, ...]
    #: Names of the output channels (cells recorded), in order.
    output_names: tuple[str, ...]
    input_units: str = "nA"
    output_units: str = "mV"

    @abstractmethod
    def run(self, currents: np.ndarray, *, dt_out_ms: float) -> np.ndarray:
        """Simulate one trial per row of ``currents``.

        Args:
            currents: Injected currents, shape ``[trial, time, input]`` in nA, sampled at
                ``dt_out_ms`` on the grid described in the class docstring.
            dt_out_ms: Sampling interval of inputs and outputs (ms).

        Returns:
            Output voltages, shape ``[trial, time, output]`` in mV, float64.
        """

    @abstractmethod
    def provenance(self) -> dict[str, Any]:
        """Settings and versions that determine the outputs (stored in datasets)."""


@dataclass(frozen=True)
class SimulatorOptions:
    """What a user may set about how a scenario's simulator models the system.

    Each simulator uses the options that apply to it (see its registry entry) and ignores the
    others: the toy simulator uses none.

    Attributes:
        parameter_set: c302 parameter set (``None``: the simulator's default).
        reader: Connectome reader name.
        dt_ms: Integration time step (ms).
        ablated: Neurons whose connections are removed (on top of the scenario's own).
    """

    parameter_set: str | None = None
    reader: str = "default"
    dt_ms: float = 0.05
    ablated: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.ablated, str):
            raise ConfigError("ablated must be a list of neuron names, not one string")
        object.__setattr__(self, "ablated", tuple(self.ablated))
        if isinstance(self.dt_ms, bool) or not isinstance(self.dt_ms, int | float):
            raise ConfigError(f"integration dt_ms must be a number of ms, got {self.dt_ms!r}")
        if not (math.isfinite(self.dt_ms) and self.dt_ms > 0):
            raise ConfigError(f"integration dt_ms must be > 0, got {self.dt_ms}")


class SimulatorEntry(ABC):
    """One simulator as the registry knows it (see :mod:`neuroreduce.simulators.registry`).

    An entry is cheap to create: it imports its simulator module only when a method needs it,
    so asking for the toy simulator never loads NEURON.

    Attributes:
        name: Registry key, the value of :attr:`neuroreduce.scenarios.Scenario.simulator`.
        module: Module holding the simulator (to list only the installed ones).
        needs_own_process: True if a run should happen in a fresh process (NEURON holds one
            compiled model per process).
    """

    name: str
    module: str
    needs_own_process: bool = False

    @abstractmethod
    def make(self, **options: Any) -> Simulator:
        """Build the simulator from the fields of its config dataclass.

        Raises:
            ConfigError: on an unknown option (the message lists the known ones).
        """

    @abstractmethod
    def config(self, scenario: Scenario, options: SimulatorOptions) -> Any:
        """The simulator's frozen config for ``scenario`` under the user's ``options``."""

    @abstractmethod
    def validate(
        self, scenario: Scenario, options: SimulatorOptions, *, dt_out_ms: float, where: str = ""
    ) -> None:
        """Check ``options`` for ``scenario`` sampled at ``dt_out_ms`` (ms) without building.

        Args:
            scenario: The scenario to simulate.
            options: The user's simulator options.
            dt_out_ms: Sampling interval of inputs and outputs (ms).
            where: Prefix naming the declaration in error messages (e.g. ``[datasets.x]``).

        Raises:
            ConfigError: one line naming the bad option.
        """

    @abstractmethod
    def fingerprint(self, scenario: Scenario, options: SimulatorOptions) -> dict[str, Any]:
        """JSON-able settings and versions that change the simulated numbers (enters a dataset
        spec hash)."""

    @abstractmethod
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
        """Simulate every trial of ``currents``.

        Args:
            scenario: The scenario (inputs, outputs, duration).
            options: The user's simulator options.
            currents: ``[trial, time, input]`` (nA) on the ``dt_out_ms`` grid.
            dt_out_ms: Sampling interval of inputs and outputs (ms).
            backend: A :class:`neuroreduce.execution.Backend` for simulators that run trials
                in worker processes; ignored by in-process ones.
            progress: Show a progress bar over trials (where the simulator has one).

        Returns:
            Outputs ``[trial, time, output]`` (mV, float64) and the simulator's provenance.
        """

    @abstractmethod
    def rerun_options(
        self,
        provenance: Mapping[str, Any],
        *,
        scenario: str | None,
        n_inputs: int,
        n_outputs: int,
    ) -> dict[str, Any]:
        """Options for :meth:`make` that rebuild the simulator of a dataset.

        Args:
            provenance: The simulator's provenance as stored in the dataset (the
                ``simulator.*`` keys without their prefix).
            scenario: The dataset's scenario name, if recorded.
            n_inputs: The dataset's number of inputs.
            n_outputs: The dataset's number of outputs.
        """


def n_samples(duration_ms: float, dt_out_ms: float) -> int:
    """Number of samples of a trial, both ends included (500 ms at 0.5 ms -> 1001)."""
    if dt_out_ms <= 0:
        raise ConfigError(f"dt_out_ms must be > 0, got {dt_out_ms}")
    steps = duration_ms / dt_out_ms
    if abs(steps - round(steps)) > 1e-6:
        raise ConfigError(
            f"duration {duration_ms} ms is not a whole number of dt_out={dt_out_ms} ms steps"
        )
    return int(round(steps)) + 1


def check_currents(currents: np.ndarray, n_inputs: int, *, n_time: int | None = None) -> np.ndarray:
    """Validate a ``[trial, time, input]`` current array; return it as float64.

    Raises:
        ConfigError: on a wrong number of dimensions or inputs, a wrong length, or NaN/inf,
            naming the offending shape or trial.
    """
    arr = np.asarray(currents, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[2] != n_inputs:
        raise ConfigError(
            f"currents must have shape [trial, time, {n_inputs}] (nA); got {tuple(arr.shape)}"
        )
    if n_time is not None and arr.shape[1] != n_time:
        raise ConfigError(
            f"currents have {arr.shape[1]} time samples; this simulation needs {n_time} "
            "(duration / dt_out + 1)"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        trial = int(np.argwhere(bad)[0][0])
        raise ConfigError(f"currents contain NaN or inf (first in trial {trial}); fix the stimulus")
    return arr
