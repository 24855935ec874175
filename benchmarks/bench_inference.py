"""Surrogate inference time for one 1001-step trial, and (optionally) the NEURON run it replaces.

Times a GRU-4 (4 inputs -> 4 outputs, the paper's recommended size) on a 500 ms trial at
0.5 ms (1001 steps) at batch 1 and batch 1000, under ``torch.no_grad`` on CPU. With ``--neuron``
and the C. elegans simulator available (``neuroreduce.simulators.celegans``), also times the
FCM network in NEURON on the same currents and prints the ratio; without it the script says so
and prints the surrogate numbers only.

    python benchmarks/bench_inference.py
    python benchmarks/bench_inference.py --neuron       # needs NEURON + c302 (builds once)
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time

import numpy as np
import torch

from neuroreduce.errors import NeuroreduceError
from neuroreduce.models import build_model, count_parameters

N_TIME = 1001  # 500 ms at 0.5 ms, both ends included


def time_surrogate(model: torch.nn.Module, batch: int, repeats: int) -> float:
    """Median seconds of one forward pass over ``batch`` trials of ``N_TIME`` steps."""
    x = torch.randn(batch, N_TIME, model.n_inputs)
    times = []
    with torch.no_grad():
        model(x)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_neuron(currents: np.ndarray) -> tuple[float, float] | str:
    """(seconds for 1 trial incl. network set-up, marginal seconds per further trial) or why not."""
    if importlib.util.find_spec("neuroreduce.simulators.celegans") is None:
        return "neuroreduce.simulators.celegans is not available"
    from neuroreduce.pipeline import SimulationSettings, run_simulator
    from neuroreduce.scenarios import get_scenario

    scenario = get_scenario("fcm")
    settings = SimulationSettings(workers=1)
    try:
        run_simulator(scenario, currents[:1], dt_out_ms=0.5, settings=settings, progress=False)
        start = time.perf_counter()
        run_simulator(scenario, currents[:1], dt_out_ms=0.5, settings=settings, progress=False)
        one = time.perf_counter() - start
        start = time.perf_counter()
        run_simulator(scenario, currents[:3], dt_out_ms=0.5, settings=settings, progress=False)
        three = time.perf_counter() - start
    except NeuroreduceError as exc:
        return f"NEURON run failed: {exc}"
    return one, (three - one) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neuron", action="store_true", help="also time the NEURON network")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--hidden", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model("gru", n_inputs=4, n_outputs=4, hidden=args.hidden).eval()
    one = time_surrogate(model, 1, repeats=30)
    many = time_surrogate(model, 1000, repeats=3)
    print(
        f"GRU-{args.hidden} ({count_parameters(model)} parameters), {N_TIME} steps, "
        f"{args.threads} thread(s)"
    )
    print(f"  batch 1:    {one * 1e3:8.2f} ms per trial")
    print(f"  batch 1000: {many:8.3f} s  ({many / 1000 * 1e3:.3f} ms per trial)")
    if not args.neuron:
        return
    rng = np.random.default_rng(0)
    currents = np.abs(rng.normal(0.0, 0.002, size=(3, N_TIME, 4)))  # nA, a few pA
    result = time_neuron(currents)
    if isinstance(result, str):
        print(f"NEURON: skipped ({result})")
        return
    first, per_trial = result
    print(
        f"NEURON FCM network: {first:.2f} s for 1 trial (with set-up), {per_trial:.2f} s per "
        "further trial"
    )
    print(
        f"  surrogate speed-up per trial: {per_trial / one:.0f}x at batch 1, "
        f"{per_trial / (many / 1000):.0f}x at batch 1000"
    )


if __name__ == "__main__":
    main()
