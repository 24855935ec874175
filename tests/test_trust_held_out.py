"""Trust on held-out families: per-dataset records and their pooled, cross-family summary."""

from __future__ import annotations

import numpy as np
import pytest

from neuroreduce.trust.held_out import battery_summary, held_out_trust
from neuroreduce.trust.range_check import envelope_of
from neuroreduce.trust.uncertainty import calibrate


def _family(seed: int, error_scale: float, n: int = 12, members: int = 6):
    """Predictions whose error and member spread share a per-trial scale sigma (known answer);
    the common error is ``error_scale`` times larger than the spread suggests."""
    rng = np.random.default_rng(seed)
    sigma = rng.uniform(0.2, 2.0, n)[:, None, None]
    center = rng.normal(size=(n, 40, 1)) * sigma * error_scale
    preds = (center[None] + rng.normal(size=(members, n, 40, 1)) * sigma[None]).astype(
        np.float32)
    inputs = rng.normal(size=(n, 40, 2)) * error_scale
    return preds, np.zeros((n, 40, 1)), inputs


def test_spread_ranks_pooled_trials_and_cross_family_calibration_recovers_coverage() -> None:
    cal_p, cal_y, train_x = _family(0, 1.0, n=30)
    calibration = calibrate(cal_p, cal_y, level=0.9)
    envelope = envelope_of(train_x, ("a", "b"))
    # held-out errors are 3x what the spread says on the calibration data: valid-calibrated
    # intervals under-cover; calibrating on the other held-out families fixes that
    blocks = {f"fam{k}": held_out_trust(*_family(10 + k, 3.0)[:2], calibration, envelope,
                                        _family(10 + k, 3.0)[2]) for k in range(4)}
    summary = battery_summary(blocks)
    assert summary["n_trials"] == 48
    assert summary["spearman_spread_vs_error"] > 0.8
    assert summary["coverage_valid_calibrated"] < 0.75
    assert summary["coverage_cross_family"] == pytest.approx(0.9, abs=0.04)
    assert summary["spearman_distance_vs_error"] is not None
    assert set(summary["per_family"]) == set(blocks)


def test_a_spread_that_knows_nothing_does_not_rank_trials() -> None:
    """Control: members share no scale with the error."""
    rng = np.random.default_rng(3)
    blocks = {}
    for k in range(3):
        preds, truth, inputs = _family(20 + k, 1.0)
        noise = rng.normal(size=preds.shape).astype(np.float32) * 0.5
        flat = preds.mean(0, keepdims=True) + noise  # constant spread, unrelated to error
        blocks[f"f{k}"] = held_out_trust(flat, truth, None, None, inputs)
    summary = battery_summary(blocks)
    assert abs(summary["spearman_spread_vs_error"]) < 0.4
    assert "coverage_cross_family" not in summary


def test_experiment_report_says_where_the_surrogate_can_be_trusted(tmp_path) -> None:
    """A toy experiment with three held-out battery families: the trust analysis and section."""
    import json

    from typer.testing import CliRunner

    from neuroreduce.cli import app

    families = {"bat_anti": "bat_anti_phase", "bat_over": "bat_over_range",
                "bat_sparse": "bat_sparse_events"}
    held = "".join(f'[datasets.{n}]\nscenario = "toy"\nstimuli = 4\ndt_out_ms = 1.0\nseed = 1\n'
                   f'families = ["{f}"]\nrole = "test"\n\n' for n, f in families.items())
    (tmp_path / "t.toml").write_text(
        '[experiment]\nname = "t"\ntitle = "t"\ndescription = "t"\nseeds = 3\n'
        'metrics = ["rmse"]\n\n[datasets.toy]\nscenario = "toy"\nstimuli = 16\n'
        'dt_out_ms = 1.0\nseed = 0\n\n' + held + '[training]\nepochs = 20\nbatch_size = 4\n'
        'learning_rate = 0.02\n\n[[grid]]\ndatasets = ["toy"]\nmodels = ["gru"]\nhidden = [6]\n\n'
        f'[evaluate]\nextra = {json.dumps(list(families))}\n\n[analysis]\nspeed = false\n')
    result = CliRunner().invoke(app, ["experiment", "run", str(tmp_path / "t.toml"), "-o",
                                      str(tmp_path / "out"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    trust = json.loads((tmp_path / "out" / "analysis" / "trust.json").read_text())
    cell = trust["cells"]["toy/gru-6"]
    assert set(cell["families"]) == set(families) and cell["summary"]["n_trials"] == 12
    over = cell["families"]["bat_over"]  # 1.5x the training amplitudes: flagged, and worse
    assert over["flagged_fraction"] == 1.0 and over["ratio"] > 1.5
    assert cell["families"]["bat_anti"]["flagged_fraction"] == 0.0
    page = (tmp_path / "out" / "report" / "index.html").read_text()
    assert "Where the surrogate can be trusted" in page and "cross-family" in page
