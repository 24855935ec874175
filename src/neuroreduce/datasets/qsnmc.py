"""Importers of the Quantitative Single-Neuron Modeling Competition recordings (2007, 2009).

Both produce the spike-timing layout (also used by :mod:`neuroreduce.datasets.nwb_icephys` and
the simulated spike-timing generators), built by :func:`spike_timing_dataset`:

* one trial per (stimulus, repetition) recording; ``families[i]`` is the stimulus name;
* dense ``inputs``: one channel ``current`` (pA); dense ``outputs``: one channel ``voltage``
  (mV, the recorded membrane voltage, spikes included);
* field ``spikes`` (target, binary, channel ``soma``): float32 ``[trial, time, 1]``, 1.0 at the
  sample holding a spike;
* field ``stimulus`` (group, categorical, classes = stimulus names): int32 ``[trial]``; trials
  with equal ids are repetitions of one stimulus (``MetricContext.repetitions``);
* ``stimulus_params[i]``: JSON with ``stimulus`` and ``repetition``;
* ``split`` None; ``provenance``: importer, source, files with SHA-256, options.

Layouts:

* ``qsnmc2007`` (challenge A): a folder of ``NN-R.voltage`` files (whitespace text, 3 columns:
  sample index, current pA, voltage mV; ``NN`` the stimulus, ``R`` the repetition) and
  ``NN-R.spiketimes`` (spike sample index, then an undocumented code). The files do not state
  the sampling interval: ``dt_ms`` (default 0.2 ms, as the organisers' scripts use) is a choice.
* ``qsnmc2009``: ``current.txt`` (one column, pA) and ``voltage_allrep.txt`` (one column per
  repetition, mV), all repetitions of one stimulus (13 x 60 s at 10 kHz: ``dt_ms`` 0.1).
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.fields import Field, FieldSpec
from neuroreduce.datasets.importer_registry import Importer, options_to_dict, register_importer
from neuroreduce.errors import ConfigError, DatasetError

SPIKES = "spikes"
STIMULUS = "stimulus"
_NAME_2007 = re.compile(r"^(?P<stimulus>.+)-(?P<rep>\d+)\.voltage$")


# ----------------------------------------------------------------------------- the layout


def crossing_samples(v: np.ndarray, threshold_mv: float = 0.0) -> np.ndarray:
    """Samples holding an upward crossing of ``threshold_mv`` by one trace.

    A crossing is ``v[i] < threshold <= v[i + 1]``; it lies between samples ``i`` and ``i + 1``
    and is assigned to sample ``i`` (the sample whose interval ``[i dt, (i + 1) dt)`` holds the
    interpolated crossing time of :func:`neuroreduce.evaluation.spikes.spike_times`).

    Args:
        v: Voltage (mV), shape ``[time]``.
        threshold_mv: Crossing level (mV).

    Returns:
        int64 sample indices, sorted, shape ``[spike]``.
    """
    x = np.asarray(v, dtype=np.float64)
    return np.flatnonzero((x[:-1] < threshold_mv) & (x[1:] >= threshold_mv)).astype(np.int64)


def spike_timing_dataset(
    current_pa: np.ndarray,
    voltage_mv: np.ndarray,
    spike_samples: Sequence[np.ndarray],
    *,
    dt_ms: float,
    stimuli: Sequence[str],
    repetitions: Sequence[int],
    provenance: dict[str, Any],
) -> Dataset:
    """Build a dataset of the spike-timing layout (see the module docstring).

    Args:
        current_pa: Injected current (pA), ``[trial, time]``.
        voltage_mv: Membrane voltage (mV), ``[trial, time]``.
        spike_samples: Per trial, the int sample indices holding a spike (``[spike]``).
        dt_ms: Sampling interval (ms).
        stimuli: Stimulus name of each trial (repetitions share it), length ``trial``.
        repetitions: Repetition number of each trial, length ``trial``.
        provenance: JSON-able record of where the data came from.

    Raises:
        DatasetError: on shapes that do not match or spike samples outside the trace.
    """
    current = np.asarray(current_pa, dtype=np.float32)
    voltage = np.asarray(voltage_mv, dtype=np.float32)
    if current.ndim != 2 or current.shape != voltage.shape:
        raise DatasetError(f"current {current.shape} and voltage {voltage.shape} must both be "
                           "[trial, time] of equal shape")
    n, n_time = current.shape
    if not (len(spike_samples) == len(stimuli) == len(repetitions) == n):
        raise DatasetError(f"need spikes, stimulus and repetition for each of the {n} trials")
    raster = np.zeros((n, n_time, 1), np.float32)
    for i, s in enumerate(spike_samples):
        s = np.asarray(s, dtype=np.int64)
        if s.size and (s.min() < 0 or s.max() >= n_time):
            raise DatasetError(f"trial {i}: spike samples must lie in 0..{n_time - 1}")
        raster[i, s, 0] = 1.0
    classes = tuple(dict.fromkeys(str(s) for s in stimuli))
    ids = np.array([classes.index(str(s)) for s in stimuli], np.int32)
    fields = (
        Field(FieldSpec(SPIKES, "target", "binary", ("soma",), "spikes"), raster),
        Field(FieldSpec(STIMULUS, "group", "categorical", classes=classes), ids),
    )
    return Dataset(
        inputs=current[:, :, None], outputs=voltage[:, :, None], dt_ms=float(dt_ms),
        input_names=("current",), output_names=("voltage",), input_units="pA",
        output_units="mV", families=tuple(str(s) for s in stimuli),
        stimulus_params=tuple(json.dumps({"stimulus": str(s), "repetition": int(r)})
                              for s, r in zip(stimuli, repetitions, strict=True)),
        split=None, provenance=provenance, fields=fields,
    )


# ----------------------------------------------------------------------------- file helpers


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_table(path: Path, what: str) -> np.ndarray:
    """A whitespace numeric text table as float64 ``[row, column]`` (``#`` lines skipped).

    Raises:
        DatasetError: if the file cannot be read, is empty, is ragged or holds non-numbers,
            NaN or inf (naming the file and row).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            rows = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except OSError as exc:
        raise DatasetError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        detail = str(exc).split(";")[0].strip().rstrip(".")
        raise DatasetError(f"{what} {path} is not a numeric table ({detail})") from None
    if rows.size == 0:
        raise DatasetError(f"{what} {path} has no data rows")
    bad = ~np.isfinite(rows)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DatasetError(f"{what} {path}: row {r + 1}, column {c + 1} is {rows[r, c]}; "
                           "every value must be a finite number")
    return rows


def _columns(rows: np.ndarray, expected: int, path: Path, layout: str) -> None:
    if rows.shape[1] != expected:
        raise DatasetError(f"{path} has {rows.shape[1]} columns; the {layout}")


def _consecutive_index(index: np.ndarray, path: Path) -> None:
    """The 2007 sample-index column: integers rising by exactly 1 per row."""
    step = np.diff(index)
    bad = np.flatnonzero(step != 1)
    if bad.size or (index != np.round(index)).any():
        k = int(bad[0]) if bad.size else int(np.flatnonzero(index != np.round(index))[0]) - 1
        k = max(k, 0)
        how = "goes back" if bad.size and step[k] <= 0 else "jumps"
        raise DatasetError(
            f"{path}: sample index {how} from {index[k]:g} to {index[k + 1]:g} at row {k + 2}; "
            "the first column must count samples 0, 1, 2, ... (consecutive integers)"
        )


def _check_spike_samples(s: np.ndarray, first: int, n_time: int, path: Path) -> np.ndarray:
    """Spike sample indices of a ``.spiketimes`` file -> 0-based samples of the trace."""
    if (s < 0).any():
        raise DatasetError(f"{path}: negative spike time {s[s < 0][0]:g}; spike times are "
                           "sample indices >= 0")
    if (s != np.round(s)).any():
        raise DatasetError(f"{path}: spike time {s[s != np.round(s)][0]:g} is not a whole "
                           "sample index")
    if (np.diff(s) <= 0).any():
        k = int(np.flatnonzero(np.diff(s) <= 0)[0])
        raise DatasetError(f"{path}: spike times are not sorted ({s[k]:g} then {s[k + 1]:g} at "
                           f"row {k + 2}); list each spike once, in increasing order")
    out = s.astype(np.int64) - first
    if out.size and (out[0] < 0 or out[-1] >= n_time):
        bad = s[(out < 0) | (out >= n_time)][0]
        raise DatasetError(f"{path}: spike time {bad:g} lies outside the trace's samples "
                           f"{first}..{first + n_time - 1}")
    return out


def _names(value: Any, what: str) -> tuple[str, ...] | None:
    """``None``, ``"00,05"``, ``5`` or a sequence -> tuple of names."""
    if value is None:
        return None
    if isinstance(value, str):
        items: Sequence[Any] = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, int | float) and not isinstance(value, bool):
        items = [value]
    else:
        items = list(value)
    if not items or not all(isinstance(v, str | int) and not isinstance(v, bool) and str(v)
                            for v in items):
        raise ConfigError(f"{what} must be names such as 00,05 (or a list); got {value!r}")
    return tuple(str(v) for v in items)


