"""Run many C. elegans trials on an execution backend, one NEURON network per worker process.

Trials go through :func:`neuroreduce.execution.run_tasks`: worker processes (``spawn``) on this
machine or Ray tasks, each worker building the network once (the run's initializer) and then
simulating the trials it is handed, one at a time, so fast workers take more trials and no chunk
is left waiting. Trials are deterministic, so the result equals a serial run on any backend. The
build folder is resolved in the parent (absolute paths), so a worker's current directory does
not matter. A worker that dies (killed, out of memory) is replaced and its trial re-run up to
``Backend.max_retries`` times; trials still lost then become a
:class:`~neuroreduce.errors.SimulationError` listing them instead of a hang.
"""

from __future__ import annotations

import dataclasses
import os
import sys

import numpy as np

from neuroreduce.errors import ConfigError, NeuroreduceError, SimulationError
from neuroreduce.execution import Backend, progress_bar, run_tasks
from neuroreduce.scenarios import Scenario, get_scenario, list_scenarios, register_scenario
from neuroreduce.simulators.base import check_currents, n_samples
from neuroreduce.simulators.c302_build import cache_root, ensure_built
from neuroreduce.simulators.celegans import CelegansConfig, CelegansSimulator

#: Fault injection for tests: a worker handed this trial index exits abruptly.
FAULT_KILL_ENV = "NEUROREDUCE_FAULT_KILL_TRIAL"
_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def simulate_many(
    config: CelegansConfig,
    currents: np.ndarray,
    *,
    dt_out_ms: float,
    workers: int = 1,
    backend: Backend | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Simulate every trial of ``currents`` with the C. elegans network.

    Args:
        config: Simulator settings (scenario, parameter set, reader, dt, ablations).
        currents: ``[trial, time, input]`` currents in nA on the scenario's grid at
            ``dt_out_ms`` (``duration / dt_out + 1`` samples).
        dt_out_ms: Sampling interval of inputs and outputs (ms).
        workers: Worker processes when no ``backend`` is given; ``0`` runs in this process.
        backend: Where to run (local worker processes -- always child processes here, as
            NEURON holds one compiled model per process -- or Ray); overrides ``workers``.
        progress: Show a progress bar over trials.

    Returns:
        ``[trial, time, output]`` somatic voltages (mV), float64, equal to a serial run.

    Raises:
        ConfigError: on wrong shapes or NaN/inf currents, or ``workers < 0``.
        SimulationError: if NEURON diverges in a trial, or a worker dies more often than the
            backend retries (names the lost trials).
    """
    if not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"workers must be an integer >= 0, got {workers!r}")
    scenario = get_scenario(config.scenario)
    n_time = n_samples(scenario.duration_ms, dt_out_ms)
    arr = check_currents(currents, len(scenario.inputs), n_time=n_time)
    out = np.empty((arr.shape[0], n_time, len(scenario.outputs)))
    if arr.shape[0] == 0:
        return out
    if backend is None and workers == 0:
        sim = CelegansSimulator(config)
        with progress_bar(progress, arr.shape[0], "NEURON trials") as advance:
            for i in range(arr.shape[0]):
                out[i] = sim.run_trial(arr[i], dt_out_ms=dt_out_ms, index=i)
                advance()
        return out
    backend = backend if backend is not None else Backend(kind="local", workers=workers)

    # build (or find) the network here, once, and hand workers an absolute cache folder
    ensure_built(config.build_spec(), cache_dir=config.cache_dir)
    worker_config = dataclasses.replace(
        config, cache_dir=str(cache_root(config.cache_dir).parent.resolve())
    )
    tasks = {str(i): (i, arr[i], dt_out_ms) for i in range(arr.shape[0])}
    died: list[int] = []
    failed: list[tuple[int, str]] = []
    for outcome in run_tasks(
        _trial_task, tasks, backend, progress=progress, description="NEURON trials",
        initializer=_init_worker, init_arg=(worker_config, scenario), isolate=True,
    ):
        index = int(outcome.key)
        if outcome.ok:
            out[index] = outcome.value
        elif (outcome.error or "").startswith("worker died"):
            died.append(index)
        else:
            failed.append((index, outcome.error or "unknown error"))
    if failed:
        index, error = min(failed)
        raise SimulationError(
            f"{len(failed)} trial(s) failed ({_ranges(sorted(i for i, _ in failed))}); "
            f"trial {index}: {error}"
        )
    if died:
        raise SimulationError(
            f"a worker process died (killed or out of memory) in each of "
            f"{backend.max_retries + 1} attempt(s); {len(died)} trial(s) lost: "
            f"{_ranges(sorted(died))}; rerun them, e.g. with fewer workers"
        )
    return out


_SIMULATOR: CelegansSimulator | None = None
_INIT_ERROR: NeuroreduceError | None = None


def _init_worker(arg: tuple[CelegansConfig, Scenario]) -> None:
    """Worker initializer: one thread per numeric library, the parent's scenario (it may have
    been registered at run time), and the network, built once."""
    global _SIMULATOR, _INIT_ERROR
    config, scenario = arg
    for name in _THREAD_ENV:
        os.environ[name] = "1"
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
    try:
        if scenario.name not in list_scenarios():
            register_scenario(scenario)
        elif get_scenario(scenario.name) != scenario:
            raise ConfigError(
                f"scenario {scenario.name!r} differs between this process and its workers; "
                "register it under another name"
            )
        _SIMULATOR = CelegansSimulator(config)
        _SIMULATOR.prepare()
    except NeuroreduceError as exc:  # re-raised with each trial (initializer errors get lost)
        _INIT_ERROR = exc


def _trial_task(payload: tuple[int, np.ndarray, float]) -> np.ndarray:
    """One trial in a worker: ``(index, currents [time, input] nA, dt_out_ms)`` -> mV."""
    index, currents, dt_out_ms = payload
    if os.environ.get(FAULT_KILL_ENV) == str(index):
        os._exit(70)
    if _INIT_ERROR is not None:
        raise _INIT_ERROR
    assert _SIMULATOR is not None
    return _SIMULATOR.run_trial(currents, dt_out_ms=dt_out_ms, index=index)


def _ranges(indices: list[int]) -> str:
    """Sorted ``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs)
