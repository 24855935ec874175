"""Surrogate models (pure ``nn.Module``s, no training code), chosen by name from a registry."""

from neuroreduce.models.ensemble import SurrogateEnsemble
from neuroreduce.models.registry import (
    ModelSpec,
    build_ensemble,
    build_model,
    describe_model,
    list_models,
)
from neuroreduce.models.rnn import RecurrentSurrogate, count_parameters

__all__ = [
    "ModelSpec",
    "RecurrentSurrogate",
    "SurrogateEnsemble",
    "build_ensemble",
    "build_model",
    "count_parameters",
    "describe_model",
    "keras_parameter_count",
    "list_models",
]


def __getattr__(name: str) -> object:
    """``keras_parameter_count`` (the paper's count) lives in the study
    :mod:`neuroreduce.studies.barbulescu2023.keras`; it stays importable from here."""
    if name == "keras_parameter_count":
        from neuroreduce.studies.barbulescu2023.keras import keras_parameter_count

        return keras_parameter_count
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
