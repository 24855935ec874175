"""Run a sweep: an Optuna study whose trials are seed ensembles trained on one dataset.

The driver (this process) owns the study: it asks Optuna for ``backend.workers`` trials at a
time, runs them with :func:`neuroreduce.execution.run_tasks` (in this process, in worker
processes, or as Ray tasks) and tells Optuna each result as it arrives. Workers write only their
trial's per-epoch intermediate values (mean best validation loss over seeds, normalised) and ask
the pruner whether to stop; every other write is the driver's, so an embedded SQLite file is
safe with several local workers (SQLite busy timeout 60 s; Optuna's own advice against SQLite
concerns many processes writing whole trials). On a multi-node Ray cluster give a storage URL
every node reaches (``postgresql://...``).

Interrupts: finished trials are in the storage the moment they finish. Trials left ``RUNNING``
by an interrupted sweep are marked failed when the sweep is run again, and their parameters are
queued to be tried first (so run one sweep command per study at a time). ``trials`` is the
study's total of finished (complete or pruned) trials, so re-running with a larger number
extends the same study. With ``final_seeds`` the best configuration is retrained with that many
seeds and its seed spread reported under ``"final"`` in ``best.json``.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neuroreduce._io import write_json_atomic
from neuroreduce.errors import ConfigError, DatasetError, DependencyError, NeuroreduceError
from neuroreduce.evaluation.evaluate import finite_json
from neuroreduce.execution import Backend, run_tasks
from neuroreduce.locks import folder_lock
from neuroreduce.sweeps.spec import Choice, SweepSpec, check_space

BEST_JSON = "best.json"


class NoTrialSucceededError(NeuroreduceError):
    """Every trial of a sweep failed: nothing to report (the command exits non-zero)."""
DATASET_FILE = "dataset.h5"
DB_FILE = "sweep.db"


@dataclass(frozen=True)
class SweepResult:
    """What :func:`run_sweep` did and found.

    Attributes:
        study_name, storage: The Optuna study and its storage URL.
        counts: Trials per state in the study (``complete``, ``pruned``, ``fail``, ``running``).
        best: The best trial's summary (also written to ``best.json``); ``None`` if no trial
            completed.
        best_path: ``<out>/best.json`` (written when ``best`` is not ``None``).
        errors: One line per trial of this run that failed (``"trial 3: ..."``).
    """

    study_name: str
    storage: str
    counts: dict[str, int]
    best: dict[str, Any] | None
    best_path: Path
    errors: tuple[str, ...]


@dataclass(frozen=True)
class TrialTask:
    """Everything a worker needs to train and score one trial (picklable).

    ``metric`` is ``(name, field, sign)``: the registry metric scored on valid and test, the
    typed field it reads (``None``: the first of its kind, or the dense outputs) and the sign
    that makes the pruner's intermediate values (validation losses) agree with the study's
    direction (-1 when the metric is maximised).
    """

    storage: str
    study_name: str
    trial_id: int
    number: int
    config: dict[str, Any]
    dataset_path: str
    run_dir: str
    pruner: tuple[str, int, int]
    metric: tuple[str, str | None, int] = ("rmse", None, 1)


def run_sweep(
    spec: SweepSpec,
    out_dir: str | Path,
    *,
    backend: Backend | None = None,
    trials: int | None = None,
    progress: bool = True,
) -> SweepResult:
    """Run (or continue) the sweep ``spec`` with its study stored under ``out_dir``.

    Args:
        spec: The checked sweep file (:func:`~neuroreduce.sweeps.spec.load_sweep`).
        out_dir: Folder of the sweep: ``sweep.db`` (default storage), ``dataset.h5`` (when the
            dataset is simulated), ``trials/<number>/`` run folders and ``best.json``.
        backend: Where trials run; default: one at a time in this process.
        trials: Total finished trials wanted (overrides ``spec.trials``).
        progress: Show a progress bar over trials.

    Returns:
        The study's counts and best trial.

    Raises:
        ConfigError: on a storage that cannot be opened, or a study in it that was made with a
            different search space.
        DatasetError: if the dataset file is missing or unusable.
    """
    optuna = _optuna()
    backend = backend or Backend()
    check_space(spec)  # a value no trial can train with: refused before any simulation
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = spec.trials if trials is None else trials
    if not isinstance(target, int) or target < 1:
        raise ConfigError(f"trials must be an integer >= 1, got {target!r}")
    with folder_lock(out):  # one writer per sweep folder (see neuroreduce.locks)
        url = spec.storage or f"sqlite:///{(out / DB_FILE).resolve()}"
        pruner_spec = (spec.pruner, spec.pruner_warmup_epochs, spec.pruner_startup_trials)
        with _quiet(optuna):
            study = _open_study(optuna, spec, url, pruner_spec)
            dataset_path = _dataset_path(spec, out, backend)
            _check_metric(spec, dataset_path)
            _requeue_interrupted(optuna, study)
            errors: list[str] = []
            done = _count(optuna, study, "COMPLETE") + _count(optuna, study, "PRUNED")
            remaining = max(0, target - done)
            with _progress(progress, remaining) as advance:
                while remaining > 0:
                    batch = [study.ask(_distributions(optuna, spec)) for _ in
                             range(min(remaining, backend.workers))]
                    remaining -= len(batch)
                    asked = {str(t.number): t for t in batch}
                    tasks = {key: _task(spec, t, url, dataset_path, out, pruner_spec)
                             for key, t in asked.items()}
                    for outcome in run_tasks(_run_trial, tasks, backend, progress=False,
                                             description="sweep trials"):
                        trial = asked[outcome.key]
                        if outcome.ok and outcome.value["state"] == "complete":
                            for name in (*_scored(spec), "run_dir", "seeds"):
                                trial.set_user_attr(name, outcome.value[name])
                            study.tell(trial, outcome.value[spec.metric]["mean"])
                        elif outcome.ok:  # pruned
                            trial.set_user_attr("pruned_at_epoch", outcome.value["epoch"])
                            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                        else:
                            trial.set_user_attr("error", outcome.error)
                            study.tell(trial, state=optuna.trial.TrialState.FAIL)
                            errors.append(f"trial {trial.number}: {outcome.error}")
                        advance()
            counts = {state.lower(): _count(optuna, study, state)
                      for state in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")}
            best = _best(optuna, study, spec, url)
            if best is not None and spec.final_seeds > 0:
                best["final"] = _final(spec, best, url, dataset_path, out, backend, errors)
        best_path = out / BEST_JSON
        if best is not None:
            write_json_atomic(best_path, finite_json(best)[0])  # NaN/inf: null
        return SweepResult(study_name=spec.study_name, storage=url, counts=counts, best=best,
                           best_path=best_path, errors=tuple(errors))


# ------------------------------------------------------------------------------------- worker
def _run_trial(task: TrialTask) -> dict[str, Any]:
    """Train one trial's seed ensemble; report each epoch to the pruner; score it."""
    optuna = _optuna()
    from neuroreduce.datasets.io import load_dataset
    from neuroreduce.training import TrainConfig, train

    config = TrainConfig.from_dict(task.config)
    dataset = load_dataset(task.dataset_path)
    on_epoch_end: Callable[[Any], None] | None = None
    last_epoch = [0]
    if task.pruner[0] != "none":
        study = optuna.load_study(study_name=task.study_name,
                                  storage=_storage(optuna, task.storage),
                                  pruner=_pruner(optuna, task.pruner))
        trial = optuna.trial.Trial(study, task.trial_id)

        def on_epoch_end(report: Any) -> None:
            last_epoch[0] = report.epoch
            value = float(sum(report.best_valid_losses) / len(report.best_valid_losses))
            if math.isfinite(value):
                trial.report(task.metric[2] * value, report.epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

    try:
        result = train(dataset, config, task.run_dir, resume=True, progress=False,
                       dataset_path=task.dataset_path, on_epoch_end=on_epoch_end)
    except optuna.TrialPruned:
        return {"state": "pruned", "epoch": last_epoch[0]}
    from neuroreduce.sweeps.scoring import trial_scores

    name, _, _ = task.metric
    scores = trial_scores(dataset, config, result, task.run_dir, task.metric)
    return {
        "state": "complete",
        f"valid_{name}": scores["valid"],
        f"test_{name}": scores.get("test"),
        "run_dir": task.run_dir,
        "seeds": list(config.seeds),
    }


# -------------------------------------------------------------------------------------- pieces
def _optuna() -> Any:
    try:
        import optuna
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise DependencyError(f"sweeps need optuna ({exc}); pip install 'optuna>=4'") from exc
    return optuna


def _storage(optuna: Any, url: str) -> Any:
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    try:
        return optuna.storages.RDBStorage(url, **kwargs)
    except Exception as exc:  # noqa: BLE001 - sqlalchemy/driver errors of many kinds
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot open sweep storage {url!r}: {first}") from exc


def _pruner(optuna: Any, spec: tuple[str, int, int]) -> Any:
    kind, warmup, startup = spec
    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, warmup))
    return optuna.pruners.NopPruner()


