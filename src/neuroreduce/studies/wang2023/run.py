"""The Wang et al. study file (TOML) and its run: data -> windows -> protocol grids -> results.

The generic experiment runner trains one split per cell; the paper's protocol (k-of-n training
worms x shuffled-window folds, scored on the same worms, unseen worms and another set) is
:mod:`neuroreduce.wholebrain.protocol`, so this study runs its own files
(``neuroreduce wholebrain run FILE``)::

    [experiment]
    name = "wang2023-reduced"
    study = "wang2023"
    title = "..."

    [data]                      # either an importer ...
    importer = "flavell2023"
    source = "../../../shared/data/flavell2023"    # relative to this file
    options = { min_confidence = 3.0 }
    window = 8
    # ... or simulated recordings with known wiring (WholeBrainSimConfig fields):
    # simulated = { individuals = 4, frames = 200 }
    # other = { seed = 7 }      # simulated: a second set ("other set") with these changes
    # ... or saved recordings (Layout 1, neuroreduce dataset files):
    # dataset = "recordings.h5"
    # other_dataset = "other.h5"

    [protocol]                  # ProtocolConfig fields
    k = 3
    folds = 10
    run_folds = 2

    [[models]]                  # ModelSpec fields; paper_row: its Table 1 row (default: name)
    name = "SVM"
    family = "svm"
    hidden = 8

    [variants]
    without = ["AVAL", "AVAR"]  # the runs without AVA
    few = ["AVAL", "AIBR", "VB2"]   # few shared neurons vs all
    models = ["MLP", "GNN"]     # models run in the variants (default: all)
    edges = true                # score inferred edges (AUROC vs connectome / true wiring)

    [trajectory]                # Fig. 4C: MSE per prediction step (optional)
    counts = [1, 4]             # training worms
    window = 17                 # segment frames (burn-in + 1 + 16 evaluated steps)
    stride = 4
    max_combinations = 2

    [[trajectory.models]]       # TrajectoryConfig fields + name
    name = "GNN"
    model = "gnn_inferred"
    hidden = 256

Output folder: ``results.json`` (every cell, summaries, paper numbers, AUROC, timing),
``edges.json`` (each cell's inferred edge weights ``[N, N]``, row = receiving neuron),
``conclusions.json`` and ``report.md``; simulated recordings are cached in ``data/`` by spec
hash.
"""

from __future__ import annotations

import dataclasses
import json
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce._io import write_json_atomic, write_text_atomic
from neuroreduce.datasets.dataset import Dataset
from neuroreduce.errors import ConfigError
from neuroreduce.execution import Backend
from neuroreduce.wholebrain.protocol import ModelSpec, ProtocolConfig, mean_std, run_protocol

SECTIONS = ("experiment", "data", "protocol", "models", "variants", "trajectory")
TRAJECTORY_KEYS = ("models", "counts", "window", "stride", "max_combinations")
DATA_KEYS = ("importer", "source", "options", "window", "simulated", "other", "dataset",
             "other_dataset")
VARIANT_KEYS = ("without", "few", "models", "edges")


