"""The pipeline's public entry points: simulate -> dataset -> train -> evaluate.

Each CLI command calls exactly one function of this module (or of ``reporting``/``demo``).
"""

from __future__ import annotations

import functools
import json
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce._io import (
    check_not_input,
    check_output_target,
    ensure_folder,
    write_json_atomic,
)
from neuroreduce.datasets.dataset import Dataset
from neuroreduce.errors import CheckpointError, ConfigError, DatasetError
from neuroreduce.locks import folder_lock
from neuroreduce.scenarios import Scenario, get_scenario

DATASET_LINK = "dataset.json"

#: What an interrupted ``simulate`` says (the CLI prints it): it keeps no partial results.
SIMULATE_INTERRUPTED = (
    "the dataset was not written; simulate keeps no partial results, so re-running the same "
    "command simulates every trial again from the start"
)


def _says_on_interrupt(message: str) -> Any:
    """Decorator: a bare ``KeyboardInterrupt`` in the function is re-raised carrying ``message``
    (what a re-run will do), which the CLI prints instead of its generic line."""

    def decorate(func: Any) -> Any:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except KeyboardInterrupt as exc:
                if exc.args:
                    raise
                raise KeyboardInterrupt(message) from None

        return wrapper

    return decorate


@dataclass(frozen=True)
class SimulationSettings:
    """How the high-fidelity model is run (ignored by the toy simulator where not applicable).

    Attributes:
        parameter_set: c302 parameter set (``None``: the simulator's default).
        reader: Connectome reader name.
        dt_ms: Integration time step (ms).
        ablated: Neurons whose connections are removed.
        workers: Worker processes (one network each); CPUs of a local Ray instance.
        backend: ``"local"`` (worker processes on this machine) or ``"ray"``.
        address: Ray only: an existing cluster (``"auto"``, ``"ray://head:10001"``); ``None``
            starts a local Ray instance.
    """

    parameter_set: str | None = None
    reader: str = "default"
    dt_ms: float = 0.05
    ablated: tuple[str, ...] = ()
    workers: int = 1
    backend: str = "local"
    address: str | None = None

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")
        if not (isinstance(self.dt_ms, int | float) and math.isfinite(self.dt_ms)
                and self.dt_ms > 0):
            raise ConfigError(f"integration dt_ms must be a finite number > 0, got {self.dt_ms}")
        self.execution_backend()  # checks kind/address

    def execution_backend(self) -> Any:
        """The :class:`neuroreduce.execution.Backend` these settings describe."""
        from neuroreduce.execution import Backend

        return Backend(kind=self.backend, workers=self.workers, address=self.address)

    def simulator_options(self) -> Any:
        """The :class:`neuroreduce.simulators.base.SimulatorOptions` these settings describe."""
        from neuroreduce.simulators.base import SimulatorOptions

        return SimulatorOptions(
            parameter_set=self.parameter_set, reader=self.reader, dt_ms=self.dt_ms,
            ablated=tuple(self.ablated),
        )


