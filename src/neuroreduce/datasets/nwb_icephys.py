"""Importer of NWB current-clamp recordings (``nwb_icephys``): one trial per sweep.

A sweep is a ``CurrentClampStimulusSeries`` (the injected current) with its
``CurrentClampSeries`` (the membrane voltage). Sweeps are found in the file's
``intracellular_recordings`` table when it has rows (each row references a stimulus and a
response, possibly a slice of them), otherwise by pairing the stimulus series of
``nwbfile.stimulus`` with the response series of ``nwbfile.acquisition`` by ``sweep_number``.
Rows of other clamp modes (voltage clamp) are skipped.

Values are converted to the spike-timing layout of :mod:`neuroreduce.datasets.qsnmc`
(current pA, voltage mV, spikes at the upward ``threshold_mv`` crossings, a ``stimulus`` group
whose members are the repetitions of one stimulus): SI value = ``data * conversion + offset``,
then scaled by the series' ``unit`` (amperes -> pA, volts -> mV). The sampling interval is the
series' ``rate`` (or its uniform ``timestamps``); every sweep must share it and its length.

Which sweeps are repetitions of one stimulus (option ``repetitions_by``):

* ``"auto"`` (default): sweeps whose stimulus data are equal (within ``data_atol_pa``); a group
  is named after its sweeps' common ``stimulus_description`` where that names only it, else
  ``stimulus<k>``;
* ``"description"``: equal ``stimulus_description`` of the stimulus series;
* ``"column"``: equal values of column ``stimulus_column`` of the intracellular-recordings table;
* ``"data"``: equal stimulus data, groups named ``stimulus<k>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.importer_registry import Importer, register_importer
from neuroreduce.datasets.qsnmc import (
    check_threshold,
    crossing_samples,
    import_provenance,
    spike_timing_dataset,
)
from neuroreduce.errors import ConfigError, DatasetError

#: Unit (lower case) -> factor to pA / mV.
CURRENT_UNITS: dict[str, float] = {"amperes": 1e12, "ampere": 1e12, "amps": 1e12, "a": 1e12,
                                   "na": 1e3, "pa": 1.0}
VOLTAGE_UNITS: dict[str, float] = {"volts": 1e3, "volt": 1e3, "v": 1e3, "mv": 1.0}
GROUPINGS: tuple[str, ...] = ("auto", "description", "column", "data")
_NO_DESCRIPTION = ("", "n/a", "none", "no description")


@dataclass(frozen=True)
class NWBIcephysOptions:
    """Options of the ``nwb_icephys`` importer.

    Attributes:
        repetitions_by: How sweeps of one stimulus are recognised: ``"auto"``, ``"description"``,
            ``"column"`` or ``"data"`` (see the module docstring).
        stimulus_column: Column of the intracellular-recordings table naming each sweep's
            stimulus (for ``repetitions_by = "column"``).
        data_atol_pa: Largest difference (pA) between two stimulus traces counted as equal
            (``"auto"`` and ``"data"``).
        threshold_mv: Spikes are the upward crossings of this level (mV).
        pattern: Glob of the NWB files when the source is a folder.
    """

    repetitions_by: str = "auto"
    stimulus_column: str | None = None
    data_atol_pa: float = 0.0
    threshold_mv: float = 0.0
    pattern: str = "*.nwb"

    def __post_init__(self) -> None:
        if self.repetitions_by not in GROUPINGS:
            raise ConfigError(f"repetitions_by must be one of {', '.join(GROUPINGS)}, got "
                              f"{self.repetitions_by!r}")
        if self.repetitions_by == "column" and not self.stimulus_column:
            raise ConfigError("repetitions_by=column needs --option stimulus_column=NAME (a "
                              "column of the intracellular_recordings table)")
        atol = self.data_atol_pa
        if isinstance(atol, bool) or not isinstance(atol, int | float) or not atol >= 0:
            raise ConfigError(f"data_atol_pa must be a number >= 0 (pA), got {atol!r}")
        check_threshold(self.threshold_mv)


@dataclass
class _Sweep:
    """One stimulus/response pair read from a file (values converted)."""

    file: str
    stimulus_name: str
    response_name: str
    sweep_number: int | None
    description: str
    column: str | None
    current_pa: np.ndarray
    voltage_mv: np.ndarray
    rate_hz: float


def _scale(series: Any, table: dict[str, float], what: str, path: Path) -> float:
    """Factor from the series' SI values to pA / mV. The unit is read as the file declares it
    (pynwb replaces a current-clamp series' unit by the standard one when it reads)."""
    attrs = getattr(series.data, "attrs", None)
    unit = attrs.get("unit", series.unit) if attrs is not None else series.unit
    unit = unit.decode() if isinstance(unit, bytes) else str(unit)
    if unit.lower() not in table:
        raise DatasetError(f"{path}: {what} series {series.name!r} has unit {unit!r}; expected "
                           f"one of {', '.join(sorted(table))}")
    return table[unit.lower()]


def _values(series: Any, start: int, count: int, scale: float) -> np.ndarray:
    data = series.data
    stop = len(data) if count < 0 else start + count
    raw = np.asarray(data[start:stop], dtype=np.float64)
    offset = float(getattr(series, "offset", 0.0) or 0.0)
    return (raw * float(series.conversion) + offset) * scale


def _rate(series: Any, path: Path) -> float:
    if series.rate is not None:
        return float(series.rate)
    t = np.asarray(series.timestamps[:], dtype=np.float64)
    steps = np.diff(t)
    if t.size < 2 or not steps.min() > 0 or np.ptp(steps) > 1e-3 * np.median(steps):
        raise DatasetError(f"{path}: series {series.name!r} has neither a rate nor uniform "
                           "timestamps; a sweep needs one sampling interval")
    return 1.0 / float(np.median(steps))


def _present(ref: Any) -> bool:
    """A table row's reference to a series is there (NWB marks a missing one with -1)."""
    return (ref is not None and getattr(ref, "timeseries", None) is not None
            and ref.idx_start is not None and int(ref.idx_start) >= 0)


def _pairs(nwb: Any, path: Path) -> list[tuple[Any, int, int, Any, int, int, dict]]:
    """``(stimulus, start, count, response, start, count, row columns)`` of every sweep."""
    from pynwb.icephys import CurrentClampSeries, CurrentClampStimulusSeries

    out = []
    table = nwb.intracellular_recordings
    if table is not None and len(table) > 0:
        stims = table.category_tables["stimuli"]["stimulus"]
        resps = table.category_tables["responses"]["response"]
        tables = [table, *table.category_tables.values()]
        for i in range(len(table)):
            s, r = stims[i], resps[i]
            s_ok, r_ok = _present(s), _present(r)
            if s_ok and not isinstance(s.timeseries, CurrentClampStimulusSeries):
                continue  # another clamp mode
            if not s_ok or not r_ok:
                which = "response" if s_ok else "stimulus"
                raise DatasetError(f"{path}: intracellular recording {i} has no {which} series; "
                                   "every sweep needs a stimulus and a response")
            if not isinstance(r.timeseries, CurrentClampSeries):
                raise DatasetError(f"{path}: recording {i}: response {r.timeseries.name!r} is a "
                                   f"{type(r.timeseries).__name__}, not a CurrentClampSeries")
            columns = {c: t[c][i] for t in tables for c in t.colnames
                       if c not in ("stimulus", "response", "electrode")}
            out.append((s.timeseries, int(s.idx_start), int(s.count),
                        r.timeseries, int(r.idx_start), int(r.count), columns))
        return out
    stimuli = [s for s in nwb.stimulus.values() if isinstance(s, CurrentClampStimulusSeries)]
    responses = [s for s in nwb.acquisition.values() if isinstance(s, CurrentClampSeries)]
    by_sweep = {}
    for r in responses:
        if r.sweep_number is None:
            raise DatasetError(f"{path}: response {r.name!r} has no sweep_number and the file has "
                               "no intracellular_recordings table to pair it with its stimulus")
        by_sweep[int(r.sweep_number)] = r
    for s in sorted(stimuli, key=lambda s: (s.sweep_number is None, s.sweep_number or 0)):
        if s.sweep_number is None or int(s.sweep_number) not in by_sweep:
            raise DatasetError(f"{path}: stimulus {s.name!r} (sweep {s.sweep_number}) has no "
                               "CurrentClampSeries response series of the same sweep_number")
        r = by_sweep.pop(int(s.sweep_number))
        out.append((s, 0, -1, r, 0, -1, {}))
    if by_sweep:
        name = next(iter(by_sweep.values())).name
        raise DatasetError(f"{path}: response {name!r} has no CurrentClampStimulusSeries "
                           "stimulus of the same sweep_number")
    return out


def _read_file(path: Path, options: NWBIcephysOptions) -> list[_Sweep]:
    from pynwb import NWBHDF5IO

    try:
        io = NWBHDF5IO(str(path), "r")
        nwb = io.read()
    except Exception as exc:  # h5py/hdmf raise many kinds for a file that is not NWB
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise DatasetError(f"{path} is not a readable NWB file ({detail})") from None
    sweeps = []
    with io:
        for s, s0, sn, r, r0, rn, columns in _pairs(nwb, path):
            column = None
            if options.stimulus_column is not None:
                if options.stimulus_column not in columns:
                    raise DatasetError(
                        f"{path}: no column {options.stimulus_column!r} in the intracellular "
                        f"recordings table; it has {', '.join(columns) or '(none)'}")
                column = str(columns[options.stimulus_column])
            sweeps.append(_Sweep(
                file=path.name, stimulus_name=s.name, response_name=r.name,
                sweep_number=None if r.sweep_number is None else int(r.sweep_number),
                description=str(s.stimulus_description or ""), column=column,
                current_pa=_values(s, s0, sn, _scale(s, CURRENT_UNITS, "stimulus", path)),
                voltage_mv=_values(r, r0, rn, _scale(r, VOLTAGE_UNITS, "response", path)),
                rate_hz=_rate(s, path),
            ))
            rate_r = _rate(r, path)
            if abs(rate_r - sweeps[-1].rate_hz) > 1e-6 * rate_r:
                raise DatasetError(f"{path}: stimulus {s.name!r} is sampled at "
                                   f"{sweeps[-1].rate_hz:g} Hz but its response {r.name!r} at "
                                   f"{rate_r:g} Hz; resample one of them")
    if not sweeps:
        raise DatasetError(f"{path} holds no current-clamp sweeps (CurrentClampStimulusSeries "
                           "with a CurrentClampSeries response)")
    return sweeps


def _groups(sweeps: list[_Sweep], options: NWBIcephysOptions) -> list[str]:
    """The stimulus name of every sweep (equal names = repetitions)."""
    how = options.repetitions_by
    if how == "column":
        return [str(s.column) for s in sweeps]
    if how == "description":
        missing = [s.stimulus_name for s in sweeps if s.description.lower() in _NO_DESCRIPTION]
        if missing:
            raise DatasetError(f"stimulus series {missing[0]!r} has no stimulus_description; "
                               "use --option repetitions_by=data or auto")
        return [s.description for s in sweeps]
    ids: list[int] = []
    firsts: list[np.ndarray] = []
    for s in sweeps:
        k = next((j for j, f in enumerate(firsts) if f.shape == s.current_pa.shape and np.allclose(
            f, s.current_pa, rtol=0, atol=options.data_atol_pa)), None)
        if k is None:
            firsts.append(s.current_pa)
            k = len(firsts) - 1
        ids.append(k)
    names = [f"stimulus{k}" for k in range(len(firsts))]
    if how == "auto":
        for k in range(len(firsts)):
            desc = {s.description for s, i in zip(sweeps, ids, strict=True) if i == k}
            d = next(iter(desc))
            others = {s.description for s, i in zip(sweeps, ids, strict=True) if i != k}
            if len(desc) == 1 and d.lower() not in _NO_DESCRIPTION and d not in others:
                names[k] = d
    return [names[k] for k in ids]


def import_nwb_icephys(source: str | Path, options: NWBIcephysOptions | None = None) -> Dataset:
    """Import NWB current-clamp sweeps from a file or a folder of files (module docstring).

    Trials are ordered by stimulus (in order of first appearance), then by sweep; a trial's
    ``repetition`` counts the sweeps of its stimulus from 0.

    Raises:
        DatasetError: on a file that is not NWB, no current-clamp sweeps, a sweep without its
            response (or stimulus) series, a unit that is not a current / voltage, stimulus
            and response of different lengths or rates, sweeps of unequal length or rate, or
            NaN/inf values.
    """
    options = options or NWBIcephysOptions()
    root = Path(source)
    if root.is_dir():
        files = sorted(p for p in root.glob(options.pattern) if p.is_file())
        if not files:
            raise DatasetError(f"no files matching {options.pattern!r} in {root}")
    else:
        files = [root]
    sweeps = [s for path in files for s in _read_file(path, options)]
    first = sweeps[0]
    for s in sweeps:
        where = f"{s.file}: sweep {s.response_name!r}"
        if s.current_pa.shape != s.voltage_mv.shape:
            raise DatasetError(f"{where} has {s.voltage_mv.size} voltage samples but its "
                               f"stimulus {s.stimulus_name!r} has {s.current_pa.size}")
        if s.voltage_mv.size != first.voltage_mv.size:
            raise DatasetError(f"{where} has {s.voltage_mv.size} samples but "
                               f"{first.response_name!r} has {first.voltage_mv.size}; all sweeps "
                               "must have equal length")
        if abs(s.rate_hz - first.rate_hz) > 1e-6 * first.rate_hz:
            raise DatasetError(f"{where} is sampled at {s.rate_hz:g} Hz but "
                               f"{first.response_name!r} at {first.rate_hz:g} Hz; all sweeps "
                               "must share one sampling rate")
        if not (np.isfinite(s.current_pa).all() and np.isfinite(s.voltage_mv).all()):
            raise DatasetError(f"{where} holds NaN or inf values")
    if first.voltage_mv.size < 2:
        raise DatasetError(f"{first.file}: sweeps need at least 2 samples")
    names = _groups(sweeps, options)
    classes = list(dict.fromkeys(names))
    order = sorted(range(len(sweeps)), key=lambda i: (classes.index(names[i]), i))
    reps, seen = [], dict.fromkeys(classes, 0)
    for i in order:
        reps.append(seen[names[i]])
        seen[names[i]] += 1
    picked = [sweeps[i] for i in order]
    return spike_timing_dataset(
        np.stack([s.current_pa for s in picked]), np.stack([s.voltage_mv for s in picked]),
        [crossing_samples(s.voltage_mv, options.threshold_mv) for s in picked],
        dt_ms=1000.0 / first.rate_hz, stimuli=[names[i] for i in order], repetitions=reps,
        provenance=import_provenance(
            "nwb_icephys", root, files, options,
            sweeps=[{"file": s.file, "stimulus": s.stimulus_name, "response": s.response_name,
                     "sweep_number": s.sweep_number} for s in picked],
        ),
    )


register_importer(Importer(
    "nwb_icephys", "NWB current-clamp sweeps (pynwb): stimulus + response per sweep, repetitions "
    "by stimulus", NWBIcephysOptions, import_nwb_icephys, source="file or folder"))
