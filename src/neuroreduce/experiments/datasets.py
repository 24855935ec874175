"""Datasets declared by experiment files: parse, fingerprint, simulate once, reuse.

An experiment file names its datasets in ``[datasets.<name>]`` tables; each table becomes a frozen
:class:`DatasetSpec`. :func:`build_dataset` turns a spec into an HDF5 file
``<data_dir>/<name>-<hash12>.h5`` (simulating it only if no verified file exists), so experiments
that share a ``data_dir`` share datasets. ::

    [datasets.fcm]                      # 40 diverse stimuli, split 50/25/25
    scenario = "fcm"
    stimuli = 40
    dt_out_ms = 0.5

    [datasets.fcm_ood]                  # evaluation-only set of unseen stimulus shapes
    scenario = "fcm"
    stimuli = 20
    families = ["sawtooth", "square", "alpha_bursts", "smooth_steps"]
    role = "test"

    [datasets.fcm_nictation]            # two behaviours in one dataset (Experiment 5)
    scenario = "fcm_nictation"
    mix = [
      { name = "fcm", inputs = ["PLML", "PLMR", "AVBL", "AVBR"], stimuli = 40 },
      { name = "nictation", inputs = ["IL2DL", "IL2DR", "IL2VL", "IL2VR", "IL2L", "IL2R"],
        stimuli = 40, amplitude_na = [0.0, 0.02] },
    ]

    [datasets.paper]                    # an existing file instead of a simulation
    path = "data/paper_fcm.h5"

    [datasets.recordings]               # real recordings through a registered importer
    importer = "npz"                    # `neuroreduce importers` lists them
    source = "data/recordings.npz"      # file or folder, relative to the experiment file
    options = {}                        # the importer's options

    [datasets.spikes]                   # a typed task: events in, voltage + spikes out
    scenario = "toy_spikes"             # a task generator (simulators/toy_tasks.py)
    stimuli = 24
    dt_out_ms = 1.0

``scenario`` names a registered scenario or a typed-task generator
(:data:`~neuroreduce.simulators.toy_tasks.TASK_GENERATORS`: ``toy_spikes``, ``toy_behaviour``,
``toy_subsets``; the names ``neuroreduce simulate`` takes). A generator builds the whole
dataset — its stimuli, typed fields (event inputs, binary/categorical targets, masks, groups)
and its own split — from ``stimuli``, ``dt_out_ms`` (default: the generator's) and ``seed``;
the other simulation keys do not apply. ``role = "test"`` puts all its trials in the test split.

In a ``mix`` the trials of each group drive only that group's inputs (the other input channels
stay exactly 0); trials are stored group after group, and each group is split 50/25/25 on its
own (stratified by stimulus family, group ``k`` with split seed ``seed + k``), so every split
holds both behaviours in proportion. Trial ``i`` of the whole dataset draws its waveforms from
``default_rng([seed, i])``, so groups never repeat each other's stimuli.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.errors import ConfigError, DatasetError, unknown_name_error
from neuroreduce.experiments.dataset_spec import (  # noqa: F401  (re-exported)
    DATASET_KEYS,
    GENERATION_VERSION,
    MIX_KEYS,
    ROLES,
    TRAIN_FRACTIONS,
    DatasetSpec,
    MixGroup,
    stored_content_hash,
)


def dataset_path(spec: DatasetSpec, data_dir: str | Path) -> Path:
    """Where :func:`build_dataset` puts (or finds) ``spec``'s file."""
    if spec.path is not None and not spec.derived:
        return Path(spec.path)
    return _folder(data_dir) / spec.file_name()


def build_dataset(
    spec: DatasetSpec,
    *,
    data_dir: str | Path,
    backend: Any = None,
    progress: bool = True,
) -> Path:
    """Return the HDF5 file of ``spec``, simulating it only if no verified copy exists.

    The file ``<data_dir>/<name>-<hash12>.h5`` is reused when it loads (content and metadata
    hashes verified) and its provenance records the same full :meth:`DatasetSpec.spec_hash`;
    otherwise it is (re)simulated and written atomically. A file lock beside it makes
    concurrent callers wait for one simulation instead of running two.

    Args:
        spec: The declared dataset.
        data_dir: Cache folder of datasets (created if missing).
        backend: A :class:`neuroreduce.execution.Backend`; its ``workers`` NEURON processes
            simulate the trials (``None``: one worker).
        progress: Show a progress bar over trials.

    Returns:
        Path of the dataset file.

    Raises:
        DatasetError: if a ``path`` dataset cannot be loaded or lacks a needed split.
        ConfigError, SimulationError, DependencyError: from the simulator.
    """
    if spec.path is not None and not spec.derived:
        return _check_path_dataset(spec)
    from filelock import FileLock

    from neuroreduce.datasets.io import save_dataset

    full_hash = spec.spec_hash()
    target = _folder(data_dir) / f"{spec.name}-{full_hash[:12]}.h5"
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / f".{target.name}.lock")):
        if target.exists() and _verified(target, full_hash):
            return target
        if spec.derived:  # a file cut to its first train_trials training trials
            dataset = _derived(spec, full_hash)
        else:
            dataset = simulate_dataset(spec, backend=backend, progress=progress)
        save_dataset(dataset, target)
    return target


