"""Evaluate a trained run: free-running prediction of whole sequences, errors per split and neuron.

Writes ``results.json`` (everything, machine-readable) and ``results.csv`` (one row per split x
output x statistic) into the run folder, and ``predictions.h5``-free: predictions are recomputed
on demand by the report (they are cheap).

``results.json`` is strict JSON: a NaN or infinite value (a diverged member, a metric undefined
on a split) is written as ``null``, and the key ``"non_finite"`` then says how many values that
are; :func:`read_results` turns those ``null`` numbers back into NaN.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce._io import write_json_atomic, write_text_atomic
from neuroreduce.datasets.dataset import SPLIT_NAMES, Dataset
from neuroreduce.errors import DatasetError
from neuroreduce.evaluation.metrics import nrmse, rmse, value_range

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"


@dataclass(frozen=True)
class SplitErrors:
    """Errors of every ensemble member on one split.

    Attributes:
        split: ``"train"``, ``"valid"`` or ``"test"``.
        n_trials: Number of trials in the split.
        rmse: Pooled RMSE over all outputs per member, shape ``[member]`` (output units).
        nrmse: Pooled RMSE / pooled range, shape ``[member]`` (dimensionless).
        rmse_per_output: shape ``[member, output]`` (output units).
        nrmse_per_output: RMSE / range of each output, shape ``[member, output]``.
        output_range: Range (max - min) of each true output on this split, ``[output]``.
    """

    split: str
    n_trials: int
    rmse: np.ndarray
    nrmse: np.ndarray
    rmse_per_output: np.ndarray
    nrmse_per_output: np.ndarray
    output_range: np.ndarray


def split_errors(split: str, y_true: np.ndarray, y_pred: np.ndarray) -> SplitErrors:
    """Compute :class:`SplitErrors` from true ``[trial, time, output]`` and predicted
    ``[member, trial, time, output]`` arrays."""
    if y_pred.ndim != 4 or y_pred.shape[1:] != y_true.shape:
        raise DatasetError(
            f"predictions {y_pred.shape} do not match [member, *{y_true.shape}] for split {split}"
        )
    flat_true = y_true.reshape(y_true.shape[0], -1, 1)
    pooled_range = float(flat_true.max() - flat_true.min())
    per_rmse = np.stack([rmse(y_true, p) for p in y_pred])
    per_nrmse = np.stack([nrmse(y_true, p) for p in y_pred])
    pooled_rmse = np.array([float(rmse(flat_true, p.reshape(flat_true.shape))[0]) for p in y_pred])
    if pooled_range > 0:
        pooled_nrmse = pooled_rmse / pooled_range
    else:
        pooled_nrmse = np.full_like(pooled_rmse, np.nan)
    return SplitErrors(
        split=split,
        n_trials=int(y_true.shape[0]),
        rmse=pooled_rmse,
        nrmse=pooled_nrmse,
        rmse_per_output=per_rmse,
        nrmse_per_output=per_nrmse,
        output_range=value_range(y_true),
    )


def _stats(values: np.ndarray) -> dict[str, Any]:
    values = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values, ddof=1)) if values.size > 1 else 0.0,
        "min": float(np.min(values)),
        "max": float(np.max(values)),
        "per_seed": values.tolist(),
    }


def summarise(
    errors: list[SplitErrors], *, output_names: tuple[str, ...], seeds: tuple[int, ...]
) -> dict[str, Any]:
    """Turn per-split errors into the JSON-able results structure (mean ± std over seeds)."""
    out: dict[str, Any] = {"seeds": list(seeds), "output_names": list(output_names), "splits": {}}
    for e in errors:
        out["splits"][e.split] = {
            "n_trials": e.n_trials,
            "rmse": _stats(e.rmse),
            "nrmse": _stats(e.nrmse),
            "output_range": dict(zip(output_names, e.output_range.tolist(), strict=True)),
            "per_output": {
                name: {
                    "rmse": _stats(e.rmse_per_output[:, j]),
                    "nrmse": _stats(e.nrmse_per_output[:, j]),
                }
                for j, name in enumerate(output_names)
            },
        }
    return out


def results_csv(results: dict[str, Any]) -> str:
    """CSV text: split, output (``ALL`` for pooled), metric, mean, std, min, max, n_seeds."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["split", "output", "metric", "mean", "std", "min", "max", "n_seeds"])
    def row(split: str, output: str, metric: str, st: dict[str, Any]) -> None:
        w.writerow(
            [split, output, metric, f"{st['mean']:.6g}", f"{st['std']:.6g}",
             f"{st['min']:.6g}", f"{st['max']:.6g}", len(st["per_seed"])]
        )

    for split, s in results.get("splits", {}).items():
        rows = [("ALL", s)] + list(s["per_output"].items())
        for output, block in rows:
            for metric in ("rmse", "nrmse"):
                row(split, output, metric, block[metric])
    for field, f in results.get("fields", {}).items():  # typed tasks: field or field:channel
        for split, block in f["splits"].items():
            for metric, st in block.items():
                if not isinstance(st, dict):
                    continue
                row(split, field, metric, st)
                for channel, cst in st.get("per_channel", {}).items():
                    row(split, f"{field}:{channel}", metric, cst)
    return buf.getvalue()


