"""Turn trials of a typed dataset into the tensors a model trains on.

:class:`Assembler` builds, for a set of trials, the model input ``x [trial, time, n_inputs]``
(input blocks of the :class:`~.task.TaskLayout`: continuous fields z-scored, binary fields and
spike events as they are — events made dense here, per minibatch) and, per predicted field, the
targets ``[trial, time, channel]`` (continuous z-scored, binary 0/1, labels as int64) with a
bool mask where some values must be ignored: NaN targets, samples a mask field marks unknown,
channels not recorded in a trial's group (per-group availability), ignored labels. Masked
targets are set to 0 so that no NaN reaches a gradient.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.fields import EventTrains, Field
from neuroreduce.training.normalization import Normalization
from neuroreduce.training.task import TaskLayout


@dataclass(frozen=True)
class Assembled:
    """Model input and targets of some trials.

    Attributes:
        x: float32 ``[*lead, time, n_inputs]``.
        targets: Predicted field -> ``[*lead, time, channel]`` (float32, or int64 for labels).
        masks: Predicted field -> bool ``[*lead, time, channel]``, only for fields with values
            to ignore (absent: every value counts).
    """

    x: torch.Tensor
    targets: Mapping[str, torch.Tensor]
    masks: Mapping[str, torch.Tensor]

    def take(self, idx: torch.Tensor) -> Assembled:
        """Rows ``idx`` of the trial axis."""
        return Assembled(
            self.x[idx],
            {k: v[idx] for k, v in self.targets.items()},
            {k: v[idx] for k, v in self.masks.items()},
        )

    def view_as_members(self, lead: tuple[int, ...]) -> Assembled:
        """Reshape the trial axis into ``lead`` (e.g. ``[member, batch]``)."""

        def view(t: torch.Tensor) -> torch.Tensor:
            return t.view(*lead, *t.shape[1:])

        return Assembled(
            view(self.x),
            {k: view(v) for k, v in self.targets.items()},
            {k: view(v) for k, v in self.masks.items()},
        )


class Assembler:
    """Builds :class:`Assembled` tensors for a layout (see the module docstring).

    Args:
        layout: The model's input blocks and heads.
        normalization: Statistics of the training trials (continuous fields).
        source: The dataset (or open dataset file) the trials come from: its dt and n_time.
    """

    def __init__(self, layout: TaskLayout, normalization: Normalization, source: object) -> None:
        self.layout = layout
        self.norm = normalization
        self.dt_ms = float(source.dt_ms)  # type: ignore[attr-defined]
        self.has_events = any(b.kind == "events" for b in layout.inputs)

    @property
    def n_outputs(self) -> int:
        return self.layout.n_outputs

    # ---------------------------------------------------------------- inputs
    def _input_block(self, ds: Dataset, field: str, kind: str) -> np.ndarray:
        if field == "inputs":
            return self.norm.normalize_inputs(ds.inputs)
        f = ds.field(field)
        if isinstance(f.values, EventTrains):
            return f.values.dense(np.arange(ds.n_trials), ds.n_time, self.dt_ms)
        values = np.asarray(f.values, dtype=np.float32)
        if kind == "continuous":
            values = self.norm.normalize_field(field, values)
        avail = _trial_availability(ds, f)
        if avail is not None:  # channels a group did not record: the mean (0 after z-scoring)
            values = np.where(avail[:, None, :], values, np.float32(0.0))
        return values

    # ---------------------------------------------------------------- targets
    def _target(self, ds: Dataset, field: str, kind: str, ignore: int | None):
        raw, mask = ds.known(field)  # NaN, mask fields, per-group availability
        if kind == "categorical":
            labels = raw.astype(np.int64)
            if ignore is not None:
                mask &= labels != ignore
            target = torch.from_numpy(np.where(mask, labels, 0))
        else:
            if field == "outputs":
                values = self.norm.normalize_outputs(raw)
            elif kind == "continuous":
                values = self.norm.normalize_field(field, raw)
            else:
                values = raw
            values = values.astype(np.float32)
            target = torch.from_numpy(np.where(mask, values, np.float32(0.0)))
        masks = {} if mask.all() else {field: torch.from_numpy(mask)}
        return target, masks

    def assemble(self, ds: Dataset) -> Assembled:
        """Tensors of every trial of ``ds`` (a dataset holding just the wanted trials)."""
        blocks = [self._input_block(ds, b.field, b.kind) for b in self.layout.inputs]
        if blocks:
            x = np.concatenate(blocks, axis=-1) if len(blocks) > 1 else blocks[0]
        else:
            x = np.zeros((ds.n_trials, ds.n_time, 0), np.float32)
        targets, masks = {}, {}
        for h in self.layout.heads:
            target, mask = self._target(ds, h.field, h.kind, h.ignore_label)
            targets[h.field] = target
            masks.update(mask)
        return Assembled(torch.from_numpy(np.ascontiguousarray(x, np.float32)), targets, masks)

    @staticmethod
    def positive_fraction(
        ds: Dataset, field: str, idx: np.ndarray | None = None
    ) -> list[float]:
        """Per channel: positives / known values of binary field ``field`` over trials ``idx``."""
        values, mask = ds.known(field, idx)
        pos = np.where(mask, values, 0.0).sum(axis=(0, 1), dtype=np.float64)
        n = np.maximum(mask.sum(axis=(0, 1)), 1)
        return [float(v) for v in pos / n]


def _trial_availability(ds: Dataset, f: Field) -> np.ndarray | None:
    """bool ``[trial, channel]``: channels of ``f`` recorded in each trial's group."""
    if f.availability is None or f.spec.availability_group is None:
        return None
    groups = np.asarray(ds.field(f.spec.availability_group).values)
    return np.asarray(f.availability, dtype=bool)[groups]


def rest_input(layout: TaskLayout, normalization: Normalization) -> list[float]:
    """The model input when nothing is injected (zero physical input, no events), per column."""
    out: list[float] = []
    for b in layout.inputs:
        zeros = np.zeros(len(b.channels), np.float32)
        if b.field == "inputs":
            out.extend(normalization.normalize_inputs(zeros).tolist())
        elif b.kind == "continuous":
            out.extend(normalization.normalize_field(b.field, zeros).tolist())
        else:
            out.extend([0.0] * len(b.channels))
    return out
