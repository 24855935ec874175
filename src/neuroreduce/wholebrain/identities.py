"""Neuron identities of whole-brain recordings: NeuroPAL spreadsheets, the ROI-to-trace link and
a behavioural sanity check of the link.

The Flavell lab (Dag et al. 2023) publishes, per worm, an xlsx sheet naming the NeuroPAL ROIs
(columns ``Neuron Class``, ``ROI ID``, ``Confidence`` 1-5) and, in the worm's HDF5 file,
``neuropal_registration/roi_match``. The link from an xlsx ROI ID to a trace column is not
documented; it was inferred as ``trace column = roi_match[ROI_ID - 1] - 1`` (1-based indices as
written by the lab's Julia code; ``roi_match == 0``: the ROI has no trace). :func:`link_rois`
applies it and :func:`worm_identity_check` / :func:`identity_check` test it on behaviour: the
reversal command interneurons AVA and AIB must correlate positively with the reversal label,
the forward-state neurons RIB and AVB negatively (Kato et al. 2015; Gordus et al. 2015).
"""

from __future__ import annotations

import difflib
import json
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neuroreduce.errors import DatasetError

#: Neuron classes that are active in reversals / in forward locomotion (the check's defaults).
REVERSAL_CLASSES: tuple[str, ...] = ("AVA", "AIB")
FORWARD_CLASSES: tuple[str, ...] = ("RIB", "AVB")


@dataclass(frozen=True)
class NeuronLabel:
    """One named ROI of a NeuroPAL sheet.

    Attributes:
        name: Neuron name as written (e.g. ``"AVAL"``; ``"SMB??"`` marks an unsure name).
        roi_id: 1-based NeuroPAL ROI ID.
        confidence: The annotator's confidence (1 = low ... 5 = high); NaN if blank.
    """

    name: str
    roi_id: int
    confidence: float


def read_neuropal_labels(path: str | Path) -> list[NeuronLabel]:
    """Read the named ROIs of a Flavell-lab ``<date> Neuron ID.xlsx`` file (openpyxl).

    Uses the last sheet whose name starts with ``labels`` (later sheets are later audits);
    columns are found by header name (``Neuron Class``, ``ROI ID``, ``Confidence``). Rows without
    a name or ROI ID are skipped.

    Raises:
        DatasetError: for an unreadable workbook, no ``labels`` sheet, a missing column or a
            non-integer ROI ID.
    """
    import openpyxl

    path = Path(path)
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DatasetError(f"{path}: not a readable xlsx workbook ({first})") from None
    try:
        sheets = [s for s in wb.sheetnames if s.strip().lower().startswith("labels")]
        if not sheets:
            raise DatasetError(f"{path}: no sheet named 'labels...'; sheets: "
                               f"{', '.join(wb.sheetnames)}")
        rows = list(wb[sheets[-1]].iter_rows(values_only=True))
    finally:
        wb.close()
    if not rows:
        raise DatasetError(f"{path}: sheet {sheets[-1]!r} is empty")
    header = [str(h).strip().lower() if h is not None else "" for h in rows[0]]
    cols = {}
    for key in ("neuron class", "roi id", "confidence"):
        if key not in header:
            raise DatasetError(f"{path}: sheet {sheets[-1]!r} has no column {key.title()!r}; "
                               f"header: {', '.join(h for h in header if h)}")
        cols[key] = header.index(key)
    labels = []
    for k, row in enumerate(rows[1:], start=2):
        name, roi, conf = (row[cols[c]] if cols[c] < len(row) else None for c in cols)
        if name is None or roi is None or not str(name).strip():
            continue
        try:
            roi_f = float(roi)
        except (TypeError, ValueError):
            raise DatasetError(f"{path}: row {k}: ROI ID {roi!r} is not a number") from None
        if roi_f != round(roi_f) or roi_f < 1:
            raise DatasetError(f"{path}: row {k}: ROI ID {roi!r} is not a positive integer")
        try:
            conf_f = float(conf) if conf is not None else float("nan")
        except (TypeError, ValueError):
            conf_f = float("nan")
        labels.append(NeuronLabel(str(name).strip(), int(roi_f), conf_f))
    return labels


@dataclass(frozen=True)
class RoiLink:
    """Named trace columns of one worm after the ROI link and the confidence rule.

    Attributes:
        columns: Neuron name -> 0-based trace column, for names used (confident, unique, sure).
        low_confidence: Names below the confidence threshold (kept apart, not used).
        unsure: Names containing ``?`` or given to more than one ROI (not used).
        no_trace: Names whose ROI has no trace (``roi_match == 0`` or outside the table).
    """

    columns: dict[str, int]
    low_confidence: tuple[str, ...] = ()
    unsure: tuple[str, ...] = ()
    no_trace: tuple[str, ...] = ()


