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
from collections.abc import Sequence
from dataclasses import dataclass, field
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


# --------------------------------------------------------------------------- registry entries

register_importer(Importer(
    "flavell2023", "Flavell-lab whole-brain GCaMP + behaviour (Dag et al. 2023): data/*.h5 and "
    "neuropal_labels/*.xlsx; one trial per worm, neurons aligned by name",
    FlavellOptions, _load_flavell, source="folder"))
