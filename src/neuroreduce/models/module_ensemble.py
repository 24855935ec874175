"""A seed ensemble of any torch model family: one independent module per member.

The RNN family trains its members packed into one block-diagonal recurrence (the fast path,
:class:`~neuroreduce.models.ensemble.SurrogateEnsemble`); every other torch family uses this
wrapper, which offers the same face to the trainer:

* ``forward(x [member, batch, time, input]) -> [member, batch, time, output]`` (member ``k``
  sees only ``x[k]``), ``forward_shared(x [batch, time, input])`` (every member on one batch);
* ``parameter_owners()``: for each parameter, the member owning each element (so best-weight
  copies, divergence guards and frozen members work per member);
* ``member_state_dict(k)`` / ``load_member_state_dicts`` / ``member(k)``.

Member ``k`` is built after ``torch.manual_seed(seeds[k])``, so it equals the lone model built
the same way, and trains exactly as it would alone (members share no parameter; the summed loss
gives each its own gradient).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn

from neuroreduce.errors import CheckpointError


class ModuleEnsemble(nn.Module):
    """Independent members of one architecture (see the module docstring).

    Args:
        members: One module per seed, each mapping ``[batch, time, input]`` to
            ``[batch, time, output]``.
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    @classmethod
    def from_seeds(cls, build: Callable[[], nn.Module], seeds: Sequence[int]) -> ModuleEnsemble:
        """Member ``k`` = ``build()`` right after ``torch.manual_seed(seeds[k])``."""
        members = []
        with torch.random.fork_rng(devices=[]):
            for seed in seeds:
                torch.manual_seed(int(seed))
                members.append(build())
        return cls(members)

    @property
    def n_members(self) -> int:
        return len(self.members)

    def forward(
        self, x: torch.Tensor, *, forcing: tuple[torch.Tensor, int] | None = None
    ) -> torch.Tensor:
        """Member ``k`` on ``x[k]``; ``forcing = (targets [member, batch, time, out], interval)``
        is handed to each member as ``(targets[k], interval)`` (teacher-forced families); a third
        element (the generalised-forcing ``alpha``) is passed on as it is."""
        if x.ndim != 4 or x.shape[0] != self.n_members:
            raise ValueError(
                f"ensemble input must be [member={self.n_members}, batch, time, input]; got "
                f"{tuple(x.shape)}"
            )
        if forcing is None:
            return torch.stack([m(x[k]) for k, m in enumerate(self.members)])
        targets, *rest = forcing  # (targets, interval) or (targets, interval, alpha)
        return torch.stack(
            [m(x[k], forcing=(targets[k], *rest)) for k, m in enumerate(self.members)]
        )

    def supports_forcing(self) -> bool:
        """Whether the members' ``forward`` takes a ``forcing`` argument."""
        import inspect

        return "forcing" in inspect.signature(self.members[0].forward).parameters

    def forward_shared(self, x: torch.Tensor) -> torch.Tensor:
        """Every member on the same ``x [batch, time, input]`` -> ``[member, batch, time, out]``."""
        return torch.stack([m(x) for m in self.members])

    def parameter_owners(self) -> dict[str, torch.Tensor]:
        """Parameter name -> int64 tensor of its shape holding the owning member's index."""
        out = {}
        for name, p in self.named_parameters():
            k = int(name.split(".")[1])
            out[name] = torch.full(p.shape, k, dtype=torch.int64)
        return out

    def member_state_dict(self, k: int) -> dict[str, torch.Tensor]:
        """Member ``k``'s weights as a lone model's state dict (copies)."""
        return {n: t.detach().clone() for n, t in self.members[k].state_dict().items()}

    def member(self, k: int) -> nn.Module:
        """A standalone, trainable copy of member ``k``."""
        return copy.deepcopy(self.members[k]).requires_grad_(True)

    def load_member_state_dicts(self, states: Sequence[dict[str, torch.Tensor]]) -> None:
        """Load one lone-model state dict per member.

        Raises:
            CheckpointError: on a member count or tensor mismatch.
        """
        if len(states) != self.n_members:
            raise CheckpointError(
                f"{len(states)} member weights for an ensemble of {self.n_members}; retrain"
            )
        for m, state in zip(self.members, states, strict=True):
            try:
                m.load_state_dict(state)
            except RuntimeError as exc:
                first = str(exc).splitlines()[0]
                raise CheckpointError(f"member weights do not fit the model ({first})") from None
