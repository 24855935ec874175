"""Importer ``neuronio``: Beniaguev's pickled L5PC simulation files (NeuronIO), read safely.

Beniaguev, Segev & London (2021, Neuron 109:2727) published their layer-5 pyramidal cell
simulations ("NeuronIO") as Python pickles, one file per batch of simulations (128 runs of
6 s). A pickle runs code when loaded, so this importer reads them with
:class:`RestrictedUnpickler`: only plain containers (dict, list, tuple, set, str, bytes,
numbers) and NumPy arrays, dtypes and scalars are admitted; any other global a file asks for
(``os.system``, ``builtins.eval``, a custom class, ...) is refused with a one-line
:class:`~neuroreduce.errors.DatasetError` before anything from the file runs.

The file layout, reconstructed from the authors' published parsing code (their GitHub
repository ``SingleNeuronAsDeepNet``); it is an assumption (the files themselves cannot be
reached here), and the importer refuses a file that does not match it, naming the key:

* top level: ``{"Params": dict, "Results": {"listOfSingleSimulationDicts": [sim, ...]}}``;
* ``Params["allSegmentsType"]``: one entry per dendritic segment (its length = the number of
  segments ``S``; when absent: the largest segment index in the spike dicts + 1);
  ``Params["totalSimDurationInSec"]``: the duration (s), recorded in the provenance;
* each ``sim``: ``"exInputSpikeTimes"`` and ``"inhInputSpikeTimes"``: dict segment index (int)
  -> array of spike times (ms) of the excitatory / inhibitory input onto that segment;
  ``"somaVoltageLowRes"``: soma voltage at 1 ms, ``[T]`` (mV); ``"outputSpikeTimes"``: soma
  spike times (ms); optional ``"dendriticVoltagesLowRes"``: ``[S, T]`` (mV).

The output is the project's L5PC layout (shared with the ``l5pc`` simulator):

* one trial per simulation, ``T`` samples at ``dt_ms`` (1 ms);
* field ``synapses`` (input, events): channels ``exc_0000 .. exc_{S-1}, inh_0000 ..
  inh_{S-1}`` (units ``spikes``), sparse spike times per channel (ms);
* dense ``inputs``: 0 channels; dense ``outputs``: ``soma_v`` (mV), spike-clipped: every value
  above ``clip_mv`` (-55 mV, NeuronIO's convention) set to ``clip_mv``;
* field ``spikes`` (target, binary, channel ``soma``): 1.0 at sample ``floor(t / dt_ms)`` of
  each output spike time ``t`` (the sample whose interval ``[i dt, (i+1) dt)`` holds it; the
  authors' own parser uses ``int(t - 0.5)``, at most one sample earlier);
* optional fields ``soma_v_raw`` (target, continuous, unclipped soma voltage, mV) and
  ``dend_v`` (target, continuous, ``S`` channels ``seg_0000 ..``, mV) with ``raw_voltage`` /
  ``dendritic`` options;
* ``families[i]``: the ``family`` option (e.g. ``"nmda"``, ``"ampa_only"``: the NeuronIO
  release keeps the two cells in separate folders); ``stimulus_params[i]``: JSON with the file,
  the simulation's index in it and its mean excitatory / inhibitory input rates (Hz per
  channel); ``split`` None; ``provenance``: files with SHA-256, options, the scalar ``Params``.
"""

from __future__ import annotations

import importlib
import io
import json
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.fields import EventTrains, Field, FieldSpec
from neuroreduce.datasets.importer_registry import Importer, register_importer
from neuroreduce.datasets.qsnmc import import_provenance
from neuroreduce.errors import ConfigError, DatasetError

#: Suffixes of pickle files picked up from a source folder.
SUFFIXES: tuple[str, ...] = (".p", ".pkl", ".pickle")

