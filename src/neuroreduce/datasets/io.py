"""Read and write datasets as self-describing HDF5 files (schema version 2; version 1 loads).

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

    fields/<name>/    (schema 2) one group per typed field (:mod:`neuroreduce.datasets.fields`):
        attrs          spec (JSON of ``FieldSpec.to_dict()``)
        values         dense values: float32 / int16 [trial, time, channel] (chunked per trial),
                       bool mask, or int32 [trial] group ids
        times_ms, channels, offsets   events instead of ``values`` (float64 / int32 / int64)
        availability   optional bool [group member, channel]

Schema 1 files are schema 2 files without ``fields``; both load. A dataset with no typed fields
has the same content hash in either.

Files are written to a temporary name in the target folder and renamed when complete, so an
interrupted or failed write (Ctrl-C, full disk) never leaves a file under the final name.
:func:`load_dataset` checks the format, schema version, every key and the content hash, and
reports any problem as a one-line :class:`~neuroreduce.errors.DatasetError`. Arrays must be
stored inside the file: external links, soft links, HDF5 external storage and virtual datasets
are refused before anything is read (:func:`check_stored_inside`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np

import neuroreduce
from neuroreduce._io import (
    check_output_target,
    describe_os_error,
    json_default,
    write_bytes_atomic,
)
from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.fields import EventTrains, Field, FieldSpec
from neuroreduce.errors import DatasetError, OutputError
from neuroreduce.limits import check_dataset_file

FORMAT_NAME = "neuroreduce.dataset"
SCHEMA_VERSION = 2
#: Schema versions this code reads.
READABLE_VERSIONS: tuple[int, ...] = (1, 2)
FIELDS_GROUP = "fields"

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
        DatasetError: if the file cannot be written (e.g. full disk, no permission) or
            ``path`` is not a regular file or a new name (see :mod:`neuroreduce._io`); nothing
            is left under ``path`` or beside it.
    """
    try:
        target = check_output_target(path)
    except OutputError as exc:
        raise DatasetError(str(exc)) from None
    provenance = dict(dataset.provenance)
    provenance.setdefault("created_utc", datetime.now(UTC).isoformat(timespec="seconds"))
    provenance.setdefault("neuroreduce_version", neuroreduce.__version__)
    try:
        provenance_text = json.dumps(provenance, sort_keys=True, default=json_default)
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"dataset provenance is not JSON-serialisable: {exc}") from None
    # HDF5 writes into memory and Python writes the bytes: a full disk is then a plain OSError
    # (HDF5 itself raises RuntimeError and can crash while closing a file it failed to write).
    try:
        buffer = io.BytesIO()
        with h5py.File(buffer, "w") as f:
            _write(f, dataset, provenance_text)
        write_bytes_atomic(target, buffer.getbuffer())
    except OutputError as exc:
        raise DatasetError(f"could not write dataset: {exc}") from None
    except OSError as exc:
        raise DatasetError(f"could not write dataset: {describe_os_error(exc, target)}") from None
    return Path(path)


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
            check_stored_inside(f, source)  # before anything else opens an array or a link
            check_dataset_file(f, source)  # declared sizes, before any data is read
            dataset, stored_hash = _read(f, source)
    except DatasetError:
        raise
    except (OSError, KeyError, ValueError, TypeError, UnicodeDecodeError, RuntimeError,
            AttributeError) as exc:  # AttributeError: a corrupt link, e.g. a Datatype
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
    f.attrs["outputs_missing"] = bool(np.isnan(dataset.outputs).any())
    f.attrs["content_hash"] = dataset.content_hash()
    f.attrs["provenance"] = provenance_text
    f.attrs["metadata_hash"] = _metadata_hash(
        dataset.families, dataset.stimulus_params, provenance_text
    )
    group = f.create_group(FIELDS_GROUP)
    for i, fld in enumerate(dataset.fields):
        _write_field(group.create_group(fld.name), fld, order=i)


def _write_field(g: h5py.Group, fld: Field, *, order: int) -> None:
    g.attrs["spec"] = json.dumps(fld.spec.to_dict(), sort_keys=True)
    g.attrs["order"] = order
    v = fld.values
    if isinstance(v, EventTrains):
        for key in ("times_ms", "channels", "offsets"):
            arr = getattr(v, key)
            g.create_dataset(key, data=arr, compression="gzip" if arr.size else None)
    else:
        arr = np.asarray(v)
        chunked = arr.ndim == 3 and all(d > 0 for d in arr.shape)
        g.create_dataset(
            "values", data=arr, chunks=(1, *arr.shape[1:]) if chunked else None,
            compression="gzip" if chunked else None, shuffle=chunked,
        )
    if fld.availability is not None:
        g.create_dataset("availability", data=np.asarray(fld.availability, dtype=np.bool_))


