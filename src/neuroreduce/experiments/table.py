"""The results table of an experiment folder: one row per cell, typed scores and fold summaries.

:func:`results_document` is what the runner writes as ``results.json``: the columns, one row per
cell (see :func:`results_table`), and only when the experiment has them:

- ``scores``: one entry per typed-task column ``{where}_{field}_{metric}`` (``where`` = train,
  valid, test or an extra dataset) with its field, kind, metric and direction
  (:mod:`neuroreduce.evaluation.registry`);
- ``folds``: per cell trained on several folds of a split (keys ``.../fold{i}``), every
  ``*_mean`` column over its folds: ``mean``, ``std`` (ddof 1, over the folds' seed means) and
  ``per_fold``.

An experiment of schema-v1 cells only (dense inputs -> continuous outputs) gets exactly the
columns it always had, so its files stay byte-identical.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

SPLITS: tuple[str, ...] = ("train", "valid", "test")
#: Columns of an experiment without a study that older readers of ``results.json`` expect
#: (``neuroreduce experiment run`` prints ``keras_parameters``); null for cells recorded without
#: a study. Remove once no reader needs them.
LEGACY_COLUMNS: tuple[str, ...] = ("keras_parameters",)


@dataclass(frozen=True)
class ScoreColumn:
    """One typed-task score column ``{where}_{field}_{metric}`` (plus ``_mean``/``_std``)."""

    where: str
    field: str
    kind: str
    metric: str

    @property
    def name(self) -> str:
        return f"{self.where}_{self.field}_{self.metric}"

    def to_dict(self) -> dict[str, Any]:
        from neuroreduce.evaluation.registry import get_metric_info

        return {"column": self.name, "where": self.where, "field": self.field,
                "kind": self.kind, "metric": self.metric,
                "direction": get_metric_info(self.metric).direction}


def cells_of(spec: Any, out: Path) -> tuple[Any, ...]:
    """The spec's cells with fold templates resolved from ``out/resolved.json`` (as run)."""
    if all(c.resolved for c in spec.cells):
        return spec.cells
    from neuroreduce.experiments.grid import resolve_folds

    resolved = _read_json(out / "resolved.json") if (out / "resolved.json").is_file() else {}
    counts = {(name, key): n for name, d in (resolved.get("datasets") or {}).items()
              for key, n in ((d or {}).get("folds") or {}).items()}
    if any(not c.resolved and (c.dataset, _split_json(c)) not in counts for c in spec.cells):
        return spec.cells
    return resolve_folds(spec.cells, counts, str(spec.source or spec.name))


def _split_json(cell: Any) -> str:
    from neuroreduce.experiments.grid import split_key

    return split_key(cell)[1]


def results_document(spec: Any, out: Path) -> dict[str, Any]:
    """``results.json`` less ``failed``: experiment, columns, rows (+ scores, folds)."""
    from neuroreduce.jsonfiles import content_of

    with content_of(out / "cells", hint="delete the bad cell folder and rerun the experiment"):
        columns, rows, scores = _table(spec, out)
    doc: dict[str, Any] = {"experiment": spec.name, "columns": columns, "rows": rows}
    if scores:
        doc["scores"] = [s.to_dict() for s in scores]
    folds = fold_summary(cells_of(spec, out), columns, rows)
    if folds:
        doc["folds"] = folds
    return doc


