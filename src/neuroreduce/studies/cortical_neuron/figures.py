"""The study's figures: test AUC against parameters for every cell (the blog's figure, with the
published models as reference markers), ROC curves coloured by threshold (the blog's figure,
best cell of each family per dataset) and AUC against training trials.

Every function writes one PNG (matplotlib, Agg backend, atomic write) and returns its path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neuroreduce._io import atomic_path  # noqa: E402
from neuroreduce.studies.cortical_neuron.tables import (  # noqa: E402
    ANCHORS,
    BLOG_TOP10,
    SPIELER_ELM,
)

COLOURS = {"rnn": "tab:blue", "gru": "tab:orange", "lstm": "tab:green", "tcn": "tab:red",
           "elm": "tab:purple", "glm": "tab:brown"}


def _save(fig: Any, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight", format="png")
    plt.close(fig)
    return str(path)


def _auc(r: Mapping[str, Any]) -> float:
    v = (r.get("spikes") or {}).get("auc", float("nan"))
    return v if isinstance(v, float) and math.isfinite(v) else float("nan")


def auc_vs_parameters(path: Path, records: list[Mapping[str, Any]]) -> str | None:
    """Test AUC vs parameters (log) of every cell, coloured by family, NMDA filled / AMPA-only
    open; the blog's top 10 (validation, NeuronIO), Spieler's Branch-ELMs and Beniaguev's TCN
    as grey reference markers."""
    if not records:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for fam in sorted({r["family"] for r in records}):
        for ampa in (False, True):
            sel = [r for r in records if r["family"] == fam and r["ampa_only"] == ampa]
            if sel:
                ax.scatter([r["parameters"] for r in sel], [_auc(r) for r in sel],
                           color=COLOURS.get(fam, "black"), s=30,
                           facecolors="none" if ampa else COLOURS.get(fam, "black"),
                           label=f"{fam}{' (AMPA-only)' if ampa else ''} (ours)")
    ax.scatter([r[1] for r in BLOG_TOP10], [r[5] for r in BLOG_TOP10], marker="x",
               color="0.5", label="blog top 10 (NeuronIO, valid)")
    ax.scatter([p for p, _ in SPIELER_ELM.values()], [a for _, a in SPIELER_ELM.values()],
               marker="^", color="0.5", label="Branch-ELM (Spieler 2023, NeuronIO)")
    tcn = ANCHORS["beniaguev_tcn"]
    ax.scatter([tcn["parameters"]], [tcn["auc"]], marker="s", color="0.5",
               label="TCN (Beniaguev 2021, NeuronIO)")
    ax.set_xscale("log")
    ax.axhline(0.99, color="0.7", lw=0.6, ls="--")
    ax.set_xlabel("parameters")
    ax.set_ylabel("ROC AUC of the spike output (test)")
    ax.set_title("AUC vs parameters, every run")
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def roc_by_threshold(path: Path, record: Mapping[str, Any]) -> str | None:
    """The blog's ROC figure: the curve of one cell with its points coloured by threshold, a
    colour bar, and the Youden threshold marked; FP rate on a log axis from 1e-4."""
    curve = (record.get("spikes") or {}).get("roc") or {}
    if not curve.get("fpr"):
        return None
    fpr, tpr, thr = (np.asarray(curve[k]) for k in ("fpr", "tpr", "thresholds"))
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(np.maximum(fpr, 1e-4), tpr, color="0.8", lw=0.8)
    sc = ax.scatter(np.maximum(fpr, 1e-4), tpr, c=thr, cmap="viridis", s=8, vmin=0, vmax=1)
    fig.colorbar(sc, ax=ax, label="threshold (spike probability)")
    spikes = record["spikes"]
    j = spikes.get("youden_threshold")
    if j is not None and math.isfinite(j):
        k = int(np.argmin(np.abs(thr - j)))
        ax.scatter([max(fpr[k], 1e-4)], [tpr[k]], marker="*", s=120, color="red",
                   label=f"Youden threshold {j:.3g}")
        ax.legend(fontsize=7, loc="lower right")
    ax.set_xscale("log")
    ax.set_xlim(1e-4, 1)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    prec = spikes.get("precision") or {}
    ax.set_title(f"{record['label']} ({record['dataset']}): AUC {_auc(record):.4f}\n"
                 f"thresholds within 1 pt of best bal. acc.: {prec.get('low', float('nan')):.3g}"
                 f"-{prec.get('high', float('nan')):.3g}", fontsize=8)
    return _save(fig, path)


def auc_vs_data(path: Path, curves: Mapping[str, list[list[float]]]) -> str | None:
    """Test AUC vs training trials for each architecture trained on several data sizes."""
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, pts in curves.items():
        n, a = zip(*pts, strict=True)
        ax.plot(n, a, marker="o", label=label)
    ax.axhline(0.99, color="0.7", lw=0.6, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("training trials")
    ax.set_ylabel("ROC AUC (test)")
    ax.set_title("AUC vs data size")
    ax.legend(fontsize=7)
    return _save(fig, path)


def write_figures(folder: Path, result: Mapping[str, Any]) -> dict[str, str]:
    """All figures of the analysis ``result``: name -> path of those that could be drawn."""
    records = result["cells"]
    out = {"auc_vs_parameters": auc_vs_parameters(folder / "auc_vs_parameters.png", records),
           "auc_vs_data": auc_vs_data(folder / "auc_vs_data.png", result.get("data_size") or {})}
    best: dict[tuple[str, str], Mapping[str, Any]] = {}
    for r in records:
        k = (r["dataset"], r["family"])
        if k not in best or _auc(r) > _auc(best[k]):
            best[k] = r
    for (ds, fam), r in sorted(best.items()):
        out[f"roc_{ds}_{fam}"] = roc_by_threshold(folder / f"roc_{ds}_{fam}.png", r)
    return {k: v for k, v in out.items() if v is not None}
