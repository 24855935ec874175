"""Predict with the ensemble as the surrogate, and score how trustworthy it is on a dataset.

* :func:`predict_ensemble` — the ensemble mean, the member spread and, where the run has a
  calibration, the interval of its nominal coverage; inputs outside the training range or unlike
  the training stimuli raise one :class:`~neuroreduce.trust.range_check.OutOfRangeWarning` that
  says how far outside they are.
* :func:`trust_results` — what ``neuroreduce evaluate`` adds to ``results.json`` for an
  ensemble: the ensemble-mean error beside the members' per split (its gain), the calibration of
  the spread on the valid split, coverage of the calibrated intervals and the reliability
  diagram on the test split, and how well the spread ranks test trials by their real error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce._io import write_json_atomic
from neuroreduce.datasets.dataset import SPLIT_NAMES, Dataset
from neuroreduce.errors import ConfigError
from neuroreduce.trust.range_check import check_inputs, read_envelope, warn_outside
from neuroreduce.trust.uncertainty import (
    Calibration,
    EnsemblePrediction,
    calibrate,
    coverage,
    ensemble_gain,
    ensemble_prediction,
    rank_correlation,
    reliability,
    trial_errors,
    trial_spread,
)

#: Calibration file in a run folder (written by ``neuroreduce evaluate``).
CALIBRATION_FILE = "calibration.json"
#: Nominal coverage of the intervals ``evaluate`` calibrates.
DEFAULT_LEVEL = 0.9


def read_calibration(run_dir: str | Path) -> Calibration | None:
    """The calibration saved in ``run_dir``, or ``None`` before ``evaluate`` wrote one."""
    path = Path(run_dir) / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        return Calibration.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        raise ConfigError(f"{path} is unreadable; re-run `neuroreduce evaluate`") from None


def predict_ensemble(run: Any, inputs: np.ndarray, *, calibration: Calibration | None = None,
                     check_range: bool = True, batch_size: int = 256) -> EnsemblePrediction:
    """The ensemble's prediction of ``inputs`` ``[trial, time, input]`` (training units).

    Args:
        run: A loaded run (:func:`~neuroreduce.training.load_run`) or its folder.
        inputs: The stimuli.
        calibration: Scales the spread into intervals; ``None``: the run's saved calibration
            (``calibration.json`` from ``neuroreduce evaluate``) if any.
        check_range: Warn (:class:`OutOfRangeWarning`) for trials outside the training inputs.
        batch_size: Trials per forward pass.

    Returns:
        An :class:`EnsemblePrediction` (``mean``, ``spread``, ``members``, and ``lower``/
        ``upper`` when calibrated), with ``range_report`` set when the run has an envelope.
    """
    from dataclasses import replace

    from neuroreduce.training import load_run, predict

    if isinstance(run, str | Path):
        run = load_run(run)
    members = predict(run, inputs, batch_size=batch_size)
    run_dir = getattr(run, "run_dir", None)
    if calibration is None and run_dir is not None:
        calibration = read_calibration(run_dir)
    result = ensemble_prediction(members, calibration) if members.shape[0] > 1 else (
        ensemble_prediction(members))
    envelope = read_envelope(run_dir) if run_dir is not None else None
    if envelope is not None:
        report = check_inputs(envelope, np.asarray(inputs))
        if check_range:
            warn_outside(report, envelope)
        result = replace(result, range_report=report)
    return result


def _rounded(x: float) -> float | None:
    """6 significant digits; ``None`` (JSON null) for an undefined value."""
    return float(f"{x:.6g}") if np.isfinite(x) else None


def trust_results(dataset: Dataset, predictions: np.ndarray, *,
                  level: float = DEFAULT_LEVEL) -> tuple[dict[str, Any], Calibration | None]:
    """Ensemble gain per split and the calibration of the spread (see the module docstring).

    Args:
        dataset: The evaluated dataset (split assigned), outputs ``[trial, time, output]``.
        predictions: ``[member, trial, time, output]`` for every trial of ``dataset``.
        level: Nominal coverage of the calibrated intervals.

    Returns:
        ``(results, calibration)``: results JSON-able (``ensemble`` per split; ``uncertainty``
        when there are >= 2 members and valid and test trials), and the calibration fitted on
        the valid split (``None`` if it could not be fitted).
    """
    splits = {s: dataset.indices(s) for s in SPLIT_NAMES}
    return trust_of_arrays(dataset.outputs, predictions, splits, level=level)


def trust_of_arrays(truth: np.ndarray, predictions: np.ndarray,
                    splits: dict[str, np.ndarray], *, level: float = DEFAULT_LEVEL
                    ) -> tuple[dict[str, Any], Calibration | None]:
    """:func:`trust_results` on arrays: ``truth [trial, time, channel]`` (NaN = missing),
    ``predictions [member, trial, time, channel]``, trial indices per split name.

    Members with any non-finite prediction (diverged ones) are left out of the ensemble and
    named in ``members_left_out``; undefined values (e.g. a rank correlation over fewer than 3
    trials) are ``None``."""
    finite = np.isfinite(predictions).reshape(predictions.shape[0], -1).all(axis=1)
    out: dict[str, Any] = {"ensemble": {}}
    if not finite.all():
        out["members_left_out"] = np.flatnonzero(~finite).tolist()
        predictions = predictions[finite]
    if predictions.shape[0] == 0:
        return out, None
    for split in SPLIT_NAMES:
        idx = splits.get(split, np.zeros(0, np.int64))
        if idx.size and np.isfinite(truth[idx]).any():
            out["ensemble"][split] = {k: _rounded(v) for k, v in
                                      ensemble_gain(predictions[:, idx], truth[idx]).items()}
    valid = splits.get("valid", np.zeros(0, np.int64))
    test = splits.get("test", np.zeros(0, np.int64))
    if predictions.shape[0] < 2 or not valid.size or not test.size:
        return out, None
    try:
        cal = calibrate(predictions[:, valid], truth[valid], level=level)
    except ConfigError:  # a channel without any known valid value
        return out, None
    pred = ensemble_prediction(predictions[:, test], cal)
    y = truth[test]
    errors = trial_errors(pred.mean, y)
    out["uncertainty"] = {
        "calibrated_on": "valid",
        "level": level,
        "scale": [_rounded(v) for v in cal.scale],
        "test_coverage": _rounded(coverage(pred, y)),
        "test_spearman_trial_spread_vs_error": _rounded(
            rank_correlation(trial_spread(pred.spread, y), errors)),
        "reliability": [{k: _rounded(v) for k, v in p.items()} for p in reliability(
            predictions[:, valid], truth[valid], predictions[:, test], y)],
    }
    return out, cal


def trust_of_fields(dataset: Dataset, predictions: dict[str, np.ndarray], layout: Any,
                    *, level: float = DEFAULT_LEVEL) -> dict[str, Any]:
    """:func:`trust_of_arrays` for every continuous predicted field of a typed task (masked
    values missing), keyed by field name; fields of other kinds are left out."""
    splits = {s: dataset.indices(s) for s in SPLIT_NAMES}
    everything = np.arange(dataset.n_trials)
    out = {}
    for head in layout.heads:
        if head.kind != "continuous" or head.field not in predictions:
            continue
        values, known = dataset.known(head.field, everything)
        truth = np.where(known, np.asarray(values, np.float64), np.nan)
        out[head.field], _ = trust_of_arrays(truth, predictions[head.field], splits,
                                             level=level)
    return out


def write_calibration(run_dir: str | Path, calibration: Calibration) -> None:
    """Save ``calibration`` as the run's ``calibration.json`` (atomically)."""
    write_json_atomic(Path(run_dir) / CALIBRATION_FILE, calibration.to_dict())


