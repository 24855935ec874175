"""Run many independent tasks on an execution backend: this process, worker processes, or Ray.

One function, :func:`run_tasks`, serves simulations, experiment grid cells and sweep trials::

    for outcome in run_tasks(fn, {"a": 1, "b": 2}, Backend(kind="local", workers=2)):
        if outcome.ok:
            save(outcome.key, outcome.value)      # persist at once: an interrupt loses only
        else:                                     # the tasks in flight
            print(outcome.key, outcome.error)

Outcomes are yielded as each task finishes. An exception inside ``fn`` is reported as
``ok=False`` with a one-line error (and not retried: it would fail again). A worker process that
dies mid-task (killed, segfault, out of memory) is replaced and only *its* task is re-run, up to
``Backend.max_retries`` times; everything already finished is kept. ``KeyboardInterrupt`` stops
the workers and propagates.

Local workers are ``spawn`` processes (torch and NEURON are not fork-safe) with one thread per
numeric library; each has a pipe of its own, so the parent knows exactly which task a dead worker
held, and the parent blocks in ``multiprocessing.connection.wait`` (it does not compete for a
core). An optional ``initializer(init_arg)`` runs once per worker process before its first task
(locally: as soon as the worker starts, overlapping the parent's own set-up; on Ray: once per
Ray worker process and distinct argument) -- e.g. to build a NEURON network once per worker.

Ray: a local Ray instance with ``workers`` CPUs is started if Ray is not initialised yet
(``address=None``), or an existing cluster is joined (``"auto"``, ``"ray://head:10001"``). Each
task is a Ray task with ``num_cpus=1`` and ``max_retries=Backend.max_retries`` (Ray re-runs a task
whose worker died). ``fn`` and its module must be importable on the cluster's nodes.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import multiprocessing
import multiprocessing.util  # registers its exit handler before ours (ours runs first)
import os
import pickle
import signal
import socket
import sys
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from neuroreduce.errors import ConfigError, DependencyError

BACKENDS: tuple[str, ...] = ("local", "ray")
_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class Backend:
    """Where tasks run.

    Attributes:
        kind: ``"local"`` (worker processes on this machine) or ``"ray"``.
        workers: Concurrent tasks. Local with 1 worker runs the tasks one after another in this
            process (unless ``run_tasks(isolate=True)``); for Ray it is the CPU count of a
            local Ray instance (ignored when joining a cluster).
        address: Ray only: an existing cluster (``"auto"``, ``"ray://host:10001"``); ``None``
            starts a local Ray instance.
        max_retries: Times a task whose worker process died is re-run before it is reported.
    """

    kind: str = "local"
    workers: int = 1
    address: str | None = None
    max_retries: int = 1

    def __post_init__(self) -> None:
        if self.kind not in BACKENDS:
            raise ConfigError(f"unknown backend {self.kind!r}; use one of {', '.join(BACKENDS)}")
        if not isinstance(self.workers, int) or isinstance(self.workers, bool) or self.workers < 1:
            raise ConfigError(f"workers must be an integer >= 1, got {self.workers!r}")
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigError(f"max_retries must be an integer >= 0, got {self.max_retries!r}")
        if self.address is not None and self.kind != "ray":
            raise ConfigError(
                f"an address ({self.address!r}) is only used with the ray backend; "
                "pass --backend ray or drop --address"
            )


@dataclass(frozen=True)
class TaskOutcome:
    """The result of one task.

    Attributes:
        key: The task's key in the mapping given to :func:`run_tasks`.
        ok: Whether ``fn`` returned normally.
        value: ``fn``'s return value when ``ok``.
        error: One line (``"ExcType: message"`` or ``"worker died (signal 9) ..."``) when not ok.
        attempts: Times the task was started (more than 1 after a worker died). Ray does not
            say how often a successful task was retried: there it is 1 unless the task failed.
    """

    key: str
    ok: bool
    value: Any = None
    error: str | None = None
    attempts: int = 1


def run_tasks(
    fn: Callable[[Any], Any],
    tasks: Mapping[str, Any],
    backend: Backend,
    *,
    progress: bool = True,
    description: str = "tasks",
    initializer: Callable[[Any], None] | None = None,
    init_arg: Any = None,
    isolate: bool = False,
) -> Iterator[TaskOutcome]:
    """Run ``fn(payload)`` for every task and yield each outcome as it finishes.

    Args:
        fn: A module-level (picklable) function of one argument.
        tasks: Task key -> picklable payload.
        backend: Where to run them.
        progress: Show a rich progress bar.
        description: Label of the progress bar.
        initializer: Module-level function run once per worker process before its tasks, with
            ``init_arg`` (e.g. build a simulator). Its exception fails that worker's tasks.
        init_arg: Picklable argument of ``initializer``.
        isolate: For code that must not share a process with other work (e.g. NEURON, which
            loads one compiled model per process): locally, run in a child process even with
            1 worker; on Ray, use worker processes reserved for this ``(initializer,
            init_arg)`` (a runtime environment of their own).

    Yields:
        One :class:`TaskOutcome` per task, in order of completion (in key order when run in
        this process).

    Raises:
        ConfigError: Ray address unreachable or invalid.
        DependencyError: Ray missing or failing to start.
    """
    keys = [str(k) for k in tasks]
    if len(set(keys)) != len(keys):
        raise ConfigError("task keys must be distinct strings")
    payloads = {str(k): v for k, v in tasks.items()}
    if not payloads:
        return
    with progress_bar(progress, len(payloads), description) as advance:
        if backend.kind == "ray":
            runner = _run_ray(fn, payloads, backend, initializer, init_arg, isolate)
        elif backend.workers == 1 and not isolate:
            runner = _run_inline(fn, payloads, initializer, init_arg)
        else:
            runner = _run_pool(fn, payloads, backend, initializer, init_arg)
        for outcome in runner:
            advance()
            yield outcome


# ------------------------------------------------------------------------------- common pieces
def one_line(exc: BaseException) -> str:
    """``"ExcType: first line of the message"`` (no traceback)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


