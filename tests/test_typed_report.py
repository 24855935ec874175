"""The report of typed runs: one figure recipe per field kind, each drawn for a tiny run of each
toy task, listed in the HTML page; the recipes' numbers (ROC AUC, confusion counts) checked on
hand-made views with known answers and deliberately wrong controls."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

from neuroreduce.datasets.io import save_dataset
from neuroreduce.errors import ConfigError
from neuroreduce.pipeline import train_from_file
from neuroreduce.reporting import field_figures, field_plots
from neuroreduce.reporting.field_figures import FieldView
from neuroreduce.reporting.report import make_report
from neuroreduce.reporting.typed_report import history_arrays
from neuroreduce.simulators.toy_tasks import TASK_GENERATORS
from neuroreduce.training import TrainConfig, load_run
from neuroreduce.training.task import Head

#: Figures each toy task's report must hold (file name -> what it shows).
EXPECTED = {
    "toy_spikes": ("outputs_traces.png", "spikes_roc.png", "spikes_raster.png",
                   "input_synapses_raster.png", "loss_curves.png"),
    "toy_behaviour": ("behaviour_sequences.png", "behaviour_confusion.png",
                      "input_inputs_traces.png", "loss_curves.png"),
    "toy_subsets": ("activity_traces.png", "input_inputs_traces.png", "loss_curves.png"),
}


def _assert_drawn(path: Path) -> None:
    """A PNG that exists, is not tiny and is not a blank canvas."""
    assert path.stat().st_size > 10_000, path
    pixels = image.imread(path)[..., :3]
    ink = (pixels < 0.9).any(axis=-1).mean()  # fraction of non-white pixels
    assert 0.01 < ink < 0.95, (path, ink)


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny trained and reported run of every toy task: name -> run folder."""
    root = tmp_path_factory.mktemp("typed")
    runs = {}
    for name in EXPECTED:
        data = root / f"{name}.h5"
        save_dataset(TASK_GENERATORS[name].make(12, seed=0, dt_ms=2.0), data)
        run = root / name
        train_from_file(data, TrainConfig(model="gru", hidden=4, seeds=(0, 1), epochs=3,
                                          batch_size=6, learning_rate=0.01), run, progress=False)
        make_report(run)  # evaluates first: no results.json yet
        runs[name] = run
    return runs


@pytest.mark.parametrize("task", list(EXPECTED))
def test_each_field_kind_gets_its_figures_listed_in_the_page(reports, task) -> None:
    run = reports[task]
    page = (run / "report" / "index.html").read_text()
    written = sorted(p.name for p in (run / "report" / "figures").glob("*.png"))
    assert written == sorted(EXPECTED[task])
    for name in EXPECTED[task]:
        _assert_drawn(run / "report" / "figures" / name)
        assert f'src="figures/{name}"' in page
    results = json.loads((run / "results.json").read_text())
    for field, entry in results["fields"].items():
        assert f"Predicted field: {field} ({entry['kind']})" in page
        for metric in entry["splits"]["test"]:
            if metric != "n_trials":
                assert metric in page
    assert "errors_per_output" not in page  # the schema-v1 report's figure


def test_spike_run_shows_term_losses_and_the_ensembles_auc(reports) -> None:
    run = load_run(reports["toy_spikes"])
    _, train, valid, terms = history_arrays(run.history)
    assert set(terms) == {"outputs", "spikes"}
    assert train.shape == valid.shape == terms["spikes"].shape == (2, 3)
    page = (reports["toy_spikes"] / "report" / "index.html").read_text()
    assert "each term" in page and "roc_auc" in page and "synapses (events, 36)" in page


def test_subset_run_marks_unrecorded_channels_missing(reports) -> None:
    page = (reports["toy_subsets"] / "report" / "index.html").read_text()
    assert "activity (continuous)" in page and "rmse (mV)" in page
    assert "Per channel, test split" in page  # six channels: a per-channel table


# ------------------------------------------------------------------ recipes on known answers
def _binary_view(truth: np.ndarray, pred: np.ndarray, mask: np.ndarray | None = None) -> FieldView:
    n_trials, n_time, n_ch = truth.shape
    return FieldView(
        head=Head("spikes", "binary", tuple(f"c{j}" for j in range(n_ch)), 1, 0),
        units="", classes=(), time_ms=np.arange(n_time, dtype=float), truth=truth,
        mask=np.ones(truth.shape, bool) if mask is None else mask, pred=pred,
        trial_labels=tuple(f"trial {i}" for i in range(n_trials)),
        seed_labels=tuple(f"seed {k}" for k in range(pred.shape[0])), n_shown=2,
        split="test", label="GRU-4",
    )


