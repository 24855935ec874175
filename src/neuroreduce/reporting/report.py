"""Build a run's report: figures like the paper's, a results table and one static HTML page.

Layout written into ``<run>/report/``: ``index.html`` and ``figures/*.png``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce.datasets.dataset import SPLIT_NAMES
from neuroreduce.errors import CheckpointError
from neuroreduce.evaluation.evaluate import read_results
from neuroreduce.reporting import figures
from neuroreduce.reporting.html import figure, key_values, table, write_page
from neuroreduce.reporting.trust_section import trust_section

REPORT_DIR = "report"


def diverged_members(run_dir: Path) -> list[int]:
    """The members ``provenance.json`` records as diverged (none if it says nothing)."""
    try:
        value = json.loads((Path(run_dir) / "provenance.json").read_text()).get(
            "diverged_members", [])
        return sorted({int(k) for k in value})
    except (OSError, ValueError, TypeError, AttributeError):
        return []


def read_history(run_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read ``history.csv`` into ``epochs [epoch]``, ``train [member, epoch]``, ``valid [member,
    epoch]`` (NaN where a member had stopped early)."""
    path = run_dir / "history.csv"
    if not path.exists():
        raise CheckpointError(f"{path} is missing; train the run first (neuroreduce train)")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise CheckpointError(f"{path} is empty; train the run first (neuroreduce train)")
    epochs = np.array(sorted({int(r["epoch"]) for r in rows}))
    members = sorted({int(r["member"]) for r in rows})
    col = {int(e): k for k, e in enumerate(epochs)}
    train = np.full((len(members), len(epochs)), np.nan)
    valid = np.full_like(train, np.nan)
    for r in rows:
        m, e = int(r["member"]), col[int(r["epoch"])]
        train[m, e] = float(r["train_loss"])
        valid[m, e] = float(r["valid_loss"])
    return epochs, train, valid


def _fmt(stats: dict[str, Any]) -> str:
    return f"{stats['mean']:.3e} ± {stats['std']:.1e}"


def _ordered_splits(results: dict[str, Any]) -> dict[str, Any]:
    """The results' splits in train, valid, test order (JSON files store them sorted)."""
    return {s: results["splits"][s] for s in SPLIT_NAMES if s in results["splits"]}


def _results_tables(results: dict[str, Any], units: str) -> str:
    splits = _ordered_splits(results)
    overall = table(
        ["split", "trials", f"RMSE ({units})", "NRMSE (RMSE / range)"],
        [(s, v["n_trials"], _fmt(v["rmse"]), _fmt(v["nrmse"])) for s, v in splits.items()],
    )
    names = results["output_names"]
    per_neuron = table(
        ["split"] + [f"{n} RMSE ({units})" for n in names],
        [(s, *[_fmt(v["per_output"][n]["rmse"]) for n in names]) for s, v in splits.items()],
    )
    n_seeds = len(results["seeds"])
    return (
        f"<p>Free-running prediction of whole sequences from rest; mean ± std over "
        f"{n_seeds} seed(s).</p>{overall}<h3>Per output neuron</h3>{per_neuron}"
    )


