"""Whole-brain calcium imaging with behaviour: importers of four layouts into one recordings
dataset (Layout 1 of the whole-brain issue).

Every importer returns one trial per worm recording:

* ``inputs [worm, frame, neuron]``: one channel per neuron name (option ``neurons``:
  ``"shared"``, the names every imported worm has; ``"all"``, the union; or a list), in the
  trace's units; a neuron a worm lacks and the frames after a shorter recording's end are 0;
* field ``behaviour`` (label, categorical, int16 ``[worm, frame, 1]``, -1 = unknown or padded);
* field ``worm`` (group, int32 ``[worm]``); ``families`` = worm ids;
* ``stimulus_params[i]``: ``{"worm", "n_frames", "frame_s", "recorded": [names]}``;
* ``dt_ms``: the median frame interval of the worms (ms); each worm's own is in ``frame_s``;
* optional continuous targets (e.g. ``velocity``, NaN where padded) and, where a file holds its
  own derivatives (Kato), an input field ``derivatives`` (channels ``d_<name>``).

Importers: ``flavell2023`` (Dag et al. 2023 HDF5 + NeuroPAL xlsx), ``kato2015`` (Zimmer lab
MATLAB files, Kato et al. 2015 / Nichols et al. 2017), ``nwb_ophys`` (NWB optical physiology)
and ``wholebrain_npz`` (plain NPZ per worm, for users' own data).
"""

from __future__ import annotations

import hashlib
import json
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.fields import Field, FieldSpec
from neuroreduce.datasets.importer_registry import Importer, register_importer
from neuroreduce.errors import ConfigError, DatasetError
from neuroreduce.wholebrain.identities import (
    link_rois,
    read_neuropal_labels,
    select_neurons,
    worm_identity_check,
)

# --------------------------------------------------------------------------- common assembly


@dataclass(frozen=True, eq=False)
class WormRecording:
    """One worm's recording before alignment.

    Attributes:
        worm: Worm id (becomes the trial's family and group member).
        traces: ``[T, N]`` float traces of the named neurons.
        names: ``N`` neuron names (unique).
        labels: ``[T]`` int behaviour class per frame, -1 = unknown.
        frame_s: Frame interval (s).
        derivatives: Optional ``[T, N]`` derivatives from the file itself.
        targets: Optional continuous series by name, each ``[T]`` (e.g. velocity).
        source: Files read for this worm.
    """

    worm: str
    traces: np.ndarray
    names: tuple[str, ...]
    labels: np.ndarray
    frame_s: float
    derivatives: np.ndarray | None = None
    targets: dict[str, np.ndarray] = field(default_factory=dict)
    source: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        traces = np.asarray(self.traces, dtype=np.float64)
        labels = np.asarray(self.labels).ravel()
        where = f"worm {self.worm}"
        if traces.ndim != 2 or traces.shape[1] != len(self.names):
            raise DatasetError(f"{where}: traces {traces.shape} do not match {len(self.names)} "
                               "neuron names; traces must be [frames, neurons]")
        if labels.shape[0] != traces.shape[0]:
            raise DatasetError(f"{where}: traces have {traces.shape[0]} frames but behaviour has "
                               f"{labels.shape[0]}; give one behaviour value per frame")
        if len(set(self.names)) != len(self.names):
            raise DatasetError(f"{where}: a neuron name occurs twice; names must be unique")
        if not np.isfinite(traces).all():
            raise DatasetError(f"{where}: traces hold NaN or inf values; fill or drop them")
        if not (np.isfinite(self.frame_s) and self.frame_s > 0):
            raise DatasetError(f"{where}: frame interval {self.frame_s} s is not positive")
        if self.derivatives is not None:
            d = np.asarray(self.derivatives, dtype=np.float64)
            if d.shape != traces.shape or not np.isfinite(d).all():
                raise DatasetError(f"{where}: derivatives {d.shape} must match traces "
                                   f"{traces.shape} and be finite")
            object.__setattr__(self, "derivatives", d)
        for key, value in self.targets.items():
            if np.asarray(value).shape != (traces.shape[0],):
                raise DatasetError(f"{where}: series {key!r} has shape {np.shape(value)}, not "
                                   f"({traces.shape[0]},)")
        object.__setattr__(self, "traces", traces)
        object.__setattr__(self, "labels", labels.astype(np.int64))
        object.__setattr__(self, "names", tuple(self.names))


