"""NEURON cost of the C. elegans network, serial vs worker processes; parameter-set comparison.

Usage (from the repository root, with the venv active):

    python benchmarks/bench_neuron.py speed --trials 6            # serial vs 2 workers
    python benchmarks/bench_neuron.py parameter-sets --sets C,C0,C1

``speed`` prints the machine, versions, the one-off costs (generation, conversion, compilation,
network build) and the cost per simulated second of a handful of FCM stimuli run serially in
this process and with 2 worker processes, side by side, and the speed-up.

``parameter-sets`` runs each parameter set in its own process (NEURON holds one compiled model
per process) and prints: setup cost, cost per 500 ms stimulus, divergence, step-amplitude
sweeps (peak deflection from rest per output), how all-or-none the sweep is (steepest slope of
peak deflection vs amplitude over the mean slope: 1 = linear, >> 1 = a threshold) and how much
outputs vary across a diverse stimulus set at given amplitude ranges.
The numbers in docs/c302_parameter_sets.md come from this command.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from neuroreduce.errors import SimulationError
from neuroreduce.scenarios import get_scenario
from neuroreduce.simulators.c302_build import build_key, ensure_built, tool_versions
from neuroreduce.simulators.celegans import CelegansConfig, CelegansSimulator
from neuroreduce.simulators.parallel import simulate_many
from neuroreduce.stimuli import generate_stimuli

DT_OUT_MS = 0.5


def machine() -> str:
    return (
        f"{platform.platform()} | {platform.processor() or platform.machine()} | "
        f"{os.cpu_count()} CPUs | Python {platform.python_version()}"
    )


def fcm_stimuli(n_trials: int, amplitude_range_na: tuple[float, float], seed: int) -> np.ndarray:
    scenario = get_scenario("fcm")
    return generate_stimuli(
        n_inputs=len(scenario.inputs),
        n_time=int(round(scenario.duration_ms / DT_OUT_MS)) + 1,
        dt_ms=DT_OUT_MS,
        n_trials=n_trials,
        amplitude_range_na=amplitude_range_na,
        seed=seed,
    ).currents


def speed(args: argparse.Namespace) -> None:
    config = CelegansConfig(parameter_set=args.parameter_set, dt_ms=args.dt)
    scenario = get_scenario(config.scenario)
    print(f"machine: {machine()}")
    print(f"versions: {tool_versions()}")
    key = build_key(config.build_spec())
    t0 = time.perf_counter()
    built = ensure_built(config.build_spec(), cache_dir=config.cache_dir, log=print)
    took = time.perf_counter() - t0
    timings = built.info.get("timings", {})
    state = "built now" if took > 1.0 else "cached"
    print(
        f"network parameters_{config.parameter_set}, dt {config.dt_ms} ms, key {key} ({state}): "
        + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
    )
    currents = fcm_stimuli(args.trials, scenario.amplitude_range_na, seed=0)
    simulated_s = args.trials * scenario.duration_ms / 1000.0

    t0 = time.perf_counter()
    sim = CelegansSimulator(config)
    sim.prepare()
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    serial = sim.run(currents, dt_out_ms=DT_OUT_MS)
    serial_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    par = simulate_many(config, currents, dt_out_ms=DT_OUT_MS, workers=args.workers, progress=False)
    par_s = time.perf_counter() - t0
    same = np.array_equal(serial, par)

    print(f"network build + rest state in a process: {setup:.1f} s (once per process)")
    print(
        f"serial:    {args.trials} x {scenario.duration_ms:.0f} ms in {serial_s:.1f} s = "
        f"{serial_s / simulated_s:.2f} s per simulated s ({serial_s / args.trials:.2f} s/stimulus)"
    )
    print(
        f"{args.workers} workers: {args.trials} x {scenario.duration_ms:.0f} ms in {par_s:.1f} s = "
        f"{par_s / simulated_s:.2f} s per simulated s (including worker start-up and "
        f"network builds); identical to serial: {same}"
    )
    print(f"speed-up {args.workers} workers vs serial: {serial_s / par_s:.2f}x including start-up")
    steady = max(par_s - setup, 1e-9)
    print(
        f"speed-up without the one-off start-up (~{setup:.1f} s per worker, in parallel): "
        f"{serial_s / steady:.2f}x"
    )


def evaluate_set(args: argparse.Namespace) -> None:
    """One parameter set in this process; writes a JSON summary to ``args.json``."""
    amps_pa = [float(a) for a in args.amps.split(",")]
    ranges = [float(r) for r in args.ranges.split(",")]
    scenario = get_scenario("fcm")
    n = int(round(scenario.duration_ms / DT_OUT_MS)) + 1
    t_ms = np.arange(n) * DT_OUT_MS
    result: dict = {"parameter_set": args.parameter_set, "dt_ms": args.dt, "amps_pa": amps_pa}

    t0 = time.perf_counter()
    config = CelegansConfig(parameter_set=args.parameter_set, dt_ms=args.dt)
    built = ensure_built(config.build_spec())
    result["build_timings_s"] = built.info.get("timings", {})
    sim = CelegansSimulator(config)
    sim.prepare()
    result["setup_s"] = time.perf_counter() - t0
    rest = sim.run(np.zeros((1, n, 4)), dt_out_ms=DT_OUT_MS)[0]
    result["rest_mv"] = rest[0].tolist()
    result["zero_input_drift_mv"] = float(np.abs(rest - rest[0]).max())

    costs, diverged, sweeps = [], [], {}
    for label, channels in (("all", [0, 1, 2, 3]), ("PLM", [0, 1]), ("AVB", [2, 3])):
        peaks = []
        for amp in amps_pa:
            cur = np.zeros((n, 4))
            cur[np.ix_((t_ms >= 100) & (t_ms < 400), channels)] = amp * 1e-3
            t0 = time.perf_counter()
            try:
                out = sim.run_trial(cur, dt_out_ms=DT_OUT_MS)
                peaks.append(np.abs(out - rest[0]).max(axis=0).tolist())
            except SimulationError:
                diverged.append(f"{label} {amp:g} pA")
                peaks.append(None)
            costs.append(time.perf_counter() - t0)
        sweeps[label] = peaks
    result["cost_s_per_stimulus"] = float(np.median(costs))
    result["diverged"] = diverged
    result["sweeps"] = sweeps
    result["steepness"] = _steepness(sweeps["all"], amps_pa)

    variation = {}
    for hi in ranges:
        cur = fcm_stimuli(args.stimuli, (0.0, hi), seed=1)
        peaks, bad = [], 0
        for i in range(cur.shape[0]):
            try:
                out = sim.run_trial(cur[i], dt_out_ms=DT_OUT_MS, index=i)
            except SimulationError:
                bad += 1
                continue
            peaks.append(np.abs(out - rest[0]).max(axis=0))
        p = np.array(peaks) if peaks else np.zeros((0, 4))
        variation[f"{hi:g}"] = {
            "diverged": bad,
            "mean_peak_mv": p.mean(axis=0).round(3).tolist() if len(p) else None,
            "std_peak_mv": p.std(axis=0).round(3).tolist() if len(p) else None,
            "frac_over_1mv": float((p > 1.0).mean()) if len(p) else None,
        }
    result["variation"] = variation
    Path(args.json).write_text(json.dumps(result, indent=1))


def _steepness(peaks: list, amps_pa: list[float]) -> float | None:
    """Steepest slope of peak deflection vs amplitude over the mean slope, averaged over outputs
    (1 for a linear response, ~1-2 for graded ones, >> 1 for an all-or-none threshold)."""
    keep = [(a, p) for a, p in zip(amps_pa, peaks, strict=True) if p is not None]
    if len(keep) < 2:
        return None
    amps = np.array([0.0] + [a for a, _ in keep])
    rows = np.vstack([np.zeros(len(keep[0][1]))] + [np.array(p) for _, p in keep])
    local = np.diff(rows, axis=0) / np.diff(amps)[:, None]
    overall = rows[-1] / amps[-1]
    ok = overall > 1e-9
    return float(np.mean(local.max(axis=0)[ok] / overall[ok]))


def parameter_sets(args: argparse.Namespace) -> None:
    print(f"machine: {machine()}")
    print(f"versions: {tool_versions()}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets.split(","):
            path = Path(tmp) / f"{name}.json"
            cmd = [
                sys.executable, __file__, "evaluate-set", "--parameter-set", name,
                "--dt", str(args.dt), "--amps", args.amps, "--ranges", args.ranges,
                "--stimuli", str(args.stimuli), "--json", str(path),
            ]  # fmt: skip
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0 or not path.exists():
                print(f"{name}: failed: {proc.stderr.strip().splitlines()[-3:]}")
                continue
            res = json.loads(path.read_text())
            res["wall_s"] = time.perf_counter() - t0
            results.append(res)
    outputs = get_scenario("fcm").outputs
    for res in results:
        print(f"\n=== parameters_{res['parameter_set']} (dt {res['dt_ms']} ms)")
        print(
            "build: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in res["build_timings_s"].items())
            + f"; network + rest state in a process: {res['setup_s']:.1f} s"
        )
        print(
            f"cost per 500 ms stimulus: {res['cost_s_per_stimulus']:.2f} s; rest (mV) "
            f"{np.round(res['rest_mv'], 2).tolist()}; zero-input drift "
            f"{res['zero_input_drift_mv']:.1e} mV"
        )
        print(f"diverged (NaN/inf or |v|>1000 mV): {res['diverged'] or 'none'}")
        print(
            "steepness of the 'all inputs' sweep (steepest / mean slope of peak vs amplitude; "
            f"1 = linear, >> 1 = all-or-none): {res['steepness']:.1f}"
        )
        for label, peaks in res["sweeps"].items():
            print(f"  step 100-400 ms into {label}: peak |v - rest| (mV) of {', '.join(outputs)}")
            for amp, peak in zip(res["amps_pa"], peaks, strict=True):
                shown = "diverged" if peak is None else " ".join(f"{x:7.2f}" for x in peak)
                print(f"    {amp:6g} pA  {shown}")
        for hi, var in res["variation"].items():
            print(
                f"  {args.stimuli} diverse stimuli 0-{hi} nA: mean peak {var['mean_peak_mv']} mV,"
                f" std across stimuli {var['std_peak_mv']} mV, share of peaks > 1 mV "
                f"{var['frac_over_1mv']}, diverged {var['diverged']}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("speed", help="serial vs worker processes")
    p.add_argument("--trials", type=int, default=6)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--parameter-set", default=CelegansConfig().parameter_set)
    p.add_argument("--dt", type=float, default=0.05)
    for name in ("parameter-sets", "evaluate-set"):
        p = sub.add_parser(name)
        p.add_argument("--sets", default="C,C0,C1")
        p.add_argument("--parameter-set", default="C0")
        p.add_argument("--dt", type=float, default=0.05)
        p.add_argument("--amps", default="0.5,1,2,3,5,10,20,50,100,200")
        p.add_argument("--ranges", default="0.005,0.1")
        p.add_argument("--stimuli", type=int, default=8)
        p.add_argument("--json", default="")
    args = parser.parse_args()
    command = args.command or "speed"
    if command == "speed":
        if args.command is None:
            args = parser.parse_args(["speed"])
        speed(args)
    elif command == "parameter-sets":
        parameter_sets(args)
    else:
        evaluate_set(args)


if __name__ == "__main__":
    main()
