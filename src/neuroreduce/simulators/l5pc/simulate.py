"""One L5PC trial in NEURON: events in, soma voltage and spike times out.

A :class:`TrialRunner` builds the cell once and then runs any number of trials. Each trial
starts from the cell's resting state (found once by a 1 s settle without input under CVODE and
restored per segment: membrane voltage before the gating variables are initialised, then the
submembrane Ca), so no trial needs a burn-in to reach rest. Events are queued on one NetCon per
synapse (weight 1 = one quantum) after initialisation. The soma voltage is recorded on an
explicit 1 ms (``dt_out_ms``) sample grid; spikes are 0 mV upward crossings at the soma detected
at full resolution by a NetCon. Integration: fixed step ``dt_ms`` (default) or CVODE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from neuroreduce.errors import ConfigError
from neuroreduce.simulators.l5pc.cell import CellConfig, L5PCCell, check_finite

#: Spike detection threshold at the soma (mV, upward crossing).
SPIKE_THRESHOLD_MV = 0.0


@dataclass(frozen=True)
class RunConfig:
    """How trials are integrated and recorded.

    Attributes:
        dt_ms: Fixed integration step (ms); ignored under CVODE.
        dt_out_ms: Sampling interval of the recorded voltages (ms); a multiple of ``dt_ms``.
        cvode: Use NEURON's variable-step integrator (CVODE) instead of the fixed step.
        atol: CVODE absolute tolerance.
        record_dendrites: Also record the voltage of every synaptic channel's segment.
    """

    dt_ms: float = 0.025
    dt_out_ms: float = 1.0
    cvode: bool = False
    atol: float = 1e-3
    record_dendrites: bool = False

    def __post_init__(self) -> None:
        for name in ("dt_ms", "dt_out_ms", "atol"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not (
                    np.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")
        ratio = self.dt_out_ms / self.dt_ms
        if not self.cvode and abs(ratio - round(ratio)) > 1e-6:
            raise ConfigError(f"dt_out_ms {self.dt_out_ms} must be a whole multiple of the "
                              f"integration step dt_ms {self.dt_ms}")


@dataclass(frozen=True)
class TrialResult:
    """The recordings of one trial.

    Attributes:
        soma_v: Soma voltage (mV) on the sample grid, ``[time]`` float64 (unclipped).
        spike_times_ms: Somatic spike times (ms), ``[spike]``.
        dend_v: Voltages (mV) of the channel segments, ``[time, channel]``, or ``None``.
    """

    soma_v: np.ndarray
    spike_times_ms: np.ndarray
    dend_v: np.ndarray | None = None


class TrialRunner:
    """The cell with its recorders and event NetCons, ready to run trials.

    Args:
        cell: How to build the cell.
        run: Integration and recording settings.
    """

    def __init__(self, cell: CellConfig, run: RunConfig) -> None:
        self.cell = L5PCCell(cell)
        self.run_config = run
        h = self.h = self.cell.h
        self._nc_exc = [h.NetCon(None, syn) for syn in self.cell.exc]
        self._nc_inh = [h.NetCon(None, syn) for syn in self.cell.inh]
        for nc in self._nc_exc + self._nc_inh:
            nc.weight[0], nc.delay = 1.0, 0.0
        self._spike_vec = h.Vector()
        self._spike_nc = h.NetCon(self.cell.soma(0.5)._ref_v, None, sec=self.cell.soma)
        self._spike_nc.threshold = SPIKE_THRESHOLD_MV
        self._spike_nc.record(self._spike_vec)
        self._segments = [seg for secs in self.cell.sections.values() for sec in secs
                          for seg in sec]
        self._rest_v, self._rest_cai = self._settle()
        self._init_handler = h.FInitializeHandler(0, self._set_rest_v)

    def _settle(self, duration_ms: float = 1000.0) -> tuple[list[float], list[float | None]]:
        """Run without input until rest; return every segment's voltage and Ca.

        CVODE with a local time step per cell and a fixed tolerance: other cells alive in the
        process (NEURON integrates all of them) and tolerances set by earlier runs would
        otherwise change this cell's rest, and with it every trial."""
        h, cvode = self.h, self.h.CVode()
        self.cell.set_globals()
        cvode.active(1)
        cvode.use_local_dt(1)
        atol = cvode.atol()
        cvode.atol(1e-4)
        h.finitialize(-75.0)
        h.continuerun(duration_ms)
        cvode.atol(atol)
        cvode.use_local_dt(0)
        cvode.active(0)
        v = [float(seg.v) for seg in self._segments]
        cai = [float(seg.cai) if hasattr(seg, "cai") else None for seg in self._segments]
        return v, cai

    def _set_rest_v(self) -> None:
        for seg, v in zip(self._segments, self._rest_v, strict=True):
            seg.v = v

    def close(self) -> None:
        """Release the cell (NEURON integrates every cell of a process in each run): drops the
        initialisation handler (it holds this object) and every NEURON object."""
        self._init_handler = None
        self._nc_exc, self._nc_inh, self._spike_nc = [], [], None
        self._segments = []
        self.cell = None  # type: ignore[assignment]

    def initialise(self) -> None:
        """``finitialize`` into the resting state (voltage and Ca of every segment); the
        integrator (fixed step or CVODE) must be chosen before."""
        h = self.h
        self.cell.set_globals()
        h.finitialize()
        for seg, cai in zip(self._segments, self._rest_cai, strict=True):
            if cai is not None:
                seg.cai = cai
        if h.CVode().active():
            h.CVode().re_init()
        else:
            h.fcurrent()

    @property
    def n_channels(self) -> int:
        """Synaptic channels per population."""
        return self.cell.n_channels

    def run(self, times_ms: np.ndarray, channels: np.ndarray, *, duration_ms: float,
            trial: int = 0) -> TrialResult:
        """Simulate one trial.

        Args:
            times_ms: Event times (ms), ``[event]``, in ``[0, duration_ms)``.
            channels: Channel of each event, ``[event]``: ``k < n`` excitatory synapse ``k``,
                ``n + k`` inhibitory synapse ``k`` (``n`` = :attr:`n_channels`).
            duration_ms: Trial length (ms); ``duration_ms / dt_out_ms + 1`` samples.
            trial: Trial index (named in errors).

        Raises:
            ConfigError: events outside the trial or the channels.
            SimulationError: NaN/inf voltages (names the trial, suggests a smaller step).
        """
        h, rc, n = self.h, self.run_config, self.n_channels
        t = np.asarray(times_ms, dtype=np.float64)
        c = np.asarray(channels, dtype=np.int64)
        if t.shape != c.shape or (t.size and (t.min() < 0 or t.max() >= duration_ms
                                              or c.min() < 0 or c.max() >= 2 * n)):
            raise ConfigError(f"trial {trial}: events must lie in [0, {duration_ms}) ms on "
                              f"channels [0, {2 * n})")
        n_out = int(round(duration_ms / rc.dt_out_ms)) + 1
        tvec = h.Vector(np.arange(n_out) * rc.dt_out_ms)
        soma_rec = h.Vector()
        soma_rec.record(self.cell.soma(0.5)._ref_v, tvec)
        dend_rec = []
        if rc.record_dendrites:
            for seg in self.cell.channel_segments:
                vec = h.Vector()
                vec.record(seg._ref_v, tvec)
                dend_rec.append(vec)
        cvode = h.CVode()
        cvode.active(1 if rc.cvode else 0)
        if rc.cvode:
            cvode.atol(rc.atol)
        h.dt = rc.dt_ms
        h.steps_per_ms = 1.0 / rc.dt_ms if not rc.cvode else 1.0 / rc.dt_out_ms
        h.tstop = duration_ms
        self._spike_vec.resize(0)
        self.initialise()
        ncs = self._nc_exc + self._nc_inh
        for time, channel in zip(t.tolist(), c.tolist(), strict=True):
            ncs[channel].event(time)
        # half a step past the end: t accumulates rounding and the last sample must be reached
        h.continuerun(duration_ms + (rc.dt_ms if not rc.cvode else 0.5 * rc.dt_out_ms))
        soma_v = soma_rec.as_numpy()[:n_out].copy()
        dend_v = np.stack([v.as_numpy()[:n_out] for v in dend_rec], axis=1) if dend_rec else None
        if soma_v.size != n_out:
            soma_v = np.full(n_out, np.nan)  # the run stopped early: treated as unstable
        check_finite(soma_v, trial=trial, dt_ms=rc.dt_ms)
        spikes = self._spike_vec.as_numpy().copy()
        soma_rec.play_remove()
        return TrialResult(soma_v=soma_v, spike_times_ms=spikes[spikes < duration_ms],
                           dend_v=dend_v)

    def provenance(self) -> dict[str, Any]:
        """Segment and channel counts and the resting soma voltage (mV)."""
        return {"n_segments": self.cell.n_segments, "n_channels": self.n_channels,
                "rest_soma_v_mv": round(self._rest_v[0], 4),
                "max_apical_distance_um": round(self.cell.max_apical_distance_um, 3)}
