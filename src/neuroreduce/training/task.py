"""What a model sees and predicts: the input blocks and output heads of a dataset's fields.

A :class:`TaskLayout` is derived from a dataset's typed fields
(:mod:`neuroreduce.datasets.fields`):

* the model input ``x [batch, time, n_inputs]`` is the concatenation, in field order, of every
  input field: the dense ``inputs`` (z-scored), other continuous inputs (z-scored), binary
  inputs and spike events (counts per sample, not normalised);
* the model output ``[batch, time, n_outputs]`` is the concatenation of one **head** per target
  or label field: a continuous target gives one value per channel (z-scored units), a binary
  target one logit per channel, a label field ``len(classes)`` logits per channel.

The layout is stored with a run (``config.json``) so a trained model knows which slice of its
output is which field. The schema-v1 task (``inputs`` -> ``outputs``) has one input block and one
continuous head, and its layout is not written (its run folders are unchanged).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from neuroreduce.datasets.fields import FieldSpec
from neuroreduce.errors import ConfigError


@dataclass(frozen=True)
class InputBlock:
    """One input field's place in the model input.

    Attributes:
        field: Field name.
        kind: ``continuous`` (z-scored), ``binary`` or ``events`` (counts per sample).
        channels: Channel names.
        start: First model-input column of this block.
    """

    field: str
    kind: str
    channels: tuple[str, ...]
    start: int

    @property
    def stop(self) -> int:
        return self.start + len(self.channels)


@dataclass(frozen=True)
class Head:
    """One predicted field's slice of the model output.

    Attributes:
        field: Target or label field name (``"outputs"`` for the dense outputs).
        kind: ``continuous``, ``binary`` or ``categorical``.
        channels: Channel names.
        n_classes: Classes per channel (categorical), else 1.
        start: First model-output column of this head.
        ignore_label: Label value that losses and metrics skip (categorical only).
    """

    field: str
    kind: str
    channels: tuple[str, ...]
    n_classes: int
    start: int
    ignore_label: int | None = None

    @property
    def width(self) -> int:
        return len(self.channels) * self.n_classes

    @property
    def stop(self) -> int:
        return self.start + self.width


@dataclass(frozen=True)
class TaskLayout:
    """Input blocks and output heads of a model (see the module docstring)."""

    inputs: tuple[InputBlock, ...]
    heads: tuple[Head, ...]

    @property
    def n_inputs(self) -> int:
        return self.inputs[-1].stop if self.inputs else 0

    @property
    def n_outputs(self) -> int:
        return self.heads[-1].stop if self.heads else 0

    @property
    def is_plain(self) -> bool:
        """True for the schema-v1 task: dense ``inputs`` -> continuous ``outputs`` only."""
        return (
            [b.field for b in self.inputs] in ([], ["inputs"])
            and [h.field for h in self.heads] == ["outputs"]
        )

    def head(self, field: str) -> Head:
        for h in self.heads:
            if h.field == field:
                return h
        raise ConfigError(
            f"the model predicts no field {field!r}; it predicts "
            f"{', '.join(h.field for h in self.heads)}"
        )

    @classmethod
    def from_specs(
        cls,
        specs: Sequence[FieldSpec],
        *,
        inputs: Sequence[str] | None = None,
        targets: Sequence[str] | None = None,
    ) -> TaskLayout:
        """The layout of fields ``specs`` (``Dataset.field_specs``).

        Args:
            specs: Every field of the dataset.
            inputs: Input field names to use, in order (default: every input field).
            targets: Target/label field names to predict, in order (default: all of them).

        Raises:
            ConfigError: on a name that is not an input (or target/label) field, or nothing to
                predict.
        """
        by_name = {s.name: s for s in specs}
        in_names = [s.name for s in specs if s.role == "input"] if inputs is None else inputs
        out_names = (
            [s.name for s in specs if s.role in ("target", "label")] if targets is None else targets
        )
        for what, names in (("input", in_names), ("target", out_names)):
            dup = sorted({n for n in names if list(names).count(n) > 1})
            if dup:
                raise ConfigError(f"{what} field(s) named more than once: {', '.join(dup)}")
        blocks, start = [], 0
        for name in in_names:
            s = by_name.get(name)
            if s is None or s.role != "input":
                raise _not_a("input", name, specs, ("input",))
            blocks.append(InputBlock(s.name, s.kind, s.channels, start))
            start += s.n_channels
        heads, start = [], 0
        for name in out_names:
            s = by_name.get(name)
            if s is None or s.role not in ("target", "label"):
                raise _not_a("target", name, specs, ("target", "label"))
            n_classes = len(s.classes) if s.kind == "categorical" else 1
            head = Head(s.name, s.kind, s.channels, n_classes, start, s.ignore_label)
            heads.append(head)
            start = head.stop
        if not heads:
            raise ConfigError("the dataset has no target or label field to predict")
        return cls(tuple(blocks), tuple(heads))

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [[b.field, b.kind, list(b.channels)] for b in self.inputs],
            "heads": [
                [h.field, h.kind, list(h.channels), h.n_classes, h.ignore_label]
                for h in self.heads
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskLayout:
        blocks, start = [], 0
        for name, kind, channels in data["inputs"]:
            blocks.append(InputBlock(str(name), str(kind), tuple(map(str, channels)), start))
            start = blocks[-1].stop
        heads, start = [], 0
        for name, kind, channels, n_classes, ignore in data["heads"]:
            heads.append(Head(str(name), str(kind), tuple(map(str, channels)), int(n_classes),
                              start, None if ignore is None else int(ignore)))
            start = heads[-1].stop
        return cls(tuple(blocks), tuple(heads))


def _not_a(what: str, name: str, specs: Sequence[FieldSpec], roles: tuple[str, ...]) -> ConfigError:
    known = [s.name for s in specs if s.role in roles]
    return ConfigError(
        f"{name!r} is not a {what} field of the dataset; its {what} fields: "
        f"{', '.join(known) or 'none'}"
    )