def _same_name(a: str, b: str) -> bool:
    """Stimulus names match as text, or as numbers (``5`` selects ``05``)."""
    return a == b or (a.isdigit() and b.isdigit() and int(a) == int(b))


def _check_dt(dt_ms: Any) -> None:
    if isinstance(dt_ms, bool) or not isinstance(dt_ms, int | float) or not dt_ms > 0:
        raise ConfigError(f"dt_ms must be a sampling interval > 0 ms, got {dt_ms!r}")


def check_threshold(value: Any) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a finite number (a threshold in mV)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise ConfigError(f"threshold_mv must be a number (mV), got {value!r}")


def import_provenance(name: str, source: Path, paths: Sequence[Path], options: Any,
                **extra: Any) -> dict[str, Any]:
    """The provenance of an import: importer, source, files with SHA-256, options, ``extra``."""
    return {
        "importer": name,
        "source": str(source),
        "files": [p.name for p in paths],
        "sha256": {p.name: sha256_of(p) for p in paths},
        "options": options_to_dict(options),
        "imported_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        **extra,
    }


# ----------------------------------------------------------------------------- 2007


@dataclass(frozen=True)
class QSNMC2007Options:
    """Options of the ``qsnmc2007`` importer.

    Attributes:
        dt_ms: Sampling interval (ms). The files and the competition guide do not state it; the
            organisers' scripts simulate and score at 0.2 ms (5 kHz), which also makes the
            current's autocorrelation time equal the guide's OU tau of 1 ms. Some spike-shape
            features (spikes 1-2 samples wide) would look more natural at ~1 ms, so treat it
            as a parameter and report how scores depend on it.
        stimuli: Stimulus names to import (e.g. ``"00,05"`` or ``["00", "05"]``; ``5`` selects
            ``05``); ``None``: every stimulus in the folder.
        repetitions: Repetition numbers to import (e.g. ``"0,1"``); ``None``: all.
        spikes_from: ``"file"``: spike samples from the ``.spiketimes`` files (which must
            exist); ``"crossing"``: upward crossings of ``threshold_mv`` by the voltage.
        threshold_mv: Crossing level (mV) for ``spikes_from = "crossing"`` and for the
            crossing counts recorded in the provenance.
    """

    dt_ms: float = 0.2
    stimuli: tuple[str, ...] | None = None
    repetitions: tuple[str, ...] | None = None
    spikes_from: str = "file"
    threshold_mv: float = 0.0

    def __post_init__(self) -> None:
        _check_dt(self.dt_ms)
        check_threshold(self.threshold_mv)
        object.__setattr__(self, "stimuli", _names(self.stimuli, "stimuli"))
        object.__setattr__(self, "repetitions", _names(self.repetitions, "repetitions"))
        if self.spikes_from not in ("file", "crossing"):
            raise ConfigError(f"spikes_from must be 'file' or 'crossing', got "
                              f"{self.spikes_from!r}")


