"""Figures in the paper's layout: test sequences (true vs predicted), inputs, loss curves, errors.

Every function takes plain arrays, writes one PNG and returns its path. matplotlib runs with the
non-interactive Agg backend (no screen needed).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neuroreduce._io import atomic_path  # noqa: E402

_TRUE_STYLE = {"color": "black", "lw": 1.4, "label": "simulator (true)"}
_PRED_COLOR = "tab:orange"


def _save(fig: plt.Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def plot_test_sequences(
    path: str | Path,
    *,
    time_ms: np.ndarray,
    inputs: np.ndarray,
    outputs_true: np.ndarray,
    outputs_pred: np.ndarray,
    input_names: Sequence[str],
    output_names: Sequence[str],
    trial_labels: Sequence[str],
    input_units: str = "nA",
    output_units: str = "mV",
    title: str = "",
) -> Path:
    """One column per shown trial: inputs on top, then one row per output neuron.

    Args:
        time_ms: Sample times, shape ``[time]`` (ms).
        inputs: ``[trial, time, input]`` in ``input_units``.
        outputs_true: ``[trial, time, output]`` in ``output_units``.
        outputs_pred: ``[member, trial, time, output]``; the member mean is drawn as a line and
            the member min-max as a band.
        trial_labels: One title per trial (e.g. ``"test #3 (chirp)"``).
    """
    n_trials, _, n_out = outputs_true.shape
    fig, axes = plt.subplots(
        n_out + 1, n_trials, figsize=(3.6 * n_trials, 1.5 * (n_out + 1)), sharex=True,
        squeeze=False,
    )
    mean = outputs_pred.mean(axis=0)
    lo, hi = outputs_pred.min(axis=0), outputs_pred.max(axis=0)
    for c in range(n_trials):
        ax = axes[0, c]
        for i, name in enumerate(input_names):
            ax.plot(time_ms, inputs[c, :, i], lw=1.0, label=name)
        ax.set_title(trial_labels[c], fontsize=9)
        if c == 0:
            ax.set_ylabel(f"input ({input_units})", fontsize=8)
            ax.legend(fontsize=6, ncol=2, loc="upper right", frameon=False)
        for j, name in enumerate(output_names):
            ax = axes[j + 1, c]
            ax.plot(time_ms, outputs_true[c, :, j], **_TRUE_STYLE)
            ax.plot(time_ms, mean[c, :, j], color=_PRED_COLOR, lw=1.2, ls="--",
                    label="surrogate (seed mean)")
            if outputs_pred.shape[0] > 1:
                ax.fill_between(time_ms, lo[c, :, j], hi[c, :, j], color=_PRED_COLOR, alpha=0.25,
                                lw=0, label="seed min-max")
            if c == 0:
                ax.set_ylabel(f"{name} ({output_units})", fontsize=8)
            if j == 0 and c == n_trials - 1:
                ax.legend(fontsize=6, loc="upper right", frameon=False)
    for ax in axes.ravel():
        ax.tick_params(labelsize=7)
    for c in range(n_trials):
        axes[-1, c].set_xlabel("time (ms)", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_loss_curves(
    path: str | Path,
    *,
    epochs: np.ndarray,
    train_loss: np.ndarray,
    valid_loss: np.ndarray,
    best_epochs: Sequence[int] | None = None,
    loss_name: str = "loss",
    title: str = "",
    diverged: Sequence[int] = (),
    seeds: Sequence[int] = (),
) -> Path:
    """Training and validation loss vs epoch: seed mean as a line, seed min-max as a band.

    Args:
        epochs: ``[epoch]`` epoch numbers.
        train_loss: ``[member, epoch]`` (normalised units).
        valid_loss: ``[member, epoch]``.
        best_epochs: Each member's best-validation epoch, marked with dots.
        diverged: Members that diverged (named on the figure, with ``seeds``).
    """
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    draw_loss_curves(ax, epochs=epochs, train_loss=train_loss, valid_loss=valid_loss,
                     best_epochs=best_epochs, loss_name=loss_name)
    mark_diverged(ax, diverged, seeds)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, Path(path))


def draw_loss_curves(
    ax: plt.Axes,
    *,
    epochs: np.ndarray,
    train_loss: np.ndarray,
    valid_loss: np.ndarray,
    best_epochs: Sequence[int] | None = None,
    loss_name: str = "loss",
    ylabel: str | None = None,
) -> None:
    """Draw :func:`plot_loss_curves`' content on ``ax`` (y label default: normalised outputs).

    NaN/inf/non-positive losses (a diverged member) are left out of the lines; the y axis is
    logarithmic only when some finite positive loss remains (else linear, with a note).
    """
    train_loss, valid_loss = _loggable(train_loss), _loggable(valid_loss)
    for loss, color, label in ((train_loss, "tab:blue", "training"),
                               (valid_loss, "tab:red", "validation")):
        ax.plot(epochs, _nan_stat(np.nanmean, loss), color=color, lw=1.4,
                label=f"{label} (seed mean)")
        if loss.shape[0] > 1:
            ax.fill_between(epochs, _nan_stat(np.nanmin, loss), _nan_stat(np.nanmax, loss),
                            color=color, alpha=0.2, lw=0, label=f"{label} (seed min-max)")
    if best_epochs is not None:
        idx = {int(e): k for k, e in enumerate(epochs)}
        pts = [(e, valid_loss[m, idx[int(e)]]) for m, e in enumerate(best_epochs)
               if int(e) in idx and np.isfinite(valid_loss[m, idx[int(e)]])]
        if pts:
            ax.scatter(*zip(*pts, strict=True), s=14, color="tab:red", zorder=3,
                       label="best validation epoch")
    log_axis_if_positive(ax, train_loss, valid_loss)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel or f"{loss_name} (normalised outputs)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, frameon=False)


def _loggable(values: np.ndarray) -> np.ndarray:
    """``values`` (float) with NaN where they are not finite and positive."""
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(v) & (v > 0), v, np.nan)


def _nan_stat(fn: Any, values: np.ndarray) -> np.ndarray:
    """``fn(values, axis=0)`` of a NaN-aware reducer, quietly NaN for all-NaN columns."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(values, axis=0)


