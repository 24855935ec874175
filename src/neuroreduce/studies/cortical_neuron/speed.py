"""Surrogate cost at NeuronIO scale (1,278 synaptic inputs, 2 outputs), independent of the
data an experiment trained on: what a surrogate of the full cell would cost to run.

Each configuration is built untrained (cost does not depend on the weights) and run forward on
random spike inputs (``rate`` spikes per channel per ms, about 5 Hz) at batch 1 and batched,
one CPU thread, best of ``repeats``; the result is wall seconds per simulated second of one
trial. The dense input is built once (the NEURON run it replaces gets its spike trains ready
too).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from neuroreduce.studies.cortical_neuron.tables import NEURONIO_INPUTS, NEURONIO_OUTPUTS

#: Configurations timed: (label, family, hidden, options).
SPEED_MODELS: tuple[tuple[str, str, int, dict[str, Any]], ...] = (
    ("Branch-ELM d_m=15 (6,827)", "elm", 15, {"branches": 45, "synapses_per_branch": 100,
                                              "interleave": True, "tau_max_ms": 150.0}),
    ("LSTM 4-4-2", "stacked_rnn", 4, {"cell": "lstm", "layers": 3, "sizes": (4, 4, 2)}),
    ("LSTM 256-64-2 (blog best)", "stacked_rnn", 256, {"cell": "lstm", "layers": 3,
                                                       "sizes": (256, 64, 2)}),
    ("TCN 6ch x7, k 1/3, dil. 2", "tcn", 6, {"layers": 7, "first_kernel": 1, "kernel": 3,
                                             "dilation_base": 2}),
    ("GLM 100 ms, 8 bases", "glm", 100, {"bases": 8}),
)


def neuronio_speed(*, duration_ms: float = 1000.0, batch: int = 16, repeats: int = 2,
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

        def best(inp: torch.Tensor, net: Any = net) -> float:
            times = []
            with torch.no_grad():
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    net(inp)
                    times.append(time.perf_counter() - t0)
            return min(times)

        rows.append({"label": label, "model": model, "parameters": count_parameters(net),
                     "batch1_s_per_simulated_s": best(x[:1]) / sim_s,
                     "batched_s_per_simulated_s": best(x) / (sim_s * batch), "batch": batch})
    return rows
