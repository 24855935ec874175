"""Training objectives: a weighted sum of named loss terms, one per predicted field.

Each term reads its head's slice of the model output (:class:`~.task.Head`) and the field's
targets, skipping masked values (NaN targets, unavailable channels, ignored labels):

==================  ================  ==============================================
loss                field kind        per member: mean over valid values of ...
==================  ================  ==============================================
``mse``             continuous        squared error (z-scored units)
``rmse``            continuous        sqrt of the mse (Barbulescu et al. 2023's loss)
``bce``             binary            binary cross-entropy of logits, ``pos_weight``
``cross_entropy``   categorical       cross-entropy of logits (``ignore_label`` skipped)
==================  ================  ==============================================

All losses are computed per ensemble member (shape ``[member]``), so members never interact.
Predictions are ``[member, batch, time, width]``; targets ``[member or 1, batch, time, channel]``.
New loss terms are one :func:`register_loss` call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from neuroreduce.errors import ConfigError, unknown_name_error
from neuroreduce.training.task import Head, TaskLayout

Tensor = torch.Tensor


class _MemberMSE(torch.autograd.Function):
    """Per-member mean squared error with one temporary each way.

    Equals autograd of ``(pred - target).square().mean(dim=(1, 2, 3))`` bit for bit (same
    reduction; the gradient ``(g / n) * 2 * (pred - target)`` rounds once either way, since
    doubling is exact), but autograd's version keeps about four full-size temporaries per
    minibatch, which dominates the step for wide outputs (28 in Experiment 5).
    """

    @staticmethod
    def forward(ctx: Any, pred: Tensor, target: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(pred, target)
        return (pred - target).square_().mean(dim=(1, 2, 3))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        pred, target = ctx.saved_tensors
        n = pred[0].numel()
        scale = (grad / n).mul_(2.0).view(-1, *([1] * (pred.ndim - 1)))
        return (pred - target).mul_(scale), None


def member_losses(pred: Tensor, target: Tensor, loss: str) -> Tensor:
    """Per-member ``"mse"`` or ``"rmse"`` ``[member]`` of ``[member, batch, time, output]``
    predictions against complete targets (the hand-written gradient of :class:`_MemberMSE`)."""
    mse = _MemberMSE.apply(pred, target)
    return mse.sqrt() if loss == "rmse" else mse


def _cols(pred: Tensor, head: Head) -> Tensor:
    """The head's columns of ``pred`` (the tensor itself when the head is all of it)."""
    if head.start == 0 and head.stop == pred.shape[-1]:
        return pred
    return pred[..., head.start : head.stop]


def _masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    """Mean over all but the member axis of ``values``, counting only ``mask`` (per member)."""
    dims = tuple(range(1, values.ndim))
    if mask is None:
        return values.mean(dim=dims)
    m = mask.expand_as(values)
    total = torch.where(m, values, torch.zeros((), dtype=values.dtype)).sum(dim=dims)
    return total / m.sum(dim=dims).clamp_min(1)