#: The globals a NeuronIO pickle may ask for: NumPy array, dtype and scalar reconstruction
#: (``numpy.core`` in files written with NumPy 1, ``numpy._core`` with NumPy 2; ``_frombuffer``
#: for protocol 5), the few builtin containers that protocol 2 names by reference, and
#: ``_codecs.encode`` (protocol 2 spells ``bytes`` with it). Each only builds data.
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset({
    *((m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray")
      for n in ("_reconstruct", "scalar")),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    *(("builtins", n) for n in ("set", "frozenset", "bytes", "bytearray", "complex")),
    ("_codecs", "encode"),
})


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only plain containers and NumPy arrays (see
    :data:`ALLOWED_GLOBALS`); every other global or persistent id raises
    :class:`DatasetError` (nothing of the file's own code runs).

    Args:
        file: A binary file object.
        name: The file's name, for error messages.
    """

    def __init__(self, file: Any, *, name: str) -> None:
        super().__init__(file, encoding="latin1")  # Python 2 pickles (NeuronIO) hold str data
        self._name = name

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102
        if module == "__builtin__":  # protocol 2's spelling
            module = "builtins"
        if (module, name) not in ALLOWED_GLOBALS:
            raise DatasetError(
                f"{self._name}: refused: the pickle asks for {module}.{name}; only plain "
                "containers and NumPy arrays are allowed (it may run code when loaded)")
        if module.startswith("numpy.core."):  # NumPy 2 keeps these under numpy._core
            try:
                return getattr(importlib.import_module("numpy._core." + module[11:]), name)
            except ImportError:
                pass
        return getattr(importlib.import_module(module), name)

    def persistent_load(self, pid: Any) -> Any:  # noqa: D102
        raise DatasetError(f"{self._name}: refused: the pickle holds a persistent id; only plain "
                           "containers and NumPy arrays are allowed")


def safe_load(path: Path) -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler`.

    Raises:
        DatasetError: if the file asks for anything but containers and arrays, or is not a
            readable pickle.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return RestrictedUnpickler(io.BytesIO(data), name=str(path)).load()
    except DatasetError:
        raise
    except Exception as exc:  # truncated or corrupt pickles raise many types
        raise DatasetError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc})"
                           ) from None


@dataclass(frozen=True)
class NeuronIOOptions:
    """Options of the ``neuronio`` importer.

    Attributes:
        dt_ms: Sampling interval of ``somaVoltageLowRes`` (ms; NeuronIO: 1).
        clip_mv: Soma voltage above this is set to it in ``soma_v`` (mV; NeuronIO: -55).
        family: Label of every imported trial (``families``), e.g. ``"nmda"`` or
            ``"ampa_only"``.
        raw_voltage: Also store the unclipped soma voltage as field ``soma_v_raw``.
        dendritic: Also store ``dendriticVoltagesLowRes`` as field ``dend_v`` (S channels).
        max_simulations: Import at most this many simulations per file (0: all).
    """

    dt_ms: float = 1.0
    clip_mv: float = -55.0
    family: str = "nmda"
    raw_voltage: bool = False
    dendritic: bool = False
    max_simulations: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.dt_ms, bool) or not isinstance(self.dt_ms, int | float) or not (
                np.isfinite(self.dt_ms) and self.dt_ms > 0):
            raise ConfigError(f"dt_ms must be a number > 0 (ms), got {self.dt_ms!r}")
        if isinstance(self.clip_mv, bool) or not isinstance(self.clip_mv, int | float) or not (
                np.isfinite(self.clip_mv)):
            raise ConfigError(f"clip_mv must be a finite number (mV), got {self.clip_mv!r}")
        if not isinstance(self.family, str) or not self.family:
            raise ConfigError(f"family must be a non-empty string, got {self.family!r}")
        for name in ("raw_voltage", "dendritic"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")
        m = self.max_simulations
        if isinstance(m, bool) or not isinstance(m, int) or m < 0:
            raise ConfigError(f"max_simulations must be an integer >= 0, got {m!r}")


def _files(source: Path) -> list[Path]:
    source = Path(source)
    if source.is_file():
        return [source]
    if source.is_dir():
        found = sorted(p for p in source.iterdir() if p.suffix.lower() in SUFFIXES)
        if not found:
            raise DatasetError(f"{source}: no pickle files ({', '.join(SUFFIXES)}) in the folder")
        return found
    raise DatasetError(f"{source}: no such file or folder")


def _get(table: Any, key: str, where: str) -> Any:
    if not isinstance(table, Mapping) or key not in table:
        raise DatasetError(f"{where}: missing key {key!r} (not the NeuronIO layout)")
    return table[key]


def _spike_dict(value: Any, where: str) -> dict[int, np.ndarray]:
    if not isinstance(value, Mapping):
        raise DatasetError(f"{where}: must be a dict segment -> spike times (ms), got "
                           f"{type(value).__name__}")
    out = {}
    for key, times in value.items():
        try:
            seg = int(key)
            t = np.asarray(times, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise DatasetError(f"{where}: entry {key!r} is not segment -> spike times") from None
        if seg < 0 or not np.isfinite(t).all() or (t < 0).any():
            raise DatasetError(f"{where}: segment {key!r}: negative index or spike times that "
                               "are negative or NaN")
        out[seg] = t
    return out


def _simulations(path: Path, doc: Any) -> tuple[Mapping[str, Any], list[Any]]:
    where = str(path)
    if not isinstance(doc, Mapping):
        raise DatasetError(f"{where}: top level must be a dict with 'Params' and 'Results', "
                           f"got {type(doc).__name__}")
    params = _get(doc, "Params", where)
    sims = _get(_get(doc, "Results", where), "listOfSingleSimulationDicts", f"{where}: Results")
    if not isinstance(params, Mapping):
        raise DatasetError(f"{where}: Params must be a dict")
    if not isinstance(sims, list | tuple) or not sims:
        raise DatasetError(f"{where}: Results.listOfSingleSimulationDicts must be a non-empty "
                           "list")
    return params, list(sims)


def _scalar_params(params: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in params.items():
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, bool | int | float | str) and (not isinstance(v, float)
                                                          or np.isfinite(v)):
            out[str(k)] = v
    return out


def load(source: Path, options: NeuronIOOptions) -> Dataset:
    """Import NeuronIO pickle files (a file, or a folder of ``*.p``/``*.pkl``/``*.pickle``).

    Returns:
        The L5PC-layout dataset (module docstring), trials in file order then simulation order.

    Raises:
        DatasetError: for a refused or unreadable pickle, a file not in the layout, traces of
            different lengths, or files with different segment counts.
    """
    paths = _files(Path(source))
    trials: list[dict[str, Any]] = []
    params_of: dict[str, Any] = {}
    n_seg: int | None = None
    for path in paths:
        params, sims = _simulations(path, safe_load(path))
        if options.max_simulations:
            sims = sims[: options.max_simulations]
        params_of[path.name] = _scalar_params(params)
        declared = params.get("allSegmentsType")
        for k, sim in enumerate(sims):
            where = f"{path}: simulation {k}"
            if not isinstance(sim, Mapping):
                raise DatasetError(f"{where}: must be a dict")
            exc = _spike_dict(_get(sim, "exInputSpikeTimes", where), f"{where}: exInputSpikeTimes")
            inh = _spike_dict(_get(sim, "inhInputSpikeTimes", where),
                              f"{where}: inhInputSpikeTimes")
            v = np.asarray(_get(sim, "somaVoltageLowRes", where), dtype=np.float64).ravel()
            if v.size < 2 or not np.isfinite(v).all():
                raise DatasetError(f"{where}: somaVoltageLowRes must be >= 2 finite samples")
            out_t = np.asarray(_get(sim, "outputSpikeTimes", where), dtype=np.float64).ravel()
            if not np.isfinite(out_t).all() or (out_t < 0).any():
                raise DatasetError(f"{where}: outputSpikeTimes has negative or NaN times")
            dend = None
            if options.dendritic:
                dend = np.asarray(_get(sim, "dendriticVoltagesLowRes", where), dtype=np.float64)
                if dend.ndim != 2 or dend.shape[1] != v.size:
                    raise DatasetError(f"{where}: dendriticVoltagesLowRes must be [segments, "
                                       f"{v.size}], got {list(dend.shape)}")
            seg = (len(declared) if declared is not None else
                   1 + max([*exc, *inh, *([dend.shape[0] - 1] if dend is not None else [])],
                           default=-1))
            if n_seg is None:
                n_seg = seg
            if seg != n_seg or max([*exc, *inh], default=-1) >= n_seg:
                raise DatasetError(f"{where}: {seg} segments (or a larger segment index) but "
                                   f"earlier simulations have {n_seg}; import one cell at a time")
            trials.append({"file": path.name, "index": k, "exc": exc, "inh": inh, "v": v,
                           "out": out_t, "dend": dend})
    assert n_seg is not None
    n_time = trials[0]["v"].size
    for tr in trials:
        if tr["v"].size != n_time:
            raise DatasetError(f"{tr['file']}: simulation {tr['index']} has {tr['v'].size} "
                               f"samples, the first has {n_time}; import equal durations")
    return _dataset(Path(source), paths, trials, n_seg, n_time, options, params_of)


def _dataset(source: Path, paths: list[Path], trials: list[dict[str, Any]], n_seg: int,
             n_time: int, options: NeuronIOOptions, params_of: dict[str, Any]) -> Dataset:
    dt = float(options.dt_ms)
    duration = n_time * dt
    n = len(trials)
    names = tuple(f"exc_{j:04d}" for j in range(n_seg)) + tuple(
        f"inh_{j:04d}" for j in range(n_seg))
    times, chans, params = [], [], []
    v_raw = np.empty((n, n_time, 1), np.float32)
    spikes = np.zeros((n, n_time, 1), np.float32)
    for i, tr in enumerate(trials):
        t_list, c_list, counts = [], [], [0, 0]
        for offset, table, which in ((0, tr["exc"], 0), (n_seg, tr["inh"], 1)):
            for seg, t in table.items():
                t = t[t < duration]
                t_list.append(t)
                c_list.append(np.full(t.size, offset + seg, np.int32))
                counts[which] += t.size
        times.append(np.concatenate(t_list) if t_list else np.zeros(0))
        chans.append(np.concatenate(c_list) if c_list else np.zeros(0, np.int32))
        v_raw[i, :, 0] = tr["v"]
        idx = np.floor(tr["out"] / dt).astype(np.int64)
        spikes[i, idx[idx < n_time], 0] = 1.0
        seconds = duration / 1000.0
        params.append(json.dumps({
            "file": tr["file"], "simulation": tr["index"],
            "exc_rate_hz": counts[0] / (n_seg * seconds),
            "inh_rate_hz": counts[1] / (n_seg * seconds),
            "output_spikes": int(tr["out"].size)}))
    fields = [
        Field(FieldSpec("synapses", "input", "events", names, "spikes"),
              EventTrains.from_lists(times, chans, len(names))),
        Field(FieldSpec("spikes", "target", "binary", ("soma",), "spikes"), spikes),
    ]
    if options.raw_voltage:
        fields.append(Field(FieldSpec("soma_v_raw", "target", "continuous", ("soma",), "mV"),
                            v_raw.copy()))
    if options.dendritic:
        dend = np.stack([tr["dend"].T for tr in trials]).astype(np.float32)
        fields.append(Field(FieldSpec("dend_v", "target", "continuous",
                                      tuple(f"seg_{j:04d}" for j in range(n_seg)), "mV"), dend))
    clipped = np.minimum(v_raw, np.float32(options.clip_mv))
    return Dataset(
        inputs=np.zeros((n, n_time, 0), np.float32), outputs=clipped, dt_ms=dt,
        input_names=(), output_names=("soma_v",), input_units="spikes", output_units="mV",
        families=(options.family,) * n, stimulus_params=tuple(params), split=None,
        provenance=import_provenance("neuronio", source, paths, options, params=params_of,
                                     segments=n_seg, layout="neuronio (Beniaguev 2021)"),
        fields=tuple(fields),
    )


register_importer(Importer(
    "neuronio",
    "Beniaguev 2021 NeuronIO pickles (L5PC simulations), read with a restricted unpickler",
    NeuronIOOptions, load, source="file or folder",
))
