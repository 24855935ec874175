"""Is a new input like the training inputs? Amplitude range and stimulus-feature distance.

A surrogate is trusted only near its training data. :class:`InputEnvelope` summarises the
training inputs of a run in two ways:

* **range** — the minimum and maximum of every input channel (input units, e.g. nA). A new
  trial whose samples go beyond them by more than ``tolerance`` of the channel's training range
  is *out of range*; the excess is reported in input units and as a fraction of the range.
* **features** — per trial and channel: mean, standard deviation, peak |x|, the fraction of the
  signal's power below 10 % of the Nyquist frequency (slow vs fast content), the fraction of
  samples near zero (silences), and the correlation between each pair of channels (cross-input
  structure). Features are standardised by the training trials' median and inter-quartile range;
  a new trial's *distance* is its Euclidean distance to the nearest training trial, divided by
  the 95th percentile of the training trials' leave-one-out nearest-neighbour distances. A
  distance above 1 means the trial is farther from every training trial than 95 % of the
  training trials are from each other: *unlike the training set*.

:func:`check_inputs` scores new inputs; :func:`warn_outside` turns a report into one
:class:`OutOfRangeWarning` that says which trials, which channels and how far.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuroreduce.errors import ConfigError

#: Envelope file in a run folder (written by ``train``).
ENVELOPE_FILE = "input_envelope.json"


class OutOfRangeWarning(UserWarning):
    """Inputs beyond the training range or unlike the training stimuli."""


def _features(x: np.ndarray) -> np.ndarray:
    """Stimulus features ``[trial, feature]`` of inputs ``[trial, time, input]``."""
    x = np.asarray(x, dtype=np.float64)
    n_trial, n_time, n_in = x.shape
    peak = np.abs(x).max(axis=1)
    scale = np.maximum(peak, 1e-12)
    spectrum = np.abs(np.fft.rfft(x - x.mean(axis=1, keepdims=True), axis=1)) ** 2
    cut = max(1, spectrum.shape[1] // 10)
    total = spectrum.sum(axis=1)
    slow = np.where(total > 0, spectrum[:, :cut].sum(axis=1) / np.maximum(total, 1e-300), 1.0)
    silent = (np.abs(x) <= 0.05 * scale[:, None, :]).mean(axis=1)
    parts = [x.mean(axis=1), x.std(axis=1), peak, slow, silent]
    if n_in > 1:
        xc = x - x.mean(axis=1, keepdims=True)
        sd = np.sqrt((xc**2).sum(axis=1))
        i, j = np.triu_indices(n_in, 1)
        num = (xc[:, :, i] * xc[:, :, j]).sum(axis=1)
        den = sd[:, i] * sd[:, j]
        parts.append(np.where(den > 0, num / np.maximum(den, 1e-300), 0.0))
    return np.concatenate(parts, axis=1)


@dataclass(frozen=True)
class InputEnvelope:
    """The training inputs of a run, summarised (see the module docstring).

    Attributes:
        input_names: Input channels.
        minimum: Training minimum per channel (input units).
        maximum: Training maximum per channel (input units).
        feature_center: Median of each stimulus feature over training trials.
        feature_scale: Inter-quartile range of each feature (floored, > 0).
        train_features: Standardised features of every training trial ``[trial, feature]``.
        distance_scale: 95th percentile of the training trials' leave-one-out nearest-neighbour
            distance (standardised units, > 0).
    """

    input_names: tuple[str, ...]
    minimum: tuple[float, ...]
    maximum: tuple[float, ...]
    feature_center: tuple[float, ...]
    feature_scale: tuple[float, ...]
    train_features: tuple[tuple[float, ...], ...]
    distance_scale: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_names": list(self.input_names), "minimum": list(self.minimum),
            "maximum": list(self.maximum), "feature_center": list(self.feature_center),
            "feature_scale": list(self.feature_scale),
            "train_features": [list(r) for r in self.train_features],
            "distance_scale": self.distance_scale,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputEnvelope:
        try:
            return cls(
                tuple(data["input_names"]), tuple(map(float, data["minimum"])),
                tuple(map(float, data["maximum"])), tuple(map(float, data["feature_center"])),
                tuple(map(float, data["feature_scale"])),
                tuple(tuple(map(float, r)) for r in data["train_features"]),
                float(data["distance_scale"]),
            )
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"{ENVELOPE_FILE} is malformed; retrain the run to rebuild it"
                              ) from None


def envelope_of(inputs: np.ndarray, input_names: Sequence[str]) -> InputEnvelope:
    """The envelope of training inputs ``[trial, time, input]`` (input units).

    Raises:
        ConfigError: for fewer than 2 trials, a shape that does not fit ``input_names``, or
            non-finite values.
    """
    x = np.asarray(inputs, dtype=np.float64)
    if x.ndim != 3 or x.shape[2] != len(input_names):
        raise ConfigError(f"inputs must be [trial, time, {len(input_names)}]; got {x.shape}")
    if x.shape[0] < 2:
        raise ConfigError("an input envelope needs at least 2 training trials")
    if not np.isfinite(x).all():
        raise ConfigError("training inputs contain NaN or inf")
    feats = _features(x)
    center = np.median(feats, axis=0)
    q75, q25 = np.percentile(feats, [75, 25], axis=0)
    scale = np.maximum(q75 - q25, 1e-3 * np.maximum(np.abs(center), 1.0))
    z = (feats - center) / scale
    d = np.sqrt(((z[:, None, :] - z[None, :, :]) ** 2).sum(axis=2))
    np.fill_diagonal(d, np.inf)
    nn = d.min(axis=1)
    dist_scale = float(max(np.percentile(nn, 95), 1e-6))
    return InputEnvelope(
        tuple(input_names), tuple(x.min(axis=(0, 1)).tolist()),
        tuple(x.max(axis=(0, 1)).tolist()), tuple(center.tolist()), tuple(scale.tolist()),
        tuple(tuple(r) for r in z.tolist()), dist_scale,
    )


@dataclass(frozen=True)
class RangeReport:
    """How far each new trial lies from the training inputs.

    Attributes:
        excess: ``[trial, input]`` amount beyond the training range (input units; 0 inside).
        excess_fraction: ``excess`` / the channel's training range.
        distance: ``[trial]`` feature distance (1 = the 95th percentile of training trials).
        out_of_range: ``[trial]`` True where some channel exceeds the range by > tolerance.
        unlike: ``[trial]`` True where ``distance`` > the distance threshold.
    """

    excess: np.ndarray
    excess_fraction: np.ndarray
    distance: np.ndarray
    out_of_range: np.ndarray
    unlike: np.ndarray

    @property
    def flagged(self) -> np.ndarray:
        """``[trial]`` out of range or unlike the training set."""
        return self.out_of_range | self.unlike


def check_inputs(envelope: InputEnvelope, inputs: np.ndarray, *, tolerance: float = 0.05,
                 distance_threshold: float = 1.5) -> RangeReport:
    """Score new inputs ``[trial, time, input]`` against ``envelope``.

    Args:
        tolerance: Excess (as a fraction of the training range) that still counts as inside.
        distance_threshold: Feature distance above which a trial is unlike the training set
            (1.0 = as far as the 5 % most isolated training trials).
    """
    x = np.asarray(inputs, dtype=np.float64)
    n_in = len(envelope.input_names)
    if x.ndim != 3 or x.shape[2] != n_in:
        raise ConfigError(f"inputs must be [trial, time, {n_in}]; got {x.shape}")
    lo, hi = np.asarray(envelope.minimum), np.asarray(envelope.maximum)
    span = np.maximum(hi - lo, 1e-12)
    excess = np.maximum(np.maximum(x.max(axis=1) - hi, lo - x.min(axis=1)), 0.0)
    frac = excess / span
    z = (_features(x) - np.asarray(envelope.feature_center)) / np.asarray(envelope.feature_scale)
    train = np.asarray(envelope.train_features)
    d = np.sqrt(((z[:, None, :] - train[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
    distance = d / envelope.distance_scale
    return RangeReport(excess, frac, distance, (frac > tolerance).any(axis=1),
                       distance > distance_threshold)


def describe(report: RangeReport, envelope: InputEnvelope, *, limit: int = 3) -> str | None:
    """One line saying which trials are outside and how far, or ``None`` if none is."""
    bad = np.flatnonzero(report.flagged)
    if bad.size == 0:
        return None
    parts = []
    for t in bad[:limit]:
        if report.out_of_range[t]:
            j = int(np.argmax(report.excess_fraction[t]))
            parts.append(
                f"trial {t}: {envelope.input_names[j]} goes {report.excess[t, j]:.3g} beyond the "
                f"training range [{envelope.minimum[j]:.3g}, {envelope.maximum[j]:.3g}] "
                f"({100 * report.excess_fraction[t, j]:.0f} % of that range)")
        else:
            parts.append(f"trial {t}: stimulus unlike the training set (feature distance "
                         f"{report.distance[t]:.2f}x the training spread)")
    more = f"; and {bad.size - limit} more" if bad.size > limit else ""
    return (f"{bad.size} of {report.distance.size} input trials lie outside what the surrogate "
            f"was trained on ({'; '.join(parts)}{more}); predictions there are extrapolations")


def warn_outside(report: RangeReport, envelope: InputEnvelope) -> None:
    """Issue one :class:`OutOfRangeWarning` if any trial is flagged."""
    text = describe(report, envelope)
    if text is not None:
        warnings.warn(text, OutOfRangeWarning, stacklevel=3)


def write_envelope(run_dir: Any, dataset: Any, layout: Any) -> None:
    """Write the envelope of ``dataset``'s training inputs into ``run_dir`` (plain
    current-to-voltage runs of an in-memory dataset only; other runs have no envelope)."""
    from pathlib import Path

    from neuroreduce._io import write_json_atomic
    from neuroreduce.datasets.dataset import Dataset

    if not isinstance(dataset, Dataset) or not layout.is_plain or dataset.inputs.shape[2] == 0:
        return
    train = dataset.indices("train")
    if train.size < 2:
        return
    envelope = envelope_of(dataset.inputs[train], dataset.input_names)
    write_json_atomic(Path(run_dir) / ENVELOPE_FILE, envelope.to_dict())


def read_envelope(run_dir: Any) -> InputEnvelope | None:
    """The envelope saved in ``run_dir``, or ``None`` if the run has none."""
    import json
    from pathlib import Path

    path = Path(run_dir) / ENVELOPE_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        raise ConfigError(f"{path} is unreadable; retrain the run to rebuild it") from None
    return InputEnvelope.from_dict(data)
