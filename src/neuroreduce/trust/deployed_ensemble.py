"""The whole seed ensemble as one deployable module: mean prediction and member spread.

:class:`DeployedEnsemble` holds every member of a run (each a
:class:`~neuroreduce.models.deploy.DeployedSurrogate`, normalisation baked in) and returns the
ensemble mean and the spread (standard deviation over members, ddof 0) in physical units, for
whole sequences and step by step::

    ens = deployed_ensemble("runs/gru8")          # or neuroreduce export --ensemble
    state = ens.init(batch)                      # [member, batch, hidden] (LSTM: (h, c))
    for t in range(n_steps):
        mean, spread, state = ens.step(x[:, t], state)

It is TorchScript-compatible (``torch.jit.script``). The spread is raw; multiply by the run's
calibration scale (``calibration.json``, written by ``neuroreduce evaluate``) for an interval.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from neuroreduce.models.deploy import DeployedLSTM, DeployedSurrogate


def _mean_spread(ys: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    stacked = torch.stack(ys, 0)
    return stacked.mean(0), stacked.std(0, unbiased=False)


class _DeployedEnsemble(nn.Module):
    """Members and the whole-sequence pass shared by both state layouts."""

    def __init__(self, members: list[DeployedSurrogate]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.n_members = len(members)
        self.n_inputs = members[0].n_inputs
        self.n_outputs = members[0].n_outputs
        self.hidden = members[0].hidden
        self.eval()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs ``[batch, time, n_inputs]`` -> (mean, spread), each ``[batch, time,
        n_outputs]``, from the zero state."""
        ys = [m(x) for m in self.members]
        return _mean_spread(ys)


class DeployedEnsembleTensorState(_DeployedEnsemble):
    """RNN/GRU members; the state is ``h [member, batch, hidden]``."""

    @torch.jit.export
    def init(self, batch: int) -> torch.Tensor:
        """Zero state ``[member, batch, hidden]``."""
        return torch.stack([m.init(batch) for m in self.members], 0)

    @torch.jit.export
    def step(self, x: torch.Tensor, state: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step: ``x [batch, n_inputs]`` and the state -> (mean, spread, new state)."""
        ys: list[torch.Tensor] = []
        hs: list[torch.Tensor] = []
        for k, m in enumerate(self.members):
            y, h = m.step(x, state[k])
            ys.append(y)
            hs.append(h)
        mean, spread = _mean_spread(ys)
        return mean, spread, torch.stack(hs, 0)


class DeployedEnsembleLSTM(_DeployedEnsemble):
    """LSTM members; the state is ``(h, c)``, each ``[member, batch, hidden]``."""

    @torch.jit.export
    def init(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero state ``(h, c)``, each ``[member, batch, hidden]``."""
        hs: list[torch.Tensor] = []
        for m in self.members:
            h, _ = m.init(batch)
            hs.append(h)
        h = torch.stack(hs, 0)
        return h, torch.zeros_like(h)

    @torch.jit.export
    def step(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
             ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One step: ``x [batch, n_inputs]`` and ``(h, c)`` -> (mean, spread, new state)."""
        ys: list[torch.Tensor] = []
        hs: list[torch.Tensor] = []
        cs: list[torch.Tensor] = []
        for k, m in enumerate(self.members):
            y, (h, c) = m.step(x, (state[0][k], state[1][k]))
            ys.append(y)
            hs.append(h)
            cs.append(c)
        mean, spread = _mean_spread(ys)
        return mean, spread, (torch.stack(hs, 0), torch.stack(cs, 0))


def deployed_ensemble(run: Any | str | Path) -> nn.Module:
    """Every member of a trained run as one module returning (mean, spread) in physical units.

    Raises:
        CheckpointError: if the run folder is missing or broken.
        ConfigError: for runs export does not cover (typed fields, warm-up).
    """
    from neuroreduce.export import _as_run, deployable

    loaded = _as_run(run)
    members = [deployable(loaded, k) for k in range(loaded.n_members)]
    cls = DeployedEnsembleLSTM if isinstance(members[0], DeployedLSTM) else (
        DeployedEnsembleTensorState)
    return cls(members)
