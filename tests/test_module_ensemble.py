"""The generic seed ensemble: member k trains exactly as its family alone with seed k, the
returned model is the saved one, and an interrupted run resumes bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.fields import Field, FieldSpec
from neuroreduce.errors import CheckpointError
from neuroreduce.models.module_ensemble import ModuleEnsemble
from neuroreduce.models.registry import build_model
from neuroreduce.training import EpochReport, TrainConfig, load_run, predict_fields, train

OPTIONS = {
    "tcn": (("layers", 2), ("first_kernel", 5), ("kernel", 3)),
    "mlp": (("layers", 1), ("window", 4)),
}


def tiny(seed: int = 0, *, spikes: bool = False) -> Dataset:
    """12 trials x 30 samples of 2 inputs through a leaky integrator; 8/2/2 split. With
    ``spikes`` a binary target marks upward threshold crossings."""
    rng = np.random.default_rng(seed)
    u = np.repeat(rng.normal(size=(12, 6, 2)), 5, axis=1).astype(np.float32)
    y = np.zeros((12, 30, 1), np.float32)
    for t in range(1, 30):
        y[:, t] = 0.8 * y[:, t - 1] + u[:, t] @ np.array([[0.5], [-0.3]], np.float32)
    fields = ()
    if spikes:
        s = np.zeros_like(y)
        s[:, 1:] = (y[:, 1:] > 0.5) & (y[:, :-1] <= 0.5)
        fields = (Field(FieldSpec("sp", "target", "binary", ("s",)), s),)
    return Dataset(u, y, 1.0, ("a", "b"), ("y",), split=np.array([0] * 8 + [1] * 2 + [2] * 2),
                   fields=fields)


def config(model: str, seeds: tuple[int, ...], **kw) -> TrainConfig:
    return TrainConfig(model=model, hidden=5, seeds=seeds, epochs=kw.pop("epochs", 4),
                       batch_size=3, learning_rate=0.01, model_options=OPTIONS[model], **kw)


@pytest.mark.parametrize("model", ["tcn", "mlp"])
def test_member_k_equals_its_family_trained_alone(model: str, tmp_path: Path) -> None:
    ds = tiny()
    seeds = (3, 7)
    both = train(ds, config(model, seeds), tmp_path / "both", progress=False)
    assert isinstance(both.model, ModuleEnsemble)
    x = torch.from_numpy(both.normalization.normalize_inputs(ds.inputs))
    with torch.no_grad():
        ens = both.model.forward_shared(x)
    alone = {}
    for k, s in enumerate(seeds):
        one = train(ds, config(model, (s,)), tmp_path / f"alone{s}", progress=False)
        with torch.no_grad():
            alone[s] = one.model.forward_shared(x)[0]
        torch.testing.assert_close(ens[k], alone[s], rtol=0, atol=1e-6)
        assert both.best_epochs[k] == one.best_epochs[0]
        mine = [(r.epoch, r.train_loss, r.valid_loss) for r in both.history if r.member == k]
        theirs = [(r.epoch, r.train_loss, r.valid_loss) for r in one.history]
        np.testing.assert_allclose(mine, theirs, rtol=1e-6)
    # control: member 0 is not the model of the other seed
    assert (ens[0] - alone[seeds[1]]).abs().max() > 1e-3


def test_train_result_model_is_the_saved_model(tmp_path: Path) -> None:
    ds = tiny(spikes=True)
    result = train(ds, config("mlp", (0, 1)), tmp_path / "run", progress=False)
    assert [h.field for h in result.layout.heads] == ["outputs", "sp"]
    in_memory = predict_fields(result, ds)
    loaded = predict_fields(load_run(tmp_path / "run"), ds)
    assert set(in_memory) == {"outputs", "sp"}
    for name in in_memory:
        assert in_memory[name].shape == (2, ds.n_trials, ds.n_time, 1)
        np.testing.assert_array_equal(in_memory[name], loaded[name])
    assert ((in_memory["sp"] > 0) & (in_memory["sp"] < 1)).all()  # probabilities
    other = train(ds, config("mlp", (5, 6)), tmp_path / "other", progress=False)
    assert not np.allclose(predict_fields(other, ds)["outputs"], in_memory["outputs"])  # control


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


@pytest.mark.parametrize("model", ["tcn", "mlp"])
def test_resume_after_an_interruption_is_bit_exact(model: str, tmp_path: Path) -> None:
    ds = tiny()
    cfg = config(model, (1, 2), epochs=6, checkpoint_every=2)
    train(ds, cfg, tmp_path / "full", progress=False)

    def crash(report: EpochReport) -> None:
        if report.epoch == 3:  # last checkpoint at epoch 2: epoch 3 is redone
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(ds, cfg, tmp_path / "resumed", progress=False, on_epoch_end=crash)
    assert load_run(tmp_path / "resumed").epochs_done == 2
    seen: list[int] = []
    train(ds, cfg, tmp_path / "resumed", progress=False,
          on_epoch_end=lambda r: seen.append(r.epoch))
    assert seen == [3, 4, 5, 6]
    full, resumed = _weights(tmp_path / "full"), _weights(tmp_path / "resumed")
    assert full.keys() == resumed.keys()
    assert all(torch.equal(full[k], resumed[k]) for k in full)
    a, b = load_run(tmp_path / "full"), load_run(tmp_path / "resumed")
    assert [(r.epoch, r.member, r.train_loss, r.valid_loss) for r in a.history] == [
        (r.epoch, r.member, r.train_loss, r.valid_loss) for r in b.history]
    # control: another seed gives other weights, so the comparison above can fail
    train(ds, config(model, (1, 3), epochs=6), tmp_path / "other", progress=False)
    other = _weights(tmp_path / "other")
    assert not all(torch.equal(full[k], other[k]) for k in full)


# ------------------------------------------------------------------------------ the wrapper
def test_from_seeds_members_equal_lone_models_and_own_their_parameters() -> None:
    def build() -> torch.nn.Module:
        return build_model("mlp", n_inputs=2, n_outputs=1, hidden=4, options=dict(OPTIONS["mlp"]))

    ens = ModuleEnsemble.from_seeds(build, (4, 9))
    torch.manual_seed(9)
    lone = build()
    for (n1, p1), (n2, p2) in zip(ens.members[1].named_parameters(), lone.named_parameters(),
                                  strict=True):
        assert n1 == n2 and torch.equal(p1, p2)
    for name, owner in ens.parameter_owners().items():
        assert (owner == int(name.split(".")[1])).all()
    x = torch.randn(2, 3, 10, 2)
    with torch.no_grad():
        out = ens(x)
        assert torch.equal(out[1], lone(x[1]))
        assert not torch.equal(out[0], lone(x[0]))  # control: member 0 has seed 4's weights
        assert torch.equal(ens.forward_shared(x[0])[1], lone(x[0]))
    with pytest.raises(ValueError, match=r"\[member=2, batch, time, input\]; got \(3, 10, 2\)"):
        ens(x[0])
    states = [ens.member_state_dict(1), ens.member_state_dict(0)]
    ens.load_member_state_dicts(states)
    with torch.no_grad():
        assert torch.equal(ens(x)[0], lone(x[0]))
    with pytest.raises(CheckpointError, match="1 member weights for an ensemble of 2"):
        ens.load_member_state_dicts(states[:1])
    bad = {k: v[..., :1] for k, v in states[0].items()}
    with pytest.raises(CheckpointError, match="member weights do not fit"):
        ens.load_member_state_dicts([bad, bad])