def link_rois(
    labels: Sequence[NeuronLabel],
    roi_match: np.ndarray,
    n_traces: int,
    *,
    min_confidence: float = 3.0,
    roi_offset: int = 0,
) -> RoiLink:
    """Map named ROIs to trace columns: ``column = roi_match[roi_id - 1 + roi_offset] - 1``.

    Args:
        labels: Named ROIs (:func:`read_neuropal_labels`).
        roi_match: ``neuropal_registration/roi_match`` of the worm (1-based trace index per
            NeuroPAL ROI, 0 = no trace).
        n_traces: Number of trace columns (N of ``gcamp/trace_array``).
        min_confidence: Names with a confidence below this (or blank) are kept apart.
        roi_offset: Shift of the ROI index; 0 is the inferred link (other values are the
            deliberately wrong controls of the tests).

    Returns:
        The link; a name is used only once (two ROIs with one name are both left out).
    """
    roi_match = np.asarray(roi_match).astype(np.int64).ravel()
    counts = Counter(lab.name for lab in labels)
    columns: dict[str, int] = {}
    low, unsure, no_trace = [], [], []
    for lab in labels:
        if "?" in lab.name or counts[lab.name] > 1:
            unsure.append(lab.name)
            continue
        i = lab.roi_id - 1 + roi_offset
        col = int(roi_match[i]) - 1 if 0 <= i < roi_match.size else -1
        if not 0 <= col < n_traces:
            no_trace.append(lab.name)
        elif not lab.confidence >= min_confidence:  # NaN (blank) is low too
            low.append(lab.name)
        else:
            columns[lab.name] = col
    return RoiLink(columns, tuple(sorted(low)), tuple(sorted(set(unsure))), tuple(sorted(no_trace)))


def neuron_class(name: str) -> str:
    """The class of a neuron name: ``AVAL`` -> ``AVA``, ``SMDVR`` -> ``SMDV``, ``RID`` -> ``RID``.

    Only a final L/R is stripped, and only from names of four or more letters (``AVL`` is a
    class of its own).
    """
    return name[:-1] if len(name) >= 4 and name[-1] in "LR" else name


@dataclass(frozen=True)
class WormIdentityCheck:
    """Correlation of named traces with the reversal label in one worm.

    Attributes:
        worm: Worm id.
        correlations: Neuron name -> Pearson r of its trace with the 0/1 reversal label (frames
            of known behaviour only), for the neurons of the checked classes present.
        positive: Classes expected to correlate positively (reversal), e.g. AVA, AIB.
        negative: Classes expected to correlate negatively (forward), e.g. RIB, AVB.
        missing: Checked classes with no neuron in this worm (not counted against it).
    """

    worm: str
    correlations: dict[str, float]
    positive: tuple[str, ...] = REVERSAL_CLASSES
    negative: tuple[str, ...] = FORWARD_CLASSES
    missing: tuple[str, ...] = field(default=())

    def _mean(self, classes: tuple[str, ...]) -> float:
        r = [v for k, v in self.correlations.items() if neuron_class(k) in classes]
        return float(np.mean(r)) if r else float("nan")

    @property
    def positive_mean(self) -> float:
        """Mean r of the present neurons of the positive classes (NaN if none)."""
        return self._mean(self.positive)

    @property
    def negative_mean(self) -> float:
        """Mean r of the present neurons of the negative classes (NaN if none)."""
        return self._mean(self.negative)

    @property
    def holds(self) -> bool:
        """Every present positive-class neuron has r > 0 and every negative-class one r < 0
        (and at least one positive-class neuron is present)."""
        pos = [v for k, v in self.correlations.items() if neuron_class(k) in self.positive]
        neg = [v for k, v in self.correlations.items() if neuron_class(k) in self.negative]
        return bool(pos) and all(v > 0 for v in pos) and all(v < 0 for v in neg)

    def summary(self) -> str:
        """One line: worm, holds, correlations."""
        rs = ", ".join(f"{k} {v:+.2f}" for k, v in sorted(self.correlations.items()))
        return f"{self.worm}: {'holds' if self.holds else 'FAILS'} ({rs or 'no checked neurons'})"