def recordings_dataset(
    worms: Sequence[WormRecording],
    *,
    classes: Sequence[str],
    neurons: str | Sequence[str] = "shared",
    units: str = "a.u.",
    target_units: dict[str, str] | None = None,
    provenance: dict[str, Any] | None = None,
) -> Dataset:
    """Align worms by neuron name into a recordings dataset (Layout 1, module docstring).

    Args:
        worms: The recordings.
        classes: Behaviour class names (label ``k`` is ``classes[k]``).
        neurons: ``"shared"``, ``"all"`` or a list of names.
        units: Unit of the traces.
        target_units: Unit of each continuous target series.
        provenance: Importer facts to keep (source files, rules used).

    Raises:
        DatasetError: for no worms, a label outside ``classes``, no shared names, a requested
            name no worm has, or repeated worm ids.
    """
    if not worms:
        raise DatasetError("no worm recordings to import")
    ids = [w.worm for w in worms]
    if len(set(ids)) != len(ids):
        raise DatasetError(f"worm ids repeat ({', '.join(ids)}); every recording needs its own")
    classes = tuple(classes)
    for w in worms:
        bad = np.unique(w.labels[(w.labels < -1) | (w.labels >= len(classes))])
        if bad.size:
            raise DatasetError(f"worm {w.worm}: unknown behaviour code(s) "
                               f"{', '.join(map(str, bad[:10]))}; known: -1 (unknown) and "
                               f"0..{len(classes) - 1} ({', '.join(classes)})")
    names = select_neurons([w.names for w in worms], neurons)
    n_w, n_t, n_c = len(worms), max(w.traces.shape[0] for w in worms), len(names)
    inputs = np.zeros((n_w, n_t, n_c), np.float32)
    labels = np.full((n_w, n_t, 1), -1, np.int16)
    with_deriv = all(w.derivatives is not None for w in worms)
    deriv = np.zeros_like(inputs) if with_deriv else None
    target_names = sorted(set().union(*(w.targets for w in worms)))
    targets = {k: np.full((n_w, n_t, 1), np.nan, np.float32) for k in target_names}
    params = []
    for i, w in enumerate(worms):
        col = {n: j for j, n in enumerate(w.names)}
        have = [(c, col[n]) for c, n in enumerate(names) if n in col]
        t = w.traces.shape[0]
        if have:
            dst, src = map(list, zip(*have, strict=True))
            inputs[i, :t, dst] = w.traces[:, src].T
            if deriv is not None:
                deriv[i, :t, dst] = w.derivatives[:, src].T
        labels[i, :t, 0] = w.labels
        for k, v in w.targets.items():
            targets[k][i, :t, 0] = v
        params.append(json.dumps({"worm": w.worm, "n_frames": int(t), "frame_s": float(w.frame_s),
                                  "recorded": [n for n in names if n in col]}))
    fields = [
        Field(FieldSpec("behaviour", "label", "categorical", ("state",), classes=classes,
                        ignore_label=-1), labels),
        Field(FieldSpec("worm", "group", "categorical", classes=tuple(ids)),
              np.arange(n_w, dtype=np.int32)),
    ]
    if deriv is not None:
        fields.append(Field(FieldSpec("derivatives", "input", "continuous",
                                      tuple(f"d_{n}" for n in names), f"{units}/frame"), deriv))
    for k, v in targets.items():
        fields.append(Field(FieldSpec(k, "target", "continuous", (k,),
                                      (target_units or {}).get(k, "")), v))
    frame_s = [float(w.frame_s) for w in worms]
    if max(frame_s) > 1.05 * min(frame_s):
        warnings.warn(f"frame intervals differ between worms ({min(frame_s):.3f}-"
                      f"{max(frame_s):.3f} s); dt_ms is their median, each worm's own is in "
                      "stimulus_params frame_s", stacklevel=3)
    prov = dict(provenance or {})
    prov.update({
        "worms": ids,
        "n_frames": {w.worm: int(w.traces.shape[0]) for w in worms},
        "frame_s": dict(zip(ids, frame_s, strict=True)),
        "named_per_worm": {w.worm: len(w.names) for w in worms},
        "neurons_option": neurons if isinstance(neurons, str) else list(neurons),
        "n_neurons": n_c,
    })
    return Dataset(
        inputs=inputs, outputs=np.zeros((n_w, n_t, 0), np.float32),
        dt_ms=float(np.median(frame_s)) * 1000.0, input_names=names, output_names=(),
        input_units=units, output_units="", families=tuple(ids), stimulus_params=tuple(params),
        provenance=prov, fields=tuple(fields),
    )


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _neurons_option(value: Any) -> str | tuple[str, ...]:
    if isinstance(value, str):
        if value in ("shared", "all"):
            return value
        value = tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise ConfigError(f"neurons must be 'shared', 'all' or a list of names, got {value!r}")


def _names_tuple(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = tuple(v.strip() for v in value.split(",") if v.strip())
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{what} must be a list of names, got {value!r}")
    return tuple(value)


# --------------------------------------------------------------------------- flavell2023

#: Trace arrays of a Flavell-lab file and their units.
FLAVELL_TRACES: dict[str, str] = {
    "trace_array": "z",
    "trace_array_original": "ratio",
    "traces_array_F_F20": "F/F20",
}
#: Per-frame behaviour series that may become continuous targets, with units.
FLAVELL_SERIES: dict[str, str] = {
    "velocity": "mm/s", "head_angle": "rad", "angular_velocity": "rad/s", "pumping": "Hz",
}


@dataclass(frozen=True)
class FlavellOptions:
    """Options of the ``flavell2023`` importer.

    Attributes:
        neurons: ``"shared"`` (names every imported worm has), ``"all"`` (the union) or a list of
            names (comma-separated on the command line).
        min_confidence: NeuroPAL confidence (1-5) a name needs to be used; names below it are
            kept apart (not channels) and listed in the provenance. Names with ``?`` or given to
            two ROIs are never used.
        worms: ``"identified"`` (the worms with NeuroPAL sheets), ``"unidentified"`` (the others:
            channels are their trace columns ``roi001`` ... and are NOT the same neurons across
            worms, so only ``neurons="all"`` is allowed; for models that need no names) or a
            list of worm ids (all identified or all unidentified).
        trace: Which trace array: ``trace_array`` (z-scored GCaMP, default),
            ``trace_array_original`` (ratiometric) or ``traces_array_F_F20``.
        targets: Behaviour series to add as continuous target fields (velocity, head_angle,
            angular_velocity, pumping).
        check_identities: Test the ROI link on behaviour (AVA/AIB up, RIB/AVB down in
            reversals) and warn when it fails in a worm.
    """

    neurons: str | tuple[str, ...] = "shared"
    min_confidence: float = 3.0
    worms: str | tuple[str, ...] = "identified"
    trace: str = "trace_array"
    targets: tuple[str, ...] = ()
    check_identities: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "neurons", _neurons_option(self.neurons))
        if self.worms not in ("identified", "unidentified"):
            object.__setattr__(self, "worms", _names_tuple(self.worms, "worms"))
        object.__setattr__(self, "targets", _names_tuple(self.targets, "targets")
                           if self.targets else ())
        if self.trace not in FLAVELL_TRACES:
            raise ConfigError(f"trace {self.trace!r} unknown; use one of "
                              f"{', '.join(FLAVELL_TRACES)}")
        for t in self.targets:
            if t not in FLAVELL_SERIES:
                raise ConfigError(f"target {t!r} unknown; use some of {', '.join(FLAVELL_SERIES)}")
        if isinstance(self.min_confidence, bool) or not isinstance(self.min_confidence,
                                                                   int | float):
            raise ConfigError(f"min_confidence must be a number (1-5), got {self.min_confidence!r}")


