"""One tiny end-to-end run per typed task, through the CLI and through the Python API, each with
a known answer and a deliberately wrong control that fails the same bound:

(a) spikes from spike-event inputs (BCE + MSE), scored by ROC AUC;
(b) per-step behaviour labels of several individuals, leave one individual out;
(c) masked regression where every individual records its own channel subset.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from neuroreduce.cli import app
from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.fields import Field, FieldSpec
from neuroreduce.datasets.io import load_dataset
from neuroreduce.datasets.pieces import apply_split, split_context
from neuroreduce.datasets.split_strategies import SplitSpec, n_folds
from neuroreduce.evaluation.field_results import evaluate_fields
from neuroreduce.evaluation.registry import compute_metric
from neuroreduce.simulators.toy_tasks import get_task_generator
from neuroreduce.training import (
    TermSpec,
    TrainConfig,
    build_objective,
    load_run,
    predict_fields,
    train,
)
from neuroreduce.training.assemble import Assembler

runner = CliRunner()

#: A trained model's test ROC AUC of spike bins must exceed this (chance: 0.5; the time-shifted
#: control, which keeps each trial's spike rate, reaches about 0.67).
AUC_BOUND = 0.8
#: Test accuracy of behaviour in an unseen individual (chance about 0.5, see the control).
ACCURACY_BOUND = 0.95
CHANCE_BOUND = 0.7


def invoke(*args: str) -> str:
    r = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


def results(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def time_shifted(y: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each trial's labels rolled in time by a random 50..450 samples (rates kept, timing not)."""
    rng = np.random.default_rng(seed)
    return np.stack([np.roll(t, int(rng.integers(50, 450)), axis=0) for t in y])


# ------------------------------------------------------------------------------ (a) spikes
def test_spikes_from_events_cli(tmp_path: Path) -> None:
    data, run = tmp_path / "sp.h5", tmp_path / "run"
    invoke("simulate", "toy_spikes", "--stimuli", 24, "--dt-out", 1, "-o", data)
    invoke("train", data, "-o", run, "--model", "gru", "--hidden", 8, "--seeds", 1,
           "--epochs", 15, "--lr", 0.02, "--batch-size", 8,
           "--objective", "spikes=bce:balanced*2", "--objective", "outputs=mse")
    out = invoke("evaluate", run)
    assert "spikes (binary)" in out
    fields = results(run)["fields"]
    assert fields["spikes"]["kind"] == "binary" and fields["outputs"]["kind"] == "continuous"
    test = fields["spikes"]["splits"]["test"]
    assert test["roc_auc"]["mean"] > AUC_BOUND
    assert fields["outputs"]["splits"]["test"]["explained_variance"]["mean"] > 0.3
    trained = load_run(run)
    assert [t.to_dict() for t in trained.config.objective] == [
        {"field": "spikes", "loss": "bce", "weight": 2.0, "pos_weight": "balanced"},
        {"field": "outputs", "loss": "mse", "weight": 1.0, "pos_weight": None}]
    assert {n for n, _ in trained.history[0].terms} == {"spikes", "outputs"}
    # control: the same predictions scored against time-shifted spikes fail the bound
    ds = load_dataset(data)
    idx = ds.indices("test")
    prob = predict_fields(trained, ds)["spikes"][0, idx]
    truth = ds.field("spikes").values[idx]
    assert compute_metric("roc_auc", truth, prob)[0] == pytest.approx(test["roc_auc"]["mean"])
    assert compute_metric("roc_auc", time_shifted(truth), prob)[0] < AUC_BOUND


def test_spikes_only_with_another_family_cli(tmp_path: Path) -> None:
    data, run = tmp_path / "sp.h5", tmp_path / "run"
    invoke("simulate", "toy_spikes", "--stimuli", 6, "--dt-out", 1, "-o", data)
    invoke("train", data, "-o", run, "--model", "tcn", "--hidden", 4, "--model-option",
           "layers=2", "--model-option", "first_kernel=9", "--seeds", 2, "--epochs", 1,
           "--target", "spikes")
    trained = load_run(run)
    assert dict(trained.config.model_options) == {"layers": 2, "first_kernel": 9}
    assert [h.field for h in trained.io.task.heads] == ["spikes"]
    assert trained.spec.n_inputs == 36 and trained.spec.n_outputs == 1  # 36 synapses, 1 logit
    invoke("evaluate", run)
    assert set(results(run)["fields"]) == {"spikes"}


