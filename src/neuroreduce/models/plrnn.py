"""Piecewise-linear RNN (PLRNN) with a dendritic basis expansion, and sparse teacher forcing.

Latent dynamics (Durstewitz 2017, PLoS Comput Biol 13(6): e1005542; dendritic PLRNN of Brenner
et al. 2022, "Tractable dendritic RNNs for reconstructing nonlinear dynamical systems",
ICML, PMLR 162), for latent ``z_t`` of ``hidden = M`` units and inputs ``s_t``::

    z_t = A z_{t-1} + W phi(z_{t-1}) + C s_t + h
    phi(z) = sum_b alpha_b * relu(z - theta_b)        (bases = B >= 1)
    phi(z) = relu(z)                                  (bases = 0: the plain PLRNN)
    x_t = B_obs z_t          (observation "linear")   or   x_t = z_t[:n_outputs]  ("identity")

with ``A`` diagonal, ``W`` off-diagonal (its diagonal is stored but masked to zero), scalar
``alpha_b`` and per-unit thresholds ``theta_b`` (``[M]`` each). The start state is ``z = 0``.

Sparse teacher forcing (Mikhaeil, Monfared & Durstewitz 2022, "On the difficulty of learning
chaotic dynamics with RNNs", NeurIPS): every ``interval`` steps the latent state is replaced by
one inferred from the observed data, so gradients never run through more than ``interval``
free steps. With the identity observation the first ``n_outputs`` latent units are set to the
data; with the linear observation the whole state becomes the least-squares (pseudo-inverse)
latent ``z = B_obs^+ x``. See :meth:`PLRNN.forward`.

Generalised teacher forcing (Hess, Monfared, Brenner & Durstewitz 2023, "Generalized teacher
forcing for learning chaotic dynamics", ICML, PMLR 202): instead of replacing the state, every
``interval`` steps (usually every step) it is pulled towards the data-inferred state,
``z_t <- (1 - alpha) z_t + alpha z_hat_t``, with ``alpha`` in [0, 1]; ``alpha = 0`` is free
running and ``alpha = 1`` full (sparse) forcing. Hess et al. adapt ``alpha`` during training;
here it is annealed linearly over the epochs by the trainer (``TrainConfig.gtf_alpha`` to
``gtf_alpha_end``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from neuroreduce.errors import ConfigError
from neuroreduce.models.mlp import check_choice, check_input, check_int

OBSERVATIONS: tuple[str, ...] = ("linear", "identity")


@dataclass(frozen=True)
class PLRNNConfig:
    """Hyper-parameters of the (dendritic) PLRNN.

    Attributes:
        hidden: Latent units ``M``.
        bases: Dendritic bases ``B`` of ``phi``; 0: plain ReLU (Durstewitz 2017).
        observation: ``"linear"`` (``x = B_obs z``, learnt ``[n_outputs, M]``, no bias) or
            ``"identity"`` (``x`` is the first ``n_outputs`` latent units; needs
            ``hidden >= n_outputs``).
        a_init: Range ``(low, high)`` the diagonal of ``A`` is drawn from, uniformly.
        w_scale: Standard deviation of the off-diagonal ``W`` at initialisation, times
            ``1/sqrt(M)``.
    """

    hidden: int = 16
    bases: int = 8
    observation: str = "linear"
    a_init: tuple[float, float] = (0.5, 0.9)
    w_scale: float = 0.5

    def __post_init__(self) -> None:
        check_int("hidden", self.hidden)
        check_int("bases", self.bases, minimum=0)
        check_choice("observation", self.observation, OBSERVATIONS)
        lo_hi = self.a_init
        if not (isinstance(lo_hi, tuple) and len(lo_hi) == 2 and 0 <= lo_hi[0] <= lo_hi[1] < 1):
            raise ConfigError(
                f"a_init must be (low, high) with 0 <= low <= high < 1; got {lo_hi!r}"
            )
        if not isinstance(self.w_scale, int | float) or not self.w_scale >= 0:
            raise ConfigError(f"w_scale must be a number >= 0, got {self.w_scale!r}")


class PLRNN(nn.Module):
    """Dendritic PLRNN with a linear or identity observation and sparse teacher forcing.

    Parameters, drawn from the global torch RNG (seed it first for a reproducible model):
    ``a [M]`` uniform in ``a_init``; ``W [M, M]`` normal, std ``w_scale/sqrt(M)``;
    ``C [M, n_inputs]`` uniform in ``±1/sqrt(n_inputs)``; ``h [M]`` zeros; ``alpha [B]``
    uniform in ``[0, 2/B]``; ``theta [B, M]`` standard normal; ``B_obs [n_outputs, M]`` uniform
    in ``±1/sqrt(M)`` (linear observation only).

    Args:
        config: Hyper-parameters.
        n_inputs: Input channels ``s``.
        n_outputs: Observed channels ``x``.

    Raises:
        ConfigError: on non-positive sizes, or an identity observation with
            ``hidden < n_outputs``.
    """

    def __init__(self, config: PLRNNConfig, *, n_inputs: int, n_outputs: int) -> None:
        super().__init__()
        check_int("n_inputs", n_inputs)
        check_int("n_outputs", n_outputs)
        m, nb = config.hidden, config.bases
        if config.observation == "identity" and m < n_outputs:
            raise ConfigError(
                f"identity observation needs hidden >= n_outputs ({n_outputs}), got {m}"
            )
        self.config = config
        self.n_inputs = n_inputs
        self.n_outputs = n_outputs
        lo, hi = config.a_init
        self.a = nn.Parameter(torch.empty(m).uniform_(lo, hi))
        self.w = nn.Parameter(torch.randn(m, m) * (config.w_scale / m**0.5))
        self.register_buffer("w_mask", 1.0 - torch.eye(m), persistent=False)
        bound = 1.0 / n_inputs**0.5
        self.c = nn.Parameter(torch.empty(m, n_inputs).uniform_(-bound, bound))
        self.h = nn.Parameter(torch.zeros(m))
        if nb:
            self.alpha = nn.Parameter(torch.empty(nb).uniform_(0.0, 2.0 / nb))
            self.theta = nn.Parameter(torch.randn(nb, m))
        if config.observation == "linear":
            bound = 1.0 / m**0.5
            self.b_obs = nn.Parameter(torch.empty(n_outputs, m).uniform_(-bound, bound))

    def phi(self, z: torch.Tensor) -> torch.Tensor:
        """Basis expansion ``[batch, M] -> [batch, M]``: ``sum_b alpha_b relu(z - theta_b)``."""
        if not self.config.bases:
            return torch.relu(z)
        return torch.einsum("b,nbm->nm", self.alpha, torch.relu(z[:, None, :] - self.theta))

    def init(self, batch: int) -> torch.Tensor:
        """The zero start state ``[batch, M]`` (dtype and device of the weights)."""
        check_int("batch", batch)
        return self.a.new_zeros(batch, self.config.hidden)

    def step(self, z: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance the latent state by one step.

        Args:
            z: Latent state ``z_{t-1}`` ``[batch, M]`` (:meth:`init` at the start).
            s: Inputs ``s_t`` ``[batch, n_inputs]``.

        Returns:
            ``z_t`` ``[batch, M]`` and its observation ``x_t`` ``[batch, n_outputs]``.
        """
        drive = s @ self.c.T + self.h
        z = self.a * z + self.phi(z) @ (self.w * self.w_mask).T + drive
        return z, self.observe(z)

    def observe(self, z: torch.Tensor) -> torch.Tensor:
        """Observation of latent states ``[..., M] -> [..., n_outputs]``."""
        if self.config.observation == "identity":
            return z[..., : self.n_outputs]
        return z @ self.b_obs.T

    def force(
        self, z: torch.Tensor, x: torch.Tensor, *, inverse: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Latent state inferred from observed data ``x [batch, n_outputs]``.

        Identity observation: ``z`` with its first ``n_outputs`` units replaced by ``x``.
        Linear observation: ``B_obs^+ x``, the least-squares latent (the rest of ``z`` is
        dropped; for ``hidden > n_outputs`` it is the minimum-norm one). ``inverse`` may pass
        a precomputed ``torch.linalg.pinv(b_obs)`` ``[M, n_outputs]``.
        """
        if self.config.observation == "identity":
            return torch.cat([x, z[:, self.n_outputs :]], dim=1)
        if inverse is None:
            inverse = torch.linalg.pinv(self.b_obs)
        return x @ inverse.T

    def forward(
        self,
        x: torch.Tensor,
        *,
        forcing: tuple[torch.Tensor, int] | tuple[torch.Tensor, int, float] | None = None,
    ) -> torch.Tensor:
        """Run the PLRNN over a sequence, free-running or with sparse or generalised forcing.

        Args:
            x: Inputs ``[batch, time, n_inputs]``.
            forcing: Optional ``(targets, interval)``: ``targets [batch, time, n_outputs]`` are
                the observed outputs and ``interval`` (``tau``, steps, >= 1) how often they
                enter. At every step ``t`` with ``t % interval == 0`` the prediction ``y_t`` is
                made first, then the state ``z_t`` is replaced by :meth:`force` from
                ``targets[:, t]``, so the next step starts from the data. ``y_t`` therefore
                depends on targets of steps ``< t`` only (the model stays causal) and the
                loss may be taken on all steps. ``interval = 1`` is classic teacher forcing;
                ``None`` (the default) runs free from ``z = 0``, as at test time. A third
                element ``alpha`` in [0, 1] makes it generalised teacher forcing: at those
                steps ``z_t <- (1 - alpha) z_t + alpha force(z_t, targets[:, t])``.

        Returns:
            Predicted observations ``[batch, time, n_outputs]``.

        Raises:
            ConfigError: on a wrongly shaped ``x`` or ``targets`` or a bad ``interval``.
        """
        check_input(x, self.n_inputs)
        targets, interval, alpha = None, 0, None
        if forcing is not None:
            targets, interval, *rest = forcing
            check_int("forcing interval", interval)
            alpha = rest[0] if rest else None
            if alpha is not None and not (isinstance(alpha, int | float) and 0 <= alpha <= 1):
                raise ConfigError(f"generalised forcing alpha must be in [0, 1]; got {alpha!r}")
            expected = (x.shape[0], x.shape[1], self.n_outputs)
            if tuple(targets.shape) != expected:
                raise ConfigError(
                    f"forcing targets must have shape {list(expected)}; got {tuple(targets.shape)}"
                )
        drive = x @ self.c.T + self.h  # [batch, time, M], all steps at once
        w = (self.w * self.w_mask).T
        inverse = None
        if targets is not None and self.config.observation == "linear":
            inverse = torch.linalg.pinv(self.b_obs)
        z = self.init(x.shape[0])
        states = []
        for t in range(x.shape[1]):
            z = self.a * z + self.phi(z) @ w + drive[:, t]
            states.append(z)
            if targets is not None and t % interval == 0:
                inferred = self.force(z, targets[:, t], inverse=inverse)
                z = inferred if alpha is None else (1.0 - alpha) * z + alpha * inferred
        return self.observe(torch.stack(states, dim=1))


def parameter_count(config: PLRNNConfig, *, n_inputs: int, n_outputs: int) -> int:
    """Trainable parameters of :func:`build` (``W``'s masked diagonal included):
    ``M + M*M + M*n_inputs + M + B + B*M (+ n_outputs*M for the linear observation)``."""
    m, nb = config.hidden, config.bases
    obs = n_outputs * m if config.observation == "linear" else 0
    return m + m * m + m * n_inputs + m + nb + nb * m + obs


def build(config: PLRNNConfig, *, n_inputs: int, n_outputs: int) -> PLRNN:
    """Build a freshly initialised (dendritic) PLRNN.

    Raises:
        ConfigError: on non-positive sizes, or an identity observation with
            ``hidden < n_outputs``.
    """
    return PLRNN(config, n_inputs=n_inputs, n_outputs=n_outputs)


FAMILY = dict(
    name="plrnn",
    description="dendritic piecewise-linear RNN (Brenner et al. 2022), sparse or generalised "
                "teacher forcing",
    config=PLRNNConfig,
    build=build,
)
