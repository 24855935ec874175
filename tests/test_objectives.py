"""Objectives: the plain fast path is bit-exact, masked terms equal hand computations, BCE and
cross-entropy equal torch's references, bad term specs are one-line ConfigErrors, and split
losses summed over pieces equal one pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.fields import Field, FieldSpec
from neuroreduce.errors import ConfigError
from neuroreduce.training import Normalization, TaskLayout, TermSpec, build_objective
from neuroreduce.training.assemble import Assembler
from neuroreduce.training.objectives import member_losses

M, B, T = 3, 4, 7  # members, batch, time


def layout(*specs: FieldSpec) -> TaskLayout:
    return TaskLayout.from_specs(specs)


OUT = FieldSpec("outputs", "target", "continuous", ("a", "b"))
SP = FieldSpec("sp", "target", "binary", ("s0", "s1"))
LAB = FieldSpec("lab", "label", "categorical", ("l0", "l1"), classes=("x", "y", "z"),
                ignore_label=-1)
TYPED = layout(OUT, SP, LAB)  # heads: outputs [0, 2), sp [2, 4), lab [4, 10)


# ------------------------------------------------------------------------------ plain path
@pytest.mark.parametrize("loss", ["mse", "rmse"])
def test_plain_objective_is_bit_exact_member_losses(loss: str) -> None:
    obj = build_objective([TermSpec("outputs", loss)], layout(OUT))
    assert obj.plain
    pred = torch.randn(M, B, T, 2)
    target = torch.randn(1, B, T, 2)
    p1, p2, p3 = (pred.clone().requires_grad_(True) for _ in range(3))
    total, per = obj.member_losses(p1, {"outputs": target}, {})
    ref = member_losses(p2, target, loss)
    assert torch.equal(total, ref) and torch.equal(per["outputs"], ref)
    total.sum().backward()
    ref.sum().backward()
    assert torch.equal(p1.grad, p2.grad)
    # and both equal plain autograd (the fast path's documented promise)
    auto = (p3 - target).square().mean(dim=(1, 2, 3))
    auto = auto.sqrt() if loss == "rmse" else auto
    auto.sum().backward()
    assert torch.equal(ref, auto.detach()) and torch.equal(p2.grad, p3.grad)
    # control: a weighted term leaves the fast path and its loss is not the plain one
    weighted = build_objective([TermSpec("outputs", loss, weight=2.0)], layout(OUT))
    assert not weighted.plain
    assert not torch.equal(weighted.member_losses(pred, {"outputs": target}, {})[0], ref.detach())


# ------------------------------------------------------------------------------ masked mse
def masked_dataset() -> Dataset:
    """A continuous target ``act`` with NaN (missing) values and a mask field hiding more."""
    rng = np.random.default_rng(0)
    n, t = 5, 6
    y = rng.normal(2.0, 3.0, (n, t, 2)).astype(np.float32)
    y[rng.random(y.shape) < 0.2] = np.nan
    known = rng.random((n, t, 2)) < 0.8
    return Dataset(
        rng.normal(size=(n, t, 1)), np.zeros((n, t, 0)), 1.0, ("u",), (), split=np.zeros(n),
        fields=(Field(FieldSpec("act", "target", "continuous", ("a0", "a1")), y),
                Field(FieldSpec("known", "mask", "binary", ("a0", "a1"), of="act"), known)),
    )


def test_masked_mse_counts_only_valid_values_and_nan_never_reaches_a_gradient() -> None:
    ds = masked_dataset()
    lay = TaskLayout.from_specs(ds.field_specs)
    norm = Normalization.fit(ds, trials=np.arange(ds.n_trials)).with_fields(
        ds, ["act"], np.arange(ds.n_trials))
    a = Assembler(lay, norm, ds).assemble(ds)
    target, mask = a.targets["act"], a.masks["act"]
    assert torch.isfinite(target).all()
    raw = np.asarray(ds.field("act").values)
    valid = np.isfinite(raw) & np.asarray(ds.field("known").values)
    np.testing.assert_array_equal(mask.numpy(), valid)
    obj = build_objective([TermSpec("act", "mse")], lay)
    pred = torch.randn(M, ds.n_trials, ds.n_time, 2, dtype=torch.float64)
    pred.requires_grad_(True)
    total, _ = obj.member_losses(pred, {"act": target[None]}, {"act": mask[None]})
    # hand computation in float64 from the raw values: z-score, keep valid values only
    mean, std = (np.asarray(v) for v in norm.field_stats[0][1:])
    z = (raw.astype(np.float64) - mean) / std
    hand = [np.mean((pred[k].detach().numpy() - z)[valid] ** 2) for k in range(M)]
    np.testing.assert_allclose(total.detach().numpy(), hand, rtol=1e-6)
    total.sum().backward()
    assert torch.isfinite(pred.grad).all()
    assert (pred.grad[:, ~mask] == 0).all()  # missing values get no gradient at all
    # control: the unmasked mean (zeros in place of the missing values) is another number
    unmasked = [np.mean((pred[k].detach().numpy() - np.where(valid, z, 0.0)) ** 2)
                for k in range(M)]
    assert not np.allclose(unmasked, hand, rtol=1e-3)


# ------------------------------------------------------------------------------ bce
def test_bce_with_pos_weight_equals_torch_per_member() -> None:
    pred = torch.randn(M, B, T, TYPED.n_outputs)
    sp = (torch.rand(1, B, T, 2) < 0.3).float()
    pw = [3.0, 0.5]
    obj = build_objective([TermSpec("outputs", "mse"), TermSpec("sp", "bce", pos_weight=2.0),
                           TermSpec("lab", "cross_entropy")], TYPED)
    ours = obj.terms[1]
    assert ours.options["pos_weight"] == 2.0
    targets = {"outputs": torch.zeros(1, B, T, 2), "sp": sp,
               "lab": torch.zeros(1, B, T, 2, dtype=torch.long)}
    _, per = obj.member_losses(pred, targets, {})
    logits = pred[..., 2:4]
    ref = torch.stack([F.binary_cross_entropy_with_logits(logits[k], sp[0],
                                                          pos_weight=torch.tensor(2.0))
                       for k in range(M)])
    torch.testing.assert_close(per["sp"], ref, rtol=1e-6, atol=0)
    # per-channel pos_weight (what "balanced" resolves to)
    per_channel = build_objective(
        [TermSpec("outputs", "mse"), TermSpec("sp", "bce", pos_weight="balanced"),
         TermSpec("lab", "cross_entropy")], TYPED,
        positive_fraction=lambda field: [1 / (1 + w) for w in pw])
    np.testing.assert_allclose(per_channel.terms[1].options["pos_weight"], pw, rtol=1e-12)
    _, per2 = per_channel.member_losses(pred, targets, {})
    ref2 = torch.stack([F.binary_cross_entropy_with_logits(logits[k], sp[0],
                                                           pos_weight=torch.tensor(pw))
                        for k in range(M)])
    torch.testing.assert_close(per2["sp"], ref2, rtol=1e-6, atol=0)
    plain = torch.stack([F.binary_cross_entropy_with_logits(logits[k], sp[0]) for k in range(M)])
    assert not torch.allclose(per["sp"], plain, rtol=1e-3)  # control: pos_weight matters


def test_balanced_pos_weight_is_negatives_over_positives_of_valid_values() -> None:
    n, t = 4, 25  # 100 values per channel
    sp = np.zeros((n, t, 2), np.float32)
    sp.reshape(-1, 2)[:10, 0] = 1  # channel 0: 10 positives of 100
    sp.reshape(-1, 2)[:20, 1] = 1  # channel 1: 20 positives ...
    sp.reshape(-1, 2)[-50:, 1] = np.nan  # ... of 50 recorded values
    ds = Dataset(np.zeros((n, t, 1)), np.zeros((n, t, 0)), 1.0, ("u",), (),
                 fields=(Field(FieldSpec("sp", "target", "binary", ("s0", "s1")), sp),))
    lay = TaskLayout.from_specs(ds.field_specs)
    norm = Normalization.fit(ds, trials=np.arange(n))
    frac = Assembler(lay, norm, ds).positive_fraction(ds, "sp")
    np.testing.assert_allclose(frac, [0.1, 0.4], rtol=1e-12)
    obj = build_objective([TermSpec("sp", "bce", pos_weight="balanced")], lay,
                          positive_fraction=lambda field: Assembler(lay, norm, ds)
                          .positive_fraction(ds, field))
    np.testing.assert_allclose(obj.terms[0].options["pos_weight"], [90 / 10, 30 / 20], rtol=1e-9)
    # control: counting the missing values as negatives would give 80/20 = 4 for channel 1
    assert not np.isclose(obj.terms[0].options["pos_weight"][1], 80 / 20)


# ------------------------------------------------------------------------------ cross-entropy
def test_cross_entropy_skips_the_ignore_label_exactly() -> None:
    torch.manual_seed(1)
    pred = torch.randn(M, B, T, TYPED.n_outputs, dtype=torch.float64)
    lab = torch.randint(0, 3, (1, B, T, 2))
    lab[torch.rand(lab.shape) < 0.3] = -1
    mask = lab != -1
    obj = build_objective([TermSpec("outputs", "mse"), TermSpec("sp", "bce"),
                           TermSpec("lab", "cross_entropy")], TYPED)
    targets = {"outputs": torch.zeros(1, B, T, 2), "sp": torch.zeros(1, B, T, 2),
               "lab": torch.where(mask, lab, 0)}  # as the Assembler gives them
    _, per = obj.member_losses(pred, targets, {"lab": mask})
    logits = pred[..., 4:10].reshape(M, B, T, 2, 3)
    ref = torch.stack([F.cross_entropy(logits[k].reshape(-1, 3), lab[0].reshape(-1),
                                       ignore_index=-1) for k in range(M)])
    torch.testing.assert_close(per["lab"], ref, rtol=1e-12, atol=0)
    # control: without the mask the ignored steps count as class 0 and the loss changes
    _, unmasked = obj.member_losses(pred, targets, {})
    assert not torch.allclose(unmasked["lab"], ref, rtol=1e-3)


def test_assembler_masks_ignored_labels() -> None:
    n, t = 3, 4
    lab = np.array([0, 1, -1, 2] * n, np.int16).reshape(n, t, 1)
    ds = Dataset(np.zeros((n, t, 1)), np.zeros((n, t, 0)), 1.0, ("u",), (), fields=(
        Field(FieldSpec("lab", "label", "categorical", ("l",), classes=("a", "b", "c"),
                        ignore_label=-1), lab),))
    lay = TaskLayout.from_specs(ds.field_specs)
    a = Assembler(lay, Normalization.fit(ds, trials=np.arange(n)), ds).assemble(ds)
    assert a.targets["lab"].dtype == torch.int64
    np.testing.assert_array_equal(a.masks["lab"].numpy(), lab != -1)
    np.testing.assert_array_equal(a.targets["lab"].numpy(), np.where(lab == -1, 0, lab))


# ------------------------------------------------------------------------------ bad specs
ALL_TERMS = [TermSpec("outputs", "mse"), TermSpec("sp", "bce"), TermSpec("lab", "cross_entropy")]


@pytest.mark.parametrize(("make", "message"), [
    (lambda: [TermSpec("sp", "mse"), *ALL_TERMS[::2]], r"loss 'mse' is for continuous fields; "
                                                       r"'sp' is binary \(use bce\)"),
    (lambda: [TermSpec("outputs", "cross_entropy"), *ALL_TERMS[1:]], r"'outputs' is continuous"),
    (lambda: [TermSpec("lab", "bce"), *ALL_TERMS[:2]], r"loss 'bce' is for binary fields"),
    (lambda: ALL_TERMS[:2], r"no term for predicted field\(s\) lab"),
    (lambda: [*ALL_TERMS, TermSpec("sp", "bce", weight=2.0)], r"two terms for field 'sp'"),
    (lambda: [*ALL_TERMS, TermSpec("nope", "mse")], r"predicts no field 'nope'"),
    (lambda: [TermSpec("outputs", "huber")], r"unknown loss 'huber'"),
    (lambda: [TermSpec("outputs", "mse", weight=0)], r"weight must be > 0, got 0"),
    (lambda: [TermSpec("outputs", "mse", weight=-1.0)], r"weight must be > 0"),
    (lambda: [TermSpec("outputs", "mse", weight=float("nan"))], r"weight must be > 0"),
    (lambda: [TermSpec("outputs", "mse", weight=float("inf"))], r"weight must be > 0"),
    (lambda: [TermSpec("outputs", "mse", weight=True)], r"weight must be > 0"),
    (lambda: [TermSpec("outputs", "mse", pos_weight=2.0)], r"pos_weight is for bce only"),
    (lambda: [TermSpec("sp", "bce", pos_weight=0)], r"pos_weight must be finite > 0"),
    (lambda: [TermSpec("sp", "bce", pos_weight=float("inf"))], r"pos_weight must be finite > 0"),
    (lambda: [TermSpec("sp", "bce", pos_weight="Balanced")], r"or 'balanced', got 'Balanced'"),
    (lambda: [ALL_TERMS[0], TermSpec("sp", "bce", pos_weight="balanced"), ALL_TERMS[2]],
     r"'balanced' needs the training data's statistics"),
    (lambda: [TermSpec.from_dict({"field": "sp"})], r"needs 'field' and 'loss'"),
    (lambda: [TermSpec.from_dict({"field": "sp", "loss": "bce", "pos": 1})],
     r"unknown objective term key\(s\) pos"),
], ids=["mse on binary", "ce on continuous", "bce on label", "missing term", "duplicate term",
        "unknown field", "unknown loss", "weight 0", "weight < 0", "weight nan", "weight inf",
        "weight bool", "pos_weight on mse", "pos_weight 0", "pos_weight inf",
        "pos_weight text", "balanced without data", "term without loss", "unknown term key"])
def test_bad_term_specs_are_one_line_config_errors(make, message) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        build_objective(make(), TYPED)
    assert "\n" not in str(err.value)


def test_valid_specs_build() -> None:  # the control of the bad-spec cases above
    obj = build_objective([TermSpec("lab", "cross_entropy", weight=0.5),
                           TermSpec("sp", "bce", pos_weight=3), TermSpec("outputs", "rmse")],
                          TYPED)
    assert obj.names == ("lab", "sp", "outputs") and not obj.plain


# ------------------------------------------------------------------------------ pieces
@pytest.mark.parametrize("plain", [False, True])
def test_split_losses_summed_over_pieces_equal_one_pass(plain: bool) -> None:
    torch.manual_seed(2)
    n = 11
    if plain:
        lay, terms = layout(OUT), [TermSpec("outputs", "rmse")]
        targets = {"outputs": torch.randn(n, T, 2)}
        masks: dict[str, torch.Tensor] = {}
    else:
        lay, terms = TYPED, [TermSpec("outputs", "rmse", weight=0.5),
                             TermSpec("sp", "bce", pos_weight=2.0),
                             TermSpec("lab", "cross_entropy")]
        lab = torch.randint(-1, 3, (n, T, 2))
        out_mask = torch.rand(n, T, 2) < 0.7
        targets = {"outputs": torch.randn(n, T, 2) * out_mask,
                   "sp": (torch.rand(n, T, 2) < 0.2).float(), "lab": lab.clamp_min(0)}
        masks = {"outputs": out_mask, "lab": lab != -1}
    obj = build_objective(terms, lay)
    assert obj.plain == plain
    pred = torch.randn(M, n, T, lay.n_outputs)
    whole_total, whole_per = obj.finish(obj.sums(pred.clone(), targets, masks))
    summed: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    means = []
    for start in range(0, n, 4):  # pieces of 4, 4, 3 trials
        part = slice(start, start + 4)
        piece_t = {k: v[part] for k, v in targets.items()}
        piece_m = {k: v[part] for k, v in masks.items()}
        for name, (s, c) in obj.sums(pred[:, part].clone(), piece_t, piece_m).items():
            old = summed.get(name)
            summed[name] = (s, c) if old is None else (old[0] + s, old[1] + c)
        means.append(obj.finish(obj.sums(pred[:, part].clone(), piece_t, piece_m))[0])
    total, per = obj.finish(summed)  # each piece's sum is a float32 reduction: 1e-6 relative
    np.testing.assert_allclose(total, whole_total, rtol=1e-6)
    for name in per:
        np.testing.assert_allclose(per[name], whole_per[name], rtol=1e-6)
    # one differentiable pass over all trials gives the same losses (float32 reductions)
    direct, _ = obj.member_losses(pred, {k: v[None] for k, v in targets.items()},
                                  {k: v[None] for k, v in masks.items()})
    np.testing.assert_allclose(direct.numpy(), whole_total, rtol=1e-5)
    # control: averaging the pieces' losses (unequal pieces, rmse) is not the split's loss
    assert not np.allclose(np.mean(means, axis=0), whole_total, rtol=1e-4)


# ------------------------------------------------------------------------------ layout
def test_layout_round_trip_and_bad_names() -> None:
    assert TaskLayout.from_dict(TYPED.to_dict()) == TYPED
    assert [(h.field, h.start, h.stop) for h in TYPED.heads] == [
        ("outputs", 0, 2), ("sp", 2, 4), ("lab", 4, 10)]
    specs = (FieldSpec("inputs", "input", "continuous", ("u",)), OUT, SP, LAB)
    with pytest.raises(ConfigError, match="target field\\(s\\) named more than once: sp"):
        TaskLayout.from_specs(specs, targets=["sp", "sp"])
    with pytest.raises(ConfigError, match="'lab' is not a input field"):
        TaskLayout.from_specs(specs, inputs=["lab"])
    with pytest.raises(ConfigError, match="'inputs' is not a target field of the dataset; its "
                                          "target fields: outputs, sp, lab"):
        TaskLayout.from_specs(specs, targets=["inputs"])
    with pytest.raises(ConfigError, match="no target or label field"):
        TaskLayout.from_specs(specs, targets=[])
    only = TaskLayout.from_specs(specs, targets=["lab", "sp"])  # control: a valid choice
    assert [(h.field, h.start) for h in only.heads] == [("lab", 0), ("sp", 6)]