def test_spikes_from_events_api(tmp_path: Path) -> None:
    ds = get_task_generator("toy_spikes").make(24, seed=0)
    cfg = TrainConfig(model="gru", hidden=8, seeds=(0,), epochs=15, learning_rate=0.02,
                      batch_size=8, targets=("spikes",),
                      objective=(TermSpec("spikes", "bce", pos_weight="balanced"),))
    result = train(ds, cfg, tmp_path / "run", progress=False)
    pred = predict_fields(result, ds)
    scores = evaluate_fields(ds, pred, result.layout)
    assert scores["spikes"]["splits"]["test"]["roc_auc"]["mean"] > AUC_BOUND
    idx = ds.indices("test")
    truth = ds.field("spikes").values[idx]
    assert compute_metric("roc_auc", time_shifted(truth), pred["spikes"][0, idx])[0] < AUC_BOUND


@pytest.mark.parametrize("dt_ms", [0.05, 0.25])
def test_toy_spikes_voltage_and_spikes_share_the_time_base(dt_ms: float) -> None:
    """Right after every spike bin the voltage is near its reset (-65 mV): below -62 mV one
    sample later. (Voltage sampled on another grid than the spikes fails this, as it did at
    dt 0.25 ms, where 0.2 ms voltage steps put 59 % of these samples above -60 mV.)"""
    ds = get_task_generator("toy_spikes").make(6, seed=1, dt_ms=dt_ms)
    assert ds.n_time == round(500 / dt_ms) + 1
    v, s = ds.outputs[..., 0], ds.field("spikes").values[..., 0]
    trial, k = np.nonzero(s[:, :-1])
    assert trial.size > 20
    assert (v[trial, k + 1] < -62.0).all()
    assert not (v[trial, np.maximum(k - 1, 0)] < -62.0).all()  # control: not true before


@pytest.mark.parametrize(("args", "message"), [
    (["--objective", "spikes=mse"], "loss 'mse' is for continuous fields; 'spikes' is binary"),
    (["--objective", "spikes"], "must look like FIELD=LOSS"),
    (["--objective", "spikes=bce:inf"], "pos_weight must be finite > 0"),
    (["--target", "soma"], "'soma' is not a target field"),
    (["--model", "tcn", "--model-option", "depth=2"], "model 'tcn' has no option(s) depth"),
    (["--model-option", "layers"], "must look like NAME=VALUE"),
    (["--split", "leave_groups_out:group=worm"], "cannot be split by group 'worm'"),
    (["--split", "time_segment:train_ms=100,fold=x"], "--split fold must be an integer"),
], ids=["loss kind", "no loss", "inf pos_weight", "unknown target", "unknown option",
        "option form", "unknown group", "fold"])
def test_bad_task_options_are_one_line_cli_errors(tmp_path: Path, args, message) -> None:
    data = tmp_path / "sp.h5"
    invoke("simulate", "toy_spikes", "--stimuli", 3, "-o", data)
    r = runner.invoke(app, ["train", str(data), "-o", str(tmp_path / "run"), "--epochs", "1",
                            *args])
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
    assert not (tmp_path / "run" / "model.safetensors").exists()


# ------------------------------------------------------------------------------ (b) behaviour
def test_behaviour_leave_one_individual_out_cli(tmp_path: Path) -> None:
    data, run = tmp_path / "b.h5", tmp_path / "run"
    invoke("simulate", "toy_behaviour", "--stimuli", 16, "-o", data)
    invoke("train", data, "-o", run, "--model", "gru", "--hidden", 8, "--seeds", 1,
           "--epochs", 10, "--lr", 0.02, "--batch-size", 8,
           "--split", "leave_groups_out:group=individual,fold=1")
    invoke("evaluate", run)
    test = results(run)["fields"]["behaviour"]["splits"]["test"]
    assert test["n_trials"] == 4 and test["accuracy"]["mean"] > ACCURACY_BOUND
    assert load_run(run).config.split == SplitSpec("leave_groups_out", {"group": "individual"},
                                                   fold=1)


def behaviour_config(fold: int) -> TrainConfig:
    return TrainConfig(model="gru", hidden=8, seeds=(0,), epochs=10, learning_rate=0.02,
                       batch_size=8,
                       split=SplitSpec("leave_groups_out", {"group": "individual"}, fold=fold))


