"""Small typed tasks with known generators: spikes, behaviour labels, recorded subsets.

Each generator builds a whole split :class:`~neuroreduce.datasets.dataset.Dataset` with typed
fields in a second or less, so every new kind of task runs end to end in tests and demos
(``neuroreduce simulate toy_spikes -o x.h5``):

* ``toy_spikes`` — a leaky integrate-and-fire neuron (tau_m 10 ms, threshold -50 mV, reset and
  rest -65 mV) driven by excitatory and inhibitory Poisson spike trains through exponential
  current synapses (tau 5 ms): spike-event inputs, the spike-clipped soma voltage (dense
  ``outputs``, mV) and the output spike train (binary target ``spikes``), at 1 ms.
* ``toy_behaviour`` — several individuals (group ``individual``) whose 12 "neurons" follow a
  hidden forward/reverse state (a two-state Markov chain, mean dwell 40 steps) with
  individual gains, drift and noise; the state is a per-step label (``behaviour``), unknown
  (-1) for 2 steps around every switch.
* ``toy_subsets`` — currents into a linear system of 6 outputs (first-order filters of mixed
  inputs, tau 5-40 ms); each individual records its own 4 of the 6 (per-group channel
  availability of target ``activity``) and 2 % of the recorded values are missing (NaN).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.fields import EventTrains, Field, FieldSpec
from neuroreduce.datasets.splits import make_splits
from neuroreduce.errors import ConfigError, unknown_name_error


@dataclass(frozen=True)
class TaskGenerator:
    """A registered typed-task generator.

    Attributes:
        name: Registry name (used like a scenario name by ``neuroreduce simulate``).
        description: One line.
        make: ``make(n_trials, *, seed, dt_ms) -> Dataset`` (split assigned).
        default_dt_ms: The sampling interval the task is meant for (ms).
        run_options: ``make`` also takes ``duration_ms``, ``settings`` (SimulationSettings:
            integration step, workers, backend), ``out`` (it writes the file itself),
            ``progress`` and ``options`` (``simulate --option``); e.g. ``l5pc``.
        check_options: Optional ``check_options(*, seed, dt_out_ms, duration_ms, dt_ms,
            options)`` raising ``ConfigError`` on a bad setting (experiment files are checked
            when they load, before anything runs).
        fingerprint: Optional ``fingerprint(*, seed, dt_out_ms, duration_ms, dt_ms, options)
            -> str``: a hash of what the generator simulates beyond its settings (for l5pc the
            morphology's and NMODL files' SHA-256 and the NEURON version), part of an
            experiment dataset's cache key.
    """

    name: str
    description: str
    make: Callable[..., Dataset]
    default_dt_ms: float = 1.0
    run_options: bool = False
    check_options: Callable[..., Any] | None = None
    fingerprint: Callable[..., str] | None = None


TASK_GENERATORS: dict[str, TaskGenerator] = {}


def register_task_generator(gen: TaskGenerator) -> TaskGenerator:
    if gen.name in TASK_GENERATORS:
        raise ConfigError(f"task generator {gen.name!r} is already registered")
    TASK_GENERATORS[gen.name] = gen
    return gen


def get_task_generator(name: str) -> TaskGenerator:
    if name not in TASK_GENERATORS:
        raise unknown_name_error("task generator", name, list(TASK_GENERATORS))
    return TASK_GENERATORS[name]


def _check(n_trials: int, dt_ms: float, *, minimum: int = 3) -> None:
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < minimum:
        raise ConfigError(f"need at least {minimum} trials, got {n_trials!r}")
    if not (np.isfinite(dt_ms) and 0 < dt_ms <= 5):
        raise ConfigError(f"dt_ms must be in (0, 5] ms for this task, got {dt_ms}")


# ---------------------------------------------------------------------------- toy_spikes
N_EXC, N_INH = 24, 12


def _toy_spikes(n_trials: int, *, seed: int = 0, dt_ms: float = 1.0) -> Dataset:
    _check(n_trials, dt_ms)
    rng = np.random.default_rng(seed)
    duration = 500.0
    step = max(1, int(round(dt_ms / 0.1)))  # simulation steps per output sample
    dt_sim = dt_ms / step  # about 0.1 ms, dividing dt_ms exactly (0.1 for dt 0.5, 1, 2 ms)
    n_sim = int(round(duration / dt_sim))
    n_out = int(round(duration / dt_ms)) + 1
    tau_m, tau_s, v_rest, v_th = 10.0, 5.0, -65.0, -50.0
    w = np.concatenate([np.full(N_EXC, 9.0), np.full(N_INH, -9.0)])  # mV per spike (into I)
    times, chans = [], []
    v_out = np.empty((n_trials, n_out, 1), np.float32)
    spikes = np.zeros((n_trials, n_out, 1), np.float32)
    families = []
    for i in range(n_trials):
        gain = rng.uniform(0.5, 1.6)  # trial-wide input level: some trials silent, some busy
        rate = np.concatenate([rng.uniform(5, 25, N_EXC) * gain, rng.uniform(5, 25, N_INH)])
        p = rate * dt_sim / 1000.0
        events = rng.random((n_sim, rate.size)) < p  # Bernoulli per 0.1 ms bin
        k, c = np.nonzero(events)
        t_ev = (k + rng.random(k.size)) * dt_sim
        order = np.argsort(t_ev, kind="stable")
        times.append(t_ev[order])
        chans.append(c[order].astype(np.int32))
        drive = events.astype(np.float64) @ w  # mV/ms kicks per bin
        v, syn = v_rest, 0.0
        trace = np.empty(n_sim + 1)
        fired = np.zeros(n_sim + 1, bool)
        trace[0] = v
        for s in range(n_sim):
            syn += -syn * dt_sim / tau_s + drive[s]
            v += dt_sim * (-(v - v_rest) + syn) / tau_m
            if v >= v_th:
                v, fired[s + 1] = v_rest, True
            trace[s + 1] = v
        v_out[i, :, 0] = np.minimum(trace[::step][:n_out], v_th)
        hit = np.flatnonzero(fired)
        spikes[i, np.minimum(hit // step, n_out - 1), 0] = 1.0
        families.append("busy" if gain > 1.05 else "quiet")
    names = [f"exc_{j:02d}" for j in range(N_EXC)] + [f"inh_{j:02d}" for j in range(N_INH)]
    fields = (
        Field(FieldSpec("synapses", "input", "events", tuple(names), "spikes"),
              EventTrains.from_lists(times, chans, len(names))),
        Field(FieldSpec("spikes", "target", "binary", ("soma",), "spikes"), spikes),
    )
    return Dataset(
        inputs=np.zeros((n_trials, n_out, 0), np.float32), outputs=v_out, dt_ms=dt_ms,
        input_names=(), output_names=("soma_v",), input_units="spikes", output_units="mV",
        families=tuple(families), split=make_splits(families, seed=seed),
        provenance={"generator": "toy_spikes", "seed": seed}, fields=fields,
    )


# ---------------------------------------------------------------------------- toy_behaviour
N_INDIVIDUALS, N_NEURONS = 4, 12


def _toy_behaviour(n_trials: int, *, seed: int = 0, dt_ms: float = 1.0) -> Dataset:
    _check(n_trials, dt_ms, minimum=N_INDIVIDUALS)
    rng = np.random.default_rng(seed)
    n_time = 200
    pattern = np.zeros(N_NEURONS)
    pattern[:3], pattern[3:6] = 1.0, -1.0  # AVA-like up in reverse, AVB-like up in forward
    gains = rng.uniform(0.6, 1.4, (N_INDIVIDUALS, N_NEURONS))
    x = np.empty((n_trials, n_time, N_NEURONS), np.float32)
    labels = np.empty((n_trials, n_time, 1), np.int16)
    individual = np.arange(n_trials) % N_INDIVIDUALS
    for i in range(n_trials):
        state = np.empty(n_time, np.int64)
        s = int(rng.integers(2))
        for t in range(n_time):
            if rng.random() < 1 / 40:
                s = 1 - s
            state[t] = s
        smooth = np.convolve(2.0 * state - 1.0, np.ones(5) / 5, mode="same")
        drift = np.cumsum(rng.normal(0, 0.05, (n_time, N_NEURONS)), axis=0)
        noise = rng.normal(0, 1.5, (n_time, N_NEURONS))
        x[i] = smooth[:, None] * pattern * gains[individual[i]] + drift + noise
        lab = state.copy()
        switch = np.flatnonzero(np.diff(state)) + 1
        for k in switch:
            lab[max(0, k - 2) : k + 2] = -1
        labels[i, :, 0] = lab
    families = tuple(f"w{g}" for g in individual)
    fields = (
        Field(FieldSpec("behaviour", "label", "categorical", ("state",),
                        classes=("forward", "reverse"), ignore_label=-1), labels),
        Field(FieldSpec("individual", "group", "categorical",
                        classes=tuple(f"w{g}" for g in range(N_INDIVIDUALS))),
              individual.astype(np.int32)),
    )
    return Dataset(
        inputs=x, outputs=np.zeros((n_trials, n_time, 0), np.float32), dt_ms=dt_ms,
        input_names=tuple(f"n{j:02d}" for j in range(N_NEURONS)), output_names=(),
        input_units="dF/F", output_units="", families=families,
        split=make_splits(families, seed=seed),
        provenance={"generator": "toy_behaviour", "seed": seed}, fields=fields,
    )


# ---------------------------------------------------------------------------- toy_subsets
N_ACTIVITY, N_RECORDED = 6, 4


def _toy_subsets(n_trials: int, *, seed: int = 0, dt_ms: float = 1.0) -> Dataset:
    _check(n_trials, dt_ms, minimum=N_INDIVIDUALS)
    rng = np.random.default_rng(seed)
    n_time = int(round(300 / dt_ms)) + 1
    t = np.arange(n_time) * dt_ms
    mix = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.3], [0.3, 0.7], [1.0, -0.5], [-0.5, 1.0]])
    taus = np.array([5.0, 10.0, 15.0, 20.0, 30.0, 40.0])
    currents = np.empty((n_trials, n_time, 2), np.float32)
    for i in range(n_trials):
        for j in range(2):
            on, off = np.sort(rng.uniform(0, 300, 2))
            freq = rng.uniform(2, 20)
            currents[i, :, j] = rng.uniform(-1, 1) * ((t >= on) & (t < off)) + 0.5 * np.sin(
                2 * np.pi * freq * t / 1000 + rng.uniform(0, 2 * np.pi)
            )
    drive = currents @ mix.T  # [trial, time, 6]
    y = np.zeros_like(drive)
    a = np.exp(-dt_ms / taus)
    for k in range(1, n_time):
        y[:, k] = a * y[:, k - 1] + (1 - a) * drive[:, k]
    y = (10.0 * y + rng.normal(0, 0.05, y.shape)).astype(np.float32)
    individual = np.arange(n_trials) % N_INDIVIDUALS
    availability = np.zeros((N_INDIVIDUALS, N_ACTIVITY), bool)
    for g in range(N_INDIVIDUALS):
        availability[g, rng.choice(N_ACTIVITY, N_RECORDED, replace=False)] = True
    y[rng.random(y.shape) < 0.02] = np.nan
    y[~availability[individual][:, None, :].repeat(n_time, axis=1)] = np.nan
    families = tuple(f"w{g}" for g in individual)
    fields = (
        Field(FieldSpec("activity", "target", "continuous",
                        tuple(f"a{j}" for j in range(N_ACTIVITY)), "mV",
                        availability_group="individual"), y, availability),
        Field(FieldSpec("individual", "group", "categorical",
                        classes=tuple(f"w{g}" for g in range(N_INDIVIDUALS))),
              individual.astype(np.int32)),
    )
    return Dataset(
        inputs=currents, outputs=np.zeros((n_trials, n_time, 0), np.float32), dt_ms=dt_ms,
        input_names=("i0", "i1"), output_names=(), input_units="nA", output_units="mV",
        families=families, split=make_splits(families, seed=seed),
        provenance={"generator": "toy_subsets", "seed": seed}, fields=fields,
    )


for _gen in (
    TaskGenerator("toy_spikes", "LIF neuron under Poisson synapses: events in, voltage + "
                  "spikes out", _toy_spikes),
    TaskGenerator("toy_behaviour", "4 individuals' neurons -> per-step forward/reverse label",
                  _toy_behaviour),
    TaskGenerator("toy_subsets", "currents -> 6 outputs; each individual records its own 4",
                  _toy_subsets),
):
    register_task_generator(_gen)

# registers adex_ou, hh_ou, wholebrain_sim and l5pc
from neuroreduce.simulators import spike_timing, wholebrain_sim  # noqa: E402,F401
from neuroreduce.simulators.l5pc import task as _l5pc_task  # noqa: E402,F401