@dataclass(frozen=True)
class WangSpec:
    """A checked study file.

    Attributes:
        name: Run name.
        title: One line.
        importer: Registered importer of the recordings (None: simulated or a file).
        source: Its source path (absolute, resolved against the file's folder).
        options: Importer options.
        simulated: Settings of simulated recordings (None: imported or a file).
        dataset: Saved recordings (Layout 1 dataset file; absolute path) or None.
        other_dataset: Saved recordings of the "other set" or None.
        other: Changes to ``simulated`` for the "other set" (None: no other set).
        window: Frames per window.
        protocol: Combinations and folds.
        models: The compared models.
        paper_rows: Model name -> its Table 1 row.
        without: Neurons left out in the "without" variant (empty: no such variant).
        few: The neurons of the "few shared neurons" variant (empty: none).
        variant_models: Models run in the variants.
        edges: Score inferred edges.
        trajectory: Fig. 4C settings: ``models`` (TrajectoryModel), ``counts``, ``window``,
            ``stride``, ``max_combinations``; None: no trajectory run.
    """

    name: str
    title: str
    importer: str | None
    source: str | None
    options: Mapping[str, Any]
    simulated: Any
    other: Any
    window: int
    protocol: ProtocolConfig
    models: tuple[ModelSpec, ...]
    paper_rows: Mapping[str, str]
    without: tuple[str, ...] = ()
    few: tuple[str, ...] = ()
    variant_models: tuple[str, ...] = ()
    edges: bool = False
    dataset: str | None = None
    other_dataset: str | None = None
    trajectory: Mapping[str, Any] | None = None
    source_text: str = field(default="", repr=False)


