"""Training seed ensembles of surrogates, run folders, resume, loading and prediction."""

from neuroreduce.training.checkpoint import (
    HistoryRow,
    IOSpec,
    TrainedRun,
    check_compatible,
    load_run,
    predict,
)
from neuroreduce.training.config import TrainConfig
from neuroreduce.training.normalization import Normalization
from neuroreduce.training.trainer import EpochReport, TrainResult, member_losses, train

__all__ = [
    "EpochReport",
    "HistoryRow",
    "IOSpec",
    "Normalization",
    "TrainConfig",
    "TrainResult",
    "TrainedRun",
    "check_compatible",
    "load_run",
    "member_losses",
    "predict",
    "train",
]
