"""Importers by name: the one place a source format of external data is registered.

An importer turns files written by someone else (the paper's ``.dat`` folder, CSV, NPZ,
competition recordings, NWB, whole-brain imaging files) into a :class:`Dataset`. Each
:class:`Importer` owns a frozen options dataclass (every field has a default; ``__post_init__``
checks values and raises :class:`ConfigError`) and a ``load(source, options) -> Dataset``
function. ``neuroreduce import NAME SOURCE -o out.h5 --option KEY=VALUE``, the Python
:func:`run_import` and experiment files (``[datasets.x] importer = "NAME"``, ``source``,
``options``) all go through :func:`run_import`, so an importer registered here is usable
everywhere at once.

Adding a source format: write ``load`` and its options dataclass in a module of its own, then
call :func:`register_importer` at the end of that module and list the module in
:data:`_BUILTIN_MODULES` (imported lazily, so optional dependencies such as pynwb load only when
their importer runs).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.errors import ConfigError, DatasetError, unknown_name_error


@dataclass(frozen=True)
class Importer:
    """A registered source format.

    Attributes:
        name: Registry name (``neuroreduce import NAME ...``).
        description: One line: what files, whose layout.
        options: Frozen dataclass type of the importer's options; all fields have defaults.
        load: ``load(source: Path, options) -> Dataset``; the dataset may be unsplit (the caller
            splits it) and must carry provenance naming its source files.
        source: What ``SOURCE`` is, for help text (``"folder"``, ``"file"``, ...).
    """

    name: str
    description: str
    options: type
    load: Callable[[Path, Any], Dataset]
    source: str = "file or folder"


_IMPORTERS: dict[str, Importer] = {}
#: Modules whose import registers built-in importers (loaded on first lookup).
_BUILTIN_MODULES: tuple[str, ...] = (
    "neuroreduce.datasets.importers",
    "neuroreduce.datasets.qsnmc",
    "neuroreduce.datasets.nwb_icephys",
    "neuroreduce.datasets.wholebrain_import",
    "neuroreduce.datasets.neuronio",
)
_loaded = False


def register_importer(importer: Importer) -> Importer:
    """Add ``importer`` to the registry (names are unique)."""
    if importer.name in _IMPORTERS and _IMPORTERS[importer.name] is not importer:
        raise ConfigError(f"importer {importer.name!r} is already registered")
    _IMPORTERS[importer.name] = importer
    return importer


def _load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in _BUILTIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:  # a module not written yet, not a missing dependency
            if exc.name != module:
                raise


def list_importers() -> list[str]:
    """Names of all registered importers, sorted."""
    _load_builtins()
    return sorted(_IMPORTERS)


def get_importer(name: str) -> Importer:
    """The importer registered as ``name``.

    Raises:
        ConfigError: for an unknown name (the message lists the known ones).
    """
    _load_builtins()
    if name not in _IMPORTERS:
        raise unknown_name_error("import format", name, sorted(_IMPORTERS))
    return _IMPORTERS[name]


def importer_options(name: str, values: Mapping[str, Any] | None = None) -> Any:
    """Build and check the options of importer ``name`` from plain values.

    Lists become tuples (options dataclasses are frozen and hashable).

    Raises:
        ConfigError: for an unknown option (naming the known ones) or a bad value.
    """
    importer = get_importer(name)
    known = {f.name: f for f in fields(importer.options)}
    kwargs: dict[str, Any] = {}
    for key, value in (values or {}).items():
        if key not in known:
            raise ConfigError(f"importer {name!r} has no option {key!r}; its options: "
                              f"{', '.join(known) or '(none)'}")
        kwargs[key] = tuple(value) if isinstance(value, list) else value
    missing = [k for k, f in known.items()
               if k not in kwargs and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise ConfigError(f"importer {name!r} needs option {missing[0]!r} "
                          f"(--option {missing[0]}=VALUE)")
    try:
        return importer.options(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"importer {name!r}: {exc}") from None


def options_to_dict(options: Any) -> dict[str, Any]:
    """An options dataclass as a JSON-able table (tuples become lists)."""
    return {f.name: (list(v) if isinstance(v := getattr(options, f.name), tuple) else v)
            for f in fields(options)}


def run_import(name: str, source: str | Path, options: Mapping[str, Any] | Any = None) -> Dataset:
    """Import ``source`` with importer ``name``.

    Args:
        name: A registered importer.
        source: Its file or folder.
        options: Plain values (checked by :func:`importer_options`) or an options instance.

    Returns:
        The dataset (possibly without a split; :func:`neuroreduce.pipeline.import_dataset`
        splits and writes it).

    Raises:
        DatasetError: if ``source`` does not exist, or from the importer (bad files).
        ConfigError: for unknown or bad options.
    """
    importer = get_importer(name)
    if not isinstance(options, importer.options):
        options = importer_options(name, options)
    path = Path(source).expanduser()
    if not path.exists():
        raise DatasetError(f"{path} does not exist; give the {importer.source} of {name!r} data")
    return importer.load(path, options)