def _h5_array(f: Any, key: str, path: Path) -> np.ndarray:
    if key not in f:
        raise DatasetError(f"{path} lacks the field {key!r}; is it a Flavell-lab data file?")
    return np.asarray(f[key][()])


def flavell_worms(source: Path) -> dict[str, tuple[Path, Path | None]]:
    """Worm id -> (HDF5 file, NeuroPAL xlsx or None) of a Flavell-lab folder."""
    data = source / "data"
    files = sorted(data.glob("*-data.h5")) if data.is_dir() else []
    if not files:
        raise DatasetError(f"{source}: no data/<date>-data.h5 files; give the folder holding "
                           "data/ and neuropal_labels/")
    out = {}
    for p in files:
        worm = p.name[: -len("-data.h5")]
        xlsx = source / "neuropal_labels" / f"{worm} Neuron ID.xlsx"
        out[worm] = (p, xlsx if xlsx.is_file() else None)
    return out


def _load_flavell(source: Path, options: FlavellOptions) -> Dataset:
    import h5py

    available = flavell_worms(source)
    if options.worms == "identified":
        chosen = [w for w, (_, x) in available.items() if x is not None]
    elif options.worms == "unidentified":
        chosen = [w for w, (_, x) in available.items() if x is None]
    else:
        chosen = list(options.worms)
        for w in chosen:
            if w not in available:
                raise DatasetError(f"{source}: no worm {w!r}; worms: {', '.join(available)}")
    if not chosen:
        raise DatasetError(f"{source}: no {options.worms} worms")
    identified = {available[w][1] is not None for w in chosen}
    if len(identified) > 1:
        raise ConfigError("worms mixes identified and unidentified worms; their channels cannot "
                          "be aligned (import them separately)")
    named = identified.pop()
    if not named and options.neurons != "all":
        raise ConfigError("worms without identities have ROI channels that are not the same "
                          "neurons across worms; import them with neurons=all")
    recordings, files, low, unsure, checks, notes = [], {}, {}, {}, {}, {}
    for worm in chosen:
        h5_path, xlsx = available[worm]
        try:
            with h5py.File(h5_path, "r") as f:
                traces = _h5_array(f, f"gcamp/{options.trace}", h5_path)
                rev = _h5_array(f, "behavior/reversal_vec", h5_path)
                stamps = _h5_array(f, "timing/timestamp_confocal", h5_path)
                series = {k: _h5_array(f, f"behavior/{k}", h5_path).astype(np.float64)
                          for k in options.targets}
                roi_match = _h5_array(f, "neuropal_registration/roi_match", h5_path) if named \
                    else None
        except OSError as exc:
            raise DatasetError(f"{h5_path}: not a readable HDF5 file ({exc})") from None
        if traces.ndim != 2:
            raise DatasetError(f"{h5_path}: gcamp/{options.trace} is not [frames, neurons]")
        unknown = np.setdiff1d(np.unique(rev), (0, 1))
        if unknown.size:
            raise DatasetError(f"{h5_path}: behavior/reversal_vec holds unknown state code(s) "
                               f"{', '.join(map(str, unknown[:10]))}; expected 0 (forward) / "
                               "1 (reversal)")
        if stamps.shape[0] != traces.shape[0]:  # 2022-05-02-01: 1600 stamps, 1137 frames
            notes[worm] = (f"{stamps.shape[0]} timestamps for {traces.shape[0]} trace frames; "
                           "frame interval = median timestamp step")
        frame_s = float(np.median(np.diff(stamps))) if stamps.size > 1 else float("nan")
        files[h5_path.name] = file_sha256(h5_path)
        if named:
            labels = read_neuropal_labels(xlsx)
            files[xlsx.name] = file_sha256(xlsx)
            link = link_rois(labels, roi_match, traces.shape[1],
                             min_confidence=float(options.min_confidence))
            low[worm], unsure[worm] = list(link.low_confidence), list(link.unsure)
            names = tuple(sorted(link.columns))
            cols = [link.columns[n] for n in names]
            worm_traces = traces[:, cols]
            if options.check_identities:
                check = worm_identity_check(worm_traces, names, rev, worm=worm)
                checks[worm] = {"holds": check.holds, "correlations": check.correlations}
                if not check.holds:
                    warnings.warn(f"flavell2023: the ROI-to-trace link fails the behaviour check "
                                  f"in {check.summary()}", stacklevel=2)
        else:
            names = tuple(f"roi{j + 1:03d}" for j in range(traces.shape[1]))
            worm_traces = traces
        recordings.append(WormRecording(
            worm, worm_traces, names, rev.astype(np.int64), frame_s,
            targets=series, source=(str(h5_path),)))
    provenance = {
        "importer": "flavell2023", "source": str(source), "files_sha256": files,
        "trace": options.trace,
        "identity_rule": ("trace column = roi_match[ROI_ID - 1] - 1 (inferred); names with "
                          f"confidence >= {options.min_confidence} in the last 'labels' sheet; "
                          "names with '?' or on two ROIs left out") if named else
                         "no identities: channels are trace columns (roiNNN)",
        "low_confidence": low, "unsure_names": unsure, "identity_check": checks,
        "notes": notes,
    }
    return recordings_dataset(
        recordings, classes=("forward", "reversal"), neurons=options.neurons,
        units=FLAVELL_TRACES[options.trace],
        target_units={k: FLAVELL_SERIES[k] for k in options.targets}, provenance=provenance)


# --------------------------------------------------------------------------- kato2015

