"""Surrogate models (pure ``nn.Module``s, no training code), chosen by name from a registry."""

from neuroreduce.models.ensemble import SurrogateEnsemble
from neuroreduce.models.registry import (
    ModelSpec,
    build_ensemble,
    build_model,
    describe_model,
    list_models,
)
from neuroreduce.models.rnn import RecurrentSurrogate, count_parameters, keras_parameter_count

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
