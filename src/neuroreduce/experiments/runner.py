"""Run a declared experiment: datasets -> grid cells (parallel, resumable) -> results -> report.

:func:`run_experiment` materialises the experiment's datasets (simulated once, cached by spec
hash in ``data_dir``), trains and evaluates every grid cell through
:func:`neuroreduce.execution.run_tasks` (one cell = one seed ensemble, see
:mod:`neuroreduce.experiments.cells`), writes the results table and provenance, then runs the
analyses and the HTML report. Output folder::

    experiment.toml   the file as run            resolved.json  spec, datasets, versions, git
    cells/<key>/      one run folder per cell    results.json/.csv  one row per cell
    run.json          times, backend, failures   analysis/, report/index.html

Resume: a cell whose ``cell.json`` exists and matches the resolved cell (training config,
inputs, dataset content hash) is skipped; a cell interrupted mid-way resumes from its training
checkpoint. A finished cell whose *training* settings changed in the file is an error naming the
cells and the changed fields (results are never silently overwritten: use a new output folder
or delete those cell folders); when only the evaluation changed (extra datasets, metrics) the
cell is re-evaluated without retraining. Cells no longer in the file are left alone and left
out of the table.
"""

from __future__ import annotations

import json
import math
import platform
import socket
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from neuroreduce._io import write_json_atomic, write_text_atomic
from neuroreduce.errors import CheckpointError, ConfigError, NeuroreduceError
from neuroreduce.execution import Backend, run_tasks
from neuroreduce.experiments import cells as cellmod
from neuroreduce.experiments.spec import ExperimentSpec, load_experiment
from neuroreduce.experiments.table import (  # noqa: F401  (re-exported)
    LEGACY_COLUMNS,
    csv_text,
    results_document,
    results_table,
    with_folds,
)
from neuroreduce.locks import folder_lock, other_files

RESOLVED_JSON = "resolved.json"
RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
RUN_JSON = "run.json"
SUITE_JSON = "suite.json"
EXPERIMENT_TOML = "experiment.toml"
CELLS_DIR = "cells"
SPLITS: tuple[str, ...] = ("train", "valid", "test")


class CellsFailedError(NeuroreduceError):
    """Some grid cells (or analyses) failed; the others finished and their files were written.

    Attributes:
        out_dir: The experiment (or suite) output folder.
        failures: ``{"experiment/cell key": one-line error}``.
    """

    def __init__(self, out_dir: Path, failures: dict[str, str]) -> None:
        self.out_dir = out_dir
        self.failures = dict(failures)
        listed = "; ".join(f"{k} ({v})" for k, v in failures.items())
        super().__init__(f"{len(failures)} failed in {out_dir}: {listed}; the other cells are "
                         "kept, fix the cause and re-run the same command to retry only these")


@dataclass(frozen=True)
class _DatasetInfo:
    path: Path
    content_hash: str
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dt_ms: float
    n_trials: int
    n_time: int
    field_specs: tuple[Any, ...] = ()
    folds: dict[str, int] | None = None  # split (JSON, no fold) -> folds on this dataset


def default_output_dir(path: str | Path, spec: ExperimentSpec | None = None) -> Path:
    """Where ``experiment run FILE`` writes without ``-o`` (relative to the current folder).

    ``runs/<folder of FILE>/<experiment name>`` for an experiment, ``runs/<suite name>`` for a
    suite (its members then land in ``runs/<suite name>/<member name>``), e.g.
    ``experiments/barbulescu2023/exp1.toml`` -> ``runs/barbulescu2023/exp1``.
    """
    spec = spec if spec is not None else load_experiment(path)
    if spec.is_suite:
        return Path("runs") / spec.name
    folder = Path(path).resolve().parent.name or "experiments"
    return Path("runs") / folder / spec.name


