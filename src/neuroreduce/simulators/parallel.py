"""Run many C. elegans trials in worker processes, one NEURON network per worker.

Each worker is a fresh ``spawn`` process that builds the network once (pool initializer) and then
simulates the trials it is handed. Trials are deterministic, so the result equals a serial run
in any process. The build folder is resolved in the parent (absolute paths), so a worker's
current directory does not matter; NEURON's own quirk of auto-loading ``./x86_64`` is detected
and reported. A worker that dies (killed, out of memory) turns into a
:class:`~neuroreduce.errors.SimulationError` listing the lost trials instead of a hang.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from neuroreduce.errors import ConfigError, NeuroreduceError, SimulationError
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
    progress: bool = True,
) -> np.ndarray:
    """Simulate every trial of ``currents`` with the C. elegans network.

    Args:
        config: Simulator settings (scenario, parameter set, reader, dt, ablations).
        currents: ``[trial, time, input]`` currents in nA on the scenario's grid at
            ``dt_out_ms`` (``duration / dt_out + 1`` samples).
        dt_out_ms: Sampling interval of inputs and outputs (ms).
        workers: Number of worker processes; ``0`` runs in this process.
        progress: Show a progress bar over trials.

    Returns:
        ``[trial, time, output]`` somatic voltages (mV), float64, equal to a serial run.

    Raises:
        ConfigError: on wrong shapes or NaN/inf currents, or ``workers < 0``.
        SimulationError: if NEURON diverges in a trial, or a worker dies (names lost trials).
    """
    if not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"workers must be an integer >= 0, got {workers!r}")
    scenario = get_scenario(config.scenario)
    n_time = n_samples(scenario.duration_ms, dt_out_ms)
    arr = check_currents(currents, len(scenario.inputs), n_time=n_time)
    out = np.empty((arr.shape[0], n_time, len(scenario.outputs)))
    if arr.shape[0] == 0:
        return out
    if workers == 0:
        sim = CelegansSimulator(config)
        with _progress(progress, arr.shape[0]) as advance:
            for i in range(arr.shape[0]):
                out[i] = sim.run_trial(arr[i], dt_out_ms=dt_out_ms, index=i)
                advance()
        return out

    # build (or find) the network here, once, and hand workers an absolute cache folder
    ensure_built(config.build_spec(), cache_dir=config.cache_dir)
    worker_config = dataclasses.replace(
        config, cache_dir=str(cache_root(config.cache_dir).parent.resolve())
    )
    context = multiprocessing.get_context("spawn")
    pool = cf.ProcessPoolExecutor(
        max_workers=min(workers, arr.shape[0]),
        mp_context=context,
        initializer=_init_worker,
        initargs=(worker_config, scenario),
    )
    done: set[int] = set()
    try:
        futures = {pool.submit(_run_trial, i, arr[i], dt_out_ms): i for i in range(arr.shape[0])}
        with _progress(progress, arr.shape[0]) as advance:
            for future in cf.as_completed(futures):
                index, result = future.result()
                out[index] = result
                done.add(index)
                advance()
    except BrokenProcessPool:
        lost = sorted(set(range(arr.shape[0])) - done)
        raise SimulationError(
            f"a worker process died (killed or out of memory); {len(lost)} trial(s) lost: "
            f"{_ranges(lost)}; rerun them, e.g. with fewer workers"
        ) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return out


_SIMULATOR: CelegansSimulator | None = None
_INIT_ERROR: NeuroreduceError | None = None


def _init_worker(config: CelegansConfig, scenario: Scenario) -> None:
    """Pool initializer: one thread per numeric library, the parent's scenario (it may have been
    registered at run time), and the network, built once."""
    global _SIMULATOR, _INIT_ERROR
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


def _run_trial(index: int, currents: np.ndarray, dt_out_ms: float) -> tuple[int, np.ndarray]:
    if os.environ.get(FAULT_KILL_ENV) == str(index):
        os._exit(70)
    if _INIT_ERROR is not None:
        raise _INIT_ERROR
    assert _SIMULATOR is not None
    return index, _SIMULATOR.run_trial(currents, dt_out_ms=dt_out_ms, index=index)


@contextlib.contextmanager
def _progress(show: bool, total: int) -> Iterator[Callable[[], None]]:
    if not show:
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=False,
    ) as bar:
        task = bar.add_task("NEURON trials", total=total)
        yield lambda: bar.advance(task)


def _ranges(indices: list[int]) -> str:
    """Sorted ``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs)
