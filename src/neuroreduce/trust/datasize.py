"""How in- and out-of-distribution errors fall with the number of training trials (issue 14,
part 5).

The experiment grid expresses the study (``experiments/trust/datasize.toml``: training datasets
of growing size from one generator and seed, so smaller sets are prefixes of larger ones; GRU-4,
8 and 16; the held-out battery as ``role = "test"`` datasets). This module reads the finished
experiment folder and tabulates, per model and training-set size, the in-distribution (test
split) RMSE, the battery RMSE (mean over battery datasets) and their ratio::

    <exp_dir>/analysis/datasize.csv    model, hidden, dataset, n_train, test_rmse, battery_rmse,
                                       ratio, then one column per battery family
    <exp_dir>/analysis/datasize.json   the same rows
    <exp_dir>/analysis/datasize.png    both errors vs n_train, one line per model

RMSE in the outputs' units (mV), mean over the ensemble's members (as the experiment's
``analysis/ood.json``, which must exist: run ``neuroreduce experiment run`` first).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce._io import write_bytes_atomic, write_json_atomic, write_text_atomic
from neuroreduce.errors import CheckpointError
from neuroreduce.trust.design import csv_cell


def datasize_rows(exp_dir: str | Path) -> list[dict[str, Any]]:
    """One row per cell: ``{cell, label, dataset, n_train, test_rmse, battery_rmse, ratio,
    per_family: {family: rmse}}``, sorted by label and ``n_train``.

    Raises:
        CheckpointError: if the folder has no ``analysis/ood.json`` or ``resolved.json``.
    """
    from neuroreduce.datasets.io import load_dataset
    from neuroreduce.stimuli import held_out_families

    exp_dir = Path(exp_dir)
    try:
        ood = json.loads((exp_dir / "analysis" / "ood.json").read_text())
        resolved = json.loads((exp_dir / "resolved.json").read_text())
    except (OSError, ValueError):
        raise CheckpointError(f"{exp_dir} has no finished analysis (analysis/ood.json, "
                              "resolved.json); run `neuroreduce experiment run` on it") from None
    held = set(held_out_families())
    datasets = resolved.get("datasets", {})
    battery = {name for name, d in datasets.items()
               if set(d.get("table", {}).get("families") or ()) & held}
    n_train: dict[str, int] = {}
    rows: dict[str, dict[str, Any]] = {}
    for r in ood.get("rows", []):
        if r["extra"] not in battery:
            continue
        if r["dataset"] not in n_train:
            split = load_dataset(datasets[r["dataset"]]["file"]).split
            n_train[r["dataset"]] = int((np.asarray(split) == 0).sum())
        row = rows.setdefault(r["cell"], {"cell": r["cell"], "label": r["label"],
                                          "dataset": r["dataset"],
                                          "n_train": n_train[r["dataset"]],
                                          "test_rmse": r["test_rmse"], "per_family": {}})
        fams = datasets[r["extra"]]["table"]["families"]
        row["per_family"][fams[0] if len(fams) == 1 else r["extra"]] = r["ood_rmse"]
    out = []
    for row in rows.values():
        row["battery_rmse"] = float(np.mean(list(row["per_family"].values())))
        row["ratio"] = row["battery_rmse"] / row["test_rmse"] if row["test_rmse"] > 0 else None
        out.append(row)
    return sorted(out, key=lambda r: (r["label"], r["n_train"]))


def write_datasize(exp_dir: str | Path) -> list[Path]:
    """Write ``analysis/datasize.{csv,json,png}`` (see the module docstring)."""
    exp_dir = Path(exp_dir)
    rows = datasize_rows(exp_dir)
    fams = list(dict.fromkeys(f for r in rows for f in r["per_family"]))
    cols = ["label", "dataset", "n_train", "test_rmse", "battery_rmse", "ratio"]
    lines = [",".join(cols + fams)]
    for r in rows:
        cells = [csv_cell(r.get(c)) for c in cols]
        cells += [csv_cell(r["per_family"].get(f)) for f in fams]
        lines.append(",".join(cells))
    folder = exp_dir / "analysis"
    write_text_atomic(folder / "datasize.csv", "\n".join(lines) + "\n")
    write_json_atomic(folder / "datasize.json", {"rows": rows, "units": "output units (mV)"})
    return [folder / "datasize.csv", folder / "datasize.json", _figure(folder / "datasize.png",
                                                                        rows)]


def _figure(path: Path, rows: list[dict[str, Any]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for label in dict.fromkeys(r["label"] for r in rows):
        mine = [r for r in rows if r["label"] == label]
        n = [r["n_train"] for r in mine]
        line = ax.plot(n, [r["battery_rmse"] for r in mine], "o-", label=f"{label}: battery")[0]
        ax.plot(n, [r["test_rmse"] for r in mine], "s--", color=line.get_color(),
                label=f"{label}: in-distribution")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training trials")
    ax.set_ylabel("RMSE (mean over members)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())
    return path
