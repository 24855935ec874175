"""The high-fidelity C. elegans simulator: a c302 network run in NEURON.

The network (302 single-compartment neurons by default) is generated and compiled once per cache
(:mod:`neuroreduce.simulators.c302_build`) and built in NEURON once per process; each stimulus
then only re-runs it. Inputs are current clamps (nA) in the input neurons' somata, driven by
``Vector.play`` with linear interpolation between the samples; outputs are the somatic voltages
(mV) sampled at the same times.

Every trial starts from rest: the resting state is found once per process and ablation set
(simulate with no input until every voltage is still), every state and gating variable of every
mechanism is recorded, and each trial's ``finitialize`` restores them. (Setting only the
voltages leaves a 0.002 mV start-up transient: the exported channels compute their gate
products only after the first step; ``SaveState.restore`` breaks ``Vector.play``.)

NEURON can hold one compiled model per process, so a process runs one build (parameter set,
reader, dt); use :func:`neuroreduce.simulators.parallel.simulate_many` with workers to run
others side by side.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuroreduce._io import atomic_path
from neuroreduce.errors import ConfigError, SimulationError, unknown_name_error
from neuroreduce.scenarios import Scenario, get_scenario
from neuroreduce.simulators.base import Simulator, check_currents, n_samples
from neuroreduce.simulators.c302_build import (
    PARAMETER_SETS,
    BuildSpec,
    BuiltModel,
    ensure_built,
    load_network,
    tool_versions,
)
from neuroreduce.simulators.connectome import get_reader

#: Default c302 parameter set: graded, stable responses (see docs/c302_parameter_sets.md).
DEFAULT_PARAMETER_SET = "C0"
#: Relaxation to rest (at the run's dt): chunk (ms), longest time (ms), convergence (mV per chunk).
_REST_CHUNK_MS = 100.0
_REST_MAX_MS = 10000.0
_REST_TOL_MV = 1e-7
#: Voltages beyond this (mV) mean the integration diverged.
_MAX_ABS_MV = 1000.0


@dataclass(frozen=True)
class CelegansConfig:
    """Settings of the C. elegans simulator.

    Attributes:
        scenario: Scenario name (inputs, outputs, duration, ablations), e.g. ``"fcm"``.
        parameter_set: c302 parameter set (``"C"``, ``"C0"``, ``"C1"``, ``"C2"``).
        reader: Connectome reader (``"default"``, ``"varshney"``).
        dt_ms: NEURON integration step (ms).
        ablated: Neurons whose chemical and electrical connections are removed, on top of the
            scenario's own.
        cache_dir: Cache folder for built networks (default: ``$NEUROREDUCE_CACHE_DIR`` or the
            user cache folder).
    """

    scenario: str = "fcm"
    parameter_set: str = DEFAULT_PARAMETER_SET
    reader: str = "default"
    dt_ms: float = 0.05
    ablated: tuple[str, ...] = ()
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        scenario = get_scenario(self.scenario)
        if getattr(scenario, "simulator", "celegans") != "celegans":
            raise ConfigError(
                f"scenario {self.scenario!r} is not a C. elegans scenario (it runs on the "
                f"{scenario.simulator!r} simulator)"
            )
        if self.parameter_set not in PARAMETER_SETS:
            raise unknown_name_error("parameter set", self.parameter_set, list(PARAMETER_SETS))
        get_reader(self.reader)
        if not (isinstance(self.dt_ms, int | float) and self.dt_ms > 0):
            raise ConfigError(f"dt_ms must be a positive number of ms, got {self.dt_ms!r}")
        if isinstance(self.ablated, str):
            raise ConfigError("ablated must be a list of neuron names, not one string")
        object.__setattr__(self, "ablated", tuple(self.ablated))

    def build_spec(self) -> BuildSpec:
        """The c302 build this configuration runs on (all 302 neurons)."""
        scenario = get_scenario(self.scenario)
        return BuildSpec(
            parameter_set=self.parameter_set,
            reader=self.reader,
            cells=None,
            stimulated=scenario.inputs,
            dt_ms=self.dt_ms,
        )


class CelegansSimulator(Simulator):
    """c302 C. elegans network in NEURON (see the module docstring).

    Args:
        config: Settings; defaults to :class:`CelegansConfig` ``()``.
        log: Called with progress lines while building (e.g. ``print``); silent if ``None``.

    Raises:
        ConfigError: on unknown scenario, parameter set, reader or neuron names.
        DependencyError: if java, pyNeuroML or nrnivmodl are missing or fail.
    """

    def __init__(self, config: CelegansConfig | None = None, *, log: Any = None) -> None:
        self.config = config if config is not None else CelegansConfig()
        self.scenario: Scenario = get_scenario(self.config.scenario)
        self.input_names = self.scenario.inputs
        self.output_names = self.scenario.outputs
        self.built: BuiltModel = ensure_built(
            self.config.build_spec(), cache_dir=self.config.cache_dir, log=log
        )
        self.ablated: tuple[str, ...] = ()
        self._check_names(self.input_names + self.output_names)
        self.ablate(self.scenario.ablated + self.config.ablated)
        self._net: _Network | None = None

    @property
    def neuron_names(self) -> tuple[str, ...]:
        """All neurons of the network, sorted."""
        return self.built.cells

    def ablate(self, cells: tuple[str, ...] | list[str]) -> None:
        """Remove all chemical and electrical connections touching ``cells`` (replaces the
        previous ablation set; the network is not regenerated).

        Raises:
            ConfigError: on a name that is not a neuron of the network (lists the known ones).
        """
        cells = tuple(sorted(set(cells)))
        self._check_names(cells)
        self.ablated = cells

    def prepare(self) -> None:
        """Build the network in this process and find its rest state now (else on first run;
        ~5 s, plus the first relaxation of a parameter set / ablation set, cached on disk)."""
        self._network()._rest_state(self.ablated)

    def run(self, currents: np.ndarray, *, dt_out_ms: float) -> np.ndarray:
        """Simulate one trial per row of ``currents`` (see :meth:`Simulator.run`).

        Args:
            currents: ``[trial, time, input]`` currents in nA on the grid of ``dt_out_ms``.
            dt_out_ms: Sampling interval (ms); a whole multiple of ``config.dt_ms``.

        Returns:
            ``[trial, time, output]`` somatic voltages (mV), float64.

        Raises:
            ConfigError: on wrong shapes, NaN/inf currents or an incompatible ``dt_out_ms``.
            SimulationError: if NEURON produces NaN/inf voltages (names the trial).
        """
        n_time = self._check_dt_out(dt_out_ms)
        arr = check_currents(currents, len(self.input_names), n_time=n_time)
        out = np.empty((arr.shape[0], n_time, len(self.output_names)))
        for i in range(arr.shape[0]):
            out[i] = self.run_trial(arr[i], dt_out_ms=dt_out_ms, index=i)
        return out

    def run_trial(self, currents: np.ndarray, *, dt_out_ms: float, index: int = 0) -> np.ndarray:
        """Simulate one trial: ``[time, input]`` nA -> ``[time, output]`` mV.

        Args:
            currents: One trial's currents (validated like :meth:`run`).
            dt_out_ms: Sampling interval (ms).
            index: Trial number used in error messages.

        Raises:
            SimulationError: if NEURON diverges (NaN/inf or |v| > 1000 mV).
        """
        n_time = self._check_dt_out(dt_out_ms)
        arr = check_currents(np.asarray(currents)[None], len(self.input_names), n_time=n_time)[0]
        out = self._network().run(
            arr,
            inputs=self.input_names,
            outputs=self.output_names,
            ablated=self.ablated,
            dt_out_ms=dt_out_ms,
            duration_ms=self.scenario.duration_ms,
        )
        if not (np.isfinite(out).all() and np.abs(out).max() < _MAX_ABS_MV):
            raise SimulationError(
                f"NEURON diverged (NaN/inf or |v| > {_MAX_ABS_MV:.0f} mV) in trial {index} (peak "
                f"input {np.abs(arr).max():.4g} nA); use a smaller dt_ms than "
                f"{self.config.dt_ms} or smaller currents"
            )
        return out

    def _check_dt_out(self, dt_out_ms: float) -> int:
        n_time = n_samples(self.scenario.duration_ms, dt_out_ms)
        ratio = dt_out_ms / self.config.dt_ms
        if ratio < 1 - 1e-9 or abs(ratio - round(ratio)) > 1e-6:
            raise ConfigError(
                f"dt_out_ms={dt_out_ms} must be a whole multiple of the integration step "
                f"dt_ms={self.config.dt_ms}"
            )
        return n_time

    def provenance(self) -> dict[str, Any]:
        """Simulator name, settings, versions and cache key (stored in datasets)."""
        versions = tool_versions()
        return {
            "simulator": "celegans",
            "scenario": self.scenario.name,
            "parameter_set": self.config.parameter_set,
            "reader": self.config.reader,
            "dt_ms": self.config.dt_ms,
            "ablated": list(self.ablated),
            "n_neurons": len(self.built.cells),
            "c302_version": versions["c302"],
            "neuron_version": versions["neuron"],
            "pyneuroml_version": versions["pyNeuroML"],
            "cect_version": versions["cect"],
            "cache_key": self.built.key,
        }

    def _check_names(self, names: tuple[str, ...]) -> None:
        known = set(self.built.cells)
        for name in names:
            if name not in known:
                raise unknown_name_error("neuron", name, self.built.cells)

    def _network(self) -> _Network:
        if self._net is None:
            self._net = network_for(self.built)
        return self._net


_NETWORK: _Network | None = None


def network_for(built: BuiltModel) -> _Network:
    """The NEURON network of this process, built from ``built`` on first use.

    Raises:
        ConfigError: if this process already holds a different build.
    """
    global _NETWORK
    if _NETWORK is None:
        _NETWORK = _Network(built)
    elif _NETWORK.key != built.key:
        spec = _NETWORK.spec
        raise ConfigError(
            f"this process already runs the c302 network parameters_{spec.parameter_set} / "
            f"{spec.reader} reader / dt {spec.dt_ms} ms (NEURON holds one compiled model per "
            "process); run other settings in a worker process: simulate_many(..., workers=1)"
        )
    return _NETWORK


class _Network:
    """The c302 network built in this process's NEURON, with clamps, recorders and rest states."""

    def __init__(self, built: BuiltModel) -> None:
        self.key = built.key
        self.spec = built.spec
        self.dt_ms = built.spec.dt_ms
        self._folder = built.path
        h, self._generated = load_network(built)
        self.h = h
        self._somas = {name: getattr(h, f"a_{name}")[0].soma for name in built.cells}
        self._synapses = _synapse_handles(h, built.synapses)
        self._current_ablation: tuple[str, ...] = ()
        self._rest: dict[tuple[str, ...], list[float]] = {}
        self._state = _StateVariables(h)
        self._restore: list[float] | None = None
        self._fih = h.FInitializeHandler(1, self._on_initialize)
        self._tvec = h.Vector()
        self._clamps: dict[str, Any] = {}
        self._plays: dict[str, Any] = {}
        self._records: dict[str, Any] = {}

    def run(
        self,
        currents: np.ndarray,
        *,
        inputs: tuple[str, ...],
        outputs: tuple[str, ...],
        ablated: tuple[str, ...],
        dt_out_ms: float,
        duration_ms: float,
    ) -> np.ndarray:
        """One trial from rest: ``currents`` [time, input] nA -> voltages [time, output] mV."""
        h = self.h
        rest = self._rest_state(ablated)
        for name in inputs:
            self._ensure_clamp(name)
        for name in outputs:
            self._ensure_record(name)
        n = currents.shape[0]
        self._tvec.from_python(np.arange(n) * dt_out_ms)
        for name, vec in self._plays.items():
            col = inputs.index(name) if name in inputs else None
            vec.from_python(currents[:, col] if col is not None else np.zeros(n))
        self._set_dt(self.dt_ms)
        self._restore = rest
        try:
            h.finitialize()
            h.continuerun(duration_ms)
            # the last sample can fall half a step beyond where continuerun stops
            for _ in range(2):
                if self._records[outputs[0]].size() >= n:
                    break
                h.fadvance()
        finally:
            self._restore = None
        out = np.column_stack([self._records[name].as_numpy()[:n] for name in outputs])
        if out.shape[0] != n:
            raise SimulationError(f"NEURON recorded {out.shape[0]} of {n} samples; please report")
        return out.copy()

    def _on_initialize(self) -> None:
        if self._restore is not None:
            self._state.apply(self._restore)

    def _rest_state(self, ablated: tuple[str, ...]) -> list[float]:
        """The resting state with ``ablated`` cut off (applies that ablation)."""
        if ablated not in self._rest:
            # an ablated network settles faster from the intact network's rest than from scratch
            start = self._rest_state(()) if ablated else None
            self._apply_ablation(ablated)
            self._rest[ablated] = self._cached_rest(ablated, start)
        self._apply_ablation(ablated)
        return self._rest[ablated]

    def _cached_rest(self, ablated: tuple[str, ...], start: list[float] | None) -> list[float]:
        """The rest state from the build folder, else relaxed now and stored there (atomic)."""
        tag = hashlib.sha256(json.dumps([self._state.signature, ablated]).encode()).hexdigest()
        path = self._folder / "rest" / f"{tag[:16]}.npy"
        if path.is_file():
            with contextlib.suppress(OSError, ValueError):
                values = np.load(path, allow_pickle=False)
                if values.shape == (len(self._state),):
                    return values.tolist()
        values = self._relax(start)
        with contextlib.suppress(OSError), atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.asarray(values, dtype=np.float64))
        return values

    def _relax(self, start: list[float] | None) -> list[float]:
        """Simulate without input until no voltage moves; return all state variables.

        Args:
            start: State to start from (from :meth:`_StateVariables.capture`), else NEURON's
                default initial state.
        """
        h = self.h
        self._tvec.from_python([0.0, 1e9])
        for vec in self._plays.values():
            vec.from_python([0.0, 0.0])
        self._set_dt(self.dt_ms)
        self._restore = start
        try:
            h.finitialize()
        finally:
            self._restore = None
        previous = self._voltages()
        while h.t < _REST_MAX_MS:
            h.continuerun(h.t + _REST_CHUNK_MS)
            now = self._voltages()
            if not (np.isfinite(now).all() and np.abs(now).max() < _MAX_ABS_MV):
                raise SimulationError(
                    f"the network diverges without input at dt_ms={self.dt_ms}; use a smaller dt_ms"
                )
            change = np.abs(now - previous).max()
            previous = now
            if change < _REST_TOL_MV:
                break
        else:
            raise SimulationError(
                f"the network does not settle to rest within {_REST_MAX_MS:.0f} ms without input "
                f"(voltages still move {change:.2g} mV per {_REST_CHUNK_MS:.0f} ms); this "
                "parameter set is not supported"
            )
        return self._state.capture()

    def _voltages(self) -> np.ndarray:
        return np.array([sec(0.5).v for sec in self._somas.values()])

    def _set_dt(self, dt_ms: float) -> None:
        self.h.dt = dt_ms
        self.h.steps_per_ms = 1.0 / dt_ms

    def _apply_ablation(self, cells: tuple[str, ...]) -> None:
        if cells == self._current_ablation:
            return
        gone = set(cells)
        for obj, attr, original, pre, post in self._synapses:
            setattr(obj, attr, 0.0 if (pre in gone or post in gone) else original)
        self._current_ablation = cells

    def _ensure_clamp(self, name: str) -> None:
        if name in self._clamps:
            return
        ic = self.h.IClamp(self._somas[name](0.5))
        ic.delay, ic.dur, ic.amp = 0.0, 1e9, 0.0
        vec = self.h.Vector([0.0, 0.0])
        vec.play(ic._ref_amp, self._tvec, 1)
        self._clamps[name], self._plays[name] = ic, vec

    def _ensure_record(self, name: str) -> None:
        if name in self._records:
            return
        vec = self.h.Vector()
        vec.record(self._somas[name](0.5)._ref_v, self._tvec)
        self._records[name] = vec


