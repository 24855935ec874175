"""``ridge_arx``: a linear FIR filter of the inputs fitted by ridge / logistic regression.

The exogenous-input part of an ARX model (Ljung, *System Identification*, 2nd ed. 1999,
sec. 4.2), without the autoregression on outputs so that it runs free (it never sees measured
outputs): every head's output at step ``t`` is ``b + sum_{l<hidden} K_l x[t - l]``, a causal
``Conv1d`` (:class:`~.filters.CausalFilter`) over ``hidden`` lags of every model input.

Per output channel, on the steps where its value counts (:mod:`.fitting`): continuous heads by
ridge regression (z-scored units; Hoerl & Kennard 1970), binary heads by L2-penalised logistic
regression (the output is the logit), categorical heads by multinomial logistic regression
(one logit per class). The penalty ``alpha`` of each channel is the one of ``alphas`` with the
lowest validation loss (:mod:`.solvers`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from neuroreduce.models.baselines.filters import CausalFilter, lag_features
from neuroreduce.models.baselines.fitting import check_common, fit_heads
from neuroreduce.models.baselines.solvers import logistic, ridge
from neuroreduce.models.mlp import check_int

if TYPE_CHECKING:  # only annotations: importing training here would be circular
    from neuroreduce.training.assemble import Assembled
    from neuroreduce.training.task import TaskLayout

#: Default L2 penalties per step (on standardised features; see :mod:`.solvers`).
ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


@dataclass(frozen=True)
class RidgeARXConfig:
    """Hyper-parameters of ``ridge_arx``.

    Attributes:
        hidden: Lags per input (filter length in samples: steps ``t .. t - hidden + 1``).
        alphas: L2 penalties per step (> 0) to choose from on the validation split.
        class_weight: ``none`` or ``balanced`` (binary/categorical heads: classes weighted by
            ``n / (classes * count)``).
        max_samples: Most time steps per split to fit on (random subset, seeded; see
            :mod:`.fitting`).
        max_iter: Iteration limit of the logistic regressions.
    """

    hidden: int = 20
    alphas: tuple[float, ...] = ALPHAS
    class_weight: str = "none"
    max_samples: int = 20000
    max_iter: int = 500

    def __post_init__(self) -> None:
        check_int("hidden", self.hidden)
        check_common(self)


def build(config: RidgeARXConfig, *, n_inputs: int, n_outputs: int) -> CausalFilter:
    """An unfitted filter of the right shape (``hidden`` lags)."""
    return CausalFilter(n_inputs, n_outputs, config.hidden)


def fit(
    config: RidgeARXConfig, *, train: Assembled, valid: Assembled, layout: TaskLayout, seed: int
) -> CausalFilter:
    """One fitted member (see the module docstring); ``seed`` draws the subsampled steps."""
    n_in, n_out = train.x.shape[-1], layout.n_outputs
    weights, bias = fit_heads(
        config, train=train, valid=valid, layout=layout, seed=seed,
        features=partial(lag_features, length=config.hidden),
        solvers={"continuous": ridge, "binary": logistic, "categorical": logistic},
    )
    module = build(config, n_inputs=n_in, n_outputs=n_out)
    module.set_kernel(weights.reshape(n_out, n_in, config.hidden), bias)
    return module


FAMILY = dict(
    name="ridge_arx",
    description="linear FIR filter of `hidden` input lags, ridge / logistic fit (no gradient)",
    config=RidgeARXConfig,
    build=build,
    fit=fit,
)