def simulate_dataset(spec: DatasetSpec, *, backend: Any = None, progress: bool = True) -> Dataset:
    """Simulate ``spec`` in memory (no caching; see :func:`build_dataset`), then keep its
    first ``train_trials`` training trials when the spec says so.

    Returns:
        Inputs ``[trial, time, input]`` (nA), outputs ``[trial, time, output]`` (mV), families,
        per-trial stimulus parameters (with their mix group), split and provenance (including
        ``dataset_spec_hash`` and ``simulation_wall_s``).
    """
    if spec.path is not None:
        raise ConfigError(f"dataset {spec.name!r} is loaded from {spec.path}, not simulated")
    if spec.generator is not None:
        dataset = _generate(spec, backend=backend, progress=progress)
    elif spec.importer is not None:
        dataset = _import(spec)
    else:
        dataset = _simulate(spec, backend=backend, progress=progress)
    return keep_training_trials(dataset, spec.train_trials, where=f"[datasets.{spec.name}]")


def keep_training_trials(dataset: Dataset, n: int | None, *, where: str = "dataset") -> Dataset:
    """``dataset`` with only its first ``n`` training trials (trial order); validation and test
    trials unchanged. ``None``: unchanged.

    Raises:
        ConfigError: if the dataset has no split or fewer than ``n`` training trials.
    """
    if n is None:
        return dataset
    if dataset.split is None:
        raise ConfigError(f"{where} train_trials: the dataset has no train/valid/test split")
    train = np.flatnonzero(dataset.split == 0)
    if n > train.size:
        raise ConfigError(f"{where} train_trials = {n}, but the dataset has only {train.size} "
                          "training trials; lower it or use a larger dataset")
    out = dataset.select_trials(np.setdiff1d(np.arange(dataset.n_trials), train[n:]))
    provenance = {**out.provenance, "train_trials": n,
                  "train_trials_of": int(train.size)}
    return replace(out, provenance=provenance)


def _derived(spec: DatasetSpec, full_hash: str) -> Dataset:
    """The ``path`` file of ``spec`` cut to its first ``train_trials`` training trials."""
    dataset = keep_training_trials(_load_path_dataset(spec), spec.train_trials,
                                   where=f"[datasets.{spec.name}]")
    provenance = {**dataset.provenance, "dataset_name": spec.name,
                  "dataset_spec": spec.to_dict(), "dataset_spec_hash": full_hash,
                  "role": spec.role, "derived_from": spec.path}
    return replace(dataset, provenance=provenance)


def _simulate(spec: DatasetSpec, *, backend: Any, progress: bool) -> Dataset:
    """A scenario dataset: drawn stimuli through the scenario's simulator."""
    from neuroreduce.datasets.splits import make_splits
    from neuroreduce.pipeline import run_simulator
    from neuroreduce.scenarios import get_scenario

    scenario = get_scenario(spec.scenario or "")
    currents, families, params, strata = _draw_stimuli(spec, scenario)
    start = time.perf_counter()
    outputs, sim_prov = run_simulator(
        scenario,
        currents,
        dt_out_ms=spec.dt_out_ms,
        settings=_settings(spec, backend),
        progress=progress,
    )
    wall = time.perf_counter() - start
    if spec.role == "train":  # each mix group is split 50/25/25 on its own, by family
        parts = []
        for k, group in enumerate(dict.fromkeys(g for g, _ in strata)):
            fams = [f for g, f in strata if g == group]
            parts.append(make_splits(fams, fractions=TRAIN_FRACTIONS, seed=spec.seed + k))
        split = np.concatenate(parts).astype(np.int8)
    else:
        split = np.full(len(families), 2, dtype=np.int8)
    provenance = {
        "dataset_name": spec.name,
        "dataset_spec": spec.to_dict(),
        "dataset_spec_hash": spec.spec_hash(),
        "role": spec.role,
        "scenario": scenario.name,
        "stimulus_seed": spec.seed,
        "n_stimuli": int(currents.shape[0]),
        "duration_ms": scenario.duration_ms,
        "amplitude_range_na": list(spec.amplitude_na or scenario.amplitude_range_na),
        "split_fractions": list(TRAIN_FRACTIONS) if spec.role == "train" else [0.0, 0.0, 1.0],
        "simulation_wall_s": round(wall, 3),
        **{f"simulator.{k}": v for k, v in sim_prov.items()},
    }
    if spec.mix:
        provenance["mix_groups"] = _group_ranges(spec.mix)
    return Dataset(
        inputs=currents,
        outputs=outputs,
        dt_ms=spec.dt_out_ms,
        input_names=scenario.inputs,
        output_names=scenario.outputs,
        families=families,
        stimulus_params=params,
        split=split,
        provenance=provenance,
    )