def _keys(table: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {key!r}; allowed: {', '.join(allowed)}")


def load_spec(path: str | Path, *, source: str | None = None) -> WangSpec:
    """Read and check a study file (``source`` overrides ``[data] source``).

    Raises:
        ConfigError: one line for a missing file, bad TOML, unknown keys or values.
    """
    from neuroreduce.simulators.wholebrain_sim import WholeBrainSimConfig

    path = Path(path)
    try:
        text = path.read_text()
        doc = tomllib.loads(text)
    except OSError as exc:
        raise ConfigError(f"cannot read study file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    where = str(path)
    _keys(doc, SECTIONS, where)
    exp = doc.get("experiment", {})
    _keys(exp, ("name", "title", "study", "description"), f"{where} [experiment]")
    if exp.get("study", "wang2023") != "wang2023":
        raise ConfigError(f"{where}: study must be 'wang2023', got {exp.get('study')!r}")
    data = doc.get("data", {})
    _keys(data, DATA_KEYS, f"{where} [data]")
    importer = data.get("importer")
    sim = data.get("simulated")
    files = {k: data.get(k) for k in ("dataset", "other_dataset")}
    if sum(x is not None for x in (importer, sim, files["dataset"])) != 1:
        raise ConfigError(f"{where} [data]: give exactly one of importer (with source), "
                          "simulated or dataset")
    for k, v in files.items():
        if v is not None and not Path(v).is_absolute():
            files[k] = str((path.parent / v).resolve())
    src = source or data.get("source")
    if importer is not None and not src:
        raise ConfigError(f"{where} [data]: importer {importer!r} needs a source path")
    if src is not None and importer is not None and not Path(src).is_absolute():
        src = str((path.parent / src).resolve()) if source is None else str(Path(src).resolve())
    try:
        simulated = None if sim is None else WholeBrainSimConfig(**_tuples(sim))
        other = None
        if data.get("other") is not None:
            if simulated is None:
                raise ConfigError("[data] other applies to simulated recordings only")
            other = dataclasses.replace(simulated, **_tuples(data["other"]))
        protocol = ProtocolConfig(**_tuples(doc.get("protocol", {})))
        models, rows = [], {}
        for m in doc.get("models", []):
            m = dict(m)
            row = m.pop("paper_row", m.get("name"))
            m["options"] = tuple(dict(m.get("options", {})).items())
            models.append(ModelSpec(**_tuples(m)))
            rows[models[-1].name] = row
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if not models and "trajectory" not in doc:
        raise ConfigError(f"{where}: declare at least one [[models]] table (or a "
                          "[trajectory] section)")
    var = doc.get("variants", {})
    _keys(var, VARIANT_KEYS, f"{where} [variants]")
    names = [m.name for m in models]
    vmodels = tuple(var.get("models", names))
    unknown = [m for m in vmodels if m not in names]
    if unknown:
        raise ConfigError(f"{where} [variants] models: {unknown[0]!r} is not a declared model "
                          f"({', '.join(names)})")
    trajectory = _trajectory(doc.get("trajectory"), f"{where} [trajectory]")
    window = data.get("window", 8)
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ConfigError(f"{where} [data] window must be an integer >= 1, got {window!r}")
    return WangSpec(
        name=str(exp.get("name", path.stem)), title=str(exp.get("title", "")),
        importer=importer, source=src, options=dict(data.get("options", {})),
        simulated=simulated, other=other, window=window, protocol=protocol,
        models=tuple(models), paper_rows=rows, without=tuple(var.get("without", ())),
        few=tuple(var.get("few", ())), variant_models=vmodels, edges=bool(var.get("edges")),
        dataset=files["dataset"], other_dataset=files["other_dataset"], trajectory=trajectory,
        source_text=text,
    )


def _trajectory(table: Mapping[str, Any] | None, where: str) -> dict[str, Any] | None:
    """The checked ``[trajectory]`` table (models as TrajectoryModel)."""
    from neuroreduce.wholebrain.protocol import TrajectoryModel
    from neuroreduce.wholebrain.trajectory import TrajectoryConfig

    if table is None:
        return None
    _keys(table, TRAJECTORY_KEYS, where)
    models = []
    for m in table.get("models", []):
        m = dict(m)
        name = m.pop("name", None)
        if not name:
            raise ConfigError(f"{where}: every model needs a name")
        if "model_options" in m:
            m["model_options"] = tuple(dict(m["model_options"]).items())
        try:
            models.append(TrajectoryModel(str(name), TrajectoryConfig(**_tuples(m))))
        except TypeError as exc:
            raise ConfigError(f"{where} model {name!r}: {exc}") from None
    if not models:
        raise ConfigError(f"{where}: declare at least one model")
    counts = tuple(table.get("counts", (1,)))
    if not counts or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in counts):
        raise ConfigError(f"{where}: counts must be integers >= 1, got {list(counts)}")
    need = max(c.config.burn_in + 1 + c.config.eval_steps for c in models)
    window = table.get("window", need)
    if isinstance(window, bool) or not isinstance(window, int) or window < need:
        raise ConfigError(f"{where}: window must be an integer >= {need} (burn-in + 1 + "
                          f"eval_steps), got {window!r}")
    return {"models": tuple(models), "counts": counts, "window": window,
            "stride": int(table.get("stride", 4)),
            "max_combinations": table.get("max_combinations")}


def _tuples(table: Mapping[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}


# ------------------------------------------------------------------------------ data
def select_neurons(recordings: Dataset, keep: Sequence[str]) -> Dataset:
    """Recordings (Layout 1) with only the neuron channels ``keep`` (in the data's order)."""
    idx = [i for i, n in enumerate(recordings.input_names) if n in set(keep)]
    if len(idx) < 1:
        raise ConfigError(f"none of {', '.join(keep)} is a channel of the recordings")
    return dataclasses.replace(recordings, inputs=recordings.inputs[:, :, idx],
                               input_names=tuple(recordings.input_names[i] for i in idx))


def load_recordings(spec: WangSpec, data_dir: Path) -> tuple[Dataset, Dataset | None]:
    """The recordings (imported, or simulated and cached by spec hash) and the other set."""
    from neuroreduce.datasets.io import load_dataset, save_dataset

    if spec.importer is not None:
        from neuroreduce.datasets.importer_registry import run_import

        return run_import(spec.importer, spec.source or "", dict(spec.options)), None
    if spec.dataset is not None:
        main = load_dataset(spec.dataset)
        other = None if spec.other_dataset is None else load_dataset(spec.other_dataset)
        return _common(main, other)
    from neuroreduce.simulators.wholebrain_sim import simulate_wholebrain

    out = []
    for config in (spec.simulated, spec.other):
        if config is None:
            out.append(None)
            continue
        path = data_dir / f"wholebrain_sim-{config.spec_hash()[:16]}.h5"
        if path.is_file():
            out.append(load_dataset(path))
            continue
        ds = simulate_wholebrain(config)
        save_dataset(ds, path)
        out.append(ds)
    return _common(out[0], out[1])


def _common(main: Dataset, other: Dataset | None) -> tuple[Dataset, Dataset | None]:
    """The other set is scored on the neurons both sets have."""
    if other is None:
        return main, None
    common = [n for n in main.input_names if n in other.input_names]
    return select_neurons(main, common), select_neurons(other, common)


def _windows(recordings: Dataset, window: int) -> Dataset:
    from neuroreduce.wholebrain.windows import windowed

    return windowed(recordings, window=window)


# ------------------------------------------------------------------------------ edges
def edge_scores(rows: Sequence[Mapping[str, Any]], names: Sequence[str],
                recordings: Dataset) -> dict[str, Any]:
    """AUROC of each cell's inferred edges against the connectome among ``names`` (and the
    true wiring, the same c302 connectome, on simulated data), mean ± std over cells.

    A graph model's ``w_ij`` weighs the message from node ``j`` to node ``i`` (``H_i = sum_j
    w_ij x_j``), so the directed score compares ``w`` with the adjacency transposed (row =
    receiving neuron); the undirected score compares ``max(w_ij, w_ji)`` with "connected
    either way" (activity alone rarely tells a synapse's direction)."""
    from neuroreduce.simulators.wholebrain_sim import (
        adjacency_matrix,
        connectome_edges,
        edge_auroc,
    )

    truth = adjacency_matrix(connectome_edges(list(names))).T  # row = postsynaptic
    kind = "true wiring (c302 network)" if "adjacency" in recordings.provenance else \
        "connectome (cect default reader)"
    out: dict[str, Any] = {"reference": kind, "n_edges": int(truth.sum()),
                           "n_pairs": int(truth.size - len(names)), "models": {}}
    for model in sorted({r["model"] for r in rows if r.get("edge_weights") is not None}):
        directed, undirected = [], []
        for r in rows:
            if r["model"] == model and r.get("edge_weights") is not None:
                w = np.asarray(r["edge_weights"])
                try:
                    directed.append(edge_auroc(w, truth))
                    undirected.append(edge_auroc(w, truth, symmetric=True))
                except ConfigError:
                    continue
        m, s, n = mean_std(directed)
        mu, su, _ = mean_std(undirected)
        fixed = any(r["model"] == model and r.get("family") == "gnn_connectome" for r in rows)
        out["models"][model] = {"auroc_mean": m, "auroc_std": s, "cells": n, "fixed": fixed,
                                "auroc_undirected_mean": mu, "auroc_undirected_std": su}
    return out


def trajectory_summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per ``"<model> k=<count>"``: mean MSE per prediction step on unseen worms and the other
    set over the combinations (lists; None where missing), and the number of cells."""
    out: dict[str, Any] = {}
    for r in rows:
        if "error" in r:
            continue
        key = f"{r['model']} k={r['n_train_worms']}"
        out.setdefault(key, {"unseen": [], "other": []})
        for s in ("unseen", "other"):
            if r.get(f"mse_{s}") is not None:
                out[key][s].append(r[f"mse_{s}"])
    return {k: {s: (np.mean(v[s], axis=0).tolist() if v[s] else None) for s in v}
            | {"cells": max(len(v["unseen"]), len(v["other"]))} for k, v in out.items()}


# ------------------------------------------------------------------------------ run
def run_study(spec: WangSpec, out_dir: str | Path, *, backend: Backend | None = None,
              progress: bool = False) -> dict[str, Any]:
    """Run the main grid and the variants; write ``results.json``, ``conclusions.json`` and
    ``report.md``; return the results document."""
    from neuroreduce.studies.base import StudyContext
    from neuroreduce.studies.wang2023.conclusions import study_conclusions
    from neuroreduce.studies.wang2023.report import report_markdown

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    backend = backend or Backend()
    start = time.perf_counter()
    recordings, other = load_recordings(spec, out / "data")
    runs: dict[str, Any] = {}
    variants: list[tuple[str, Dataset, Dataset | None, tuple[ModelSpec, ...]]] = [
        ("all", recordings, other, spec.models)] if spec.models else []
    vmodels = tuple(m for m in spec.models if m.name in spec.variant_models)
    if spec.without and vmodels:
        keep = [n for n in recordings.input_names if n not in spec.without]
        variants.append(("without", select_neurons(recordings, keep),
                         None if other is None else select_neurons(other, keep), vmodels))
    if spec.few and vmodels:
        few = [n for n in spec.few if n in recordings.input_names]
        if few:
            variants.append(("few", select_neurons(recordings, few),
                             None if other is None else select_neurons(other, few), vmodels))
    for name, rec, oth, models in variants:
        windows = _windows(rec, spec.window)
        other_w = None if oth is None else _windows(oth, spec.window)
        result = run_protocol(windows, models, spec.protocol, other=other_w, backend=backend,
                              work_dir=out / "data", progress=progress,
                              edges=spec.edges and name == "all")
        doc = result.to_dict()
        doc["neurons"] = list(rec.input_names)
        doc["n_windows"] = windows.n_trials
        doc["n_other_windows"] = None if other_w is None else other_w.n_trials
        if spec.edges and name == "all":
            doc["edges"] = edge_scores(result.rows, rec.input_names, rec)
            weights = [{"model": r["model"], "combination": r["combination"], "fold": r["fold"],
                        "neurons": list(rec.input_names), "weights": r.pop("edge_weights")}
                       for r in doc["rows"] if r.get("edge_weights") is not None]
            write_json_atomic(out / "edges.json", _jsonable(weights))
        runs[name] = doc
    trajectory = None
    if spec.trajectory is not None:
        from neuroreduce.wholebrain.protocol import run_trajectory_protocol
        from neuroreduce.wholebrain.windows import windowed

        t0 = time.perf_counter()
        tr = spec.trajectory
        seg = windowed(recordings, window=tr["window"], stride=tr["stride"])
        oseg = None if other is None else windowed(other, window=tr["window"],
                                                    stride=tr["stride"])
        rows = run_trajectory_protocol(seg, tr["models"], tr["counts"], other=oseg,
                                       max_combinations=tr["max_combinations"],
                                       backend=backend, work_dir=out / "data")
        trajectory = {"rows": rows, "counts": list(tr["counts"]), "window": tr["window"],
                      "summary": trajectory_summary(rows), "wall_s": time.perf_counter() - t0}
    results = {
        "name": spec.name, "title": spec.title, "study": "wang2023",
        "data": {"importer": spec.importer, "source": spec.source, "dataset": spec.dataset,
                 "options": dict(spec.options),
                 "simulated": None if spec.simulated is None else dataclasses.asdict(
                     spec.simulated),
                 "other": None if spec.other is None else dataclasses.asdict(spec.other),
                 "window": spec.window, "worms": list(recordings.families),
                 "provenance": {k: v for k, v in recordings.provenance.items()
                                if k != "adjacency"}},
        "paper_rows": dict(spec.paper_rows), "without": list(spec.without),
        "few": list(spec.few), "runs": runs, "trajectory": trajectory,
        "wall_s": time.perf_counter() - start,
        "backend": backend.kind, "workers": backend.workers,
    }
    write_json_atomic(out / "results.json", _jsonable(results))
    ctx = StudyContext(cells=(), analyses={"wang2023": results}, resolved={})
    paragraphs = study_conclusions(ctx)
    write_json_atomic(out / "conclusions.json", _jsonable(paragraphs))
    write_text_atomic(out / "report.md", report_markdown(results, paragraphs))
    write_text_atomic(out / "study.toml", spec.source_text)
    return results


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist")
                                 else str(o)))