class _StateVariables:
    """Every voltage, ion and density-mechanism variable and point-process state of a model.

    Density mechanisms are captured whole (their gate products are ASSIGNED variables that the
    exported INITIAL blocks leave at 0), point processes by ASSIGNED and STATE variables.
    """

    def __init__(self, h: Any) -> None:
        candidates: list[tuple[Any, str]] = []
        pp_states: dict[str, list[str]] = {}
        for sec in h.allsec():
            for seg in sec:
                candidates.append((seg, "v"))
                for mech in seg:
                    candidates.extend((seg, var.name()) for var in mech)
                for pp in seg.point_processes():
                    kind = pp.hname().split("[")[0]
                    if kind not in pp_states:
                        pp_states[kind] = _state_names(h, kind)
                    candidates.extend((pp, name) for name in pp_states[kind])
        self._slots: list[tuple[Any, str]] = []
        for obj, attr in candidates:
            try:
                value = getattr(obj, attr)
                if not isinstance(value, float):
                    continue  # array variables: none among the c302 mechanisms' states
                setattr(obj, attr, value)
            except (AttributeError, TypeError, LookupError, RuntimeError):
                continue
            self._slots.append((obj, attr))

        text = "\n".join(f"{obj}|{attr}" for obj, attr in self._slots)
        self.signature = hashlib.sha256(text.encode()).hexdigest()

    def __len__(self) -> int:
        return len(self._slots)

    def capture(self) -> list[float]:
        """Current values of all slots."""
        return [getattr(obj, attr) for obj, attr in self._slots]

    def apply(self, values: list[float]) -> None:
        """Set all slots to ``values`` (from :meth:`capture`)."""
        for (obj, attr), value in zip(self._slots, values, strict=True):
            setattr(obj, attr, value)


def _state_names(h: Any, mechanism: str) -> list[str]:
    """RANGE ASSIGNED and STATE variables of a point process (graded synapses compute their
    current in the state update, so ``i`` carries over between steps)."""
    names = []
    for vartype in (2, 3):
        standard = h.MechanismStandard(mechanism, vartype)
        for j in range(int(standard.count())):
            ref = h.ref("")
            standard.name(ref, j)
            names.append(ref[0])
    return names


def _synapse_handles(
    h: Any, synapses: tuple[tuple[str, str, str, int], ...]
) -> list[tuple[Any, str, float, str, str]]:
    """``(object, strength attribute, original value, pre, post)`` per synapse object."""
    handles = []
    for array, pre, post, length in synapses:
        objs = getattr(h, array)
        for i in range(length):
            obj = objs[i]
            for attr in ("weight", "gbase"):
                if hasattr(obj, attr):
                    handles.append((obj, attr, float(getattr(obj, attr)), pre, post))
                    break
    return handles