def log_axis_if_positive(ax: plt.Axes, *arrays: np.ndarray) -> bool:
    """Log y scale when the arrays hold a finite positive value; else keep the axis linear and
    say that no finite loss is left to draw. Returns whether the axis is logarithmic."""
    if any(np.isfinite(_loggable(a)).any() for a in arrays):
        ax.set_yscale("log")
        return True
    ax.text(0.5, 0.5, "no finite loss to draw (diverged)", transform=ax.transAxes,
            ha="center", va="center", color="tab:red")
    return False


def mark_diverged(ax: plt.Axes, diverged: Sequence[int], seeds: Sequence[int]) -> None:
    """Note on ``ax`` which members diverged (NaN/inf) and were frozen at their best weights."""
    if not diverged:
        return
    names = ", ".join(f"{k} (seed {seeds[k]})" if k < len(seeds) else str(k) for k in diverged)
    ax.text(0.01, 0.99, f"diverged: member {names}", transform=ax.transAxes, ha="left",
            va="top", fontsize=8, color="tab:red")


def plot_loss_terms(
    path: str | Path,
    *,
    epochs: np.ndarray,
    train_loss: np.ndarray,
    valid_loss: np.ndarray,
    best_epochs: Sequence[int] | None = None,
    terms: dict[str, np.ndarray] | None = None,
    title: str = "",
    diverged: Sequence[int] = (),
    seeds: Sequence[int] = (),
) -> Path:
    """The objective's total loss (as :func:`plot_loss_curves`) and, beside it, each term's
    validation loss (seed mean line, seed min-max band).

    Args:
        terms: Term (field) name -> validation loss ``[member, epoch]``; none: one panel.
        diverged: Members that diverged (named on the figure, with ``seeds``).
    """
    terms = terms or {}
    fig, axes = plt.subplots(1, 2 if terms else 1, figsize=(11.5 if terms else 6.4, 3.8),
                             squeeze=False)
    draw_loss_curves(axes[0, 0], epochs=epochs, train_loss=train_loss, valid_loss=valid_loss,
                     best_epochs=best_epochs, ylabel="objective (sum of weighted terms)")
    axes[0, 0].set_title("total", fontsize=9)
    mark_diverged(axes[0, 0], diverged, seeds)
    if terms:
        ax = axes[0, 1]
        colors = plt.get_cmap("tab10").colors
        for k, (name, loss) in enumerate(terms.items()):
            color = colors[k % len(colors)]
            loss = _loggable(loss)
            ax.plot(epochs, _nan_stat(np.nanmean, loss), color=color, lw=1.4, label=name)
            if loss.shape[0] > 1:
                ax.fill_between(epochs, _nan_stat(np.nanmin, loss), _nan_stat(np.nanmax, loss),
                                color=color, alpha=0.2, lw=0)
        log_axis_if_positive(ax, *terms.values())
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation loss of the term")
        ax.set_title("validation loss per term (seed mean, band = seed min-max)", fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, frameon=False, title="field", title_fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_errors_per_output(
    path: str | Path,
    *,
    output_names: Sequence[str],
    per_split: dict[str, tuple[np.ndarray, np.ndarray]],
    units: str = "mV",
    title: str = "",
) -> Path:
    """Grouped bars of RMSE per output neuron and split, with the seed std as error bars.

    Args:
        per_split: ``split -> (mean [output], std [output])`` in ``units``.
    """
    fig, ax = plt.subplots(figsize=(1.3 * len(output_names) + 3, 3.4))
    n = len(per_split)
    width = 0.8 / max(n, 1)
    x = np.arange(len(output_names))
    for k, (split, (mean, std)) in enumerate(per_split.items()):
        ax.bar(x + (k - (n - 1) / 2) * width, mean, width, yerr=std, capsize=3, label=split)
    ax.set_xticks(x, list(output_names))
    ax.set_ylabel(f"RMSE ({units})")
    ax.legend(fontsize=8, frameon=False)
    ax.grid(alpha=0.3, axis="y")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, Path(path))
