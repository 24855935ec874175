"""Parallel C. elegans simulation: equals a serial run, reports dead workers, checks inputs."""

from __future__ import annotations

import numpy as np
import pytest

from neuroreduce.errors import ConfigError, SimulationError
from neuroreduce.simulators import parallel
from neuroreduce.simulators.celegans import CelegansConfig
from neuroreduce.simulators.parallel import FAULT_KILL_ENV, simulate_many

SHORT = "fcm-50ms-test"  # registered in conftest.py: same cells as FCM, same cached network


def _currents(n_trials: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    t = np.arange(101) * 0.5
    cur = np.zeros((n_trials, t.size, 4))
    for i in range(n_trials):
        onset = rng.uniform(5, 25)
        cur[i, t >= onset] = rng.uniform(0.0, 0.1, size=4)
    return cur


@pytest.mark.slow
def test_two_workers_equal_a_serial_run() -> None:
    config = CelegansConfig(scenario=SHORT)
    cur = _currents(3)
    par = simulate_many(config, cur, dt_out_ms=0.5, workers=2, progress=False)
    ser = simulate_many(config, cur, dt_out_ms=0.5, workers=0, progress=True)
    assert par.shape == (3, 101, 4)
    np.testing.assert_array_equal(par, ser)
    assert np.abs(ser - ser[:, :1]).max() > 1.0


@pytest.mark.slow
def test_a_dead_worker_is_reported_with_the_lost_trials(monkeypatch) -> None:
    monkeypatch.setenv(FAULT_KILL_ENV, "1")
    with pytest.raises(SimulationError, match=r"worker process died.*lost: 1(-2)?;"):
        simulate_many(
            CelegansConfig(scenario=SHORT), _currents(3), dt_out_ms=0.5, workers=1, progress=False
        )


def test_inputs_are_checked_before_any_process_starts() -> None:
    config = CelegansConfig(scenario=SHORT)
    with pytest.raises(ConfigError, match="workers must be an integer >= 0"):
        simulate_many(config, _currents(1), dt_out_ms=0.5, workers=-1)
    with pytest.raises(ConfigError, match=r"shape \[trial, time, 4\]"):
        simulate_many(config, np.zeros((2, 101)), dt_out_ms=0.5)
    with pytest.raises(ConfigError, match="needs 101"):
        simulate_many(config, np.zeros((2, 50, 4)), dt_out_ms=0.5)
    assert simulate_many(config, np.zeros((0, 101, 4)), dt_out_ms=0.5).shape == (0, 101, 4)


def test_lost_trials_are_listed_as_ranges() -> None:
    assert parallel._ranges([0, 1, 2, 5, 7, 8]) == "0-2, 5, 7-8"
    assert parallel._ranges([4]) == "4"
    assert parallel._ranges([]) == ""