def evaluate_predictions(
    dataset: Dataset, predictions: np.ndarray, *, seeds: tuple[int, ...]
) -> dict[str, Any]:
    """Errors of ``predictions`` ``[member, trial, time, output]`` against ``dataset`` per split.

    Splits with no trials are skipped.
    """
    errors = []
    for split in SPLIT_NAMES:
        idx = dataset.indices(split)
        if idx.size:
            errors.append(split_errors(split, dataset.outputs[idx], predictions[:, idx]))
    return summarise(errors, output_names=dataset.output_names, seeds=seeds)


_STAT_KEYS = frozenset({"mean", "std", "min", "max", "median"})


def finite_json(obj: Any) -> tuple[Any, int]:
    """``obj`` with every NaN/inf number (Python or numpy, in dicts, lists, arrays) replaced by
    ``None``, and how many were replaced: strict JSON (no ``NaN``/``Infinity`` literals)."""
    count = 0

    def walk(value: Any) -> Any:
        nonlocal count
        if isinstance(value, np.ndarray):
            return walk(value.tolist())
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            count += 1
            return None
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        return value

    return walk(obj), count


def _nan_for_null(value: Any, key: str | None = None) -> Any:
    """Inverse of :func:`finite_json` for results: ``null`` statistics and numbers in numeric
    lists become NaN (other ``null`` values stay ``None``)."""
    if isinstance(value, dict):
        return {k: _nan_for_null(v, k) for k, v in value.items()}
    if isinstance(value, list):
        if value and all(v is None or isinstance(v, (int, float)) and not isinstance(v, bool)
                         for v in value):
            return [math.nan if v is None else v for v in value]
        return [_nan_for_null(v) for v in value]
    if value is None and key in _STAT_KEYS:
        return math.nan
    return value


def nan_for_null(results: Any) -> Any:
    """Results parsed from strict JSON with their ``null`` statistics back to NaN."""
    return _nan_for_null(results)


def read_results(path: str | Path) -> dict[str, Any]:
    """A ``results.json`` with its ``null`` numbers as NaN (see the module docstring)."""
    return _nan_for_null(json.loads(Path(path).read_text()))


def write_results(run_dir: str | Path, results: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``results.json`` and ``results.csv`` into ``run_dir`` atomically.

    NaN/inf values are written as ``null`` in ``results.json`` (counted in its
    ``"non_finite"`` key) and as ``nan``/``inf`` in the CSV.
    """
    run_dir = Path(run_dir)
    clean, replaced = finite_json({k: v for k, v in results.items() if k != "non_finite"})
    if replaced:
        clean["non_finite"] = (f"{replaced} NaN/inf values (e.g. of a diverged member) are "
                               "written as null")
    write_json_atomic(run_dir / RESULTS_JSON, clean)
    write_text_atomic(run_dir / RESULTS_CSV, results_csv(results))
    return run_dir / RESULTS_JSON, run_dir / RESULTS_CSV
