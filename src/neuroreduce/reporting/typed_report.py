"""The report of a run on typed fields (spike events, binary and label targets, masks, groups).

Written into ``<run>/report/`` like the schema-v1 report (:mod:`neuroreduce.reporting.report`):
``index.html`` with the run's settings, the results table of every predicted field, one
section of figures per predicted field (chosen by its kind,
:mod:`neuroreduce.reporting.field_figures`), the inputs of one trial, and the loss curves with
each objective term's validation loss.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.errors import CheckpointError
from neuroreduce.evaluation.field_results import truth_and_mask
from neuroreduce.reporting import field_figures, figures
from neuroreduce.reporting.field_figures import FieldView, FigureRef, InputView
from neuroreduce.reporting.field_tables import results_tables
from neuroreduce.reporting.html import figure, key_values, write_page
from neuroreduce.reporting.report import diverged_members
from neuroreduce.training.task import TaskLayout


def _figures_html(refs: list[FigureRef]) -> str:
    return "\n".join(figure(f"figures/{r.name}", r.caption) for r in refs)


def _trials(dataset: Dataset) -> tuple[np.ndarray, str]:
    """The test trials (or every trial when there is no test split) and the split's name."""
    test = dataset.indices("test") if dataset.split is not None else np.zeros(0, np.int64)
    if test.size:
        return test, "test"
    return np.arange(dataset.n_trials), "all trials"


def _units(dataset: Dataset, field: str) -> str:
    if field == "outputs":
        return dataset.output_units
    if field == "inputs":
        return dataset.input_units
    return dataset.field(field).spec.units


