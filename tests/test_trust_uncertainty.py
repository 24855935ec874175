"""The ensemble as the surrogate: ensemble mean, calibrated spread, range flags, step API."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from neuroreduce.cli import app
from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.io import save_dataset
from neuroreduce.errors import ConfigError
from neuroreduce.training import TrainConfig, load_run, predict
from neuroreduce.trust.deployed_ensemble import deployed_ensemble
from neuroreduce.trust.predict import predict_ensemble, read_calibration, trust_results
from neuroreduce.trust.range_check import (
    OutOfRangeWarning,
    check_inputs,
    envelope_of,
    read_envelope,
)
from neuroreduce.trust.uncertainty import (
    calibrate,
    coverage,
    ensemble_gain,
    ensemble_prediction,
    rank_correlation,
    reliability,
    trial_errors,
)


# ------------------------------------------------------------------ known-answer ensembles
def _heteroscedastic(seed: int, n_trials: int = 60, members: int = 8):
    """Truth 0; each trial has its own noise level sigma_t, shared by the truth's deviation and
    the members' scatter: the members' spread is an unbiased (x sqrt(M/(M-1))) estimate of the
    error scale, so calibrated intervals must cover their nominal level."""
    rng = np.random.default_rng(seed)
    sigma = rng.uniform(0.1, 2.0, n_trials)[:, None, None]
    center = rng.normal(size=(n_trials, 50, 2)) * sigma  # the ensemble's common error
    preds = center[None] + rng.normal(size=(members, n_trials, 50, 2)) * sigma[None]
    truth = np.zeros((n_trials, 50, 2))
    # truth - mean: -center - noise/M ... scale ~ sigma; spread ~ sigma
    return preds.astype(np.float32), truth, sigma[:, 0, 0]


def test_calibrated_intervals_cover_their_nominal_level_on_held_out_trials() -> None:
    cal_p, cal_y, _ = _heteroscedastic(0)
    test_p, test_y, sigma = _heteroscedastic(1)
    for level in (0.5, 0.9):
        cal = calibrate(cal_p, cal_y, level=level)
        got = coverage(ensemble_prediction(test_p, cal), test_y)
        assert abs(got - level) < 0.03, (level, got)  # tolerance: 3 points of coverage
    points = reliability(cal_p, cal_y, test_p, test_y, levels=(0.2, 0.8))
    assert [p["nominal"] for p in points] == [0.2, 0.8]
    assert all(abs(p["observed"] - p["nominal"]) < 0.03 for p in points)
    # the spread ranks trials by their real error (it was built to)
    pred = ensemble_prediction(test_p)
    assert rank_correlation(pred.trial_spread, trial_errors(pred.mean, test_y)) > 0.9


def test_a_spread_unrelated_to_the_error_fails_the_checks() -> None:
    """Control: members scattered with a shuffled noise level carry no information."""
    cal_p, cal_y, _ = _heteroscedastic(0)
    test_p, test_y, _ = _heteroscedastic(1)
    rng = np.random.default_rng(5)
    shuffled = test_p.mean(0, keepdims=True) + (test_p - test_p.mean(0, keepdims=True))[
        :, rng.permutation(test_p.shape[1])]
    pred = ensemble_prediction(shuffled)
    rho = rank_correlation(pred.trial_spread, trial_errors(pred.mean, test_y))
    assert abs(rho) < 0.4
    cal = calibrate(cal_p, cal_y, level=0.9)
    # coverage is no longer uniform: high-error trials with a small borrowed spread miss
    per_trial = [coverage(ensemble_prediction(shuffled[:, [t]], cal), test_y[[t]])
                 for t in range(test_p.shape[1])]
    assert min(per_trial) < 0.5


def test_ensemble_gain_on_independent_member_errors() -> None:
    """M members with independent unit errors: the mean's RMSE is 1/sqrt(M) of a member's."""
    rng = np.random.default_rng(0)
    preds = rng.normal(size=(16, 40, 200, 1))
    gain = ensemble_gain(preds, np.zeros((40, 200, 1)))
    assert gain["member_rmse_mean"] == pytest.approx(1.0, abs=0.01)
    assert gain["ensemble_mean_rmse"] == pytest.approx(0.25, abs=0.01)
    assert gain["gain"] == pytest.approx(0.75, abs=0.01)


@pytest.mark.parametrize(("call", "match"), [
    (lambda: calibrate(np.zeros((1, 2, 3, 1)), np.zeros((2, 3, 1))), "at least 2 seeds"),
    (lambda: calibrate(np.zeros((2, 2, 3, 1)), np.zeros((2, 4, 1))), "does not match"),
    (lambda: calibrate(np.zeros((2, 2, 3, 1)), np.zeros((2, 3, 1)), level=1.0), "in \\(0, 1\\)"),
    (lambda: ensemble_prediction(np.zeros((2, 3, 1))), "\\[member, trial, time, output\\]"),
    (lambda: envelope_of(np.zeros((1, 5, 2)), ("a", "b")), "at least 2 training trials"),
])
def test_bad_input_is_one_line(call, match) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------- range flags
def _stimuli(seed: int, n: int, amp: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, 200)
    out = np.empty((n, 200, 2))
    for i in range(n):
        for j in range(2):
            out[i, :, j] = amp * rng.uniform(0.2, 1.0) * np.sin(2 * np.pi * rng.uniform(1, 4) * t
                                                                 + rng.uniform(0, 6))
    return out


def test_flag_fires_beyond_the_range_and_not_for_training_inputs() -> None:
    train_x = _stimuli(0, 40)
    env = envelope_of(train_x, ("a", "b"))
    on_train = check_inputs(env, train_x)
    assert not on_train.flagged.any()
    fresh = check_inputs(env, _stimuli(1, 40))  # same generator, new draws
    assert fresh.flagged.mean() <= 0.1
    big = check_inputs(env, _stimuli(1, 10) * 1.5)
    assert big.out_of_range.mean() >= 0.5
    assert big.excess_fraction.max() > 0.1
    silent = _stimuli(2, 5)
    silent[:, :, 1] = 0.0  # one input silent: inside the range, unlike every training trial
    report = check_inputs(env, silent)
    assert not report.out_of_range.any() and report.unlike.all()


# ------------------------------------------------------------------ with a trained run
def _dataset(seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    u = np.clip(0.5 + 0.2 * rng.normal(size=(24, 40, 2)), 0, None).astype(np.float32)
    y = np.zeros((24, 40, 1))
    for t in range(1, 40):
        y[:, t] = 0.8 * y[:, t - 1] + u[:, t, :1] - 0.3 * u[:, t, 1:]
    split = np.array([0] * 12 + [1] * 6 + [2] * 6)
    return Dataset(u, (y - 60).astype(np.float32), 0.5, ("a", "b"), ("v",), split=split)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("trust")
    save_dataset(_dataset(), folder / "d.h5")
    from neuroreduce.pipeline import evaluate, train_from_file

    train_from_file(folder / "d.h5", TrainConfig(model="gru", hidden=4, seeds=(0, 1, 2),
                                                 epochs=3, batch_size=4), folder / "run",
                    progress=False)
    evaluate(folder / "run")
    return folder / "run"


def test_evaluate_reports_the_ensemble_gain_and_saves_a_calibration(run: Path) -> None:
    results = json.loads((run / "results.json").read_text())
    test = results["ensemble"]["test"]
    assert test["ensemble_mean_rmse"] <= test["member_rmse_mean"] + 1e-9
    unc = results["uncertainty"]
    assert unc["level"] == 0.9 and 0.0 <= unc["test_coverage"] <= 1.0
    assert len(unc["reliability"]) == 11
    assert read_calibration(run) is not None and read_envelope(run) is not None


def test_predict_ensemble_intervals_and_warning(run: Path) -> None:
    loaded = load_run(run)
    x = _dataset(1).inputs
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfRangeWarning)
        pred = predict_ensemble(loaded, x[:4])  # same generator: no warning
    members = predict(loaded, x[:4])
    np.testing.assert_allclose(pred.mean, members.mean(0), atol=1e-5)
    assert pred.lower is not None and (pred.lower <= pred.mean).all()
    assert (pred.upper >= pred.mean).all()
    with pytest.warns(OutOfRangeWarning, match="beyond the training range"):
        far = predict_ensemble(loaded, x[:4] * 3.0)
    assert far.range_report.out_of_range.all()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_deployed_ensemble_steps_like_it_runs_and_matches_predict(run: Path) -> None:
    module = torch.jit.script(deployed_ensemble(run))
    x = torch.from_numpy(_dataset(2).inputs[:3])
    with torch.no_grad():
        mean, spread = module(x)
        state = module.init(3)
        steps = []
        for t in range(x.shape[1]):
            m, _, state = module.step(x[:, t], state)
            steps.append(m)
    np.testing.assert_allclose(torch.stack(steps, 1).numpy(), mean.numpy(), atol=1e-4)
    members = predict(load_run(run), x.numpy())
    np.testing.assert_allclose(mean.numpy(), members.mean(0), atol=1e-4)
    np.testing.assert_allclose(spread.numpy(), members.std(0), atol=1e-4)


def test_cli_predict_and_ensemble_export(run: Path, tmp_path: Path) -> None:
    data = _dataset(3)
    save_dataset(data, tmp_path / "new.h5")
    result = CliRunner().invoke(app, ["predict", str(run), str(tmp_path / "new.h5"), "-o",
                                      str(tmp_path / "p.h5")])
    assert result.exit_code == 0, result.output
    with h5py.File(tmp_path / "p.h5") as f:
        assert f["mean"].shape == (24, 40, 1) and f["flagged"].shape == (24,)
        assert f.attrs["level"] == 0.9
    exported = CliRunner().invoke(app, ["export", str(run), "-o", str(tmp_path / "e.pt"),
                                        "--format", "torchscript", "--ensemble"])
    assert exported.exit_code == 0, exported.output
    meta = json.loads((tmp_path / "e.pt.json").read_text())
    assert meta["members"] == 3 and meta["calibration"]["level"] == 0.9
    refused = CliRunner().invoke(app, ["export", str(run), "-o", str(tmp_path / "e.onnx"),
                                       "--ensemble"])
    assert refused.exit_code != 0 and "--format torchscript" in refused.output


def test_trust_results_without_an_ensemble_reports_only_the_gain() -> None:
    data = _dataset()
    preds = np.repeat(data.outputs[None], 1, axis=0)
    results, cal = trust_results(data, preds)
    assert cal is None and "uncertainty" not in results
    assert results["ensemble"]["test"]["ensemble_mean_rmse"] == 0.0


def test_report_shows_the_ensemble_section_and_reliability_diagram(run: Path) -> None:
    from neuroreduce.reporting.report import make_report

    page = make_report(run).read_text()
    assert "The ensemble as the surrogate" in page and "Spearman rho" in page
    assert (run / "report" / "figures" / "reliability.png").stat().st_size > 1000


def test_missing_truth_is_ignored_by_gain_calibration_and_coverage() -> None:
    from neuroreduce.trust.predict import trust_of_arrays

    cal_p, cal_y, _ = _heteroscedastic(0, n_trials=40)
    truth = cal_y.copy()
    truth[:, :10] = np.nan  # the first 10 samples of every trial unknown
    poisoned = cal_p.copy()
    poisoned[:, :, :10] = 1e6  # predictions there must not count
    splits = {"train": np.arange(0, 10), "valid": np.arange(10, 25), "test": np.arange(25, 40)}
    results, cal = trust_of_arrays(truth, poisoned, splits)
    clean, _ = trust_of_arrays(truth, cal_p, splits)
    assert results == clean and cal is not None
    assert abs(results["uncertainty"]["test_coverage"] - 0.9) < 0.05
