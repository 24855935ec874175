"""Training throughput: K lone models vs the packed ensemble vs the fused ensemble, side by side.

Paper shape by default (Barbulescu et al. 2023): one minibatch of 20 sequences x 1001 steps,
4 inputs -> 4 outputs, 10 seeds, Adam. Per epoch and per engine, every model does one forward,
backward and Adam step on its minibatch:

    (a) baseline: 10 separate ``RecurrentSurrogate`` models (one ``nn.GRU`` each), one by one
    (b) packed:   one ``SurrogateEnsemble`` with a block-diagonal PyTorch layer
    (c) fused:    the same ensemble run by the compiled fused recurrence

The three are timed in alternating rounds in one process (best round kept, so a busy shared
machine hurts all of them alike) and printed as model-epochs per second with the ratios (c)/(a)
and (b)/(a), by wall time and by CPU time of the process (the better guide on a shared
machine). ``--steps 1001 5001`` prints per-step throughput (million sequence-steps per CPU
second) for each length; ``--train`` adds the real :func:`neuroreduce.training.train` (per-epoch
evaluation and checkpoints included) for the packed and fused engines. ``--loss`` times the
per-member loss alone (forward + backward), autograd's plain expression vs
:func:`neuroreduce.training.member_losses`, for 4 and 28 outputs (Experiment 5 is 28 wide).

    python benchmarks/bench_training.py                          # GRU-8, LSTM-8, RNN-16
    python benchmarks/bench_training.py --cell gru --hidden 8 --steps 1001 5001 --train
    python benchmarks/bench_training.py --fresh-build            # time the one-time compile
    python benchmarks/bench_training.py --loss --no-models       # the loss alone
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from neuroreduce.models import fused
from neuroreduce.models.ensemble import SurrogateEnsemble
from neuroreduce.models.rnn import RecurrentSurrogate

_DEFAULT_MODELS = (("gru", 8), ("lstm", 8), ("rnn", 16))
_LR = {"gru": 0.05, "lstm": 0.05, "rnn": 0.001}


def _lone_epoch(cell: str, hidden: int, seeds: list[int], x: torch.Tensor, y: torch.Tensor):
    models, optims = [], []
    for s in seeds:
        torch.manual_seed(s)
        m = RecurrentSurrogate(cell, x.shape[-1], y.shape[-1], hidden)
        models.append(m)
        optims.append(torch.optim.Adam(m.parameters(), lr=_LR[cell]))

    def epoch() -> None:
        for k, (m, opt) in enumerate(zip(models, optims, strict=True)):
            loss = (m(x[k]) - y[k]).square().mean().sqrt()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return epoch


def _ensemble_epoch(cell: str, hidden: int, seeds: list[int], x, y, engine: str):
    ens = SurrogateEnsemble.from_seeds(
        cell, seeds, n_inputs=x.shape[-1], n_outputs=y.shape[-1], hidden=hidden, engine=engine
    )
    opt = torch.optim.Adam(ens.parameters(), lr=_LR[cell])

    def epoch() -> None:
        loss = (ens(x) - y).square().mean(dim=(1, 2, 3)).sqrt().sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return epoch


def _best_epoch_seconds(runs: dict[str, Callable[[], None]], epochs: int, rounds: int):
    """Best (over rounds) wall and CPU seconds per epoch of each run, rounds alternating.

    CPU time (this process) is what an idle machine would take as wall time; on a shared,
    overloaded machine the wall time also counts the time spent waiting for a core.
    """
    wall = dict.fromkeys(runs, float("inf"))
    cpu = dict.fromkeys(runs, float("inf"))
    for run in runs.values():  # warm-up (allocations, first-call overheads)
        run()
    for _ in range(rounds):
        for name, run in runs.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(epochs):
                run()
            wall[name] = min(wall[name], (time.perf_counter() - start) / epochs)
            cpu[name] = min(cpu[name], (time.process_time() - start_cpu) / epochs)
    return wall, cpu


def _data(members: int, batch: int, steps: int, seed: int = 0, outputs: int = 4):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(members, batch, steps, outputs, generator=g)
    y = torch.randn(members, batch, steps, outputs, generator=g)
    return x, y


def bench_model(cell: str, hidden: int, args: argparse.Namespace) -> None:
    seeds = list(range(args.members))
    k = args.members
    print(f"\n{cell.upper()}-{hidden}, {k} seeds, batch {args.batch}, 4 -> 4, 1 thread")
    print(f"{'steps':>6s} {'engine':<28s}{'wall s/epoch':>13s}{'model-epochs/s':>16s}"
          f"{'ratio':>8s}{'cpu s/epoch':>12s}{'ratio':>8s}{'Msteps/s':>10s}")
    for steps in args.steps:
        x, y = _data(k, args.batch, steps)
        runs = {"packed": _ensemble_epoch(cell, hidden, seeds, x, y, "packed")}
        if fused.load_kernels() is not None:
            runs["fused"] = _ensemble_epoch(cell, hidden, seeds, x, y, "fused")
        if not args.no_baseline:
            runs = {"baseline": _lone_epoch(cell, hidden, seeds, x, y), **runs}
        sec, cpu = _best_epoch_seconds(runs, args.epochs, args.rounds)
        labels = {
            "baseline": f"(a) {k} separate nn.{cell.upper()}",
            "packed": "(b) packed ensemble",
            "fused": "(c) fused ensemble",
        }
        for name, s in sec.items():
            ratio = sec["baseline"] / s if "baseline" in sec else float("nan")
            c = cpu[name]
            cpu_ratio = cpu["baseline"] / c if "baseline" in cpu else float("nan")
            seq_steps = k * args.batch * steps / c / 1e6  # sequence-steps per CPU second
            print(f"{steps:6d} {labels[name]:<28s}{s:13.4f}{k / s:16.2f}{ratio:7.1f}x"
                  f"{c:12.4f}{cpu_ratio:7.1f}x{seq_steps:10.2f}")
    if args.train:
        _bench_train(cell, hidden, args)


def _bench_train(cell: str, hidden: int, args: argparse.Namespace) -> None:
    from neuroreduce.datasets.dataset import Dataset
    from neuroreduce.training import TrainConfig, train

    rng = np.random.default_rng(0)
    n_time = args.steps[0]
    u = np.repeat(rng.normal(size=(40, n_time // 50 + 1, 4)), 50, axis=1)[:, :n_time]
    out = np.zeros((40, n_time, 4))
    mix = rng.normal(size=(4, 4))
    for t in range(1, n_time):
        out[:, t] = 0.95 * out[:, t - 1] + 0.1 * np.tanh(u[:, t] @ mix)
    ds = Dataset(u, out - 58.0, 0.5, ("PLML", "PLMR", "AVBL", "AVBR"),
                 ("DB1", "LUAL", "PVR", "VB1"), split=np.array([0] * 20 + [1] * 10 + [2] * 10))
    print(f"  real train(): 20 train + 10 valid trials x {n_time} steps, per-epoch evaluation, "
          f"{args.epochs} epochs")
    seeds = tuple(range(args.members))
    with tempfile.TemporaryDirectory() as tmp:
        for engine in ("packed", "fused"):
            cfg = TrainConfig(model=cell, hidden=hidden, seeds=seeds, epochs=args.epochs,
                              batch_size=args.batch, checkpoint_every=args.epochs, engine=engine)
            start = time.perf_counter()
            train(ds, cfg, Path(tmp) / engine, progress=False)
            s = (time.perf_counter() - start) / args.epochs
            print(f"  {engine:<8s} {s:8.4f} s/epoch {len(seeds) / s:10.2f} model-epochs/s")


def bench_loss(args: argparse.Namespace) -> None:
    """The per-member loss of one minibatch, forward + backward: plain autograd vs ours."""
    from neuroreduce.training import member_losses

    def plain(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (p - y).square().mean(dim=(1, 2, 3))

    def ours(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return member_losses(p, y, "mse")

    print(f"\nper-member MSE, forward + backward, {args.members} members x batch {args.batch} x "
          f"{args.steps[0]} steps")
    for outputs in (4, 28):
        x, y = _data(args.members, args.batch, args.steps[0], outputs=outputs)
        runs = {}
        for name, loss in (("plain", plain), ("ours", ours)):
            def run(loss=loss, x=x, y=y) -> None:
                p = x.detach().requires_grad_()
                loss(p, y).sum().backward()
            runs[name] = run
        sec, cpu = _best_epoch_seconds(runs, args.epochs, args.rounds)
        print(f"  {outputs:2d} outputs: plain autograd {sec['plain'] * 1e3:7.1f} ms, "
              f"member_losses {sec['ours'] * 1e3:7.1f} ms: {sec['plain'] / sec['ours']:.1f}x "
              f"(CPU {cpu['plain'] / cpu['ours']:.1f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", choices=("gru", "lstm", "rnn"), default=None,
                        help="one cell (default: GRU-8, LSTM-8 and RNN-16)")
    parser.add_argument("--hidden", type=int, default=None)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--steps", type=int, nargs="+", default=[1001])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per timed round")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (best is kept)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the slow (a)")
    parser.add_argument("--train", action="store_true", help="also time the real train()")
    parser.add_argument("--loss", action="store_true", help="also time the loss alone")
    parser.add_argument("--no-models", action="store_true", help="skip the engine comparison")
    parser.add_argument("--fresh-build", action="store_true",
                        help="compile the extension into an empty folder to time the build")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.fresh_build:
        os.environ["TORCH_EXTENSIONS_DIR"] = tempfile.mkdtemp(prefix="nr-ext-")
    fused.load_kernels()
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"load average {os.getloadavg()[0]:.2f} (2-core shared machine: expect noise)")
    where = "fresh compile" if args.fresh_build else "cached build (first run compiles)"
    status = "ok" if fused.failure_reason() is None else f"FAILED: {fused.failure_reason()}"
    print(f"fused extension: {status}; {where} took {fused.last_load_seconds:.1f} s; "
          f"flags {' '.join(fused.compile_flags())}")
    models = [(args.cell, args.hidden or dict(_DEFAULT_MODELS)[args.cell])] if args.cell else [
        (c, args.hidden or h) for c, h in _DEFAULT_MODELS
    ]
    for cell, hidden in [] if args.no_models else models:
        bench_model(cell, hidden, args)
    if args.loss:
        bench_loss(args)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
