"""The study's figures: rasters of the repetitions against each model's spikes, voltage traces,
and Gamma_A against the coincidence window and the assumed sampling interval.

Every function writes one PNG (matplotlib, Agg backend, atomic write) and returns its path.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neuroreduce._io import atomic_path  # noqa: E402

#: Longest stretch of a raster (ms), from the start of the test segment.
RASTER_MS = 1000.0


def _save(fig: Any, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight", format="png")
    plt.close(fig)
    return str(path)


def _test_trials(record: Mapping[str, Any], field: str) -> list[dict[str, Any]]:
    return [t for t in record.get("trials", []) if t.get("split") in (None, "test")
            and field in t.get("data", {})]


def raster(path: Path, records: Mapping[str, Mapping[str, Any]], *, title: str) -> str | None:
    """Rows: the data repetitions of the first test stimulus, then each model's spikes (member
    0) for each repetition; the first :data:`RASTER_MS` ms."""
    if not records:
        return None
    first = next(iter(records.values()))
    field = first["field"]
    trials = _test_trials(first, field)
    if not trials:
        return None
    stim = trials[0].get("stimulus")
    reps = [t for t in trials if t.get("stimulus") == stim]
    rows: list[tuple[str, np.ndarray, str]] = [
        (f"data rep {i}", np.asarray(t["data"][field]), "black") for i, t in enumerate(reps)]
    colors = plt.get_cmap("tab10")
    for j, (label, rec) in enumerate(records.items()):
        f = rec["field"]
        mine = [t for t in _test_trials(rec, f) if t.get("stimulus") == stim]
        for i, t in enumerate(mine):
            rows.append((f"{label} rep {i}" if i == 0 else "", np.asarray(t["model"][f][0]),
                         colors(j % 10)))
    fig, ax = plt.subplots(figsize=(9, 0.22 * len(rows) + 1.2))
    for k, (_, times, color) in enumerate(rows):
        times = times[times <= RASTER_MS]
        ax.vlines(times, k + 0.1, k + 0.9, color=color, lw=0.8)
    ax.set_yticks(np.arange(len(rows)) + 0.5)
    ax.set_yticklabels([r[0] for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, RASTER_MS)
    ax.set_xlabel("time in the test segment (ms)")
    ax.set_title(f"{title}: stimulus {stim}, repetitions vs model spikes")
    return _save(fig, path)


def traces(path: Path, records: Mapping[str, Mapping[str, Any]], *, title: str) -> str | None:
    """Recorded vs predicted voltage (first test trial of the first stimulus), one panel per
    model that predicts voltage."""
    panels = [(label, rec["voltage"][0], rec["dt_ms"]) for label, rec in records.items()
              if rec.get("voltage")]
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 1.6 * len(panels) + 0.6),
                             sharex=True, squeeze=False)
    for ax, (label, ex, dt) in zip(axes[:, 0], panels, strict=True):
        t = np.arange(len(ex["true"])) * dt
        ax.plot(t, ex["true"], color="black", lw=0.7, label="recorded")
        ax.plot(t, ex["pred"], color="tab:orange", lw=0.7, label=label)
        ax.set_ylabel("mV")
        ax.legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel("time in the test segment (ms)")
    axes[0, 0].set_title(f"{title}: voltage, stimulus {panels[0][1].get('stimulus')}")
    return _save(fig, path)


def sensitivity(path: Path, entry: Mapping[str, Any], *, title: str) -> str | None:
    """Gamma_A per model for each window and each assumed sampling interval (grouped bars)."""
    sens = entry.get("sensitivity") or {}
    if not sens:
        return None
    labels = list(sens)
    keys = list(next(iter(sens.values())))
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(labels) + 2), 3.2))
    width = 0.8 / max(1, len(keys))
    for j, key in enumerate(keys):
        vals = [sens[m].get(key, np.nan) for m in labels]
        ax.bar(np.arange(len(labels)) + j * width, vals, width, label=key.replace("_", " "))
    ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2)
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("Gamma_A (test)")
    ax.axhline(0, color="grey", lw=0.5)
    ax.legend(fontsize=7)
    ax.set_title(f"{title}: Gamma_A vs window and assumed sampling interval")
    return _save(fig, path)


def write_figures(folder: Path, dataset: str, records: Mapping[str, Mapping[str, Any]],
                  entry: Mapping[str, Any]) -> dict[str, str]:
    """The three figures of one dataset; name -> path of those that could be drawn."""
    out = {
        "raster": raster(folder / f"{dataset}_raster.png", records, title=dataset),
        "traces": traces(folder / f"{dataset}_traces.png", records, title=dataset),
        "sensitivity": sensitivity(folder / f"{dataset}_sensitivity.png", entry, title=dataset),
    }
    return {k: v for k, v in out.items() if v is not None}
