"""``neuroreduce demo``: the whole pipeline on defaults, end to end, in a few minutes.

Simulates the default FCM dataset (cached in the user cache folder after the first time), trains
small GRU ensembles, evaluates them and writes their reports.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import platformdirs

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


@dataclass(frozen=True)
class DemoResult:
    """What the demo produced: the dataset file, one report per model, and the wall time (s)."""

    dataset: Path
    reports: dict[str, Path]
    seconds: float


def run_demo(out_dir: str | Path, *, config: DemoConfig | None = None,
             progress: bool = True) -> DemoResult:
    """Run simulate -> train -> evaluate -> report on defaults into ``out_dir``."""
    from neuroreduce import pipeline
    from neuroreduce.reporting.report import make_report
    from neuroreduce.training import TrainConfig

    config = config or DemoConfig()
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    data_path = dataset_cache_path(config)
    if not data_path.exists():
        pipeline.simulate(
            config.scenario,
            n_stimuli=config.n_stimuli,
            dt_out_ms=config.dt_out_ms,
            settings=pipeline.SimulationSettings(workers=config.workers),
            out=data_path,
            progress=progress,
        )
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
