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


def _rounded(x: float) -> float:
    return float(f"{x:.6g}") if np.isfinite(x) else float("nan")


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
    out: dict[str, Any] = {"ensemble": {}}
    for split in SPLIT_NAMES:
        idx = dataset.indices(split)
        if idx.size:
            out["ensemble"][split] = {k: _rounded(v) for k, v in
                                      ensemble_gain(predictions[:, idx],
                                                    dataset.outputs[idx]).items()}
    valid, test = dataset.indices("valid"), dataset.indices("test")
    if predictions.shape[0] < 2 or not valid.size or not test.size:
        return out, None
    cal = calibrate(predictions[:, valid], dataset.outputs[valid], level=level)
    pred = ensemble_prediction(predictions[:, test], cal)
    truth = dataset.outputs[test]
    errors = trial_errors(pred.mean, truth)
    out["uncertainty"] = {
        "calibrated_on": "valid",
        "level": level,
        "scale": [_rounded(v) for v in cal.scale],
        "test_coverage": _rounded(coverage(pred, truth)),
        "test_spearman_trial_spread_vs_error": _rounded(
            rank_correlation(pred.trial_spread, errors)),
        "reliability": [{k: _rounded(v) for k, v in p.items()} for p in reliability(
            predictions[:, valid], dataset.outputs[valid], predictions[:, test], truth)],
    }
    return out, cal


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
