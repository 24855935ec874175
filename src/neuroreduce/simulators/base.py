"""The simulator interface: named input currents in, named output voltages out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from neuroreduce.errors import ConfigError


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
