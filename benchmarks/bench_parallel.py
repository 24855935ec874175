"""Parallel efficiency of NEURON dataset generation: serial vs N worker processes (target 4).

Usage (from the repository root, with the venv active):

    python benchmarks/bench_parallel.py                      # 16 x 500 ms FCM trials, 2 workers
    python benchmarks/bench_parallel.py --trials 8 --backend ray

Both sides run the same trials from the same cached network and include their own set-up:

* serial: this process builds the network (+ rest state) once and runs every trial;
* parallel: ``run_tasks`` with the same worker initializer and trial function as
  :func:`neuroreduce.simulators.parallel.simulate_many` (spawned workers, one network build
  each, trials handed out one at a time); the trial function is wrapped to record when each
  trial started and ended, so the figure *without start-up* is first trial start -> last end.

Prints wall times, ratios with and without start-up, the parent's CPU time during the parallel
run (it should sleep, not compete for a core), the load average and whether outputs are
identical. Timings on a shared machine are noisy: look at the printed load. The CPU seconds of
each side (set-up and trials, per worker) do not depend on the load; from them the script also
projects the ratio on idle cores (busiest worker's CPU time vs the serial CPU time).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import resource
import time

import numpy as np

from neuroreduce.execution import Backend, run_tasks
from neuroreduce.scenarios import get_scenario
from neuroreduce.simulators import parallel
from neuroreduce.simulators.c302_build import cache_root, ensure_built
from neuroreduce.simulators.celegans import CelegansConfig, CelegansSimulator

DT_OUT_MS = 0.5


def timed_trial(payload: tuple[int, np.ndarray, float]) -> tuple[np.ndarray, tuple]:
    """``simulate_many``'s trial task, plus wall-clock start/end (s since epoch), pid and the
    worker process's CPU seconds at start and end (the first start includes its set-up)."""
    start, cpu_start = time.time(), time.process_time()
    out = parallel._trial_task(payload)
    return out, (start, time.time(), os.getpid(), cpu_start, time.process_time())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", choices=("local", "ray"), default="local")
    parser.add_argument("--dt", type=float, default=0.05, help="NEURON integration step (ms)")
    args = parser.parse_args()
    # imported here, not at the top: spawned workers re-import this module (scipy costs ~1 s)
    from neuroreduce.stimuli import generate_stimuli

    config = CelegansConfig(scenario="fcm", dt_ms=args.dt)
    scenario = get_scenario(config.scenario)
    n_time = int(round(scenario.duration_ms / DT_OUT_MS)) + 1
    currents = generate_stimuli(n_inputs=len(scenario.inputs), n_time=n_time, dt_ms=DT_OUT_MS,
                                n_trials=args.trials, amplitude_range_na=(0.0, 0.1),
                                seed=0).currents
    ensure_built(config.build_spec(), cache_dir=config.cache_dir)
    print(f"machine: {platform.platform()} | {os.cpu_count()} CPUs | "
          f"Python {platform.python_version()}")
    print(f"{args.trials} x {scenario.duration_ms:.0f} ms FCM trials, parameters_"
          f"{config.parameter_set}, dt {config.dt_ms} ms; load average before: "
          f"{os.getloadavg()[0]:.2f}")

    # parallel first (a fresh process: nothing of NEURON loaded here yet)
    backend = Backend(kind=args.backend, workers=args.workers)
    worker_config = dataclasses.replace(
        config, cache_dir=str(cache_root(config.cache_dir).parent.resolve()))
    tasks = {str(i): (i, currents[i], DT_OUT_MS) for i in range(args.trials)}
    if args.backend == "ray":  # start Ray outside the timing (a cluster would already be up)
        from neuroreduce.execution import ensure_ray

        ensure_ray(backend)
    par = np.empty((args.trials, n_time, len(scenario.outputs)))
    starts, ends, pids = [], [], set()
    cpu: dict[int, list[tuple[float, float]]] = {}
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.time()
    for outcome in run_tasks(timed_trial, tasks, backend, progress=False,
                             initializer=parallel._init_worker,
                             init_arg=(worker_config, scenario), isolate=True):
        assert outcome.ok, outcome.error
        par[int(outcome.key)], (start, end, pid, cpu_start, cpu_end) = outcome.value
        starts.append(start)
        ends.append(end)
        pids.add(pid)
        cpu.setdefault(pid, []).append((cpu_start, cpu_end))
    par_total = time.time() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    parent_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    par_steady = max(ends) - min(starts)
    first_trial_after = min(starts) - t0
    load_mid = os.getloadavg()[0]

    t0, c0 = time.perf_counter(), time.process_time()
    sim = CelegansSimulator(config)
    sim.prepare()
    setup, setup_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    serial = np.stack([sim.run_trial(currents[i], dt_out_ms=DT_OUT_MS, index=i)
                       for i in range(args.trials)])
    serial_trials, serial_cpu = time.perf_counter() - t0, time.process_time() - c0
    serial_total = setup + serial_trials
    # CPU seconds per worker: set-up (CPU before its first trial) and its trials
    worker_setup = {pid: min(c[0] for c in rows) for pid, rows in cpu.items()}
    worker_trials = {pid: sum(b - a for a, b in rows) for pid, rows in cpu.items()}
    busiest = max(cpu, key=lambda p: worker_setup[p] + worker_trials[p])

    print(f"serial (this process): set-up {setup:.1f} s + trials {serial_trials:.1f} s "
          f"({serial_trials / args.trials:.2f} s/trial) = {serial_total:.1f} s")
    print(f"{args.workers} workers ({args.backend}, {len(pids)} processes used): "
          f"total {par_total:.1f} s, first trial started after {first_trial_after:.1f} s "
          f"(spawn + network build), trials {par_steady:.1f} s; parent CPU during the run "
          f"{parent_cpu:.2f} s")
    print(f"speed-up including start-up: {serial_total / par_total:.2f}x; "
          f"without start-up (trials only): {serial_trials / par_steady:.2f}x; "
          f"ideal {args.workers}x")
    print(f"CPU seconds (load-independent): serial set-up {setup_cpu:.1f} + trials "
          f"{serial_cpu:.1f} ({serial_cpu / args.trials:.2f}/trial); workers set-up "
          + ", ".join(f"{worker_setup[p]:.1f}" for p in cpu) + " + trials "
          + ", ".join(f"{worker_trials[p]:.1f} ({len(cpu[p])} trials)" for p in cpu)
          + f" = {sum(worker_trials.values()) / args.trials:.2f}/trial")
    idle_par = worker_setup[busiest] + worker_trials[busiest]
    print(f"projected on {args.workers} idle cores from CPU seconds: including start-up "
          f"{(setup_cpu + serial_cpu) / idle_par:.2f}x, trials only "
          f"{serial_cpu / max(worker_trials.values()):.2f}x")
    print(f"outputs identical to serial: {np.array_equal(serial, par)}; load average during "
          f"parallel run {load_mid:.2f}, after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