def _select(found: Sequence[str], wanted: tuple[str, ...] | None, what: str,
            folder: Path) -> set[str]:
    if wanted is None:
        return set(found)
    missing = [w for w in wanted if not any(_same_name(w, f) for f in found)]
    if missing:
        raise ConfigError(f"{what} {', '.join(missing)} not in {folder}; it holds "
                          f"{', '.join(sorted(set(found)))}")
    return {f for f in found if any(_same_name(w, f) for w in wanted)}


def import_qsnmc2007(folder: str | Path, options: QSNMC2007Options | None = None) -> Dataset:
    """Import a QSNMC 2007 challenge-A folder (see the module docstring for the layout).

    Trials are ordered by stimulus, then repetition. The spike samples of ``.spiketimes`` are
    counted from the first sample index of the matching ``.voltage`` file.

    Args:
        folder: Folder holding ``NN-R.voltage`` (and ``NN-R.spiketimes``) files.
        options: Importer options (default :class:`QSNMC2007Options`).

    Returns:
        The spike-timing dataset; its provenance also records, per trial, the number of spikes
        in the ``.spiketimes`` file and of ``threshold_mv`` crossings (``spike_counts``).

    Raises:
        DatasetError: on an empty folder, a file name not ``NN-R.voltage``, a table with other
            than 3 columns, a sample index that is not consecutive, NaN/inf, repetitions of
            unequal length, a missing ``.spiketimes`` file (``spikes_from = "file"``), or spike
            times that are negative, unsorted, fractional or outside the trace.
        ConfigError: for a requested stimulus or repetition that is not in the folder.
    """
    options = options or QSNMC2007Options()
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"folder not found: {root}; give the folder of NN-R.voltage files")
    entries = []
    for path in sorted(root.glob("*.voltage")):
        m = _NAME_2007.match(path.name)
        if m is None:
            raise DatasetError(f"{path}: expected a name STIMULUS-REPETITION.voltage, e.g. "
                               "00-0.voltage")
        entries.append((m["stimulus"], int(m["rep"]), path))
    if not entries:
        raise DatasetError(f"no NN-R.voltage files in {root}; give the QSNMC 2007 training "
                           "folder")
    stim_keep = _select([e[0] for e in entries], options.stimuli, "stimulus", root)
    rep_keep = _select([str(e[1]) for e in entries], options.repetitions, "repetition", root)
    entries = sorted((e for e in entries if e[0] in stim_keep and str(e[1]) in rep_keep),
                     key=lambda e: (e[0], e[1]))
    currents, voltages, spikes, used, counts = [], [], [], [], []
    for stimulus, rep, path in entries:
        rows = read_table(path, "voltage file")
        _columns(rows, 3, path, "2007 layout has 3: sample index, current (pA), voltage (mV)")
        _consecutive_index(rows[:, 0], path)
        if currents and rows.shape[0] != currents[0].size:
            raise DatasetError(f"{path} has {rows.shape[0]} samples but {used[0].name} has "
                               f"{currents[0].size}; all repetitions must have equal length")
        used.append(path)
        currents.append(rows[:, 1])
        voltages.append(rows[:, 2])
        crossing = crossing_samples(rows[:, 2], options.threshold_mv)
        spk_path = path.with_suffix(".spiketimes")
        from_file = None
        if spk_path.is_file():
            spk = _spiketimes(spk_path)
            from_file = _check_spike_samples(spk, int(rows[0, 0]), rows.shape[0], spk_path)
            used.append(spk_path)
        elif options.spikes_from == "file":
            raise DatasetError(f"{spk_path} is missing; add it or import with "
                               "--option spikes_from=crossing")
        spikes.append(from_file if options.spikes_from == "file" else crossing)
        counts.append({"stimulus": stimulus, "repetition": rep,
                       "file": None if from_file is None else int(from_file.size),
                       "crossings": int(crossing.size)})
    return spike_timing_dataset(
        np.stack(currents), np.stack(voltages), spikes, dt_ms=float(options.dt_ms),
        stimuli=[e[0] for e in entries], repetitions=[e[1] for e in entries],
        provenance=import_provenance("qsnmc2007", root, used, options, spike_counts=counts,
                               dt_note="dt_ms is not stated in the files; chosen by option"),
    )


