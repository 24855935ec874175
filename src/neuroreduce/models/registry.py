"""Surrogate model families chosen by name: ``"rnn"``, ``"lstm"``, ``"gru"`` and more.

A :class:`Family` owns its hyper-parameter dataclass and its builder; the RNN families add a
fast seed-ensemble path (the fused block-diagonal recurrence). Adding a family is one
:func:`register_family` call (see ``docs/architecture.md``); the trainer only ever asks this
registry, never imports model classes by string.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from torch import nn

from neuroreduce.errors import ConfigError, unknown_name_error
from neuroreduce.jsonfiles import frozen, thawed
from neuroreduce.models import elm, mlp, plrnn, stacked_rnn, tcn
from neuroreduce.models.baselines import adex, arx_spiking, glm, mat, ridge_arx, spike_glm, svm
from neuroreduce.models.ensemble import SurrogateEnsemble
from neuroreduce.models.fused import check_engine
from neuroreduce.models.graph import families as graph_families
from neuroreduce.models.module_ensemble import ModuleEnsemble
from neuroreduce.models.rnn import RecurrentSurrogate, check_sizes


@dataclass(frozen=True)
class Family:
    """A registered model family.

    Attributes:
        name: Registry name (the ``model`` of a training config).
        description: One line for ``neuroreduce models``.
        config: Frozen dataclass of the family's hyper-parameters; it has a ``hidden`` field
            (the main size) and validates itself on construction (``ConfigError``).
        build: ``build(config, *, n_inputs, n_outputs) -> nn.Module`` mapping
            ``[batch, time, n_inputs]`` to ``[batch, time, n_outputs]`` (seed torch first).
        build_ensemble: Optional fast path ``(config, *, seeds, n_inputs, n_outputs, engine)
            -> ensemble``; without it, seeds are trained as a
            :class:`~neuroreduce.models.module_ensemble.ModuleEnsemble`.
        fit: For non-gradient baselines (ridge ARX, SVM, GLM, ...): ``fit(config, *, train,
            valid, layout, seed) -> nn.Module`` fits one member in closed form on the
            assembled training split (normalised units); ``build`` then only gives the
            module's shape (to load saved weights). ``None``: trained by gradient descent.
        check: Optional ``check(config, layout)`` raising ``ConfigError`` when the family
            cannot predict the task's fields (called before anything is written).
        bind: Optional ``bind(config, layout) -> {option: value}``: options the family takes
            from the training data (e.g. ``gnn_connectome``'s neuron names from the input
            channel names); the trainer merges them into the run's model options, so a saved
            run rebuilds without the data.
        size_name: What ``hidden`` counts in this family, as a command-line word (``"hidden"``
            by default; ``"memory_units"`` for the ELM neuron, so ``neuroreduce train
            --memory-units`` sets it).
    """

    name: str
    description: str
    config: type
    build: Callable[..., nn.Module]
    build_ensemble: Callable[..., Any] | None = None
    fit: Callable[..., nn.Module] | None = None
    check: Callable[[Any, Any], None] | None = None
    bind: Callable[[Any, Any], Mapping[str, Any]] | None = None
    size_name: str = "hidden"


@dataclass(frozen=True)
class RecurrentConfig:
    """Hyper-parameters of the one-layer RNN/LSTM/GRU families (Barbulescu et al. 2023).

    Attributes:
        hidden: Recurrent units.
    """

    hidden: int = 4

    def __post_init__(self) -> None:
        if isinstance(self.hidden, bool) or not isinstance(self.hidden, int) or self.hidden < 1:
            raise ConfigError(f"hidden must be a positive integer, got {self.hidden!r}")


def _recurrent(cell: str, description: str) -> Family:
    def build(config: RecurrentConfig, *, n_inputs: int, n_outputs: int) -> nn.Module:
        return RecurrentSurrogate(cell, n_inputs, n_outputs, config.hidden)

    def build_ensemble(
        config: RecurrentConfig, *, seeds: Sequence[int], n_inputs: int, n_outputs: int,
        engine: str,
    ) -> SurrogateEnsemble:
        return SurrogateEnsemble.from_seeds(
            cell, seeds, n_inputs=n_inputs, n_outputs=n_outputs, hidden=config.hidden,
            engine=engine,
        )

    return Family(cell, description, RecurrentConfig, build, build_ensemble)


_MODELS: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Add a model family to the registry (its name must be new).

    Raises:
        ConfigError: if the name is taken or the config has no ``hidden`` field.
    """
    if family.name in _MODELS:
        raise ConfigError(f"model family {family.name!r} is already registered")
    if "hidden" not in {f.name for f in fields(family.config)}:
        raise ConfigError(f"model family {family.name!r}: its config needs a 'hidden' field")
    _MODELS[family.name] = family
    return family


for _cell, _text in (
    ("rnn", "Elman RNN (tanh) + time-distributed linear read-out"),
    ("lstm", "LSTM + time-distributed linear read-out"),
    ("gru", "GRU + time-distributed linear read-out"),
):
    register_family(_recurrent(_cell, _text))

for _module in (tcn, mlp, elm, stacked_rnn, plrnn, ridge_arx, svm, glm, adex,
                arx_spiking, spike_glm, mat):  # one per family
    register_family(Family(**_module.FAMILY))
for _graph in graph_families.FAMILIES:  # whole-brain graph models (Wang et al.)
    register_family(Family(**_graph))


def list_models() -> list[str]:
    """Names of the registered surrogate models, sorted."""
    return sorted(_MODELS)


def describe_model(name: str) -> str:
    """One-line description of model ``name``."""
    return _entry(name).description


def get_family(name: str) -> Family:
    """The registered family ``name`` (error lists the known ones)."""
    return _entry(name)