#: The Zimmer lab's behaviour states (readme of Kato et al. 2015): WT_NoStim has 8, WT_Stim and
#: AVA_HisCl have 4.
KATO_STATES_8: tuple[str, ...] = ("FWD", "SLOW", "DT", "VT", "REV1", "REV2", "REVSUS", "NOSTATE")
KATO_STATES_4: tuple[str, ...] = ("FWD", "REV", "REVSUS", "TURN")
#: (source state set size, option) -> (classes, source state -> class, None = unknown frame).
#: "7": the paper's 7 states (NOSTATE ignored); "4": forward (FWD, SLOW), reversal (REV1, REV2),
#: sustained reversal, turn (DT, VT); "2": forward (FWD, SLOW) / reversal (REV*), turns ignored.
STATE_MAPS: dict[tuple[int, str], tuple[tuple[str, ...], dict[str, str | None]]] = {
    (8, "8"): (KATO_STATES_8, {s: s for s in KATO_STATES_8}),
    (8, "7"): (KATO_STATES_8[:7], {**{s: s for s in KATO_STATES_8[:7]}, "NOSTATE": None}),
    (8, "4"): (KATO_STATES_4, {"FWD": "FWD", "SLOW": "FWD", "REV1": "REV", "REV2": "REV",
                              "REVSUS": "REVSUS", "DT": "TURN", "VT": "TURN", "NOSTATE": None}),
    (8, "2"): (("forward", "reversal"), {"FWD": "forward", "SLOW": "forward", "REV1": "reversal",
                                         "REV2": "reversal", "REVSUS": "reversal", "DT": None,
                                         "VT": None, "NOSTATE": None}),
    (4, "4"): (KATO_STATES_4, {s: s for s in KATO_STATES_4}),
    (4, "2"): (("forward", "reversal"), {"FWD": "forward", "REV": "reversal",
                                         "REVSUS": "reversal", "TURN": None}),
}


@dataclass(frozen=True)
class KatoOptions:
    """Options of the ``kato2015`` importer.

    Attributes:
        neurons: ``"shared"``, ``"all"`` or a list of names (as ``flavell2023``).
        states: Behaviour classes: ``"native"`` (7 for 8-state files, i.e. NOSTATE ignored; 4
            for 4-state files), ``"8"``, ``"7"``, ``"4"`` (8-state files folded as Wang et al.'s
            4-state task: FWD+SLOW, REV1+REV2, REVSUS, DT+VT) or ``"2"`` (forward/reversal,
            turns ignored).
        state_set: For integer state vectors only: how many states the codes index (8 or 4,
            in the readme's order).
        state_base: For integer state vectors only: the code of the first state (0, or 1 for
            MATLAB-style codes).
        trace: ``"traces"`` (bleach-corrected, default) or ``"traces_raw"``.
        file_derivatives: Keep ``tracesDif`` as the field ``derivatives`` (used by windowing
            with ``derivative_source="auto"``).
    """

    neurons: str | tuple[str, ...] = "shared"
    states: str = "native"
    state_set: int = 8
    state_base: int = 0
    trace: str = "traces"
    file_derivatives: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "neurons", _neurons_option(self.neurons))
        object.__setattr__(self, "states", str(self.states))
        if self.states not in ("native", "8", "7", "4", "2"):
            raise ConfigError(f"states {self.states!r} unknown; use native, 8, 7, 4 or 2")
        if self.state_set not in (8, 4):
            raise ConfigError(f"state_set must be 8 or 4, got {self.state_set!r}")
        if self.state_base not in (0, 1):
            raise ConfigError(f"state_base must be 0 or 1, got {self.state_base!r}")
        if self.trace not in ("traces", "traces_raw"):
            raise ConfigError(f"trace {self.trace!r} unknown; use traces or traces_raw")


def read_mat(path: Path) -> dict[str, Any]:
    """A MATLAB file as nested dicts/lists/arrays (scipy for v5/v7, h5py for v7.3).

    Raises:
        DatasetError: if the file is not a readable MATLAB file.
    """
    import h5py
    import scipy.io
    from scipy.io.matlab import MatReadError

    if h5py.is_hdf5(path):  # v7.3
        return _read_mat73(path)
    try:
        data = scipy.io.loadmat(path, simplify_cells=True)
    except NotImplementedError:  # v7.3 = HDF5
        return _read_mat73(path)
    except (ValueError, OSError, TypeError, MatReadError, zipfile.BadZipFile) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DatasetError(f"{path}: not a readable MATLAB file ({first})") from None
    return {k: v for k, v in data.items() if not k.startswith("__")}


def _read_mat73(path: Path) -> dict[str, Any]:
    import h5py

    def convert(f: Any, obj: Any) -> Any:
        if isinstance(obj, h5py.Group):
            return {k: convert(f, obj[k]) for k in obj if not k.startswith("#")}
        cls = obj.attrs.get("MATLAB_class", b"")
        cls = cls.decode() if isinstance(cls, bytes) else str(cls)
        data = obj[()]
        if obj.attrs.get("MATLAB_empty", 0):
            return "" if cls == "char" else np.zeros(0)
        if data.dtype == h5py.ref_dtype:  # a cell array: references, column-major
            return [convert(f, f[r]) for r in np.asarray(data).T.ravel()]
        arr = np.asarray(data).T  # MATLAB stores column-major
        if cls == "char":
            return "".join(chr(c) for c in arr.ravel())
        return np.squeeze(arr) if arr.ndim > 1 and 1 in arr.shape else arr

    try:
        with h5py.File(path, "r") as f:
            return {k: convert(f, f[k]) for k in f if not k.startswith("#")}
    except OSError as exc:
        raise DatasetError(f"{path}: not a readable MATLAB v7.3 file ({exc})") from None


def _cells(value: Any) -> list[Any] | None:
    """A cell array of per-worm entries as a list, or None for a single entry."""
    if isinstance(value, list):
        return value
    if isinstance(value, np.ndarray) and value.dtype == object:
        return list(value.ravel())
    return None


def _kato_id(value: Any) -> tuple[str | None, bool]:
    """(name, unsure) of one IDs entry: a string, an empty cell, or a cell of candidates."""
    if isinstance(value, str):
        name = value.strip()
        return (name or None), "?" in name
    cand = [c.strip() for c in np.asarray(value, dtype=object).ravel()
            if isinstance(c, str) and c.strip()] if np.size(value) else []
    if len(cand) == 1:
        return cand[0], "?" in cand[0]
    return (None, bool(cand))