def run_simulator(
    scenario: Scenario,
    currents: np.ndarray,
    *,
    dt_out_ms: float,
    settings: SimulationSettings,
    progress: bool = True,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Run the scenario's simulator (found through its registry entry) on ``currents``.

    Args:
        scenario: The scenario; ``scenario.simulator`` names the registry entry.
        currents: ``[trial, time, input]`` (nA) on the ``dt_out_ms`` grid.
        dt_out_ms: Sampling interval of inputs and outputs (ms).
        settings: Simulator options and the execution backend (used by simulators that run
            trials in worker processes).
        progress: Show a progress bar over trials.

    Returns:
        Outputs ``[trial, time, output]`` (mV) and the simulator's provenance.

    Raises:
        ConfigError: on an unknown simulator or options that do not fit it (one line).
    """
    from neuroreduce.simulators.registry import entry_for

    entry = entry_for(scenario)
    options = settings.simulator_options()
    entry.validate(scenario, options, dt_out_ms=dt_out_ms)
    return entry.run_many(
        scenario, options, currents, dt_out_ms=dt_out_ms,
        backend=settings.execution_backend(), progress=progress,
    )


@_says_on_interrupt(SIMULATE_INTERRUPTED)
def simulate(
    scenario: str,
    *,
    n_stimuli: int = 40,
    dt_out_ms: float | None = 0.5,
    seed: int = 0,
    settings: SimulationSettings | None = None,
    split_fractions: tuple[float, float, float] = (0.5, 0.25, 0.25),
    out: str | Path | None = None,
    progress: bool = True,
    families: tuple[str, ...] | None = None,
    duration_ms: float | None = None,
    options: dict[str, Any] | None = None,
) -> Dataset:
    """Simulate a scenario under a seeded diverse stimulus set and build a split dataset.

    Args:
        scenario: Registered scenario name (e.g. ``"fcm"``).
        n_stimuli: Number of trials (distinct stimuli).
        dt_out_ms: Sampling interval of inputs and outputs (ms); 0.5 gives 1001 samples per
            500 ms trial.
        seed: Seeds stimuli and the train/valid/test split.
        settings: Simulator settings (parameter set, reader, dt, ablation, workers, backend).
        split_fractions: Train/valid/test fractions, stratified by stimulus family.
        out: If given, the dataset is written there (HDF5, atomically).
        families: Stimulus families (``None``: the diverse set). A set with a held-out
            (battery) family puts every trial in the test split, so it never trains a model.
        duration_ms: Trial length (ms) of generators with run options (``l5pc``).
        options: Generator options (``simulate --option``) of generators with run options.

    Returns:
        The dataset (inputs in nA, outputs in mV).
    """
    from neuroreduce.datasets.io import save_dataset
    from neuroreduce.limits import check_simulation
    from neuroreduce.simulators.toy_tasks import TASK_GENERATORS
    from neuroreduce.stimuli import diverse_set

    run_gen = TASK_GENERATORS[scenario] if scenario in TASK_GENERATORS else None
    if run_gen is not None and run_gen.run_options:  # e.g. l5pc: its own duration and runner
        if out is not None:
            check_output_target(out)
            ensure_folder(Path(out).parent)
        return run_gen.make(int(n_stimuli), seed=seed, dt_ms=dt_out_ms or run_gen.default_dt_ms,
                            duration_ms=duration_ms, settings=settings or SimulationSettings(),
                            out=out, progress=progress, options=options)
    if duration_ms is not None or options:
        raise ConfigError(f"--duration-ms and --option apply to generators such as l5pc, not "
                          f"to {scenario!r}")
    dt_out_ms = 0.5 if dt_out_ms is None else dt_out_ms
    if isinstance(n_stimuli, bool) or not isinstance(n_stimuli, numbers.Integral):
        raise ConfigError(f"the number of stimuli must be an integer, got {n_stimuli!r}")
    if (isinstance(dt_out_ms, bool) or not isinstance(dt_out_ms, int | float)
            or not math.isfinite(dt_out_ms) or dt_out_ms <= 0):
        raise ConfigError(f"dt_out_ms (--dt-out) must be a finite number > 0, got {dt_out_ms}")
    if scenario in TASK_GENERATORS:  # typed toy tasks: at most 500 ms, a few channels
        check_simulation(n_stimuli=n_stimuli, n_time=max(200.0, 500 / dt_out_ms + 1),
                         n_channels=8)
    else:  # memory of the trial arrays, before any stimulus is drawn
        sc = get_scenario(scenario)
        check_simulation(n_stimuli=n_stimuli, n_time=sc.duration_ms / dt_out_ms + 1,
                         n_channels=len(sc.inputs) + len(sc.outputs))
    if out is not None:  # refuse a folder, device, FIFO or foreign symlink before simulating
        check_output_target(out)
        ensure_folder(Path(out).parent)
    if scenario in TASK_GENERATORS:  # typed tasks bring their own stimuli and fields
        dataset = TASK_GENERATORS[scenario].make(n_stimuli, seed=seed, dt_ms=dt_out_ms)
        if out is not None:
            save_dataset(dataset, out)
        return dataset
    if n_stimuli < 3:
        raise ConfigError(f"need at least 3 stimuli (one per split), got {n_stimuli}")
    settings = settings or SimulationSettings()
    sc = get_scenario(scenario)
    if families is None:
        stim = diverse_set(sc, dt_ms=dt_out_ms, n_trials=n_stimuli, seed=seed)
    else:
        stim = _family_set(sc, tuple(families), dt_out_ms=dt_out_ms, n_trials=n_stimuli,
                           seed=seed)
    outputs, sim_prov = run_simulator(
        sc, stim.currents, dt_out_ms=dt_out_ms, settings=settings, progress=progress
    )
    provenance = {
        "scenario": sc.name,
        "stimulus_seed": seed,
        "n_stimuli": n_stimuli,
        "duration_ms": sc.duration_ms,
        "split_fractions": list(split_fractions),
        **{f"simulator.{k}": v for k, v in sim_prov.items()},
    }
    dataset = Dataset(
        inputs=stim.currents,
        outputs=outputs,
        dt_ms=dt_out_ms,
        input_names=sc.inputs,
        output_names=sc.outputs,
        families=stim.families,
        stimulus_params=stim.params,
        split=_split_for(stim.families, split_fractions, seed),
        provenance=provenance,
    )
    if out is not None:
        save_dataset(dataset, out)
    return dataset


def _family_set(sc: Scenario, families: tuple[str, ...], *, dt_out_ms: float, n_trials: int,
                seed: int) -> Any:
    """The stimuli of ``simulate --families``: ``families`` in turn on the scenario's grid."""
    from neuroreduce.simulators.base import n_samples
    from neuroreduce.stimuli import generate_stimuli

    return generate_stimuli(n_inputs=len(sc.inputs), n_time=n_samples(sc.duration_ms, dt_out_ms),
                            dt_ms=dt_out_ms, n_trials=n_trials,
                            amplitude_range_na=sc.amplitude_range_na, families=families,
                            seed=seed)


def _split_for(families: tuple[str, ...], fractions: tuple[float, float, float],
               seed: int) -> np.ndarray:
    """Stratified split, or all test trials when a held-out (battery) family is present."""
    from neuroreduce.datasets.splits import make_splits
    from neuroreduce.stimuli import held_out_families

    if set(families) & set(held_out_families()):
        return np.full(len(families), 2, dtype=np.int8)
    return make_splits(families, fractions=fractions, seed=seed)




def import_dataset(
    fmt: str,
    source: str | Path,
    *,
    out: str | Path,
    input_names: tuple[str, ...] | None = None,
    output_names: tuple[str, ...] | None = None,
    input_units: str | None = None,
    output_units: str | None = None,
    seed: int = 0,
    split_fractions: tuple[float, float, float] = (0.5, 0.25, 0.25),
    options: dict[str, Any] | None = None,
) -> Dataset:
    """Import external data with a registered importer, split it (if not split), write ``out``.

    Args:
        fmt: A registered importer (``neuroreduce importers`` lists them: ``dat``, the paper's
            published folder of whitespace files; ``csv``, a folder with one CSV per trial;
            ``npz``, one file; competition recordings, NWB, whole-brain imaging, ...).
        source: Its folder or file.
        input_names, output_names, input_units, output_units: Shorthands for the options of
            the same names (dat defaults to the paper's PLML PLMR AVBL AVBR -> DB1 LUAL PVR
            VB1; csv needs the names).
        seed: Seed of the split, when the data has none.
        options: The importer's other options by name (see its options dataclass).
    """
    from neuroreduce.datasets.importer_registry import run_import
    from neuroreduce.datasets.io import save_dataset
    from neuroreduce.datasets.splits import with_splits

    check_not_input(out, inputs=(source,), folders=(source,))  # never overwrite the source
    values: dict[str, Any] = dict(options or {})
    for key, value in (("input_names", input_names), ("output_names", output_names),
                       ("input_units", input_units), ("output_units", output_units)):
        if value:
            values[key] = tuple(value) if isinstance(value, list | tuple) else value
    dataset = run_import(fmt, source, values)
    if dataset.split is None:
        dataset = with_splits(dataset, fractions=split_fractions, seed=seed)
    save_dataset(dataset, out)
    return dataset


def train_from_file(
    dataset_path: str | Path,
    config: Any,
    out_dir: str | Path,
    *,
    resume: bool = True,
    progress: bool = True,
    stream: bool = False,
) -> Any:
    """Load a dataset file and train ``config`` (a ``TrainConfig``) into ``out_dir``.

    The run folder remembers the dataset's path and content hash (``dataset.json``) so
    ``evaluate``/``report`` find it again.

    Args:
        stream: Read minibatches from the file instead of loading it (for files larger than
            memory; same results). The stored content hash is trusted rather than recomputed.
    """
    from neuroreduce.training import train

    with folder_lock(out_dir):  # held until dataset.json is written (train nests in it)
        if stream:
            from neuroreduce.datasets.streaming import StreamingDataset

            with StreamingDataset(dataset_path) as source:
                result = train(source, config, out_dir, resume=resume, progress=progress,
                               dataset_path=dataset_path)
                content_hash = source.content_hash()
        else:
            from neuroreduce.datasets.io import load_dataset

            dataset = load_dataset(dataset_path)
            result = train(dataset, config, out_dir, resume=resume, progress=progress,
                           dataset_path=dataset_path)
            content_hash = result.dataset_hash  # computed once, by train
        write_json_atomic(
            Path(out_dir) / DATASET_LINK,
            {"path": str(Path(dataset_path).resolve()), "content_hash": content_hash},
        )
    return result


def dataset_of_run(run_dir: str | Path, dataset_path: str | Path | None = None) -> Dataset:
    """Load the dataset a run was trained on, checking its fingerprint, or ``dataset_path``
    (any dataset with the run's input/output names, e.g. new stimuli)."""
    from neuroreduce.datasets.io import load_dataset

    run_dir = Path(run_dir)
    link = run_dir / DATASET_LINK
    expected = None
    if link.exists():
        try:
            info = json.loads(link.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise CheckpointError(
                f"{link} is corrupt ({type(exc).__name__}); pass the dataset with --dataset"
            ) from None
        if not isinstance(info, dict) or not all(
                isinstance(info.get(k), str | None) for k in ("path", "content_hash")):
            raise CheckpointError(f"{link} is corrupt (not an object of strings); pass the "
                                  "dataset with --dataset")
        if dataset_path is None:  # the recorded dataset must be unchanged; another one is the
            expected = info.get("content_hash")  # user's choice (checked for names/units later)
            dataset_path = info.get("path")
    if dataset_path is None:
        raise CheckpointError(
            f"{run_dir} does not say which dataset it was trained on; pass it with --dataset"
        )
    dataset = load_dataset(dataset_path)
    if expected is not None and dataset.content_hash() != expected:
        raise DatasetError(
            f"dataset {dataset_path} has changed since {run_dir} was trained (content hash "
            "differs); pass the original file with --dataset or retrain"
        )
    return dataset


def evaluate(run_dir: str | Path, *, dataset_path: str | Path | None = None,
             spike_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Free-running prediction of every trial, scored per split, mean ± std over seeds.

    A run of the schema-v1 task (``inputs`` -> ``outputs``) gets RMSE/NRMSE per split and
    output (``results["splits"]``, as always); a run on typed fields gets every predicted
    field scored by its kind's metrics (``results["fields"]``, see
    :mod:`neuroreduce.evaluation.field_results`). Writes ``results.json`` and ``results.csv``
    into ``run_dir``, under the run folder's lock (:mod:`neuroreduce.locks`): a run that is
    being trained (or evaluated) by another process is refused at once, never read half-written.

    A dataset with repeated stimuli (a group field ``stimulus``) also gets the spike-timing
    metrics of its voltage and spike heads, per stimulus and overall, with ``spike_options``
    (:class:`~neuroreduce.evaluation.spike_scoring.SpikeScoring`: window, thresholds).

    Returns:
        The results structure.

    Raises:
        FolderBusyError: if another process is writing ``run_dir``.
    """
    if not Path(run_dir).is_dir():  # never create a folder to evaluate: load_run says why
        return _evaluate(run_dir, dataset_path=dataset_path, spike_options=spike_options)
    with folder_lock(run_dir):
        return _evaluate(run_dir, dataset_path=dataset_path, spike_options=spike_options)


def _evaluate(run_dir: str | Path, *, dataset_path: str | Path | None,
              spike_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """:func:`evaluate`'s work (the caller holds the run folder's lock)."""
    from neuroreduce.evaluation.evaluate import evaluate_predictions, write_results
    from neuroreduce.evaluation.field_results import evaluate_fields
    from neuroreduce.training import check_compatible, load_run, predict, predict_fields

    run = load_run(run_dir)
    dataset = dataset_of_run(run_dir, dataset_path)
    check_compatible(run, dataset)
    source_hash = dataset.content_hash()
    if run.config.split is not None:  # the pieces the run was trained and tested on
        from neuroreduce.datasets.pieces import apply_split

        dataset = apply_split(dataset, run.config.split, seed=run.config.seeds[0])
    if run.io.layout is None:
        from neuroreduce.trust.predict import trust_results, write_calibration

        predictions = predict(run, dataset.inputs)
        results = evaluate_predictions(dataset, predictions, seeds=tuple(run.config.seeds))
        trust, calibration = trust_results(dataset, predictions)
        results.update(trust)
        if calibration is not None:
            write_calibration(run_dir, calibration)
    else:
        layout = run.io.layout
        predictions = predict_fields(run, dataset)
        from neuroreduce.evaluation.spike_scoring import SpikeScoring, default_spike_metrics
        from neuroreduce.trust.predict import trust_of_fields

        options = SpikeScoring.from_dict(spike_options)
        results = {
            "seeds": list(run.config.seeds),
            "trust": trust_of_fields(dataset, predictions, layout),
            "fields": evaluate_fields(dataset, predictions, layout,
                                      metrics=default_spike_metrics(dataset, options.group),
                                      spike_options=options),
        }
    results["run"] = str(Path(run_dir))
    results["dataset_hash"] = source_hash
    results["output_units"] = dataset.output_units
    write_results(run_dir, results)
    return results