def make_report(
    run_dir: str | Path,
    *,
    dataset_path: str | Path | None = None,
    n_trials_shown: int = 3,
) -> Path:
    """Evaluate (if not done yet) and write the report of ``run_dir``.

    Args:
        run_dir: A trained run folder (``neuroreduce train -o``).
        dataset_path: The dataset, if not the one recorded in the run.
        n_trials_shown: How many test trials to plot.

    Returns:
        Path of ``report/index.html``.
    """
    from neuroreduce import pipeline
    from neuroreduce.models import count_parameters, keras_parameter_count
    from neuroreduce.training import load_run, predict

    run_dir = Path(run_dir)
    run = load_run(run_dir)
    dataset = pipeline.dataset_of_run(run_dir, dataset_path)
    results_path = run_dir / "results.json"
    results = None
    if results_path.exists():
        results = read_results(results_path)
        if results.get("dataset_hash") != dataset.content_hash():
            results = None
    if results is None:
        results = pipeline.evaluate(run_dir, dataset_path=dataset_path)
    if run.io.layout is not None:  # a typed task: figures chosen per field kind
        from neuroreduce.reporting.typed_report import make_typed_report

        return make_typed_report(run_dir, run, dataset, results, n_trials_shown=n_trials_shown)

    out = run_dir / REPORT_DIR
    fig_dir = out / "figures"
    cfg = run.config
    label = f"{cfg.model.upper()}-{cfg.hidden}"
    test_idx = dataset.indices("test")
    shown = test_idx[:n_trials_shown] if test_idx.size else np.arange(min(3, dataset.n_trials))
    pred = predict(run, dataset.inputs[shown])
    time_ms = np.arange(dataset.n_time) * dataset.dt_ms
    figures.plot_test_sequences(
        fig_dir / "test_sequences.png",
        time_ms=time_ms,
        inputs=dataset.inputs[shown],
        outputs_true=dataset.outputs[shown],
        outputs_pred=pred,
        input_names=dataset.input_names,
        output_names=dataset.output_names,
        trial_labels=[f"test trial {i} ({dataset.families[i]})" for i in shown],
        input_units=dataset.input_units,
        output_units=dataset.output_units,
        title=f"{label}: true vs predicted outputs on test stimuli",
    )
    epochs, train_loss, valid_loss = read_history(run_dir)
    best = [int(epochs[np.argmin(np.where(np.isfinite(v), v, np.inf))]) if np.isfinite(v).any()
            else 0 for v in valid_loss]
    diverged = diverged_members(run_dir)
    figures.plot_loss_curves(
        fig_dir / "loss_curves.png",
        epochs=epochs,
        train_loss=train_loss,
        valid_loss=valid_loss,
        best_epochs=best,
        loss_name=cfg.loss.upper(),
        title=f"{label}: training and validation loss ({len(cfg.seeds)} seeds)",
        diverged=diverged, seeds=cfg.seeds,
    )
    names = results["output_names"]
    figures.plot_errors_per_output(
        fig_dir / "errors_per_output.png",
        output_names=names,
        per_split={
            s: (
                np.array([v["per_output"][n]["rmse"]["mean"] for n in names]),
                np.array([v["per_output"][n]["rmse"]["std"] for n in names]),
            )
            for s, v in _ordered_splits(results).items()
        },
        units=dataset.output_units,
        title=f"{label}: RMSE per output neuron (mean ± std over seeds)",
    )
    n_in, n_out = len(dataset.input_names), len(dataset.output_names)
    settings = {
        "model": label,
        "parameters (PyTorch, two biases per gate)": count_parameters(run.member(0)),
        "parameters (paper / Keras, one bias per gate)": keras_parameter_count(
            cfg.model, n_inputs=n_in, n_outputs=n_out, hidden=cfg.hidden
        ),
        "seeds": ", ".join(map(str, cfg.seeds)),
        "epochs (max)": cfg.epochs,
        "batch size": cfg.batch_size,
        "learning rate": cfg.effective_learning_rate,
        "loss": cfg.loss,
        "best validation epoch per seed": ", ".join(map(str, best)),
        "diverged members (frozen at their best weights)": ", ".join(
            f"{k} (seed {cfg.seeds[k]})" for k in diverged) or "none",
        "dataset": f"{dataset.n_trials} trials x {dataset.n_time} samples, dt {dataset.dt_ms} ms",
        "inputs": ", ".join(dataset.input_names) + f" ({dataset.input_units})",
        "outputs": ", ".join(dataset.output_names) + f" ({dataset.output_units})",
        "dataset hash": dataset.content_hash()[:16],
    }
    provenance = {k: v for k, v in dataset.provenance.items() if not isinstance(v, dict | list)}
    trust = trust_section(results, fig_dir, units=dataset.output_units, label=label)
    sections = [
        ("Run", key_values(settings)),
        ("Results", _results_tables(results, dataset.output_units)),
        *([("The ensemble as the surrogate", trust)] if trust else []),
        ("Test sequences", figure("figures/test_sequences.png",
                                  "Top: injected currents. Below: each output neuron, simulator "
                                  "(black) vs surrogate seed mean (dashed) and seed range.")),
        ("Training", figure("figures/loss_curves.png",
                            "Training and validation loss per epoch; band = seed range; dots = "
                            "each seed's best validation epoch (its weights are kept).")),
        ("Errors per neuron", figure("figures/errors_per_output.png",
                                     "RMSE per output neuron and split; bars = mean over seeds, "
                                     "whiskers = std.")),
        ("Dataset provenance", key_values(provenance)),
        ("Files", "<p>Machine-readable results: <code>results.json</code>, "
                  "<code>results.csv</code> in the run folder.</p>"),
    ]
    return write_page(out / "index.html", title=f"neuroreduce report: {label} on "
                      f"{dataset.provenance.get('scenario', 'dataset')}", sections=sections)