def run_experiment(
    path_or_spec: str | Path | ExperimentSpec,
    out_dir: str | Path,
    *,
    backend: Backend = Backend(),  # noqa: B008 (frozen, immutable)
    resume: bool = True,
    progress: bool = True,
) -> Path:
    """Run a declared experiment (or every experiment of a suite) into ``out_dir``.

    Args:
        path_or_spec: An experiment/suite file or a loaded :class:`ExperimentSpec`.
        out_dir: Output folder (a suite writes each member into ``out_dir/<name>``).
        backend: Where simulations and grid cells run (default: this process, one at a time).
        resume: Continue in a folder that holds an earlier (possibly interrupted) run of the
            same experiment, skipping finished cells; False refuses a non-empty folder.
        progress: Show progress bars.

    Returns:
        ``out_dir``.

    Raises:
        ConfigError: malformed experiment, or datasets that do not fit the grid.
        CheckpointError: ``out_dir`` holds another experiment, stale cells, or ``resume=False``.
        CellsFailedError: after everything else finished, if some cells or analyses failed.
    """
    spec = path_or_spec if isinstance(path_or_spec, ExperimentSpec) else load_experiment(
        path_or_spec)
    out = Path(out_dir)
    run = _run_suite if spec.is_suite else _run_one
    with folder_lock(out):  # one writer per experiment folder (see neuroreduce.locks)
        failures = run(spec, out, backend=backend, resume=resume, progress=progress)
    if failures:
        raise CellsFailedError(out, failures)
    return out


def _run_suite(
    spec: ExperimentSpec, out: Path, *, backend: Backend, resume: bool, progress: bool
) -> dict[str, str]:
    """Run every member of a suite into ``out/<name>``; returns ``{"name/key": error}``."""
    _check_folder(out, spec, resume=resume, marker=SUITE_JSON)
    _write_source(out, spec)
    started = _now()
    t0 = time.perf_counter()
    failures, members = {}, []
    for member in spec.include:
        run = _run_suite if member.is_suite else _run_one
        with folder_lock(out / member.name):
            member_failures = run(member, out / member.name, backend=backend, resume=resume,
                                  progress=progress)
        failures.update({f"{member.name}/{k}": v for k, v in member_failures.items()})
        members.append({"name": member.name, "folder": member.name, "suite": member.is_suite,
                        "failed": sorted(member_failures)})
    write_json_atomic(out / SUITE_JSON, {
        "suite": spec.name, "title": spec.title, "source": str(spec.source),
        "experiments": members, "started": started, "finished": _now(),
        "wall_s": time.perf_counter() - t0, "backend": asdict(backend),
    })
    return failures


def make_report(exp_dir: str | Path) -> list[Path]:
    """(Re)write the HTML report of an experiment folder, or of every member of a suite folder.

    Returns:
        The report pages written.
    """
    from neuroreduce.experiments.report import make_experiment_report

    exp_dir = Path(exp_dir)
    if (exp_dir / SUITE_JSON).is_file():
        suite = _read_json(exp_dir / SUITE_JSON)
        from neuroreduce.experiments.report import check_suite

        check_suite(suite, exp_dir / SUITE_JSON)
        return [page for m in suite["experiments"] for page in make_report(exp_dir / m["folder"])]
    if not (exp_dir / RESOLVED_JSON).is_file():
        raise CheckpointError(f"{exp_dir} holds no experiment run (no {RESOLVED_JSON}); pass the "
                              "folder `neuroreduce experiment run` wrote")
    return [make_experiment_report(exp_dir)]