def worm_identity_check(
    traces: np.ndarray,
    names: Sequence[str],
    reversal: np.ndarray,
    *,
    worm: str = "",
    positive: Sequence[str] = REVERSAL_CLASSES,
    negative: Sequence[str] = FORWARD_CLASSES,
) -> WormIdentityCheck:
    """Correlate the traces of the checked classes with the reversal label in one worm.

    Args:
        traces: ``[T, N]`` traces of the named neurons.
        names: ``N`` neuron names.
        reversal: ``[T]`` label: 1 reversal, 0 forward, negative = unknown (left out).
        worm: Worm id, for the record.
        positive: Classes expected to correlate positively.
        negative: Classes expected to correlate negatively.
    """
    traces = np.asarray(traces, dtype=np.float64)
    reversal = np.asarray(reversal).ravel()
    known = reversal >= 0
    y = (reversal[known] > 0).astype(np.float64)
    wanted = set(positive) | set(negative)
    correlations = {}
    for j, name in enumerate(names):
        if neuron_class(name) in wanted:
            x = traces[known, j]
            ok = bool(np.std(x) > 0 and np.std(y) > 0)
            correlations[name] = float(np.corrcoef(x, y)[0, 1]) if ok else float("nan")
    present = {neuron_class(n) for n in correlations}
    return WormIdentityCheck(worm, correlations, tuple(positive), tuple(negative),
                             tuple(c for c in (*positive, *negative) if c not in present))


def identity_check(
    recordings,  # Dataset of Layout 1
    *,
    positive: Sequence[str] = REVERSAL_CLASSES,
    negative: Sequence[str] = FORWARD_CLASSES,
    reversal_classes: Sequence[str] = ("reversal", "REV", "REV1", "REV2", "REVSUS"),
) -> dict[str, WormIdentityCheck]:
    """:func:`worm_identity_check` for every worm of a recordings dataset (Layout 1).

    Uses each worm's recorded neurons (``stimulus_params["recorded"]``) and real frames
    (``n_frames``); a frame is "reversal" if its ``behaviour`` class is one of
    ``reversal_classes``. Import with ``neurons="all"`` so that RIB/AVB (not shared by every
    worm) are present.

    Returns:
        Worm id -> check.
    """
    beh = recordings.field("behaviour")
    classes = beh.spec.classes
    rev_codes = [i for i, c in enumerate(classes) if c in set(reversal_classes)]
    if not rev_codes:
        raise DatasetError(f"behaviour classes {', '.join(classes)} name no reversal class "
                           f"({', '.join(reversal_classes)})")
    labels = np.asarray(beh.values)[:, :, 0]
    out = {}
    for i, params in enumerate(recordings.stimulus_params):
        p = json.loads(params)
        n = int(p.get("n_frames", recordings.n_time))
        recorded = set(p.get("recorded", recordings.input_names))
        cols = [j for j, c in enumerate(recordings.input_names) if c in recorded]
        lab = labels[i, :n].astype(np.int64)
        y = np.where(lab < 0, -1, np.isin(lab, rev_codes).astype(np.int64))
        worm = str(p.get("worm", recordings.families[i]))
        out[worm] = worm_identity_check(
            recordings.inputs[i, :n][:, cols], [recordings.input_names[j] for j in cols], y,
            worm=worm, positive=positive, negative=negative)
    return out



def shared_neurons(name_lists: Sequence[Sequence[str]]) -> tuple[str, ...]:
    """The names every worm has (sorted): the alignment of worms by neuron name.

    Args:
        name_lists: One sequence of neuron names per worm.
    """
    if not name_lists:
        return ()
    common = set(name_lists[0]).intersection(*map(set, name_lists[1:]))
    return tuple(sorted(common))


def select_neurons(
    name_lists: Sequence[Sequence[str]], neurons: str | Sequence[str]
) -> tuple[str, ...]:
    """The channel names of a recordings dataset: ``"shared"`` (every worm has them),
    ``"all"`` (the union, sorted) or an explicit list (kept in its order).

    Raises:
        DatasetError: if no name is shared, or a requested name no worm has (naming the
            closest names).
    """
    if isinstance(neurons, str) and neurons == "shared":
        names = shared_neurons(name_lists)
        if not names:
            sizes = ", ".join(str(len(n)) for n in name_lists)
            raise DatasetError(f"the {len(name_lists)} worms share no neuron name (named per "
                               f"worm: {sizes}); use neurons='all' or fewer worms")
        return names
    union = sorted(set().union(*map(set, name_lists)))
    if isinstance(neurons, str) and neurons == "all":
        if not union:
            raise DatasetError("no worm has a named neuron")
        return tuple(union)
    wanted = tuple(neurons)
    for name in wanted:
        if name not in union:
            close = difflib.get_close_matches(name, union, n=4, cutoff=0.5)
            hint = f"closest: {', '.join(close)}" if close else f"{len(union)} names known"
            raise DatasetError(f"no worm has a neuron named {name!r} ({hint})")
    if len(set(wanted)) != len(wanted):
        raise DatasetError(f"neuron list names a neuron twice: {', '.join(wanted)}")
    return wanted