def _sampler(optuna: Any, spec: SweepSpec) -> Any:
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=spec.seed)
    return optuna.samplers.TPESampler(seed=spec.seed)


def _search_signature(spec: SweepSpec) -> dict[str, Any]:
    """JSON-able description of what is searched and fixed (stored in the study)."""
    search = {k: (list(v.values) if isinstance(v, Choice) else
                  [v.low, v.high, v.log, v.integer]) for k, v in sorted(spec.search.items())}
    signature = {"search": search, "fixed": dict(sorted(spec.fixed.items())),
                 "seeds_per_trial": spec.seeds_per_trial, "metric": spec.metric}
    if spec.metric_field is not None:  # only when set: older studies keep their signature
        signature["metric_field"] = spec.metric_field
    return signature


def _open_study(optuna: Any, spec: SweepSpec, url: str, pruner_spec: tuple[str, int, int]) -> Any:
    study = optuna.create_study(
        storage=_storage(optuna, url), sampler=_sampler(optuna, spec),
        pruner=_pruner(optuna, pruner_spec), study_name=spec.study_name, direction=spec.direction,
        load_if_exists=True,
    )
    signature = _search_signature(spec)
    stored = study.user_attrs.get("neuroreduce_sweep")
    if stored is None:
        study.set_user_attr("neuroreduce_sweep", signature)
    elif stored != json.loads(json.dumps(signature)):  # as stored: tuples become lists
        raise ConfigError(
            f"study {spec.study_name!r} in {url} was made with a different search space, fixed "
            "options or seeds; use another output folder or [sweep] study_name"
        )
    return study


