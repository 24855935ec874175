"""Read and write datasets as self-describing HDF5 files (schema version 1).

File layout (all names at the root group)::

    inputs            float32 [trial, time, input]   currents, chunked one trial per chunk, gzip
    outputs           float32 [trial, time, output]  recorded signals, chunked likewise
    input_names       utf-8 strings [input]
    output_names      utf-8 strings [output]
    families          utf-8 strings [trial]          stimulus family per trial
    stimulus_params   utf-8 strings [trial]          JSON text per trial
    split             int8 [trial]                   0 train, 1 valid, 2 test (-1 if unassigned)

    attributes:
    format            "neuroreduce.dataset"
    schema_version    1
    dt_ms             float, sampling interval (ms)
    input_units       e.g. "nA"
    output_units      e.g. "mV"
    split_assigned    bool, False if the dataset has no split (``Dataset.split is None``)
    content_hash      Dataset.content_hash() of the stored data (SHA-256 hex)
    metadata_hash     SHA-256 hex of families, stimulus_params and provenance (not covered by
                      content_hash), so corruption anywhere in the content is detected
    provenance        JSON text: the dataset's provenance plus ``created_utc`` and
                      ``neuroreduce_version`` (kept if already present)

Files are written to a temporary name in the target folder and renamed when complete, so an
interrupted or failed write (Ctrl-C, full disk) never leaves a file under the final name.
:func:`load_dataset` checks the format, schema version, every key and the content hash, and
reports any problem as a one-line :class:`~neuroreduce.errors.DatasetError`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np

import neuroreduce
from neuroreduce._io import atomic_path, json_default
from neuroreduce.datasets.dataset import Dataset
from neuroreduce.errors import DatasetError

FORMAT_NAME = "neuroreduce.dataset"
SCHEMA_VERSION = 1

_ARRAY_KEYS = ("inputs", "outputs")
_STRING_KEYS = ("input_names", "output_names", "families", "stimulus_params")
_ATTR_KEYS = (
    "dt_ms",
    "input_units",
    "output_units",
    "content_hash",
    "metadata_hash",
    "provenance",
)


def save_dataset(dataset: Dataset, path: str | os.PathLike[str]) -> Path:
    """Write ``dataset`` to ``path`` atomically (parent folders are created).

    Args:
        dataset: The dataset to store.
        path: Target file, conventionally ``*.h5``; replaced if it exists.

    Returns:
        The path written.

    Raises:
        DatasetError: if the file cannot be written (e.g. full disk, no permission); nothing
            is left under ``path`` or beside it.
    """
    target = Path(path)
    if target.is_dir():
        raise DatasetError(f"cannot write dataset to {target}: it is a folder; give a file name")
    provenance = dict(dataset.provenance)
    provenance.setdefault("created_utc", datetime.now(UTC).isoformat(timespec="seconds"))
    provenance.setdefault("neuroreduce_version", neuroreduce.__version__)
    try:
        provenance_text = json.dumps(provenance, sort_keys=True, default=json_default)
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"dataset provenance is not JSON-serialisable: {exc}") from None
    try:
        with atomic_path(target) as tmp, h5py.File(tmp, "w") as f:
            _write(f, dataset, provenance_text)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise DatasetError(
            f"could not write dataset to {target}: {reason}; free disk space or choose another path"
        ) from None
    return target


def load_dataset(path: str | os.PathLike[str]) -> Dataset:
    """Read and verify a dataset file written by :func:`save_dataset`.

    Raises:
        DatasetError: if the file is missing, not HDF5, truncated, lacks a key, has another
            schema version, or its content hash does not match its data.
    """
    source = Path(path)
    if not source.is_file():
        raise DatasetError(
            f"dataset file not found: {source}; create it with `neuroreduce simulate` or an "
            "importer, or check the path"
        )
    try:
        f = h5py.File(source, "r")
    except OSError:
        raise DatasetError(
            f"{source} is not a readable HDF5 file (corrupt or truncated); recreate it"
        ) from None
    try:
        with f:
            dataset, stored_hash = _read(f, source)
    except DatasetError:
        raise
    except (OSError, KeyError, ValueError, TypeError, UnicodeDecodeError, RuntimeError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DatasetError(f"{source} is corrupt or truncated ({detail}); recreate it") from None
    if dataset.content_hash() != stored_hash:
        raise DatasetError(
            f"{source} is corrupt: its data do not match the stored content hash; recreate it"
        )
    return dataset


def _write(f: h5py.File, dataset: Dataset, provenance_text: str) -> None:
    n_trials = dataset.n_trials
    for key in _ARRAY_KEYS:
        arr = getattr(dataset, key)
        chunked = all(d > 0 for d in arr.shape)
        f.create_dataset(
            key,
            data=arr,
            dtype=np.float32,
            chunks=(1, *arr.shape[1:]) if chunked else None,
            compression="gzip" if chunked else None,
            compression_opts=4 if chunked else None,
            shuffle=chunked,
        )
    text = h5py.string_dtype(encoding="utf-8")
    for key in _STRING_KEYS:
        f.create_dataset(key, data=np.array(getattr(dataset, key), dtype=object), dtype=text)
    split = dataset.split if dataset.split is not None else np.full(n_trials, -1, np.int8)
    f.create_dataset("split", data=np.asarray(split, dtype=np.int8))
    f.attrs["format"] = FORMAT_NAME
    f.attrs["schema_version"] = SCHEMA_VERSION
    f.attrs["split_assigned"] = dataset.split is not None
    f.attrs["dt_ms"] = float(dataset.dt_ms)
    f.attrs["input_units"] = dataset.input_units
    f.attrs["output_units"] = dataset.output_units
    f.attrs["content_hash"] = dataset.content_hash()
    f.attrs["provenance"] = provenance_text
    f.attrs["metadata_hash"] = _metadata_hash(
        dataset.families, dataset.stimulus_params, provenance_text
    )


def _read(f: h5py.File, source: Path) -> tuple[Dataset, str]:
    fmt = _attr_str(f, "format", source) if "format" in f.attrs else ""
    if fmt != FORMAT_NAME:
        raise DatasetError(
            f"{source} is an HDF5 file but not a neuroreduce dataset (format {fmt!r}); "
            "import it with an importer instead"
        )
    version = f.attrs.get("schema_version")
    if version is None or int(version) != SCHEMA_VERSION:
        raise DatasetError(
            f"{source} has dataset schema version {version}, this neuroreduce reads "
            f"{SCHEMA_VERSION}; recreate the file or use a matching neuroreduce version"
        )
    missing = [k for k in (*_ARRAY_KEYS, *_STRING_KEYS, "split") if k not in f]
    missing += [k for k in _ATTR_KEYS if k not in f.attrs]
    if missing:
        raise DatasetError(f"{source} lacks {', '.join(missing)}; recreate the file")
    strings = {k: tuple(str(s) for s in f[k].asstr()[()]) for k in _STRING_KEYS}
    split = np.asarray(f["split"][()], dtype=np.int8)
    assigned = bool(f.attrs.get("split_assigned", not (split == -1).all()))
    provenance_text = _attr_str(f, "provenance", source)
    meta = _metadata_hash(strings["families"], strings["stimulus_params"], provenance_text)
    if meta != _attr_str(f, "metadata_hash", source):
        raise DatasetError(
            f"{source} is corrupt: its metadata do not match the stored hash; recreate it"
        )
    try:
        provenance = json.loads(provenance_text)
    except json.JSONDecodeError:
        raise DatasetError(f"{source} has unreadable provenance JSON; recreate it") from None
    try:
        dataset = Dataset(
            inputs=f["inputs"][()],
            outputs=f["outputs"][()],
            dt_ms=float(f.attrs["dt_ms"]),
            input_names=strings["input_names"],
            output_names=strings["output_names"],
            input_units=_attr_str(f, "input_units", source),
            output_units=_attr_str(f, "output_units", source),
            families=strings["families"],
            stimulus_params=strings["stimulus_params"],
            split=split if assigned else None,
            provenance=provenance,
        )
    except DatasetError as exc:
        raise DatasetError(f"{source}: {exc}") from None
    return dataset, _attr_str(f, "content_hash", source)


def _metadata_hash(families: Sequence[str], params: Sequence[str], provenance: str) -> str:
    text = json.dumps([list(families), list(params), provenance])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _attr_str(f: h5py.File, key: str, source: Path) -> str:
    value = f.attrs[key]
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if not isinstance(value, str):
        raise DatasetError(f"{source}: attribute {key!r} should be text; recreate the file")
    return value