# ------------------------------------------------------------------------------- one experiment
def _run_one(
    spec: ExperimentSpec, out: Path, *, backend: Backend, resume: bool, progress: bool
) -> dict[str, str]:
    """Run one experiment; returns ``{cell key: error}`` of failed cells/analyses."""
    _check_folder(out, spec, resume=resume, marker=RESOLVED_JSON)
    resumed = (out / RESOLVED_JSON).is_file()
    previous = _previous_runs(out)
    started, t_start = _now(), time.perf_counter()
    phases: dict[str, float] = {}
    failures: dict[str, str] = {}
    run_info: dict[str, Any] = {
        "experiment": spec.name, "started": started, "backend": asdict(backend),
        "resumed": resumed, "cells": len(spec.cells), "cells_run": 0, "cells_skipped": 0,
        "python": sys.version.split()[0], "host": socket.gethostname(),
        "previous_runs": previous,
    }

    def write_run(finished: bool) -> None:
        """Rewrite run.json: called at the start, after every cell and after each phase, so an
        interrupted run still leaves its wall time for the next invocation to add up."""
        wall = time.perf_counter() - t_start
        info = {**run_info, "failed": dict(failures), "phases_s": dict(phases), "wall_s": wall,
                "total_wall_s": wall + sum(p.get("wall_s") or 0.0 for p in previous)}
        if finished:
            info["finished"] = _now()
        write_json_atomic(out / RUN_JSON, info)

    write_run(False)
    t0 = time.perf_counter()
    infos = _build_datasets(spec, out, backend=backend, progress=progress)
    spec = with_folds(spec, {(n, k): c for n, i in infos.items() for k, c in (i.folds or
                                                                               {}).items()})
    run_info["cells"] = len(spec.cells)
    _check_datasets(spec, infos)
    phases["datasets"] = time.perf_counter() - t0

    payloads = _payloads(spec, out, infos)
    todo = _todo(spec, out, payloads)
    _write_source(out, spec)
    write_json_atomic(out / RESOLVED_JSON, _resolved(spec, out, infos))
    run_info.update(cells_run=len(todo), cells_skipped=len(spec.cells) - len(todo))

    t0 = time.perf_counter()
    write_run(False)
    if todo:
        for outcome in run_tasks(cellmod.run_cell, {k: payloads[k] for k in todo}, backend,
                                 progress=progress, description=f"{spec.name}: cells"):
            if not outcome.ok:
                failures[outcome.key] = outcome.error or "failed"
            phases["cells"] = time.perf_counter() - t0
            write_run(False)
    phases["cells"] = time.perf_counter() - t0

    doc = results_document(spec, out)
    columns, rows = doc["columns"], doc["rows"]
    write_json_atomic(out / RESULTS_JSON, {
        **doc, "failed": [{"key": k, "error": v} for k, v in failures.items()]})
    write_text_atomic(out / RESULTS_CSV, csv_text(columns, rows))
    run_info["cells_wall_s_sum"] = sum((r["wall_train_s"] or 0) + (r["wall_evaluate_s"] or 0)
                                       for r in rows)

    write_run(False)
    from neuroreduce.experiments.analysis import run_analyses
    from neuroreduce.experiments.report import make_experiment_report

    for phase, step in (("analyses", lambda: run_analyses(out, spec.analysis, progress=progress)),
                        ("report", lambda: make_experiment_report(out))):
        t0 = time.perf_counter()
        try:
            step()
        except NeuroreduceError as exc:
            failures[phase] = str(exc)
        phases[phase] = time.perf_counter() - t0
        write_run(phase == "report")
    return failures


def _check_folder(out: Path, spec: ExperimentSpec, *, resume: bool, marker: str) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output {out} is a file; give a folder with -o")
    if not other_files(out):
        return
    if not resume:
        raise CheckpointError(f"{out} already holds files; re-run without --no-resume to continue "
                              "there, or choose a new -o folder")
    if not (out / marker).is_file():
        other = SUITE_JSON if marker == RESOLVED_JSON else RESOLVED_JSON
        if (out / other).is_file():
            raise CheckpointError(f"{out} holds a different kind of run ({other}); choose a new "
                                  "-o folder")
        if (out / EXPERIMENT_TOML).is_file() or marker == SUITE_JSON:
            return  # interrupted before the marker was written
        if any(p.name not in ("data", CELLS_DIR, RUN_JSON) for p in other_files(out)):
            raise CheckpointError(f"{out} is not empty and holds no experiment run; choose a new "
                                  "-o folder")
        return
    if marker == RESOLVED_JSON:
        name = _read_json(out / marker).get("name")
        if name != spec.name:
            raise CheckpointError(f"{out} holds experiment {name!r}, not {spec.name!r}; choose "
                                  "another -o folder")