def _kato_states(value: Any, options: KatoOptions, where: str, n: int) -> tuple[np.ndarray, int]:
    """Per-frame source-state codes (index into the 8 or 4 names, -1 none) and the set size."""
    if isinstance(value, dict):
        keys = {k.upper(): k for k in value}
        if set(keys) <= set(KATO_STATES_8):
            names = KATO_STATES_8
        elif set(keys) <= set(KATO_STATES_4):
            names = KATO_STATES_4
        else:
            bad = sorted(set(keys) - set(KATO_STATES_8) - set(KATO_STATES_4))
            raise DatasetError(f"{where}: unknown state(s) {', '.join(bad)} in States; known: "
                               f"{', '.join(KATO_STATES_8)} or {', '.join(KATO_STATES_4)}")
        codes = np.full(n, -1, np.int64)
        hits = np.zeros(n, np.int64)
        for k, orig in keys.items():
            v = np.asarray(value[orig], dtype=np.float64).ravel()
            if v.shape != (n,):
                raise DatasetError(f"{where}: state {k} has {v.size} frames but traces have {n}")
            on = v > 0
            codes[on] = names.index(k)
            hits += on
        codes[hits > 1] = -1  # two states at once: ambiguous
        return codes, len(names)
    v = np.asarray(value).ravel()
    if v.dtype.kind not in "iuf" or (v.dtype.kind == "f" and not np.all(v == np.round(v))):
        raise DatasetError(f"{where}: States must be integer codes or a struct of 0/1 vectors")
    codes = v.astype(np.int64) - options.state_base
    if v.shape != (n,):
        raise DatasetError(f"{where}: traces have {n} frames but States has {v.size}; give one "
                           "state per frame")
    bad = np.unique(codes[(codes < 0) | (codes >= options.state_set)]) + options.state_base
    if bad.size:
        raise DatasetError(f"{where}: unknown state code(s) {', '.join(map(str, bad[:10]))}; "
                           f"codes are {options.state_base}.."
                           f"{options.state_base + options.state_set - 1}"
                           f" (state_set={options.state_set}, state_base={options.state_base})")
    return codes, options.state_set


def _kato_records(data: dict[str, Any], path: Path) -> dict[str, Any]:
    if "traces" in data:
        return data
    structs = [v for v in data.values() if isinstance(v, dict) and "traces" in v]
    if len(structs) != 1:
        raise DatasetError(f"{path} lacks the field 'traces' (at top level or in one struct such "
                           "as WT_NoStim); is it a Kato/Zimmer-lab file?")
    return structs[0]


def _load_kato(source: Path, options: KatoOptions) -> Dataset:
    files = sorted(source.glob("*.mat")) if source.is_dir() else [source]
    if not files:
        raise DatasetError(f"{source}: no .mat files")
    recordings, hashes, unnamed, sets = [], {}, {}, set()
    for path in files:
        rec = _kato_records(read_mat(path), path)
        hashes[path.name] = file_sha256(path)
        for key in (options.trace, "IDs", "States"):
            if key not in rec:
                raise DatasetError(f"{path} lacks the field {key!r} (readme_Kato2015.txt lists "
                                   "traces, tracesDif, IDs, timeVectorSeconds, fps, States)")
        if "fps" not in rec and "timeVectorSeconds" not in rec:
            raise DatasetError(f"{path} lacks both 'fps' and 'timeVectorSeconds'; one gives the "
                               "frame interval")
        per_worm = _cells(rec[options.trace])
        n_worms = 1 if per_worm is None else len(per_worm)

        def entry(key: str, k: int, rec: dict = rec, n_worms: int = n_worms,
                  path: Path = path) -> Any:
            value = rec.get(key)
            cells = _cells(value)
            if cells is None or (key == "IDs" and n_worms == 1):
                return value
            if len(cells) != n_worms:
                raise DatasetError(f"{path}: {key} has {len(cells)} entries for {n_worms} worms")
            return cells[k]

        for k in range(n_worms):
            ds_name = entry("dataset", k) if "dataset" in rec else None
            worm = ds_name if isinstance(ds_name, str) and ds_name else (
                path.stem if n_worms == 1 else f"{path.stem}-{k + 1}")
            where = f"{path} worm {worm}"
            traces = np.asarray(entry(options.trace, k), dtype=np.float64)
            ids = entry("IDs", k)
            ids = list(ids) if isinstance(ids, list | np.ndarray) else [ids]
            if traces.ndim != 2:
                raise DatasetError(f"{where}: traces must be [frames, neurons], got {traces.shape}")
            if traces.shape[1] != len(ids) and traces.shape[0] == len(ids):
                traces = traces.T
            if traces.shape[1] != len(ids):
                raise DatasetError(f"{where}: traces {traces.shape} but {len(ids)} IDs; give one "
                                   "ID entry per neuron")
            n = traces.shape[0]
            codes, n_states = _kato_states(entry("States", k), options, where, n)
            sets.add(n_states)
            if "fps" in rec:
                frame_s = 1.0 / float(np.asarray(entry("fps", k)).ravel()[0])
            else:
                t = np.asarray(entry("timeVectorSeconds", k), np.float64).ravel()
                if t.size != n:
                    raise DatasetError(f"{where}: timeVectorSeconds has {t.size} frames, traces "
                                       f"{n}")
                frame_s = float(np.median(np.diff(t)))
            deriv = None
            if options.file_derivatives and "tracesDif" in rec:
                deriv = np.asarray(entry("tracesDif", k), np.float64)
                if deriv.ndim == 2 and deriv.shape[1] != traces.shape[1]:
                    deriv = deriv.T
                if deriv.ndim == 2 and deriv.shape[0] == n - 1:  # differences: one row fewer
                    deriv = np.vstack([deriv, deriv[-1:]])
            cols, names, dropped = [], [], []
            for j, value in enumerate(ids):
                name, unsure = _kato_id(value)
                if name is None or unsure or name in names:
                    dropped.append(j)
                    continue
                cols.append(j)
                names.append(name)
            unnamed[worm] = len(dropped)
            recordings.append(WormRecording(
                worm, traces[:, cols], tuple(names), codes, frame_s,
                derivatives=None if deriv is None else deriv[:, cols], source=(str(path),),
                targets={}))
    if len(sets) > 1:
        raise DatasetError(f"{source}: files mix 8-state and 4-state behaviour; import them "
                           "separately")
    n_states = sets.pop()
    option = options.states if options.states != "native" else ("7" if n_states == 8 else "4")
    if (n_states, option) not in STATE_MAPS:
        raise ConfigError(f"states={options.states} needs 8-state files (WT_NoStim); these have "
                          f"{n_states} states: use states=4 or 2")
    classes, mapping = STATE_MAPS[(n_states, option)]
    source_names = KATO_STATES_8 if n_states == 8 else KATO_STATES_4
    lut = np.array([classes.index(mapping[s]) if mapping[s] is not None else -1
                    for s in source_names] + [-1])  # index -1 (no state) -> -1
    recordings = [replace(r, labels=lut[r.labels]) for r in recordings]
    provenance = {
        "importer": "kato2015", "source": str(source), "files_sha256": hashes,
        "states": {"source_states": list(source_names), "option": option,
                   "map": {k: v for k, v in mapping.items()}},
        "identity_rule": "IDs entries with one name; empty, multiple-candidate or '?' IDs left "
                         "out",
        "unnamed_or_ambiguous": unnamed, "trace": options.trace,
    }
    return recordings_dataset(recordings, classes=classes, neurons=options.neurons,
                              units="dF/F", provenance=provenance)


