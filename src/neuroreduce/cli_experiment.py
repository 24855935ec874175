"""``neuroreduce experiment ...``: run, inspect and report declared experiments (TOML files).

Each command calls one library function of :mod:`neuroreduce.experiments.runner` or
:mod:`neuroreduce.experiments.spec`; heavy modules are imported inside the commands.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from neuroreduce.cli_common import err, friendly_errors, out
from neuroreduce.jsonfiles import content_of, read_json_object

experiment_app = typer.Typer(
    help="Declared experiments: a TOML file of datasets x models x seeds -> tables and report.",
    no_args_is_help=True,
)

FileArg = Annotated[Path, typer.Argument(help="Experiment (or suite) TOML file.")]
OutOpt = Annotated[Path | None, typer.Option(
    "-o", "--output", help="Output folder (default: runs/<folder of FILE>/<experiment name>).")]


@experiment_app.command("run")
@friendly_errors
def run(
    file: FileArg,
    output: OutOpt = None,
    backend: Annotated[str, typer.Option(help="Where cells run: local or ray.")] = "local",
    workers: Annotated[int, typer.Option(help="Concurrent cells (and simulations).")] = 1,
    address: Annotated[str | None, typer.Option(
        help="Ray cluster address (auto, ray://host:10001); default: a local Ray.")] = None,
    resume: Annotated[bool, typer.Option(
        help="Continue in an existing output folder, skipping finished cells.")] = True,
) -> None:
    """Simulate what is missing, train and evaluate every grid cell, write tables and report."""
    from neuroreduce.execution import Backend
    from neuroreduce.experiments.runner import CellsFailedError, default_output_dir, run_experiment
    from neuroreduce.experiments.spec import load_experiment

    spec = load_experiment(file)
    chosen = Backend(kind=backend, workers=workers, address=address)
    out_dir = output if output is not None else default_output_dir(file, spec)
    out.print(f"experiment {spec.name}: {_count(spec)} -> {out_dir}")
    try:
        run_experiment(spec, out_dir, backend=chosen, resume=resume, progress=True)
    except CellsFailedError:
        _print_results(out_dir)
        raise
    _print_results(out_dir)


@experiment_app.command("report")
@friendly_errors
def report(
    folder: Annotated[Path, typer.Argument(help="Output folder of `experiment run`.")],
) -> None:
    """(Re)write the HTML report (tables, figures, paper comparison) of a finished run."""
    from neuroreduce.experiments.runner import make_report

    for page in make_report(folder):
        out.print(f"report: {page}")


@experiment_app.command("show")
@friendly_errors
def show(file: FileArg, output: OutOpt = None) -> None:
    """Dry run: print the resolved grid (cells, datasets, counts) without running anything."""
    from neuroreduce.experiments.runner import default_output_dir
    from neuroreduce.experiments.spec import load_experiment

    spec = load_experiment(file)
    out_dir = output if output is not None else default_output_dir(file, spec)
    members = spec.include if spec.is_suite else (spec,)
    if spec.is_suite:
        out.print(f"suite {spec.name}: {len(members)} experiments -> {out_dir}")
    for member in members:
        _show_one(member, out_dir / member.name if spec.is_suite else out_dir)


def _count(spec: Any) -> str:
    members = spec.include if spec.is_suite else (spec,)
    cells = sum(len(m.cells) for m in members)
    models = sum(len(m.cells) * len(m.seeds) for m in members)
    folds = sum(not c.resolved for m in members for c in m.cells)
    return f"{cells} cells, {models} trained models" + (
        f" in {len(members)} experiments" if spec.is_suite else "") + (
        f" ({folds} with a split: one cell per fold once the data are built)" if folds else "")


def _show_one(spec: Any, out_dir: Path) -> None:
    out.print(f"\n[bold]{spec.name}[/]: {spec.title or '(no title)'} -> {out_dir}")
    out.print(f"seeds {list(spec.seeds)}; metrics {', '.join(spec.metrics)}; "
              f"{_count(spec)}; data cache {os.path.normpath(out_dir / spec.data_dir)}")
    data = Table(title="datasets")
    for col in ("name", "role", "settings", "file"):
        data.add_column(col)
    from neuroreduce.experiments.datasets import dataset_path

    for name, table in spec.dataset_tables.items():
        path = dataset_path(spec.datasets[name], out_dir / spec.data_dir)
        state = "cached" if path.is_file() else ("to simulate" if spec.datasets[name].simulated
                                                 else "missing")
        role = "extra (test only)" if name in spec.extra else (
            "grid" if any(c.dataset == name for c in spec.cells) else "unused")
        data.add_row(name, role, json.dumps(table, sort_keys=True), f"{path.name} ({state})")
    out.print(data)
    _show_paths(spec, out_dir)
    spec = _cached_folds(spec, out_dir)
    split = any(c.config.split is not None for c in spec.cells)
    cells = Table(title=f"cells ({len(spec.cells)})")
    cells.add_column("key", no_wrap=True, min_width=max([len(c.key) for c in spec.cells] + [3]))
    for col in ("inputs", "lr", "batch", "epochs", "patience", *(["split"] if split else [])):
        cells.add_column(col)
    cells.add_column("status", no_wrap=True, min_width=8)
    for c in spec.cells:
        done = (out_dir / "cells" / c.folder / "cell.json").is_file()
        cfg = c.config
        how = ("" if cfg.split is None else f"fold {c.fold}" if c.fold is not None
               else cfg.split.strategy if c.resolved else "every fold")
        cells.add_row(c.key, ", ".join(c.inputs) if c.inputs else "all",
                      f"{cfg.effective_learning_rate:g}", str(cfg.batch_size), str(cfg.epochs),
                      str(cfg.early_stopping_patience or "-"), *([how] if split else []),
                      "finished" if done else "pending")
    out.print(cells)


def _show_paths(spec: Any, out_dir: Path) -> None:
    """Every place the experiment file makes the tool read or write, with ``..`` and symbolic
    links resolved (an experiment file is code-equivalent: it chooses these paths)."""
    from neuroreduce.experiments.datasets import dataset_path

    data_dir = out_dir / spec.data_dir
    paths = [("output folder", out_dir), ("data cache", os.path.normpath(data_dir))]
    paths += [(f"dataset {name}" + (" (given path)" if spec.datasets[name].path else ""),
               dataset_path(spec.datasets[name], data_dir)) for name in spec.dataset_tables]
    for what, path in paths:
        out.print(f"{what}: {os.path.realpath(path)}", markup=False, highlight=False,
                  soft_wrap=True)


def _cached_folds(spec: Any, out_dir: Path) -> Any:
    """``spec`` with its fold templates expanded where the dataset file is already built."""
    from neuroreduce.datasets.io import load_dataset
    from neuroreduce.experiments.datasets import dataset_path
    from neuroreduce.experiments.runner import fold_counts, with_folds

    counts = {}
    for name in dict.fromkeys(c.dataset for c in spec.cells if not c.resolved):
        path = dataset_path(spec.datasets[name], out_dir / spec.data_dir)
        if path.is_file():
            counts.update({(name, k): n for k, n in
                           (fold_counts(spec, name, load_dataset(path)) or {}).items()})
    ready = [c for c in spec.cells if c.resolved or any(k[0] == c.dataset for k in counts)]
    if len(ready) < len(spec.cells):
        return spec
    return with_folds(spec, counts)


def _print_results(out_dir: Path) -> None:
    for folder in _experiment_folders(out_dir):
        path = folder / "results.json"
        if not path.is_file():
            continue
        data = read_json_object(path)
        with content_of(path):
            _results_table(data, folder)
            for f in data.get("failed", []):
                err.print(f"[red]failed[/] {f['key']}: {f['error']}", highlight=False)
    out.print(f"results: {out_dir}")


def _experiment_folders(folder: Path) -> list[Path]:
    suite = folder / "suite.json"
    if not suite.is_file():
        return [folder]
    data = read_json_object(suite)
    with content_of(suite):
        members = [str(m["folder"]) for m in data["experiments"]]
    return [f for m in members for f in _experiment_folders(folder / m)]


def _results_table(data: dict[str, Any], folder: Path) -> None:
    cols = data["columns"]
    typed = {s["column"]: s for s in data.get("scores") or []}
    plain = [c for c in cols if c[: -len("_mean")] not in typed and c[: -len("_std")] not in typed]
    metrics = [c[len("test_"):-len("_mean")] for c in plain
               if c.startswith("test_") and c.endswith("_mean")]
    extra = sorted({c.rsplit("_", 2)[0] for c in plain if c.endswith("_rmse_mean")}
                   - {"train", "valid", "test"})
    shown = [name for name, s in typed.items() if s["where"] == "test"]
    study_cols = _study_columns(folder)
    table = Table(title=f"{data['experiment']}: mean ± std over seeds ({folder})")
    width = max([len(r["key"]) for r in data["rows"]] + [4])
    table.add_column("cell", no_wrap=True, min_width=width)
    for col in ("params (paper)" if study_cols else "params",
                *(["valid rmse"] if "valid_rmse_mean" in plain else []),
                *[f"test {m}" for m in metrics], *[f"{e} rmse" for e in extra],
                *[f"test {typed[n]['field']} {typed[n]['metric']}" for n in shown],
                "best epoch", "train s"):
        table.add_column(col, justify="right")
    for row in data["rows"]:
        if row["status"] != "ok":
            table.add_row(row["key"], *["-"] * (len(table.columns) - 2), row["status"])
            continue
        paper = [str(row.get(c)) for c in study_cols if row.get(c) is not None]
        table.add_row(
            row["key"], f"{row.get('n_parameters')}" + (f" ({', '.join(paper)})" if paper else ""),
            *([_ms(row, "valid_rmse")] if "valid_rmse_mean" in plain else []),
            *[_ms(row, f"test_{m}") for m in metrics], *[_ms(row, f"{e}_rmse") for e in extra],
            *[_ms(row, n) for n in shown],
            _num(row.get("best_epoch_mean"), ".0f"), _num(row.get("wall_train_s"), ".1f"))
    out.print(table)
    if data.get("folds"):
        _folds_table(data["folds"], data["experiment"])


def _folds_table(folds: list[dict[str, Any]], name: str) -> None:
    """Cells trained on several folds: each test score per fold and mean ± std over folds."""
    cols = list(dict.fromkeys(c for g in folds for c in g["columns"] if c.startswith("test_")))
    table = Table(title=f"{name}: folds (test, mean over seeds per fold; mean ± std over folds)")
    table.add_column("cell", no_wrap=True)
    table.add_column("folds", justify="right")
    for c in cols:
        table.add_column(c.replace("_", " "), justify="right")
    for g in folds:
        cells = []
        for c in cols:
            st = g["columns"].get(c)
            cells.append("-" if st is None else f"{st['mean']:.3g} ± {st['std']:.2g} ("
                         + ", ".join(_num(v, ".3g") for v in st["per_fold"]) + ")")
        table.add_row(g["key"], f"{g['n_finished']}/{len(g['folds'])}", *cells)
    out.print(table)


def _study_columns(folder: Path) -> tuple[str, ...]:
    """The per-cell fields of the study the experiment folder names (none without one)."""
    from neuroreduce.studies.registry import field_names, study_of

    path = folder / "resolved.json"
    if not path.is_file():
        return ()
    resolved = read_json_object(path)
    with content_of(path):
        study = study_of(resolved)
    return tuple(field_names(study)) if study is not None else ()


def _num(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _ms(row: dict[str, Any], prefix: str) -> str:
    mean, std = row.get(f"{prefix}_mean"), row.get(f"{prefix}_std")
    if mean is None:
        return "-"
    return f"{mean:.3g} ± {std:.2g}" if std is not None else f"{mean:.3g}"