def _generate(spec: DatasetSpec, *, backend: Any = None, progress: bool = False) -> Dataset:
    """Build a task-generator dataset (its own split; all test trials for ``role = "test"``).

    A generator with its own runner (l5pc) gets the spec's trial length, step and options and
    runs its trials on ``backend``; it keeps finished trials in its own cache (keyed by its
    spec hash) until the dataset is built, so an interrupted build resumes."""
    from neuroreduce.simulators.toy_tasks import get_task_generator

    gen = get_task_generator(spec.generator or "")
    start = time.perf_counter()
    try:
        if gen.run_options:
            settings = spec.run_settings()
            dataset = gen.make(spec.stimuli, seed=spec.seed, dt_ms=spec.dt_out_ms,
                               duration_ms=settings["duration_ms"],
                               settings=_settings(spec, backend), out=None,
                               progress=progress, options=settings["options"])
        else:
            dataset = gen.make(spec.stimuli, seed=spec.seed, dt_ms=spec.dt_out_ms)
    except ConfigError as exc:
        raise ConfigError(f"[datasets.{spec.name}] scenario = {spec.generator!r}: {exc}") from None
    split = dataset.split
    if spec.role != "train":
        split = np.full(dataset.n_trials, 2, dtype=np.int8)
    provenance = {
        **dataset.provenance,
        "dataset_name": spec.name,
        "dataset_spec": spec.to_dict(),
        "dataset_spec_hash": spec.spec_hash(),
        "role": spec.role,
        "task_generator": spec.generator,
        "stimulus_seed": spec.seed,
        "n_stimuli": spec.stimuli,
        "simulation_wall_s": round(time.perf_counter() - start, 3),
    }
    return replace(dataset, split=split, provenance=provenance)


def _import(spec: DatasetSpec) -> Dataset:
    """Read an importer dataset; split it 50/25/25 with ``seed`` unless it has a split of its
    own (all test trials for ``role = "test"``)."""
    from neuroreduce.datasets.importer_registry import run_import
    from neuroreduce.datasets.splits import with_splits

    start = time.perf_counter()
    options = {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.import_options}
    try:
        dataset = run_import(spec.importer or "", spec.source or "", options)
    except (ConfigError, DatasetError) as exc:
        raise type(exc)(f"[datasets.{spec.name}] importer = {spec.importer!r}: {exc}") from None
    if spec.role != "train":
        dataset = replace(dataset, split=np.full(dataset.n_trials, 2, dtype=np.int8))
    elif dataset.split is None:
        dataset = with_splits(dataset, fractions=TRAIN_FRACTIONS, seed=spec.seed)
    provenance = {
        **dataset.provenance,
        "dataset_name": spec.name,
        "dataset_spec": spec.to_dict(),
        "dataset_spec_hash": spec.spec_hash(),
        "role": spec.role,
        "importer": spec.importer,
        "import_wall_s": round(time.perf_counter() - start, 3),
    }
    return replace(dataset, provenance=provenance)


def select_inputs(dataset: Dataset, names: Sequence[str] | str) -> Dataset:
    """Keep only the input channels ``names`` (in the dataset's channel order).

    Outputs, trials and split are unchanged; ``provenance["selected_inputs"]`` and
    ``provenance["all_inputs"]`` record the selection. ``"all"`` keeps every input.

    Raises:
        ConfigError: on an unknown or repeated name (lists the dataset's inputs) or an empty
            selection.
    """
    if isinstance(names, str):
        if names == "all":
            return dataset
        raise ConfigError(f"inputs must be \"all\" or a list of input names, got {names!r}")
    chosen = list(names)
    if not chosen:
        raise ConfigError("an input selection must name at least one input")
    for name in chosen:
        if name not in dataset.input_names:
            raise unknown_name_error("input", str(name), list(dataset.input_names))
    if len(set(chosen)) != len(chosen):
        raise ConfigError(f"input selection {chosen} names an input twice")
    keep = [i for i, n in enumerate(dataset.input_names) if n in set(chosen)]
    provenance = dict(dataset.provenance)
    provenance.setdefault("all_inputs", list(dataset.input_names))
    provenance["selected_inputs"] = [dataset.input_names[i] for i in keep]
    return replace(
        dataset,
        inputs=dataset.inputs[:, :, keep],
        input_names=tuple(dataset.input_names[i] for i in keep),
        provenance=provenance,
    )


