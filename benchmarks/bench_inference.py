"""Surrogate inference cost vs the NEURON run it replaces, step API cost, ONNX Runtime vs torch.

Trains a GRU-4 (4 inputs -> 4 outputs, the paper's recommended size) for one epoch on a small
toy dataset (the cost of inference does not depend on the weights), exports it with
:mod:`neuroreduce.export` and times, on CPU with 1 thread (torch and ONNX Runtime alike), a
500 ms trial at 0.5 ms (1001 steps), inputs in nA and outputs in mV (normalisation included):

- whole-sequence forward at batch 1 and batch 1000 (torch eager, TorchScript, ONNX Runtime,
  and `predict()` on the run, the library's batch path);
- the stateful step API (one call per 0.5 ms step, batch 1): torch eager, TorchScript, and the
  ONNX ``step`` graph in ONNX Runtime.

With ``--neuron`` it also runs the c302 FCM network in NEURON (``CelegansSimulator`` through
``pipeline.run_simulator``, default parameter set, integration dt 0.05 ms) on 1 and 3 trials in
the same run, and prints the speed-ups side by side: per trial vs batch 1, and 1000 trials
(1000 x NEURON's measured per-trial cost, serial; running them takes ~45 min) vs batch 1000.

    python benchmarks/bench_inference.py               # surrogate only (~30 s)
    python benchmarks/bench_inference.py --neuron      # + NEURON (builds the network twice)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from neuroreduce.errors import NeuroreduceError

N_TIME = 1001  # 500 ms at 0.5 ms, both ends included
N_BATCH = 1000


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median seconds of ``fn()`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def trained_run(folder: Path, hidden: int) -> Path:
    """A GRU-``hidden`` trained for one epoch on a toy 4 -> 4 dataset (12 trials x 1001)."""
    from neuroreduce.datasets.dataset import Dataset
    from neuroreduce.simulators.toy import LinearToySimulator, ToyConfig
    from neuroreduce.training import TrainConfig, train

    rng = np.random.default_rng(0)
    currents = np.abs(rng.normal(0.0, 0.5, size=(12, N_TIME, 4))).astype(np.float32)
    outputs = LinearToySimulator(ToyConfig()).run(currents, dt_out_ms=0.5)
    split = np.array([0] * 8 + [1] * 2 + [2] * 2)
    names = ("PLML", "PLMR", "AVBL", "AVBR"), ("DB1", "LUAL", "PVR", "VB1")
    ds = Dataset(currents, outputs, 0.5, *names, split=split)
    run = folder / "run"
    train(ds, TrainConfig(model="gru", hidden=hidden, epochs=1, batch_size=8), run, progress=False)
    return run


def time_surrogates(run: Path, folder: Path) -> dict[str, float]:
    """Seconds per call of every surrogate variant (keys name the variant)."""
    import onnxruntime as ort

    from neuroreduce.export import deployable, export_onnx, export_torchscript
    from neuroreduce.training import load_run, predict

    eager = deployable(run)
    scripted = torch.jit.load(str(export_torchscript(run, folder / "m.pt")))
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    sessions = {
        mode: ort.InferenceSession(
            str(export_onnx(run, folder / f"{mode}.onnx", mode=mode)),
            options,
            providers=["CPUExecutionProvider"],
        )
        for mode in ("sequence", "step")
    }
    rng = np.random.default_rng(1)
    x1 = np.abs(rng.normal(0, 0.5, size=(1, N_TIME, 4))).astype(np.float32)
    xb = np.abs(rng.normal(0, 0.5, size=(N_BATCH, N_TIME, 4))).astype(np.float32)
    t1, tb = torch.from_numpy(x1), torch.from_numpy(xb)
    out: dict[str, float] = {}
    with torch.no_grad():
        for name, module in (("torch", eager), ("torchscript", scripted)):
            out[f"{name} batch 1"] = median_time(lambda m=module: m(t1), 20)
            out[f"{name} batch {N_BATCH}"] = median_time(lambda m=module: m(tb), 3)

            def stepping(m: torch.nn.Module = module) -> None:
                state = m.init(1)
                for t in range(N_TIME):
                    _, state = m.step(t1[:, t], state)

            out[f"{name} step"] = median_time(stepping, 3) / N_TIME
    trained = load_run(run)  # predict(): the library's batch path (SurrogateEnsemble, numpy I/O)
    out["predict() batch 1"] = median_time(lambda: predict(trained, x1), 20)
    out[f"predict() batch {N_BATCH}"] = median_time(lambda: predict(trained, xb), 3)
    seq = sessions["sequence"]
    out["onnxruntime batch 1"] = median_time(lambda: seq.run(None, {"x": x1}), 20)
    out[f"onnxruntime batch {N_BATCH}"] = median_time(lambda: seq.run(None, {"x": xb}), 3)
    step = sessions["step"]

    def ort_stepping() -> None:
        h = np.zeros((1, eager.hidden), np.float32)
        for t in range(N_TIME):
            _, h = step.run(None, {"x": x1[:, t], "h": h})

    out["onnxruntime step"] = median_time(ort_stepping, 3) / N_TIME
    # the step API run as a loop must equal the whole-sequence forward
    with torch.no_grad():
        state, ys = eager.init(1), []
        for t in range(N_TIME):
            y, state = eager.step(t1[:, t], state)
            ys.append(y)
        err = (torch.stack(ys, 1) - eager(t1)).abs().max().item()
        ort_err = max(
            float(np.abs(seq.run(None, {"x": x})[0] - eager(torch.from_numpy(x)).numpy()).max())
            for x in (x1, xb[:8])
        )
    out["max |step - forward| (mV)"] = err
    out["max |onnxruntime - torch| (mV)"] = ort_err
    return out


def time_neuron() -> tuple[float, float] | str:
    """(seconds for 1 trial incl. network set-up, seconds per further trial) or why not."""
    from neuroreduce.pipeline import SimulationSettings, run_simulator
    from neuroreduce.scenarios import get_scenario

    rng = np.random.default_rng(0)
    currents = np.abs(rng.normal(0.0, 0.002, size=(3, N_TIME, 4)))  # nA, a few pA
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
    except (NeuroreduceError, ImportError) as exc:
        return f"NEURON run failed: {exc}"
    return one, (three - one) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neuron", action="store_true", help="also time the NEURON network")
    parser.add_argument("--hidden", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    big = f"batch {N_BATCH}"
    with tempfile.TemporaryDirectory() as tmp:
        run = trained_run(Path(tmp), args.hidden)
        res = time_surrogates(run, Path(tmp))
    print(f"GRU-{args.hidden} surrogate, {N_TIME} steps (500 ms at 0.5 ms), nA -> mV, 1 thread")
    print(
        f"{'':<14}{'batch 1 (ms)':>14}{f'batch {N_BATCH} (s)':>18}{'per trial (ms)':>16}"
        f"{'step API (us/step)':>20}"
    )
    for name in ("torch", "torchscript", "onnxruntime", "predict()"):
        one, many = res[f"{name} batch 1"], res[f"{name} {big}"]
        step = res.get(f"{name} step")
        print(
            f"{name:<14}{one * 1e3:>14.2f}{many:>18.3f}{many / N_BATCH * 1e3:>16.4f}"
            + (f"{step * 1e6:>20.1f}" if step is not None else f"{'-':>20}")
        )
    ratios = {k: res[f"onnxruntime {k}"] / res[f"torch {k}"] for k in ("batch 1", big, "step")}
    print("onnxruntime / torch time: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    print(
        f"checks: max |step - forward| {res['max |step - forward| (mV)']:.1e} mV, "
        f"max |onnxruntime - torch| {res['max |onnxruntime - torch| (mV)']:.1e} mV"
    )
    if not args.neuron:
        return
    result = time_neuron()
    if isinstance(result, str):
        print(f"NEURON: skipped ({result})")
        return
    first, per_trial = result
    print(
        f"NEURON c302 FCM network: {first:.2f} s for 1 trial (incl. network set-up), "
        f"{per_trial:.2f} s per further trial; {N_BATCH} trials = {N_BATCH * per_trial:.0f} s "
        "(extrapolated, serial)"
    )
    print(f"{'speed-up vs NEURON':<22}{'1 trial (batch 1)':>20}{f'{N_BATCH} trials (batched)':>26}")
    for name in ("torch", "torchscript", "onnxruntime", "predict()"):
        one, many = res[f"{name} batch 1"], res[f"{name} batch {N_BATCH}"]
        print(f"{name:<22}{per_trial / one:>19,.0f}x{N_BATCH * per_trial / many:>25,.0f}x")


if __name__ == "__main__":
    main()
