"""Simulated whole-brain calcium imaging with known wiring: the c302 network through an indicator.

Beyond Wang et al. (2023), who could not score inferred edges against a true wiring: here the
recordings come from the c302 network this project runs in NEURON (:mod:`.celegans`, the
cached ``fcm`` build, parameter set C0, connectome reader ``default``), so the connectivity
among the recorded neurons is known (:func:`true_adjacency`) and inferred edge weights can be
scored (:func:`edge_auroc`).

Per "individual" (one recording, one trial of the dataset):

1. A hidden command state (forward / reversal; a two-state Markov chain with mean dwell
   ``dwell_frames``) injects current into the backward (AVAL/R) or forward (AVBL/R) command
   interneurons; sensory neurons (``sensory``) get piecewise-constant random currents that
   change every ~``input_frames`` frames. Amplitudes and per-input gains vary per individual
   (log-normal, ``gain_spread``): the individuals' "input statistics" differ.
2. The network runs from rest in NEURON (``dt_ms`` step). Time is compressed: one imaging
   frame (``frame_s`` of recording time, 0.6 s as in Flavell-lab data) is ``frame_ms`` ms of
   network time, because c302's graded neurons settle in milliseconds, not seconds (a full
   0.6 s per frame would cost ~3 s of NEURON time per frame). Somatic voltages are averaged
   per frame.
3. Indicator: each neuron's depolarisation from its resting voltage (in units of its own
   spread) passes a softplus (calcium influx, >= 0), a double-exponential kernel in recording
   time (rise ``tau_rise_s`` ~0.15 s, decay ``tau_decay_s`` ~1 s, GCaMP-like; decay varied
   per individual by +-``indicator_spread``), a Hill saturation ``c^n / (c^n + K^n)`` (``n =
   hill``, ``K`` = the neuron's 75th percentile of calcium), then additive Gaussian noise
   (``noise`` in units of the signal's standard deviation) and a z-score per neuron (the
   units of the Flavell traces, "z").
4. Each individual records its own subset of ``pool``: every neuron of ``always`` plus each
   other pool neuron with probability ``recorded_fraction``.
5. The behaviour label is read from the command interneurons' simulated activity (not the
   hidden state): reversal (1) in frames where the z-scored mean voltage of AVAL/AVAR exceeds
   that of AVBL/AVBR, forward (0) otherwise.

The dataset follows Layout 1 of the whole-brain task (one trial per individual, ``families`` =
worm id, inputs = traces of the neurons in use, field ``behaviour`` and group ``worm``;
``stimulus_params`` per trial {"worm", "n_frames", "frame_s", "recorded"}), so the window
builder, the models and the protocol apply unchanged. The true adjacency among all recorded
neurons is in ``provenance["adjacency"]``: ``neurons`` and directed ``chemical`` and symmetric
``gap_junction`` edge lists ``[pre, post, synapse count]`` (cect ``default`` reader, the
connectome c302 builds from).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.fields import Field, FieldSpec
from neuroreduce.errors import ConfigError, DatasetError
from neuroreduce.simulators.toy_tasks import TaskGenerator, register_task_generator

#: Neurons an individual may record: the 15 shared in Kato et al. 2015 (VB01/02 are c302's
#: VB1/VB2), the command circuit and head neurons around it.
DEFAULT_POOL: tuple[str, ...] = (
    "AIBL", "AIBR", "ALA", "AVAL", "AVAR", "AVBL", "AVBR", "AVER", "RID", "RIML", "RIMR",
    "RMED", "RMEL", "RMER", "VB1", "VB2", "AVEL", "AVDL", "AVDR", "PVCL", "PVCR", "RIBL",
    "RIBR", "AIYL", "AIYR", "AIZL", "AIZR", "RIAL", "RIAR", "SMDVL", "SMDVR", "DA1", "DB1",
    "ASHL", "ASHR", "PLML", "PLMR",
)
#: Recorded by every individual (the paper's three neurons shared by both data sets, AIBR,
#: AVAL and VB02, plus the other command interneurons).
DEFAULT_ALWAYS: tuple[str, ...] = ("AIBR", "AVAL", "AVAR", "AVBL", "AVBR", "VB2")
#: Sensory neurons with random input.
DEFAULT_SENSORY: tuple[str, ...] = ("ASHL", "ASHR", "PLML", "PLMR", "ALML", "ALMR")
BACKWARD: tuple[str, ...] = ("AVAL", "AVAR")
FORWARD: tuple[str, ...] = ("AVBL", "AVBR")
CLASSES: tuple[str, str] = ("forward", "reversal")


@dataclass(frozen=True)
class WholeBrainSimConfig:
    """Settings of the simulated whole-brain recordings (see the module docstring).

    Attributes:
        individuals: Recordings (trials), each an individual (>= 2).
        frames: Imaging frames per recording (>= 16).
        frame_s: Recording time per frame (s); the dataset's ``dt_ms`` is ``1000 * frame_s``.
        frame_ms: Network (NEURON) time per frame (ms); a multiple of ``sample_ms``.
        sample_ms: Voltage sampling interval within a frame (ms); a multiple of ``dt_ms``.
        dt_ms: NEURON integration step (ms).
        warmup_frames: Frames simulated first and dropped (start-up from rest).
        pool: Neurons an individual may record.
        always: Neurons every individual records (must include AVAL/R and AVBL/R).
        recorded_fraction: Chance that an individual records each other pool neuron.
        neurons: Channels of the dataset: ``"shared"`` (neurons every individual recorded) or
            ``"all"`` (the union; a neuron an individual lacks is 0 there).
        sensory: Sensory neurons driven by random currents.
        sensory_na: Mean amplitude of the sensory currents (nA).
        command_na: Current into the command interneurons of the hidden state (nA).
        dwell_frames: Mean frames between switches of the hidden command state.
        input_frames: Mean frames between changes of the sensory currents.
        gain_spread: Log-normal sigma of the per-individual input gains.
        tau_rise_s: Indicator rise time constant (s).
        tau_decay_s: Indicator decay time constant (s).
        indicator_spread: Relative per-individual spread of the decay time (uniform +-).
        hill: Hill exponent of the indicator's saturation.
        noise: Additive noise, in units of each trace's standard deviation.
        seed: Seed of every random choice.
        workers: Individuals simulated side by side (worker processes; 1: this process).
        cache_dir: c302 build cache (default: the project's cache folder).
    """

    individuals: int = 4
    frames: int = 200
    frame_s: float = 0.6
    frame_ms: float = 10.0
    sample_ms: float = 1.0
    dt_ms: float = 0.05
    warmup_frames: int = 5
    pool: tuple[str, ...] = DEFAULT_POOL
    always: tuple[str, ...] = DEFAULT_ALWAYS
    recorded_fraction: float = 0.7
    neurons: str = "shared"
    sensory: tuple[str, ...] = DEFAULT_SENSORY
    sensory_na: float = 0.03
    command_na: float = 0.05
    dwell_frames: float = 15.0
    input_frames: float = 6.0
    gain_spread: float = 0.3
    tau_rise_s: float = 0.15
    tau_decay_s: float = 1.0
    indicator_spread: float = 0.2
    hill: float = 2.0
    noise: float = 0.3
    seed: int = 0
    workers: int = 1
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        for name in ("pool", "always", "sensory"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise ConfigError(f"{name} must be a list of neuron names, not one string")
            object.__setattr__(self, name, tuple(str(v) for v in value))
        for name, low in (("individuals", 2), ("frames", 16), ("warmup_frames", 0),
                          ("workers", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
        for name in ("frame_s", "frame_ms", "sample_ms", "dt_ms", "dwell_frames",
                     "input_frames", "tau_rise_s", "tau_decay_s", "hill"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and np.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a number > 0, got {value!r}")
        for name in ("sensory_na", "command_na", "gain_spread", "noise"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and np.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a number >= 0, got {value!r}")
        if not 0.0 <= self.recorded_fraction <= 1.0:
            raise ConfigError(f"recorded_fraction must be in [0, 1], got {self.recorded_fraction}")
        if not 0.0 <= self.indicator_spread < 1.0:
            raise ConfigError(f"indicator_spread must be in [0, 1), got {self.indicator_spread}")
        if self.neurons not in ("shared", "all"):
            raise ConfigError(f"neurons must be 'shared' or 'all', got {self.neurons!r}")
        need = [n for n in BACKWARD + FORWARD if n not in self.always]
        if need:
            raise ConfigError(f"always must include {', '.join(BACKWARD + FORWARD)} (the "
                              f"behaviour label is read from them); missing {need[0]}")
        extra = [n for n in self.always if n not in self.pool]
        if extra:
            raise ConfigError(f"always neuron {extra[0]!r} is not in the pool")
        for a, b, what in ((self.frame_ms, self.sample_ms, "frame_ms / sample_ms"),
                           (self.sample_ms, self.dt_ms, "sample_ms / dt_ms")):
            if abs(a / b - round(a / b)) > 1e-6:
                raise ConfigError(f"{what} must be a whole number, got {a / b:g}")

    def spec_hash(self) -> str:
        """SHA-256 of the settings that decide the data (not ``workers``/``cache_dir``)."""
        d = {k: v for k, v in dataclasses.asdict(self).items()
             if k not in ("workers", "cache_dir")}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


# ------------------------------------------------------------------------------ wiring
def connectome_edges(neurons: Sequence[str], reader: str = "default") -> dict[str, Any]:
    """Chemical (directed) and gap-junction (symmetric) edges among ``neurons``.

    Returns:
        ``{"neurons": [...], "chemical": [[pre, post, n], ...], "gap_junction": [...]}`` with
        indices into ``neurons`` and synapse counts (cect ``reader``, as c302 builds from).
    """
    from neuroreduce.simulators.connectome import load_reader

    index = {n: i for i, n in enumerate(neurons)}
    _, conns = load_reader(reader).read_data(include_nonconnected_cells=True)
    chem: dict[tuple[int, int], float] = {}
    gap: dict[tuple[int, int], float] = {}
    for c in conns:
        if c.pre_cell not in index or c.post_cell not in index or c.pre_cell == c.post_cell:
            continue
        i, j = index[c.pre_cell], index[c.post_cell]
        if "GJ" in str(c.synclass) or "Gap" in str(c.syntype):
            for key in ((i, j), (j, i)):
                gap[key] = max(gap.get(key, 0.0), float(c.number))
        else:
            chem[(i, j)] = chem.get((i, j), 0.0) + float(c.number)
    return {"neurons": list(neurons),
            "chemical": [[i, j, n] for (i, j), n in sorted(chem.items())],
            "gap_junction": [[i, j, n] for (i, j), n in sorted(gap.items())]}


def adjacency_matrix(edges: dict[str, Any], names: Sequence[str] | None = None, *,
                     kind: str = "any") -> np.ndarray:
    """bool ``[N, N]`` (row = presynaptic) of the edges of :func:`connectome_edges`.

    Args:
        edges: The edge lists (e.g. ``dataset.provenance["adjacency"]``).
        names: Neurons to index (default: ``edges["neurons"]``); each must be in the edges.
        kind: ``"chemical"``, ``"gap_junction"`` or ``"any"`` (either).
    """
    if kind not in ("chemical", "gap_junction", "any"):
        raise ConfigError(f"kind must be chemical, gap_junction or any, got {kind!r}")
    known = list(edges["neurons"])
    names = list(known if names is None else names)
    missing = [n for n in names if n not in known]
    if missing:
        raise ConfigError(f"neuron {missing[0]!r} is not among the wired neurons")
    full = np.zeros((len(known), len(known)), bool)
    for part in (("chemical", "gap_junction") if kind == "any" else (kind,)):
        for i, j, _ in edges[part]:
            full[int(i), int(j)] = True
    idx = [known.index(n) for n in names]
    out = full[np.ix_(idx, idx)]
    return out


def true_adjacency(dataset: Dataset, *, kind: str = "any",
                   names: Sequence[str] | None = None) -> np.ndarray:
    """The true wiring among ``names`` (default: the dataset's neuron channels), bool [N, N].

    Raises:
        DatasetError: if the dataset carries no adjacency (not simulated with known wiring).
    """
    edges = dataset.provenance.get("adjacency")
    if not isinstance(edges, dict):
        raise DatasetError("this dataset has no true adjacency (provenance['adjacency']); "
                           "only simulated whole-brain data (wholebrain_sim) carry one")
    chans = [n for n in dataset.input_names if not n.startswith("d_")]
    return adjacency_matrix(edges, list(names) if names is not None else chans, kind=kind)


def edge_auroc(weights: np.ndarray, adjacency: np.ndarray, *, symmetric: bool = False) -> float:
    """Area under the ROC curve of edge weights against the true wiring (off-diagonal pairs).

    Args:
        weights: Inferred edge weights ``[N, N]`` (higher = more likely an edge), e.g. a
            GNN's ``w_ij`` averaged over windows.
        adjacency: True edges ``[N, N]`` (bool; row = source).
        symmetric: Score unordered pairs: ``max(w_ij, w_ji)`` against ``a_ij or a_ji``.

    Returns:
        AUROC in [0, 1] (1: every true edge outweighs every non-edge; 0.5: chance).

    Raises:
        ConfigError: on shapes that differ or are not square, non-finite weights, or pairs
            that are all edges or all non-edges (AUROC undefined).
    """
    from sklearn.metrics import roc_auc_score

    w = np.asarray(weights, dtype=np.float64)
    a = np.asarray(adjacency).astype(bool)
    if w.ndim != 2 or w.shape[0] != w.shape[1] or w.shape != a.shape:
        raise ConfigError(f"weights {w.shape} and adjacency {a.shape} must be the same [N, N]")
    if not np.isfinite(w).all():
        raise ConfigError("edge weights must be finite")
    if symmetric:
        w, a = np.maximum(w, w.T), a | a.T
        mask = np.triu(np.ones(w.shape, bool), k=1)
    else:
        mask = ~np.eye(w.shape[0], dtype=bool)
    y, s = a[mask], w[mask]
    if y.all() or not y.any():
        raise ConfigError(f"AUROC needs both edges and non-edges; the {y.size} pairs have "
                          f"{int(y.sum())} edge(s)")
    return float(roc_auc_score(y, s))


# ------------------------------------------------------------------------------ simulation
def _piecewise(rng: np.random.Generator, frames: int, mean_frames: float, n: int) -> np.ndarray:
    """``[frames, n]`` values in [0, 1) held for exponential(mean_frames) frames."""
    out = np.empty((frames, n))
    for j in range(n):
        t = 0
        while t < frames:
            hold = max(1, int(round(rng.exponential(mean_frames))))
            out[t : t + hold, j] = rng.random()
            t += hold
    return out


def _command_state(rng: np.random.Generator, frames: int, dwell: float) -> np.ndarray:
    state = np.empty(frames, np.int64)
    s = int(rng.integers(2))
    for t in range(frames):
        if rng.random() < 1.0 / dwell:
            s = 1 - s
        state[t] = s
    return state


def individual_plan(config: WholeBrainSimConfig, index: int) -> dict[str, Any]:
    """The random choices of individual ``index``: currents per frame, recorded neurons,
    indicator decay (seeded by ``config.seed`` and ``index``; picklable)."""
    rng = np.random.default_rng([config.seed, index])
    total = config.frames + config.warmup_frames
    inputs = BACKWARD + FORWARD + config.sensory
    gains = np.exp(rng.normal(0.0, config.gain_spread, len(inputs)))
    state = _command_state(rng, total, config.dwell_frames)
    cur = np.zeros((total, len(inputs)))
    cur[:, 0:2] = (state == 1)[:, None] * config.command_na
    cur[:, 2:4] = (state == 0)[:, None] * config.command_na
    cur[:, 4:] = _piecewise(rng, total, config.input_frames, len(config.sensory)) * (
        2 * config.sensory_na)
    cur *= gains
    others = [n for n in config.pool if n not in config.always]
    chosen = [n for n in others if rng.random() < config.recorded_fraction]
    recorded = [n for n in config.pool if n in config.always or n in chosen]
    decay = config.tau_decay_s * (1 + config.indicator_spread * rng.uniform(-1, 1))
    return {"index": index, "inputs": list(inputs), "frame_currents": cur.tolist(),
            "recorded": recorded, "tau_decay_s": float(decay),
            "noise_seed": int(rng.integers(2**31)), "hidden_state": state.tolist()}


def simulate_voltages(config: WholeBrainSimConfig, plan: dict[str, Any]) -> np.ndarray:
    """NEURON run of one individual: per-frame mean voltage ``[frames, pool]`` (mV), warm-up
    frames dropped (every pool neuron; the recorded subset is chosen later)."""
    from neuroreduce.simulators.celegans import CelegansConfig, CelegansSimulator, network_for

    sim = CelegansSimulator(CelegansConfig(scenario="fcm", dt_ms=config.dt_ms,
                                           cache_dir=config.cache_dir))
    names = set(sim.neuron_names)
    for n in (*config.pool, *plan["inputs"]):
        if n not in names:
            raise ConfigError(f"neuron {n!r} is not in the c302 network")
    per = int(round(config.frame_ms / config.sample_ms))
    frame_cur = np.asarray(plan["frame_currents"])
    total = frame_cur.shape[0]
    n = total * per + 1
    currents = np.repeat(frame_cur, per, axis=0)
    currents = np.vstack([currents, currents[-1:]])
    volts = network_for(sim.built).run(
        currents, inputs=tuple(plan["inputs"]), outputs=config.pool, ablated=(),
        dt_out_ms=config.sample_ms, duration_ms=total * config.frame_ms)
    if volts.shape[0] != n or not np.isfinite(volts).all():
        raise ConfigError("NEURON returned an incomplete or non-finite recording")
    per_frame = volts[1:].reshape(total, per, -1).mean(axis=1)
    return per_frame[config.warmup_frames :]


def _simulate_task(payload: tuple[WholeBrainSimConfig, dict[str, Any]]) -> np.ndarray:
    return simulate_voltages(*payload)


def indicator(volts: np.ndarray, *, frame_s: float, tau_rise_s: float, tau_decay_s: float,
              hill: float, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Per-frame voltages ``[frames, N]`` (mV) -> z-scored fluorescence ``[frames, N]``.

    Softplus of the depolarisation from the first frame (in units of the neuron's standard
    deviation), double-exponential kernel (rise, decay in s), Hill saturation at the 75th
    percentile, Gaussian noise of ``noise`` standard deviations, z-score per neuron.
    """
    v = np.asarray(volts, np.float64)
    spread = v.std(axis=0)
    spread = np.where(spread > 1e-9, spread, 1.0)
    drive = np.logaddexp(0.0, (v - np.median(v, axis=0)) / spread)
    t = np.arange(0.0, 8 * tau_decay_s + frame_s, frame_s)
    kernel = np.exp(-t / tau_decay_s) - np.exp(-t / tau_rise_s)
    kernel /= kernel.sum()
    calcium = np.stack([np.convolve(drive[:, j], kernel)[: v.shape[0]]
                        for j in range(v.shape[1])], axis=1)
    k = np.maximum(np.percentile(calcium, 75, axis=0), 1e-9)
    fluor = calcium**hill / (calcium**hill + k**hill)
    sd = fluor.std(axis=0)
    fluor = fluor + rng.normal(0.0, 1.0, fluor.shape) * noise * np.where(sd > 0, sd, 1.0)
    z = (fluor - fluor.mean(axis=0)) / np.where(fluor.std(axis=0) > 0, fluor.std(axis=0), 1.0)
    return z.astype(np.float32)


def behaviour_labels(volts: np.ndarray, pool: Sequence[str]) -> np.ndarray:
    """int16 ``[frames]``: 1 (reversal) where the z-scored mean voltage of AVAL/R exceeds that
    of AVBL/R, else 0 (forward)."""
    pool = list(pool)

    def z(names: tuple[str, ...]) -> np.ndarray:
        x = volts[:, [pool.index(n) for n in names]].mean(axis=1)
        sd = x.std()
        return (x - x.mean()) / (sd if sd > 0 else 1.0)

    return (z(BACKWARD) > z(FORWARD)).astype(np.int16)


def simulate_wholebrain(config: WholeBrainSimConfig | None = None, *,
                        progress: bool = False) -> Dataset:
    """Simulated recordings of ``config.individuals`` individuals (Layout 1; module docstring).

    Raises:
        ConfigError: on bad settings or neurons that are not in the network, or when the
            individuals share fewer than 2 neurons (``neurons="shared"``).
        DependencyError: when the c302 build tools are missing.
    """
    from neuroreduce.execution import Backend, run_tasks

    config = config or WholeBrainSimConfig()
    plans = [individual_plan(config, i) for i in range(config.individuals)]
    tasks = {f"{i:03d}": (config, p) for i, p in enumerate(plans)}
    backend = Backend("local", workers=min(config.workers, config.individuals))
    volts: dict[str, np.ndarray] = {}
    for outcome in run_tasks(_simulate_task, tasks, backend, progress=progress,
                             description="whole-brain individuals", isolate=backend.workers > 1):
        if not outcome.ok:
            raise ConfigError(f"individual {outcome.key}: {outcome.error}")
        volts[outcome.key] = outcome.value
    recorded = [p["recorded"] for p in plans]
    if config.neurons == "shared":
        names = [n for n in config.pool if all(n in r for r in recorded)]
    else:
        names = [n for n in config.pool if any(n in r for r in recorded)]
    if len(names) < 2:
        raise ConfigError(f"the individuals share {len(names)} neuron(s); raise "
                          "recorded_fraction or use neurons='all'")
    n_ind, frames = config.individuals, config.frames
    x = np.zeros((n_ind, frames, len(names)), np.float32)
    labels = np.empty((n_ind, frames, 1), np.int16)
    params = []
    worms = tuple(f"sim-{i:02d}" for i in range(n_ind))
    pool = list(config.pool)
    for i, p in enumerate(plans):
        v = volts[f"{i:03d}"]
        z = indicator(v, frame_s=config.frame_s, tau_rise_s=config.tau_rise_s,
                      tau_decay_s=p["tau_decay_s"], hill=config.hill, noise=config.noise,
                      rng=np.random.default_rng(p["noise_seed"]))
        for c, n in enumerate(names):
            if n in p["recorded"]:
                x[i, :, c] = z[:, pool.index(n)]
        labels[i, :, 0] = behaviour_labels(v, pool)
        params.append(json.dumps({"worm": worms[i], "n_frames": frames,
                                   "frame_s": config.frame_s, "recorded": p["recorded"]}))
    union = [n for n in config.pool if any(n in r for r in recorded)]
    fields = (
        Field(FieldSpec("behaviour", "label", "categorical", ("state",), classes=CLASSES,
                        ignore_label=-1), labels),
        Field(FieldSpec("worm", "group", "categorical", classes=worms),
              np.arange(n_ind, dtype=np.int32)),
    )
    provenance = {
        "generator": "wholebrain_sim", "config": dataclasses.asdict(config),
        "spec_hash": config.spec_hash(), "simulator": "celegans (c302 C0, fcm build)",
        "time_compression": f"{config.frame_ms:g} ms of network time per "
                            f"{config.frame_s:g} s frame",
        "reversal_fraction": float(labels.mean()),
        "adjacency": connectome_edges(union),
    }
    return Dataset(
        inputs=x, outputs=np.zeros((n_ind, frames, 0), np.float32),
        dt_ms=1000.0 * config.frame_s, input_names=tuple(names), output_names=(),
        input_units="z", output_units="", families=worms, stimulus_params=tuple(params),
        split=None, provenance=provenance, fields=fields,
    )


def _make(n_trials: int, *, seed: int = 0, dt_ms: float = 600.0) -> Dataset:
    """Task-generator face: ``n_trials`` individuals, frame interval ``dt_ms`` (ms)."""
    return simulate_wholebrain(WholeBrainSimConfig(individuals=n_trials, seed=seed,
                                                   frame_s=dt_ms / 1000.0))


register_task_generator(TaskGenerator(
    "wholebrain_sim", "c302 network in NEURON -> GCaMP-like traces of individuals with known "
    "wiring, forward/reversal label from AVA vs AVB (slow: ~10 s per individual)",
    _make, default_dt_ms=600.0))