def _spiketimes(path: Path) -> np.ndarray:
    """Spike sample indices (first column) of a ``.spiketimes`` file; an empty file is none."""
    try:
        if not path.read_bytes().strip():
            return np.zeros(0)
    except OSError as exc:
        raise DatasetError(f"cannot read spike-times file {path}: {exc.strerror or exc}") from None
    rows = read_table(path, "spike-times file")
    if rows.shape[1] > 2:
        raise DatasetError(f"{path} has {rows.shape[1]} columns; a .spiketimes file has 1 or 2 "
                           "(spike sample index, code)")
    return rows[:, 0]


# ----------------------------------------------------------------------------- 2009


@dataclass(frozen=True)
class QSNMC2009Options:
    """Options of the ``qsnmc2009`` importer.

    Attributes:
        dt_ms: Sampling interval (ms); 0.1 for the competition's 10 kHz recordings.
        train_s: Seconds at the start of every repetition meant for training (the competition
            trained on the first 38-39 s of 60 s). Recorded in the provenance as the suggested
            split ``time_segment`` with ``train_ms = 1000 train_s``; it does not split the data.
        stimulus: Name given to the one stimulus of the folder (``families``, ``stimulus``).
        time_column: True if each file starts with a time column (in ``time_unit``); its step
            must equal ``dt_ms`` and both files must share it.
        time_unit: Unit of the time column, ``"s"`` or ``"ms"``.
        threshold_mv: Spikes are the upward crossings of this level (mV).
        current_file: Name of the current file in the folder.
        voltage_file: Name of the voltage file (one column per repetition) in the folder.
    """

    dt_ms: float = 0.1
    train_s: float = 38.0
    stimulus: str = "0"
    time_column: bool = False
    time_unit: str = "s"
    threshold_mv: float = 0.0
    current_file: str = "current.txt"
    voltage_file: str = "voltage_allrep.txt"

    def __post_init__(self) -> None:
        _check_dt(self.dt_ms)
        check_threshold(self.threshold_mv)
        if isinstance(self.train_s, bool) or not isinstance(self.train_s, int | float) or not (
            self.train_s > 0
        ):
            raise ConfigError(f"train_s must be a time > 0 s, got {self.train_s!r}")
        if self.time_unit not in ("s", "ms"):
            raise ConfigError(f"time_unit must be 's' or 'ms', got {self.time_unit!r}")
        object.__setattr__(self, "stimulus", str(self.stimulus))