def _entry(name: str) -> Family:
    if name not in _MODELS:
        raise unknown_name_error("model", name, list(_MODELS))
    return _MODELS[name]


def model_config(name: str, hidden: int, options: Mapping[str, Any] | None = None) -> Any:
    """The validated hyper-parameter dataclass of family ``name``.

    Raises:
        ConfigError: on an unknown option (listing the family's options) or a bad value.
    """
    family = _entry(name)
    opts = dict(options or {})
    allowed = [f.name for f in fields(family.config) if f.name != "hidden"]
    unknown = sorted(set(opts) - set(allowed))
    if unknown:
        raise ConfigError(
            f"model {name!r} has no option(s) {', '.join(unknown)}; its options: "
            f"{', '.join(allowed) or 'none besides hidden'}"
        )
    try:
        return family.config(hidden=hidden, **opts)
    except TypeError as exc:
        raise ConfigError(f"model {name!r}: {exc}") from None


def build_model(
    name: str, *, n_inputs: int, n_outputs: int, hidden: int,
    options: Mapping[str, Any] | None = None,
) -> nn.Module:
    """Build a freshly initialised lone model (seed the torch RNG first for reproducibility).

    Args:
        name: Registered model name (see :func:`list_models`).
        n_inputs: Input channels.
        n_outputs: Output channels.
        hidden: The family's main size (recurrent units, channels, memory units).
        options: The family's further hyper-parameters (layers, kernel sizes, ...).

    Raises:
        ConfigError: on an unknown name (listing the known ones), option or a bad size.
    """
    check_sizes(n_inputs=n_inputs, n_outputs=n_outputs, hidden=hidden)
    config = model_config(name, hidden, options)
    return _entry(name).build(config, n_inputs=n_inputs, n_outputs=n_outputs)


def build_ensemble(
    name: str,
    *,
    seeds: Sequence[int],
    n_inputs: int,
    n_outputs: int,
    hidden: int,
    engine: str = "auto",
    options: Mapping[str, Any] | None = None,
) -> Any:
    """A seed ensemble; member ``k`` equals ``build_model`` after ``manual_seed(seeds[k])``.

    The RNN families return their packed :class:`SurrogateEnsemble`, run by ``engine``
    (``"auto"``: compiled fused recurrence where it builds, else packed; ``"fused"``;
    ``"packed"``); other families a :class:`ModuleEnsemble` (``engine`` is ignored).

    Raises:
        ConfigError: on an unknown model name, option or engine, or a non-positive size.
    """
    check_engine(engine)
    check_sizes(n_inputs=n_inputs, n_outputs=n_outputs, hidden=hidden)
    family = _entry(name)
    config = model_config(name, hidden, options)
    if family.build_ensemble is not None:
        return family.build_ensemble(
            config, seeds=seeds, n_inputs=n_inputs, n_outputs=n_outputs, engine=engine
        )
    return ModuleEnsemble.from_seeds(
        lambda: family.build(config, n_inputs=n_inputs, n_outputs=n_outputs), seeds
    )


@dataclass(frozen=True)
class ModelSpec:
    """What is needed to rebuild a model: its registered name, sizes and hyper-parameters.

    Attributes:
        name: Registered model family (``"rnn"``, ``"lstm"``, ``"gru"``, ...).
        n_inputs: Input channels.
        n_outputs: Output channels (model outputs: e.g. logits of every class of a label).
        hidden: The family's main size.
        options: Further hyper-parameters as sorted ``(name, value)`` pairs (none for the RNN
            families; then omitted from :meth:`to_dict`, so older run folders read unchanged).
    """

    name: str
    n_inputs: int
    n_outputs: int
    hidden: int
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        _entry(self.name)
        check_sizes(n_inputs=self.n_inputs, n_outputs=self.n_outputs, hidden=self.hidden)
        opts = dict(self.options) if not isinstance(self.options, Mapping) else self.options
        object.__setattr__(
            self, "options", tuple(sorted((str(k), frozen(v)) for k, v in dict(opts).items()))
        )
        model_config(self.name, self.hidden, dict(self.options))  # validates the options

    @property
    def config(self) -> Any:
        """The family's validated hyper-parameter dataclass."""
        return model_config(self.name, self.hidden, dict(self.options))

    def build(self) -> nn.Module:
        """A freshly initialised lone model of this spec."""
        return build_model(
            self.name, n_inputs=self.n_inputs, n_outputs=self.n_outputs, hidden=self.hidden,
            options=dict(self.options),
        )

    def build_ensemble(self, seeds: Sequence[int], *, engine: str = "auto") -> Any:
        """A seed ensemble of this spec, one member per seed (``engine``: RNN families)."""
        return build_ensemble(
            self.name,
            seeds=seeds,
            n_inputs=self.n_inputs,
            n_outputs=self.n_outputs,
            hidden=self.hidden,
            engine=engine,
            options=dict(self.options),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        out: dict[str, Any] = {
            "name": self.name, "n_inputs": self.n_inputs, "n_outputs": self.n_outputs,
            "hidden": self.hidden,
        }
        if self.options:
            out["options"] = {k: thawed(v) for k, v in self.options}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """Inverse of :meth:`to_dict`.

        Raises:
            ConfigError: on missing or unknown keys or invalid values.
        """
        keys = {"name", "n_inputs", "n_outputs", "hidden"}
        if not isinstance(data, dict) or not keys <= set(data) <= keys | {"options"}:
            got = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise ConfigError(
                f"model spec needs the keys {sorted(keys)} (and optionally 'options'); got {got}"
            )
        values = dict(data)
        options = values.pop("options", {})
        if not isinstance(options, dict):
            raise ConfigError("model spec 'options' must be a table")
        return cls(**values, options=tuple(options.items()))


