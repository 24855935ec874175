"""Zero initial state vs a rest-fitted warm-up: the start-up transient of a surrogate.

Trains the same seed ensemble twice on one dataset (same seeds, same protocol), once from the
zero state (the paper's) and once with ``warmup_ms`` of rest input before every sequence
(:mod:`neuroreduce.models.warmup`), and prints, side by side, the free-running test RMSE over
the whole trial, over its first ``--early-ms`` and over the rest, mean ± std over seeds.

    python benchmarks/bench_initial_state.py DATA.h5 --out runs/bench_init --hidden 8 \
        --seeds 10 --epochs 1000 --lr 0.05 --warmup-ms 50

Run folders are kept under ``--out`` and resumed, so an interrupted run continues.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from neuroreduce.datasets.io import load_dataset
from neuroreduce.training import TrainConfig, predict, train


def _rmse(y: np.ndarray, p: np.ndarray, sl: slice) -> np.ndarray:
    """Per-member RMSE over ``y [trial, time, out]`` vs ``p [member, trial, time, out]``."""
    return np.sqrt(((p[:, :, sl] - y[None, :, sl]) ** 2).mean(axis=(1, 2, 3)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--out", type=Path, default=Path("runs/bench_initial_state"))
    ap.add_argument("--model", default="gru")
    ap.add_argument("--hidden", type=int, default=8)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--warmup-ms", type=float, default=50.0)
    ap.add_argument("--early-ms", type=float, default=20.0)
    args = ap.parse_args()

    ds = load_dataset(args.dataset)
    test = ds.indices("test")
    y = ds.outputs[test]
    early = int(round(args.early_ms / ds.dt_ms))
    rows = []
    for label, warmup in (("zero state", None), (f"warm-up {args.warmup_ms:g} ms", args.warmup_ms)):
        cfg = TrainConfig(model=args.model, hidden=args.hidden, seeds=tuple(range(args.seeds)),
                          epochs=args.epochs, learning_rate=args.lr, warmup_ms=warmup)
        t0 = time.perf_counter()
        folder = args.out / ("zero" if warmup is None else f"warmup{args.warmup_ms:g}")
        result = train(ds, cfg, folder, progress=False)
        seconds = time.perf_counter() - t0
        p = predict(result, ds.inputs[test])
        first_sample = _rmse(y, p, slice(0, 1))
        peak = np.abs(p[:, :, :early] - y[None, :, :early]).max(axis=(1, 2, 3))
        rows.append((label, _rmse(y, p, slice(None)), _rmse(y, p, slice(0, early)),
                     _rmse(y, p, slice(early, None)), seconds, first_sample, peak))

    print(f"{args.model.upper()}-{args.hidden} x {args.seeds} seeds, {args.epochs} epochs, "
          f"{args.dataset.name}: free-running test RMSE ({ds.output_units}), mean ± std")
    print(f"{'':<18}{'whole trial':>20}{f'first {args.early_ms:g} ms':>20}"
          f"{'after':>20}{'train s':>10}")
    for label, whole, first, rest, seconds, _, _ in rows:
        cells = [f"{v.mean():.4f} ± {v.std(ddof=1) if v.size > 1 else 0:.4f}"
                 for v in (whole, first, rest)]
        print(f"{label:<18}{cells[0]:>20}{cells[1]:>20}{cells[2]:>20}{seconds:>10.0f}")
    print(f"{'':<18}{'sample t=0 RMSE':>20}{f'max |err| {args.early_ms:g} ms':>20}")
    for label, *_, first_sample, peak in rows:
        print(f"{label:<18}{first_sample.mean():>20.4f}{peak.mean():>20.4f}")
    (z, w) = rows
    print(f"ratio warm-up / zero: whole {w[1].mean() / z[1].mean():.3f}, first "
          f"{w[2].mean() / z[2].mean():.3f}, after {w[3].mean() / z[3].mean():.3f}, sample t=0 "
          f"{w[5].mean() / z[5].mean():.3f}, max |err| early {w[6].mean() / z[6].mean():.3f}")


if __name__ == "__main__":
    main()
