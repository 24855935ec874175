"""``svm``: a linear support-vector machine on the lagged inputs (binary and categorical heads).

The per-step linear SVM baseline of behaviour decoding from whole-brain activity (DESIGN.md,
use 001; Cortes & Vapnik 1995): scikit-learn's ``LinearSVC`` (liblinear, squared hinge, one
vs. rest; Fan et al., JMLR 9:1871, 2008) on the same ``hidden`` lags of every input as
:mod:`.ridge_arx`, one machine per output channel on the steps where its label counts. The
decision values are the head's logits (binary: one; categorical: one per class), so the
module is the same causal filter (:class:`~.filters.CausalFilter`). Continuous heads are
refused: fit them with ``ridge_arx``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from neuroreduce.errors import ConfigError
from neuroreduce.models.baselines.filters import CausalFilter, lag_features
from neuroreduce.models.baselines.fitting import check_common, fit_heads
from neuroreduce.models.baselines.solvers import linear_svm
from neuroreduce.models.mlp import check_int

if TYPE_CHECKING:  # only annotations: importing training here would be circular
    from neuroreduce.training.assemble import Assembled
    from neuroreduce.training.task import TaskLayout

#: Default L2 penalties per step (smaller ones converge slowly and rarely win on held-out steps).
ALPHAS = (1e-3, 1e-2, 1e-1, 1.0)


@dataclass(frozen=True)
class SVMConfig:
    """Hyper-parameters of ``svm``.

    Attributes:
        hidden: Lags per input (steps ``t .. t - hidden + 1``; 1: the current step only).
        alphas: L2 penalties per step to choose from on the validation split
            (``C = 1 / (2 n alpha)`` for ``n`` steps).
        class_weight: ``none`` or ``balanced`` (``n / (classes * count)`` per class).
        max_samples: Most time steps per split to fit on (random subset, seeded).
        max_iter: liblinear's iteration limit.
    """

    hidden: int = 20
    alphas: tuple[float, ...] = ALPHAS
    class_weight: str = "none"
    max_samples: int = 20000
    max_iter: int = 1000

    def __post_init__(self) -> None:
        check_int("hidden", self.hidden)
        check_common(self)


def build(config: SVMConfig, *, n_inputs: int, n_outputs: int) -> CausalFilter:
    """An unfitted filter of the right shape (``hidden`` lags)."""
    return CausalFilter(n_inputs, n_outputs, config.hidden)


def check(config: SVMConfig, layout: TaskLayout) -> None:
    """``ConfigError`` for a continuous head (called before a run folder is written)."""
    for h in layout.heads:
        if h.kind == "continuous":
            raise ConfigError(
                f"model 'svm' classifies binary and categorical fields; {h.field!r} is "
                "continuous: use --model ridge_arx, or leave it out with --target"
            )


def fit(
    config: SVMConfig, *, train: Assembled, valid: Assembled, layout: TaskLayout, seed: int
) -> CausalFilter:
    """One fitted member; ``ConfigError`` for a continuous head (before any work)."""
    check(config, layout)
    n_in, n_out = train.x.shape[-1], layout.n_outputs
    weights, bias = fit_heads(
        config, train=train, valid=valid, layout=layout, seed=seed,
        features=partial(lag_features, length=config.hidden),
        solvers={"binary": linear_svm, "categorical": linear_svm},
    )
    module = build(config, n_inputs=n_in, n_outputs=n_out)
    module.set_kernel(weights.reshape(n_out, n_in, config.hidden), bias)
    return module


FAMILY = dict(
    name="svm",
    description="linear SVM (one-vs-rest) on `hidden` input lags; binary/categorical fields",
    config=SVMConfig,
    build=build,
    fit=fit,
    check=check,
)
