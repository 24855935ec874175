"""Neuron-level trajectory prediction (Wang et al.): ``X(t+1) = X(t) + f(X(t))``.

``f`` is any whole-brain graph family (``mlp_agg``, ``gnn_inferred``, ``gnn_connectome``; with
``memory = "lstm"`` the RNN variants), built with ``n_outputs = n_inputs``: it maps the frames
seen so far ``[batch, time, 2N]`` (traces, then derivatives, normalised to [0, 1] per worm) to
the increment of every channel at the last frame. With the default ``window = 1`` the model is
Markovian (it sees one frame, as the paper's).

Training rolls the model out over ``train_steps`` (8) frames from a true start; at each step the
next input is the true frame with the teacher-forcing probability ``p`` and the model's own
prediction otherwise (scheduled sampling, Bengio et al. 2015), ``p`` decaying linearly from 1 at
the first epoch to 0 at ``anneal_epochs`` (the paper: "a linear decay which terminated at 300";
read here as epochs). The loss is the MSE of the predicted frames. Evaluation rolls out
``eval_steps`` (16) frames free-running and reports the MSE per prediction step (Fig. 4C). RNN
variants see ``burn_in`` (4) true frames before the first prediction.

This is its own small trainer (the generic one trains sequence-to-sequence maps): Adam, the
learning rate times 0.25 after ``plateau_patience`` epochs without a better validation loss,
the best-validation weights kept; seeded (model, batch order, teacher-forcing draws), not
resumable.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.errors import ConfigError, DatasetError
from neuroreduce.models.graph.edges import neuron_names_of
from neuroreduce.models.mlp import check_int
from neuroreduce.models.registry import build_model, model_config


@dataclass(frozen=True)
class TrajectoryConfig:
    """How a trajectory model is built and trained.

    Attributes:
        model: Graph family of ``f`` (``mlp_agg``, ``gnn_inferred``, ``gnn_connectome``).
        hidden: The family's width (256 in the paper for trajectories).
        model_options: The family's further options as ``(name, value)`` pairs (default
            ``window`` 1: Markovian; ``memory="lstm"`` for the RNN variants; the paper found
            ``edges="dynamic"`` best here). ``gnn_connectome`` takes its ``neurons`` from the
            dataset's channel names when not given.
        train_steps: Predicted frames per training rollout (8).
        eval_steps: Free-running frames per evaluation rollout (16); also the validation loss.
        burn_in: True frames before the first prediction beyond the start frame (0 for
            Markovian models; 4 for the RNN variants).
        epochs: Training epochs (800 in the paper).
        anneal_epochs: Epochs over which the teacher-forcing probability falls linearly from 1
            to 0 (0: no teacher forcing).
        batch_size: Segments per minibatch.
        learning_rate: Adam's learning rate (1e-3).
        plateau_patience: Epochs without a better validation loss before the learning rate is
            multiplied by ``plateau_factor`` (50).
        plateau_factor: That factor (0.25).
        seed: Seeds the model, the batch order and the teacher-forcing draws.
        threads: Torch CPU threads while training (restored afterwards).
    """

    model: str = "gnn_inferred"
    hidden: int = 256
    model_options: tuple[tuple[str, Any], ...] = (("window", 1),)
    train_steps: int = 8
    eval_steps: int = 16
    burn_in: int = 0
    epochs: int = 800
    anneal_epochs: int = 300
    batch_size: int = 64
    learning_rate: float = 1e-3
    plateau_patience: int = 50
    plateau_factor: float = 0.25
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        opts = self.model_options
        opts = tuple(opts.items()) if isinstance(opts, Mapping) else tuple(map(tuple, opts))
        object.__setattr__(self, "model_options", opts)
        model_config(self.model, self.hidden, dict(opts))  # unknown family/option: ConfigError
        for name in ("train_steps", "eval_steps", "epochs", "batch_size", "plateau_patience",
                     "threads"):
            check_int(name, getattr(self, name))
        for name in ("burn_in", "anneal_epochs", "seed"):
            check_int(name, getattr(self, name), minimum=0)
        for name, hi in (("learning_rate", math.inf), ("plateau_factor", 1.0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < hi:
                raise ConfigError(f"{name} must be a number in (0, {hi}), got {v!r}")

    @property
    def length(self) -> int:
        """Frames a segment needs: start, burn-in and the longer rollout."""
        return self.burn_in + 1 + max(self.train_steps, self.eval_steps)


def teacher_forcing_probability(epoch: int, anneal_epochs: int) -> float:
    """Probability of feeding the true frame at 0-based ``epoch``: ``1 - epoch / anneal_epochs``,
    at least 0 (always 0 when ``anneal_epochs`` is 0)."""
    if anneal_epochs <= 0:
        return 0.0
    return max(0.0, 1.0 - epoch / anneal_epochs)


def _context(model: nn.Module, seq: torch.Tensor) -> torch.Tensor:
    """The frames the model's last output depends on (windowed models: the last ``window``)."""
    if getattr(model, "memory", None) == "window":
        return seq[:, -model.window :]
    return seq