def _requeue_interrupted(optuna: Any, study: Any) -> None:
    """Mark trials left running by an interrupted sweep as failed; queue their parameters."""
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={"requeued_from": trial.number})


def _distributions(optuna: Any, spec: SweepSpec) -> dict[str, Any]:
    dists: dict[str, Any] = {}
    for name, param in spec.search.items():
        if isinstance(param, Choice):
            dists[name] = optuna.distributions.CategoricalDistribution(param.values)
        elif param.integer:
            dists[name] = optuna.distributions.IntDistribution(
                int(param.low), int(param.high), log=param.log)
        else:
            dists[name] = optuna.distributions.FloatDistribution(
                float(param.low), float(param.high), log=param.log)
    return dists


def _config(spec: SweepSpec, params: dict[str, Any]) -> dict[str, Any]:
    from neuroreduce.sweeps.spec import OPTION_PREFIX
    from neuroreduce.training import TrainConfig

    options = {k[len(OPTION_PREFIX):]: v for k, v in params.items() if k.startswith(OPTION_PREFIX)}
    values = {**spec.fixed, **{k: v for k, v in params.items() if not k.startswith(OPTION_PREFIX)},
              "seeds": list(range(spec.seeds_per_trial))}
    if options:
        values["model_options"] = {**spec.fixed.get("model_options", {}), **options}
    return TrainConfig.from_dict(values).to_dict()  # checks the combination (ConfigError)


def _scored(spec: SweepSpec) -> tuple[str, str]:
    """The trial result keys of the metric on the validation and test splits."""
    return spec.metric, f"test_{spec.metric_name}"


def _metric(spec: SweepSpec) -> tuple[str, str | None, int]:
    return spec.metric_name, spec.metric_field, -1 if spec.direction == "maximize" else 1


