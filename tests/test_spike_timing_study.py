"""Spike-timing scoring of model heads and the declared ``spike_timing`` study."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.fields import Field, FieldSpec
from neuroreduce.errors import ConfigError
from neuroreduce.evaluation import spike_scoring as ss
from neuroreduce.evaluation.field_results import evaluate_fields
from neuroreduce.training.task import TaskLayout

DT = 0.2
N_TIME = 2501  # 500 ms


def _layout_dataset(n_stim: int = 2, reps: int = 3, *, jitter_ms: float = 4.0,
                    seed: int = 0) -> Dataset:
    """Spike-timing layout: per stimulus 20 spike times, each repetition jittered by up to
    ``jitter_ms``; voltage -65 mV with +20 mV at each spike sample; binary ``spikes``."""
    rng = np.random.default_rng(seed)
    n = n_stim * reps
    v = np.full((n, N_TIME, 1), -65.0, np.float32)
    s = np.zeros((n, N_TIME, 1), np.float32)
    for st in range(n_stim):
        base = np.sort(rng.choice(np.arange(100, N_TIME - 100, 50), 20, replace=False))
        for r in range(reps):
            k = st * reps + r
            idx = base + rng.integers(-int(jitter_ms / DT), int(jitter_ms / DT) + 1, base.size)
            v[k, idx, 0] = 20.0
            s[k, idx, 0] = 1.0
    names = tuple(f"{i:02d}" for i in range(n_stim))
    stim = np.repeat(np.arange(n_stim), reps).astype(np.int32)
    return Dataset(
        inputs=rng.normal(size=(n, N_TIME, 1)).astype(np.float32), outputs=v, dt_ms=DT,
        input_names=("current",), output_names=("voltage",), input_units="pA",
        output_units="mV", families=tuple(names[i] for i in stim),
        split=np.full(n, 2, np.int8),
        fields=(Field(FieldSpec("spikes", "target", "binary", ("soma",), "spikes"), s),
                Field(FieldSpec("stimulus", "group", "categorical", classes=names), stim)))


def _layout(data: Dataset) -> TaskLayout:
    return TaskLayout.from_specs(data.field_specs)


def test_event_trace_and_count_matched_threshold() -> None:
    p = np.array([[0.1, 0.7, 0.8, 0.2, 0.6, 0.1, 0.3, 0.9]])
    np.testing.assert_array_equal(ss.event_trace(p, 0.5)[0], [0, 1, 0, 0, 1, 0, 0, 1])
    assert ss.upward_crossings(p, 0.65) == 2
    thr = ss.count_matched_threshold(p, 2)
    assert ss.upward_crossings(p, thr) == 2 and 0.6 <= thr <= 0.7
    assert ss.upward_crossings(p, 0.5) == 3  # control: the default threshold gives 3


def test_options_are_checked() -> None:
    assert ss.SpikeScoring.from_dict({"coincidence_window_ms": 4}).coincidence_window_ms == 4
    with pytest.raises(ConfigError, match="allowed"):
        ss.SpikeScoring.from_dict({"window": 4})
    with pytest.raises(ConfigError, match="coincidence_window_ms"):
        ss.SpikeScoring(coincidence_window_ms=0)
    with pytest.raises(ConfigError, match="probability_threshold"):
        ss.SpikeScoring(probability_threshold=1.5)


def _scores(data: Dataset, volt: np.ndarray, prob: np.ndarray, **opts: object) -> dict:
    preds = {"outputs": volt[None], "spikes": prob[None]}
    metrics = {"spike_times": ss.DEFAULT_SPIKE_METRICS}
    return evaluate_fields(data, preds, _layout(data), metrics=metrics, splits=("test",),
                           spike_options=ss.SpikeScoring(n_bootstrap=200, **opts))


def test_perfect_prediction_scores_gamma_one_per_stimulus_and_overall() -> None:
    data = _layout_dataset()
    out = _scores(data, data.outputs, data.field("spikes").values)
    volt, spk = out["outputs"]["splits"]["test"], out["spikes"]["splits"]["test"]
    assert volt["gamma"]["mean"] == pytest.approx(1.0)
    g_int = volt["gamma_intrinsic"]["mean"]
    assert 0.2 < g_int < 0.95  # jitter up to 4 ms, window 2 ms: reliable, not perfect
    # predicting each repetition exactly: Gamma_A = 1 / Gamma_int, per stimulus
    per_int = volt["gamma_intrinsic"]["per_stimulus"]
    per_a = volt["gamma_normalised"]["per_stimulus"]
    for name in ("00", "01"):
        assert per_a[name]["mean"] == pytest.approx(1.0 / per_int[name]["mean"], rel=1e-9)
    assert volt["gamma_normalised"]["mean"] == pytest.approx(
        np.mean([1.0 / per_int[n]["mean"] for n in ("00", "01")]), rel=1e-9)
    assert g_int == pytest.approx(np.mean([per_int[n]["mean"] for n in ("00", "01")]))
    assert set(volt["gamma_normalised"]["per_stimulus"]) == {"00", "01"}
    assert volt["spike_count_error"]["mean"] == 0.0
    assert spk["gamma"]["mean"] == pytest.approx(1.0)
    assert spk["probability_threshold"]["rule"] == "fixed"
    assert spk["probability_threshold"]["mean"] == 0.5
    assert "subthreshold_rmse" not in spk and "subthreshold_rmse" in volt


def test_shifted_and_random_predictions_score_lower() -> None:
    data = _layout_dataset()
    shifted = np.roll(data.outputs, int(3.0 / DT), axis=1)  # 3 ms late: outside +-2 ms
    out = _scores(data, shifted, data.field("spikes").values)["outputs"]["splits"]["test"]
    assert out["gamma"]["mean"] < 0.2
    wide = _scores(data, shifted, data.field("spikes").values, coincidence_window_ms=4.0)
    assert wide["outputs"]["splits"]["test"]["gamma"]["mean"] > 0.9  # a 4 ms window takes it


def test_probability_threshold_count_matches_training_spike_count() -> None:
    data = _layout_dataset()
    data = Dataset(**{**data.__dict__, "split": np.array([0, 0, 2, 0, 0, 2], np.int8)})
    truth = data.field("spikes").values
    prob = 0.3 * truth + 0.05  # peaks 0.35 < 0.5: no spike at the default threshold
    at_half = _scores(data, data.outputs, prob)["spikes"]["splits"]["test"]
    assert np.isnan(at_half["gamma"]["mean"]) or at_half["gamma"]["mean"] < 0.05
    counted = _scores(data, data.outputs, prob, probability_threshold="count")
    block = counted["spikes"]["splits"]["test"]
    assert block["gamma"]["mean"] == pytest.approx(1.0)
    assert block["probability_threshold"]["rule"] == "count"
    assert 0.05 < block["probability_threshold"]["mean"] <= 0.35


def test_masked_padding_does_not_count_as_time() -> None:
    """A piece padded with missing samples has the rate of its own duration."""
    data = _layout_dataset()
    out = np.array(data.outputs)
    out[:, 1500:] = np.nan  # the last 200 ms are missing
    cut = Dataset(**{**data.__dict__, "outputs": out})
    short = Dataset(**{**data.__dict__, "outputs": data.outputs[:, :1500],
                       "inputs": data.inputs[:, :1500],
                       "fields": (Field(data.field("spikes").spec,
                                        data.field("spikes").values[:, :1500]),
                                  data.field("stimulus"))})
    pred = np.roll(data.outputs, 4, axis=1)
    a = _scores(cut, pred, data.field("spikes").values)["outputs"]["splits"]["test"]
    b = _scores(short, pred[:, :1500], short.field("spikes").values)["outputs"]["splits"]["test"]
    assert a["gamma_intrinsic"]["mean"] == pytest.approx(b["gamma_intrinsic"]["mean"])
    assert a["gamma"]["mean"] == pytest.approx(b["gamma"]["mean"])


def test_spike_metrics_are_selectable_in_experiment_files() -> None:
    from neuroreduce.experiments.spec import parse_experiment, scorable_metrics

    assert {"gamma_normalised", "gamma_intrinsic", "gamma_normalised_se"} <= set(
        scorable_metrics())
    doc = {"experiment": {"name": "x", "seeds": 1, "metrics": ["gamma_normalised", "rmse"]},
           "datasets": {"d": {"path": "d.h5"}},
           "evaluate": {"spike_timing": {"coincidence_window_ms": 4.0}},
           "grid": [{"datasets": "d", "models": "gru", "hidden": 4}]}
    spec = parse_experiment(doc)
    assert spec.metrics == ("gamma_normalised", "rmse")
    assert spec.to_dict()["evaluate"]["spike_timing"] == {"coincidence_window_ms": 4.0}
    doc["evaluate"] = {"spike_timing": {"window_ms": 4.0}}
    with pytest.raises(ConfigError, match="spike_timing"):
        parse_experiment(doc)


def test_json_of_scores_is_plain() -> None:
    data = _layout_dataset()
    out = _scores(data, data.outputs, data.field("spikes").values)
    json.dumps(out)  # a results.json block: plain types only


# ------------------------------------------------------------------------- the declared study
ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "experiments" / "spike_timing" / "tiny.toml"


def test_winner_criterion_needs_more_than_one_error() -> None:
    from neuroreduce.studies.spike_timing.scores import winner

    clear = winner({"a": {"gamma_A": 0.8, "se": 0.05}, "b": {"gamma_A": 0.6, "se": 0.05}})
    assert clear["label"] == "a" and clear["holds"] is True
    close = winner({"a": {"gamma_A": 0.8, "se": 0.05}, "b": {"gamma_A": 0.76, "se": 0.05}})
    assert close["label"] == "a" and close["holds"] is False  # control: within one error
    assert close["margins"]["b"]["beats"] is False


def test_rescoring_scales_times_with_the_assumed_sampling_interval() -> None:
    from neuroreduce.studies.spike_timing.scores import rescored

    data = [[10.0, 50.0, 90.0], [10.4, 50.4, 90.4]]
    trials = [{"split": "test", "stimulus": "00", "duration_ms": 200.0,
               "data": {"outputs": d}, "model": {"outputs": [[t + 1.0 for t in d]]}}
              for d in data]
    rec = {"dt_ms": 0.2, "trials": trials}
    # 1 ms late: inside +-2 ms at dt 0.2; x5 at an assumed dt of 1 ms: 5 ms late, outside
    assert rescored(rec, "outputs", window_ms=2.0) > 0.9
    assert rescored(rec, "outputs", window_ms=2.0, dt_ms=1.0) < 0.1
    assert rescored(rec, "outputs", window_ms=4.0, dt_ms=0.2) > 0.9


@pytest.mark.slow
def test_tiny_study_end_to_end(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from neuroreduce.cli import app

    out = tmp_path / "tiny"
    r = CliRunner().invoke(app, ["experiment", "run", str(TINY), "-o", str(out)],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    analysis = json.loads((out / "analysis" / "spike_timing.json").read_text())
    entry = analysis["datasets"]["adex"]
    assert {"GRU-8", "PLRNN-8", "PLRNN-8 gtf", "RIDGE_ARX-50"} <= set(entry["models"])
    for m in entry["models"].values():
        assert set(m["per_stimulus"]) == {"00", "01"}
        assert m["gamma_int"] > 0.3  # the simulated cell is reliable across repetitions
    assert entry["winner"]["holds"] in (True, False)
    for kind in ("raster", "traces", "sensitivity"):
        assert Path(entry["figures"][kind]).stat().st_size > 1000
    paragraphs = json.loads((out / "analysis" / "conclusions.json").read_text())["paragraphs"]
    kinds = {p["kind"]: p for p in paragraphs}
    assert {"spike_ranking", "spike_winner", "spike_sensitivity", "spike_cost"} <= set(kinds)
    assert kinds["spike_winner"]["holds"] is entry["winner"]["holds"]
    report = (out / "report" / "index.html").read_text()
    assert "Spike timing on adex" in report and "adex_raster.png" in report
    cfg = json.loads((out / "cells" / "adex__plrnn-8__gtf" / "config.json").read_text())
    assert cfg["train"]["forcing"] == "generalised"  # recorded in the run config


def test_evaluate_cli_scores_spike_timing_per_stimulus(tmp_path: Path) -> None:
    import torch
    from typer.testing import CliRunner

    from neuroreduce.cli import app
    from neuroreduce.datasets.io import save_dataset
    from neuroreduce.training import TrainConfig, train

    torch.set_num_threads(1)
    data = _layout_dataset(reps=4)
    data = Dataset(**{**data.__dict__, "split": np.array([0, 1, 2, 2] * 2, np.int8)})
    save_dataset(data, tmp_path / "d.h5")
    run = tmp_path / "run"
    train(data, TrainConfig(model="gru", hidden=4, epochs=1, learning_rate=0.01,
                            engine="packed"), run,
          progress=False, dataset_path=tmp_path / "d.h5")
    r = CliRunner().invoke(app, ["evaluate", str(run), "--dataset", str(tmp_path / "d.h5"),
                                 "--spike-option",
                                 "coincidence_window_ms=4", "--spike-option",
                                 "probability_threshold=count"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    results = json.loads((run / "results.json").read_text())
    test = results["fields"]["spikes"]["splits"]["test"]
    assert set(test["gamma_normalised"]["per_stimulus"]) == {"00", "01"}
    assert test["probability_threshold"]["rule"] == "count"
    assert "gamma_intrinsic" in results["fields"]["outputs"]["splits"]["test"]
    bad = CliRunner().invoke(app, ["evaluate", str(run), "--dataset", str(tmp_path / "d.h5"),
                                   "--spike-option", "window=4"])
    assert bad.exit_code == 2 and "allowed" in bad.output


def test_spike_record_times_start_at_the_scored_segment_of_a_piece_with_context() -> None:
    """A time_segment test piece carries the earlier samples as unscored context: the record's
    spike times and voltage excerpt start where scoring starts (rasters show the test part)."""
    from neuroreduce.datasets.pieces import apply_split
    from neuroreduce.datasets.split_strategies import SplitSpec
    from neuroreduce.evaluation.spike_record import spike_record

    data = _layout_dataset()
    split = SplitSpec("time_segment", {"train_ms": 300.0, "valid_ms": 50.0,
                                       "context": "preceding"})
    pieces = apply_split(data, split)
    test = pieces.indices("test")
    layout = _layout(pieces)
    preds = {"outputs": pieces.outputs[None], "spikes": pieces.field("spikes").values[None]}
    record = spike_record(pieces, preds, layout, ss.SpikeScoring.from_dict(None))
    start = int(round(350.0 / DT))  # the test segment's first sample in the source trial
    for i in test:
        trial = record["trials"][i]
        times = np.asarray(trial["data"]["outputs"])
        assert times.size and times.min() >= 0 and times.max() <= trial["duration_ms"]
        assert trial["model"]["outputs"][0] == trial["data"]["outputs"]
    # the excerpt starts at the test segment, where the recording is known (not NaN)
    ex = record["voltage"][0]
    assert ex["start_ms"] == pytest.approx(start * DT)
    assert len(ex["true"]) > 0 and not np.isnan(ex["true"]).any()