_INITIALISED: dict[bytes, str | None] = {}


def _initialise(initializer: Callable[[Any], None] | None, init_arg: Any) -> str | None:
    """Run ``initializer(init_arg)`` once per process and argument; its error as one line."""
    if initializer is None:
        return None
    tag = hashlib.sha256(pickle.dumps((initializer, init_arg))).digest()
    if tag not in _INITIALISED:
        try:
            initializer(init_arg)
            _INITIALISED[tag] = None
        except Exception as exc:  # noqa: BLE001 - reported with every task of this worker
            _INITIALISED[tag] = f"worker set-up failed: {one_line(exc)}"
    return _INITIALISED[tag]


def _call(
    fn: Callable[[Any], Any],
    payload: Any,
    initializer: Callable[[Any], None] | None = None,
    init_arg: Any = None,
) -> tuple[bool, Any, str | None]:
    """Run one task, turning its exception into a one-line error."""
    failed = _initialise(initializer, init_arg)
    if failed is not None:
        return False, None, failed
    _one_thread()
    try:
        return True, fn(payload), None
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return False, None, one_line(exc)


def _one_thread() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def _run_inline(
    fn: Callable[[Any], Any],
    payloads: dict[str, Any],
    initializer: Callable[[Any], None] | None,
    init_arg: Any,
) -> Iterator[TaskOutcome]:
    failed = None
    if initializer is not None:
        try:
            initializer(init_arg)
        except Exception as exc:  # noqa: BLE001
            failed = f"set-up failed: {one_line(exc)}"
    for key, payload in payloads.items():
        if failed is not None:
            yield TaskOutcome(key=key, ok=False, error=failed)
            continue
        try:
            value = fn(payload)
        except Exception as exc:  # noqa: BLE001
            yield TaskOutcome(key=key, ok=False, error=one_line(exc))
        else:
            yield TaskOutcome(key=key, ok=True, value=value)


# ------------------------------------------------------------------------------ local processes
def _worker_main(
    conn: Connection, initializer: Callable[[Any], None] | None, init_arg: Any
) -> None:
    """Worker loop: set-up once, then ``(key, fn, payload)`` in, ``(key, ok, value, error)`` out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    _exit_with_parent()
    for name in _THREAD_ENV:
        os.environ[name] = "1"
    _initialise(initializer, init_arg)
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        key, fn, payload = message
        ok, value, error = _call(fn, payload, initializer, init_arg)
        try:
            conn.send((key, ok, value, error))
        except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable return value
            conn.send((key, False, None, f"result could not be sent back: {one_line(exc)}"))


def _exit_with_parent() -> None:
    """End this worker as soon as its parent is gone (killed with ``kill -9``, say): an orphan
    would go on training and writing (a cell's ``cell.json``) into a folder that a re-run now
    owns. Linux: the kernel kills us with the parent (``PR_SET_PDEATHSIG``); elsewhere, and as
    a fallback, a daemon thread exits within 0.2 s of the parent's death (re-parenting)."""
    import threading
    import time

    parent = os.getppid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, name="neuroreduce-parent-watch", daemon=True).start()


