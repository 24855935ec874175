"""The L5PC's NMODL mechanisms: shipped as package data, compiled once, loaded once per process.

The ``.mod`` files in ``mechanisms/`` (Hay et al. 2011 channels, AMPA/NMDA and GABA-A
synapses; sources cited in each file) are compiled with ``nrnivmodl`` into
``<cache>/l5pc_mechanisms/<key>`` where ``<key>`` is the SHA-256 of the files' names and bytes
(:func:`mechanism_key`) and ``<cache>`` is the same cache folder as the c302 builds
(``cache_dir`` argument, ``$NEUROREDUCE_CACHE_DIR`` or the user cache). The build happens in a
temporary folder renamed into place under a file lock, so concurrent workers compile once and
an interrupted build never counts as done. :func:`load_mechanisms` loads the library into this
process's NEURON once (NEURON cannot load the same mechanisms twice).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from neuroreduce._io import write_json_atomic
from neuroreduce.errors import DependencyError
from neuroreduce.simulators.c302_build import _nrnivmodl, cache_root

#: Mechanism suffixes / point processes the cell needs (checked after loading).
REQUIRED = ("NaTa_t", "Nap_Et2", "SKv3_1", "K_Tst", "K_Pst", "Im", "Ih", "SK_E2", "Ca_HVA",
            "Ca_LVAst", "CaDynamics_E2", "AmpaNmda", "GabaA")

_LOADED: Path | None = None


def mod_files() -> dict[str, bytes]:
    """Name -> bytes of every shipped ``.mod`` file, sorted by name."""
    folder = resources.files("neuroreduce.simulators.l5pc") / "mechanisms"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir(), key=lambda p: p.name)
            if p.name.endswith(".mod")}


def mod_hashes() -> dict[str, str]:
    """Name -> SHA-256 of each shipped ``.mod`` file (recorded in dataset provenance)."""
    return {name: hashlib.sha256(data).hexdigest() for name, data in mod_files().items()}


def mechanism_key() -> str:
    """16 hex digits of the SHA-256 over the ``.mod`` files' names and hashes."""
    text = json.dumps(mod_hashes(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ensure_compiled(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder of the compiled mechanisms, compiling them first if needed (~1 min).

    Raises:
        DependencyError: if ``nrnivmodl`` is missing or fails (names its last error lines).
    """
    from filelock import FileLock

    key = mechanism_key()
    root = cache_root(cache_dir).parent / "l5pc_mechanisms"
    final = root / key
    if _library(final) is not None:
        return final
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f"{key}.lock")):
        if _library(final) is not None:
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
        try:
            for name, data in mod_files().items():
                (tmp / name).write_bytes(data)
            proc = subprocess.run([_nrnivmodl(), "."], cwd=tmp, capture_output=True, text=True,
                                  check=False)
            if proc.returncode != 0 or _library(tmp, check_done=False) is None:
                tail = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines()
                        if ln.strip()][-3:]
                raise DependencyError(
                    f"nrnivmodl failed on the L5PC mechanisms (exit {proc.returncode}): "
                    f"{' | '.join(tail) or 'no output'}")
            write_json_atomic(tmp / "build.json", {"key": key, "files_sha256": mod_hashes()})
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final


def import_neuron() -> Any:
    """NEURON's ``h``, imported without the GUI (no "no DISPLAY" warning on headless hosts)."""
    os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
    from neuron import h

    return h


def load_mechanisms(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Compile (if needed) and load the mechanisms into this process's NEURON, once.

    Returns:
        The folder the library was loaded from.

    Raises:
        DependencyError: if other mechanisms with the same names are already loaded (e.g.
            NEURON auto-loaded ``./x86_64`` from the current folder) or loading fails.
    """
    global _LOADED
    if _LOADED is not None:
        return _LOADED
    folder = ensure_compiled(cache_dir)
    h = import_neuron()

    if hasattr(h, "AmpaNmda"):
        raise DependencyError(
            "NEURON already has L5PC mechanisms loaded, probably auto-loaded from ./x86_64 in "
            f"{os.getcwd()}; run from a folder without an x86_64 subfolder")
    library = _library(folder)
    with contextlib.redirect_stdout(io.StringIO()):
        ok = library is not None and h.nrn_load_dll(str(library))
    if not ok:
        raise DependencyError(f"could not load the L5PC mechanisms from {folder}; delete it to "
                              "rebuild it")
    missing = [m for m in REQUIRED if not _has_mechanism(h, m)]
    if missing:
        raise DependencyError(f"the L5PC mechanism library in {folder} lacks {missing}; delete "
                              "it to rebuild it")
    _LOADED = folder
    return folder


def _has_mechanism(h: Any, name: str) -> bool:
    """True if ``name`` is a loaded point process or density mechanism."""
    return hasattr(h, name) or _density_known(name)


def _density_known(name: str) -> bool:
    from neuron import h

    mt = h.MechanismType(0)
    ref = h.ref("")
    for i in range(int(mt.count())):
        mt.select(i)
        mt.selected(ref)
        if ref[0] == name:
            return True
    return False


def _library(folder: Path, *, check_done: bool = True) -> Path | None:
    if check_done and not (folder / "build.json").is_file():
        return None
    import platform

    for arch in (platform.machine(), "x86_64", "arm64", "aarch64"):
        for name in ("libnrnmech.so", "libnrnmech.dylib", ".libs/libnrnmech.so"):
            path = folder / arch / name
            if path.is_file():
                return path
    return None