def rollout(
    model: nn.Module, x: torch.Tensor, *, burn_in: int, steps: int, p_true: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Predict ``steps`` frames after ``burn_in + 1`` true ones.

    Args:
        model: ``f``: ``[batch, time, C] -> [batch, time, C]`` increments.
        x: True frames ``[batch, >= burn_in + 1 + steps, C]`` (later ones are teacher-forcing
            inputs and nothing else).
        burn_in: True frames before the start frame.
        steps: Frames to predict.
        p_true: Per segment and step, probability that the next input is the true frame
            instead of the prediction (0: free-running).
        generator: Source of those draws.

    Returns:
        Predicted frames ``[batch, steps, C]`` (of true frames ``x[:, burn_in + 1 :]``).
    """
    start = burn_in + 1
    if x.shape[1] < start + steps - 1:
        raise DatasetError(
            f"segments of {x.shape[1]} frames are too short for {burn_in} burn-in frames, a "
            f"start frame and {steps} predictions"
        )
    seq = x[:, :start]
    preds = []
    for k in range(steps):
        pred = seq[:, -1] + model(_context(model, seq))[:, -1]
        preds.append(pred)
        if k == steps - 1:
            break
        nxt = pred
        if p_true > 0:
            coin = torch.rand(x.shape[0], 1, generator=generator) < p_true
            nxt = torch.where(coin, x[:, start + k], pred)
        seq = torch.cat([seq, nxt[:, None]], dim=1)
    return torch.stack(preds, dim=1)


def per_step_mse(
    model: nn.Module, segments: np.ndarray | torch.Tensor, *, burn_in: int, steps: int,
    batch_size: int = 256,
) -> np.ndarray:
    """Free-running MSE per prediction step ``[steps]`` (mean over segments and channels)."""
    x = torch.as_tensor(np.asarray(segments, np.float32))
    _check_length(x, burn_in + 1 + steps)
    total = torch.zeros(steps, dtype=torch.float64)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            xb = x[i : i + batch_size]
            pred = rollout(model, xb, burn_in=burn_in, steps=steps)
            err = (pred - xb[:, burn_in + 1 : burn_in + 1 + steps]) ** 2
            total += err.double().sum(dim=(0, 2))
    model.train(was_training)
    return (total / (x.shape[0] * x.shape[2])).numpy()


@dataclass(frozen=True, eq=False)
class TrajectoryResult:
    """Outcome of :func:`train_trajectory`.

    Attributes:
        model: ``f`` with the best-validation weights, in eval mode.
        config: The configuration trained with.
        options: The model options used (``neurons`` filled in for ``gnn_connectome``).
        best_epoch: 1-based epoch of the best validation loss.
        history: Per epoch: ``{"epoch", "train_loss", "valid_loss", "p_true", "lr"}``.
        valid_mse: Free-running MSE per prediction step of the validation segments
            ``[eval_steps]`` with the best weights.
    """

    model: nn.Module
    config: TrajectoryConfig
    options: tuple[tuple[str, Any], ...]
    best_epoch: int
    history: tuple[dict[str, float], ...]
    valid_mse: np.ndarray


def _segments(data: Dataset | np.ndarray, what: str) -> torch.Tensor:
    x = data.inputs if isinstance(data, Dataset) else data
    x = np.asarray(x, np.float32)
    if x.ndim != 3 or x.shape[0] == 0:
        raise DatasetError(f"{what} segments must be [segment, frame, 2N] with at least one "
                           f"segment; got shape {x.shape}")
    if not np.isfinite(x).all():
        raise DatasetError(f"{what} segments hold NaN or inf; cut segments inside recordings")
    return torch.from_numpy(np.ascontiguousarray(x))


def _check_length(x: torch.Tensor, need: int) -> None:
    if x.shape[1] < need:
        raise DatasetError(
            f"segments of {x.shape[1]} frames are too short: {need} needed (burn-in, start "
            "frame and rollout); cut longer windows (windowed(..., window=N))"
        )


def _options(config: TrajectoryConfig, data: Dataset | np.ndarray) -> dict[str, Any]:
    opts = dict(config.model_options)
    if config.model == "gnn_connectome" and not opts.get("neurons"):
        if not isinstance(data, Dataset):
            raise ConfigError("gnn_connectome needs option neurons (or train on a Dataset whose "
                              "channel names are the neurons)")
        opts["neurons"] = neuron_names_of(data.input_names)
    return opts


def train_trajectory(
    train: Dataset | np.ndarray, valid: Dataset | np.ndarray, config: TrajectoryConfig
) -> TrajectoryResult:
    """Train ``f`` with scheduled sampling; keep the best free-running validation weights.

    Args:
        train: Training segments ``[segment, frame, 2N]`` (a window dataset's ``inputs``, or
            the dataset: ``gnn_connectome`` then takes the neuron names from it), at least
            ``config.length`` frames each.
        valid: Validation segments, same layout.
        config: Model and training settings.

    Raises:
        DatasetError: on segments that are too short, non-finite or of other channel counts.
        ConfigError: on a bad configuration.
    """
    old_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _train(train, valid, config)
    finally:
        torch.set_num_threads(old_threads)


def _train(
    train: Dataset | np.ndarray, valid: Dataset | np.ndarray, config: TrajectoryConfig
) -> TrajectoryResult:
    xt, xv = _segments(train, "training"), _segments(valid, "validation")
    _check_length(xt, config.burn_in + 1 + config.train_steps)
    _check_length(xv, config.burn_in + 1 + config.eval_steps)
    if xt.shape[2] != xv.shape[2]:
        raise DatasetError(f"training segments have {xt.shape[2]} channels, validation ones "
                           f"{xv.shape[2]}")
    opts = _options(config, train)
    torch.manual_seed(config.seed)
    model = build_model(config.model, n_inputs=xt.shape[2], n_outputs=xt.shape[2],
                        hidden=config.hidden, options=opts)
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, factor=config.plateau_factor, patience=config.plateau_patience)
    need = config.burn_in + 1 + config.train_steps
    best, best_loss, best_epoch, history = copy.deepcopy(model.state_dict()), math.inf, 0, []
    for epoch in range(config.epochs):
        p = teacher_forcing_probability(epoch, config.anneal_epochs)
        model.train()
        order = torch.randperm(xt.shape[0], generator=gen)
        total = 0.0
        for i in range(0, xt.shape[0], config.batch_size):
            xb = xt[order[i : i + config.batch_size], :need]
            pred = rollout(model, xb, burn_in=config.burn_in, steps=config.train_steps,
                           p_true=p, generator=gen)
            loss = torch.mean((pred - xb[:, config.burn_in + 1 :]) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * xb.shape[0]
        valid_loss = float(per_step_mse(model, xv, burn_in=config.burn_in,
                                        steps=config.eval_steps).mean())
        lr = opt.param_groups[0]["lr"]
        plateau.step(valid_loss)
        history.append({"epoch": epoch + 1, "train_loss": total / xt.shape[0],
                        "valid_loss": valid_loss, "p_true": p, "lr": lr})
        if valid_loss < best_loss:
            best, best_loss, best_epoch = copy.deepcopy(model.state_dict()), valid_loss, epoch + 1
    model.load_state_dict(best)
    model.eval()
    mse = per_step_mse(model, xv, burn_in=config.burn_in, steps=config.eval_steps)
    return TrajectoryResult(model, config, tuple(opts.items()), best_epoch, tuple(history), mse)