def test_behaviour_every_fold_tests_one_unseen_individual_api(tmp_path: Path) -> None:
    ds = get_task_generator("toy_behaviour").make(16, seed=0)
    cfg = behaviour_config(0)
    assert n_folds(cfg.split, split_context(ds)) == 4
    held_out = []
    for fold in range(4):
        cfg = behaviour_config(fold)
        folded = apply_split(ds, cfg.split, seed=cfg.seeds[0])
        ind = folded.field("individual").values
        test_ind = set(ind[folded.indices("test")].tolist())
        assert len(test_ind) == 1 and not test_ind & set(ind[folded.indices("train")].tolist())
        assert not test_ind & set(ind[folded.indices("valid")].tolist())
        held_out += test_ind
        result = train(ds, cfg, tmp_path / f"fold{fold}", progress=False)
        scores = evaluate_fields(folded, predict_fields(result, folded), result.layout)
        assert scores["behaviour"]["splits"]["test"]["accuracy"]["mean"] > ACCURACY_BOUND, fold
    assert sorted(held_out) == [0, 1, 2, 3]


def test_behaviour_with_permuted_labels_is_near_chance_api(tmp_path: Path) -> None:
    """Control: the same run on labels of other trials cannot pass the accuracy bound."""
    ds = get_task_generator("toy_behaviour").make(16, seed=0)
    perm = np.random.default_rng(0).permutation(ds.n_trials)
    shuffled = replace(ds, fields=tuple(
        Field(f.spec, f.values[perm]) if f.name == "behaviour" else f for f in ds.fields))
    cfg = behaviour_config(1)
    result = train(shuffled, cfg, tmp_path / "run", progress=False)
    folded = apply_split(shuffled, cfg.split, seed=0)
    test = evaluate_fields(folded, predict_fields(result, folded), result.layout)[
        "behaviour"]["splits"]["test"]
    assert test["balanced_accuracy"]["mean"] < CHANCE_BOUND
    assert test["accuracy"]["mean"] < CHANCE_BOUND


# ------------------------------------------------------------------------------ (c) subsets
def unrecorded(ds: Dataset) -> np.ndarray:
    """bool [trial, time, channel]: activity values the trial's individual did not record."""
    f = ds.field("activity")
    av = f.availability[ds.field("individual").values]
    return np.broadcast_to(~av[:, None, :], f.values.shape)


def with_activity(ds: Dataset, values: np.ndarray) -> Dataset:
    return replace(ds, fields=tuple(
        Field(f.spec, values, f.availability) if f.name == "activity" else f for f in ds.fields))


def mean_baseline_rmse(ds: Dataset, trained, split: str = "test") -> float:
    """Test RMSE (same metric, same mask) of predicting each channel's training mean."""
    mean = np.asarray(trained.normalization.field_stats[0][1], np.float32)
    const = np.broadcast_to(mean, (1, ds.n_trials, ds.n_time, mean.size)).copy()
    layout = trained.layout if hasattr(trained, "layout") else trained.io.task
    scores = evaluate_fields(ds, {"activity": const}, layout)
    return scores["activity"]["splits"][split]["rmse"]["mean"]


def test_channel_subsets_cli(tmp_path: Path) -> None:
    data, run = tmp_path / "s.h5", tmp_path / "run"
    invoke("simulate", "toy_subsets", "--stimuli", 16, "-o", data)
    invoke("train", data, "-o", run, "--model", "gru", "--hidden", 8, "--seeds", 2,
           "--epochs", 15, "--lr", 0.02, "--batch-size", 4)
    invoke("evaluate", run)
    test = results(run)["fields"]["activity"]["splits"]["test"]
    trained = load_run(run)
    baseline = mean_baseline_rmse(load_dataset(data), trained)
    assert test["rmse"]["mean"] < 0.6 * baseline
    assert len(test["rmse"]["per_seed"]) == 2


