"""Connectome readers for c302, chosen by name.

c302 asks its data reader for ``read_data(include_nonconnected_cells=True)`` (cell names and
connections) and, only when muscles are included, ``read_muscle_data()``. Some readers of the
C. elegans Connectome Toolbox (``cect``) answer that directly; others need an adapter. This module
is the registry of the readers neuroreduce supports:

- ``"default"``: c302's default, ``cect.readers.SpreadsheetDataReader`` (302 neurons, 2279
  chemical and 1084 gap-junction connections, each chemical connection labelled with its
  neurotransmitter).
- ``"varshney"``: Varshney et al. 2011 (the connectome of Barbulescu et al. 2023) through
  :class:`VarshneyAdapter`: non-neuron cells (the single body-wall-muscle node ``BWM``) are
  dropped, cells absent from the data (pharyngeal neurons) are added unconnected, the monadic
  and polyadic rows of a pair are summed into one connection, and each chemical connection gets
  the neurotransmitter class that the default reader gives its presynaptic neuron (Varshney's
  data have none; c302 makes GABA synapses inhibitory and all others excitatory).

Readers are only imported when used (reading a spreadsheet takes ~1 s).
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from neuroreduce.errors import unknown_name_error

#: The name c302 0.12.1 uses for its default reader (``c302.DEFAULT_DATA_READER``).
C302_DEFAULT_READER = "cect.readers.SpreadsheetDataReader"


class ConnectomeReader(Protocol):
    """What c302 needs from a data reader."""

    def read_data(self, include_nonconnected_cells: bool = False) -> tuple[list[str], list[Any]]:
        """Return (cell names, ``cect.ConnectomeReader.ConnectionInfo`` list)."""
        ...

    def read_muscle_data(self) -> tuple[list[str], list[str], list[Any]]:
        """Return (neurons, muscles, neuron-to-muscle connections)."""
        ...


@dataclass(frozen=True)
class ReaderInfo:
    """A registered connectome reader.

    Attributes:
        name: Registry key (``"default"``, ``"varshney"``).
        description: One sentence for help texts and provenance.
        c302_name: The ``data_reader`` string handed to ``c302.generate`` (also shown in the
            generated network's notes).
        factory: Builds the reader object.
        native: True if c302 can load ``c302_name`` by itself; otherwise the generator hands
            c302 the object built by ``factory``.
        revision: Bumped when the reader's output changes (part of the build cache key).
    """

    name: str
    description: str
    c302_name: str
    factory: Callable[[], ConnectomeReader]
    native: bool = False
    revision: int = 1


def _default_reader() -> ConnectomeReader:
    from cect.readers import SpreadsheetDataReader

    return SpreadsheetDataReader.get_instance()


class VarshneyAdapter:
    """Varshney et al. 2011 connectome in the form c302 expects (see module docstring)."""

    def __init__(self) -> None:
        from cect.readers import VarshneyDataReader

        self._reader = VarshneyDataReader.get_instance()

    def read_data(self, include_nonconnected_cells: bool = False) -> tuple[list[str], list[Any]]:
        """Cells and connections, neurons only, chemical synapses labelled by transmitter.

        Args:
            include_nonconnected_cells: Also list the 302 hermaphrodite neurons that have no
                connection in the data (c302 always asks for this).
        """
        from cect.Cells import PREFERRED_HERM_NEURON_NAMES
        from cect.ConnectomeReader import ConnectionInfo

        neurons = set(PREFERRED_HERM_NEURON_NAMES)
        transmitter = _transmitter_by_neuron()
        _, raw = self._reader.read_data()
        merged: dict[tuple[str, str, str, str], int] = {}
        for conn in raw:
            if conn.pre_cell not in neurons or conn.post_cell not in neurons:
                continue
            synclass = conn.synclass
            if "_GJ" not in synclass:
                synclass = transmitter.get(conn.pre_cell, synclass)
            # monadic (S) and polyadic (Sp) rows of one pair become one connection
            key = (conn.pre_cell, conn.post_cell, conn.syntype, synclass)
            merged[key] = merged.get(key, 0) + int(conn.number)
        conns = [
            ConnectionInfo(pre, post, n, kind, cls) for (pre, post, kind, cls), n in merged.items()
        ]
        cells: list[str] = []
        for pre, post, _, _ in merged:
            for cell in (pre, post):
                if cell not in cells:
                    cells.append(cell)
        if include_nonconnected_cells:
            cells.extend(c for c in PREFERRED_HERM_NEURON_NAMES if c not in cells)
        return cells, conns

    def read_muscle_data(self) -> tuple[list[str], list[str], list[Any]]:
        """Varshney's data have no per-muscle connections: no muscles."""
        return [], [], []


def _transmitter_by_neuron() -> dict[str, str]:
    """Most frequent chemical synapse class of each presynaptic neuron in the default reader."""
    _, conns = _default_reader().read_data(include_nonconnected_cells=False)
    counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for conn in conns:
        if "_GJ" not in conn.synclass:
            counts[conn.pre_cell][conn.synclass] += 1
    return {cell: c.most_common(1)[0][0] for cell, c in counts.items()}


READERS: dict[str, ReaderInfo] = {
    "default": ReaderInfo(
        name="default",
        description="c302's default: cect SpreadsheetDataReader (302 neurons, with transmitters)",
        c302_name=C302_DEFAULT_READER,
        factory=_default_reader,
        native=True,
    ),
    "varshney": ReaderInfo(
        name="varshney",
        description=(
            "Varshney et al. 2011 via cect, neurons only, transmitter classes from the default "
            "reader (the connectome of Barbulescu et al. 2023)"
        ),
        c302_name="neuroreduce.varshney",
        factory=VarshneyAdapter,
        revision=2,
    ),
}


def get_reader(name: str) -> ReaderInfo:
    """Return the registered reader called ``name`` (the error lists the known ones)."""
    try:
        return READERS[name]
    except KeyError:
        raise unknown_name_error("connectome reader", name, list(READERS)) from None


def list_readers() -> list[str]:
    """Names of all registered connectome readers."""
    return sorted(READERS)


def load_reader(name: str) -> ConnectomeReader:
    """Instantiate the reader called ``name`` (what c302 will read the connectome from)."""
    return get_reader(name).factory()


def connectome_summary(name: str) -> dict[str, int]:
    """Counts of cells, chemical and gap-junction connections seen by c302 for reader ``name``."""
    cells, conns = load_reader(name).read_data(include_nonconnected_cells=True)
    gap = sum("_GJ" in c.synclass for c in conns)
    return {"cells": len(cells), "chemical": len(conns) - gap, "gap_junction": gap}
