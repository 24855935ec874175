"""Training seed ensembles of surrogates, run folders, resume, loading and prediction."""

from neuroreduce.training.checkpoint import HistoryRow, IOSpec
from neuroreduce.training.config import TrainConfig
from neuroreduce.training.inference import predict_fields
from neuroreduce.training.normalization import Normalization
from neuroreduce.training.objectives import Objective, TermSpec, build_objective, member_losses
from neuroreduce.training.runs import TrainedRun, check_compatible, load_run, predict
from neuroreduce.training.task import TaskLayout
from neuroreduce.training.trainer import EpochReport, TrainResult, train

__all__ = [
    "EpochReport",
    "HistoryRow",
    "IOSpec",
    "Normalization",
    "Objective",
    "TaskLayout",
    "TermSpec",
    "TrainConfig",
    "TrainResult",
    "TrainedRun",
    "check_compatible",
    "load_run",
    "member_losses",
    "predict",
    "predict_fields",
    "build_objective",
    "train",
]
