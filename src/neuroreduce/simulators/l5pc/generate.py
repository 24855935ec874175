"""Generate an L5PC dataset at scale: trials in worker processes or on Ray, resumable.

:func:`generate` simulates ``n_trials`` trials of an :class:`L5PCSpec` and assembles the
dataset in the layout shared with the NeuronIO importer (docs/l5pc.md):

* input field ``synapses`` (events): ``exc_0000 .. exc_<n-1>, inh_0000 .. inh_<n-1>``, one
  excitatory and one inhibitory channel per dendritic segment; dense ``inputs`` has 0 channels;
* dense ``outputs``: ``soma_v`` (mV) clipped at ``clip_mv`` (-55 mV: NeuronIO's convention);
* target ``spikes`` (binary ``[trial, time, 1]``): 1 at the sample ``floor(t / dt_out)`` of
  every somatic 0 mV upward crossing;
* optional ``soma_v_raw`` (unclipped) and ``dend_v`` (channel segments' voltages).

**Resumable chunks.** Every finished trial is written at once, atomically, as
``trial_<k>.npz`` into a folder keyed by the spec hash (:func:`spec_hash`, which leaves out the
number of trials, so asking for more trials later reuses the finished ones): beside the output
file (``.<name>.l5pc/<hash>/``) or, without one, under the cache folder. A rerun after an
interrupt simulates only the missing trials; the chunks are removed once the dataset is
written. Trials are deterministic (each starts from the same resting state and draws its
events from ``SeedSequence([seed, trial])``), so any backend and any interruption give the
same numbers as one serial run.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import io
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce._io import write_bytes_atomic
from neuroreduce.errors import ConfigError, DatasetError, SimulationError
from neuroreduce.execution import Backend, run_tasks
from neuroreduce.simulators.l5pc.cell import CellConfig
from neuroreduce.simulators.l5pc.inputs import InputConfig, channel_names, draw_trial
from neuroreduce.simulators.l5pc.simulate import RunConfig, TrialRunner

#: Environment variable naming the morphology when no path is given.
MORPHOLOGY_ENV = "NEUROREDUCE_L5PC_MORPHOLOGY"
#: Default morphology, relative to the current folder (the shared data beside the repository).
DEFAULT_MORPHOLOGY = "../shared/data/l5pc/cell1.asc"
#: NeuronIO's clip level of the regression target (mV).
CLIP_MV = -55.0
#: Fault injection for tests: stop (SimulationError) after this many trials were written.
STOP_AFTER_ENV = "NEUROREDUCE_L5PC_STOP_AFTER"
#: Peak AMPA (and NMDA) conductance per excitatory event of the NMDA cell (nS).
NMDA_EXC_GMAX_NS = 0.4
#: Peak AMPA conductance per excitatory event of the AMPA-only cell (nS), calibrated so that it
#: fires like the NMDA cell under the same inputs (docs/l5pc.md, "Calibration", "AMPA-only"),
#: as Beniaguev et al. (2021) raised their AMPA-only cell's excitation to match the firing rate.
AMPA_ONLY_EXC_GMAX_NS = 1.25


def default_morphology() -> str:
    """``$NEUROREDUCE_L5PC_MORPHOLOGY``, else ``../shared/data/l5pc/cell1.asc``."""
    return os.environ.get(MORPHOLOGY_ENV) or DEFAULT_MORPHOLOGY


@dataclass(frozen=True)
class L5PCSpec:
    """Everything that determines the simulated trials (the spec hash covers all of it).

    Attributes:
        morphology: Neurolucida reconstruction (path).
        duration_ms: Trial length (ms); ``duration_ms / dt_out_ms + 1`` samples.
        dt_out_ms: Sampling interval of the outputs (ms).
        dt_ms: NEURON's fixed integration step (ms).
        cvode: Use CVODE (variable step) instead.
        seed: Seed of the input spike trains (trial ``k``: ``SeedSequence([seed, k])``).
        nmda: Excitatory synapses with NMDA (family ``nmda``) or AMPA only (``ampa_only``).
        nseg_rule: Segments per section: ``"hay"`` (639 channels) or ``"d_lambda"``.
        max_channels: Use only the first this many dendritic segments as channels (tiny runs).
        n_channels: Channels per population the inputs are meant for (NeuronIO: 639); the
            cell's dendritic segment count must equal it (``None``: take the cell's count).
        inputs: Rate statistics of the spike trains.
        exc_gmax_ns: Peak AMPA (and NMDA) conductance per excitatory event (nS); ``None``
            (default): :data:`NMDA_EXC_GMAX_NS` (0.4) for the NMDA cell, the calibrated
            :data:`AMPA_ONLY_EXC_GMAX_NS` for the AMPA-only cell, resolved at construction
            (so ``dataclasses.replace(spec, nmda=False)`` keeps the NMDA cell's 0.4 nS: pass
            ``exc_gmax_ns=None`` with it for the calibrated value).
        inh_gmax_ns: Peak GABA-A conductance per inhibitory event (nS).
        record_dendrites: Add the field ``dend_v`` (voltage of every channel's segment).
        keep_raw: Add the field ``soma_v_raw`` (the unclipped soma voltage).
        clip_mv: Clip level of the dense ``soma_v`` output (mV).
    """

    morphology: str = field(default_factory=default_morphology)
    duration_ms: float = 6000.0
    dt_out_ms: float = 1.0
    dt_ms: float = 0.025
    cvode: bool = False
    seed: int = 0
    nmda: bool = True
    nseg_rule: str = "hay"
    max_channels: int | None = None
    n_channels: int | None = None
    inputs: InputConfig = field(default_factory=InputConfig)
    exc_gmax_ns: float | None = None
    inh_gmax_ns: float = 1.0
    record_dendrites: bool = False
    keep_raw: bool = False
    clip_mv: float = CLIP_MV

    def __post_init__(self) -> None:
        if isinstance(self.inputs, dict):
            object.__setattr__(self, "inputs", InputConfig(**self.inputs))
        if self.exc_gmax_ns is None:
            object.__setattr__(self, "exc_gmax_ns",
                               NMDA_EXC_GMAX_NS if self.nmda else AMPA_ONLY_EXC_GMAX_NS)
        if not (isinstance(self.duration_ms, int | float) and np.isfinite(self.duration_ms)
                and self.duration_ms > 0):
            raise ConfigError(f"duration_ms must be a number > 0, got {self.duration_ms!r}")
        steps = self.duration_ms / self.dt_out_ms
        if abs(steps - round(steps)) > 1e-6:
            raise ConfigError(f"duration {self.duration_ms} ms is not a whole number of "
                              f"dt_out = {self.dt_out_ms} ms samples")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")
        self.cell_config()  # checks the cell options
        self.run_config()

    @property
    def family(self) -> str:
        """The trials' input regime label: ``"nmda"`` or ``"ampa_only"``."""
        return "nmda" if self.nmda else "ampa_only"

    @property
    def n_time(self) -> int:
        """Samples per trial."""
        return int(round(self.duration_ms / self.dt_out_ms)) + 1

    def cell_config(self) -> CellConfig:
        """The cell of this spec."""
        return CellConfig(morphology=str(self.morphology), nseg_rule=self.nseg_rule,
                          nmda=self.nmda, exc_gmax_ns=self.exc_gmax_ns,
                          inh_gmax_ns=self.inh_gmax_ns, max_channels=self.max_channels)

    def run_config(self) -> RunConfig:
        """How trials of this spec are integrated and recorded."""
        return RunConfig(dt_ms=self.dt_ms, dt_out_ms=self.dt_out_ms, cvode=self.cvode,
                         record_dendrites=self.record_dendrites)


def morphology_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of the morphology file (one-line DatasetError if it cannot be read)."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise DatasetError(f"morphology file {path} cannot be read ({exc.strerror}); pass the "
                           f"path of a Neurolucida .asc file (or set ${MORPHOLOGY_ENV})") from None


