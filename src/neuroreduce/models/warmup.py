"""A rest-fitted initial state: every sequence is preceded by a settling period at rest input.

A surrogate started from a zero state shows a start-up transient (about 20 ms on fcm) while its
state moves to where the data start: at rest. :class:`WarmupEnsemble` removes it without
touching any engine: it prepends ``steps`` samples of the rest input (what the inputs are
when nothing is injected, in the model's normalised units) to every sequence and drops the
outputs of that period. Trained this way, the state the model reaches at the end of the
warm-up is fitted jointly with the weights, so the first real sample starts from the model's
own rest state. The cost is ``steps`` extra samples per sequence.

It wraps any seed ensemble (the fused RNN one included) and offers the same face to the
trainer; members stay independent. The Barbulescu study keeps the paper's zero state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


class WarmupEnsemble(nn.Module):
    """``ensemble`` run after ``steps`` samples of ``rest`` input (see the module docstring).

    Args:
        ensemble: A seed ensemble (``forward``, ``forward_shared``, ``parameter_owners``,
            ``member_state_dict``, ``member``, ``load_member_state_dicts``).
        rest: The rest input in model units, shape ``[input]``.
        steps: Warm-up samples prepended to every sequence (>= 1).
    """

    def __init__(self, ensemble: nn.Module, rest: Sequence[float], steps: int) -> None:
        super().__init__()
        if steps < 1:
            raise ValueError(f"warm-up steps must be >= 1, got {steps}")
        self.ensemble = ensemble
        self.steps = int(steps)
        self.register_buffer("rest", torch.as_tensor(list(rest), dtype=torch.float32))

    @property
    def n_members(self) -> int:
        return self.ensemble.n_members

    def _prepend(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.rest.expand(*x.shape[:-2], self.steps, x.shape[-1])
        return torch.cat([pad, x], dim=-2)

    def forward(self, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """``x [member, batch, time, input]`` -> ``[member, batch, time, output]``."""
        return self.ensemble(self._prepend(x), **kwargs)[..., self.steps :, :]

    def forward_shared(self, x: torch.Tensor) -> torch.Tensor:
        """``x [batch, time, input]`` -> ``[member, batch, time, output]``."""
        return self.ensemble.forward_shared(self._prepend(x))[..., self.steps :, :]

    def parameter_owners(self) -> dict[str, torch.Tensor]:
        return {f"ensemble.{k}": v for k, v in self.ensemble.parameter_owners().items()}

    def member_state_dict(self, k: int) -> dict[str, torch.Tensor]:
        return self.ensemble.member_state_dict(k)

    def member(self, k: int) -> nn.Module:
        """Member ``k`` alone (without the warm-up; see :meth:`forward` for the full model)."""
        return self.ensemble.member(k)

    def load_member_state_dicts(self, states: Sequence[dict[str, torch.Tensor]]) -> None:
        self.ensemble.load_member_state_dicts(states)

    def supports_forcing(self) -> bool:
        return bool(getattr(self.ensemble, "supports_forcing", lambda: False)())
