"""The HTML report of an experiment folder (or the index page of a suite folder).

``make_experiment_report(exp_dir)`` writes ``<exp_dir>/report/index.html`` and
``report/figures/*.png``: the results table, the sections of the experiment's study (e.g. our
results next to a published table), conclusions, loss curves and test sequences, error vs size,
out-of-distribution errors, attribution next to ablation, speed, wall time and provenance. It
reads the runner's files and the analyses' JSON (``analysis/``); missing analyses are simply
left out. For a suite folder
(``suite.json``) it writes an index linking each member's report and a combined error-vs-size
figure.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce.errors import CheckpointError
from neuroreduce.experiments.expfiles import (
    ANALYSIS_DIR,
    CellSummary,
    dataset_behaviours,
    load_cell_data,
    read_cells,
    read_json,
)
from neuroreduce.reporting import experiment_figures as xf
from neuroreduce.reporting.html import figure, key_values, table, write_page
from neuroreduce.studies.base import CellField, Study

REPORT_DIR = "report"
SUITE_JSON = "suite.json"
MAX_SEQUENCE_MODELS = 6
MAX_SEQUENCE_OUTPUTS = 4


def _g(x: Any) -> str:
    if x is None:
        return "-"
    x = float(x)
    return "nan" if not np.isfinite(x) else f"{x:.3g}"


def _pm(mean: Any, std: Any) -> str:
    return f"{_g(mean)} ± {_g(std)}"


def make_experiment_report(exp_dir: Path) -> Path:
    """Write the report of an experiment folder (or a suite folder's index).

    Returns:
        Path of ``report/index.html``.

    Raises:
        CheckpointError: if the folder holds no experiment run.
    """
    from neuroreduce.studies.registry import study_of

    exp_dir = Path(exp_dir)
    if (exp_dir / SUITE_JSON).is_file():
        return make_suite_report(exp_dir)
    from neuroreduce.jsonfiles import content_of

    resolved = read_json(exp_dir / "resolved.json")
    with content_of(exp_dir / "resolved.json", hint="rerun the experiment"):
        study = study_of(resolved)
    every = read_cells(exp_dir, study_fields=[f.name for f in _fields(study)])
    if not every:
        raise CheckpointError(f"{exp_dir} has no finished cells; run the experiment first")
    analyses = {p.stem: read_json(p) for p in sorted((exp_dir / ANALYSIS_DIR).glob("*.json"))}
    run = read_json(exp_dir / "run.json", required=False) or {}
    out = exp_dir / REPORT_DIR
    figs = out / "figures"
    title = resolved.get("title") or resolved.get("name", exp_dir.name)
    with content_of(exp_dir / "run.json", hint="delete it and rerun the experiment"):
        header = _header(resolved, run, study)
    sections: list[tuple[str, str]] = [("Experiment", header)]
    typed = [c for c in every if c.typed]
    cells = [c for c in every if not c.typed]  # continuous outputs: tables and figures below
    results = (_results_table(cells, _fields(study)) if cells else "") + (
        _typed_html(typed, resolved.get("metrics") or ()) if typed else "")
    sections.append(("Results (mean ± std over seeds)", results))
    if study is not None and study.report_sections is not None:
        sections += study.report_sections(analyses)
    if "conclusions" in analyses:
        sections.append(("Conclusions", _conclusions_html(analyses["conclusions"])))
    sections.append((_heading("Training", study, "loss"), _loss_figure(every, figs)))
    sequences = _sequence_figures(exp_dir, cells, figs, resolved) if cells else ""
    if typed:
        sequences += ("<p>Test sequences are drawn for cells with continuous outputs only; the "
                      "typed-task cells (" + html.escape(", ".join(c.key for c in typed))
                      + ") are scored per field in the results above.</p>")
    sections.append((_heading("Test sequences", study, "sequences"), sequences))
    if "error_vs_size" in analyses:
        sections.append(("Error vs size", _size_html(analyses["error_vs_size"], figs)))
    if "ood" in analyses:
        sections.append(("Out-of-distribution stimuli", _ood_html(analyses["ood"])))
    if "trust" in analyses:
        from neuroreduce.reporting.trust_section import experiment_trust_html

        sections.append(("Where the surrogate can be trusted",
                         experiment_trust_html(analyses["trust"])))
    if "ablation" in analyses or "attribution" in analyses:
        sections.append(("Input importance: attribution and ablation",
                         _importance_html(analyses, figs)))
    if "speed" in analyses:
        sections.append(("Speed: what the surrogate saves", _speed_html(analyses["speed"])))
    sections.append(("Wall time", _wall_html(run, every, analyses.get("analysis"))))
    sections.append(("Provenance", _provenance_html(resolved)))
    return write_page(out / "index.html", title=f"neuroreduce experiment: {title}",
                      sections=sections)


# -------------------------------------------------------------------------------- sections
def _fields(study: Study | None) -> tuple[CellField, ...]:
    return () if study is None else study.cell_fields


def _heading(text: str, study: Study | None, figure: str) -> str:
    """A figure section's heading, with the study's note on its layout (if any)."""
    note = study.note(figure) if study is not None else ""
    return f"{text} ({note})" if note else text


def _header(resolved: dict[str, Any], run: dict[str, Any], study: Study | None) -> str:
    items = {
        "name": resolved.get("name"),
        "description": resolved.get("description") or "",
        "study": f"{study.name}: {study.reference}" if study is not None else "none",
        "reference table": resolved.get("paper") or "none",
        "seeds": ", ".join(map(str, resolved.get("seeds", []))),
        "metrics": ", ".join(resolved.get("metrics", [])),
        "training defaults": ", ".join(f"{k}={v}" for k, v in
                                      (resolved.get("training") or {}).items()),
        "extra test datasets": ", ".join((resolved.get("evaluate") or {}).get("extra", []))
        or "none",
        "experiment wall time": wall_summary(run),
        "source": resolved.get("source"),
    }
    return key_values(items)


def _results_table(cells: list[CellSummary], fields: tuple[CellField, ...] = ()) -> str:
    extras = sorted({n for c in cells for n in c.extra})
    header = ["cell", "params (ours)", *[f.label for f in fields], "train RMSE", "valid RMSE",
              "test RMSE", "test NRMSE"] + [f"{n} RMSE" for n in extras] + [
              "best epoch (mean)", "members stopped"]
    rows = []
    for c in cells:
        row = [c.key, c.n_parameters, *[_or_dash(c.study_fields.get(f.name)) for f in fields]]
        for split, metric in (("train", "rmse"), ("valid", "rmse"), ("test", "rmse"),
                              ("test", "nrmse")):
            e = c.error(split, metric)
            row.append(_pm(e.mean, e.std))
        for n in extras:
            e = c.extra.get(n, {}).get("rmse")
            row.append(_pm(e.mean, e.std) if e else "-")
        row.append(f"{np.mean(c.best_epochs):.0f}" if c.best_epochs else "-")
        row.append(f"{len(c.stopped)} of {len(c.best_epochs)}" if c.best_epochs else "-")
        rows.append(row)
    return ("<p>RMSE in the outputs' units (mV); NRMSE = RMSE / range of the true outputs of "
            "the split (scale-free, comparable across studies). Members stopped: seeds frozen "
            "at their best weights before the last epoch because their weights diverged to "
            "NaN/inf (or early stopping ended them); their errors are those of the best epoch "
            "before that.</p>" + table(header, rows))


def _typed_html(cells: list[CellSummary], metrics: Any) -> str:
    """Typed-task cells: each field's headline metrics per split, then each fold group."""
    from neuroreduce.experiments.typed_scores import fold_groups, headline, over_folds

    rows = []
    for c in cells:
        for name, block in c.fields.items():
            for m in headline(block.get("kind", ""), metrics):
                rows.append([c.key, c.n_parameters, f"{name} ({block.get('kind')})", m,
                             *[_pm(c.score(name, m, s).mean, c.score(name, m, s).std)
                               for s in ("train", "valid", "test")],
                             f"{np.mean(c.best_epochs):.0f}" if c.best_epochs else "-"])
    parts = ["<p>Typed tasks: every predicted field scored with the metrics registry (masked "
             "values, unrecorded channels and ignored labels left out); mean ± std over seeds. "
             "The analyses of continuous outputs (error vs size, ablation, out-of-distribution, "
             "attribution, speed) skip these cells.</p>",
             table(["cell", "params (ours)", "field (kind)", "metric", "train", "valid", "test",
                    "best epoch (mean)"], rows)]
    folds = []
    for base, group in fold_groups(cells).items():
        for name, block in group[0].fields.items():
            for m in headline(block.get("kind", ""), metrics):
                f = over_folds(group, name, m)
                folds.append([base, name, m, ", ".join(f"{k}: {_g(v)}"
                                                       for k, v in f["per_fold"].items()),
                              f["n"], _pm(f["mean"], f["std"])])
    if folds:
        parts.append("<p>Cells trained on several folds of a split: each fold's test score "
                     "(mean over seeds) and the mean ± std over folds.</p>" + table(
                         ["cell", "field", "metric", "test per fold", "folds",
                          "mean ± std over folds"], folds))
    return "".join(parts)


def _or_dash(value: Any) -> Any:
    return "-" if value is None else value


def _conclusions_html(con: dict[str, Any]) -> str:
    marks = {True: "✔ holds", False: "✘ does not hold", None: ""}
    items = []
    for p in con.get("paragraphs", []):
        mark = marks[p.get("holds")]
        items.append(f"<p><b>{html.escape(p['title'])}</b>"
                     f"{f' [{mark}]' if mark else ''}: {html.escape(p['text'])}</p>")
    return "".join(items) or "<p>No conclusions could be drawn from these cells.</p>"


def _loss_figure(cells: list[CellSummary], figs: Path) -> str:
    from neuroreduce.reporting.report import read_history

    groups: dict[str, list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]] = {}
    for c in cells:
        try:
            epochs, train, valid = read_history(c.folder)
        except CheckpointError:
            continue
        group = c.dataset if c.variant == "all" else f"{c.dataset} / {c.variant}"
        groups.setdefault(group, []).append((c.label, epochs, train, valid))
    if not groups:
        return "<p>No training histories found.</p>"
    panels = []
    for group, series in groups.items():  # paper: at most 3 models per panel for Fig 5
        chunk = 3 if len(series) > 6 else 6
        for k in range(0, len(series), chunk):
            suffix = f" ({k // chunk + 1})" if len(series) > chunk else ""
            panels.append((f"{group}{suffix}", series[k: k + chunk]))
    xf.plot_loss_panels(figs / "loss_curves.png", panels=panels[:6])
    return figure("figures/loss_curves.png", "Training (solid) and validation (dashed) loss per "
                  "epoch, mean over seeds; each seed's best-validation weights are kept.")