def _sums(values: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
    dims = tuple(range(1, values.ndim))
    if mask is None:
        count = torch.full((values.shape[0],), float(values[0].numel()), dtype=torch.float64)
        return values.sum(dim=dims).double(), count
    m = mask.expand_as(values)
    total = torch.where(m, values, torch.zeros((), dtype=values.dtype)).sum(dim=dims).double()
    return total, m.sum(dim=dims).double()


@dataclass(frozen=True)
class LossKind:
    """A registered loss: its elementwise value, the field kind it fits, how sums become a loss.

    Attributes:
        name: Registry name.
        field_kind: ``continuous``, ``binary`` or ``categorical``.
        elementwise: ``(pred, target, head, options) -> values`` with one value per target
            element (``[member, batch, time, channel]``).
        finish: Maps the mean of the elementwise values to the loss (``sqrt`` for rmse).
    """

    name: str
    field_kind: str
    elementwise: Callable[[Tensor, Tensor, Head, Mapping[str, Any]], Tensor]
    finish: Callable[[Tensor], Tensor] = lambda v: v


def _squared(pred: Tensor, target: Tensor, head: Head, options: Mapping[str, Any]) -> Tensor:
    return (pred - target).square()


def _bce(pred: Tensor, target: Tensor, head: Head, options: Mapping[str, Any]) -> Tensor:
    pw = options.get("pos_weight")
    weight = None if pw is None else torch.as_tensor(pw, dtype=pred.dtype)
    return F.binary_cross_entropy_with_logits(
        pred, target.to(pred.dtype).expand_as(pred), pos_weight=weight, reduction="none"
    )


def _cross_entropy(
    pred: Tensor, target: Tensor, head: Head, options: Mapping[str, Any]
) -> Tensor:
    k = head.n_classes
    logits = pred.reshape(*pred.shape[:-1], len(head.channels), k)
    labels = target.long().expand(*logits.shape[:-1]).clamp_min(0)  # ignored ones are masked
    flat = F.cross_entropy(logits.reshape(-1, k), labels.reshape(-1), reduction="none")
    return flat.view(labels.shape)


LOSSES: dict[str, LossKind] = {}


def register_loss(kind: LossKind) -> LossKind:
    """Add a loss term kind to the registry (name must be new)."""
    if kind.name in LOSSES:
        raise ConfigError(f"loss {kind.name!r} is already registered")
    LOSSES[kind.name] = kind
    return kind


register_loss(LossKind("mse", "continuous", _squared))
register_loss(LossKind("rmse", "continuous", _squared, torch.sqrt))
register_loss(LossKind("bce", "binary", _bce))
register_loss(LossKind("cross_entropy", "categorical", _cross_entropy))

#: The loss a field kind gets when the config names none for it.
DEFAULT_LOSS: dict[str, str] = {"binary": "bce", "categorical": "cross_entropy"}


@dataclass(frozen=True)
class TermSpec:
    """One declared term of the objective (TOML ``[[train.objective]]`` / JSON).

    Attributes:
        field: Predicted field (``"outputs"`` for the dense outputs).
        loss: Registered loss name (see :data:`LOSSES`).
        weight: Factor of this term in the sum (> 0).
        pos_weight: ``bce`` only: weight of positive samples; ``"balanced"`` uses
            negatives / positives of the training split (per channel).
    """

    field: str
    loss: str
    weight: float = 1.0
    pos_weight: float | str | None = None

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise unknown_name_error("loss", self.loss, list(LOSSES))
        w = self.weight
        if isinstance(w, bool) or not isinstance(w, int | float) or not (
            math.isfinite(w) and w > 0
        ):
            raise ConfigError(f"objective term {self.field!r}: weight must be > 0, got {w!r}")
        object.__setattr__(self, "weight", float(w))
        pw = self.pos_weight
        if pw is not None:
            if self.loss != "bce":
                raise ConfigError(f"objective term {self.field!r}: pos_weight is for bce only")
            ok = pw == "balanced" or (
                isinstance(pw, (int, float)) and not isinstance(pw, bool) and math.isfinite(pw)
                and pw > 0
            )
            if not ok:
                raise ConfigError(
                    f"objective term {self.field!r}: pos_weight must be finite > 0 or 'balanced', "
                    f"got {pw!r}"
                )

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "loss": self.loss, "weight": self.weight,
                "pos_weight": self.pos_weight}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TermSpec:
        allowed = {"field", "loss", "weight", "pos_weight"}
        if not isinstance(data, Mapping) or not {"field", "loss"} <= set(data):
            raise ConfigError("an objective term needs 'field' and 'loss' keys")
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ConfigError(
                f"unknown objective term key(s) {', '.join(unknown)}; allowed: "
                f"{', '.join(sorted(allowed))}"
            )
        return cls(**dict(data))


@dataclass(frozen=True)
class Term:
    """A resolved term: its spec, head, loss kind and concrete options (e.g. pos_weight)."""

    spec: TermSpec
    head: Head
    kind: LossKind
    options: Mapping[str, Any]


