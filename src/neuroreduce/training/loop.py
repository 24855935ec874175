"""Optional parts of the training loop, each kept per ensemble member.

Members of a seed ensemble must train exactly as they would alone, so nothing here couples
them:

* optimisers: Adam (Barbulescu et al. 2023) or AdamW (decoupled weight decay), both
  elementwise;
* learning-rate schedules: ``cosine`` annealing over the requested epochs (the same for every
  member, as for each alone) and ``plateau`` (multiply a member's rate by ``factor`` after
  ``patience`` epochs without a better validation loss; needs one parameter group per member,
  so not the packed RNN engine with several seeds);
* gradient clipping of each member's own gradient norm;
* training windows: each member's minibatch trials are cut to random windows of
  ``window`` samples (offsets drawn from that member's random stream), the first ``burn_in``
  samples of each window are run but not scored (the model's state settles first).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from neuroreduce.errors import ConfigError
from neuroreduce.training.assemble import Assembled

OPTIMIZERS: tuple[str, ...] = ("adam", "adamw")
SCHEDULES: tuple[str, ...] = ("none", "cosine", "plateau")


def member_param_groups(model: torch.nn.Module) -> list[list[torch.nn.Parameter]] | None:
    """One parameter list per member, or ``None`` when members share tensors (packed RNN)."""
    members = getattr(model, "members", None)
    if members is None:
        return None
    return [list(m.parameters()) for m in members]


def make_optimizer(
    model: torch.nn.Module, *, name: str, lr: float, weight_decay: float,
    betas: tuple[float, float] = (0.9, 0.999),
) -> torch.optim.Optimizer:
    """Adam or AdamW over ``model`` (one parameter group per member where possible), with
    moment decay rates ``betas``."""
    groups = member_param_groups(model)
    params: list = (
        [{"params": g} for g in groups] if groups is not None else [{"params": model.parameters()}]
    )
    if name == "adam":
        if weight_decay:
            raise ConfigError("weight_decay needs optimizer 'adamw' (decoupled decay)")
        return torch.optim.Adam(params, lr=lr, betas=betas)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=betas)


def check_schedule(name: str, model: torch.nn.Module, n_members: int) -> None:
    """Raise ConfigError if schedule ``name`` cannot run per member on ``model``."""
    if name == "plateau" and n_members > 1 and member_param_groups(model) is None:
        raise ConfigError(
            "schedule 'plateau' changes each member's learning rate on its own, but the packed "
            "RNN ensemble shares tensors between members; use schedule 'cosine', one seed, or "
            "engine-independent families"
        )


def set_epoch_lr(
    optimizer: torch.optim.Optimizer, *, schedule: str, base_lr: float, epoch: int, epochs: int,
    scales: Sequence[float], min_lr: float = 0.0,
) -> None:
    """Set every group's learning rate for ``epoch`` (0-based) of ``epochs``.

    ``scales`` are the plateau factors reached so far, one per group (1 when unused); the
    cosine schedule runs from ``base_lr`` towards ``min_lr``:
    ``min_lr + (base_lr - min_lr) (1 + cos(pi epoch / epochs)) / 2``.
    """
    for g, group in enumerate(optimizer.param_groups):
        lr = base_lr * scales[g]
        if schedule == "cosine":
            lr = min_lr + (base_lr - min_lr) * 0.5 * (
                1.0 + math.cos(math.pi * epoch / max(1, epochs)))
        group["lr"] = lr


def clip_members(
    params: dict[str, torch.nn.Parameter],
    owners: dict[str, torch.Tensor],
    n_members: int,
    max_norm: float,
) -> None:
    """Scale each member's gradient so its L2 norm is at most ``max_norm`` (in place).

    ``owners[name]`` holds the member owning each element (-1: none, e.g. the zeroed
    off-diagonal blocks of the packed recurrence).
    """
    sq = torch.zeros(n_members + 1, dtype=torch.float64)
    for name, p in params.items():
        if p.grad is None:
            continue
        idx = owners[name].reshape(-1).clamp_min(-1) + 1  # 0 = unowned
        sq.index_add_(0, idx, p.grad.detach().reshape(-1).double().square())
    norms = sq[1:].sqrt()
    factor = torch.clamp(max_norm / (norms + 1e-12), max=1.0)
    scale = torch.cat([torch.ones(1, dtype=torch.float64), factor]).float()
    with torch.no_grad():
        for name, p in params.items():
            if p.grad is not None:
                p.grad.mul_(scale[owners[name].clamp_min(-1) + 1])


def window_batch(
    batch: Assembled, starts: np.ndarray, *, window: int, burn_in: int
) -> Assembled:
    """Cut every ``[member, batch]`` sequence of ``batch`` to ``window`` samples from its start
    in ``starts [member, batch]``; the first ``burn_in`` samples of each window are masked."""
    idx = torch.as_tensor(starts)[..., None] + torch.arange(window)  # [m, b, window]

    def cut(t: torch.Tensor) -> torch.Tensor:
        gather = idx[..., None].expand(*idx.shape, t.shape[-1])
        return torch.gather(t, 2, gather)

    masks = {}
    for name, target in batch.targets.items():
        old = batch.masks.get(name)
        m = cut(old) if old is not None else torch.ones(
            (*idx.shape, target.shape[-1]), dtype=torch.bool
        )
        m[:, :, :burn_in] = False
        masks[name] = m
    return Assembled(cut(batch.x), {k: cut(v) for k, v in batch.targets.items()}, masks)


def draw_starts(
    rngs: Sequence[np.random.Generator], batch: int, n_time: int, window: int
) -> np.ndarray:
    """Window offsets ``[member, batch]``, each member from its own random stream."""
    if window > n_time:
        raise ConfigError(f"training window of {window} samples exceeds the {n_time} of a trial")
    return np.stack([rng.integers(0, n_time - window + 1, size=batch) for rng in rngs])
