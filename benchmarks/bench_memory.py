"""Training from a dataset file ~4x larger than the memory the training process may use.

Generates a synthetic dataset file in the neuroreduce HDF5 schema (random currents and
voltages, one trial per chunk, uncompressed) whose arrays hold ``--ratio`` times the memory cap,
then trains on it in a child process twice:

1. streaming (``train(StreamingDataset(path), ...)``, what ``neuroreduce train --stream`` does);
2. in memory (``train(load_dataset(path), ...)``), which has to load the whole file.

The cap is on the child's resident memory (RSS): a watchdog thread in this process reads
``/proc/<pid>/status`` every 10 ms and kills the child when ``VmRSS`` exceeds the cap. (An
address-space limit -- ``ulimit -v`` / ``prlimit --as`` -- counts virtual reservations rather
than memory used; it can be added with ``--as-limit-mb``.) The child's true peak RSS is read
from the kernel afterwards (``ru_maxrss`` of ``os.wait4``), so a spike between two polls is
still reported.

    python benchmarks/bench_memory.py                          # 768 MiB cap, 3.4 GB of data
    python benchmarks/bench_memory.py --ratio 1 --epochs 1     # quick check, smaller file
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import h5py
import numpy as np

from neuroreduce.datasets.io import FORMAT_NAME, SCHEMA_VERSION, _metadata_hash

N_TIME = 200  # samples per trial (100 ms at 0.5 ms)
N_IN = 4
N_OUT = 636  # a wide recording: 640 channels per sample in all (0.5 MB per trial)
BLOCK = 256  # trials generated per write


def generate(path: Path, n_trials: int, *, seed: int = 0) -> None:
    """Write ``n_trials`` random trials in the dataset schema (content hash included)."""
    rng = np.random.default_rng(seed)
    split = rng.choice(np.array([0, 1, 2], np.int8), size=n_trials, p=[0.8, 0.1, 0.1])
    families = ["random"] * n_trials
    params = ["{}"] * n_trials
    provenance = json.dumps({"simulator": "bench_memory random data", "seed": seed})
    h = hashlib.sha256()
    with h5py.File(path, "w") as f:
        for key, n_ch, scale, offset in (
            ("inputs", N_IN, 0.05, 0.0),
            ("outputs", N_OUT, 5.0, -58.0),
        ):
            shape = (n_trials, N_TIME, n_ch)
            dset = f.create_dataset(key, shape=shape, dtype=np.float32, chunks=(1, N_TIME, n_ch))
            h.update(str(shape).encode())
            for start in range(0, n_trials, BLOCK):
                n = min(BLOCK, n_trials - start)
                block = rng.standard_normal((n, N_TIME, n_ch), dtype=np.float32)
                block = (block * np.float32(scale) + np.float32(offset)).astype(np.float32)
                dset[start : start + n] = block
                h.update(block.tobytes())
        text = h5py.string_dtype(encoding="utf-8")
        f.create_dataset("input_names", data=[f"in{i}" for i in range(N_IN)], dtype=text)
        f.create_dataset("output_names", data=[f"out{i}" for i in range(N_OUT)], dtype=text)
        f.create_dataset("families", data=families, dtype=text)
        f.create_dataset("stimulus_params", data=params, dtype=text)
        f.create_dataset("split", data=split)
        meta = {
            "dt_ms": 0.5,
            "input_names": [f"in{i}" for i in range(N_IN)],
            "output_names": [f"out{i}" for i in range(N_OUT)],
            "units": ["nA", "mV"],
            "split": split.tolist(),
        }
        h.update(json.dumps(meta, sort_keys=True).encode())
        f.attrs.update(
            {
                "format": FORMAT_NAME,
                "schema_version": SCHEMA_VERSION,
                "split_assigned": True,
                "dt_ms": 0.5,
                "input_units": "nA",
                "output_units": "mV",
                "content_hash": h.hexdigest(),
                "provenance": provenance,
                "metadata_hash": _metadata_hash(families, params, provenance),
            }
        )


def child(mode: str, path: str, out: str, epochs: int) -> None:
    """Train in this process (run by the parent under the memory cap)."""
    import torch

    from neuroreduce.datasets.io import load_dataset
    from neuroreduce.datasets.streaming import StreamingDataset
    from neuroreduce.training import TrainConfig, train

    torch.set_num_threads(1)
    config = TrainConfig(
        model="gru", hidden=8, seeds=(0,), epochs=epochs, batch_size=32, checkpoint_every=100
    )
    start = time.perf_counter()

    def report(r: object) -> None:
        print(
            f"    epoch {r.epoch}: train loss {r.train_losses[0]:.4f}, "  # type: ignore[attr-defined]
            f"{time.perf_counter() - start:.1f} s",
            flush=True,
        )

    if mode == "stream":
        with StreamingDataset(path) as source:
            train(source, config, out, progress=False, on_epoch_end=report)
    else:
        train(load_dataset(path), config, out, progress=False, on_epoch_end=report)


def run_capped(
    mode: str, path: Path, out: Path, *, epochs: int, cap_mb: int, as_limit_mb: int | None
) -> dict[str, float | bool | int]:
    """Run :func:`child` in a subprocess under the RSS watchdog; peak RSS from the kernel."""
    cmd = [sys.executable, __file__, "_child", mode, str(path), str(out), str(epochs)]
    if as_limit_mb is not None:
        cmd = ["prlimit", f"--as={as_limit_mb * 2**20}", *cmd]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd)
    killed = threading.Event()
    seen = [0]

    def watch() -> None:
        status = Path(f"/proc/{proc.pid}/status")
        while proc.returncode is None:
            try:
                rss_kb = next(
                    int(line.split()[1])
                    for line in status.read_text().splitlines()
                    if line.startswith("VmRSS:")
                )
            except (OSError, StopIteration, ValueError):
                return
            seen[0] = max(seen[0], rss_kb)
            if rss_kb > cap_mb * 1024:
                killed.set()
                os.kill(proc.pid, signal.SIGKILL)
                return
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    thread.join(timeout=1)
    return {
        "seconds": time.perf_counter() - start,
        "returncode": proc.returncode,
        "killed": killed.is_set(),
        "peak_rss_mb": usage.ru_maxrss / 1024,  # Linux: kilobytes
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cap-mb", type=int, default=768, help="RSS cap of the training process (MiB)"
    )
    parser.add_argument("--ratio", type=float, default=4.2, help="data size / cap")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--as-limit-mb",
        type=int,
        default=None,
        help="also apply an address-space limit (prlimit --as)",
    )
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: tmp)")
    parser.add_argument("--skip-memory", action="store_true", help="skip the in-memory run")
    args = parser.parse_args()
    cap = args.cap_mb * 2**20
    per_trial = N_TIME * (N_IN + N_OUT) * 4
    n_trials = int(np.ceil(args.ratio * cap / per_trial))
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "large.h5"
        start = time.perf_counter()
        generate(path, n_trials)
        data_bytes = n_trials * per_trial
        print(
            f"dataset: {n_trials} trials x {N_TIME} samples x ({N_IN} in + {N_OUT} out), "
            f"float32 arrays {data_bytes / 1e9:.2f} GB, file {path.stat().st_size / 1e9:.2f} GB "
            f"(written in {time.perf_counter() - start:.0f} s)"
        )
        print(
            f"memory cap (RSS, watchdog): {args.cap_mb} MiB = {cap / 1e9:.2f} GB; "
            f"data / cap = {data_bytes / cap:.2f}"
            + (f"; address-space limit {args.as_limit_mb} MiB" if args.as_limit_mb else "")
        )
        print(f"training GRU-8, 1 seed, batch 32, {args.epochs} epoch(s), 1 thread")
        rows = []
        for mode in ("stream", "memory"):
            if mode == "memory" and args.skip_memory:
                continue
            print(f"  {mode}:")
            res = run_capped(
                mode,
                path,
                Path(tmp) / f"run-{mode}",
                epochs=args.epochs,
                cap_mb=args.cap_mb,
                as_limit_mb=args.as_limit_mb,
            )
            rows.append((mode, res))
        print(f"{'mode':<8}{'result':<34}{'peak RSS':>12}{'wall':>10}")
        for mode, res in rows:
            if res["killed"]:
                what = "killed: RSS exceeded the cap"
            elif res["returncode"] == 0:
                what = f"trained {args.epochs} epoch(s)"
            else:
                what = f"failed (exit {res['returncode']})"
            print(f"{mode:<8}{what:<34}{res['peak_rss_mb']:>8.0f} MiB{res['seconds']:>9.1f}s")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        main()
