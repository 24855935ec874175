"""The score of one sweep trial: its metric on the validation (objective) and test splits.

A dataset of dense inputs -> continuous outputs is scored as ``train`` results always were:
``rmse`` and ``nrmse`` pooled over outputs (:func:`~neuroreduce.evaluation.evaluate.
evaluate_predictions`). Every other case — a typed task (spike events, binary or categorical
targets, masks) or another continuous metric — scores one predicted field with the metrics
registry (:func:`~neuroreduce.evaluation.field_results.evaluate_fields`; per-channel values
averaged over channels), after the trial's split strategy (if any) is applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from neuroreduce.errors import ConfigError

#: Metrics of dense outputs computed as ``results.json`` of a run pools them.
POOLED: tuple[str, ...] = ("rmse", "nrmse")


def scored_field(specs: Sequence[Any], targets: Sequence[str] | None,
                 metric: tuple[str, str | None, int]) -> str:
    """The predicted field the metric scores (checks it exists and has the metric's kind).

    Args:
        specs: The dataset's field specs (``Dataset.field_specs``).
        targets: The trials' ``targets`` (``None``: every target and label field).
        metric: ``(name, field or None, sign)`` as in :class:`~.runner.TrialTask`.

    Raises:
        ConfigError: naming the predicted fields, if none fits.
    """
    from neuroreduce.evaluation.registry import get_metric_info
    from neuroreduce.training.task import TaskLayout

    name, field, _ = metric
    kind = get_metric_info(name).kind
    heads = TaskLayout.from_specs(specs, targets=targets).heads
    if kind == "spike_times":  # voltage (mV) and binary spike heads (evaluation.spike_scoring)
        units = {s.name: s.units for s in specs}
        fits = [h.field for h in heads if (h.kind == "binary" or (
            h.kind == "continuous" and units.get(h.field) == "mV"))
            and (field is None or h.field == field)]
    else:
        fits = [h.field for h in heads if h.kind == kind and (field is None or h.field == field)]
    if not fits:
        known = ", ".join(f"{h.field} ({h.kind})" for h in heads)
        which = f"field {field!r}" if field is not None else f"a {kind} field"
        raise ConfigError(f"[sweep] metric = 'valid_{name}' needs {which} among the predicted "
                          f"fields; they are: {known} (set [sweep] metric_field)")
    return fits[0]


def trial_scores(dataset: Any, config: Any, result: Any, run_dir: str | Path,
                 metric: tuple[str, str | None, int]) -> dict[str, Any]:
    """``{"valid": stats, "test": stats or None}`` (mean, std, per_seed, ...) of a trained trial.

    Args:
        dataset: The sweep's dataset (before the trial's split strategy).
        config: The trial's TrainConfig.
        result: :func:`~neuroreduce.training.train`'s result (the model in memory).
        run_dir: The trial's run folder.
        metric: ``(name, field or None, sign)``.
    """
    from neuroreduce.datasets.pieces import apply_split

    name, field, _ = metric
    plain = result.io is None or result.io.layout is None
    if plain and field in (None, "outputs") and name in POOLED and config.split is None:
        return _pooled(dataset, config, result, name)
    if config.split is not None:
        dataset = apply_split(dataset, config.split, seed=config.seeds[0])
    from neuroreduce.evaluation.field_results import evaluate_fields
    from neuroreduce.evaluation.registry import get_metric_info
    from neuroreduce.training import predict_fields

    layout = result.layout
    chosen = scored_field(dataset.field_specs, config.targets, metric)
    splits = tuple(s for s in ("valid", "test") if dataset.indices(s).size)
    scores = evaluate_fields(dataset, predict_fields(result, dataset), layout,
                             metrics={get_metric_info(name).kind: (name,)}, splits=splits)
    blocks = scores[chosen]["splits"]
    return {"valid": blocks["valid"][name],
            "test": blocks["test"][name] if "test" in blocks else None}


def _pooled(dataset: Any, config: Any, result: Any, name: str) -> dict[str, Any]:
    """RMSE/NRMSE pooled over the dense outputs, as a run's ``results.json`` gives them, from
    the trained ensemble in memory (``train``'s result: no reload)."""
    from neuroreduce.evaluation.evaluate import evaluate_predictions
    from neuroreduce.training import predict

    predictions = predict(result, dataset.inputs)
    splits = evaluate_predictions(dataset, predictions, seeds=config.seeds)["splits"]
    return {"valid": splits["valid"][name],
            "test": splits["test"][name] if "test" in splits else None}
