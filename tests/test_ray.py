"""Ray backend on a local Ray instance: same outcomes as the local process pool."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from neuroreduce.errors import ConfigError
from neuroreduce.execution import Backend, run_tasks

ray = pytest.importorskip("ray")

_SETUP: list[int] = []


def _square(x: int) -> int:
    if x < 0:
        raise ValueError(f"negative input {x}")
    return x * x


def _setup(arg: int) -> None:
    _SETUP.append(arg)


def _with_setup(x: int) -> tuple[int, list[int]]:
    return x + 1, list(_SETUP)


def _die_once(payload: tuple[str, str]) -> str:
    folder, key = payload
    marker = Path(folder) / key
    if not marker.exists():
        marker.write_text("died once")
        os.kill(os.getpid(), signal.SIGKILL)
    return f"{key} done"


def test_an_unreachable_cluster_is_a_one_line_error() -> None:
    # before the session's Ray fixture starts (ensure_ray reuses an initialised Ray)
    if ray.is_initialized():
        pytest.skip("Ray is already initialised in this session")
    with pytest.raises(ConfigError, match="cannot reach a Ray cluster at 'ray://127.0.0.1:1'"):
        list(run_tasks(_square, {"a": 1}, Backend(kind="ray", address="ray://127.0.0.1:1"),
                       progress=False))
    with pytest.raises(ConfigError, match="is not host:port"):
        list(run_tasks(_square, {"a": 1}, Backend(kind="ray", address="ray://head"),
                       progress=False))



@pytest.fixture(scope="session")
def ray_backend() -> Iterator[Backend]:
    """One local Ray instance (2 CPUs) for the whole session, shut down at the end."""
    backend = Backend(kind="ray", workers=2)
    from neuroreduce.execution import ensure_ray

    ensure_ray(backend)
    yield backend
    ray.shutdown()


@pytest.mark.slow
def test_ray_gives_the_same_outcomes_as_local(ray_backend: Backend) -> None:
    tasks = {f"t{i}": i - 1 for i in range(5)}
    local = {o.key: (o.ok, o.value, o.error) for o in
             run_tasks(_square, tasks, Backend(workers=2), progress=False)}
    remote = {o.key: (o.ok, o.value, o.error) for o in
              run_tasks(_square, tasks, ray_backend, progress=True, description="ray")}
    assert remote == local
    assert remote["t0"] == (False, None, "ValueError: negative input -1")


@pytest.mark.slow
def test_ray_runs_the_initializer_and_retries_killed_workers(
    ray_backend: Backend, tmp_path: Path
) -> None:
    got = {o.key: o for o in run_tasks(_with_setup, {"a": 1, "b": 2}, ray_backend,
                                       progress=False, initializer=_setup, init_arg=5)}
    assert {k: o.value for k, o in got.items()} == {"a": (2, [5]), "b": (3, [5])}
    tasks = {k: (str(tmp_path), k) for k in ("x", "y")}
    got = {o.key: o for o in run_tasks(_die_once, tasks, ray_backend, progress=False)}
    assert {k: (o.ok, o.value) for k, o in got.items()} == {
        "x": (True, "x done"), "y": (True, "y done")}


def _pid(_: object) -> int:
    return os.getpid()


@pytest.mark.slow
def test_isolated_tasks_get_worker_processes_of_their_own(ray_backend: Backend) -> None:
    shared = {o.value for o in run_tasks(_pid, {"a": 0, "b": 1}, ray_backend, progress=False)}
    isolated = {o.value for o in run_tasks(_pid, {"a": 0, "b": 1}, ray_backend, progress=False,
                                           initializer=_setup, init_arg=1, isolate=True)}
    assert shared and isolated and not shared & isolated
    assert os.getpid() not in shared | isolated


@pytest.mark.slow
def test_a_sweep_runs_its_trials_as_ray_tasks(ray_backend: Backend, tmp_path: Path) -> None:
    from neuroreduce.pipeline import simulate
    from neuroreduce.sweeps import parse_sweep, run_sweep

    data = tmp_path / "toy.h5"
    simulate("toy", n_stimuli=9, dt_out_ms=2.0, seed=0, out=data, progress=False)
    spec = parse_sweep({
        "dataset": {"path": str(data)},
        "search": {"hidden": [2, 3], "epochs": 2, "batch_size": 4},
        "sweep": {"trials": 2, "seeds_per_trial": 2, "pruner": "median"},
    })
    result = run_sweep(spec, tmp_path / "sweep", backend=ray_backend, progress=False)
    assert result.counts["complete"] + result.counts["pruned"] == 2 and not result.errors
    assert result.best is not None and np.isfinite(result.best["test_rmse"]["mean"])


@pytest.mark.slow
def test_ray_simulation_equals_a_serial_run(ray_backend: Backend) -> None:
    from test_parallel import SHORT, _currents

    from neuroreduce.simulators.celegans import CelegansConfig
    from neuroreduce.simulators.parallel import simulate_many

    config = CelegansConfig(scenario=SHORT)
    cur = _currents(3)
    remote = simulate_many(config, cur, dt_out_ms=0.5, backend=ray_backend, progress=False)
    serial = simulate_many(config, cur, dt_out_ms=0.5, workers=0, progress=False)
    np.testing.assert_array_equal(remote, serial)
    assert np.abs(serial - serial[:, :1]).max() > 1.0