def sequence_trials(inputs: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Two test trials to draw: the first, and the first that drives other input channels.

    In a mixed dataset (each trial drives one behaviour's inputs) this shows two behaviours;
    otherwise it is the first two test trials. ``inputs`` is ``[trial, time, input]``.
    """
    if test.size <= 2:
        return test
    driven = [frozenset(np.flatnonzero(np.abs(inputs[i]).max(axis=0) > 0)) for i in test]
    other = next((k for k in range(1, test.size) if driven[k] != driven[0]), 1)
    return test[[0, other]]


def sequence_outputs(variance: np.ndarray, names: tuple[str, ...],
                     behaviours: tuple[tuple[str, tuple[str, ...]], ...]) -> np.ndarray:
    """Indices of the outputs to draw (at most :data:`MAX_SEQUENCE_OUTPUTS`), sorted.

    The largest-variance outputs; with behaviours, the largest of each behaviour in turn, so a
    behaviour with small voltage swings is drawn too.
    """
    order = list(np.argsort(-variance))
    groups = [[i for i in order if names[i] in members]
              for members in (set(outs) for _, outs in behaviours)]
    groups = [g for g in groups if g] or [order]
    shown: list[int] = []
    for rank in range(len(names)):
        for g in groups:
            if rank < len(g) and len(shown) < MAX_SEQUENCE_OUTPUTS:
                shown.append(g[rank])
    return np.sort(np.array(shown, dtype=int))


def _sequence_figures(exp_dir: Path, cells: list[CellSummary], figs: Path,
                      resolved: dict[str, Any]) -> str:
    from neuroreduce.training import load_run, predict

    by_data: dict[tuple[str, str], list[CellSummary]] = {}
    for c in cells:
        by_data.setdefault((c.dataset, c.variant), []).append(c)
    parts = []
    for n, ((ds, variant), group) in enumerate(by_data.items()):
        try:
            data = load_cell_data(exp_dir, group[0])
        except Exception as exc:  # noqa: BLE001 - a missing dataset must not stop the report
            parts.append(f"<p>Test sequences of {html.escape(ds)} not drawn: "
                         f"{html.escape(str(exc))}</p>")
            continue
        test = sequence_trials(data.inputs, data.indices("test"))
        if test.size == 0:
            continue
        var = data.outputs[data.indices("test")].var(axis=(0, 1))
        behaviours = dataset_behaviours(resolved, ds)
        shown = sequence_outputs(var, tuple(data.output_names), behaviours)
        preds = []
        for c in group[:MAX_SEQUENCE_MODELS]:
            run = load_run(c.folder)
            preds.append((f"{c.label} (seed {run.seeds[0]})",
                          predict(run, load_cell_data(exp_dir, c).inputs[test])[0][..., shown]))
        name = f"sequences_{n}.png"
        xf.plot_sequence_grid(
            figs / name, time_ms=np.arange(data.n_time) * data.dt_ms,
            outputs_true=data.outputs[test][..., shown], predictions=preds,
            output_names=[data.output_names[i] for i in shown],
            trial_labels=[f"test #{i} ({data.families[i]})" for i in test],
            units=data.output_units,
            title=f"{ds}{'' if variant == 'all' else ' / ' + variant}: true vs predicted")
        which = ("of each behaviour in turn (" + ", ".join(b for b, _ in behaviours) + ") "
                 if behaviours else "")
        parts.append(figure(f"figures/{name}", f"{ds} ({variant} inputs): two test trials (the "
                            "second drives other inputs where the data have such a trial), true "
                            "(red, blue) and predicted by one seed (green, black dashed); "
                            f"outputs with the largest variance {which}(at most "
                            f"{MAX_SEQUENCE_OUTPUTS})."))
    return "".join(parts) or "<p>No test trials to show.</p>"


def _size_html(evs: dict[str, Any], figs: Path, name: str = "error_vs_size.png") -> str:
    series = {ds: r["points"] for ds, r in evs["datasets"].items() if r.get("points")}
    if not series:
        return "<p>No finished cells with all inputs.</p>"
    xf.plot_error_vs_size(figs / name, series=series, marks=evs["datasets"],
                          title="Test error vs model size (mean ± std over seeds; dots = seeds)")
    rows = [[ds, r["best"], _g(r["best_mean"]), r["best_parameters"], r["smallest_within"],
             _g(r["smallest_mean"]), r["smallest_parameters"]]
            for ds, r in evs["datasets"].items() if r.get("best")]
    return figure(f"figures/{name}", "Circle: best model; star: smallest model within "
                  f"{100 * evs['tolerance']:.0f}% of the best (dotted line).") + table(
        ["dataset", "best", "test NRMSE", "params", f"smallest within "
         f"{100 * evs['tolerance']:.0f}%", "test NRMSE", "params"], rows)


def _ood_html(ood: dict[str, Any]) -> str:
    rows = [[r["cell"], r["extra"], _pm(r["test_rmse"], r["test_rmse_std"]),
             _pm(r["ood_rmse"], r["ood_rmse_std"]), _g(r["ratio"])] for r in ood["rows"]]
    return ("<p>In-distribution: the test split of the training dataset. Out-of-distribution: "
            "every trial of a dataset from stimulus families never seen in training.</p>"
            + table(["cell", "OOD dataset", "test RMSE", "OOD RMSE", "OOD / test"], rows))


MAX_ATTRIBUTION_PANELS = 36


def _cell_order(key: str) -> tuple[Any, ...]:
    """Sort key of ``dataset/model-hidden[/variant]``: model, size (numeric), all inputs first."""
    dataset, arch, *variant = key.split("/")
    model, _, hidden = arch.rpartition("-")
    return (dataset, model, int(hidden) if hidden.isdigit() else 0, bool(variant), variant)


def _importance_html(analyses: dict[str, Any], figs: Path) -> str:
    parts = []
    attr = analyses.get("attribution", {}).get("cells", {})
    if attr:
        panels = [(f"{attr[k]['label']}", attr[k]["inputs"], attr[k]["outputs"],
                   np.asarray(attr[k]["importance_mean"]))
                  for k in sorted(attr, key=_cell_order)][:MAX_ATTRIBUTION_PANELS]
        xf.plot_heatmaps(figs / "attribution.png", panels=panels, colorbar_label="importance",
                         limits=(0.0, 1.0))
        parts.append(figure("figures/attribution.png", "Integrated gradients (zero-current "
                            "baseline): share of each input in each output's time-averaged "
                            "response, mean over seeds and test trials; columns sum to 1."))
    abl = analyses.get("ablation", {}).get("variants", {})
    if abl:
        names = list(abl)
        outs = abl[names[0]]["outputs"]
        mat = np.array([[abl[v]["mean_relative"].get(o, np.nan) for o in outs] for v in names])
        rows = [f"{v} (no {'+'.join(abl[v]['removed'])})" for v in names]
        xf.plot_heatmaps(figs / "ablation.png", panels=[("retrained without inputs", rows, outs,
                                                          100 * mat)],
                         value_format="{:+.0f}%", diverging=True,
                         colorbar_label="test RMSE change (%)")
        parts.append(figure("figures/ablation.png", "Ablation: relative "
                            "change of each output's test RMSE when the model is retrained "
                            "without an input group (mean over model sizes)."))
        body = [[cell["label"], o, _g(d["all"]), _g(d["variant"]), f"{100 * d['relative']:+.0f}%"]
                for v in abl.values() for cell in v["cells"] for o, d in cell["per_output"].items()]
        parts.append(table(["cell", "output", "test RMSE (all inputs)", "test RMSE (variant)",
                            "change"], body))
    return "".join(parts)


def _speed_html(sp: dict[str, Any]) -> str:
    sims = [[ds, s.get("simulator", "-"), _g(s.get("setup_s")), _g(s.get("mean_trial_s")),
             _g(s.get("s_per_simulated_s")), s.get("n_trials", "-"), s.get("error", "")]
            for ds, s in sp["simulators"].items()]
    surs = [[r["cell"], _g(r["batch1_s"] * 1e3), _g(r["batch_all_s"] * 1e3), r["n_trials"],
             _g(r.get("speedup_batch1")), _g(r.get("speedup_batch_all"))]
            for r in sp["surrogates"]]
    return (f"<p>{html.escape(sp['note'])}.</p>"
            + table(["dataset", "simulator", "setup (s)", "s per trial", "s per simulated s",
                     "trials", "error"], sims)
            + table(["cell", "batch 1 (ms)", "batch of all test trials (ms)", "trials",
                     "speed-up batch 1", "speed-up per trial, batched"], surs))


def wall_summary(run: dict[str, Any]) -> str:
    """One line: total wall time over every invocation of the run, and the cells' own sum.

    ``run`` is the runner's ``run.json``; ``total_wall_s`` adds the wall time of earlier,
    interrupted or finished, invocations (``previous_runs``) to the latest one.
    """
    if not run:
        return "not recorded"
    total = run.get("total_wall_s", run.get("wall_s")) or 0.0
    n = len(run.get("previous_runs") or []) + 1
    workers = (run.get("backend") or {}).get("workers", 1)
    text = (f"{total:.0f} s ({total / 60:.1f} min) over {n} invocation{'s' * (n > 1)}, "
            f"latest with {workers} worker{'s' * (workers > 1)}")
    if run.get("cells_wall_s_sum") is not None:
        text += f"; the cells' training + evaluation times sum to {run['cells_wall_s_sum']:.0f} s"
    return text


def _wall_html(run: dict[str, Any], cells: list[CellSummary], meta: dict[str, Any] | None) -> str:
    items = {"experiment wall time": wall_summary(run),
             "latest invocation (s)": _g(run.get("wall_s")),
             **{f"latest: phase {k} (s)": _g(v) for k, v in (run.get("phases_s") or {}).items()},
             "backend": run.get("backend"), "resumed": run.get("resumed"),
             "started": run.get("started"), "host": run.get("host")}
    if meta:
        items.update({f"analysis {k} (s)": _g(v) for k, v in meta.get("wall_s", {}).items()})
    earlier = [[str(r.get("started")), str(r.get("finished") or "interrupted"), _g(r.get("wall_s")),
                str(r.get("cells_run"))] for r in run.get("previous_runs") or []]
    rows = [[c.key, _g(c.wall_s.get("train")), _g(c.wall_s.get("evaluate"))] for c in cells]
    return (key_values(items)
            + (table(["earlier invocation started", "finished", "wall (s)", "cells run"], earlier)
               if earlier else "")
            + table(["cell", "training (s)", "evaluation (s)"], rows))


def _provenance_html(resolved: dict[str, Any]) -> str:
    items = {"git": resolved.get("git_hash"), "written": resolved.get("written"),
             **{f"version {k}": v for k, v in (resolved.get("versions") or {}).items()},
             **{f"host {k}": v for k, v in (resolved.get("host") or {}).items()}}
    rows = []
    for name, d in (resolved.get("datasets") or {}).items():
        d = d if isinstance(d, dict) else {}
        t = d.get("table", d)
        rows.append([name, str(d.get("content_hash", "-"))[:16], d.get("n_trials", "-"),
                     d.get("dt_ms", "-"), ", ".join(f"{k}={v}" for k, v in t.items()),
                     d.get("file", "-")])
    return key_values(items) + table(["dataset", "content hash", "trials", "dt (ms)", "spec",
                                      "file"], rows)


# ------------------------------------------------------------------------------------ suite
def check_suite(suite: dict[str, Any], path: Path) -> None:
    """``suite.json`` lists its members as objects with a ``folder`` and a ``name`` (one line
    naming the file otherwise)."""
    from neuroreduce.jsonfiles import content_of

    with content_of(path, hint="rerun the suite"):
        for m in suite["experiments"]:
            if not (isinstance(m["folder"], str) and isinstance(m["name"], str)):
                raise TypeError("a member's folder and name must be strings")
            list(m.get("failed", []))


def make_suite_report(suite_dir: Path) -> Path:
    """Index page of a suite folder: one link per member report and a combined error-vs-size
    figure over all members (member reports are written if missing)."""
    suite_dir = Path(suite_dir)
    suite = read_json(suite_dir / SUITE_JSON)
    check_suite(suite, suite_dir / SUITE_JSON)
    rows, series, marks = [], {}, {}
    for m in suite.get("experiments", []):
        member = suite_dir / m["folder"]
        page = member / REPORT_DIR / "index.html"
        if not page.is_file() and (member / "resolved.json").is_file():
            try:
                make_experiment_report(member)
            except CheckpointError:
                pass
        run = read_json(member / "run.json", required=False) or {}
        resolved = read_json(member / "resolved.json", required=False) or {}
        link = (f'<a href="../{html.escape(m["folder"])}/{REPORT_DIR}/index.html">'
                f'{html.escape(m["name"])}</a>') if page.is_file() else html.escape(m["name"])
        rows.append([link, html.escape(resolved.get("title", "")), html.escape(wall_summary(run)),
                     html.escape(", ".join(m.get("failed", [])) or "none")])
        evs = read_json(member / ANALYSIS_DIR / "error_vs_size.json", required=False) or {}
        for ds, r in evs.get("datasets", {}).items():
            if r.get("points"):
                series[f"{m['name']}/{ds}"] = r["points"]
                marks[f"{m['name']}/{ds}"] = r
    out = suite_dir / REPORT_DIR
    sections = [("Experiments", _raw_table(["experiment", "title", "wall time", "failed"],
                                           rows)),
                ("Run", key_values({"suite": suite.get("suite"), "wall time (s)":
                                    _g(suite.get("wall_s")), "started": suite.get("started"),
                                    "finished": suite.get("finished")}))]
    if series:
        xf.plot_error_vs_size(out / "figures" / "error_vs_size.png", series=series, marks=marks,
                              title="All experiments: test NRMSE vs parameters")
        sections.append(("Error vs size, all experiments", figure(
            "figures/error_vs_size.png", "Test NRMSE (scale-free) vs parameter count of every "
            "model of every experiment; mean ± std over seeds, dots = seeds.")))
    return write_page(out / "index.html", title=f"neuroreduce suite: {suite.get('suite', '')}",
                      sections=sections)


def _raw_table(header: list[str], rows: list[list[str]]) -> str:
    """A table whose cells are already HTML (links)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