def _previous_runs(out: Path) -> list[dict[str, Any]]:
    """Earlier invocations in ``out`` (from its ``run.json``): start, end, wall_s, cells run."""
    try:
        old = json.loads((out / RUN_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return []
    if not isinstance(old, dict) or not isinstance(old.get("previous_runs", []), list):
        return []  # not a run record of ours: the history starts again
    keep = ("started", "finished", "wall_s", "cells_run", "backend")
    return [*old.get("previous_runs", []), {k: old.get(k) for k in keep}]


def _write_source(out: Path, spec: ExperimentSpec) -> None:
    if spec.source_text is not None:
        write_text_atomic(out / EXPERIMENT_TOML, spec.source_text)


def _build_datasets(
    spec: ExperimentSpec, out: Path, *, backend: Backend, progress: bool
) -> dict[str, _DatasetInfo]:
    from neuroreduce.datasets.io import load_dataset
    from neuroreduce.experiments.datasets import build_dataset

    data_dir = out / spec.data_dir
    infos = {}
    for name, ds_spec in spec.datasets.items():
        path = Path(build_dataset(ds_spec, data_dir=data_dir, backend=backend, progress=progress))
        ds = load_dataset(path)
        infos[name] = _DatasetInfo(path=path, content_hash=ds.content_hash(),
                                   input_names=ds.input_names, output_names=ds.output_names,
                                   dt_ms=float(ds.dt_ms), n_trials=ds.n_trials, n_time=ds.n_time,
                                   field_specs=ds.field_specs, folds=fold_counts(spec, name, ds))
    return infos


def fold_counts(spec: ExperimentSpec, name: str, dataset: Any) -> dict[str, int] | None:
    """How many folds each split of the grid gives on dataset ``name`` (None: no split).

    Raises:
        ConfigError: naming the cell, if a split does not fit the data (unknown group, ...).
    """
    from neuroreduce.datasets.pieces import split_context
    from neuroreduce.datasets.split_strategies import n_folds
    from neuroreduce.experiments.grid import split_key

    counts: dict[str, int] = {}
    for cell in spec.cells:
        if cell.dataset != name or cell.config.split is None:
            continue
        key = split_key(cell)[1]
        if key not in counts:
            try:
                counts[key] = n_folds(cell.config.split,
                                      split_context(dataset, cell.config.seeds[0]))
            except ConfigError as exc:
                raise ConfigError(f"{spec.source or spec.name}: cell {cell.key}: split: "
                                  f"{exc}") from None
    return counts or None


def _check_datasets(spec: ExperimentSpec, infos: dict[str, _DatasetInfo]) -> None:
    """Input variants and extra datasets must fit the simulated/loaded data (before training)."""
    where = spec.source or spec.name
    for cell in spec.cells:
        info = infos[cell.dataset]
        try:
            heads = [h.field for h in _layout(cell, info).heads]
        except ConfigError as exc:
            raise ConfigError(f"{where}: cell {cell.key}: targets: {exc}") from None
        for term in cell.config.objective:
            if term.field not in heads:
                raise ConfigError(f"{where}: cell {cell.key}: objective: field {term.field!r} "
                                  f"is not predicted; predicted fields: {', '.join(heads)}")
        missing = [n for n in cell.inputs or () if n not in info.input_names]
        if missing:
            raise ConfigError(f"{where}: cell {cell.key}: inputs.{cell.variant} names "
                              f"{', '.join(missing)}, not inputs of dataset {cell.dataset!r}; "
                              f"allowed: {', '.join(info.input_names)}")
        for name in spec.extra_for(cell.dataset):
            other = infos[name]
            needed = cell.inputs or info.input_names
            if (other.output_names != info.output_names
                    or any(n not in other.input_names for n in needed)
                    or (cell.inputs is None and other.input_names != info.input_names)
                    or not math.isclose(other.dt_ms, info.dt_ms, rel_tol=1e-9)):
                raise ConfigError(f"{where}: evaluate.extra: dataset {name!r} (inputs "
                                  f"{', '.join(other.input_names)}; outputs "
                                  f"{', '.join(other.output_names)}; dt {other.dt_ms} ms) does "
                                  f"not fit cell {cell.key} (trained on {cell.dataset!r}); "
                                  "extra datasets need the same channels and dt")


def _payloads(
    spec: ExperimentSpec, out: Path, infos: dict[str, _DatasetInfo]
) -> dict[str, dict[str, Any]]:
    """Task payloads; ``study`` names the study whose per-cell fields the worker records (it is
    not part of the cell's identity, so naming a study never invalidates finished cells)."""
    return {
        c.key: {**cellmod.cell_payload(
            c, cell_dir=out / CELLS_DIR / c.folder, dataset_path=infos[c.dataset].path,
            dataset_hash=infos[c.dataset].content_hash,
            extra={n: (infos[n].path, infos[n].content_hash) for n in spec.extra_for(c.dataset)},
            metrics=_cell_metrics(spec, c, infos[c.dataset]),
            spike_timing=spec.spike_timing), "study": spec.study}
        for c in spec.cells
    }


def _cell_metrics(spec: ExperimentSpec, cell: Any, info: _DatasetInfo) -> tuple[str, ...]:
    """The experiment's metrics a cell reports: all of them for a typed task (each field is
    scored with those of its kind), the continuous and spike-timing ones for a cell that
    predicts the dense outputs only (the spike-timing ones score a voltage in mV)."""
    from neuroreduce.evaluation.metrics import METRICS
    from neuroreduce.evaluation.registry import TASK_METRICS

    if _layout(cell, info).is_plain:
        return tuple(m for m in spec.metrics if m in METRICS or (
            m in TASK_METRICS and TASK_METRICS[m].kind == "spike_times"))
    return spec.metrics


def _layout(cell: Any, info: _DatasetInfo) -> Any:
    from neuroreduce.training.task import TaskLayout

    return TaskLayout.from_specs(info.field_specs, targets=cell.config.targets)


def _todo(spec: ExperimentSpec, out: Path, payloads: dict[str, dict[str, Any]]) -> list[str]:
    """Keys of the cells to run; raises if a finished cell's training settings changed."""
    todo, stale = [], []
    for key, payload in payloads.items():
        marker = Path(payload["cell_dir"]) / cellmod.CELL_JSON
        if not marker.is_file():
            todo.append(key)
            continue
        changed = cellmod.stale_fields(_read_json(marker), payload)
        if any(f in cellmod.TRAINING_IDENTITY for f in changed):
            stale.append(f"{key} ({', '.join(changed)})")
        elif changed:
            todo.append(key)  # evaluation changed only: re-evaluate, training is reused
    if stale:
        raise CheckpointError(
            f"{out} holds finished cells trained with other settings than "
            f"{spec.source or spec.name} now gives: {'; '.join(stale)}; use a new -o folder, "
            "or delete those folders under cells/ to re-run them")
    return todo


def _resolved(spec: ExperimentSpec, out: Path, infos: dict[str, _DatasetInfo]) -> dict[str, Any]:
    resolved = spec.to_dict()
    for name, info in infos.items():
        resolved["datasets"][name] = {
            "table": resolved["datasets"][name],
            "spec_hash": spec.datasets[name].spec_hash(),
            "file": str(info.path.resolve()),
            "content_hash": info.content_hash,
            "inputs": list(info.input_names), "outputs": list(info.output_names),
            "dt_ms": info.dt_ms, "n_trials": info.n_trials, "n_time": info.n_time,
            **({"folds": info.folds} if info.folds else {}),
        }
    resolved["versions"] = _versions()
    resolved["git_hash"] = _git_hash()
    resolved["host"] = {"name": socket.gethostname(), "platform": platform.platform(),
                        "python": sys.version.split()[0]}
    resolved["written"] = _now()
    return resolved


def _git_hash() -> str | None:
    import subprocess

    import neuroreduce

    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(neuroreduce.__file__).parent, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def _versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for pkg in ("neuroreduce", "torch", "numpy", "h5py", "neuron", "c302", "pyNeuroML", "ray"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _read_json(path: Path) -> Any:
    from neuroreduce.jsonfiles import read_json_object

    return read_json_object(path, hint="delete it and re-run")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
