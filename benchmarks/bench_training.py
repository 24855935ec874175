"""Training speed: K separate models vs one packed K-member seed ensemble, side by side.

Paper shape by default: 40 trials of 1001 steps (20 train, 10 valid, 10 test), 4 inputs ->
4 outputs, GRU-8, batch 20. Both sides run the real :func:`neuroreduce.training.train` (epoch
loop, per-epoch train/valid evaluation, checkpoint files) into a temporary folder, so the numbers
are what a user gets. Prints model-epochs per second and the ratio.

    python benchmarks/bench_training.py              # ~1 min on one core
    python benchmarks/bench_training.py --members 10 --epochs 3 --model gru --hidden 8
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.training import TrainConfig, train


def paper_shaped_dataset(*, n_time: int = 1001, seed: int = 0) -> Dataset:
    """40 trials of smooth random currents (nA) through a leaky linear filter (mV)."""
    rng = np.random.default_rng(seed)
    u = np.repeat(rng.normal(size=(40, n_time // 50 + 1, 4)), 50, axis=1)[:, :n_time]
    y = np.zeros((40, n_time, 4))
    mix = rng.normal(size=(4, 4))
    for t in range(1, n_time):
        y[:, t] = 0.95 * y[:, t - 1] + 0.1 * np.tanh(u[:, t] @ mix)
    split = np.array([0] * 20 + [1] * 10 + [2] * 10)
    names = ("PLML", "PLMR", "AVBL", "AVBR")
    return Dataset(u, y - 58.0, 0.5, names, ("DB1", "LUAL", "PVR", "VB1"), split=split)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--model", default="gru")
    parser.add_argument("--hidden", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    ds = paper_shaped_dataset()
    seeds = tuple(range(args.members))

    def config(run_seeds: tuple[int, ...]) -> TrainConfig:
        return TrainConfig(
            model=args.model,
            hidden=args.hidden,
            seeds=run_seeds,
            epochs=args.epochs,
            batch_size=args.batch_size,
            threads=args.threads,
            checkpoint_every=args.epochs,
        )

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        for seed in seeds:
            train(ds, config((seed,)), Path(tmp) / f"lone{seed}", progress=False)
        separate = time.perf_counter() - start
        start = time.perf_counter()
        train(ds, config(seeds), Path(tmp) / "ensemble", progress=False)
        packed = time.perf_counter() - start

    model_epochs = args.members * args.epochs
    print(
        f"{args.model.upper()}-{args.hidden}, {args.members} seeds, {args.epochs} epochs, "
        f"20 train x {ds.n_time} steps, batch {args.batch_size}, {args.threads} thread(s)"
    )
    print(f"{'':24s}{'seconds':>10s}{'model-epochs/s':>17s}")
    print(f"{'separate models':24s}{separate:10.2f}{model_epochs / separate:17.2f}")
    print(f"{'packed ensemble':24s}{packed:10.2f}{model_epochs / packed:17.2f}")
    print(f"speed-up of the packed ensemble: {separate / packed:.1f}x")


if __name__ == "__main__":
    main()