# --------------------------------------------------------------------------- nwb_ophys


@dataclass(frozen=True)
class NWBOphysOptions:
    """Options of the ``nwb_ophys`` importer (one worm per NWB file; a file or a folder).

    Attributes:
        neurons: ``"shared"``, ``"all"`` or a list of names.
        series: Name of the RoiResponseSeries (empty: the only one, preferring DfOverF to
            Fluorescence).
        label_column: Column of the plane segmentation table holding neuron names (empty: the
            first of neuron_name, ID, label, name).
        behaviour: Name of the behaviour: a TimeIntervals table (with a label column) or a
            TimeSeries of integer state codes (empty: a table or series called behaviour,
            behavior, states or state).
        classes: Class names: of the codes of a TimeSeries (code k = classes[k]; required for
            one), or the order of an interval table's labels (empty: sorted labels).
        interval_column: Label column of an interval table (empty: label, state, behaviour).
    """

    neurons: str | tuple[str, ...] = "shared"
    series: str = ""
    label_column: str = ""
    behaviour: str = ""
    classes: tuple[str, ...] = ()
    interval_column: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "neurons", _neurons_option(self.neurons))
        object.__setattr__(self, "classes", _names_tuple(self.classes, "classes")
                           if self.classes else ())


_NAME_COLUMNS = ("neuron_name", "ID", "label", "name")
_BEHAVIOUR_NAMES = ("behaviour", "behavior", "states", "state")
_INTERVAL_COLUMNS = ("label", "state", "behaviour", "behavior")


def _nwb_series(nwb: Any, options: NWBOphysOptions, path: Path) -> Any:
    from pynwb.ophys import DfOverF, Fluorescence

    found = []
    for module in nwb.processing.values():
        for iface in module.data_interfaces.values():
            if isinstance(iface, DfOverF | Fluorescence):
                for name, rrs in iface.roi_response_series.items():
                    found.append((0 if isinstance(iface, DfOverF) else 1, name, rrs))
    if options.series:
        found = [f for f in found if f[1] == options.series]
    if not found:
        what = f"named {options.series!r} " if options.series else ""
        raise DatasetError(f"{path}: no RoiResponseSeries {what}in a DfOverF or Fluorescence "
                           "container")
    found.sort(key=lambda f: f[0])
    if len([f for f in found if f[0] == found[0][0]]) > 1:
        raise DatasetError(f"{path}: several RoiResponseSeries ({', '.join(f[1] for f in found)})"
                           "; choose one with --option series=NAME")
    return found[0][2]


def _frame_times(ts: Any, n: int) -> np.ndarray:
    if ts.timestamps is not None:
        return np.asarray(ts.timestamps[:], np.float64)
    return float(ts.starting_time or 0.0) + np.arange(n) / float(ts.rate)


def _nwb_behaviour(nwb: Any, options: NWBOphysOptions, path: Path, times: np.ndarray
                   ) -> tuple[np.ndarray | None, list[str] | None]:
    """(codes [T] for a TimeSeries, None) or (None, label per frame or '' for an interval table)."""
    from pynwb import TimeSeries
    from pynwb.epoch import TimeIntervals

    wanted = (options.behaviour,) if options.behaviour else _BEHAVIOUR_NAMES
    candidates = []
    for name, table in (nwb.intervals or {}).items():
        candidates.append((name, table))
    for module in nwb.processing.values():
        candidates.extend(module.data_interfaces.items())
    candidates.extend(nwb.acquisition.items())
    obj = next((o for w in wanted for n, o in candidates if n == w), None)
    if obj is None:
        raise DatasetError(f"{path}: no behaviour named {' / '.join(wanted)} (a TimeIntervals "
                           "table or a TimeSeries of state codes); name it with --option "
                           "behaviour=NAME")
    if isinstance(obj, TimeIntervals):
        cols = (options.interval_column,) if options.interval_column else _INTERVAL_COLUMNS
        col = next((c for c in cols if c in obj.colnames), None)
        if col is None:
            raise DatasetError(f"{path}: interval table {obj.name!r} has no label column "
                               f"({' / '.join(cols)}); columns: {', '.join(obj.colnames)}")
        labels = [""] * times.size
        for start, stop, lab in zip(obj["start_time"][:], obj["stop_time"][:], obj[col][:],
                                    strict=True):
            lab = lab.decode() if isinstance(lab, bytes) else str(lab)
            for k in np.flatnonzero((times >= start) & (times < stop)):
                labels[k] = lab
        return None, labels
    if isinstance(obj, TimeSeries):
        data = np.asarray(obj.data[:]).ravel()
        t = _frame_times(obj, data.size)
        if data.size == times.size and np.allclose(t, times, atol=1e-6):
            codes = data
        else:  # sample the state in force at each frame
            idx = np.searchsorted(t, times, side="right") - 1
            codes = np.where(idx >= 0, data[np.clip(idx, 0, None)], -1)
        if codes.dtype.kind == "f" and not np.all(codes == np.round(codes)):
            raise DatasetError(f"{path}: behaviour series {obj.name!r} holds non-integer codes")
        return codes.astype(np.int64), None
    raise DatasetError(f"{path}: {obj.name!r} is neither a TimeIntervals table nor a TimeSeries")