_LIVE_WORKERS: weakref.WeakSet[_Worker] = weakref.WeakSet()


@atexit.register
def _stop_live_workers() -> None:
    """At exit, stop workers of a run that was never finished or closed (else multiprocessing
    would wait for these non-daemon processes forever)."""
    for worker in list(_LIVE_WORKERS):
        worker.stop()


class _Worker:
    def __init__(self, context: Any, initializer: Any, init_arg: Any) -> None:
        self.conn, child = context.Pipe(duplex=True)
        # not a daemon, so a task may start workers of its own (e.g. a grid cell that
        # simulates); a worker whose parent dies exits at once (_exit_with_parent)
        self.process = context.Process(
            target=_worker_main, args=(child, initializer, init_arg), daemon=False
        )
        self.process.start()
        child.close()
        self.key: str | None = None
        _LIVE_WORKERS.add(self)

    def stop(self) -> None:
        _LIVE_WORKERS.discard(self)
        with contextlib.suppress(OSError, ValueError):
            self.conn.close()
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=5)
        if self.process.is_alive():  # pragma: no cover - terminate ignored
            self.process.kill()
            self.process.join()


def _death(process: Any) -> str:
    code = process.exitcode
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {-code}, {signal.Signals(-code).name}"
        return f"signal {-code}"
    return f"exit status {code}"


def _run_pool(
    fn: Callable[[Any], Any],
    payloads: dict[str, Any],
    backend: Backend,
    initializer: Callable[[Any], None] | None,
    init_arg: Any,
) -> Iterator[TaskOutcome]:
    context = multiprocessing.get_context("spawn")
    pending: deque[str] = deque(payloads)
    started: dict[str, int] = dict.fromkeys(payloads, 0)
    workers = [
        _Worker(context, initializer, init_arg)
        for _ in range(min(backend.workers, len(payloads)))
    ]
    remaining = len(payloads)
    try:
        while remaining:
            for index, worker in enumerate(workers):
                if worker.key is None and pending and not worker.process.is_alive():
                    worker.stop()  # died while idle: replace it before handing it a task
                    workers[index] = worker = _Worker(context, initializer, init_arg)
                if worker.key is None and pending:
                    key = pending.popleft()
                    started[key] += 1
                    worker.key = key
                    try:
                        worker.conn.send((key, fn, payloads[key]))
                    except (BrokenPipeError, ConnectionResetError, EOFError):
                        pass  # the worker is dead; its sentinel reports it below
                    except Exception as exc:  # noqa: BLE001 - unpicklable payload or fn
                        worker.key = None
                        remaining -= 1
                        yield TaskOutcome(key=key, ok=False, attempts=started[key],
                                          error=f"task could not be sent: {one_line(exc)}")
            busy = [w for w in workers if w.key is not None]
            if not busy:
                continue
            ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
            for worker in workers:
                if worker.key is None:
                    continue
                key = worker.key
                message = None
                if worker.conn in ready or worker.process.sentinel in ready:
                    with contextlib.suppress(EOFError, OSError):
                        if worker.conn.poll():
                            message = worker.conn.recv()
                if message is not None:
                    worker.key = None
                    remaining -= 1
                    _, ok, value, error = message
                    yield TaskOutcome(key=key, ok=ok, value=value, error=error,
                                      attempts=started[key])
                elif worker.process.sentinel in ready or not worker.process.is_alive():
                    worker.process.join(timeout=1)
                    cause = _death(worker.process)
                    worker.key = None
                    worker.stop()
                    if started[key] <= backend.max_retries:
                        pending.appendleft(key)
                    else:
                        remaining -= 1
                        yield TaskOutcome(
                            key=key, ok=False, attempts=started[key],
                            error=f"worker died ({cause}) in each of {started[key]} attempt(s)",
                        )
                    # replaced by the loop above when there is work left for it
    finally:
        for worker in workers:
            with contextlib.suppress(Exception):
                worker.conn.send(None)
        for worker in workers:
            worker.stop()


