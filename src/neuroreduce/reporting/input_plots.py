"""Figures of a model's inputs for one trial: spike events as a raster, dense inputs as traces.

Plain arrays in, one PNG out (matplotlib Agg, as :mod:`neuroreduce.reporting.figures`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from neuroreduce.reporting.figures import _save, plt


def _channel_ticks(ax: plt.Axes, names: Sequence[str], *, most: int = 40) -> None:
    """Label the channel rows ``0 .. n-1`` (every k-th name when there are many)."""
    step = max(1, int(np.ceil(len(names) / most)))
    ticks = np.arange(0, len(names), step)
    ax.set_yticks(ticks, [names[i] for i in ticks], fontsize=6 if len(ticks) > 12 else 7)


def plot_event_raster(
    path: str | Path,
    *,
    times_ms: np.ndarray,
    channels: np.ndarray,
    channel_names: Sequence[str],
    duration_ms: float,
    trial_label: str,
    title: str = "",
) -> Path:
    """Spike events of one trial, one row per channel.

    Args:
        times_ms: ``[event]`` event times (ms from trial start).
        channels: ``[event]`` channel index of each event (0-based).
        duration_ms: Length of the trial (x-axis range, ms).
    """
    n_ch = len(channel_names)
    fig, ax = plt.subplots(figsize=(9.0, min(1.2 + 0.16 * n_ch, 9.0)))
    rows = [times_ms[channels == c] for c in range(n_ch)]
    ax.eventplot(rows, lineoffsets=np.arange(n_ch), linelengths=0.8, linewidths=0.9,
                 colors="black")
    ax.set_xlim(0, duration_ms)
    ax.set_ylim(-0.6, n_ch - 0.4)
    ax.invert_yaxis()
    _channel_ticks(ax, channel_names)
    ax.set_xlabel("time (ms)", fontsize=8)
    ax.set_ylabel("input channel", fontsize=8)
    rate = times_ms.size / max(n_ch, 1) / (duration_ms / 1000.0) if duration_ms > 0 else 0.0
    ax.set_title(f"{trial_label}: {times_ms.size} events on {n_ch} channels "
                 f"(mean {rate:.1f} Hz per channel)", fontsize=9, loc="left")
    ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_input_traces(
    path: str | Path,
    *,
    time_ms: np.ndarray,
    values: np.ndarray,
    channel_names: Sequence[str],
    units: str,
    trial_label: str,
    title: str = "",
) -> Path:
    """Dense inputs of one trial, one small panel per channel.

    Args:
        values: ``[time, channel]`` in ``units``.
    """
    n_ch = len(channel_names)
    fig, axes = plt.subplots(n_ch, 1, figsize=(9.0, 0.75 * n_ch + 1.0), sharex=True,
                             squeeze=False)
    for j, name in enumerate(channel_names):
        ax = axes[j, 0]
        ax.plot(time_ms, values[:, j], color="tab:blue", lw=0.9)
        ax.set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
        ax.tick_params(labelsize=6)
        ax.grid(alpha=0.25)
    axes[0, 0].set_title(trial_label, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("time (ms)", fontsize=8)
    fig.supylabel(f"input ({units})" if units else "input", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, Path(path))
