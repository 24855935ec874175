"""A linear toy simulator with a closed-form answer: the stand-in for fast end-to-end tests.

Each output ``o`` is a first-order low-pass filter of a fixed random mix of the inputs::

    tau_o * dx_o/dt = -x_o + sum_i W[o, i] * u_i(t)          (x_o in mV, u_i in nA)
    y_o(t) = rest_mv + x_o(t)                                 (linear)
    y_o(t) = rest_mv + saturation_mv * tanh(x_o / saturation_mv)   (``nonlinear=True``)

starting at rest (``x_o(0) = 0``). Inputs are linear between samples (the
:class:`~neuroreduce.simulators.base.Simulator` convention), and the update uses the exact
first-order-hold discretisation of that piecewise-linear input, so :meth:`LinearToySimulator.run`
is exact up to rounding: a constant input ``U`` gives ``x(t) = (W U) (1 - exp(-t / tau))``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.signal import lfilter

import neuroreduce
from neuroreduce.errors import ConfigError
from neuroreduce.simulators.base import Simulator, check_currents


@dataclass(frozen=True)
class ToyConfig:
    """Settings of :class:`LinearToySimulator`.

    Attributes:
        n_inputs: Number of input channels (named ``in0``, ``in1``, ...).
        n_outputs: Number of output channels (named ``out0``, ``out1``, ...).
        tau_ms: Time constant of each output (ms): one value for all, one per output, or
            ``None`` for values spaced geometrically from 10 to 80 ms.
        gain_mv_per_na: Scale of the mixing matrix; ``W = gain * U(-1, 1)`` (mV/nA). The
            default makes a 1 nA input (the ``toy`` scenario's range is 0-1 nA) move an
            output by up to 10 mV.
        rest_mv: Resting output (mV).
        nonlinear: Pass each output through ``saturation_mv * tanh(x / saturation_mv)``.
        saturation_mv: Half-range of the saturation (mV), used when ``nonlinear``.
        seed: Seed of the mixing matrix.
    """

    n_inputs: int = 4
    n_outputs: int = 4
    tau_ms: float | tuple[float, ...] | None = None
    gain_mv_per_na: float = 10.0
    rest_mv: float = -58.0
    nonlinear: bool = False
    saturation_mv: float = 10.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_inputs < 1 or self.n_outputs < 1:
            raise ConfigError(
                f"toy simulator needs n_inputs >= 1 and n_outputs >= 1; got {self.n_inputs}, "
                f"{self.n_outputs}"
            )
        if isinstance(self.tau_ms, list):
            object.__setattr__(self, "tau_ms", tuple(self.tau_ms))
        taus = self.taus_ms()
        if not all(math.isfinite(t) and t > 0 for t in taus):
            raise ConfigError(f"tau_ms must be positive (ms); got {self.tau_ms}")
        if not math.isfinite(self.gain_mv_per_na) or not math.isfinite(self.rest_mv):
            raise ConfigError("gain_mv_per_na and rest_mv must be finite numbers")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        if not self.saturation_mv > 0:
            raise ConfigError(f"saturation_mv must be > 0, got {self.saturation_mv}")

    def taus_ms(self) -> tuple[float, ...]:
        """One time constant (ms) per output."""
        if self.tau_ms is None:
            return tuple(float(t) for t in np.geomspace(10.0, 80.0, self.n_outputs))
        if isinstance(self.tau_ms, int | float):
            return (float(self.tau_ms),) * self.n_outputs
        taus = tuple(float(t) for t in self.tau_ms)
        if len(taus) != self.n_outputs:
            raise ConfigError(
                f"tau_ms has {len(taus)} values but there are {self.n_outputs} outputs; give one "
                "value per output or a single number"
            )
        return taus


class LinearToySimulator(Simulator):
    """Stable linear (optionally output-saturating) system with an exact discrete solution.

    Args:
        config: Settings; defaults to ``ToyConfig()`` (4 inputs, 4 outputs).
    """

    input_units = "nA"
    output_units = "mV"

    def __init__(self, config: ToyConfig | None = None) -> None:
        self.config = config if config is not None else ToyConfig()
        cfg = self.config
        self.input_names = tuple(f"in{i}" for i in range(cfg.n_inputs))
        self.output_names = tuple(f"out{o}" for o in range(cfg.n_outputs))
        rng = np.random.default_rng(cfg.seed)
        #: Mixing matrix W, shape ``[output, input]``, mV/nA.
        self.gain_matrix = cfg.gain_mv_per_na * rng.uniform(
            -1.0, 1.0, size=(cfg.n_outputs, cfg.n_inputs)
        )
        #: Time constant per output (ms), shape ``[output]``.
        self.tau_ms = np.asarray(cfg.taus_ms(), dtype=np.float64)

    def run(self, currents: np.ndarray, *, dt_out_ms: float) -> np.ndarray:
        """Exact response to piecewise-linear inputs.

        Args:
            currents: ``[trial, time, input]`` (nA) on the grid ``k * dt_out_ms``.
            dt_out_ms: Sampling interval (ms).

        Returns:
            Voltages ``[trial, time, output]`` (mV), float64.
        """
        if not (math.isfinite(dt_out_ms) and dt_out_ms > 0):
            raise ConfigError(f"dt_out_ms must be > 0, got {dt_out_ms}")
        u = check_currents(currents, self.config.n_inputs)
        drive = u @ self.gain_matrix.T  # [trial, time, output], mV
        x = np.empty_like(drive)
        h = float(dt_out_ms)
        for o, tau in enumerate(self.tau_ms):
            a = math.exp(-h / tau)
            one_minus_a = -math.expm1(-h / tau)
            # x[k+1] = a x[k] + b0 v[k+1] + b1 v[k]  (first-order hold, exact)
            b0 = 1.0 - tau * one_minus_a / h
            b1 = tau * one_minus_a / h - a
            v = drive[:, :, o]
            if v.shape[1] == 0:
                x[:, :, o] = v
                continue
            zi = -b0 * v[:, :1]  # makes x[0] = 0 (start at rest)
            x[:, :, o], _ = lfilter([b0, b1], [1.0, -a], v, axis=1, zi=zi)
        return self._readout(x)

    def step_response(self, t_ms: np.ndarray, amplitudes_na: np.ndarray) -> np.ndarray:
        """Closed-form response to constant inputs switched on at ``t = 0``.

        Args:
            t_ms: Times (ms), shape ``[time]``.
            amplitudes_na: Constant input per channel (nA), shape ``[input]``.

        Returns:
            Voltages (mV), shape ``[time, output]``.
        """
        t = np.asarray(t_ms, dtype=np.float64)[:, None]
        final = self.gain_matrix @ np.asarray(amplitudes_na, dtype=np.float64)
        x = final[None, :] * -np.expm1(-t / self.tau_ms[None, :])
        return self._readout(x)

    def _readout(self, x: np.ndarray) -> np.ndarray:
        cfg = self.config
        if cfg.nonlinear:
            x = cfg.saturation_mv * np.tanh(x / cfg.saturation_mv)
        return cfg.rest_mv + x

    def provenance(self) -> dict[str, Any]:
        """Simulator name, version, full config and the drawn mixing matrix (mV/nA)."""
        return {
            "simulator": "toy",
            "class": type(self).__name__,
            "neuroreduce_version": neuroreduce.__version__,
            "config": asdict(self.config),
            "tau_ms": self.tau_ms.tolist(),
            "gain_matrix_mv_per_na": self.gain_matrix.tolist(),
            "discretisation": "exact first-order hold (inputs linear between samples)",
        }