def spec_hash(spec: L5PCSpec) -> str:
    """16 hex digits over the spec (not the morphology's path: its SHA-256), the mechanism
    files, and the NEURON version."""
    from neuroreduce.simulators.l5pc.mechanisms import mechanism_key

    fields = dataclasses.asdict(spec)
    fields["morphology"] = morphology_sha256(spec.morphology)
    fields["mechanisms"] = mechanism_key()
    fields["neuron"] = _neuron_version()
    text = json.dumps(fields, sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def chunk_folder(spec: L5PCSpec, out: str | os.PathLike[str] | None,
                 cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the finished trials of ``spec`` are kept until the dataset is written."""
    if out is not None:
        out = Path(out)
        return out.parent / f".{out.name}.l5pc" / spec_hash(spec)
    from neuroreduce.simulators.c302_build import cache_root

    return cache_root(cache_dir).parent / "l5pc_trials" / spec_hash(spec)


def generate(
    spec: L5PCSpec,
    n_trials: int,
    *,
    out: str | os.PathLike[str] | None = None,
    backend: Backend | None = None,
    progress: bool = True,
    keep_chunks: bool = False,
    split_seed: int | None = None,
) -> Any:
    """Simulate ``n_trials`` trials of ``spec`` (resuming finished ones) and build the dataset.

    Args:
        spec: The cell, inputs and integration settings.
        n_trials: Number of trials (trial ``k`` is the same whatever ``n_trials``).
        out: Dataset file to write (HDF5, atomically); its chunk folder sits beside it.
        backend: Where trials run (default: this process); local worker processes or Ray.
        progress: Show a progress bar.
        keep_chunks: Keep the per-trial chunk files after the dataset is written.
        split_seed: Seed of the train/valid/test split (default: ``spec.seed``).

    Returns:
        The :class:`~neuroreduce.datasets.dataset.Dataset` (provenance includes the number of
        trials simulated by this call, ``trials_simulated``).

    Raises:
        ConfigError: bad options; DatasetError: unreadable morphology;
        SimulationError: an unstable or failed trial (named), or a lost worker.
    """
    from neuroreduce.datasets.io import save_dataset

    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ConfigError(f"need at least 1 trial, got {n_trials!r}")
    folder = chunk_folder(spec, out)
    folder.mkdir(parents=True, exist_ok=True)
    todo = [k for k in range(n_trials) if not _chunk(folder, k).is_file()]
    backend = backend or Backend()
    stop_after = int(os.environ.get(STOP_AFTER_ENV, "0") or 0)
    failed: list[tuple[int, str]] = []
    written = 0
    if todo:
        tasks = {str(k): k for k in todo}
        for outcome in run_tasks(_trial_task, tasks, backend, progress=progress,
                                 description="L5PC trials", initializer=_init_worker,
                                 init_arg=spec,
                                 isolate=backend.kind == "ray" or backend.workers > 1):
            k = int(outcome.key)
            if not outcome.ok:
                failed.append((k, outcome.error or "unknown error"))
                continue
            write_bytes_atomic(_chunk(folder, k), _encode(outcome.value))
            written += 1
            if stop_after and written >= stop_after:
                raise SimulationError(f"stopped after {written} trials (fault injection "
                                      f"{STOP_AFTER_ENV}); rerun to resume")
    if failed:
        k, error = min(failed)
        if error.startswith("ConfigError: "):  # a setting, not the trial: say it plainly
            raise ConfigError(error.removeprefix("ConfigError: "))
        raise SimulationError(f"{len(failed)} L5PC trial(s) failed; trial {k}: {error}")
    dataset = assemble(spec, [_decode(_chunk(folder, k)) for k in range(n_trials)],
                       split_seed=spec.seed if split_seed is None else split_seed,
                       trials_simulated=written)
    if out is not None:
        save_dataset(dataset, out)
    if not keep_chunks:
        shutil.rmtree(folder, ignore_errors=True)
        try:
            folder.parent.rmdir()
        except OSError:
            pass
    return dataset


def assemble(spec: L5PCSpec, trials: list[dict[str, Any]], *, split_seed: int = 0,
             trials_simulated: int | None = None) -> Any:
    """Build the dataset from per-trial records (see the module docstring for the layout)."""
    from neuroreduce.datasets.dataset import Dataset
    from neuroreduce.datasets.fields import EventTrains, Field, FieldSpec
    from neuroreduce.datasets.splits import make_splits
    from neuroreduce.simulators.l5pc.mechanisms import mod_hashes

    n, n_time = len(trials), spec.n_time
    n_channels = int(trials[0]["n_channels"])
    names = channel_names(n_channels)
    raw = np.stack([t["soma_v"] for t in trials]).astype(np.float32)[:, :, None]
    spikes = np.zeros((n, n_time, 1), np.float32)
    for i, t in enumerate(trials):
        idx = np.minimum(np.floor(t["spike_times_ms"] / spec.dt_out_ms).astype(np.int64),
                         n_time - 1)
        spikes[i, idx, 0] = 1.0
    events = [draw_trial(spec.inputs, n_channels=n_channels, duration_ms=spec.duration_ms,
                         seed=spec.seed, trial=k) for k in range(n)]
    fields = [
        Field(FieldSpec("synapses", "input", "events", names, "spikes"),
              EventTrains.from_lists([e[0] for e in events], [e[1] for e in events],
                                     len(names))),
        Field(FieldSpec("spikes", "target", "binary", ("soma",), "spikes"), spikes),
    ]
    if spec.keep_raw:
        fields.append(Field(FieldSpec("soma_v_raw", "target", "continuous", ("soma",), "mV"),
                            raw.copy()))
    if spec.record_dendrites:
        dend = np.stack([t["dend_v"] for t in trials]).astype(np.float32)
        fields.append(Field(FieldSpec("dend_v", "target", "continuous",
                                      tuple(f"seg_{k:04d}" for k in range(n_channels)), "mV"),
                            dend))
    families = tuple(spec.family for _ in range(n))
    params = []
    for i, (t, e) in enumerate(zip(trials, events, strict=True)):
        p = dict(e[2])
        p.update(trial=i, n_events=int(e[0].size), n_spikes=int(t["spike_times_ms"].size))
        params.append(json.dumps(p, sort_keys=True))
    provenance = {
        "generator": "l5pc", "spec": json.loads(json.dumps(dataclasses.asdict(spec),
                                                           default=list)),
        "spec_hash": spec_hash(spec), "morphology": str(spec.morphology),
        "morphology_sha256": morphology_sha256(spec.morphology),
        "mechanisms_sha256": mod_hashes(), "neuron_version": _neuron_version(),
        "dt_ms": spec.dt_ms, "dt_out_ms": spec.dt_out_ms, "seed": spec.seed,
        "exc_rate_range_hz": list(spec.inputs.exc_rate_range_hz),
        "inh_rate_range_hz": list(spec.inputs.inh_rate_range_hz),
        "n_exc_synapses": n_channels, "n_inh_synapses": n_channels,
        "cell": trials[0].get("cell", {}),
    }
    if trials_simulated is not None:
        provenance["trials_simulated"] = trials_simulated
    provenance.update(_cost(trials, spec.duration_ms))
    split = make_splits(families, seed=split_seed) if n >= 3 else np.zeros(n, np.int8)
    return Dataset(
        inputs=np.zeros((n, n_time, 0), np.float32),
        outputs=np.minimum(raw, np.float32(spec.clip_mv)), dt_ms=spec.dt_out_ms,
        input_names=(), output_names=("soma_v",), input_units="spikes", output_units="mV",
        families=families, stimulus_params=tuple(params), split=split,
        provenance=provenance, fields=tuple(fields),
    )


def _cost(trials: list[dict[str, Any]], duration_ms: float) -> dict[str, Any]:
    """NEURON's wall and CPU seconds per simulated second over the trials that recorded them
    (one trial's run, without building the cell; chunks of older versions have none)."""
    timed = [t for t in trials if "run_wall_s" in t]
    if not timed:
        return {}
    simulated_s = len(timed) * duration_ms / 1000.0
    return {"neuron_s_per_simulated_s": sum(float(t["run_wall_s"]) for t in timed) / simulated_s,
            "neuron_cpu_s_per_simulated_s": sum(float(t["run_cpu_s"]) for t in timed)
            / simulated_s, "neuron_cost_trials": len(timed)}


def _neuron_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("neuron")
    except PackageNotFoundError:
        return "unknown"


def _chunk(folder: Path, trial: int) -> Path:
    return folder / f"trial_{trial:06d}.npz"


def _encode(record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    arrays = {k: v for k, v in record.items() if isinstance(v, np.ndarray)}
    meta = {k: v for k, v in record.items() if not isinstance(v, np.ndarray)}
    np.savez(buf, meta=np.array(json.dumps(meta)), **arrays)
    return buf.getvalue()


def _decode(path: Path) -> dict[str, Any]:
    with np.load(path, allow_pickle=False) as data:
        record = {k: data[k] for k in data.files if k != "meta"}
        record.update(json.loads(str(data["meta"])))
    return record


# ----------------------------------------------------------------------------- workers
_RUNNERS: dict[str, TrialRunner] = {}
_SPEC: L5PCSpec | None = None


def _init_worker(spec: L5PCSpec) -> None:
    """Build the cell once per process (reused by later runs of the same cell)."""
    global _SPEC
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = "1"
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
    runner_for(spec)
    _SPEC = spec


def runner_for(spec: L5PCSpec) -> TrialRunner:
    """The process's :class:`TrialRunner` of ``spec``'s cell and run settings (built once)."""
    key = json.dumps([dataclasses.asdict(spec.cell_config()),
                      dataclasses.asdict(spec.run_config())], sort_keys=True)
    if key not in _RUNNERS:
        for old in _RUNNERS.values():  # one cell per process: NEURON runs every cell
            old.close()
        _RUNNERS.clear()
        gc.collect()
        _RUNNERS[key] = TrialRunner(spec.cell_config(), spec.run_config())
    return _RUNNERS[key]


def simulate_trial(spec: L5PCSpec, trial: int) -> dict[str, Any]:
    """Simulate trial ``trial`` of ``spec`` in this process; the chunk record."""
    runner = runner_for(spec)
    if spec.n_channels is not None and spec.n_channels != runner.n_channels:
        raise ConfigError(
            f"the cell has {runner.n_channels} dendritic segments (synaptic channels per "
            f"population) but the inputs are set for n_channels = {spec.n_channels}; change "
            "n_channels, nseg_rule or max_channels so that they agree")
    times, channels, _ = draw_trial(spec.inputs, n_channels=runner.n_channels,
                                    duration_ms=spec.duration_ms, seed=spec.seed, trial=trial)
    wall, cpu = time.perf_counter(), time.process_time()
    result = runner.run(times, channels, duration_ms=spec.duration_ms, trial=trial)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    record: dict[str, Any] = {"soma_v": result.soma_v, "spike_times_ms": result.spike_times_ms,
                              "n_channels": runner.n_channels, "cell": runner.provenance(),
                              "run_wall_s": wall, "run_cpu_s": cpu}
    if result.dend_v is not None:
        record["dend_v"] = result.dend_v.astype(np.float32)
    return record


def _trial_task(trial: int) -> dict[str, Any]:
    if _SPEC is None:
        raise SimulationError("the L5PC worker was not initialised")
    return simulate_trial(_SPEC, trial)
