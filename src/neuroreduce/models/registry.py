"""Surrogate models chosen by name: ``"rnn"``, ``"lstm"``, ``"gru"``.

Each entry builds a lone model and a packed seed ensemble of the same architecture; the trainer
only ever asks this registry, never imports model classes by string.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from neuroreduce.errors import ConfigError, unknown_name_error
from neuroreduce.models.ensemble import SurrogateEnsemble
from neuroreduce.models.fused import check_engine
from neuroreduce.models.rnn import RecurrentSurrogate, check_sizes


@dataclass(frozen=True)
class _Entry:
    description: str
    build: Callable[..., nn.Module]
    build_ensemble: Callable[..., SurrogateEnsemble]


def _recurrent(cell: str, description: str) -> _Entry:
    def build(*, n_inputs: int, n_outputs: int, hidden: int) -> nn.Module:
        return RecurrentSurrogate(cell, n_inputs, n_outputs, hidden)

    def build_ensemble(
        *, seeds: Sequence[int], n_inputs: int, n_outputs: int, hidden: int, engine: str
    ) -> SurrogateEnsemble:
        return SurrogateEnsemble.from_seeds(
            cell, seeds, n_inputs=n_inputs, n_outputs=n_outputs, hidden=hidden, engine=engine
        )

    return _Entry(description, build, build_ensemble)


_MODELS: dict[str, _Entry] = {
    "rnn": _recurrent("rnn", "Elman RNN (tanh) + time-distributed linear read-out"),
    "lstm": _recurrent("lstm", "LSTM + time-distributed linear read-out"),
    "gru": _recurrent("gru", "GRU + time-distributed linear read-out"),
}


def list_models() -> list[str]:
    """Names of the registered surrogate models, sorted."""
    return sorted(_MODELS)


def describe_model(name: str) -> str:
    """One-line description of model ``name``."""
    return _entry(name).description


def _entry(name: str) -> _Entry:
    if name not in _MODELS:
        raise unknown_name_error("model", name, list(_MODELS))
    return _MODELS[name]


def build_model(name: str, *, n_inputs: int, n_outputs: int, hidden: int) -> nn.Module:
    """Build a freshly initialised lone model (seed the torch RNG first for reproducibility).

    Args:
        name: Registered model name (see :func:`list_models`).
        n_inputs: Input channels.
        n_outputs: Output channels.
        hidden: Recurrent units.

    Raises:
        ConfigError: on an unknown name (listing the known ones) or a non-positive size.
    """
    return _entry(name).build(n_inputs=n_inputs, n_outputs=n_outputs, hidden=hidden)


def build_ensemble(
    name: str,
    *,
    seeds: Sequence[int],
    n_inputs: int,
    n_outputs: int,
    hidden: int,
    engine: str = "auto",
) -> SurrogateEnsemble:
    """A packed ensemble; member ``k`` equals ``build_model`` after ``manual_seed(seeds[k])``.

    ``engine`` picks how it runs: ``"auto"`` (compiled fused recurrence where it builds, else
    packed), ``"fused"`` or ``"packed"`` (see :class:`SurrogateEnsemble`).

    Raises:
        ConfigError: on an unknown model name or engine, or a non-positive size.
    """
    check_engine(engine)
    return _entry(name).build_ensemble(
        seeds=seeds, n_inputs=n_inputs, n_outputs=n_outputs, hidden=hidden, engine=engine
    )


@dataclass(frozen=True)
class ModelSpec:
    """What is needed to rebuild a model: its registered name and sizes.

    Attributes:
        name: Registered model name (``"rnn"``, ``"lstm"``, ``"gru"``).
        n_inputs: Input channels.
        n_outputs: Output channels.
        hidden: Recurrent units.
    """

    name: str
    n_inputs: int
    n_outputs: int
    hidden: int

    def __post_init__(self) -> None:
        _entry(self.name)
        check_sizes(n_inputs=self.n_inputs, n_outputs=self.n_outputs, hidden=self.hidden)

    def build(self) -> nn.Module:
        """A freshly initialised lone model of this spec."""
        return build_model(
            self.name, n_inputs=self.n_inputs, n_outputs=self.n_outputs, hidden=self.hidden
        )

    def build_ensemble(self, seeds: Sequence[int], *, engine: str = "auto") -> SurrogateEnsemble:
        """A packed ensemble of this spec, one member per seed, run by ``engine``."""
        return build_ensemble(
            self.name,
            seeds=seeds,
            n_inputs=self.n_inputs,
            n_outputs=self.n_outputs,
            hidden=self.hidden,
            engine=engine,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """Inverse of :meth:`to_dict`.

        Raises:
            ConfigError: on missing or unknown keys or invalid values.
        """
        keys = {"name", "n_inputs", "n_outputs", "hidden"}
        if not isinstance(data, dict) or set(data) != keys:
            got = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise ConfigError(f"model spec needs exactly the keys {sorted(keys)}; got {got}")
        return cls(**data)
