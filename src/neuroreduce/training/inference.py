"""Predictions of a trained ensemble for every predicted field of a typed dataset.

Works on what :func:`~neuroreduce.training.trainer.train` returns (the model stays in memory)
and on a loaded run folder alike: both carry the model, its normalisation and its task layout.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.errors import ConfigError
from neuroreduce.training.assemble import Assembler
from neuroreduce.training.normalization import Normalization
from neuroreduce.training.task import Head, TaskLayout


def _parts(trained: Any) -> tuple[Any, Normalization, TaskLayout]:
    """(ensemble, normalisation, layout) of a ``TrainResult`` or a ``TrainedRun``."""
    layout = getattr(trained, "layout", None)
    if layout is None:  # a TrainedRun: the layout lives in its IOSpec
        layout = trained.io.task
    if trained.model is None or trained.normalization is None:
        raise ConfigError("this training result holds no model; load the run with load_run")
    return trained.model, trained.normalization, layout


def _decode(head: Head, values: np.ndarray, norm: Normalization) -> np.ndarray:
    """Model outputs of one head -> physical values / probabilities."""
    if head.kind == "continuous":
        if head.field == "outputs":
            return norm.denormalize_outputs(values)
        return norm.denormalize_field(head.field, values)
    t = torch.from_numpy(values)
    if head.kind == "binary":
        return torch.sigmoid(t).numpy()
    k = head.n_classes
    logits = t.reshape(*t.shape[:-1], len(head.channels), k)
    return torch.softmax(logits, dim=-1).numpy()


def predict_fields(
    trained: Any,
    dataset: Dataset,
    *,
    trials: np.ndarray | None = None,
    batch_size: int = 64,
) -> dict[str, np.ndarray]:
    """Every member's free-running prediction of every predicted field.

    Args:
        trained: A :class:`~neuroreduce.training.trainer.TrainResult` or a loaded run.
        dataset: Data with the fields the model reads (its targets are not used).
        trials: Trial indices to predict (default: all).
        batch_size: Trials per forward pass (bounds memory).

    Returns:
        Field name -> ``[member, trial, time, channel]`` values in physical units for
        continuous fields, probabilities of 1 for binary fields, and class probabilities
        ``[member, trial, time, channel, class]`` for labels.
    """
    model, norm, layout = _parts(trained)
    assembler = Assembler(layout, norm, dataset)
    idx = np.arange(dataset.n_trials) if trials is None else np.asarray(trials, dtype=np.int64)
    out: dict[str, list[np.ndarray]] = {h.field: [] for h in layout.heads}
    model.eval()
    with torch.no_grad():
        for start in range(0, idx.size, batch_size):
            piece = assembler.assemble(dataset.select_trials(idx[start : start + batch_size]))
            pred = model.forward_shared(piece.x).numpy()
            for h in layout.heads:
                out[h.field].append(_decode(h, pred[..., h.start : h.stop], norm))
    n_members = len(getattr(trained, "seeds", ())) or None
    result = {}
    for h in layout.heads:
        parts = out[h.field]
        if parts:
            result[h.field] = np.concatenate(parts, axis=1)
        else:
            shape = (n_members or 0, 0, dataset.n_time, len(h.channels))
            result[h.field] = np.zeros(shape if h.kind != "categorical" else (*shape, h.n_classes),
                                       np.float32)
    return result
