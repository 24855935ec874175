"""Figures of an experiment report (any study; the layouts follow the usual figures of
surrogate papers, e.g. Figs 5-12 of Barbulescu et al. 2023).

* :func:`plot_loss_panels` - training/validation loss per model;
* :func:`plot_sequence_grid` - true vs predicted test sequences of two trials per model
  (true in red/blue, predicted in green/black);
* :func:`plot_error_vs_size` - test error vs parameter count with the seed spread;
* :func:`plot_heatmaps` - input x output matrices (attribution, ablation).

Each function takes plain arrays, writes one PNG atomically and returns its path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce.reporting.figures import _save, plt

_TRUE_COLORS = ("tab:red", "tab:blue")
_MARKERS = {"rnn": "^", "lstm": "s", "gru": "o"}
_PRED_COLORS = ("tab:green", "black")


def plot_loss_panels(
    path: str | Path,
    *,
    panels: Sequence[tuple[str, Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]]]],
    loss_name: str = "RMSE",
) -> Path:
    """One panel per group; per model the seed-mean training (solid) and validation (dashed)
    loss vs epoch.

    Args:
        panels: ``[(title, [(model label, epochs [epoch], train [member, epoch],
            valid [member, epoch]), ...]), ...]`` (normalised units).
        loss_name: Name of the loss on the y axis.
    """
    n = max(len(panels), 1)
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 3.8), squeeze=False)
    for ax, (title, series) in zip(axes[0], panels, strict=False):
        values: list[float] = []
        for k, (label, epochs, train, valid) in enumerate(series):
            values += [float(np.nanmin(train)), float(np.nanmax(train)),
                       float(np.nanmin(valid)), float(np.nanmax(valid))]
            color = f"C{k % 10}"
            ax.plot(epochs, np.nanmean(train, axis=0), color=color, lw=1.3,
                    label=f"{label} train")
            ax.plot(epochs, np.nanmean(valid, axis=0), color=color, lw=1.3, ls="--",
                    label=f"{label} valid")
        _log_if_wide(ax.yaxis, ax.set_yscale, values)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{loss_name} (normalised outputs, seed mean)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, ncol=2, frameon=False)
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_sequence_grid(
    path: str | Path,
    *,
    time_ms: np.ndarray,
    outputs_true: np.ndarray,
    predictions: Sequence[tuple[str, np.ndarray]],
    output_names: Sequence[str],
    trial_labels: Sequence[str],
    units: str = "mV",
    title: str = "",
) -> Path:
    """Rows = outputs, columns = models; each panel shows two test trials, true (red, blue)
    and predicted by one seed (green, black).

    Args:
        time_ms: ``[time]`` (ms).
        outputs_true: ``[trial, time, output]`` (1 or 2 trials).
        predictions: ``[(model label, [trial, time, output]), ...]`` (one seed each).
        output_names: Names of the plotted outputs.
        trial_labels: One label per trial (legend).
    """
    n_out, n_models = len(output_names), max(len(predictions), 1)
    fig, axes = plt.subplots(n_out, n_models, figsize=(3.2 * n_models + 0.8, 1.7 * n_out + 0.6),
                             sharex=True, squeeze=False)
    for c, (label, pred) in enumerate(predictions):
        for j, name in enumerate(output_names):
            ax = axes[j, c]
            for t in range(outputs_true.shape[0]):
                ax.plot(time_ms, outputs_true[t, :, j], color=_TRUE_COLORS[t % 2], lw=1.3,
                        label=f"true, {trial_labels[t]}")
                ax.plot(time_ms, pred[t, :, j], color=_PRED_COLORS[t % 2], lw=1.0, ls="--",
                        label=f"predicted, {trial_labels[t]}")
            if j == 0:
                ax.set_title(label, fontsize=9)
            if c == 0:
                ax.set_ylabel(f"{name} ({units})", fontsize=8)
            ax.tick_params(labelsize=7)
        axes[-1, c].set_xlabel("time (ms)", fontsize=8)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return _save(fig, Path(path))


def plot_error_vs_size(
    path: str | Path,
    *,
    series: dict[str, Sequence[dict[str, Any]]],
    marks: dict[str, dict[str, Any]] | None = None,
    ylabel: str = "test NRMSE (RMSE / range)",
    title: str = "",
) -> Path:
    """Test error vs parameter count (log-log): seed mean ± std, seed values as dots.

    Args:
        series: ``name -> [{"label", "n_parameters", "mean", "std", "values"}, ...]``.
        marks: ``name -> error_vs_size result`` (``best``, ``smallest_within``, ``threshold``):
            the best model is circled, the smallest within tolerance starred, the tolerance
            drawn as a dotted line.
    """
    fig, ax = plt.subplots(figsize=(7.2, 4.4))
    marks = marks or {}
    xs, ys = [], []
    for k, (name, pts) in enumerate(series.items()):
        color = f"C{k % 10}"
        pts = sorted(pts, key=lambda p: p["n_parameters"])
        for model in dict.fromkeys(p.get("model", "") for p in pts):  # one line per model family
            fam = [p for p in pts if p.get("model", "") == model]
            x = np.array([p["n_parameters"] for p in fam], dtype=float)
            y = np.array([p["mean"] for p in fam])
            ax.errorbar(x, y, yerr=[p["std"] for p in fam], fmt=_MARKERS.get(model, "o") + "-",
                        color=color, ms=5, lw=1, capsize=3,
                        label=f"{name} {model.upper()}".strip())
            xs += list(x)
            ys += list(y)
        for p in pts:
            vals = p.get("values") or []
            ax.scatter([p["n_parameters"]] * len(vals), vals, s=6, color=color, alpha=0.35, lw=0)
            ax.annotate(p["label"], (p["n_parameters"], p["mean"]), fontsize=7,
                        xytext=(4, 4), textcoords="offset points")
        m = marks.get(name) or {}
        by_key = {p["key"]: p for p in pts if "key" in p}
        if m.get("best") in by_key:
            b = by_key[m["best"]]
            ax.scatter([b["n_parameters"]], [b["mean"]], s=160, facecolors="none",
                       edgecolors=color, lw=1.5, label=f"{name}: best")
            ax.axhline(m["threshold"], color=color, ls=":", lw=1,
                       label=f"{name}: best + {100 * m['tolerance']:.0f}%")
        if m.get("smallest_within") in by_key:
            sm = by_key[m["smallest_within"]]
            ax.scatter([sm["n_parameters"]], [sm["mean"]], s=140, marker="*", color=color,
                       zorder=4, label=f"{name}: smallest within tolerance")
    _log_if_wide(ax.xaxis, ax.set_xscale, xs)
    _log_if_wide(ax.yaxis, ax.set_yscale, ys)
    ax.set_xlabel("parameters per model (PyTorch count)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_heatmaps(
    path: str | Path,
    *,
    panels: Sequence[tuple[str, Sequence[str], Sequence[str], np.ndarray]],
    value_format: str = "{:.2f}",
    cmap: str = "viridis",
    colorbar_label: str = "",
    diverging: bool = False,
    limits: tuple[float, float] | None = None,
) -> Path:
    """One annotated heatmap per panel: rows and columns named.

    Args:
        panels: ``[(title, row names, column names, values [row, column]), ...]``.
        value_format: Format of the annotation in each square.
        diverging: Center the colour scale on zero (for signed changes).
        limits: Fixed colour range ``(min, max)`` shared by all panels (default: per panel).
    """
    n = max(len(panels), 1)
    ncols = min(n, 3)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.3 * ncols, 3.2 * nrows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    for ax, (title, rows, cols, values) in zip(axes.ravel(), panels, strict=False):
        v = np.asarray(values, dtype=float)
        if diverging:
            lim = float(np.nanmax(np.abs(v))) if np.isfinite(v).any() else 1.0
            im = ax.imshow(v, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
        else:
            lo, hi = limits if limits is not None else (None, None)
            im = ax.imshow(v, cmap=cmap, aspect="auto", vmin=lo, vmax=hi)
        ax.set_xticks(range(len(cols)), list(cols), fontsize=7, rotation=45, ha="right")
        ax.set_yticks(range(len(rows)), list(rows), fontsize=7)
        ax.set_title(title, fontsize=9)
        if v.size <= 64:
            mid = (sum(limits) / 2 if limits is not None
                   else np.nanmean(v) if np.isfinite(v).any() else 0.0)
            for (i, j), val in np.ndenumerate(v):
                dark = (abs(val) > abs(mid)) if diverging else val < mid
                ax.text(j, i, value_format.format(val), ha="center", va="center", fontsize=7,
                        color="white" if dark else "black")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=colorbar_label)
    fig.tight_layout()
    return _save(fig, Path(path))


def _log_if_wide(axis: Any, set_scale: Any, values: Sequence[float]) -> None:
    """Log scale with plain tick labels when the values span more than a factor of 4."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    v = np.asarray([x for x in values if np.isfinite(x) and x > 0])
    if v.size and v.max() / v.min() > 4:
        set_scale("log")
        axis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        axis.set_minor_formatter(NullFormatter())
