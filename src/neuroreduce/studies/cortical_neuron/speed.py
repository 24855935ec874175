"""Surrogate cost at NeuronIO scale (1,278 synaptic inputs, 2 outputs), independent of the
data an experiment trained on: what a surrogate of the full cell would cost to run.

Each configuration is built untrained (cost does not depend on the weights) and run forward on
random spike inputs (``rate`` spikes per channel per ms, about 5 Hz) at batch 1 and batched,
one CPU thread, best of ``repeats``; the result is wall seconds per simulated second of one
trial. The dense input is built once (the NEURON run it replaces gets its spike trains ready
too). :func:`neuron_cost` times the NEURON run the surrogate replaces (simulator ``l5pc``, one
trial of the default 639 + 639 inputs, in a child process), so both figures come from one run.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce.studies.cortical_neuron.tables import NEURONIO_INPUTS, NEURONIO_OUTPUTS

#: Configurations timed: (label, family, hidden, options).
SPEED_MODELS: tuple[tuple[str, str, int, dict[str, Any]], ...] = (
    ("Branch-ELM d_m=15", "elm", 15, {"branches": 45, "synapses_per_branch": 100,
                                              "interleave": True, "tau_max_ms": 150.0}),
    ("LSTM 4-4-2", "stacked_rnn", 4, {"cell": "lstm", "layers": 3, "sizes": (4, 4, 2)}),
    ("LSTM 256-64-2 (blog best)", "stacked_rnn", 256, {"cell": "lstm", "layers": 3,
                                                       "sizes": (256, 64, 2)}),
    ("TCN 6ch x7, k 1/3, dil. 2", "tcn", 6, {"layers": 7, "first_kernel": 1, "kernel": 3,
                                             "dilation_base": 2}),
    ("GLM 100 ms, 8 bases", "glm", 100, {"bases": 8}),
)


def neuronio_speed(*, duration_ms: float = 500.0, batch: int = 64, repeats: int = 2,
                   rate: float = 0.005, seed: int = 0) -> list[dict[str, Any]]:
    """Seconds per simulated second of each :data:`SPEED_MODELS` entry at NeuronIO scale.

    Args:
        duration_ms: Simulated time per trial (ms at 1 ms steps).
        batch: Trials of the batched pass.
        repeats: Timings per setting (the best is kept).
        rate: Spike probability per channel and ms.
        seed: Seeds the inputs and the weights.

    Returns:
        Rows ``{"label", "model", "parameters", "batch1_s_per_simulated_s",
        "batched_s_per_simulated_s", "batch"}``.
    """
    import torch

    from neuroreduce.models import count_parameters
    from neuroreduce.models.registry import build_model

    torch.set_num_threads(1)
    steps = int(round(duration_ms))
    rng = np.random.default_rng(seed)
    x = torch.from_numpy((rng.random((batch, steps, NEURONIO_INPUTS)) < rate).astype(np.float32))
    sim_s = duration_ms / 1000.0
    rows = []
    for label, model, hidden, options in SPEED_MODELS:
        torch.manual_seed(seed)
        net = build_model(model, hidden=hidden, n_inputs=NEURONIO_INPUTS,
                          n_outputs=NEURONIO_OUTPUTS, options=options).eval()

        def best(inp: torch.Tensor, net: Any = net) -> tuple[float, float]:
            times = []
            with torch.no_grad():
                for _ in range(repeats):
                    t0, c0 = time.perf_counter(), time.process_time()
                    net(inp)
                    times.append((time.perf_counter() - t0, time.process_time() - c0))
            return min(times)

        (one, one_cpu), (many, many_cpu) = best(x[:1]), best(x)
        rows.append({"label": label, "model": model, "parameters": count_parameters(net),
                     "batch1_s_per_simulated_s": one / sim_s,
                     "batched_s_per_simulated_s": many / (sim_s * batch),
                     "batch1_cpu_s_per_simulated_s": one_cpu / sim_s,
                     "batched_cpu_s_per_simulated_s": many_cpu / (sim_s * batch),
                     "batch": batch})
    return rows


def _morphology() -> str | None:
    from neuroreduce.simulators.l5pc.generate import default_morphology

    here = Path(__file__).resolve()
    for candidate in (os.environ.get("NEUROREDUCE_L5PC_MORPHOLOGY"), default_morphology(),
                      str(here.parents[4] / "shared" / "data" / "l5pc" / "cell1.asc"),
                      str(here.parents[5] / "shared" / "data" / "l5pc" / "cell1.asc")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def _neuron_trial(morphology: str, duration_ms: float, dt_ms: float, trial: int) -> dict[
        str, Any]:
    from neuroreduce.simulators.l5pc.generate import L5PCSpec, runner_for, simulate_trial

    spec = L5PCSpec(morphology=morphology, duration_ms=duration_ms, dt_ms=dt_ms)
    runner_for(spec)  # building the cell is not part of the cost per simulated second
    t0, c0 = time.perf_counter(), time.process_time()
    record = simulate_trial(spec, trial)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    sim_s = duration_ms / 1000.0
    return {"available": True, "wall_s_per_simulated_s": wall / sim_s,
            "cpu_s_per_simulated_s": cpu / sim_s, "duration_ms": duration_ms, "dt_ms": dt_ms,
            "trial": trial, "channels": int(record["n_channels"]),
            "spikes": int(len(record["spike_times_ms"]))}


def neuron_cost(*, duration_ms: float = 500.0, dt_ms: float = 0.025, trial: int = 7,
                timeout_s: float = 900.0) -> dict[str, Any]:
    """Wall and CPU seconds of NEURON per simulated second of one ``l5pc`` trial (default
    inputs, fixed step ``dt_ms``), run in a child process (NEURON keeps one cell per process).

    Returns:
        ``{"available": True, "wall_s_per_simulated_s", "cpu_s_per_simulated_s", ...}``, or
        ``{"available": False, "why"}`` when NEURON, the mechanisms or the morphology are missing.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    morphology = _morphology()
    if morphology is None:
        return {"available": False, "why": "the L5PC morphology (cell1.asc) was not found; set "
                "NEUROREDUCE_L5PC_MORPHOLOGY"}
    try:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            return pool.submit(_neuron_trial, morphology, duration_ms, dt_ms, trial).result(
                timeout=timeout_s)
    except Exception as exc:  # NEURON missing or failing: report, do not fail the study
        return {"available": False, "why": f"{type(exc).__name__}: {exc}"[:300]}
