"""The windowed layout of whole-brain recordings (Layout 2): what models train on.

Wang et al. cut each worm's recording into windows of 8 frames; traces and their derivatives
are each normalised to [0, 1] per worm, and the behaviour of a window is the one of its last
frame. :func:`windowed` does this for a recordings dataset of Layout 1 (the importers of
:mod:`neuroreduce.datasets.wholebrain_import`).
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.fields import Field
from neuroreduce.errors import ConfigError, DatasetError

NORMALISATIONS: tuple[str, ...] = ("minmax", "none")
DERIVATIVE_SOURCES: tuple[str, ...] = ("auto", "gradient", "file")


def minmax(x: np.ndarray) -> np.ndarray:
    """Scale every column of ``x [T, C]`` to [0, 1] (min -> 0, max -> 1; constant -> 0)."""
    lo, hi = x.min(axis=0), x.max(axis=0)
    span = hi - lo
    return np.where(span > 0, (x - lo) / np.where(span > 0, span, 1.0), 0.0)


def windowed(
    recordings: Dataset,
    *,
    window: int = 8,
    stride: int = 1,
    derivatives: bool = True,
    normalise: str = "minmax",
    derivative_source: str = "auto",
) -> Dataset:
    """Cut a recordings dataset (one trial per worm) into windows of ``window`` frames.

    Args:
        recordings: Layout 1: ``inputs [worm, frame, neuron]``, field ``behaviour`` (label),
            group field ``worm``, ``stimulus_params`` with ``n_frames`` and ``recorded``.
        window: Frames per window (the paper: 8).
        stride: Frames between window starts (1: every window).
        derivatives: Append the derivative of every trace (channels ``d_<name>``).
        normalise: ``"minmax"``: traces and derivatives each scaled to [0, 1] per worm and
            channel over the worm's real frames (the paper); ``"none"``: as imported.
        derivative_source: ``"gradient"`` (``np.gradient`` over frames, per frame),
            ``"file"`` (the recordings' ``derivatives`` field, e.g. Kato's ``tracesDif``) or
            ``"auto"`` (the file's if present, else the gradient).

    Returns:
        One trial per window fully inside a recording (padding never enters a window):
        ``inputs [window_i, window, N or 2N]`` with channels ``[n1..nN, d_n1..d_nN]`` (for
        graph models node ``j`` has channels ``j`` and ``N + j``); the ``behaviour`` label per
        frame with frames ``0..window-2`` set to -1 (only the last frame is scored); the
        ``worm`` group and other label/target fields cut alike; ``families`` = worm id;
        ``stimulus_params`` ``{"worm", "start_frame"}``; no split.

    Raises:
        ConfigError: for a bad window, stride, normalisation or derivative source.
        DatasetError: if the dataset is not Layout 1, ``derivative_source="file"`` without a
            ``derivatives`` field, or no recording is as long as one window.
    """
    for name, value in (("window", window), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if normalise not in NORMALISATIONS:
        raise ConfigError(f"normalise {normalise!r} unknown; use one of "
                          f"{', '.join(NORMALISATIONS)}")
    if derivative_source not in DERIVATIVE_SOURCES:
        raise ConfigError(f"derivative_source {derivative_source!r} unknown; use one of "
                          f"{', '.join(DERIVATIVE_SOURCES)}")
    if not recordings.has_field("behaviour"):
        raise DatasetError("recordings have no 'behaviour' label field; import them with a "
                           "whole-brain importer (flavell2023, kato2015, nwb_ophys, ...)")
    file_deriv = next((f for f in recordings.fields if f.name == "derivatives"), None)
    if derivatives and derivative_source == "file" and file_deriv is None:
        raise DatasetError("derivative_source='file' but the recordings hold no 'derivatives' "
                           "field; use 'gradient'")
    use_file = derivatives and file_deriv is not None and derivative_source != "gradient"
    n_ch = len(recordings.input_names)
    feats, starts_all, trial_of, frames = [], [], [], []
    for i, text in enumerate(recordings.stimulus_params):
        params = json.loads(text)
        n = int(params.get("n_frames", recordings.n_time))
        if n < window:
            continue
        x = recordings.inputs[i, :n].astype(np.float64)
        parts = [x]
        if derivatives:
            d = (np.asarray(file_deriv.values[i, :n], np.float64) if use_file
                 else np.gradient(x, axis=0) if n > 1 else np.zeros_like(x))
            parts.append(d)
        if normalise == "minmax":
            recorded = set(params.get("recorded", recordings.input_names))
            keep = np.array([c in recorded for c in recordings.input_names])
            parts = [np.where(keep, minmax(p), 0.0) for p in parts]
        f = np.concatenate(parts, axis=1)  # [n, C]
        starts = np.arange(0, n - window + 1, stride)
        feats.append(sliding_window_view(f, window, axis=0)[starts].transpose(0, 2, 1))
        starts_all.append(starts)
        trial_of.append(np.full(starts.size, i))
        frames.append(starts[:, None] + np.arange(window))
    if not feats:
        raise DatasetError(f"no recording has {window} frames; use a shorter window")
    inputs = np.concatenate(feats).astype(np.float32)
    trial = np.concatenate(trial_of)
    frame = np.concatenate(frames)  # [n_windows, window]
    start = np.concatenate(starts_all)
    fields = []
    for fld in recordings.fields:
        spec = fld.spec
        if spec.role == "group":
            fields.append(Field(spec, np.asarray(fld.values)[trial], fld.availability))
        elif spec.role in ("label", "target") and isinstance(fld.values, np.ndarray):
            values = np.asarray(fld.values)[trial[:, None], frame]  # [n_windows, window, ch]
            if spec.role == "label" and spec.name == "behaviour":
                values = values.copy()
                values[:, : window - 1] = -1 if spec.ignore_label is None else spec.ignore_label
            fields.append(Field(spec, values, fld.availability))
    names = recordings.input_names
    if derivatives:
        names = (*names, *(f"d_{n}" for n in names))
    worms = [json.loads(p).get("worm", recordings.families[i])
             for i, p in enumerate(recordings.stimulus_params)]
    params = tuple(json.dumps({"worm": worms[t], "start_frame": int(s)})
                   for t, s in zip(trial, start, strict=True))
    provenance = dict(recordings.provenance)
    provenance["windows"] = {
        "window": int(window), "stride": int(stride), "derivatives": bool(derivatives),
        "normalise": normalise,
        "derivative_source": ("file" if use_file else "gradient") if derivatives else None,
        "n_channels_per_neuron": 2 if derivatives else 1, "n_neurons": n_ch,
        "label": "behaviour of frames 0..window-2 set to -1 (the last frame is scored)",
    }
    return replace(
        recordings, inputs=inputs, outputs=np.zeros((inputs.shape[0], window, 0), np.float32),
        input_names=names,
        input_units="normalised [0, 1]" if normalise == "minmax" else recordings.input_units,
        families=tuple(str(recordings.families[t]) for t in trial), stimulus_params=params,
        split=None, provenance=provenance, fields=tuple(fields),
    )