def read_field_specs(f: h5py.File) -> list[tuple[h5py.Group, FieldSpec]]:
    """The typed fields' groups and specs of an open file, in stored order (none in schema 1)."""
    if FIELDS_GROUP not in f:
        return []
    out = []
    for name, g in f[FIELDS_GROUP].items():
        spec_dict = json.loads(str(g.attrs["spec"]))
        spec = FieldSpec(**{**spec_dict, "channels": tuple(spec_dict["channels"]),
                            "classes": tuple(spec_dict["classes"])})
        if spec.name != name:
            raise DatasetError(f"field group {name!r} holds the spec of {spec.name!r}")
        out.append((int(g.attrs.get("order", 0)), g, spec))
    return [(g, spec) for _, g, spec in sorted(out, key=lambda t: t[0])]


def read_field(g: h5py.Group, spec: FieldSpec, trials: np.ndarray | None = None) -> Field:
    """Read one field (all trials, or the sorted trial indices ``trials``)."""
    if spec.kind == "events":
        offsets = g["offsets"][()]
        if trials is None:
            values: np.ndarray | EventTrains = EventTrains(
                g["times_ms"][()], g["channels"][()], offsets, spec.n_channels
            )
        else:  # only the events of these trials are read
            spans = [(int(offsets[i]), int(offsets[i + 1])) for i in np.asarray(trials)]
            values = EventTrains.from_lists(
                [g["times_ms"][a:b] for a, b in spans], [g["channels"][a:b] for a, b in spans],
                spec.n_channels,
            )
    else:
        dset = g["values"]
        values = dset[()] if trials is None else dset[np.asarray(trials)]
    availability = g["availability"][()] if "availability" in g else None
    return Field(spec, values, availability)


def _read(f: h5py.File, source: Path) -> tuple[Dataset, str]:
    fmt = _attr_str(f, "format", source) if "format" in f.attrs else ""
    if fmt != FORMAT_NAME:
        raise DatasetError(
            f"{source} is an HDF5 file but not a neuroreduce dataset (format {fmt!r}); "
            "import it with an importer instead"
        )
    check_version(f, source)
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
            fields=tuple(read_field(g, spec) for g, spec in read_field_specs(f)),
        )
    except DatasetError as exc:
        raise DatasetError(f"{source}: {exc}") from None
    return dataset, _attr_str(f, "content_hash", source)


def check_version(f: h5py.File, source: Path) -> int:
    """The file's schema version, if this code reads it (else a one-line DatasetError)."""
    version = f.attrs.get("schema_version")
    if version is None or int(version) not in READABLE_VERSIONS:
        raise DatasetError(
            f"{source} has dataset schema version {version}, this neuroreduce reads "
            f"{' and '.join(map(str, READABLE_VERSIONS))}; recreate the file or use a matching "
            "neuroreduce version"
        )
    return int(version)


def check_stored_inside(f: h5py.File, source: Path) -> None:
    """Refuse a file whose arrays are not stored inside it (one-line DatasetError naming one).

    Walks every link of the file (each group once, so hard-link cycles end) before any array is
    opened: external links and soft links (which may lead into other files), HDF5 external
    storage (raw bytes of any file, e.g. ``/etc/passwd``) and virtual datasets (arrays mapped
    from other files) are refused. :func:`save_dataset` writes none of them.
    """
    seen, todo = {f}, [f]
    while todo:
        group = todo.pop()
        for name in group:
            link = group.get(name, getlink=True)
            where = f"{group.name.rstrip('/')}/{name}".lstrip("/")
            if isinstance(link, h5py.ExternalLink):
                why = f"an external link to {link.filename}:{link.path}"
            elif isinstance(link, h5py.SoftLink):
                why = f"a soft link to {link.path}"
            elif not isinstance(link, h5py.HardLink):
                why = f"a link of type {type(link).__name__}"
            elif isinstance(obj := group[name], h5py.Dataset) and obj.is_virtual:
                why = "a virtual dataset (mapped from other files)"
            elif isinstance(obj, h5py.Dataset) and obj.external:
                files = sorted({str(e[0]) for e in obj.external})
                why = f"stored in external file(s) {', '.join(files)}"
            else:
                if isinstance(obj, h5py.Group) and obj not in seen:
                    seen.add(obj)
                    todo.append(obj)
                continue
            raise DatasetError(
                f"{source}: array {where!r} is {why}, not stored inside the file; refusing to "
                "read it (neuroreduce datasets hold their own arrays); recreate the file"
            )


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


