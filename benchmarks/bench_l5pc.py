"""NEURON's cost per simulated second of the L5PC, what cuts it, and the 2-worker speed-up.

Runs one trial (``--trial``, default 7: one that spikes) of the Hay 2011 cell under the default
synaptic input (639 + 639 channels) for ``--duration-ms`` (default 1000 ms) under each
integration setting, from the resting state, and prints wall seconds per simulated second, the
spike count, the mean soma-voltage difference and the spike-time shift to the finest setting
(the price of each shortcut):

- fixed step 0.025 ms (reference), 0.05 ms, 0.1 ms;
- CVODE (variable step, atol 1e-3);
- 0.025 ms recording every channel segment's voltage (639 extra recorders) vs the soma only.

Then it generates ``--trials`` (default 4) trials with 1 and with 2 local worker processes
(`neuroreduce.simulators.l5pc.generate.generate`, the same spec, fixed step ``--dt``) and prints
both wall times and the speed-up side by side (workers include building the cell: ~2 s each).

    python benchmarks/bench_l5pc.py                       # ~5-10 min on a quiet 2-core machine
    python benchmarks/bench_l5pc.py --skip-settings --trials 4 --dt 0.1
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time

import numpy as np

from neuroreduce.execution import Backend
from neuroreduce.simulators.l5pc.cell import CellConfig
from neuroreduce.simulators.l5pc.generate import L5PCSpec, default_morphology, generate
from neuroreduce.simulators.l5pc.inputs import InputConfig, draw_trial
from neuroreduce.simulators.l5pc.simulate import RunConfig, TrialRunner


def _settings(morphology: str, duration_ms: float, seed: int, trial: int,
              fixed_only: bool) -> None:
    inputs = InputConfig()
    settings = [
        ("fixed 0.025 ms", RunConfig(dt_ms=0.025)),
        ("fixed 0.05 ms", RunConfig(dt_ms=0.05)),
        ("fixed 0.1 ms", RunConfig(dt_ms=0.1)),
        ("cvode atol 1e-3", RunConfig(cvode=True)),
        ("fixed 0.025 ms + 639 dendritic recorders", RunConfig(dt_ms=0.025,
                                                                record_dendrites=True)),
    ]
    if fixed_only:
        settings = settings[:3]
    reference = None
    print(f"{'setting':44s} {'s per sim s':>11s} {'spikes':>6s} {'mean |dV| mV':>12s} "
          f"{'spike times vs first':>22s}")
    for name, run in settings:
        runner = TrialRunner(CellConfig(morphology=morphology), run)
        times, chans, _ = draw_trial(inputs, n_channels=runner.n_channels,
                                     duration_ms=duration_ms, seed=seed, trial=trial)
        t0 = time.perf_counter()
        result = runner.run(times, chans, duration_ms=duration_ms)
        cost = (time.perf_counter() - t0) / (duration_ms / 1000.0)
        if reference is None:
            reference = result
        diff = float(np.mean(np.abs(result.soma_v - reference.soma_v)))
        shift = _spike_shift(reference.spike_times_ms, result.spike_times_ms)
        print(f"{name:44s} {cost:11.2f} {result.spike_times_ms.size:6d} {diff:12.3f} "
              f"{shift:>22s}", flush=True)
        runner.close()  # one cell at a time: NEURON integrates every cell of the process
        gc.collect()


def _spike_shift(ref: np.ndarray, other: np.ndarray) -> str:
    """Mean |shift| (ms) of matched spikes, or the count difference."""
    if ref.size != other.size:
        return f"{other.size - ref.size:+d} spikes"
    return f"{np.mean(np.abs(ref - other)):.3f} ms" if ref.size else "-"


def _speedup(morphology: str, trials: int, duration_ms: float, dt_ms: float) -> None:
    spec = L5PCSpec(morphology=morphology, duration_ms=duration_ms, dt_ms=dt_ms)
    walls = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            t0 = time.perf_counter()
            generate(spec, trials, out=os.path.join(tmp, f"w{workers}.h5"),
                     backend=Backend(workers=workers), progress=False)
            walls[workers] = time.perf_counter() - t0
    sim_s = trials * duration_ms / 1000.0
    print(f"{trials} trials x {duration_ms:g} ms at dt {dt_ms} ms: 1 worker {walls[1]:.1f} s "
          f"({walls[1] / sim_s:.2f} s per sim s), 2 workers {walls[2]:.1f} s "
          f"({walls[2] / sim_s:.2f} s per sim s); speed-up {walls[1] / walls[2]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--morphology", default=default_morphology())
    parser.add_argument("--duration-ms", type=float, default=1000.0)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--dt", type=float, default=0.05, help="step of the speed-up runs (ms)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trial", type=int, default=7,
                        help="input trial of the settings comparison (7: one that spikes)")
    parser.add_argument("--skip-settings", action="store_true")
    parser.add_argument("--fixed-only", action="store_true", help="only the three fixed steps")
    parser.add_argument("--skip-speedup", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if not args.skip_settings:
        _settings(args.morphology, args.duration_ms, args.seed, args.trial, args.fixed_only)
    if not args.skip_speedup:
        _speedup(args.morphology, args.trials, args.duration_ms, args.dt)


if __name__ == "__main__":
    main()
