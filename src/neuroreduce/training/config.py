"""The training configuration: a frozen, validated dataclass (JSON/TOML is only storage)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from neuroreduce.datasets.split_strategies import SplitSpec
from neuroreduce.errors import ConfigError
from neuroreduce.models.fused import ENGINES
from neuroreduce.models.registry import list_models, model_config
from neuroreduce.training.objectives import TermSpec

#: Losses of continuous targets (``loss``): mean squared error, or its square root (the
#: paper's). Other fields get their own terms (``objective``; see :mod:`.objectives`).
LOSSES: tuple[str, ...] = ("mse", "rmse")

#: Fields added after the Barbulescu study: left out of :meth:`TrainConfig.to_dict` at their
#: defaults, so run folders and experiment cells of that study keep their identity.
_NEW_FIELDS_DEFAULTS: dict[str, Any] = {
    "model_options": (), "objective": (), "targets": None, "split": None,
    "optimizer": "adam", "weight_decay": 0.0, "schedule": "none", "plateau_patience": 10,
    "plateau_factor": 0.25, "clip_norm": None, "window_ms": None, "burn_in_ms": 0.0,
    "teacher_forcing_interval": None, "warmup_ms": None, "forcing": "sparse", "gtf_alpha": 0.1,
    "gtf_alpha_end": None, "betas": (0.9, 0.999), "min_learning_rate": 0.0,
    "windows_per_trial": 1,
}

#: Teacher-forcing schemes (families with a ``forcing`` argument, e.g. ``plrnn``).
FORCING_SCHEMES: tuple[str, ...] = ("sparse", "generalised")

#: Paper's tuned Adam learning rates (Barbulescu et al. 2023), used when ``learning_rate=None``.
DEFAULT_LEARNING_RATES: dict[str, float] = {"rnn": 0.001, "lstm": 0.05, "gru": 0.05}
_FALLBACK_LEARNING_RATE = 0.001

#: Fields that may change between an interrupted run and its resumption (``epochs`` may grow:
#: training continues from the last epoch). Results are bitwise equal to an uninterrupted run
#: when ``threads`` is unchanged (thread count can change float rounding of large products).
RESUMABLE_FIELDS: frozenset[str] = frozenset({"epochs", "checkpoint_every", "threads"})


#: The largest seed: numpy's legacy seeds and torch's generators both take 32-bit unsigned.
SEED_MAX = 2**32 - 1


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"TrainConfig.{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """How to train a seed ensemble of surrogates (one member per seed).

    Attributes:
        model: Registered model name (``"rnn"``, ``"lstm"``, ``"gru"``).
        hidden: Recurrent units per member.
        seeds: One seed per ensemble member (distinct, >= 0); seeds the weights and shuffling.
        epochs: Passes over the training trials; the best-validation epoch is kept.
        batch_size: Trials per minibatch (the last one of an epoch may be smaller).
        learning_rate: Adam step size; ``None`` picks the paper's value for the model
            (0.05 for GRU/LSTM, 0.001 for RNN), see :attr:`effective_learning_rate`.
        loss: ``"rmse"`` (paper) or ``"mse"``, on normalised outputs.
        early_stopping_patience: Stop a member after this many epochs without a better
            validation loss; ``None`` trains all ``epochs``.
        checkpoint_every: Save a resumable checkpoint every this many epochs.
        threads: Torch CPU threads used while training.
        engine: How the ensemble runs: ``"auto"`` (the compiled fused recurrence where it
            builds, else the packed PyTorch layer with one warning), ``"fused"`` (fail if it
            cannot be built) or ``"packed"``. Engines agree to float rounding, not bitwise, so
            a run resumes only with the same engine.
        model_options: The family's hyper-parameters beyond ``hidden`` as ``(name, value)``
            pairs (e.g. ``layers``, ``kernel``, ``memory_units``); see ``neuroreduce models``.
        objective: Loss terms, one per predicted field (:class:`~.objectives.TermSpec`);
            empty: ``loss`` for continuous fields, balanced BCE for binary ones, cross-entropy
            for labels.
        targets: Fields to predict, in order; ``None``: every target and label field.
        split: How to split the data (:class:`~neuroreduce.datasets.split_strategies.SplitSpec`:
            leave groups out, time segments, window folds); ``None``: the dataset's own split.
        optimizer: ``"adam"`` or ``"adamw"`` (with ``weight_decay``).
        weight_decay: AdamW's decoupled weight decay (0 for Adam).
        betas: Adam/AdamW's ``(beta1, beta2)`` moment decay rates, each in [0, 1) (PyTorch's
            default ``(0.9, 0.999)``; the L5PC blog uses ``(0.9, 0.99)``).
        schedule: Learning-rate schedule: ``"none"``, ``"cosine"`` (annealed from the learning
            rate to ``min_learning_rate`` over ``epochs``) or ``"plateau"`` (each member's
            rate times ``plateau_factor`` after ``plateau_patience`` epochs without a better
            validation loss).
        plateau_patience: Epochs without improvement before a plateau step.
        plateau_factor: Factor of a plateau step (0 < f < 1).
        min_learning_rate: The rate the cosine schedule ends at (0 by default; the L5PC blog
            anneals to 1e-5); must be below the learning rate.
        clip_norm: Clip each member's gradient to this L2 norm (``None``: no clipping).
        window_ms: Train on random windows of this length (ms) of every trial instead of whole
            trials (``None``); validation always uses whole trials.
        burn_in_ms: The first part of each training window that is run but not scored.
        windows_per_trial: With ``window_ms``: windows drawn from every training trial per
            epoch (each pass over the trials in a fresh random order), so an epoch of long
            trials covers them (e.g. 12 windows of 500 ms for 6 s trials) before the next
            validation; 1 by default.
        teacher_forcing_interval: Sparse teacher forcing (families with a ``forcing``
            argument, e.g. ``plrnn``): every this many steps the latent state is set from the
            observed targets during training; ``None``: free-running training (with
            ``forcing = "generalised"``: the mixing interval, ``None`` = every step).
        forcing: ``"sparse"`` (Mikhaeil et al. 2022: the state is replaced by the
            data-inferred one every ``teacher_forcing_interval`` steps) or ``"generalised"``
            (Hess et al. 2023: ``z <- (1 - alpha) z + alpha z_data`` every
            ``teacher_forcing_interval`` steps, default every step).
        gtf_alpha: Generalised forcing's ``alpha`` in [0, 1] at the first epoch.
        gtf_alpha_end: ``alpha`` at the last epoch, reached linearly (annealing); ``None``:
            ``gtf_alpha`` throughout.
        warmup_ms: Rest-fitted initial state: every sequence (training and prediction) is
            preceded by this long a period of rest input whose outputs are dropped
            (:mod:`neuroreduce.models.warmup`); ``None``: the zero state (the paper's).
    """

    model: str = "gru"
    hidden: int = 4
    seeds: tuple[int, ...] = (0,)
    epochs: int = 1000
    batch_size: int = 32
    learning_rate: float | None = None
    loss: str = "rmse"
    early_stopping_patience: int | None = None
    checkpoint_every: int = 10
    threads: int = 1
    engine: str = "auto"
    model_options: tuple[tuple[str, Any], ...] = ()
    objective: tuple[TermSpec, ...] = ()
    targets: tuple[str, ...] | None = None
    split: SplitSpec | None = None
    optimizer: str = "adam"
    weight_decay: float = 0.0
    schedule: str = "none"
    plateau_patience: int = 10
    plateau_factor: float = 0.25
    clip_norm: float | None = None
    window_ms: float | None = None
    burn_in_ms: float = 0.0
    teacher_forcing_interval: int | None = None
    warmup_ms: float | None = None
    forcing: str = "sparse"
    gtf_alpha: float = 0.1
    gtf_alpha_end: float | None = None
    betas: tuple[float, float] = (0.9, 0.999)
    min_learning_rate: float = 0.0
    windows_per_trial: int = 1

    def __post_init__(self) -> None:
        if self.model not in list_models():
            raise ConfigError(
                f"TrainConfig.model {self.model!r} is unknown; "
                f"use one of {', '.join(list_models())}"
            )
        _positive_int("hidden", self.hidden)
        if isinstance(self.seeds, (str, bytes)) or not hasattr(self.seeds, "__iter__"):
            raise ConfigError(
                f"TrainConfig.seeds must be a sequence of integers, got {self.seeds!r}"
            )
        seeds = tuple(self.seeds)
        if not seeds:
            raise ConfigError("TrainConfig.seeds must hold at least one seed, e.g. (0,)")
        for s in seeds:
            if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= SEED_MAX:
                raise ConfigError(f"TrainConfig.seeds must be integers >= 0 and <= {SEED_MAX} "
                                  f"(the seeds numpy and torch take), got {s!r}")
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"TrainConfig.seeds must be distinct, got {seeds}")
        object.__setattr__(self, "seeds", seeds)
        _positive_int("epochs", self.epochs)
        _positive_int("batch_size", self.batch_size)
        if self.learning_rate is not None:
            lr = self.learning_rate
            if (
                isinstance(lr, bool)
                or not isinstance(lr, (int, float))
                or not (math.isfinite(lr) and lr > 0)
            ):
                raise ConfigError(
                    f"TrainConfig.learning_rate must be a finite number > 0 or None, got {lr!r}"
                )
            object.__setattr__(self, "learning_rate", float(lr))
        if self.loss not in LOSSES:
            raise ConfigError(
                f"TrainConfig.loss {self.loss!r} is unknown; use one of {', '.join(LOSSES)}"
            )
        if self.early_stopping_patience is not None:
            _positive_int("early_stopping_patience", self.early_stopping_patience)
        _positive_int("checkpoint_every", self.checkpoint_every)
        _positive_int("threads", self.threads)
        if self.engine not in ENGINES:
            raise ConfigError(
                f"TrainConfig.engine {self.engine!r} is unknown; use one of {', '.join(ENGINES)}"
            )
        opts = self.model_options
        opts = dict(opts) if isinstance(opts, dict) else dict(tuple(p) for p in opts)
        opts = {k: tuple(v) if isinstance(v, list) else v for k, v in opts.items()}  # TOML lists
        model_config(self.model, self.hidden, opts)  # unknown options / bad values: one line
        object.__setattr__(self, "model_options", tuple(sorted(opts.items())))
        terms = tuple(
            t if isinstance(t, TermSpec) else TermSpec.from_dict(t) for t in self.objective
        )
        object.__setattr__(self, "objective", terms)
        if self.targets is not None:
            if isinstance(self.targets, str) or not all(isinstance(t, str) for t in self.targets):
                raise ConfigError(f"TrainConfig.targets must be field names, got {self.targets!r}")
            object.__setattr__(self, "targets", tuple(self.targets))
        self._check_loop_options()
        if self.split is not None and not isinstance(self.split, SplitSpec):
            if not isinstance(self.split, dict):
                raise ConfigError(f"TrainConfig.split must be a table, got {self.split!r}")
            object.__setattr__(self, "split", SplitSpec.from_dict(self.split))

    def _check_loop_options(self) -> None:
        from neuroreduce.training.loop import OPTIMIZERS, SCHEDULES

        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"TrainConfig.optimizer {self.optimizer!r} is unknown; use one "
                              f"of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"TrainConfig.schedule {self.schedule!r} is unknown; use one of "
                              f"{', '.join(SCHEDULES)}")
        _positive_int("plateau_patience", self.plateau_patience)
        for name, low, high in (("weight_decay", 0.0, math.inf), ("plateau_factor", 0.0, 1.0),
                                ("burn_in_ms", 0.0, math.inf)):
            v = getattr(self, name)
            ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            if not ok or not (low <= v < high) or (name == "plateau_factor" and v == 0):
                raise ConfigError(f"TrainConfig.{name} must be a number in [{low}, {high}), "
                                  f"got {v!r}")
        self._check_betas_and_floor()
        if self.warmup_ms is not None and self.teacher_forcing_interval is not None:
            raise ConfigError("warmup_ms and teacher_forcing_interval cannot be combined")
        for name in ("clip_norm", "window_ms", "warmup_ms"):
            v = getattr(self, name)
            ok = v is None or (isinstance(v, int | float) and not isinstance(v, bool)
                               and math.isfinite(v) and v > 0)
            if not ok:
                raise ConfigError(f"TrainConfig.{name} must be a number > 0 or None, got {v!r}")
        if self.window_ms is None and self.burn_in_ms:
            raise ConfigError("TrainConfig.burn_in_ms needs window_ms (training windows)")
        _positive_int("windows_per_trial", self.windows_per_trial)
        if self.window_ms is None and self.windows_per_trial != 1:
            raise ConfigError("TrainConfig.windows_per_trial needs window_ms (training "
                              "windows); without windows every epoch sees each trial once")
        if self.window_ms is not None and self.burn_in_ms >= self.window_ms:
            raise ConfigError(f"burn_in_ms {self.burn_in_ms} must be shorter than window_ms "
                              f"{self.window_ms}")
        if self.teacher_forcing_interval is not None:
            _positive_int("teacher_forcing_interval", self.teacher_forcing_interval)
        if self.forcing not in FORCING_SCHEMES:
            raise ConfigError(f"TrainConfig.forcing {self.forcing!r} is unknown; use one of "
                              f"{', '.join(FORCING_SCHEMES)}")
        for name in ("gtf_alpha", "gtf_alpha_end"):
            v = getattr(self, name)
            ok = (v is None and name == "gtf_alpha_end") or (
                isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1)
            if not ok:
                raise ConfigError(f"TrainConfig.{name} must be a number in [0, 1], got {v!r}")
        if self.forcing == "generalised" and self.warmup_ms is not None:
            raise ConfigError("warmup_ms and forcing = 'generalised' cannot be combined")

    def _check_betas_and_floor(self) -> None:
        betas = self.betas
        ok = (isinstance(betas, (tuple, list)) and len(betas) == 2
              and all(isinstance(b, int | float) and not isinstance(b, bool) and 0 <= b < 1
                      for b in betas))
        if not ok:
            raise ConfigError(f"TrainConfig.betas must be two numbers in [0, 1), e.g. "
                              f"[0.9, 0.99], got {betas!r}")
        object.__setattr__(self, "betas", (float(betas[0]), float(betas[1])))
        floor = self.min_learning_rate
        ok = (isinstance(floor, int | float) and not isinstance(floor, bool)
              and math.isfinite(floor) and 0 <= floor < self.effective_learning_rate)
        if not ok:
            raise ConfigError(f"TrainConfig.min_learning_rate must be a number >= 0 and below "
                              f"the learning rate ({self.effective_learning_rate:g}), got "
                              f"{floor!r}")
        object.__setattr__(self, "min_learning_rate", float(floor))

    def forcing_schedule(self, epoch: int) -> tuple[int, float | None] | None:
        """Teacher forcing at ``epoch`` (0-based): ``(interval, alpha)``, ``alpha = None`` for
        sparse forcing; ``None`` when training runs free."""
        if self.forcing == "generalised":
            end = self.gtf_alpha if self.gtf_alpha_end is None else self.gtf_alpha_end
            frac = epoch / max(1, self.epochs - 1)
            return self.teacher_forcing_interval or 1, float(
                self.gtf_alpha + (end - self.gtf_alpha) * min(1.0, frac))
        if self.teacher_forcing_interval is None:
            return None
        return self.teacher_forcing_interval, None

    @property
    def effective_learning_rate(self) -> float:
        """``learning_rate``, or the paper's default for ``model`` when it is ``None``."""
        if self.learning_rate is not None:
            return self.learning_rate
        return DEFAULT_LEARNING_RATES.get(self.model, _FALLBACK_LEARNING_RATE)

    def warmup_steps(self, dt_ms: float) -> int:
        """Warm-up samples at sampling interval ``dt_ms`` (0 without a warm-up)."""
        return 0 if self.warmup_ms is None else max(1, int(round(self.warmup_ms / dt_ms)))

    @property
    def n_members(self) -> int:
        """Number of ensemble members (one per seed)."""
        return len(self.seeds)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``seeds`` as a list)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["seeds"] = list(self.seeds)
        for name, default in _NEW_FIELDS_DEFAULTS.items():
            if getattr(self, name) == default:
                del data[name]
        if self.model_options:
            data["model_options"] = {
                k: list(v) if isinstance(v, tuple) else v for k, v in self.model_options
            }
        if self.objective:
            data["objective"] = [t.to_dict() for t in self.objective]
        if self.targets is not None:
            data["targets"] = list(self.targets)
        if self.split is not None:
            data["split"] = self.split.to_dict()
        if "betas" in data:
            data["betas"] = list(self.betas)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from :meth:`to_dict` output or a TOML table; missing keys take defaults.

        Raises:
            ConfigError: on an unknown key (naming the allowed ones) or an invalid value.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"a training config must be a table/dict, got {type(data).__name__}")
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ConfigError(
                f"unknown training option(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}"
            )
        values = dict(data)
        if "seeds" in values and isinstance(values["seeds"], list):
            values["seeds"] = tuple(values["seeds"])
        if isinstance(values.get("model_options"), dict):
            values["model_options"] = tuple(values["model_options"].items())
        if isinstance(values.get("objective"), list):
            values["objective"] = tuple(values["objective"])
        if isinstance(values.get("targets"), list):
            values["targets"] = tuple(values["targets"])
        if isinstance(values.get("betas"), list):
            values["betas"] = tuple(values["betas"])
        return cls(**values)

    def differences(self, other: TrainConfig, *, ignore: frozenset[str] = frozenset()) -> list[str]:
        """Names of the fields whose values differ from ``other`` (except those in ``ignore``)."""
        return [
            f.name
            for f in fields(self)
            if f.name not in ignore and getattr(self, f.name) != getattr(other, f.name)
        ]
