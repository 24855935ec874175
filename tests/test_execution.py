"""Execution backends: outcomes per key, one-line errors, worker death retried or reported."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from neuroreduce.errors import ConfigError
from neuroreduce.execution import Backend, TaskOutcome, run_tasks

_SETUP: list[int] = []


def _square(x: int) -> int:
    if x < 0:
        raise ValueError(f"negative input {x}\nsecond line")
    return x * x


def _setup(arg: int) -> None:
    _SETUP.append(arg)


def _pid_and_setup(_: object) -> tuple[int, list[int]]:
    return os.getpid(), list(_SETUP)


def _die_once(payload: tuple[str, str]) -> str:
    """Kill this worker on the first attempt (a marker file remembers it), then succeed."""
    folder, key = payload
    marker = Path(folder) / key
    if not marker.exists():
        marker.write_text("died once")
        os.kill(os.getpid(), signal.SIGKILL)
    return f"{key} done"


def _always_die(key: str) -> str:
    if key == "doomed":
        os.kill(os.getpid(), signal.SIGKILL)
    return key.upper()


def _collect(outcomes: object) -> dict[str, TaskOutcome]:
    result = {o.key: o for o in outcomes}  # type: ignore[attr-defined]
    return result


def test_inline_backend_keeps_order_and_reports_exceptions_in_one_line() -> None:
    outcomes = list(run_tasks(_square, {"a": 3, "b": -1, "c": 4}, Backend(), progress=False))
    assert [o.key for o in outcomes] == ["a", "b", "c"]
    assert outcomes[0] == TaskOutcome(key="a", ok=True, value=9)
    assert not outcomes[1].ok and outcomes[1].error == "ValueError: negative input -1"
    assert outcomes[2].value == 16


def test_process_pool_delivers_every_key_and_errors_are_not_retried() -> None:
    tasks = {f"t{i}": i - 1 for i in range(6)}
    got = _collect(run_tasks(_square, tasks, Backend(workers=2), progress=True,
                             description="squares"))
    assert set(got) == set(tasks)
    for key, x in tasks.items():
        if x < 0:
            assert not got[key].ok and got[key].attempts == 1
            assert got[key].error == f"ValueError: negative input {x}"
        else:
            assert got[key].ok and got[key].value == x * x and got[key].error is None


def test_initializer_runs_once_per_worker_process() -> None:
    got = _collect(run_tasks(_pid_and_setup, {str(i): i for i in range(6)},
                             Backend(workers=2), progress=False, initializer=_setup, init_arg=7))
    assert all(o.ok and o.value[1] == [7] for o in got.values())
    assert 1 <= len({o.value[0] for o in got.values()}) <= 2
    assert os.getpid() not in {o.value[0] for o in got.values()}


def test_isolate_runs_a_single_worker_in_a_child_process() -> None:
    (outcome,) = run_tasks(_pid_and_setup, {"x": 0}, Backend(workers=1), progress=False,
                           isolate=True)
    assert outcome.ok and outcome.value[0] != os.getpid()


@pytest.mark.slow
def test_a_worker_killed_mid_task_is_replaced_and_the_task_rerun(tmp_path: Path) -> None:
    tasks = {k: (str(tmp_path), k) for k in ("a", "b", "c", "d")}
    got = _collect(run_tasks(_die_once, tasks, Backend(workers=2, max_retries=1),
                             progress=False))
    assert {k: o.value for k, o in got.items()} == {k: f"{k} done" for k in tasks}
    assert all(o.ok and o.attempts == 2 for o in got.values())


@pytest.mark.slow
def test_a_task_that_always_kills_its_worker_is_reported_and_others_finish() -> None:
    tasks = {k: k for k in ("a", "doomed", "b", "c", "d")}
    got = _collect(run_tasks(_always_die, tasks, Backend(workers=2, max_retries=2),
                             progress=False))
    assert set(got) == set(tasks)
    doomed = got.pop("doomed")
    assert not doomed.ok and doomed.attempts == 3
    assert doomed.error is not None and "signal 9" in doomed.error and "\n" not in doomed.error
    assert {k: o.value for k, o in got.items()} == {k: k.upper() for k in got}
    assert all(o.attempts == 1 for o in got.values())
    assert multiprocessing.active_children() == []


def _nested(n: int) -> list[int]:
    """A task that runs tasks of its own in worker processes."""
    return [o.value for o in run_tasks(_square, {str(i): i for i in range(n)},
                                       Backend(workers=1), progress=False, isolate=True)]


@pytest.mark.slow
def test_a_task_may_start_workers_of_its_own() -> None:
    (outcome,) = run_tasks(_nested, {"a": 3}, Backend(workers=2), progress=False)
    assert outcome.ok and outcome.value == [0, 1, 4], outcome.error


def test_stopping_early_shuts_the_workers_down() -> None:
    outcomes = run_tasks(_square, {str(i): i for i in range(8)}, Backend(workers=2),
                         progress=False)
    first = next(outcomes)
    assert first.ok
    outcomes.close()
    assert multiprocessing.active_children() == []


def test_bad_backends_are_one_line_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown backend 'dask'; use one of local, ray"):
        Backend(kind="dask")
    with pytest.raises(ConfigError, match="workers must be an integer >= 1"):
        Backend(workers=0)
    with pytest.raises(ConfigError, match="max_retries"):
        Backend(max_retries=-1)
    with pytest.raises(ConfigError, match="only used with the ray backend"):
        Backend(address="auto")
    with pytest.raises(ConfigError, match="distinct"):
        list(run_tasks(_square, {1: 1, "1": 2}, Backend(), progress=False))
    assert list(run_tasks(_square, {}, Backend(workers=2), progress=False)) == []
