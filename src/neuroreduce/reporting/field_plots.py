"""Figures of predicted typed fields: traces, ROC curves, spike rasters, label sequences.

Every function takes plain arrays, writes one PNG and returns its path (matplotlib Agg, as
:mod:`neuroreduce.reporting.figures`). Which function draws which field kind is decided by the
registry in :mod:`neuroreduce.reporting.field_figures`, not here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from neuroreduce.reporting.figures import _PRED_COLOR, _TRUE_STYLE, _save, plt

#: Colours of label classes (cycled); ignored steps are drawn in :data:`_IGNORED`.
_CLASS_COLORS = plt.get_cmap("tab10").colors
_IGNORED = (0.88, 0.88, 0.88)


_TRUTH = {**_TRUE_STYLE, "label": "true"}


def _legend_below(fig: plt.Figure, axes: np.ndarray) -> None:
    """One legend of every labelled artist of ``axes``, under the figure (saved with it)."""
    handles: dict[str, object] = {}
    for ax in np.ravel(axes):
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    fig.legend(handles.values(), handles.keys(), loc="upper center", ncol=len(handles),
               bbox_to_anchor=(0.5, 0.0), fontsize=8, frameon=False)


def _finish(fig: plt.Figure, axes: np.ndarray, path: str | Path, title: str) -> Path:
    for ax in np.ravel(axes):
        ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_field_traces(
    path: str | Path,
    *,
    time_ms: np.ndarray,
    truth: np.ndarray,
    pred: np.ndarray,
    channel_names: Sequence[str],
    trial_labels: Sequence[str],
    units: str,
    title: str = "",
) -> Path:
    """True vs predicted traces of a continuous field: one row per channel, one column per trial.

    Args:
        time_ms: ``[time]`` (ms).
        truth: ``[trial, time, channel]`` in ``units``; NaN = missing (drawn as a gap, with a
            red tick under the axis; a channel missing for a whole trial is marked so).
        pred: ``[member, trial, time, channel]``: seed mean as a dashed line, min-max as a band.
    """
    n_trials, _, n_ch = truth.shape
    fig, axes = plt.subplots(n_ch, n_trials, figsize=(3.6 * n_trials, 1.55 * n_ch + 0.6),
                             sharex=True, squeeze=False)
    mean, lo, hi = pred.mean(axis=0), pred.min(axis=0), pred.max(axis=0)
    for c in range(n_trials):
        for j, name in enumerate(channel_names):
            ax = axes[j, c]
            y = truth[c, :, j]
            missing = np.isnan(y)
            ax.plot(time_ms, y, **_TRUTH)
            ax.plot(time_ms, mean[c, :, j], color=_PRED_COLOR, lw=1.2, ls="--",
                    label="surrogate (seed mean)")
            if pred.shape[0] > 1:
                ax.fill_between(time_ms, lo[c, :, j], hi[c, :, j], color=_PRED_COLOR,
                                alpha=0.25, lw=0, label="seed min-max")
            if missing.all():
                ax.text(0.5, 0.85, "not recorded (prediction only)", transform=ax.transAxes,
                        ha="center", fontsize=7, color="0.4")
            elif missing.any():
                ax.scatter(time_ms[missing], np.zeros(missing.sum()), marker="|", s=30,
                           color="tab:red", transform=ax.get_xaxis_transform(), clip_on=False,
                           label="missing value")
            if c == 0:
                ax.set_ylabel(f"{name} ({units})" if units else name, fontsize=8)
            if j == 0:
                ax.set_title(trial_labels[c], fontsize=9)
        axes[-1, c].set_xlabel("time (ms)", fontsize=8)
    _legend_below(fig, axes)
    return _finish(fig, axes, path, title)


def plot_roc_curves(
    path: str | Path,
    *,
    curves: Sequence[Sequence[tuple[np.ndarray, np.ndarray, float]]],
    channel_names: Sequence[str],
    seed_labels: Sequence[str],
    split: str = "test",
    title: str = "",
) -> Path:
    """ROC curves, one panel per channel, one curve per seed with its AUC in the legend.

    Args:
        curves: ``curves[channel][member] = (fpr [n], tpr [n], auc)``; empty arrays mark a
            channel without both classes in the split (panel says so).
        seed_labels: One legend label per member (e.g. ``"seed 0"``).
    """
    n = len(channel_names)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n + 0.4, 3.7), squeeze=False)
    colors = plt.get_cmap("viridis")(np.linspace(0.1, 0.85, max(len(seed_labels), 1)))
    for j, name in enumerate(channel_names):
        ax = axes[0, j]
        ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls=":", label="chance (AUC 0.5)")
        for k, (fpr, tpr, auc) in enumerate(curves[j]):
            if fpr.size:
                ax.plot(fpr, tpr, color=colors[k], lw=1.2,
                        label=f"{seed_labels[k]} (AUC {auc:.3f})")
        if not any(fpr.size for fpr, _, _ in curves[j]):
            ax.text(0.5, 0.5, f"no ROC: {split} split lacks\nspikes or silence", ha="center",
                    va="center", transform=ax.transAxes, fontsize=8, color="0.4")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_aspect("equal")
        ax.set_xlabel("false-positive rate", fontsize=8)
        ax.set_ylabel("true-positive rate", fontsize=8)
        ax.set_title(f"{name} ({split} split)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6.5, loc="lower right", frameon=False)
    return _finish(fig, axes, path, title)


def plot_spike_raster(
    path: str | Path,
    *,
    time_ms: np.ndarray,
    truth: np.ndarray,
    prob: np.ndarray,
    channel_names: Sequence[str],
    trial_labels: Sequence[str],
    title: str = "",
) -> Path:
    """True spikes (black ticks) over the predicted spike probability (seed mean, filled);
    missing true values shaded grey.

    One panel per trial; channel ``c`` occupies the row ``[c, c + 1)`` with the probability
    scaled to the row (a single channel: the y axis is the probability itself).

    Args:
        truth: ``[trial, time, channel]`` 0/1 (NaN = missing, never drawn as a spike).
        prob: ``[member, trial, time, channel]`` probabilities of a spike per sample.
    """
    n_trials, _, n_ch = truth.shape
    fig, axes = plt.subplots(n_trials, 1, figsize=(9.0, (0.5 + 0.55 * n_ch) * n_trials + 0.9),
                             sharex=True, squeeze=False)
    mean, lo, hi = prob.mean(axis=0), prob.min(axis=0), prob.max(axis=0)
    for i in range(n_trials):
        ax = axes[i, 0]
        for c in range(n_ch):
            ax.fill_between(time_ms, c, c + 0.9 * mean[i, :, c], color=_PRED_COLOR, alpha=0.55,
                            lw=0.6, label="P(spike), seed mean")
            if prob.shape[0] > 1:
                ax.fill_between(time_ms, c + 0.9 * lo[i, :, c], c + 0.9 * hi[i, :, c],
                                color="tab:brown", alpha=0.2, lw=0, label="seed min-max")
            missing = np.isnan(truth[i, :, c])
            if missing.any():
                ax.fill_between(time_ms, c, c + 1, where=missing, step="mid", color=_IGNORED,
                                lw=0, zorder=0, label="missing / not recorded")
            spikes = time_ms[np.nan_to_num(truth[i, :, c]) > 0.5]
            ax.vlines(spikes, c, c + 1, color="black", lw=0.9, label="true spike")
        if n_ch == 1:
            ax.set_ylabel(f"P(spike)\n{channel_names[0]}", fontsize=8)
            ax.set_ylim(0, 1)
            ax.set_yticks([0, 0.45, 0.9], ["0", "0.5", "1"])
        else:
            ax.set_ylim(0, n_ch)
            ax.set_yticks(np.arange(n_ch) + 0.5, list(channel_names), fontsize=6)
        ax.set_title(trial_labels[i], fontsize=9, loc="left")
    _legend_below(fig, axes)
    axes[-1, 0].set_xlabel("time (ms)", fontsize=8)
    return _finish(fig, axes, path, title)


def _label_image(labels: np.ndarray, ignore_label: int | None) -> np.ndarray:
    """RGB ``[1, time, 3]`` of a label sequence (ignored/unknown labels grey)."""
    rgb = np.empty((labels.size, 3))
    for t, v in enumerate(labels):
        ok = v >= 0 and (ignore_label is None or v != ignore_label)
        rgb[t] = _CLASS_COLORS[int(v) % len(_CLASS_COLORS)] if ok else _IGNORED
    return rgb[None]


def plot_label_sequences(
    path: str | Path,
    *,
    time_ms: np.ndarray,
    truth: np.ndarray,
    prob: np.ndarray,
    classes: Sequence[str],
    row_labels: Sequence[str],
    ignore_label: int | None = None,
    title: str = "",
) -> Path:
    """True vs predicted label sequence, and the predicted class probabilities.

    For each row (a trial's channel): a strip of true labels over a strip of predicted labels
    (most probable class), then each class's probability (seed mean).

    Args:
        truth: int ``[row, time]`` (``ignore_label`` = unknown, grey).
        prob: ``[row, time, class]`` ensemble-mean class probabilities.
    """
    n_rows = truth.shape[0]
    fig, axes = plt.subplots(2 * n_rows, 1, figsize=(9.0, 2.3 * n_rows + 0.8), sharex=True,
                             gridspec_kw={"height_ratios": [0.8, 1.6] * n_rows}, squeeze=False)
    extent = (time_ms[0], time_ms[-1] + (time_ms[1] - time_ms[0] if time_ms.size > 1 else 1))
    for r in range(n_rows):
        strip, ax = axes[2 * r, 0], axes[2 * r + 1, 0]
        image = np.concatenate([_label_image(truth[r], ignore_label),
                                _label_image(prob[r].argmax(axis=-1), None)])
        strip.imshow(image, aspect="auto", interpolation="nearest",
                     extent=(*extent, 2, 0))
        strip.set_yticks([0.5, 1.5], ["true", "predicted"], fontsize=7)
        strip.set_title(row_labels[r], fontsize=9, loc="left")
        for k, name in enumerate(classes):
            ax.plot(time_ms, prob[r, :, k], color=_CLASS_COLORS[k % len(_CLASS_COLORS)], lw=1.1,
                    label=f"P({name})")
        unknown = truth[r] < 0 if ignore_label is None else truth[r] == ignore_label
        if unknown.any():
            ax.fill_between(time_ms, 0, 1, where=unknown, color=_IGNORED, lw=0, step="mid",
                            label="unknown (ignored)")
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability\n(seed mean)", fontsize=7)
    _legend_below(fig, axes)
    axes[-1, 0].set_xlabel("time (ms)", fontsize=8)
    return _finish(fig, axes, path, title)


def plot_confusion_matrix(
    path: str | Path,
    *,
    counts: np.ndarray,
    classes: Sequence[str],
    title: str = "",
) -> Path:
    """Confusion matrix: colour = fraction of each true class (row), text = count and fraction.

    Args:
        counts: ``[K, K]`` counts, row = true class, column = predicted class.
    """
    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.1 * k + 2.6, 1.0 * k + 1.6))
    support = counts.sum(axis=1, keepdims=True)
    frac = np.divide(counts, support, out=np.zeros(counts.shape), where=support > 0)
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{int(counts[i, j])}\n{frac[i, j]:.0%}", ha="center", va="center",
                    fontsize=8, color="white" if frac[i, j] > 0.6 else "black")
    ax.set_xticks(range(k), list(classes), fontsize=8)
    ax.set_yticks(range(k), list(classes), fontsize=8)
    ax.set_xlabel("predicted class (seed-mean probabilities)", fontsize=8)
    ax.set_ylabel("true class", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04).set_label("fraction of true class",
                                                                fontsize=8)
    return _finish(fig, np.array([ax]), path, title)
