"""A cell's spike trains and voltage excerpts on disk (``spike_trains.json``), for rasters,
voltage-trace figures and re-scoring with other windows or sampling intervals.

Written next to ``results.json`` by experiment cells scored with spike-timing metrics. Layout::

    {"dt_ms": 0.2, "options": {SpikeScoring}, "heads": {field: kind},
     "predict_s_per_simulated_s": float,            # one member, wall time of prediction
     "trials": [{"index": i, "split": "test", "stimulus": "00", "duration_ms": T,
                 "data": {field: [ms, ...]}, "model": {field: [[ms, ...] per member]}}],
     "voltage": [{"index": i, "stimulus": "00", "start_ms": 0, "true": [mV], "pred": [mV]}]}

Spike times and the voltage excerpt start at each trial's first scored sample: a piece with
preceding context (``time_segment`` with ``context = "preceding"``) is scored from later on, and
``start_ms`` says where its excerpt begins in the piece.

Data spikes are read from the true values the same way as the model's (see
:mod:`neuroreduce.evaluation.spike_scoring`), so a window or dt change re-scores both alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce._io import write_json_atomic
from neuroreduce.evaluation import spike_scoring as ss
from neuroreduce.evaluation.field_results import spike_capable, truth_and_mask
from neuroreduce.evaluation.spikes import spike_times

SPIKE_RECORD = "spike_trains.json"
#: Voltage samples kept per excerpt (one test trial per stimulus).
EXCERPT_SAMPLES = 2500


def _times(trace: np.ndarray, dt_ms: float, threshold: float, *, start: int = 0) -> list[float]:
    """Spike times (ms) of ``trace`` from sample ``start`` on (the scored segment's start)."""
    return [round(float(t) - start * dt_ms, 4)
            for t in spike_times(trace, dt_ms=dt_ms, threshold=threshold)]


def _first(known: np.ndarray) -> int:
    """First scored sample of a trial (a piece with context starts after it)."""
    return int(np.argmax(known)) if known.any() else 0


def spike_record(
    dataset: Any, predictions: Mapping[str, np.ndarray], layout: Any,
    options: ss.SpikeScoring, *, predict_s_per_simulated_s: float | None = None,
) -> dict[str, Any]:
    """The record (see the module docstring) of every spike-capable head of ``layout``."""
    from neuroreduce.datasets.dataset import SPLIT_NAMES

    n = dataset.n_trials
    reps = ss.repetitions_of(dataset, options.group)
    names = ss.group_names(dataset, options.group)
    split = dataset.split
    trials: list[dict[str, Any]] = []
    for i in range(n):
        trials.append({
            "index": i,
            "split": None if split is None else SPLIT_NAMES[int(split[i])],
            "stimulus": None if reps is None else names.get(int(reps[i]), str(int(reps[i]))),
            "data": {}, "model": {}})
    heads = {}
    voltage: list[dict[str, Any]] = []
    idx = np.arange(n)
    for head in layout.heads:
        if not spike_capable(dataset, head):
            continue
        heads[head.field] = head.kind
        y, mask = truth_and_mask(dataset, head, idx)
        pred = predictions[head.field]
        train = None
        if head.kind == "binary" and split is not None:
            t_idx = dataset.indices("train")
            ty, tm = truth_and_mask(dataset, head, t_idx)
            train = (ty[..., 0], pred[:, t_idx][..., 0], tm[..., 0])
        sc = ss.prepare(head.kind, y[..., 0], pred[..., 0], mask[..., 0], options, train=train)
        m = mask[..., 0] & np.isfinite(sc.true)
        for i in range(n):
            known, start = m[i], _first(m[i])
            trials[i]["duration_ms"] = float(max(int(known.sum()) - 1, 1) * dataset.dt_ms)
            trials[i]["data"][head.field] = _times(np.where(known, sc.true[i], np.nan),
                                                   dataset.dt_ms, sc.threshold, start=start)
            trials[i]["model"][head.field] = [
                _times(np.where(known, pk[i], np.nan), dataset.dt_ms, sc.threshold,
                       start=start) for pk in sc.pred]
        if head.kind == "continuous" and not voltage:
            seen: set[Any] = set()
            for i in range(n):
                key = trials[i]["stimulus"]
                if key in seen or trials[i]["split"] not in (None, "test"):
                    continue
                seen.add(key)
                start = _first(m[i])
                end = start + min(int(m[i].sum()), EXCERPT_SAMPLES)
                voltage.append({"index": i, "stimulus": key, "field": head.field,
                                "start_ms": start * float(dataset.dt_ms),
                                "true": np.round(y[i, start:end, 0], 3).tolist(),
                                "pred": np.round(pred[0, i, start:end, 0], 3).tolist()})
    return {"dt_ms": float(dataset.dt_ms), "options": options.to_dict(), "heads": heads,
            "predict_s_per_simulated_s": predict_s_per_simulated_s, "trials": trials,
            "voltage": voltage}


def write_spike_record(
    cell_dir: Path, dataset: Any, predictions: Mapping[str, np.ndarray], layout: Any,
    options: ss.SpikeScoring, *, predict_s_per_simulated_s: float | None = None,
) -> Path:
    """Write :func:`spike_record` to ``cell_dir/spike_trains.json`` (atomically)."""
    path = Path(cell_dir) / SPIKE_RECORD
    write_json_atomic(path, spike_record(dataset, predictions, layout, options,
                                         predict_s_per_simulated_s=predict_s_per_simulated_s))
    return path
