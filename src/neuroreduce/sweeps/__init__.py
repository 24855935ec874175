"""Hyper-parameter sweeps with Optuna: a declared search space, trials on any backend."""

from neuroreduce.sweeps.runner import BEST_JSON, SweepResult, run_sweep
from neuroreduce.sweeps.spec import Choice, DatasetSource, Range, SweepSpec, load_sweep, parse_sweep

__all__ = [
    "BEST_JSON",
    "Choice",
    "DatasetSource",
    "Range",
    "SweepResult",
    "SweepSpec",
    "load_sweep",
    "parse_sweep",
    "run_sweep",
]