def test_unrecorded_channels_never_enter_loss_or_metric_api(tmp_path: Path) -> None:
    ds = get_task_generator("toy_subsets").make(16, seed=0)
    hidden = unrecorded(ds)
    assert hidden.any() and (~hidden).any()
    values = np.array(ds.field("activity").values)
    changed = values.copy()
    changed[hidden] = 1000.0  # what an individual did not record: any value
    cfg = TrainConfig(model="gru", hidden=8, seeds=(0, 1), epochs=15, learning_rate=0.02,
                      batch_size=4)
    a = train(ds, cfg, tmp_path / "a", progress=False)
    b = train(with_activity(ds, changed), cfg, tmp_path / "b", progress=False)
    assert a.normalization == b.normalization and a.history == b.history
    pa, pb = predict_fields(a, ds)["activity"], predict_fields(b, ds)["activity"]
    np.testing.assert_array_equal(pa, pb)
    scores = evaluate_fields(ds, {"activity": pa}, a.layout)
    assert scores == evaluate_fields(with_activity(ds, changed), {"activity": pb}, b.layout)
    # the trained model beats predicting the training mean of every channel
    assert scores["activity"]["splits"]["test"]["rmse"]["mean"] < 0.6 * mean_baseline_rmse(ds, a)
    # predictions of unrecorded channels are scored nowhere ...
    wild = pa.copy()
    wild[:, hidden] = -1e6
    assert evaluate_fields(ds, {"activity": wild}, a.layout) == scores
    # ... and give no loss and no gradient
    assembler = Assembler(a.layout, a.normalization, ds)
    batch = assembler.assemble(ds)
    objective = build_objective([TermSpec("activity", "mse")], a.layout)
    pred = torch.zeros(1, ds.n_trials, ds.n_time, 6, requires_grad=True)
    masks = {k: v[None] for k, v in batch.masks.items()}
    targets = {k: v[None] for k, v in batch.targets.items()}
    loss, _ = objective.member_losses(pred, targets, masks)
    loss.sum().backward()
    assert (pred.grad[0][torch.from_numpy(hidden.copy())] == 0).all()
    moved = pred.detach().clone()
    moved[0][torch.from_numpy(hidden.copy())] = 1e3
    assert torch.equal(objective.member_losses(moved, targets, masks)[0], loss.detach())
    # control: a change of recorded values changes training and scores
    recorded = values.copy()
    recorded[~hidden & np.isfinite(values)] += 1.0
    c = train(with_activity(ds, recorded), cfg, tmp_path / "c", progress=False)
    assert c.normalization != a.normalization
    assert evaluate_fields(with_activity(ds, recorded), {"activity": pa}, a.layout) != scores


# ------------------------------------------------------------------------------ known gaps
def masked_copies(*, dense: bool) -> tuple[Dataset, Dataset]:
    """Two datasets equal except for values a mask field marks unknown (first 10 samples)."""
    rng = np.random.default_rng(0)
    u = rng.normal(size=(12, 30, 2)).astype(np.float32)
    y = (np.cumsum(u @ np.array([[0.5], [-0.3]], np.float32), axis=1) * 0.3).astype(np.float32)
    known = np.ones_like(y, bool)
    known[:, :10] = False
    wrong = y.copy()
    wrong[:, :10] = 100.0
    split = np.array([0] * 8 + [1] * 2 + [2] * 2)

    def make(values: np.ndarray) -> Dataset:
        target = "outputs" if dense else "act"
        extra = () if dense else (Field(FieldSpec("act", "target", "continuous", ("y",)),
                                        values),)
        outputs = values if dense else np.zeros((12, 30, 0), np.float32)
        return Dataset(u, outputs, 1.0, ("a", "b"), ("y",) if dense else (), split=split,
                       fields=(*extra, Field(FieldSpec("known", "mask", "binary", ("y",),
                                                       of=target), known)))

    return make(y), make(wrong)


def test_masked_dense_outputs_never_enter_training(tmp_path: Path) -> None:
    a, b = masked_copies(dense=True)
    cfg = TrainConfig(model="mlp", hidden=4, seeds=(0,), epochs=2, learning_rate=0.01)
    ra = train(a, cfg, tmp_path / "a", progress=False)
    rb = train(b, cfg, tmp_path / "b", progress=False)
    assert ra.best_valid_losses == rb.best_valid_losses


def test_masked_target_values_never_enter_normalization(tmp_path: Path) -> None:
    a, b = masked_copies(dense=False)
    cfg = TrainConfig(model="mlp", hidden=4, seeds=(0,), epochs=2, learning_rate=0.01)
    ra = train(a, cfg, tmp_path / "a", progress=False)
    rb = train(b, cfg, tmp_path / "b", progress=False)
    assert ra.normalization == rb.normalization