def test_roc_of_a_perfect_and_an_inverted_predictor() -> None:
    rng = np.random.default_rng(0)
    truth = (rng.random((4, 50, 2)) < 0.2).astype(np.float32)
    pred = np.stack([truth * 0.8 + 0.1, 0.9 - truth * 0.8])  # seed 0 right, seed 1 inverted
    curves = field_figures.roc_curves(_binary_view(truth, pred))
    assert len(curves) == 2 and all(len(c) == 2 for c in curves)
    (fpr, tpr, auc_good), (_, _, auc_bad) = curves[0]
    assert auc_good == pytest.approx(1.0) and auc_bad == pytest.approx(0.0)
    assert fpr[0] == 0 and tpr[-1] == 1 and fpr[-1] == 1


def test_roc_skips_masked_samples() -> None:
    truth = np.zeros((1, 20, 1), np.float32)
    truth[0, 5] = 1.0
    pred = np.full((1, 1, 20, 1), 0.1, np.float32)
    pred[0, 0, 5] = 0.9
    mask = np.ones(truth.shape, bool)
    mask[0, 10] = False
    pred[0, 0, 10] = 0.99  # a confident false alarm, but masked: AUC stays 1
    (_, _, auc), = field_figures.roc_curves(_binary_view(truth, pred, mask))[0]
    assert auc == pytest.approx(1.0)
    mask[0, 10] = True  # control: unmasked, it costs
    (_, _, auc), = field_figures.roc_curves(_binary_view(truth, pred, mask))[0]
    assert auc < 1.0


def test_multichannel_binary_field_with_missing_values_draws(tmp_path) -> None:
    rng = np.random.default_rng(1)
    truth = (rng.random((3, 80, 5)) < 0.1).astype(np.float32)
    truth[0, :, 4] = np.nan  # an unrecorded channel
    mask = np.isfinite(truth)
    pred = rng.random((2, 3, 80, 5)).astype(np.float32)
    refs = field_figures.draw_target(_binary_view(truth, pred, mask), tmp_path)
    assert [r.name for r in refs] == ["spikes_roc.png", "spikes_raster.png"]
    for r in refs:
        _assert_drawn(tmp_path / r.name)


def test_confusion_counts_skip_the_ignored_label(tmp_path, monkeypatch) -> None:
    truth = np.array([[[0], [0], [1], [-1], [1]]], np.int16)  # [trial, time, channel]
    probs = np.zeros((1, 1, 5, 1, 2), np.float32)  # predicts class 1 everywhere
    probs[..., 1] = 1.0
    view = FieldView(
        head=Head("behaviour", "categorical", ("state",), 2, 0, -1), units="",
        classes=("forward", "reverse"), time_ms=np.arange(5.0), truth=truth,
        mask=np.ones(truth.shape, bool), pred=probs, trial_labels=("trial 0",),
        seed_labels=("seed 0",), n_shown=1, split="test", label="GRU-4",
    )
    seen = {}
    original = field_plots.plot_confusion_matrix

    def spy(path, *, counts, classes, title=""):
        seen["counts"] = counts
        return original(path, counts=counts, classes=classes, title=title)

    monkeypatch.setattr(field_plots, "plot_confusion_matrix", spy)
    field_figures.draw_target(view, tmp_path)
    np.testing.assert_array_equal(seen["counts"], [[0, 2], [0, 2]])  # the -1 step is not counted


def test_registry_refuses_unknown_and_duplicate_kinds() -> None:
    view = _binary_view(np.zeros((1, 4, 1), np.float32), np.zeros((1, 1, 4, 1), np.float32))
    odd = FieldView(**{**view.__dict__, "head": Head("x", "ordinal", ("c",), 1, 0)})
    with pytest.raises(ConfigError, match="unknown field kind with figures 'ordinal'"):
        field_figures.draw_target(odd, Path("."))
    with pytest.raises(ConfigError, match="already registered"):
        field_figures.register_target_figure("binary", field_figures.TARGET_FIGURES["binary"])
    assert set(field_figures.TARGET_FIGURES) == {"continuous", "binary", "categorical"}
    assert set(field_figures.INPUT_FIGURES) == {"events", "binary", "continuous"}