def write_predictions(path: str | Path, prediction: EnsemblePrediction, *, run: Any,
                      members: bool = False) -> Path:
    """Write an ensemble prediction as HDF5 (atomically).

    Datasets: ``mean``, ``spread`` and (if calibrated) ``lower``/``upper`` ``[trial, time,
    output]``; ``members`` ``[member, trial, time, output]`` if asked; per trial
    ``input_distance``, ``input_excess_fraction`` ``[trial, input]`` and ``flagged`` when the
    run has an input envelope. Attributes: names, units, ``dt_ms``, ``level``, the run folder.
    """
    import h5py

    from neuroreduce._io import atomic_path, check_output_target

    target = check_output_target(path)
    with atomic_path(target) as tmp, h5py.File(tmp, "w") as f:
        for name in ("mean", "spread", "lower", "upper"):
            values = getattr(prediction, name)
            if values is not None:
                f.create_dataset(name, data=values, compression="gzip")
        if members:
            f.create_dataset("members", data=prediction.members, compression="gzip")
        report = prediction.range_report
        if report is not None:
            f.create_dataset("input_distance", data=report.distance)
            f.create_dataset("input_excess_fraction", data=report.excess_fraction)
            f.create_dataset("flagged", data=report.flagged.astype(np.int8))
        f.attrs["output_names"] = list(run.io.output_names)
        f.attrs["input_names"] = list(run.io.input_names)
        f.attrs["output_units"] = run.io.output_units
        f.attrs["dt_ms"] = run.io.dt_ms
        f.attrs["level"] = np.nan if prediction.level is None else prediction.level
        f.attrs["run_dir"] = str(Path(run.run_dir).resolve())
    return target
