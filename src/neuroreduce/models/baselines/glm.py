"""``glm``: a generalised linear model of the inputs with raised-cosine filters.

The stimulus part of the point-process GLM of Pillow et al. (Nature 454:995, 2008): each
input's filter, ``hidden`` samples long, is a weighted sum of ``bases`` raised-cosine bumps on
a log-stretched lag axis (:func:`~.filters.raised_cosine_basis`), so long filters take few
weights. Spikes are binned (0/1 per step), so the likelihood is Bernoulli with a logistic link
(the output is the logit) instead of Poisson; fitted by L2-penalised logistic regression on
the basis-projected inputs. The spike-history term is left out: predictions run free, with no
measured output fed back. Continuous heads get the Gaussian GLM (ridge regression on the same
features, z-scored units), categorical heads the multinomial one. The penalty of each channel is
chosen on the validation split (:mod:`.solvers`). The module is a
:class:`~.filters.BasisFilter` (``n_outputs * (n_inputs * bases + 1)`` parameters).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from neuroreduce.errors import ConfigError
from neuroreduce.models.baselines.filters import (
    BasisFilter,
    basis_features,
    raised_cosine_basis,
)
from neuroreduce.models.baselines.fitting import check_common, fit_heads
from neuroreduce.models.baselines.ridge_arx import ALPHAS
from neuroreduce.models.baselines.solvers import logistic, ridge
from neuroreduce.models.mlp import check_int

if TYPE_CHECKING:  # only annotations: importing training here would be circular
    from neuroreduce.training.assemble import Assembled
    from neuroreduce.training.task import TaskLayout


@dataclass(frozen=True)
class GLMConfig:
    """Hyper-parameters of ``glm``.

    Attributes:
        hidden: Filter length in samples (``filter_ms / dt_ms``; lags ``0 .. hidden - 1``).
        bases: Raised-cosine basis functions per input filter (2 .. hidden).
        log_offset: Offset ``c`` of the log-stretched lag axis, in samples (> 0; larger:
            bumps spaced more evenly).
        alphas: L2 penalties per step (> 0) to choose from on the validation split.
        class_weight: ``none`` or ``balanced`` (binary/categorical heads).
        max_samples: Most time steps per split to fit on (random subset, seeded).
        max_iter: Iteration limit of the logistic regressions.
    """

    hidden: int = 50
    bases: int = 8
    log_offset: float = 1.0
    alphas: tuple[float, ...] = ALPHAS
    class_weight: str = "none"
    max_samples: int = 20000
    max_iter: int = 500

    def __post_init__(self) -> None:
        check_int("hidden", self.hidden, minimum=2)
        check_int("bases", self.bases, minimum=2)
        if self.bases > self.hidden:
            raise ConfigError(f"bases must be <= hidden ({self.hidden}), got {self.bases}")
        off = self.log_offset
        if isinstance(off, bool) or not isinstance(off, int | float) or not (
            math.isfinite(off) and off > 0
        ):
            raise ConfigError(f"log_offset must be a finite number > 0, got {off!r}")
        check_common(self)

    def basis(self):
        """float64 ``[hidden, bases]``."""
        return raised_cosine_basis(self.hidden, self.bases, log_offset=float(self.log_offset))


def build(config: GLMConfig, *, n_inputs: int, n_outputs: int) -> BasisFilter:
    """An unfitted basis filter of the right shape."""
    return BasisFilter(n_inputs, n_outputs, config.basis())


def fit(
    config: GLMConfig, *, train: Assembled, valid: Assembled, layout: TaskLayout, seed: int
) -> BasisFilter:
    """One fitted member (see the module docstring); ``seed`` draws the subsampled steps."""
    import torch

    basis = config.basis()
    n_in, n_out = train.x.shape[-1], layout.n_outputs
    weights, bias = fit_heads(
        config, train=train, valid=valid, layout=layout, seed=seed,
        features=partial(basis_features, basis=basis),
        solvers={"continuous": ridge, "binary": logistic, "categorical": logistic},
    )
    module = build(config, n_inputs=n_in, n_outputs=n_out)
    with torch.no_grad():
        module.weight.copy_(torch.as_tensor(weights.reshape(n_out, n_in, config.bases)))
        module.bias.copy_(torch.as_tensor(bias))
    return module


FAMILY = dict(
    name="glm",
    description="GLM (Pillow 2008): raised-cosine input filters, logistic / Gaussian fit",
    config=GLMConfig,
    build=build,
    fit=fit,
)