class Objective:
    """The weighted sum of terms; see the module docstring.

    Args:
        terms: Resolved terms (:func:`build_objective`).
    """

    def __init__(self, terms: Sequence[Term]) -> None:
        self.terms = tuple(terms)
        self.names = tuple(t.head.field for t in self.terms)
        #: Heads in the model's output order (forcing targets are concatenated this way).
        self.layout_heads = tuple(sorted((t.head for t in self.terms), key=lambda h: h.start))
        t0 = self.terms[0]
        #: The schema-v1 objective (one unweighted mse/rmse term on complete outputs) runs the
        #: hand-written per-member MSE, bit-identical to the trainer before objectives existed.
        self.plain = len(self.terms) == 1 and t0.spec.loss in ("mse", "rmse") and (
            t0.spec.weight == 1.0
        )

    def member_losses(
        self, pred: Tensor, targets: Mapping[str, Tensor], masks: Mapping[str, Tensor]
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Total loss ``[member]`` (differentiable) and each term's loss ``[member]``."""
        per: dict[str, Tensor] = {}
        total: Tensor | None = None
        for t in self.terms:
            h = t.head
            p = _cols(pred, h)
            mask = masks.get(h.field)
            if self.plain and mask is None:
                mse = _MemberMSE.apply(p, targets[h.field])
                value = mse.sqrt() if t.spec.loss == "rmse" else mse
            else:
                values = t.kind.elementwise(p, targets[h.field], h, t.options)
                value = t.kind.finish(_masked_mean(values, mask))
            per[h.field] = value
            weighted = value if t.spec.weight == 1.0 else value * t.spec.weight
            total = weighted if total is None else total + weighted
        assert total is not None
        return total, per

    def sums(
        self, pred: Tensor, targets: Mapping[str, Tensor], masks: Mapping[str, Tensor]
    ) -> dict[str, tuple[Tensor, Tensor]]:
        """Per term: float64 sums of elementwise losses ``[member]`` and valid counts
        ``[member]``, to be added up over pieces of a split (no gradient)."""
        out = {}
        for t in self.terms:
            h = t.head
            p = _cols(pred, h)
            mask = masks.get(h.field)
            if self.plain and mask is None:  # as before objectives: in place, no temporaries
                err = p.sub_(targets[h.field]).square_()
                out[h.field] = _sums(err, None)
            else:
                out[h.field] = _sums(t.kind.elementwise(p, targets[h.field], h, t.options), mask)
        return out

    def finish(self, sums: Mapping[str, tuple[Tensor, Tensor]]) -> tuple[list[float], dict]:
        """Total and per-term losses ``[member]`` from summed :meth:`sums`."""
        per = {}
        total = None
        for t in self.terms:
            s, n = sums[t.head.field]
            value = t.kind.finish(s / n.clamp_min(1))
            per[t.head.field] = [float(v) for v in value]
            weighted = value if t.spec.weight == 1.0 else value * t.spec.weight
            total = weighted if total is None else total + weighted
        return [float(v) for v in total], per


def default_terms(layout: TaskLayout, continuous_loss: str) -> tuple[TermSpec, ...]:
    """One term per head: ``continuous_loss`` for continuous fields, :data:`DEFAULT_LOSS`
    (balanced ``bce``, ``cross_entropy``) for the others."""
    out = []
    for h in layout.heads:
        if h.kind == "continuous":
            out.append(TermSpec(h.field, continuous_loss))
        elif h.kind == "binary":
            out.append(TermSpec(h.field, "bce", pos_weight="balanced"))
        else:
            out.append(TermSpec(h.field, DEFAULT_LOSS[h.kind]))
    return tuple(out)


def build_objective(
    specs: Sequence[TermSpec],
    layout: TaskLayout,
    *,
    positive_fraction: Callable[[str], Sequence[float]] | None = None,
) -> Objective:
    """Bind term specs to the layout's heads, resolving ``pos_weight="balanced"``.

    Args:
        specs: Declared terms (every head needs exactly one).
        layout: The model's inputs and heads.
        positive_fraction: Field name -> fraction of positive values per channel in the
            training split (needed for ``"balanced"``).

    Raises:
        ConfigError: on a term for a field the model does not predict, a loss that does not fit
            the field's kind, a head without a term, or a duplicated term.
    """
    terms, seen = [], set()
    for spec in specs:
        head = layout.head(spec.field)
        kind = LOSSES[spec.loss]
        if kind.field_kind != head.kind:
            raise ConfigError(
                f"loss {spec.loss!r} is for {kind.field_kind} fields; {spec.field!r} is "
                f"{head.kind} (use {DEFAULT_LOSS.get(head.kind, 'mse or rmse')})"
            )
        if spec.field in seen:
            raise ConfigError(f"the objective has two terms for field {spec.field!r}")
        seen.add(spec.field)
        options: dict[str, Any] = {}
        if spec.pos_weight == "balanced":
            if positive_fraction is None:
                raise ConfigError("pos_weight 'balanced' needs the training data's statistics")
            frac = [min(max(float(p), 1e-6), 1 - 1e-6) for p in positive_fraction(spec.field)]
            options["pos_weight"] = [(1 - p) / p for p in frac]
        elif spec.pos_weight is not None:
            options["pos_weight"] = float(spec.pos_weight)
        terms.append(Term(spec, head, kind, options))
    missing = [h.field for h in layout.heads if h.field not in seen]
    if missing:
        raise ConfigError(f"the objective has no term for predicted field(s) {', '.join(missing)}")
    return Objective(terms)