def _load_nwb(source: Path, options: NWBOphysOptions) -> Dataset:
    from pynwb import NWBHDF5IO

    files = sorted(source.glob("*.nwb")) if source.is_dir() else [source]
    if not files:
        raise DatasetError(f"{source}: no .nwb files")
    raw, hashes = [], {}
    for path in files:
        try:
            io = NWBHDF5IO(str(path), "r")
            nwb = io.read()
        except Exception as exc:  # pynwb/hdmf raise many types for a bad file
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DatasetError(f"{path}: not a readable NWB file ({first[:200]})") from None
        try:
            rrs = _nwb_series(nwb, options, path)
            data = np.asarray(rrs.data[:], np.float64)
            if data.ndim == 1:
                data = data[:, None]
            table = rrs.rois.table
            cols = (options.label_column,) if options.label_column else _NAME_COLUMNS
            col = next((c for c in cols if c in table.colnames), None)
            if col is None:
                raise DatasetError(f"{path}: plane segmentation {table.name!r} has no neuron name "
                                   f"column ({' / '.join(cols)}); columns: "
                                   f"{', '.join(table.colnames)}")
            rows = np.asarray(rrs.rois.data[:]).ravel()
            all_names = [n.decode() if isinstance(n, bytes) else str(n) for n in table[col][:]]
            names = [all_names[r].strip() for r in rows]
            if data.shape[1] != len(names):
                raise DatasetError(f"{path}: series has {data.shape[1]} ROIs but its region "
                                   f"names {len(names)}")
            times = _frame_times(rrs, data.shape[0])
            codes, labels = _nwb_behaviour(nwb, options, path, times)
            worm = nwb.identifier or path.stem
        finally:
            io.close()
        keep = [j for j, n in enumerate(names) if n and "?" not in n and names.count(n) == 1]
        frame_s = float(np.median(np.diff(times))) if times.size > 1 else float("nan")
        raw.append((worm, data[:, keep], tuple(names[j] for j in keep), codes, labels, frame_s,
                    path))
        hashes[path.name] = file_sha256(path)
    if any(r[3] is not None for r in raw):
        if not options.classes:
            raise ConfigError("the behaviour is a series of state codes; name the classes in "
                              "code order with --option classes=forward,reversal")
        classes = options.classes
    else:
        classes = _label_classes(raw, options.classes, "the behaviour intervals name")
    recordings = []
    for worm, traces, names, codes, labels, frame_s, path in raw:
        if codes is None:
            codes = np.array([classes.index(lab) if lab else -1 for lab in labels])
        else:
            codes = np.where(codes < 0, -1, codes)
        recordings.append(WormRecording(worm, traces, names, codes, frame_s,
                                        source=(str(path),)))
    provenance = {"importer": "nwb_ophys", "source": str(source), "files_sha256": hashes,
                  "identity_rule": "names of the plane segmentation column; empty, '?' or "
                                   "repeated names left out"}
    return recordings_dataset(recordings, classes=classes, neurons=options.neurons,
                              units="dF/F", provenance=provenance)


# --------------------------------------------------------------------------- wholebrain_npz


@dataclass(frozen=True)
class WholebrainNPZOptions:
    """Options of the ``wholebrain_npz`` importer (one worm per ``.npz``; a file or a folder).

    Each archive holds ``traces [T, N]`` (float), ``names [N]`` (strings), ``behaviour [T]``
    (int class codes, -1 unknown), ``frame_s`` (scalar, s per frame); optionally ``classes
    [K]`` (strings; every file must agree), ``worm`` (scalar string; default the file name) and
    ``derivatives [T, N]``. Loaded without pickle.

    Attributes:
        neurons: ``"shared"``, ``"all"`` or a list of names.
        classes: Class names of the codes when the files hold none (default forward, reversal).
        units: Unit of the traces.
    """

    neurons: str | tuple[str, ...] = "shared"
    classes: tuple[str, ...] = ("forward", "reversal")
    units: str = "a.u."

    def __post_init__(self) -> None:
        object.__setattr__(self, "neurons", _neurons_option(self.neurons))
        object.__setattr__(self, "classes", _names_tuple(self.classes, "classes"))


def _load_wholebrain_npz(source: Path, options: WholebrainNPZOptions) -> Dataset:
    files = sorted(source.glob("*.npz")) if source.is_dir() else [source]
    if not files:
        raise DatasetError(f"{source}: no .npz files")
    recordings, hashes, classes = [], {}, None
    for path in files:
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError, AttributeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DatasetError(f"{path}: not a readable NPZ archive ({first})") from None
        missing = [k for k in ("traces", "names", "behaviour", "frame_s") if k not in arrays]
        if missing:
            raise DatasetError(f"{path} lacks array(s) {', '.join(missing)}; save traces, names, "
                               "behaviour and frame_s with numpy.savez")
        names = arrays["names"]
        if names.ndim != 1 or names.dtype.kind not in "US":
            raise DatasetError(f"{path}: names must be a 1-D array of strings")
        beh = arrays["behaviour"]
        if beh.dtype.kind not in "iu" and not (beh.dtype.kind == "f"
                                               and np.all(beh == np.round(beh))):
            raise DatasetError(f"{path}: behaviour must hold integer class codes (-1 unknown)")
        file_classes = tuple(str(c) for c in arrays["classes"]) if "classes" in arrays \
            else options.classes
        if classes is not None and file_classes != classes:
            raise DatasetError(f"{path}: classes {', '.join(file_classes)} differ from an "
                               f"earlier file's {', '.join(classes)}")
        classes = file_classes
        try:
            frame_s = float(np.asarray(arrays["frame_s"]).reshape(()))
        except (TypeError, ValueError):
            raise DatasetError(f"{path}: frame_s must be one number (s per frame)") from None
        worm = str(arrays["worm"]) if "worm" in arrays else path.stem
        if arrays["traces"].dtype.kind not in "iuf":
            raise DatasetError(f"{path}: traces must be numeric")
        recordings.append(WormRecording(
            worm, arrays["traces"], tuple(str(n) for n in names), beh.astype(np.int64), frame_s,
            derivatives=arrays.get("derivatives"), source=(str(path),)))
        hashes[path.name] = file_sha256(path)
    provenance = {"importer": "wholebrain_npz", "source": str(source), "files_sha256": hashes}
    return recordings_dataset(recordings, classes=classes, neurons=options.neurons,
                              units=options.units, provenance=provenance)