def _folder(data_dir: str | Path) -> Path:
    """``data_dir`` with ``..`` collapsed lexically (``out/exp1/../data`` -> ``out/data``), so
    the cache is found before the experiment's own folder exists."""
    return Path(os.path.normpath(Path(data_dir)))


def _check_path_dataset(spec: DatasetSpec) -> Path:
    _load_path_dataset(spec)
    return Path(spec.path or "")


def _load_path_dataset(spec: DatasetSpec) -> Dataset:
    """The ``path`` file of ``spec``, loaded and checked (a train dataset needs a split)."""
    from neuroreduce.datasets.io import load_dataset

    path = Path(spec.path or "")
    dataset = load_dataset(path)
    if spec.role == "train" and dataset.split is None:
        raise DatasetError(
            f"dataset {path} has no train/valid/test split; import it with a split or set "
            "role = \"test\""
        )
    return dataset


def _verified(path: Path, full_hash: str) -> bool:
    from neuroreduce.datasets.io import load_dataset

    try:
        dataset = load_dataset(path)
    except DatasetError:
        return False
    return dataset.provenance.get("dataset_spec_hash") == full_hash


def _settings(spec: DatasetSpec, backend: Any) -> Any:
    from neuroreduce.pipeline import SimulationSettings

    options: dict[str, Any] = {
        "parameter_set": spec.parameter_set,
        "reader": spec.reader,
        "dt_ms": spec.dt_ms,
        "ablated": tuple(spec.ablated),
        "workers": int(getattr(backend, "workers", 1) or 1),
    }
    known = {f.name for f in fields(SimulationSettings)}
    if backend is not None and "backend" in known:  # scale-out fields, when present
        options["backend"] = getattr(backend, "kind", "local")
    if backend is not None and "address" in known:
        options["address"] = getattr(backend, "address", None)
    return SimulationSettings(**options)


def _draw_stimuli(
    spec: DatasetSpec, scenario: Any
) -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...], list[tuple[str, str]]]:
    """Currents ``[trial, time, input]`` (nA) on the ``dt_out_ms`` grid, families, JSON params
    and ``(group, family)`` of each trial (trials are stored group after group)."""
    from neuroreduce.simulators.base import n_samples
    from neuroreduce.stimuli import generate_stimuli

    draw_dt = spec.stimulus_dt_ms or spec.dt_out_ms
    every = int(round(spec.dt_out_ms / draw_dt))
    n_draw = n_samples(scenario.duration_ms, draw_dt)
    n_time = n_samples(scenario.duration_ms, spec.dt_out_ms)
    amplitude = spec.amplitude_na or scenario.amplitude_range_na
    groups = spec.mix or (
        MixGroup(name="all", inputs=scenario.inputs, stimuli=spec.stimuli),
    )
    from neuroreduce.limits import check_simulation

    check_simulation(n_stimuli=spec.stimuli, n_time=max(n_draw, n_time),  # before allocating
                     n_channels=len(scenario.inputs) + len(scenario.outputs))
    currents = np.zeros((spec.stimuli, n_time, len(scenario.inputs)))
    families: list[str] = []
    params: list[str] = []
    strata: list[tuple[str, str]] = []
    first = 0
    for group in groups:
        stim = generate_stimuli(
            n_inputs=len(group.inputs),
            n_time=n_draw,
            dt_ms=draw_dt,
            n_trials=group.stimuli,
            amplitude_range_na=group.amplitude_na or amplitude,
            families=group.families or spec.families,
            seed=spec.seed,
            first_trial=first,
        )
        columns = [scenario.inputs.index(n) for n in group.inputs]
        sampled = stim.currents[:, ::every]
        if sampled.shape[1] != n_time:  # guarded by _check_simulator; kept as a safety net
            raise ConfigError(f"stimulus grid {draw_dt} ms does not subsample to {n_time} samples")
        currents[first : first + group.stimuli][:, :, columns] = sampled
        families.extend(stim.families)
        for text in stim.params:
            record = json.loads(text)
            if spec.mix:
                record["group"] = group.name
                record["inputs"] = list(group.inputs)
            params.append(json.dumps(record, sort_keys=True))
        strata.extend((group.name, f) for f in stim.families)
        first += group.stimuli
    return currents, tuple(families), tuple(params), strata


def _group_ranges(mix: tuple[MixGroup, ...]) -> list[dict[str, Any]]:
    out, first = [], 0
    for g in mix:
        out.append({"name": g.name, "inputs": list(g.inputs), "trials": [first, first + g.stimuli]})
        first += g.stimuli
    return out