# -------------------------------------------------------------------------------------------- ray
def _ray_call(
    fn: Callable[[Any], Any], payload: Any, initializer: Any, init_arg: Any
) -> tuple[bool, Any, str | None]:
    return _call(fn, payload, initializer, init_arg)


def ensure_ray(backend: Backend) -> Any:
    """Import Ray and connect to (or start) the instance ``backend`` names; return the module.

    Raises:
        DependencyError: Ray is not installed or cannot start.
        ConfigError: The cluster at ``backend.address`` cannot be reached.
    """
    try:
        import ray
    except ImportError as exc:
        raise DependencyError(
            f"the ray backend needs Ray ({exc}); install it with `pip install 'ray>=2.40'`"
        ) from exc
    if ray.is_initialized():
        return ray
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                               "configure_logging": False}
    if backend.address is None:  # a local instance: its workers import what this process can
        options["num_cpus"] = backend.workers
        paths = [p for p in (*sys.path, os.environ.get("PYTHONPATH", "")) if p and os.path.isdir(p)]
        options["runtime_env"] = {"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}}
    else:
        _check_reachable(backend.address)
        options["address"] = backend.address
    try:
        ray.init(**options)
    except ConnectionError as exc:
        raise ConfigError(
            f"cannot reach a Ray cluster at {backend.address!r} ({one_line(exc)}); check "
            "--address (e.g. ray://head:10001) or leave it out for a local Ray instance"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - Ray raises many kinds of start-up errors
        where = f"at {backend.address!r}" if backend.address else "locally"
        raise DependencyError(f"Ray could not start {where}: {one_line(exc)}") from exc
    return ray


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast (Ray itself retries for minutes) when ``host:port`` refuses connections."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(
            f"Ray address {address!r} is not host:port; use e.g. ray://head:10001 (Ray client), "
            "head:6379 (on a cluster node) or auto"
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ConfigError(
            f"cannot reach a Ray cluster at {address!r} ({exc.strerror or exc}); check --address "
            "(e.g. ray://head:10001) or leave it out for a local Ray instance"
        ) from exc


def _run_ray(
    fn: Callable[[Any], Any],
    payloads: dict[str, Any],
    backend: Backend,
    initializer: Callable[[Any], None] | None,
    init_arg: Any,
    isolate: bool,
) -> Iterator[TaskOutcome]:
    ray = ensure_ray(backend)
    from ray.exceptions import (
        NodeDiedError,
        OutOfMemoryError,
        RayError,
        RayTaskError,
        WorkerCrashedError,
    )

    died = (NodeDiedError, OutOfMemoryError, WorkerCrashedError)

    options: dict[str, Any] = {"num_cpus": 1, "max_retries": backend.max_retries,
                               "retry_exceptions": False}
    if isolate:  # Ray keeps separate worker processes per runtime environment
        tag = hashlib.sha256(pickle.dumps((initializer, init_arg))).hexdigest()[:16]
        env = dict(ray.get_runtime_context().runtime_env.get("env_vars") or {})
        options["runtime_env"] = {"env_vars": {**env, "NEUROREDUCE_ISOLATE": tag}}
    remote = ray.remote(**options)(_ray_call)
    fn_ref = ray.put(fn)  # top-level object refs are resolved by Ray before the call
    init_ref = ray.put(init_arg)
    refs = {remote.remote(fn_ref, payload, initializer, init_ref): key
            for key, payload in payloads.items()}
    waiting = list(refs)
    try:
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            for ref in done:
                key = refs[ref]
                try:
                    ok, value, error = ray.get(ref)
                except died as exc:  # a worker died in each of 1 + max_retries attempts
                    yield TaskOutcome(
                        key=key, ok=False, attempts=backend.max_retries + 1,
                        error=f"worker died ({type(exc).__name__}) in each of "
                              f"{backend.max_retries + 1} attempt(s)",
                    )
                except RayError as exc:  # e.g. fn or payload could not be loaded on the worker
                    cause = exc.cause if isinstance(exc, RayTaskError) and exc.cause else exc
                    yield TaskOutcome(key=key, ok=False, error=one_line(cause))
                else:
                    yield TaskOutcome(key=key, ok=ok, value=value, error=error)
    finally:
        for ref in waiting:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)


@contextlib.contextmanager
def progress_bar(show: bool, total: int, description: str) -> Iterator[Callable[[], None]]:
    """A rich progress bar over ``total`` items; yields the function that advances it by one."""
    if not show:
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda: bar.advance(task)

