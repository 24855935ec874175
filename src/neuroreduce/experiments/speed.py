"""What a surrogate saves: simulator seconds per simulated second vs surrogate inference.

Both are measured in the same process run, on the same stimuli (the dataset's test trials):

* the simulator that produced the dataset, rebuilt from the dataset's provenance through
  :func:`neuroreduce.simulators.registry.make_simulator` (NEURON runs in a fresh worker process,
  since NEURON holds one compiled network per process); setup (network build) is timed apart
  from the per-trial cost;
* one member of a trained surrogate (its normalisation included), at batch 1 and at a batch of
  all test trials, with torch in inference mode, after one warm-up call; the median of
  ``repeats`` calls is kept.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import statistics
import time
from typing import Any

import numpy as np
import torch

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.errors import ConfigError
from neuroreduce.scenarios import get_scenario
from neuroreduce.simulators.registry import SIMULATORS, simulator_entry


def simulator_of_dataset(dataset: Dataset) -> tuple[str, dict[str, Any]]:
    """Name and options of the simulator that produced ``dataset`` (from its provenance).

    Returns:
        ``(name, options)`` for :func:`~neuroreduce.simulators.registry.make_simulator`.

    Raises:
        ConfigError: if the provenance does not name a known simulator (e.g. imported data).
    """
    prov = dict(dataset.provenance)
    sub = {k.split(".", 1)[1]: v for k, v in prov.items() if k.startswith("simulator.")}
    name = sub.get("simulator") or prov.get("simulator")
    scenario_name = sub.get("scenario") or prov.get("scenario")
    if name is None and scenario_name is not None:
        try:
            name = get_scenario(str(scenario_name)).simulator
        except ConfigError:
            name = None
    entry = SIMULATORS.get(str(name)) if name is not None else None
    if entry is None:
        raise ConfigError(
            f"the dataset's provenance names no simulator this tool can rerun ({name!r}); speed "
            "can only be measured for simulated datasets (set speed = false in [analysis])"
        )
    options = entry.rerun_options(
        sub,
        scenario=None if scenario_name is None else str(scenario_name),
        n_inputs=len(dataset.input_names),
        n_outputs=len(dataset.output_names),
    )
    return entry.name, options


def _time_simulator(
    name: str, options: dict[str, Any], currents: np.ndarray, dt_out_ms: float
) -> dict[str, Any]:
    """Build the simulator, then time each trial separately (runs in a worker for NEURON)."""
    t0 = time.perf_counter()
    sim = simulator_entry(name).make(**options)
    prepare = getattr(sim, "prepare", None)
    if callable(prepare):
        prepare()
    setup_s = time.perf_counter() - t0
    per_trial = []
    for i in range(currents.shape[0]):
        t1 = time.perf_counter()
        sim.run(currents[i : i + 1], dt_out_ms=dt_out_ms)
        per_trial.append(time.perf_counter() - t1)
    return {"setup_s": setup_s, "trial_s": per_trial}


def measure_simulator(
    dataset: Dataset, trials: np.ndarray, *, in_worker: bool | None = None
) -> dict[str, Any]:
    """Wall time of the dataset's simulator on some of its trials.

    Args:
        dataset: A simulated dataset (its provenance names the simulator).
        trials: Trial indices to re-simulate.
        in_worker: Run in a fresh spawned process (default: the simulator's registry entry
            says, e.g. yes for NEURON, no for the toy).

    Returns:
        ``simulator``, ``options``, ``setup_s`` (build, s), ``trial_s`` (per trial, s),
        ``trial_duration_s`` (simulated seconds per trial) and ``s_per_simulated_s`` (mean
        trial wall time / simulated time).
    """
    name, options = simulator_of_dataset(dataset)
    idx = np.asarray(trials, dtype=np.int64)
    if idx.size == 0:
        raise ConfigError("speed needs at least one trial to simulate (speed_trials >= 1)")
    currents = np.asarray(dataset.inputs[idx], dtype=np.float64)
    worker = simulator_entry(name).needs_own_process if in_worker is None else in_worker
    if worker:
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
            timing = pool.submit(
                _time_simulator, name, options, currents, float(dataset.dt_ms)
            ).result()
    else:
        timing = _time_simulator(name, options, currents, float(dataset.dt_ms))
    duration_s = (dataset.n_time - 1) * float(dataset.dt_ms) / 1000.0
    mean_trial = float(np.mean(timing["trial_s"]))
    return {
        "simulator": name,
        "options": options,
        "n_trials": int(idx.size),
        "setup_s": float(timing["setup_s"]),
        "trial_s": [float(t) for t in timing["trial_s"]],
        "mean_trial_s": mean_trial,
        "trial_duration_s": duration_s,
        "s_per_simulated_s": mean_trial / duration_s if duration_s > 0 else float("nan"),
    }


def _median_time(fn: Any, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure_surrogate(
    run: Any, inputs: np.ndarray, *, dt_ms: float, repeats: int = 5, member: int = 0
) -> dict[str, Any]:
    """Inference wall time of one member of a trained run (physical units in and out).

    Args:
        run: A :class:`~neuroreduce.training.TrainedRun`.
        inputs: Currents ``[trial, time, input]`` (nA) in the run's input order.
        dt_ms: Sampling interval (ms), to express the time per simulated second.
        repeats: Timed calls per batch size (median kept).
        member: Which ensemble member is timed.

    Returns:
        ``batch1_s`` (one trial), ``batch_all_s`` (all trials in one batch), ``n_trials``,
        ``threads`` and both per simulated second.
    """
    model = run.member(member)
    norm = run.normalization
    x = np.asarray(inputs, dtype=np.float32)
    mean_in = torch.tensor(norm.input_mean, dtype=torch.float32)
    std_in = torch.tensor(norm.input_std, dtype=torch.float32)
    mean_out = torch.tensor(norm.output_mean, dtype=torch.float32)
    std_out = torch.tensor(norm.output_std, dtype=torch.float32)
    one = torch.from_numpy(x[:1].copy())
    everything = torch.from_numpy(x.copy())

    def infer(batch: torch.Tensor) -> Any:
        def call() -> torch.Tensor:
            with torch.inference_mode():
                return model((batch - mean_in) / std_in) * std_out + mean_out

        return call

    batch1 = _median_time(infer(one), repeats)
    batch_all = _median_time(infer(everything), repeats)
    duration_s = (x.shape[1] - 1) * dt_ms / 1000.0
    return {
        "member": member,
        "n_trials": int(x.shape[0]),
        "threads": torch.get_num_threads(),
        "batch1_s": batch1,
        "batch_all_s": batch_all,
        "batch1_s_per_simulated_s": batch1 / duration_s if duration_s > 0 else float("nan"),
        "batch_all_s_per_simulated_s": (
            batch_all / (x.shape[0] * duration_s) if duration_s > 0 else float("nan")
        ),
    }


def speedups(simulator: dict[str, Any], surrogate: dict[str, Any]) -> dict[str, float]:
    """Simulator time over surrogate time per simulated second (batch 1 and batched)."""
    sim = simulator["s_per_simulated_s"]
    return {
        "speedup_batch1": sim / surrogate["batch1_s_per_simulated_s"],
        "speedup_batch_all": sim / surrogate["batch_all_s_per_simulated_s"],
    }