def history_arrays(
    history: tuple[Any, ...],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``epochs [epoch]``, ``train`` and ``valid [member, epoch]`` and each term's validation
    loss ``[member, epoch]`` (NaN where a member had stopped) from a run's history rows."""
    epochs = np.array(sorted({r.epoch for r in history}))
    members = sorted({r.member for r in history})
    col = {int(e): k for k, e in enumerate(epochs)}
    shape = (len(members), len(epochs))
    train, valid = np.full(shape, np.nan), np.full(shape, np.nan)
    terms: dict[str, np.ndarray] = {}
    for r in history:
        m, e = members.index(r.member), col[r.epoch]
        train[m, e], valid[m, e] = r.train_loss, r.valid_loss
        for name, value in r.terms:
            terms.setdefault(name, np.full(shape, np.nan))[m, e] = value
    return epochs, train, valid, terms


def _input_views(dataset: Dataset, layout: TaskLayout, trial: int, trial_label: str,
                 label: str) -> list[InputView]:
    time_ms = np.arange(dataset.n_time) * dataset.dt_ms
    views = []
    for block in layout.inputs:
        if block.field == "inputs":
            dense, events = dataset.inputs[trial], None
        else:
            values = dataset.field(block.field).values
            events = values.trial(trial) if block.kind == "events" else None  # type: ignore[union-attr]
            dense = None if events is not None else np.asarray(values)[trial]
        views.append(InputView(block.field, block.kind, block.channels,
                               _units(dataset, block.field), time_ms, dense, events,
                               trial_label, label))
    return views


def _field_view(dataset: Dataset, head: Any, pred: np.ndarray, idx: np.ndarray,
                trial_labels: tuple[str, ...], seeds: tuple[int, ...], n_shown: int, split: str,
                label: str) -> FieldView:
    truth, mask = truth_and_mask(dataset, head, idx)
    classes = () if head.field == "outputs" else dataset.field(head.field).spec.classes
    return FieldView(
        head=head, units=_units(dataset, head.field), classes=classes,
        time_ms=np.arange(dataset.n_time) * dataset.dt_ms, truth=truth, mask=mask, pred=pred,
        trial_labels=trial_labels, seed_labels=tuple(f"seed {s}" for s in seeds),
        n_shown=min(n_shown, idx.size), split=split, label=label,
    )


def _settings(run: Any, dataset: Dataset, layout: TaskLayout) -> dict[str, Any]:
    from neuroreduce.models import count_parameters
    from neuroreduce.training.objectives import default_terms

    cfg = run.config
    terms = cfg.objective or default_terms(layout, cfg.loss)

    def term(t: Any) -> str:
        pw = f", pos_weight {t.pos_weight}" if t.pos_weight is not None else ""
        return f"{t.field}: {t.loss}{pw} x {t.weight:g}"

    def size(s: Any) -> str:
        n, what = (s.n_channels, "channel") if s.n_channels else (len(s.classes), "class")
        return f"{n} {what}{'' if n == 1 else ('es' if what == 'class' else 's')}"

    fields = [f"{s.name} ({s.role}, {s.kind}, {size(s)})" for s in dataset.field_specs]
    return {
        "model": f"{cfg.model.upper()}-{cfg.hidden}",
        "model options": ", ".join(f"{k}={v}" for k, v in run.spec.options) or "defaults",
        "parameters per seed": count_parameters(run.member(0)),
        "seeds": ", ".join(map(str, cfg.seeds)),
        "epochs (max)": cfg.epochs,
        "batch size": cfg.batch_size,
        "learning rate": cfg.effective_learning_rate,
        "objective": "; ".join(term(t) for t in terms),
        "inputs": ", ".join(f"{b.field} ({b.kind}, {len(b.channels)})" for b in layout.inputs),
        "predicted fields": ", ".join(f"{h.field} ({h.kind}, {len(h.channels)})"
                                      for h in layout.heads),
        "split": cfg.split.to_dict() if cfg.split is not None else "the dataset's own",
        "best validation epoch per seed": ", ".join(map(str, run.best_epochs)),
        "dataset": f"{dataset.n_trials} trials x {dataset.n_time} samples, dt "
                   f"{dataset.dt_ms} ms",
        "dataset fields": "; ".join(fields),
    }


def make_typed_report(
    run_dir: Path,
    run: Any,
    dataset: Dataset,
    results: dict[str, Any],
    *,
    n_trials_shown: int = 3,
) -> Path:
    """Write the report of a typed run (see the module docstring).

    Args:
        run_dir: The run folder (``report/`` is written into it).
        run: The loaded run (:func:`~neuroreduce.training.load_run`), with a task layout.
        dataset: The data it was trained on (its own split assignment).
        results: Its ``results.json`` (with ``results["fields"]``).
        n_trials_shown: How many test trials to draw as sequences.

    Returns:
        Path of ``report/index.html``.
    """
    from neuroreduce.training import predict_fields

    cfg = run.config
    layout = run.io.task
    provenance = {k: v for k, v in dataset.provenance.items() if not isinstance(v, dict | list)}
    source_hash = dataset.content_hash()
    if cfg.split is not None:  # the pieces the run was trained and tested on (as evaluate)
        from neuroreduce.datasets.pieces import apply_split

        dataset = apply_split(dataset, cfg.split, seed=cfg.seeds[0])
    out, label = run_dir / "report", f"{cfg.model.upper()}-{cfg.hidden}"
    fig_dir = out / "figures"
    idx, split = _trials(dataset)
    trial_labels = tuple(f"{'test' if split == 'test' else 'trial'} {i} "
                         f"({dataset.families[i]})" for i in idx)
    predictions = predict_fields(run, dataset, trials=idx)
    sections = [("Run", key_values({**_settings(run, dataset, layout),
                                    "dataset hash": source_hash[:16]})),
                ("Results", results_tables(results, {h.field: _units(dataset, h.field)
                                                     for h in layout.heads}))]
    refs = []
    for view in _input_views(dataset, layout, int(idx[0]), trial_labels[0], label):
        refs += field_figures.draw_input(view, fig_dir)
    if refs:
        sections.append(("Inputs", _figures_html(refs)))
    for head in layout.heads:
        view = _field_view(dataset, head, predictions[head.field], idx, trial_labels,
                           tuple(cfg.seeds), n_trials_shown, split, label)
        refs = field_figures.draw_target(view, fig_dir)
        sections.append((f"Predicted field: {head.field} ({head.kind})", _figures_html(refs)))
    if not run.history:
        raise CheckpointError(f"{run_dir / 'history.csv'} is missing or empty; train the run "
                              "first (neuroreduce train)")
    epochs, train, valid, terms = history_arrays(run.history)
    figures.plot_loss_terms(
        fig_dir / "loss_curves.png", epochs=epochs, train_loss=train, valid_loss=valid,
        best_epochs=list(run.best_epochs), terms=terms,
        title=f"{label}: training and validation loss ({len(cfg.seeds)} seeds)",
        diverged=diverged_members(run_dir), seeds=cfg.seeds,
    )
    sections.append(("Training", figure(
        "figures/loss_curves.png", "Objective (sum of weighted terms) per epoch; band = seed "
        "range; dots = each seed's best validation epoch (its weights are kept)"
        + ("; right: each term's validation loss." if terms else "."))))
    sections += [("Dataset provenance", key_values(provenance)),
                 ("Files", "<p>Machine-readable results: <code>results.json</code>, "
                           "<code>results.csv</code> in the run folder.</p>")]
    name = provenance.get("scenario") or provenance.get("generator") or "dataset"
    return write_page(out / "index.html", title=f"neuroreduce report: {label} on {name}",
                      sections=sections)
