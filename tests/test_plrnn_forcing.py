"""Generalised teacher forcing (Hess et al. 2023) of the dendPLRNN, next to sparse forcing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.errors import ConfigError
from neuroreduce.models import plrnn
from neuroreduce.training import TrainConfig, train

N_IN, N_OUT = 2, 3


def _model(observation: str = "linear") -> plrnn.PLRNN:
    torch.manual_seed(0)
    config = plrnn.PLRNNConfig(hidden=6, bases=3, observation=observation)
    return plrnn.build(config, n_inputs=N_IN, n_outputs=N_OUT)


@pytest.mark.parametrize("observation", ["linear", "identity"])
def test_alpha_zero_is_free_running_and_alpha_one_is_full_forcing(observation: str) -> None:
    model = _model(observation)
    x, y = torch.randn(2, 25, N_IN), torch.randn(2, 25, N_OUT)
    with torch.no_grad():
        free = model(x)
        full = model(x, forcing=(y, 1))
        torch.testing.assert_close(model(x, forcing=(y, 1, 0.0)), free, rtol=0, atol=0)
        torch.testing.assert_close(model(x, forcing=(y, 1, 1.0)), full, rtol=0, atol=0)
        half = model(x, forcing=(y, 1, 0.5))
    # control: an intermediate alpha is neither (the equalities above can fail)
    assert (half - free).abs().max() > 1e-3
    assert (half - full).abs().max() > 1e-3
    with torch.no_grad():  # the interval applies as for sparse forcing
        torch.testing.assert_close(model(x, forcing=(y, 4, 1.0)), model(x, forcing=(y, 4)),
                                   rtol=0, atol=0)


def test_generalised_forcing_stays_causal() -> None:
    model = _model()
    x, y = torch.randn(1, 20, N_IN), torch.randn(1, 20, N_OUT)
    late = y.clone()
    late[:, 9:] += 1.0
    with torch.no_grad():
        a, b = model(x, forcing=(y, 1, 0.3)), model(x, forcing=(late, 1, 0.3))
    assert torch.equal(a[:, :10], b[:, :10])  # target 9 enters only after y_9 is made
    assert not torch.equal(a[:, 10:], b[:, 10:])


def test_bad_alpha_and_forcing_options_are_one_line_errors() -> None:
    model = _model()
    x, y = torch.randn(1, 5, N_IN), torch.randn(1, 5, N_OUT)
    with pytest.raises(ConfigError, match="alpha"):
        model(x, forcing=(y, 1, 1.5))
    with pytest.raises(ConfigError, match="forcing"):
        TrainConfig(model="plrnn", forcing="partial")
    with pytest.raises(ConfigError, match="gtf_alpha"):
        TrainConfig(model="plrnn", forcing="generalised", gtf_alpha=-0.1)


def test_config_dict_unchanged_by_default_and_records_generalised_forcing() -> None:
    plain = TrainConfig(model="gru", hidden=4)
    assert not {"forcing", "gtf_alpha", "gtf_alpha_end"} & set(plain.to_dict())
    gtf = TrainConfig(model="plrnn", forcing="generalised", gtf_alpha=0.6, gtf_alpha_end=0.2,
                      epochs=5)
    d = gtf.to_dict()
    assert (d["forcing"], d["gtf_alpha"], d["gtf_alpha_end"]) == ("generalised", 0.6, 0.2)
    assert TrainConfig.from_dict(d) == gtf
    assert gtf.forcing_schedule(0) == (1, 0.6)
    assert gtf.forcing_schedule(4) == (1, pytest.approx(0.2))
    assert TrainConfig(model="plrnn").forcing_schedule(0) is None
    assert TrainConfig(model="plrnn", teacher_forcing_interval=7).forcing_schedule(3) == (7, None)


def _oscillator_dataset(seed: int = 0) -> Dataset:
    """A driven, noisy Van der Pol oscillator observed through 1 channel (dt 0.05 time units)."""
    rng = np.random.default_rng(seed)
    n, t_len, dt = 12, 160, 0.05
    u = rng.normal(0, 0.5, (n, t_len, 1)).astype(np.float32)
    y = np.zeros((n, t_len, 1), np.float32)
    for k in range(n):
        a, b = rng.normal(0, 1.5, 2)
        for t in range(t_len):
            a, b = a + dt * b, b + dt * (1.5 * (1 - a * a) * b - a + u[k, t, 0])
            y[k, t, 0] = a
    split = np.array([0] * 8 + [1] * 2 + [2] * 2, np.int8)
    return Dataset(inputs=u, outputs=y, dt_ms=1.0, input_names=("u",), output_names=("x",),
                   split=split)


def test_training_with_generalised_forcing_lowers_the_loss() -> None:
    torch.set_num_threads(1)
    data = _oscillator_dataset()
    config = TrainConfig(model="plrnn", hidden=8, epochs=25, batch_size=8, learning_rate=0.01,
                         loss="mse", forcing="generalised", gtf_alpha=0.8, gtf_alpha_end=0.2,
                         model_options=(("bases", 2),))
    result = train(data, config, None, progress=False)
    valid = [r.valid_loss for r in result.history]
    assert min(valid) < 0.6 * valid[0], valid
    free = train(data, TrainConfig(**{**config.__dict__, "forcing": "sparse"}), None,
                 progress=False)
    # control: the forcing reaches the model (free-running training follows another path)
    assert [r.train_loss for r in free.history] != [r.train_loss for r in result.history]