def results_table(spec: Any, out: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """The results table of the experiment's cells as found in ``out`` (one row per cell).

    Columns: key, dataset, model, hidden, variant, status (``"ok"`` or ``"missing"``),
    n_parameters, the study's per-cell fields (e.g. ``keras_parameters``; see
    :data:`LEGACY_COLUMNS` for an experiment without a study), ``{split}_{metric}_mean/_std``
    for train/valid/test and every continuous metric (schema-v1 cells), ``{extra}_{metric}_mean
    /_std`` for every extra dataset, then the typed-task columns ``{where}_{field}_{metric}
    _mean/_std`` (see the module docstring), best_epoch_mean, members_stopped (members frozen
    before the last epoch: diverged, or early-stopped), wall_train_s, wall_evaluate_s (s).
    Values of unfinished cells are ``None``.
    """
    from neuroreduce.jsonfiles import content_of

    with content_of(out / "cells", hint="delete the bad cell folder and rerun the experiment"):
        columns, rows, _ = _table(spec, out)
    return columns, rows


def _table(spec: Any, out: Path) -> tuple[list[str], list[dict[str, Any]], list[ScoreColumn]]:
    from neuroreduce.evaluation.metrics import METRICS
    from neuroreduce.experiments.expfiles import stopped_members
    from neuroreduce.studies.registry import field_names, get_study

    cells = cells_of(spec, out)
    found = {c.key: _read_cell(out / "cells" / c.folder) for c in cells}
    done = [f for f in found.values() if f is not None]
    scores = _score_columns(spec, [f[1] for f in done] + [e for f in done
                                                          for e in f[2].values()])
    plain = not scores or any("fields" not in f[1] for f in done)
    study_columns = field_names(get_study(spec.study)) if spec.study else LEGACY_COLUMNS
    columns = ["key", "dataset", "model", "hidden", "variant", "status", "n_parameters",
               *study_columns]
    plain_metrics = [m for m in spec.metrics if m in METRICS] if plain else []
    for where in (*SPLITS, *spec.extra):
        for m in plain_metrics:
            columns += [f"{where}_{m}_mean", f"{where}_{m}_std"]
    for s in scores:
        columns += [f"{s.name}_mean", f"{s.name}_std"]
    columns += ["best_epoch_mean", "members_stopped", "wall_train_s", "wall_evaluate_s"]
    rows = []
    for cell in cells:
        row: dict[str, Any] = dict.fromkeys(columns)
        row.update(key=cell.key, dataset=cell.dataset, model=cell.model, hidden=cell.hidden,
                   variant=cell.variant, status="missing")
        folder = out / "cells" / cell.folder
        if found[cell.key] is not None:
            record, results, extra = found[cell.key]
            row.update(status="ok", n_parameters=record["n_parameters"],
                       **{name: record.get(name) for name in study_columns},
                       best_epoch_mean=sum(record["best_epochs"]) / len(record["best_epochs"]),
                       members_stopped=len(stopped_members(folder)),
                       wall_train_s=record["wall_s"]["train"],
                       wall_evaluate_s=record["wall_s"]["evaluate"])
            blocks = {s: results.get("splits", {}).get(s) for s in SPLITS}
            blocks.update({n: extra.get(n, {}).get("splits", {}).get("all") for n in spec.extra})
            for where, block in blocks.items():
                for m in plain_metrics:
                    _put(row, f"{where}_{m}", (block or {}).get(m))
            for s in scores:
                source = results if s.where in SPLITS else extra.get(s.where, {})
                split = s.where if s.where in SPLITS else "all"
                field = (source.get("fields") or {}).get(s.field) or {}
                _put(row, s.name, ((field.get("splits") or {}).get(split) or {}).get(s.metric))
        rows.append(row)
    return columns, rows, scores


def _put(row: dict[str, Any], name: str, stats: dict[str, Any] | None) -> None:
    if stats is not None:
        row[f"{name}_mean"] = _finite(stats["mean"])
        row[f"{name}_std"] = _finite(stats["std"])


def _read_cell(folder: Path) -> tuple[dict, dict, dict] | None:
    from neuroreduce.experiments import cells as cellmod

    if not (folder / cellmod.CELL_JSON).is_file():
        return None
    return (_read_json(folder / cellmod.CELL_JSON), _read_json(folder / cellmod.RESULTS_JSON),
            _read_json(folder / cellmod.EXTRA_RESULTS_JSON))


def _score_columns(spec: Any, blocks: list[dict[str, Any]]) -> list[ScoreColumn]:
    """Typed columns: per field (first appearance) the experiment's metrics of its kind (the
    kind's first default metric if it has none), per split and extra dataset."""
    from neuroreduce.evaluation.field_results import DEFAULT_METRICS
    from neuroreduce.evaluation.registry import get_metric_info

    kinds: dict[str, str] = {}
    for block in blocks:
        for name, f in (block.get("fields") or {}).items():
            kinds.setdefault(name, f["kind"])
    out = []
    for where in (*SPLITS, *spec.extra):
        for name, kind in kinds.items():
            chosen = [m for m in spec.metrics if get_metric_info(m).kind == kind]
            for m in chosen or DEFAULT_METRICS[kind][:1]:
                out.append(ScoreColumn(where, name, kind, m))
    return out


def fold_summary(cells: tuple[Any, ...], columns: list[str],
                 rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per cell trained on several folds: every ``*_mean`` column's mean ± std over folds."""
    groups: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    by_key = {r["key"]: r for r in rows}
    for c in cells:
        if c.fold is not None:
            groups.setdefault(c.base_key, []).append((c.fold, by_key[c.key]))
    out = []
    for base, members in groups.items():
        ok = [(f, r) for f, r in members if r["status"] == "ok"]
        stats: dict[str, Any] = {}
        for col in columns:
            if not col.endswith("_mean") or col == "best_epoch_mean":
                continue
            values = [r[col] for _, r in ok if r[col] is not None]
            if not values:
                continue
            v = np.asarray(values, dtype=np.float64)
            stats[col[: -len("_mean")]] = {
                "mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
                "per_fold": [r[col] for _, r in ok]}
        out.append({"key": base, "folds": [f for f, _ in members], "n_finished": len(ok),
                    "status": "ok" if len(ok) == len(members) else "incomplete",
                    "columns": stats})
    return out


def with_folds(spec: Any, counts: dict[tuple[str, str], int]) -> Any:
    """``spec`` with its fold templates expanded (:func:`~.grid.resolve_folds`)."""
    from neuroreduce.experiments.grid import resolve_folds

    if all(c.resolved for c in spec.cells):
        return spec
    return replace(spec, cells=resolve_folds(spec.cells, counts, str(spec.source or spec.name)))


def csv_text(columns: list[str], rows: list[dict[str, Any]]) -> str:
    """The table as CSV (floats with 6 significant digits, ``None`` empty)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in rows:
        w.writerow(["" if row[c] is None else (f"{row[c]:.6g}" if isinstance(row[c], float)
                                               else row[c]) for c in columns])
    return buf.getvalue()


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _read_json(path: Path) -> Any:
    from neuroreduce.jsonfiles import read_json_object

    return read_json_object(path, hint="delete it and re-run")
