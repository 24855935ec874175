"""``neuroreduce demo``: the whole pipeline on defaults, end to end, in a few minutes.

Simulates the default FCM dataset (cached in the user cache folder after the first time), trains
small GRU ensembles, evaluates them and writes their reports.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from neuroreduce._io import check_writable_folder, write_json_atomic
from neuroreduce.errors import ConfigError


@dataclass(frozen=True)
class DemoConfig:
    """What the demo runs.

    Attributes:
        scenario: Scenario to simulate.
        n_stimuli: Number of stimuli (trials).
        dt_out_ms: Sampling interval (ms).
        hidden_sizes: GRU hidden sizes trained (one ensemble each).
        seeds: Number of seeds per ensemble.
        epochs: Training epochs (best validation epoch kept).
        workers: Simulation worker processes.
    """

    scenario: str = "fcm"
    n_stimuli: int = 40
    dt_out_ms: float = 0.5
    hidden_sizes: tuple[int, ...] = (4, 8)
    seeds: int = 5
    epochs: int = 150
    workers: int = 2

    def __post_init__(self) -> None:
        if self.seeds < 1 or self.epochs < 1 or not self.hidden_sizes:
            raise ConfigError("demo needs seeds >= 1, epochs >= 1 and at least one hidden size")


def dataset_cache_path(config: DemoConfig) -> Path:
    """Where the demo's dataset is cached (``$NEUROREDUCE_CACHE_DIR`` or the user cache)."""
    env = os.environ.get("NEUROREDUCE_CACHE_DIR")
    root = Path(env) if env else Path(platformdirs.user_cache_dir("neuroreduce"))
    name = f"{config.scenario}_{config.n_stimuli}stim_dt{config.dt_out_ms:g}ms_seed0.h5"
    return root / "datasets" / name


def _hash_path(data_path: Path) -> Path:
    """The record of the content hash the demo simulated into ``data_path``."""
    return data_path.with_name(data_path.name + ".hash.json")


def cached_dataset_valid(data_path: Path, config: DemoConfig) -> bool:
    """Whether ``data_path`` holds the dataset the demo simulates for ``config``.

    True only if the file loads (its data match its own stored content hash), its content hash
    equals the one recorded beside it when the demo simulated it, and its provenance names the
    demo's scenario, number of stimuli and seed 0, on the demo's time step. Anything else (a
    missing, foreign, corrupt or replaced file) is False: the demo then simulates it again.
    """
    from neuroreduce.datasets.io import load_dataset

    if not data_path.is_file():
        return False
    try:
        dataset = load_dataset(data_path)
        recorded = json.loads(_hash_path(data_path).read_text(encoding="utf-8"))["content_hash"]
    except Exception:  # noqa: BLE001 - whatever fails to verify is simulated again
        return False
    prov = dataset.provenance
    return (
        recorded == dataset.content_hash()
        and prov.get("scenario") == config.scenario
        and prov.get("n_stimuli") == config.n_stimuli
        and prov.get("stimulus_seed") == 0
        and dataset.dt_ms == config.dt_out_ms
    )


@dataclass(frozen=True)
class DemoResult:
    """What the demo produced: the dataset file, one report per model, and the wall time (s)."""

    dataset: Path
    reports: dict[str, Path]
    seconds: float


def run_demo(out_dir: str | Path, *, config: DemoConfig | None = None,
             progress: bool = True) -> DemoResult:
    """Run simulate -> train -> evaluate -> report on defaults into ``out_dir``.

    Raises:
        OutputError: before any work, if ``out_dir`` (or the dataset cache folder) cannot be
            created or written.
    """
    from neuroreduce import pipeline
    from neuroreduce.reporting.report import make_report
    from neuroreduce.training import TrainConfig

    config = config or DemoConfig()
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    data_path = dataset_cache_path(config)
    check_writable_folder(out_dir)  # fail in one line now, not after minutes of simulation
    if not cached_dataset_valid(data_path, config):
        check_writable_folder(data_path.parent)
        dataset = pipeline.simulate(
            config.scenario,
            n_stimuli=config.n_stimuli,
            dt_out_ms=config.dt_out_ms,
            settings=pipeline.SimulationSettings(workers=config.workers),
            out=data_path,
            progress=progress,
        )
        write_json_atomic(_hash_path(data_path), {"content_hash": dataset.content_hash()})
    reports: dict[str, Path] = {}
    for hidden in config.hidden_sizes:
        run_dir = out_dir / f"gru{hidden}"
        train_config = TrainConfig(
            model="gru", hidden=hidden, seeds=tuple(range(config.seeds)), epochs=config.epochs
        )
        pipeline.train_from_file(data_path, train_config, run_dir, progress=progress)
        pipeline.evaluate(run_dir)
        reports[f"GRU-{hidden}"] = make_report(run_dir)
    return DemoResult(dataset=data_path, reports=reports, seconds=time.perf_counter() - t0)
