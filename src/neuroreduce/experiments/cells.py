"""One grid cell, run in a worker process: train a seed ensemble, evaluate it, write its files.

:func:`run_cell` is the task function the runner hands to
:func:`neuroreduce.execution.run_tasks`; its payload is a plain dict (picklable, see
:func:`cell_payload`). The cell folder ``<out>/cells/<key with / -> __>/`` receives the training
run (``train()`` files, resumable), ``results.json`` (per split), ``extra_results.json`` (per
extra dataset, split ``"all"``) and last, atomically, ``cell.json``: the marker that the cell is
finished. A cell killed mid-way resumes from its training checkpoint when run again.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce._io import write_json_atomic

CELL_JSON = "cell.json"
RESULTS_JSON = "results.json"
EXTRA_RESULTS_JSON = "extra_results.json"


def cell_payload(
    cell: Any,
    *,
    cell_dir: Path,
    dataset_path: Path,
    dataset_hash: str,
    extra: dict[str, tuple[Path, str]],
    metrics: tuple[str, ...],
    spike_timing: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The picklable task description of ``cell`` (a :class:`~.spec.Cell`).

    Args:
        cell: The grid cell.
        cell_dir: Its folder.
        dataset_path: HDF5 file of its dataset.
        dataset_hash: Content hash of that file's dataset (all inputs).
        extra: Extra dataset name -> (HDF5 path, content hash).
        metrics: Metric names to report per split.
        spike_timing: Options of the spike-timing metrics (``[evaluate] spike_timing``);
            part of the payload (and of the cell's identity) only when given.
    """
    return {
        **({"spike_timing": dict(spike_timing)} if spike_timing else {}),
        "cell": cell.to_dict(),
        "cell_dir": str(cell_dir),
        "dataset_path": str(dataset_path),
        "dataset_hash": dataset_hash,
        "extra": {n: [str(p), h] for n, (p, h) in extra.items()},
        "metrics": list(metrics),
    }


def identity(payload: dict[str, Any]) -> dict[str, Any]:
    """What must match between a finished ``cell.json`` and a payload for the cell to be reused.

    Training identity (config, inputs, dataset) and evaluation identity (extra datasets,
    metrics); see :func:`stale_fields`.
    """
    cell = payload["cell"]
    return {
        "config": cell["config"],
        "inputs": cell["inputs"],
        "dataset_hash": payload["dataset_hash"],
        "extra_hashes": {n: h for n, (_, h) in payload["extra"].items()},
        "metrics": payload["metrics"],
        **({"spike_timing": payload["spike_timing"]} if payload.get("spike_timing") else {}),
    }


TRAINING_IDENTITY: tuple[str, ...] = ("config", "inputs", "dataset_hash")


def stale_fields(record: dict[str, Any], payload: dict[str, Any]) -> list[str]:
    """Fields of :func:`identity` in which a finished ``cell.json`` differs from ``payload``."""
    want = identity(payload)
    return [k for k, v in want.items() if record.get(k) != v]


def run_cell(payload: dict[str, Any]) -> dict[str, Any]:
    """Train, evaluate and record one cell (module-level: runs in worker processes).

    Returns:
        The ``cell.json`` record (also written, last, into the cell folder).
    """
    from neuroreduce.datasets.io import load_dataset
    from neuroreduce.evaluation.evaluate import evaluate_predictions, split_errors, summarise
    from neuroreduce.models import count_parameters
    from neuroreduce.studies.base import CellShape
    from neuroreduce.studies.registry import cell_fields
    from neuroreduce.training import TrainConfig, check_compatible, predict, train
    from neuroreduce.trust.held_out import envelope_of_dataset, held_out_trust
    from neuroreduce.trust.predict import trust_results

    cell = payload["cell"]
    cell_dir = Path(payload["cell_dir"])
    metrics = tuple(payload["metrics"])
    config = TrainConfig.from_dict(dict(cell["config"]))
    dataset = _select(load_dataset(payload["dataset_path"]), cell["inputs"])

    t0 = time.perf_counter()
    result = train(dataset, config, cell_dir, resume=True, progress=False,
                   dataset_path=payload["dataset_path"])
    train_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    run = result  # the trained ensemble is in memory: no reload
    typed = run.io.layout is not None
    spike = payload.get("spike_timing")
    calibration = None  # of the ensemble's spread, fitted on the valid split (plain tasks)
    if typed:
        results = _typed_results(run, dataset, metrics, config, spike=spike, cell_dir=cell_dir)
    else:
        pred = predict(run, dataset.inputs)
        results = evaluate_predictions(dataset, pred, seeds=config.seeds)
        _add_metrics(results, dataset, pred, metrics)
        trust, calibration = trust_results(dataset, pred)
        results.update(trust)
    results.update(cell=cell["key"], dataset_hash=payload["dataset_hash"],
                   output_units=dataset.output_units)
    extra_results: dict[str, Any] = {}
    envelope = None if typed or not payload["extra"] else envelope_of_dataset(dataset)
    for name, (path, ds_hash) in payload["extra"].items():
        other = _select(load_dataset(path), cell["inputs"])
        check_compatible(run, other)
        if typed:
            block = _typed_results(run, other, metrics, config, split="all", spike=spike)
        else:
            p = predict(run, other.inputs)
            block = summarise([split_errors("all", other.outputs, p)],
                              output_names=other.output_names, seeds=config.seeds)
            _add_metrics(block, other, p, metrics, split="all")
            block["trust"] = held_out_trust(p, other.outputs, calibration, envelope,
                                            other.inputs)
        block.update(dataset=name, dataset_hash=ds_hash, output_units=other.output_units)
        extra_results[name] = block
    eval_s = time.perf_counter() - t0

    write_json_atomic(cell_dir / RESULTS_JSON, _strict(results))  # NaN of diverged members:
    write_json_atomic(cell_dir / EXTRA_RESULTS_JSON, _strict(extra_results))  # null
    record = {
        "key": cell["key"],
        "folder": cell["folder"],
        "dataset": cell["dataset"],
        "model": cell["model"],
        "hidden": cell["hidden"],
        "variant": cell["variant"],
        "inputs_used": list(dataset.input_names),
        "outputs": list(dataset.output_names),
        "seeds": list(config.seeds),
        "n_parameters": count_parameters(run.model.member(0)),
        **cell_fields(payload.get("study"), CellShape(
            cell["model"], hidden=cell["hidden"], n_inputs=len(dataset.input_names),
            n_outputs=len(dataset.output_names))),
        "trained_dataset_hash": result.dataset_hash,
        "best_epochs": list(result.best_epochs),
        "epochs_done": result.epochs_done,
        "wall_s": {"train": train_s, "evaluate": eval_s},
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        **identity(payload),
    }
    write_json_atomic(cell_dir / CELL_JSON, record)
    return record