def _check_metric(spec: SweepSpec, dataset_path: Path) -> None:
    """The metric must score a field the trials predict (before any trial runs)."""
    from neuroreduce.datasets.streaming import StreamingDataset
    from neuroreduce.sweeps.scoring import scored_field

    with StreamingDataset(dataset_path) as data:  # reads the fields' specs, not their values
        specs = data.field_specs
    scored_field(specs, spec.fixed.get("targets"), _metric(spec))


def _task(spec: SweepSpec, trial: Any, url: str, dataset_path: Path, out: Path,
          pruner_spec: tuple[str, int, int]) -> TrialTask:
    return TrialTask(storage=url, study_name=spec.study_name, trial_id=trial._trial_id,
                     number=trial.number, config=_config(spec, trial.params),
                     dataset_path=str(dataset_path.resolve()),
                     run_dir=str((out / "trials" / f"{trial.number:04d}").resolve()),
                     pruner=pruner_spec, metric=_metric(spec))


def _dataset_path(spec: SweepSpec, out: Path, backend: Backend) -> Path:
    source = spec.dataset
    if source.path is not None:
        path = Path(source.path)
        if not path.is_file():
            raise DatasetError(f"sweep dataset {path} does not exist; fix [dataset] path")
        return path
    path = out / DATASET_FILE
    if not path.is_file():
        from neuroreduce.pipeline import SimulationSettings, simulate

        settings = SimulationSettings(workers=backend.workers, backend=backend.kind,
                                      address=backend.address)
        simulate(str(source.scenario), n_stimuli=source.n_stimuli, dt_out_ms=source.dt_out_ms,
                 seed=source.seed, settings=settings, out=path, progress=False)
    return path


def _final(spec: SweepSpec, best: dict[str, Any], url: str, dataset_path: Path, out: Path,
           backend: Backend, errors: list[str]) -> dict[str, Any] | None:
    """Retrain the best configuration with ``final_seeds`` seeds (resumed if already done)."""
    config = {**best["config"], "seeds": list(range(spec.final_seeds))}
    task = TrialTask(storage=url, study_name=spec.study_name, trial_id=-1, number=best["trial"],
                     config=config, dataset_path=str(dataset_path.resolve()),
                     run_dir=str((out / "best" / f"trial-{best['trial']:04d}").resolve()),
                     pruner=("none", 0, 0), metric=_metric(spec))
    (outcome,) = run_tasks(_run_trial, {"final": task}, backend, progress=False)
    if not outcome.ok:
        errors.append(f"final retraining of trial {best['trial']}: {outcome.error}")
        return None
    return {k: outcome.value[k] for k in (*_scored(spec), "run_dir", "seeds")}


def _count(optuna: Any, study: Any, state: str) -> int:
    return len(study.get_trials(deepcopy=False, states=(getattr(optuna.trial.TrialState, state),)))


def _best(optuna: Any, study: Any, spec: SweepSpec, url: str) -> dict[str, Any] | None:
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        return None
    sign = -1 if spec.direction == "maximize" else 1
    best = min(complete, key=lambda t: (sign * t.value, t.number))
    valid, test = _scored(spec)
    return {
        "study_name": spec.study_name,
        "storage": url,
        "metric": spec.metric,
        **({} if spec.metric_field is None else {"metric_field": spec.metric_field}),
        "direction": spec.direction,
        "trial": best.number,
        "value": best.value,
        "params": best.params,
        "config": _config(spec, best.params),
        valid: best.user_attrs.get(valid),
        test: best.user_attrs.get(test),
        "seeds": best.user_attrs.get("seeds"),
        "run_dir": best.user_attrs.get("run_dir"),
        "n_trials": {s.lower(): _count(optuna, study, s) for s in ("COMPLETE", "PRUNED", "FAIL")},
    }


@contextlib.contextmanager
def _quiet(optuna: Any) -> Iterator[None]:
    """Optuna's per-trial INFO lines off while the sweep runs (our progress bar says it)."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


@contextlib.contextmanager
def _progress(show: bool, total: int) -> Iterator[Callable[[], None]]:
    if not show or total == 0:
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn()) as bar:
        task = bar.add_task("sweep trials", total=total)
        yield lambda: bar.advance(task)

