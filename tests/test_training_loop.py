"""The optional parts of the training loop, each kept per member (training/loop.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neuroreduce.errors import ConfigError
from neuroreduce.training import TrainConfig, load_run, predict, train
from neuroreduce.training import loop as parts
from neuroreduce.training.assemble import Assembled


@pytest.fixture(scope="module")
def toy():
    from neuroreduce.pipeline import simulate

    return simulate("toy", n_stimuli=12, dt_out_ms=2.0, progress=False)


def test_member_clipping_scales_each_member_to_its_own_norm() -> None:
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.zeros(6))
    a.grad = torch.tensor([3.0, 4.0, 0.0, 0.3, 0.4, 0.0])  # member 0 norm 5, member 1 norm 0.5
    owners = {"a": torch.tensor([0, 0, 0, 1, 1, -1])}
    parts.clip_members({"a": a}, owners, 2, max_norm=1.0)
    np.testing.assert_allclose(a.grad[:3].norm().item(), 1.0, rtol=1e-6)  # clipped
    np.testing.assert_allclose(a.grad[3:5].numpy(), [0.3, 0.4], rtol=1e-6)  # under: untouched
    # equal to torch's own clipping of a lone model's gradient
    lone = torch.nn.Parameter(torch.zeros(3))
    lone.grad = torch.tensor([3.0, 4.0, 0.0])
    torch.nn.utils.clip_grad_norm_([lone], 1.0)
    np.testing.assert_allclose(a.grad[:3].numpy(), lone.grad.numpy(), rtol=1e-5)


def test_window_batch_cuts_each_sequence_and_masks_the_burn_in() -> None:
    x = torch.arange(2 * 3 * 10, dtype=torch.float32).view(2, 3, 10, 1)
    b = Assembled(x, {"outputs": x.clone()}, {})
    starts = np.array([[0, 2, 5], [1, 1, 3]])
    out = parts.window_batch(b, starts, window=4, burn_in=1)
    assert out.x.shape == (2, 3, 4, 1)
    for m in range(2):
        for k in range(3):
            s = starts[m, k]
            assert torch.equal(out.x[m, k, :, 0], x[m, k, s : s + 4, 0])
    mask = out.masks["outputs"]
    assert not mask[:, :, 0].any() and mask[:, :, 1:].all()
    with pytest.raises(ConfigError, match="exceeds"):
        parts.draw_starts([np.random.default_rng(0)], 2, n_time=5, window=6)


def test_cosine_schedule_follows_the_formula() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=1.0)
    for epoch, want in ((0, 1.0), (5, 0.5), (10, 0.0)):
        parts.set_epoch_lr(opt, schedule="cosine", base_lr=1.0, epoch=epoch, epochs=10,
                           scales=[1.0])
        assert opt.param_groups[0]["lr"] == pytest.approx(want, abs=1e-12)
    for epoch, want in ((0, 1.0), (5, 0.505), (10, 0.01)):  # annealed to a floor of 0.01
        parts.set_epoch_lr(opt, schedule="cosine", base_lr=1.0, epoch=epoch, epochs=10,
                           scales=[1.0], min_lr=0.01)
        assert opt.param_groups[0]["lr"] == pytest.approx(want, abs=1e-12)


def test_betas_reach_the_optimizer_and_change_the_run(tmp_path, toy) -> None:
    cfg = dict(model="mlp", hidden=4, epochs=3, batch_size=4, learning_rate=0.01,
               optimizer="adamw", weight_decay=0.01)
    blog = TrainConfig(betas=[0.9, 0.99], min_learning_rate=1e-5, schedule="cosine", **cfg)
    assert blog.betas == (0.9, 0.99)
    assert TrainConfig.from_dict(blog.to_dict()) == blog
    assert "betas" not in TrainConfig(**cfg).to_dict()  # default: identity of older runs kept
    a = train(toy, blog, tmp_path / "blog", progress=False)
    state = torch.load(tmp_path / "blog" / "checkpoint" / "last.pt", weights_only=True)
    assert tuple(state["optimizer"]["param_groups"][0]["betas"]) == (0.9, 0.99)
    b = train(toy, TrainConfig(schedule="cosine", min_learning_rate=1e-5, **cfg),
              tmp_path / "default", progress=False)
    assert not np.allclose(predict(a, toy.inputs), predict(b, toy.inputs))  # control


@pytest.mark.parametrize("options", [
    {"optimizer": "adamw", "weight_decay": 0.01, "schedule": "cosine"},
    {"schedule": "plateau", "plateau_patience": 1, "plateau_factor": 0.5, "clip_norm": 0.5},
    {"window_ms": 40.0, "burn_in_ms": 10.0},
])
def test_members_still_equal_training_alone(tmp_path, toy, options) -> None:
    cfg = dict(model="tcn", hidden=4, model_options=(("layers", 2), ("first_kernel", 5)),
               epochs=4, batch_size=4, learning_rate=0.01, **options)
    both = train(toy, TrainConfig(seeds=(1, 2), **cfg), tmp_path / "both", progress=False)
    alone = train(toy, TrainConfig(seeds=(2,), **cfg), tmp_path / "alone", progress=False)
    p_both, p_alone = predict(both, toy.inputs), predict(alone, toy.inputs)
    np.testing.assert_allclose(p_both[1], p_alone[0], atol=1e-5)
    assert np.abs(p_both[0] - p_alone[0]).max() > 1e-4  # control: the other member differs


def test_windows_per_trial_multiplies_the_steps_of_an_epoch(tmp_path, toy, monkeypatch) -> None:
    cfg = dict(model="mlp", hidden=4, epochs=2, batch_size=4, learning_rate=0.01,
               window_ms=40.0, burn_in_ms=10.0)
    windows = []  # windows per training step
    real = parts.window_batch
    monkeypatch.setattr(parts, "window_batch",
                        lambda b, starts, **kw: windows.append(starts.shape[1]) or real(
                            b, starts, **kw))
    one = train(toy, TrainConfig(**cfg), tmp_path / "one", progress=False)
    n_one = sum(windows)
    assert n_one == 2 * np.count_nonzero(toy.split == 0)  # each trial once per epoch
    three = train(toy, TrainConfig(windows_per_trial=3, **cfg), tmp_path / "three",
                  progress=False)
    assert sum(windows) - n_one == 3 * n_one  # three passes over the trials per epoch
    assert not np.allclose(predict(one, toy.inputs), predict(three, toy.inputs))
    assert "windows_per_trial" not in TrainConfig(**cfg).to_dict()  # identity of older runs
    with pytest.raises(ConfigError, match="windows_per_trial needs window_ms"):
        TrainConfig(model="mlp", windows_per_trial=2)


def test_plateau_lowers_a_members_rate_after_patience(tmp_path, toy) -> None:
    cfg = TrainConfig(model="mlp", hidden=4, seeds=(0, 1), epochs=6, batch_size=4,
                      learning_rate=0.5, schedule="plateau", plateau_patience=1,
                      plateau_factor=0.5)
    result = train(toy, cfg, tmp_path / "r", progress=False)
    state = torch.load(tmp_path / "r" / "checkpoint" / "last.pt", weights_only=True)
    scales = state["lr_scale"]
    assert len(scales) == 2 and all(s in (0.5 ** k for k in range(7)) for s in scales)
    assert min(scales) < 1.0  # with lr 0.5 some member stalls
    assert all(math.isfinite(v) for v in result.best_valid_losses)


def test_plateau_with_a_packed_rnn_ensemble_is_refused(tmp_path, toy) -> None:
    cfg = TrainConfig(model="gru", hidden=4, seeds=(0, 1), epochs=2, schedule="plateau")
    with pytest.raises(ConfigError, match="plateau"):
        train(toy, cfg, tmp_path / "r", progress=False)


def test_teacher_forcing_needs_a_family_that_has_it(tmp_path, toy) -> None:
    with pytest.raises(ConfigError, match="no teacher forcing"):
        train(toy, TrainConfig(model="tcn", hidden=4, epochs=1, teacher_forcing_interval=5),
              tmp_path / "a", progress=False)
    result = train(toy, TrainConfig(model="plrnn", hidden=8, epochs=3, batch_size=4,
                                    learning_rate=0.01, teacher_forcing_interval=5),
                   tmp_path / "b", progress=False)
    assert all(math.isfinite(r.valid_loss) for r in result.history)


def test_warmup_runs_from_rest_and_reloads_identically(tmp_path, toy) -> None:
    cfg = TrainConfig(hidden=4, seeds=(0, 1), epochs=3, batch_size=4, warmup_ms=20.0)
    result = train(toy, cfg, tmp_path / "w", progress=False)
    assert result.model.steps == 10  # 20 ms at 2 ms
    np.testing.assert_array_equal(predict(result, toy.inputs),
                                  predict(load_run(tmp_path / "w"), toy.inputs))
    zero = train(toy, TrainConfig(hidden=4, seeds=(0, 1), epochs=3, batch_size=4),
                 tmp_path / "z", progress=False)
    assert not np.allclose(predict(zero, toy.inputs), predict(result, toy.inputs))


@pytest.mark.parametrize("bad, message", [
    ({"optimizer": "sgd"}, "optimizer 'sgd' is unknown"),
    ({"schedule": "step"}, "schedule 'step' is unknown"),
    ({"weight_decay": 0.1}, "weight_decay needs optimizer 'adamw'"),
    ({"burn_in_ms": 5.0}, "burn_in_ms needs window_ms"),
    ({"window_ms": 10.0, "burn_in_ms": 10.0}, "must be shorter than window_ms"),
    ({"clip_norm": -1.0}, "clip_norm must be a number > 0"),
    ({"plateau_factor": 1.5}, "plateau_factor must be a number in"),
    ({"warmup_ms": 10.0, "teacher_forcing_interval": 3}, "cannot be combined"),
    ({"betas": (0.9, 1.0)}, "betas must be two numbers in"),
    ({"betas": (0.9,)}, "betas must be two numbers in"),
    ({"min_learning_rate": 0.5, "learning_rate": 0.1}, "min_learning_rate must be a number"),
])
def test_bad_loop_settings_are_one_line_errors(tmp_path, toy, bad, message) -> None:
    with pytest.raises(ConfigError, match=message):
        cfg = TrainConfig(hidden=2, epochs=1, **bad)
        train(toy, cfg, tmp_path / "r", progress=False)


def test_training_in_memory_writes_nothing_and_equals_a_run(tmp_path, toy, monkeypatch) -> None:
    cfg = TrainConfig(hidden=4, seeds=(0, 1), epochs=3, batch_size=4)
    monkeypatch.chdir(tmp_path)
    memory = train(toy, cfg, None, progress=False)
    assert memory.run_dir is None and list(tmp_path.iterdir()) == []
    on_disk = train(toy, cfg, tmp_path / "r", progress=False)
    np.testing.assert_array_equal(predict(memory, toy.inputs), predict(on_disk, toy.inputs))


def test_export_refuses_warmup_and_typed_runs_in_one_line(tmp_path, toy) -> None:
    from neuroreduce.export import export
    from neuroreduce.simulators.toy_tasks import get_task_generator

    train(toy, TrainConfig(hidden=2, epochs=1, warmup_ms=10.0), tmp_path / "w", progress=False)
    with pytest.raises(ConfigError, match="warm-up"):
        export(tmp_path / "w", tmp_path / "w.pt", fmt="torchscript")
    spikes = get_task_generator("toy_spikes").make(6, seed=0, dt_ms=2.0)
    train(spikes, TrainConfig(hidden=2, epochs=1), tmp_path / "s", progress=False)
    with pytest.raises(ConfigError, match="typed fields"):
        export(tmp_path / "s", tmp_path / "s.pt", fmt="torchscript")
    train(toy, TrainConfig(hidden=2, epochs=1), tmp_path / "p", progress=False)
    assert export(tmp_path / "p", tmp_path / "p.pt", fmt="torchscript").is_file()  # control