def _typed_results(
    run: Any, dataset: Any, metrics: tuple[str, ...], config: Any, *, split: str | None = None,
    spike: dict[str, Any] | None = None, cell_dir: Path | None = None,
) -> dict[str, Any]:
    """Scores of every predicted field (typed tasks; see evaluation/field_results.py).

    With spike-timing metrics among ``metrics`` and a ``cell_dir``, the cell's spike trains
    and voltage excerpts are also written (:mod:`neuroreduce.evaluation.spike_record`)."""
    from neuroreduce.datasets.pieces import apply_split
    from neuroreduce.evaluation.field_results import DEFAULT_METRICS, evaluate_fields
    from neuroreduce.evaluation.registry import TASK_METRICS
    from neuroreduce.evaluation.spike_scoring import SpikeScoring
    from neuroreduce.training import predict_fields

    if config.split is not None and split is None:
        dataset = apply_split(dataset, config.split, seed=config.seeds[0])
    by_kind: dict[str, list[str]] = {}
    for name in metrics:
        info = TASK_METRICS.get(name)
        if info is not None and (info.kind in DEFAULT_METRICS or info.kind == "spike_times"):
            by_kind.setdefault(info.kind, []).append(name)
    chosen = {k: tuple(dict.fromkeys([*DEFAULT_METRICS.get(k, ()), *v]))
              for k, v in by_kind.items()}
    options = SpikeScoring.from_dict(spike)
    t0 = time.perf_counter()
    predictions = predict_fields(run, dataset)
    per_sim_s = (time.perf_counter() - t0) / max(
        1e-9, len(config.seeds) * dataset.n_trials * dataset.n_time * dataset.dt_ms / 1000.0)
    fields = evaluate_fields(dataset, predictions, run.io.layout,
                             metrics=chosen, splits=("all",) if split else ("train", "valid",
                                                                            "test"),
                             spike_options=options)
    if "spike_times" in chosen and cell_dir is not None:
        from neuroreduce.evaluation.spike_record import write_spike_record

        write_spike_record(cell_dir, dataset, predictions, run.io.layout, options,
                           predict_s_per_simulated_s=per_sim_s)
    return {"seeds": list(config.seeds), "fields": fields}


def _strict(results: dict[str, Any]) -> dict[str, Any]:
    """Strict JSON as ``evaluation.evaluate.write_results`` writes it (NaN/inf as null)."""
    from neuroreduce.evaluation.evaluate import finite_json

    clean, replaced = finite_json(results)
    if replaced:
        clean["non_finite"] = f"{replaced} NaN/inf values (e.g. of a diverged member) are null"
    return clean


def _select(dataset: Any, inputs: list[str] | None) -> Any:
    if inputs is None:
        return dataset
    from neuroreduce.experiments.datasets import select_inputs

    return select_inputs(dataset, inputs)


def _add_metrics(
    results: dict[str, Any], dataset: Any, pred: np.ndarray, metrics: tuple[str, ...],
    *, split: str | None = None,
) -> None:
    """Add metrics other than rmse/nrmse (pooled over outputs and per output) per split."""
    from neuroreduce.evaluation.metrics import METRICS, get_metric, pooled

    for name in metrics:
        if name in ("rmse", "nrmse") or name not in METRICS:  # spike timing: typed runs only
            continue
        metric = get_metric(name)
        for s, block in results["splits"].items():
            idx = np.arange(dataset.n_trials) if split == s else dataset.indices(s)
            y = dataset.outputs[idx]
            block[name] = _stats([pooled(name, y, p[idx]) for p in pred])
            per = np.stack([metric(y, p[idx]) for p in pred])  # [member, output]
            for j, out in enumerate(dataset.output_names):
                block["per_output"][out][name] = _stats(per[:, j])


def _stats(values: Any) -> dict[str, Any]:
    """Mean, std (ddof 1), min, max and the per-seed values (as in ``results.json``)."""
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
            "min": float(v.min()), "max": float(v.max()), "per_seed": v.tolist()}