# --------------------------------------------------------------------------- wholebrain_csv


@dataclass(frozen=True)
class WholebrainCSVOptions:
    """Options of the ``wholebrain_csv`` importer (a folder of CSV files, one worm each, named
    ``<worm>.csv``; or one file).

    Each file has a header row: ``time_s`` (frame times, s), ``behaviour`` (class name per
    frame; empty or ``unknown`` = unknown), then one column per named neuron.

    Attributes:
        neurons: ``"shared"``, ``"all"`` or a list of names.
        classes: Class names in code order (empty: the sorted names found in the files).
        units: Unit of the traces.
    """

    neurons: str | tuple[str, ...] = "shared"
    classes: tuple[str, ...] = ()
    units: str = "a.u."

    def __post_init__(self) -> None:
        object.__setattr__(self, "neurons", _neurons_option(self.neurons))
        object.__setattr__(self, "classes", _names_tuple(self.classes, "classes")
                           if self.classes else ())


def _read_worm_csv(path: Path) -> tuple[np.ndarray, list[str], np.ndarray, list[str]]:
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: not a readable CSV file ({exc})") from None
    if len(rows) < 3:
        raise DatasetError(f"{path}: needs a header row and at least two frames")
    header = [h.strip() for h in rows[0]]
    for key in ("time_s", "behaviour"):
        if key not in header:
            raise DatasetError(f"{path}: no column {key!r}; header needs time_s, behaviour and "
                               "one column per neuron")
    t_col, b_col = header.index("time_s"), header.index("behaviour")
    n_cols = [j for j in range(len(header)) if j not in (t_col, b_col)]
    values, labels = [], []
    for k, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DatasetError(f"{path}: line {k} has {len(row)} fields, the header {len(header)}")
        try:
            values.append([float(row[t_col])] + [float(row[j]) for j in n_cols])
        except ValueError:
            raise DatasetError(f"{path}: line {k} holds a non-numeric time or trace") from None
        lab = row[b_col].strip()
        labels.append("" if lab.lower() == "unknown" else lab)
    arr = np.asarray(values)
    return arr[:, 1:], [header[j] for j in n_cols], arr[:, 0], labels


def _label_classes(raw: list[tuple], classes: tuple[str, ...] | None, what: str
                   ) -> tuple[str, ...]:
    """The behaviour classes of text labels (``raw`` rows hold the labels at index 4): the
    given ``classes`` (every label must be one) or the labels seen, sorted.

    Raises:
        DatasetError: for a label outside ``classes`` or fewer than two classes.
    """
    seen = sorted({lab for r in raw for lab in r[4] if lab})
    chosen = tuple(classes) if classes else tuple(seen)
    unknown = [lab for lab in seen if lab not in chosen]
    if unknown:
        raise DatasetError(f"unknown behaviour label(s) {', '.join(unknown[:10])}; classes: "
                           f"{', '.join(chosen)}")
    if len(chosen) < 2:
        raise DatasetError(f"{what} {len(chosen)} class(es); need two or more (or give "
                           "--option classes=...)")
    return chosen


def _load_wholebrain_csv(source: Path, options: WholebrainCSVOptions) -> Dataset:
    files = sorted(source.glob("*.csv")) if source.is_dir() else [source]
    if not files:
        raise DatasetError(f"{source}: no .csv files")
    raw = [(p, *_read_worm_csv(p)) for p in files]
    classes = _label_classes(raw, options.classes, "the behaviour column names")
    recordings = [
        WormRecording(p.stem, traces, tuple(names), np.array(
            [classes.index(lab) if lab else -1 for lab in labels]),
            float(np.median(np.diff(times))), source=(str(p),))
        for p, traces, names, times, labels in raw
    ]
    provenance = {"importer": "wholebrain_csv", "source": str(source),
                  "files_sha256": {p.name: file_sha256(p) for p in files}}
    return recordings_dataset(recordings, classes=classes, neurons=options.neurons,
                              units=options.units, provenance=provenance)


# --------------------------------------------------------------------------- registry entries

register_importer(Importer(
    "flavell2023", "Flavell-lab whole-brain GCaMP + behaviour (Dag et al. 2023): data/*.h5 and "
    "neuropal_labels/*.xlsx; one trial per worm, neurons aligned by name",
    FlavellOptions, _load_flavell, source="folder"))
register_importer(Importer(
    "kato2015", "Zimmer-lab MATLAB whole-brain files (Kato et al. 2015, Nichols et al. 2017): "
    "traces, tracesDif, IDs, fps, 8 or 4 behaviour states; states option 7/4/2",
    KatoOptions, _load_kato, source="file or folder"))
register_importer(Importer(
    "nwb_ophys", "NWB optical physiology: RoiResponseSeries with neuron names in the plane "
    "segmentation, behaviour as TimeIntervals or a TimeSeries of state codes; one worm per file",
    NWBOphysOptions, _load_nwb, source="file or folder"))
register_importer(Importer(
    "wholebrain_npz", "plain NPZ per worm: traces [T, N], names, behaviour codes [T], frame_s",
    WholebrainNPZOptions, _load_wholebrain_npz, source="file or folder"))
register_importer(Importer(
    "wholebrain_csv", "a folder of CSV files, one worm each: time_s, behaviour (class names), "
    "one column per neuron",
    WholebrainCSVOptions, _load_wholebrain_csv, source="file or folder"))
