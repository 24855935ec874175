"""Which figures a typed run's report draws for each field, chosen by the field's kind.

Two registries, one recipe per kind:

* :data:`TARGET_FIGURES` — predicted fields: ``continuous`` (true vs predicted traces with the
  seed spread, missing values as gaps), ``binary`` (ROC curves per seed with their AUC, and a
  raster of true spikes over the predicted spike probability), ``categorical`` (true vs
  predicted label sequences and the confusion matrix);
* :data:`INPUT_FIGURES` — input fields of one trial: ``events`` and ``binary`` as a raster,
  ``continuous`` as traces.

A recipe gets a view (the arrays it needs, already selected) and the figure folder, writes its
PNGs and returns one :class:`FigureRef` per PNG. A new kind is one ``register_*`` call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_curve

from neuroreduce.errors import ConfigError, unknown_name_error
from neuroreduce.evaluation.categorical import confusion_matrix
from neuroreduce.evaluation.context import MetricContext
from neuroreduce.evaluation.registry import compute_metric
from neuroreduce.reporting import field_plots, input_plots
from neuroreduce.training.task import Head

#: At most this many channels of one field are drawn as traces or raster rows.
MAX_TRACE_CHANNELS, MAX_RASTER_CHANNELS, MAX_ROC_CHANNELS, MAX_LABEL_CHANNELS = 6, 20, 4, 2


@dataclass(frozen=True)
class FigureRef:
    """A written figure: file name (in the figure folder) and its caption."""

    name: str
    caption: str


@dataclass(frozen=True, eq=False)
class FieldView:
    """One predicted field on the trials of one split, ready to draw.

    Attributes:
        head: The field's head (name, kind, channels, classes, ignored label).
        units: Physical unit of a continuous field.
        classes: Class names of a label field.
        time_ms: ``[time]`` sample times (ms).
        truth: ``[trial, time, channel]`` true values (float; int labels for categorical).
        mask: bool, shaped like ``truth``: False where a value is missing or unrecorded.
        pred: ``[member, trial, time, channel(, class)]``: physical values or probabilities.
        trial_labels: One title per trial.
        seed_labels: One legend label per member.
        n_shown: How many of the (first) trials to draw as sequences.
        split: Name of the trials' split (ROC and confusion use all of them).
        label: Model label for titles (e.g. ``"GRU-16"``).
    """

    head: Head
    units: str
    classes: tuple[str, ...]
    time_ms: np.ndarray
    truth: np.ndarray
    mask: np.ndarray
    pred: np.ndarray
    trial_labels: tuple[str, ...]
    seed_labels: tuple[str, ...]
    n_shown: int
    split: str
    label: str

    @property
    def field(self) -> str:
        return self.head.field


@dataclass(frozen=True, eq=False)
class InputView:
    """One input field of one trial.

    Attributes:
        field: Field name; kind: its kind; channels: channel names; units: its unit.
        time_ms: ``[time]`` sample times (ms).
        dense: ``[time, channel]`` values (continuous/binary inputs), else ``None``.
        events: ``(times_ms [event], channel [event])`` of an events field, else ``None``.
        trial_label: Title of the trial.
        label: Model label for titles.
    """

    field: str
    kind: str
    channels: tuple[str, ...]
    units: str
    time_ms: np.ndarray
    dense: np.ndarray | None
    events: tuple[np.ndarray, np.ndarray] | None
    trial_label: str
    label: str


TargetRecipe = Callable[[FieldView, Path], list[FigureRef]]
InputRecipe = Callable[[InputView, Path], list[FigureRef]]
TARGET_FIGURES: dict[str, TargetRecipe] = {}
INPUT_FIGURES: dict[str, InputRecipe] = {}


def register_target_figure(kind: str, recipe: TargetRecipe) -> TargetRecipe:
    """Draw predicted fields of ``kind`` with ``recipe`` (a kind has one recipe)."""
    if kind in TARGET_FIGURES:
        raise ConfigError(f"a figure recipe for {kind} fields is already registered")
    TARGET_FIGURES[kind] = recipe
    return recipe


def register_input_figure(kind: str, recipe: InputRecipe) -> InputRecipe:
    """Draw input fields of ``kind`` with ``recipe`` (a kind has one recipe)."""
    if kind in INPUT_FIGURES:
        raise ConfigError(f"an input figure recipe for {kind} fields is already registered")
    INPUT_FIGURES[kind] = recipe
    return recipe


def draw_target(view: FieldView, fig_dir: Path) -> list[FigureRef]:
    """The figures of one predicted field (recipe chosen by its kind)."""
    if view.head.kind not in TARGET_FIGURES:
        raise unknown_name_error("field kind with figures", view.head.kind, list(TARGET_FIGURES))
    return TARGET_FIGURES[view.head.kind](view, fig_dir)


def draw_input(view: InputView, fig_dir: Path) -> list[FigureRef]:
    """The figures of one input field (recipe chosen by its kind)."""
    if view.kind not in INPUT_FIGURES:
        raise unknown_name_error("input kind with figures", view.kind, list(INPUT_FIGURES))
    return INPUT_FIGURES[view.kind](view, fig_dir)


def _first(n: int, total: int, what: str) -> str:
    return f" First {n} of {total} {what} shown." if total > n else ""


# ------------------------------------------------------------------------------ targets
def _continuous(view: FieldView, fig_dir: Path) -> list[FigureRef]:
    n, ch = view.n_shown, min(len(view.head.channels), MAX_TRACE_CHANNELS)
    truth = np.where(view.mask, view.truth, np.nan)[:n, :, :ch]
    name = f"{view.field}_traces.png"
    field_plots.plot_field_traces(
        fig_dir / name, time_ms=view.time_ms, truth=truth, pred=view.pred[:, :n, :, :ch],
        channel_names=view.head.channels[:ch], trial_labels=view.trial_labels[:n],
        units=view.units, title=f"{view.label}: {view.field}, true vs predicted ({view.split})",
    )
    return [FigureRef(name, "True values (black; gaps and red ticks = missing) vs surrogate "
                      "seed mean (dashed) and seed range (band)."
                      + _first(ch, len(view.head.channels), "channels"))]


def roc_curves(view: FieldView) -> list[list[tuple[np.ndarray, np.ndarray, float]]]:
    """``[channel][member] -> (fpr, tpr, auc)`` over every trial of the view (AUC as the
    ``roc_auc`` metric of ``evaluate``; empty arrays where a channel lacks a class)."""
    y = np.where(view.mask, np.nan_to_num(view.truth), 0.0)
    ctx = MetricContext(dt_ms=float(view.time_ms[1] - view.time_ms[0]) if view.time_ms.size > 1
                        else 1.0, mask=view.mask)
    out: list[list[tuple[np.ndarray, np.ndarray, float]]] = [
        [] for _ in view.head.channels[:MAX_ROC_CHANNELS]
    ]
    for p in view.pred:
        auc = np.atleast_1d(compute_metric("roc_auc", y, p, ctx))
        for c in range(len(out)):
            t, s = y[..., c][view.mask[..., c]], p[..., c][view.mask[..., c]]
            if 0 < t.sum() < t.size:
                fpr, tpr, _ = roc_curve(t.astype(np.int64), s)
            else:
                fpr = tpr = np.zeros(0)
            out[c].append((fpr, tpr, float(auc[c])))
    return out


def _binary(view: FieldView, fig_dir: Path) -> list[FigureRef]:
    n_ch = len(view.head.channels)
    roc_name, raster_name = f"{view.field}_roc.png", f"{view.field}_raster.png"
    field_plots.plot_roc_curves(
        fig_dir / roc_name, curves=roc_curves(view),
        channel_names=view.head.channels[:MAX_ROC_CHANNELS], seed_labels=view.seed_labels,
        split=view.split, title=f"{view.label}: {view.field}, ROC per seed",
    )
    n, ch = view.n_shown, min(n_ch, MAX_RASTER_CHANNELS)
    field_plots.plot_spike_raster(
        fig_dir / raster_name, time_ms=view.time_ms,
        truth=np.where(view.mask, view.truth, np.nan)[:n, :, :ch],
        prob=view.pred[:, :n, :, :ch], channel_names=view.head.channels[:ch],
        trial_labels=view.trial_labels[:n],
        title=f"{view.label}: {view.field}, true events vs predicted probability",
    )
    return [
        FigureRef(roc_name, f"ROC of every unmasked sample of the {view.split} split, one curve "
                  "per seed; AUC in the legend (as in the results table)."
                  + _first(MAX_ROC_CHANNELS, n_ch, "channels")),
        FigureRef(raster_name, "True events (black ticks) over the predicted probability of an "
                  "event per sample (filled: seed mean; band: seed range); grey = no true value."
                  + _first(ch, n_ch, "channels")),
    ]


def _categorical(view: FieldView, fig_dir: Path) -> list[FigureRef]:
    head = view.head
    ignore = -1 if head.ignore_label is None else head.ignore_label
    mean = view.pred.mean(axis=0)  # [trial, time, channel, class]
    truth = np.where(view.mask, view.truth, ignore)
    ch = min(len(head.channels), MAX_LABEL_CHANNELS)
    rows = [(i, c) for i in range(view.n_shown) for c in range(ch)]
    seq_name, cm_name = f"{view.field}_sequences.png", f"{view.field}_confusion.png"
    field_plots.plot_label_sequences(
        fig_dir / seq_name, time_ms=view.time_ms,
        truth=np.stack([truth[i, :, c] for i, c in rows]),
        prob=np.stack([mean[i, :, c] for i, c in rows]), classes=view.classes,
        row_labels=[view.trial_labels[i] + (f", {head.channels[c]}" if ch > 1 else "")
                    for i, c in rows],
        ignore_label=ignore, title=f"{view.label}: {view.field}, true vs predicted labels",
    )
    counts = sum(
        confusion_matrix(view.truth[..., c], mean[..., c, :], n_classes=head.n_classes,
                         ignore_label=head.ignore_label, mask=view.mask[..., c])
        for c in range(len(head.channels))
    )
    field_plots.plot_confusion_matrix(
        fig_dir / cm_name, counts=np.asarray(counts), classes=view.classes,
        title=f"{view.label}: {view.field}, {view.split} split",
    )
    return [
        FigureRef(seq_name, "Per trial: true labels over predicted labels (most probable class "
                  "of the seed-mean probabilities; grey = unknown, ignored), then each class's "
                  "probability." + _first(ch, len(head.channels), "channels")),
        FigureRef(cm_name, f"Confusion matrix of every scored step of the {view.split} split "
                  "(seed-mean probabilities, all channels); colour = fraction of the true class."),
    ]


# ------------------------------------------------------------------------------- inputs
def _events(view: InputView, fig_dir: Path) -> list[FigureRef]:
    if view.events is not None:
        times, chans = view.events
    else:  # binary input: a 1 at sample k is an event at time k
        k, chans = np.nonzero(np.asarray(view.dense) > 0.5)
        times = view.time_ms[k]
    name = f"input_{view.field}_raster.png"
    dt = float(view.time_ms[1] - view.time_ms[0]) if view.time_ms.size > 1 else 1.0
    input_plots.plot_event_raster(
        fig_dir / name, times_ms=np.asarray(times), channels=np.asarray(chans),
        channel_names=view.channels, duration_ms=float(view.time_ms[-1]) + dt,
        trial_label=view.trial_label, title=f"{view.label}: input {view.field} ({view.kind})",
    )
    return [FigureRef(name, f"Input {view.field}: one row per channel, one tick per event.")]


def _input_traces(view: InputView, fig_dir: Path) -> list[FigureRef]:
    ch = min(len(view.channels), MAX_TRACE_CHANNELS * 2)
    name = f"input_{view.field}_traces.png"
    input_plots.plot_input_traces(
        fig_dir / name, time_ms=view.time_ms, values=np.asarray(view.dense)[:, :ch],
        channel_names=view.channels[:ch], units=view.units, trial_label=view.trial_label,
        title=f"{view.label}: input {view.field}",
    )
    return [FigureRef(name, f"Input {view.field} ({view.units or 'no unit'})."
                      + _first(ch, len(view.channels), "channels"))]


for _kind, _recipe in (("continuous", _continuous), ("binary", _binary),
                       ("categorical", _categorical)):
    register_target_figure(_kind, _recipe)
for _kind, _input in (("events", _events), ("binary", _events), ("continuous", _input_traces)):
    register_input_figure(_kind, _input)