def _check_time(t: np.ndarray, dt_ms: float, unit: str, path: Path) -> None:
    t_ms = t * (1000.0 if unit == "s" else 1.0)
    steps = np.diff(t_ms)
    bad = np.flatnonzero(np.abs(steps - dt_ms) > 1e-3 * dt_ms)
    if bad.size:
        k = int(bad[0])
        raise DatasetError(
            f"{path}: time column steps by {steps[k]:.6g} ms at row {k + 2} but dt_ms is "
            f"{dt_ms:g}; set --option dt_ms to the file's interval (or fix the time column)"
        )


def import_qsnmc2009(folder: str | Path, options: QSNMC2009Options | None = None) -> Dataset:
    """Import a QSNMC 2009 folder: ``current.txt`` and ``voltage_allrep.txt``.

    Every column of the voltage file is one repetition of the one current; spikes are the
    upward ``threshold_mv`` crossings (:func:`crossing_samples`).

    Raises:
        DatasetError: on a missing file, a current file with other than one column (two with
            ``time_column``), current and voltage of different lengths, NaN/inf, a time column
            whose step is not ``dt_ms``, or ``train_s`` not shorter than the recording.
    """
    options = options or QSNMC2009Options()
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"folder not found: {root}; give the folder holding "
                           f"{options.current_file} and {options.voltage_file}")
    cur_path, volt_path = root / options.current_file, root / options.voltage_file
    for path, what in ((cur_path, "current"), (volt_path, "voltage")):
        if not path.is_file():
            raise DatasetError(f"{what} file {path} is missing; the 2009 layout needs "
                               f"{options.current_file} and {options.voltage_file}")
    cur = read_table(cur_path, "current file")
    volt = read_table(volt_path, "voltage file")
    skip = 1 if options.time_column else 0
    _columns(cur, 1 + skip, cur_path, "2009 layout's current file has one column (pA)"
             + (" after the time column" if skip else ""))
    if volt.shape[1] < 1 + skip:
        raise DatasetError(f"{volt_path} has no repetition columns")
    if cur.shape[0] != volt.shape[0]:
        raise DatasetError(f"{cur_path} has {cur.shape[0]} samples but {volt_path} has "
                           f"{volt.shape[0]}; every repetition must have the current's length")
    if skip:
        _check_time(cur[:, 0], options.dt_ms, options.time_unit, cur_path)
        _check_time(volt[:, 0], options.dt_ms, options.time_unit, volt_path)
        if not np.allclose(cur[:, 0], volt[:, 0], rtol=0, atol=1e-6 * abs(cur[-1, 0]) + 1e-12):
            raise DatasetError(f"{cur_path} and {volt_path} have different time columns")
    n_time = cur.shape[0]
    duration_ms = n_time * options.dt_ms
    train_ms = 1000.0 * float(options.train_s)
    if not train_ms < duration_ms:
        raise ConfigError(f"train_s {options.train_s:g} s is not shorter than the "
                          f"{duration_ms / 1000:g} s recording; choose a smaller train_s")
    voltage = volt[:, skip:].T
    n_rep = voltage.shape[0]
    return spike_timing_dataset(
        np.repeat(cur[None, :, skip], n_rep, axis=0), voltage,
        [crossing_samples(v, options.threshold_mv) for v in voltage],
        dt_ms=float(options.dt_ms), stimuli=[options.stimulus] * n_rep,
        repetitions=list(range(n_rep)),
        provenance=import_provenance(
            "qsnmc2009", root, [cur_path, volt_path], options,
            suggested_split={"strategy": "time_segment", "options": {"train_ms": train_ms}},
        ),
    )


register_importer(Importer(
    "qsnmc2007", "QSNMC 2007 challenge A folder: NN-R.voltage (index, pA, mV) + NN-R.spiketimes",
    QSNMC2007Options, import_qsnmc2007, source="folder"))
register_importer(Importer(
    "qsnmc2009", "QSNMC 2009 folder: current.txt (pA) + voltage_allrep.txt (mV, one column per "
    "repetition)", QSNMC2009Options, import_qsnmc2009, source="folder"))
