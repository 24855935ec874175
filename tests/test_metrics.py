"""Metrics and results tables against closed-form values."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.errors import ConfigError
from neuroreduce.evaluation.evaluate import evaluate_predictions, results_csv, write_results
from neuroreduce.evaluation.metrics import explained_variance, get_metric, nrmse, pooled, rmse


def test_rmse_closed_form() -> None:
    true = np.zeros((2, 5, 2))
    pred = np.zeros((2, 5, 2))
    pred[..., 0] = 3.0  # constant error 3 on channel 0
    pred[0, :, 1] = 1.0  # error 1 on half the samples of channel 1
    np.testing.assert_allclose(rmse(true, pred), [3.0, np.sqrt(0.5)])
    assert pooled("rmse", true, pred) == pytest.approx(np.sqrt((9 * 10 + 1 * 5) / 20))


def test_nrmse_divides_by_range_and_flags_flat_channels() -> None:
    true = np.zeros((1, 4, 2))
    true[0, :, 0] = [0.0, 2.0, 4.0, 1.0]  # range 4
    pred = true + np.array([1.0, 1.0])
    out = nrmse(true, pred)
    assert out[0] == pytest.approx(0.25)
    assert np.isnan(out[1])  # channel 1 is flat: cannot normalise


def test_explained_variance_perfect_and_mean_predictor() -> None:
    rng = np.random.default_rng(0)
    true = rng.normal(size=(3, 50, 2))
    np.testing.assert_allclose(explained_variance(true, true), [1.0, 1.0])
    mean_pred = np.broadcast_to(true.mean(axis=(0, 1)), true.shape)
    np.testing.assert_allclose(explained_variance(true, mean_pred), [0.0, 0.0], atol=1e-12)


def test_shape_mismatch_and_unknown_metric_are_clear() -> None:
    with pytest.raises(ConfigError, match="equal shape"):
        rmse(np.zeros((1, 2, 3)), np.zeros((1, 2, 4)))
    with pytest.raises(ConfigError, match="known metrics: explained_variance, nrmse, rmse"):
        get_metric("mae")


def _dataset() -> Dataset:
    rng = np.random.default_rng(1)
    return Dataset(
        inputs=rng.normal(size=(8, 20, 1)),
        outputs=rng.normal(size=(8, 20, 2)),
        dt_ms=0.5,
        input_names=("i",),
        output_names=("a", "b"),
        split=np.array([0, 0, 0, 0, 1, 1, 2, 2]),
    )


def test_evaluate_predictions_mean_std_over_seeds(tmp_path) -> None:
    ds = _dataset()
    offsets = np.array([0.1, 0.3])  # member k predicts true + offset_k everywhere
    preds = ds.outputs[None] + offsets[:, None, None, None]
    res = evaluate_predictions(ds, preds, seeds=(0, 1))
    test = res["splits"]["test"]
    assert test["n_trials"] == 2
    assert test["rmse"]["per_seed"] == pytest.approx([0.1, 0.3], rel=1e-5)
    assert test["rmse"]["mean"] == pytest.approx(0.2, rel=1e-5)
    assert test["rmse"]["std"] == pytest.approx(np.std([0.1, 0.3], ddof=1), rel=1e-5)
    assert test["per_output"]["b"]["rmse"]["mean"] == pytest.approx(0.2, rel=1e-5)
    rows = list(csv.DictReader(io.StringIO(results_csv(res))))
    assert len(rows) == 3 * 3 * 2  # splits x (ALL + 2 outputs) x (rmse, nrmse)
    json_path, csv_path = write_results(tmp_path, res)
    assert json.loads(json_path.read_text())["seeds"] == [0, 1]
    assert csv_path.read_text().startswith("split,output,metric")
