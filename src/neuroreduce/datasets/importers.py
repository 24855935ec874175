"""Import datasets from other formats: the paper's ``.dat`` folders, CSV folders, NPZ files.

Every importer returns a :class:`~neuroreduce.datasets.dataset.Dataset` (without a split; use
:func:`~neuroreduce.datasets.splits.with_splits`) and reports malformed input as a one-line
:class:`~neuroreduce.errors.DatasetError` naming the file and, for text files, the line.
Trials (files) are ordered by natural sort of their names (``2.dat`` before ``10.dat``).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.importer_registry import Importer, register_importer
from neuroreduce.errors import ConfigError, DatasetError

#: Column order of the published FCM data of Barbulescu et al. (2023).
PAPER_OUTPUT_NAMES: tuple[str, ...] = ("DB1", "LUAL", "PVR", "VB1")
PAPER_INPUT_NAMES: tuple[str, ...] = ("PLML", "PLMR", "AVBL", "AVBR")

#: Accepted names of the time column in CSV files, with their factor to ms.
TIME_COLUMNS: dict[str, float] = {"t_ms": 1.0, "time_ms": 1.0, "time_s": 1000.0, "t_s": 1000.0}

_REL_DT_TOL = 1e-3  # allowed relative deviation of time steps from uniform


def import_dat_folder(
    folder: str | os.PathLike[str],
    *,
    output_names: Sequence[str] = PAPER_OUTPUT_NAMES,
    input_names: Sequence[str] = PAPER_INPUT_NAMES,
    input_units: str = "a.u.",
    output_units: str = "a.u.",
    pattern: str = "*.dat",
) -> Dataset:
    """Import a folder of the paper's published ``.dat`` files, one trial per file.

    Each file has whitespace-separated columns: a row index, the time in **seconds**, then the
    outputs (``output_names``, default DB1 LUAL PVR VB1), then the inputs (``input_names``,
    default PLML PLMR AVBL AVBR). An optional non-numeric header line, blank lines and lines
    starting with ``#`` are skipped. All files must share one uniform time grid.

    The published files do not state their units, so both default to ``"a.u."``: pass
    ``input_units="nA", output_units="mV"`` if you know the data are currents and voltages.

    Args:
        folder: Folder holding the files.
        output_names: Names of the output columns, in file order.
        input_names: Names of the input columns, in file order.
        input_units: Unit label stored for the inputs.
        output_units: Unit label stored for the outputs.
        pattern: Glob selecting the files in ``folder``.

    Returns:
        Dataset with ``inputs [file, time, input]``, ``outputs [file, time, output]`` and
        ``dt_ms`` inferred from the time column.

    Raises:
        DatasetError: on a missing/empty folder, ragged or non-numeric rows (naming file and
            line), a non-uniform time column, or files of different lengths or time steps.
    """
    files = _list_files(folder, pattern)
    n_out, n_in = len(output_names), len(input_names)
    n_cols = 2 + n_out + n_in
    trials = []
    for path in files:
        rows = _read_whitespace_table(path, n_cols)
        trials.append((path, rows[:, 1] * 1000.0, rows[:, 2 + n_out :], rows[:, 2 : 2 + n_out]))
    return _assemble(
        trials,
        input_names=input_names,
        output_names=output_names,
        input_units=input_units,
        output_units=output_units,
        source={"importer": "dat", "folder": str(folder), "pattern": pattern},
    )


def import_csv_folder(
    folder: str | os.PathLike[str],
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    input_units: str = "nA",
    output_units: str = "mV",
    pattern: str = "*.csv",
) -> Dataset:
    """Import a folder of CSV files, one trial per file, columns chosen by header name.

    Each file starts with a header row. It must contain one time column (``t_ms`` or
    ``time_ms`` in ms, or ``time_s`` / ``t_s`` in seconds) and every name in ``input_names``
    and ``output_names``; other columns are ignored. All files must share one uniform grid.

    Args:
        folder: Folder holding the files.
        input_names: Header names of the input columns, in the order wanted.
        output_names: Header names of the output columns, in the order wanted.
        input_units: Unit of the input columns (default nA).
        output_units: Unit of the output columns (default mV).
        pattern: Glob selecting the files in ``folder``.

    Raises:
        DatasetError: on a missing/empty folder, a missing column, ragged or non-numeric rows
            (naming file and line), or an inconsistent time grid.
    """
    if not input_names or not output_names:
        raise DatasetError("import_csv_folder needs at least one input name and one output name")
    trials = []
    for path in _list_files(folder, pattern):
        header, rows = _read_csv(path)
        time_col = next((c for c in TIME_COLUMNS if c in header), None)
        if time_col is None:
            raise DatasetError(
                f"{path}: no time column; name one of {', '.join(TIME_COLUMNS)} in the header"
            )
        present = set(header)
        missing = [c for c in (*input_names, *output_names) if c not in present]
        if missing:
            raise DatasetError(
                f"{path}: missing column(s) {_name_list(missing)}; header has "
                f"{_name_list(header)}"
            )
        col = {name: i for i, name in enumerate(header)}
        t_ms = rows[:, col[time_col]] * TIME_COLUMNS[time_col]
        inputs = rows[:, [col[c] for c in input_names]]
        outputs = rows[:, [col[c] for c in output_names]]
        trials.append((path, t_ms, inputs, outputs))
    return _assemble(
        trials,
        input_names=input_names,
        output_names=output_names,
        input_units=input_units,
        output_units=output_units,
        source={"importer": "csv", "folder": str(folder), "pattern": pattern},
    )


def import_npz(path: str | os.PathLike[str]) -> Dataset:
    """Import a NumPy ``.npz`` archive (loaded without pickle).

    Required arrays: ``inputs [trial, time, input]``, ``outputs [trial, time, output]``,
    ``dt_ms`` (scalar, ms), ``input_names`` and ``output_names`` (string arrays). Optional:
    ``input_units``, ``output_units`` (scalar strings, default nA / mV), ``families``,
    ``stimulus_params`` (string arrays, one per trial) and ``split`` (ints in 0..2 per trial).

    Raises:
        DatasetError: if the file is missing, not an NPZ archive, lacks a required array, or
            holds arrays of the wrong shape, type or values.
    """
    source = Path(path)
    if not source.is_file():
        raise DatasetError(f"NPZ file not found: {source}; check the path")
    try:
        loaded = np.load(source, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise DatasetError(
                f"{source} holds a single array, not an NPZ archive; save the arrays with "
                "numpy.savez(path, inputs=..., outputs=..., dt_ms=..., input_names=..., "
                "output_names=...)"
            )
        with loaded as npz:
            _check_npz_size(npz, source)  # declared shapes, before anything is decompressed
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DatasetError(f"{source} is not a readable NPZ archive ({detail})") from None
    missing = [
        k for k in ("inputs", "outputs", "dt_ms", "input_names", "output_names") if k not in arrays
    ]
    if missing:
        raise DatasetError(
            f"{source} lacks array(s) {', '.join(missing)}; save them with numpy.savez"
        )
    complex_keys = [k for k in ("inputs", "outputs", "dt_ms") if arrays[k].dtype.kind == "c"]
    if complex_keys:
        raise DatasetError(
            f"{source}: {', '.join(complex_keys)} hold complex values; store real numbers "
            "(e.g. the real part or the magnitude) instead"
        )
    try:
        dt_ms = float(np.asarray(arrays["dt_ms"]).reshape(()))
        inputs = np.asarray(arrays["inputs"], dtype=np.float64)
        outputs = np.asarray(arrays["outputs"], dtype=np.float64)
    except (TypeError, ValueError):
        raise DatasetError(
            f"{source}: inputs/outputs must be numeric arrays and dt_ms one number"
        ) from None
    if inputs.ndim == 3 and inputs.shape[1] < 2:
        raise DatasetError(
            f"{source}: trials need at least 2 time samples, got {inputs.shape[1]}"
        )
    optional = {}
    for key in ("families", "stimulus_params"):
        if key in arrays:
            optional[key] = _strings(arrays[key], key, source)
    if "split" in arrays:
        optional["split"] = _split_codes(arrays["split"], source)
    units = {
        k: _scalar_string(arrays[k], k, source)
        for k in ("input_units", "output_units")
        if k in arrays
    }
    try:
        return Dataset(
            inputs=inputs,
            outputs=outputs,
            dt_ms=dt_ms,
            input_names=_strings(arrays["input_names"], "input_names", source),
            output_names=_strings(arrays["output_names"], "output_names", source),
            provenance=_provenance({"importer": "npz", "path": str(source)}, [source]),
            **units,
            **optional,
        )
    except DatasetError as exc:
        raise DatasetError(f"{source}: {exc}") from None


# --------------------------------------------------------------------------- helpers


def _check_npz_size(npz: Any, source: Path) -> None:
    """Refuse an archive whose arrays declare more than fits in memory (read from the ``.npy``
    headers only: a small compressed archive may declare a huge array)."""
    from neuroreduce.errors import ConfigError
    from neuroreduce.limits import LOAD_COPIES, check_memory, format_bytes, memory_limit

    declared = 0
    for name in npz.zip.namelist():
        with npz.zip.open(name) as f:
            version = np.lib.format.read_magic(f)
            reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                      else np.lib.format.read_array_header_2_0)
            shape, _, dtype = reader(f)
        declared += math.prod(shape) * dtype.itemsize
    try:
        memory_limit()
    except ConfigError as exc:
        raise DatasetError(str(exc)) from None
    check_memory(declared * LOAD_COPIES, what=f"importing {source}",
                 how=f"its arrays declare {format_bytes(declared)} x {LOAD_COPIES} copies",
                 fix="import a smaller file", error=DatasetError)


def _split_codes(value: np.ndarray, source: Path) -> np.ndarray:
    """An NPZ ``split``: integer codes 0 (train), 1 (valid), 2 (test); whole-numbered floats
    pass, strings, booleans, complex and fractional values are refused (one line)."""
    arr = np.asarray(value)
    whole = arr.dtype.kind == "f" and bool(np.all(np.isfinite(arr) & (arr == np.round(arr))))
    if arr.dtype.kind not in "iu" and not whole:
        raise DatasetError(f"{source}: split must hold integers 0 (train), 1 (valid), 2 (test), "
                           f"one per trial; got values of type {arr.dtype}")
    return arr if arr.dtype.kind in "iu" else arr.astype(np.int64)


def _natural_key(path: Path) -> list:
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", path.name)]


def _list_files(folder: str | os.PathLike[str], pattern: str) -> list[Path]:
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"folder not found: {root}; give the folder holding the data files")
    files = sorted((p for p in root.glob(pattern) if p.is_file()), key=_natural_key)
    if not files:
        raise DatasetError(f"no files matching {pattern!r} in {root}")
    return files


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _read_whitespace_table(path: Path, n_cols: int) -> np.ndarray:
    """Parse a whitespace-separated numeric table with ``n_cols`` columns; ``[row, col]``."""
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    first = True
    for number, line in enumerate(_read_lines(path), start=1):
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        if first and not any(_is_number(t) for t in tokens):
            first = False  # a header line (no numbers at all)
            continue
        first = False
        if len(tokens) != n_cols:
            raise DatasetError(
                f"{path}, line {number}: expected {n_cols} columns, found {len(tokens)}"
            )
        rows.append(tokens)
        line_numbers.append(number)
    return _to_float(path, rows, line_numbers)


def _read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    """Parse a CSV file with a header row; return (header names, values ``[row, col]``)."""
    reader = csv.reader(_read_lines(path))
    header: list[str] | None = None
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    for tokens in _csv_rows(reader, path):
        number = reader.line_num
        if not tokens or not "".join(tokens).strip() or tokens[0].lstrip().startswith("#"):
            continue
        tokens = [t.strip() for t in tokens]
        if header is None:
            header = tokens
            if len(set(header)) != len(header):
                raise DatasetError(f"{path}, line {number}: duplicate column names in header")
            continue
        if len(tokens) != len(header):
            raise DatasetError(
                f"{path}, line {number}: expected {len(header)} columns, found {len(tokens)}"
            )
        rows.append(tokens)
        line_numbers.append(number)
    if header is None:
        raise DatasetError(f"{path} is empty; it needs a header row and data rows")
    return header, _to_float(path, rows, line_numbers)


def _csv_rows(reader: Any, path: Path) -> Iterator[list[str]]:
    """The rows of ``reader``; a malformed row (e.g. a field over ``csv.field_size_limit()``
    characters, 131,072 by default: no number is that long) is one line naming the file."""
    try:
        yield from reader
    except csv.Error as exc:
        raise DatasetError(f"{path}, line {reader.line_num}: not a valid CSV row ({exc}); "
                           "check the file") from None


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise DatasetError(f"{path} is not a UTF-8 text file") from None
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from None


def _to_float(path: Path, rows: list[list[str]], line_numbers: list[int]) -> np.ndarray:
    if not rows:
        raise DatasetError(f"{path} has no data rows")
    try:
        values = np.array(rows, dtype=np.float64)
    except ValueError:
        values = None
    if values is not None and np.isfinite(values).all():
        return values
    for tokens, number in zip(rows, line_numbers, strict=True):
        for token in tokens:
            if not _is_number(token) or not math.isfinite(float(token)):
                raise DatasetError(f"{path}, line {number}: value {token!r} is not a finite number")
    raise DatasetError(f"{path}: could not parse the numbers")  # pragma: no cover


def _uniform_dt(path: Path, t_ms: np.ndarray) -> float:
    """The sampling interval (ms) of a uniform, increasing time column."""
    if t_ms.size < 2:
        raise DatasetError(f"{path}: needs at least two time samples")
    steps = np.diff(t_ms)
    dt = float(np.median(steps))
    if not dt > 0 or np.abs(steps - dt).max() > _REL_DT_TOL * dt:
        k = int(np.argmax(np.abs(steps - dt)))
        raise DatasetError(
            f"{path}: time column is not uniform (step {steps[k]:.6g} ms after sample {k}, "
            f"expected {dt:.6g} ms)"
        )
    return dt


def _assemble(
    trials: list[tuple[Path, np.ndarray, np.ndarray, np.ndarray]],
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    input_units: str,
    output_units: str,
    source: dict,
) -> Dataset:
    """Stack per-file ``(path, t_ms, inputs [time, in], outputs [time, out])`` into a Dataset."""
    first_path, first_t, _, _ = trials[0]
    dt_ms = _uniform_dt(first_path, first_t)
    for path, t_ms, _, _ in trials[1:]:
        if t_ms.shape != first_t.shape:
            raise DatasetError(
                f"{path} has {t_ms.size} samples but {first_path.name} has {first_t.size}; all "
                "trials must have the same length"
            )
        dt = _uniform_dt(path, t_ms)
        if abs(dt - dt_ms) > _REL_DT_TOL * dt_ms:
            raise DatasetError(
                f"{path} has time step {dt:.6g} ms but {first_path.name} has {dt_ms:.6g} ms"
            )
    source = {**source, "t0_ms": float(first_t[0])}
    paths = [p for p, *_ in trials]
    return Dataset(
        inputs=np.stack([t[2] for t in trials]),
        outputs=np.stack([t[3] for t in trials]),
        dt_ms=dt_ms,
        input_names=tuple(input_names),
        output_names=tuple(output_names),
        input_units=input_units,
        output_units=output_units,
        families=("imported",) * len(trials),
        stimulus_params=tuple(json.dumps({"source_file": p.name}) for p in paths),
        provenance=_provenance(source, paths),
    )


def _name_list(names: Sequence[str], *, limit: int = 20) -> str:
    """``names`` joined by commas (each cut to 60 characters), at most ``limit`` of them, then
    "... and N more"."""
    shown = ", ".join(n if len(n) <= 60 else n[:57] + "..." for n in names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... and {len(names) - limit} more"


def _provenance(source: dict, paths: list[Path]) -> dict:
    return {
        **source,
        "files": [p.name for p in paths],
        "imported_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _strings(value: np.ndarray, key: str, source: Path) -> tuple[str, ...]:
    arr = np.asarray(value)
    if arr.ndim != 1 or arr.dtype.kind not in "US":
        raise DatasetError(f"{source}: {key} must be a 1-D array of strings")
    return tuple(_text(s) for s in arr.tolist())


def _scalar_string(value: np.ndarray, key: str, source: Path) -> str:
    arr = np.asarray(value)
    if arr.ndim != 0 or arr.dtype.kind not in "US":
        raise DatasetError(f"{source}: {key} must be a single string")
    return _text(arr.item())


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


# ---------------------------------------------------------------------- registry entries


def _names_option(value: Any, what: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = tuple(v.strip() for v in value.split(",") if v.strip())
    if not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{what} must be a list of column names, e.g. PLML,PLMR")
    return tuple(value)


@dataclass(frozen=True)
class TableOptions:
    """Options of the ``dat`` and ``csv`` importers.

    Attributes:
        input_names: Input column names in file order (dat) or header names (csv); ``None``:
            the paper's PLML, PLMR, AVBL, AVBR (dat); csv needs them.
        output_names: Output column names, likewise (dat default: DB1, LUAL, PVR, VB1).
        input_units: Unit label of the inputs (``None``: nA for csv, a.u. for dat).
        output_units: Unit label of the outputs (``None``: mV for csv, a.u. for dat).
        pattern: Glob selecting the files in the folder (``None``: ``*.dat`` / ``*.csv``).
    """

    input_names: tuple[str, ...] | None = None
    output_names: tuple[str, ...] | None = None
    input_units: str | None = None
    output_units: str | None = None
    pattern: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_names", _names_option(self.input_names, "input_names"))
        object.__setattr__(self, "output_names", _names_option(self.output_names, "output_names"))

    def kwargs(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class NPZOptions:
    """Options of the ``npz`` importer.

    Attributes:
        input_units: Unit of the inputs, overriding the file's (``None``: keep it).
        output_units: Unit of the outputs, overriding the file's (``None``: keep it).
    """

    input_units: str | None = None
    output_units: str | None = None


def _load_dat(source: Path, options: TableOptions) -> Dataset:
    return import_dat_folder(source, **options.kwargs())


def _load_csv(source: Path, options: TableOptions) -> Dataset:
    if not options.input_names or not options.output_names:
        raise ConfigError("csv import needs --input-names and --output-names (column names)")
    return import_csv_folder(source, **options.kwargs())


def _load_npz(source: Path, options: NPZOptions) -> Dataset:
    dataset = import_npz(source)
    units = {k: v for k, v in options.__dict__.items() if v is not None}
    return replace(dataset, **units) if units else dataset


register_importer(Importer(
    "dat", "the paper's published folder of whitespace .dat files (Barbulescu et al. 2023)",
    TableOptions, _load_dat, source="folder"))
register_importer(Importer(
    "csv", "a folder of CSV files, one trial each, columns chosen by header name",
    TableOptions, _load_csv, source="folder"))
register_importer(Importer(
    "npz", "one NumPy .npz archive (inputs, outputs, dt_ms, names; loaded without pickle)",
    NPZOptions, _load_npz, source="file"))
