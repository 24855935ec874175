"""The declaration of one experiment dataset: :class:`DatasetSpec`, parsed and fingerprinted.

See :mod:`neuroreduce.experiments.datasets` for the keys of a ``[datasets.<name>]`` table and for
how a spec becomes a file.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from neuroreduce.errors import ConfigError, DatasetError, unknown_name_error
from neuroreduce.jsonfiles import frozen, thawed
from neuroreduce.simulators.base import SimulatorOptions

#: Bumped whenever the way a declared dataset is generated changes (stimulus drawing, mixing,
#: split rule) so cached files made the old way are not reused.
GENERATION_VERSION = 1
#: Roles: "train" datasets are split 50/25/25; "test" datasets are evaluation-only (all trials
#: in the test split).
ROLES: tuple[str, ...] = ("train", "test")
TRAIN_FRACTIONS: tuple[float, float, float] = (0.5, 0.25, 0.25)

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_SIMULATION_KEYS = (
    "scenario", "stimuli", "dt_out_ms", "seed", "parameter_set", "reader", "dt_ms", "ablated",
    "families", "amplitude_na", "stimulus_dt_ms", "mix", "allow_held_out",
)
#: Keys of a ``[datasets.<name>]`` table.
DATASET_KEYS: tuple[str, ...] = (*_SIMULATION_KEYS, "role", "test_for", "path", "importer",
                                 "source", "options", "duration_ms", "train_trials")
#: Keys of a dataset built by a typed-task generator (``scenario`` names one of
#: :data:`neuroreduce.simulators.toy_tasks.TASK_GENERATORS`).
GENERATOR_KEYS: tuple[str, ...] = ("scenario", "stimuli", "dt_out_ms", "seed", "role", "test_for",
                                   "train_trials")
#: More keys of a generator with its own runner (``TaskGenerator.run_options``, e.g. ``l5pc``):
#: trial length (ms), NEURON's step (ms) and the generator's options (``simulate --option``).
RUN_OPTION_KEYS: tuple[str, ...] = ("duration_ms", "dt_ms", "options")
#: Keys of a dataset read by a registered importer (``importer`` names one of
#: :func:`neuroreduce.datasets.importer_registry.list_importers`).
IMPORT_KEYS: tuple[str, ...] = ("importer", "source", "options", "seed", "role", "test_for",
                                "train_trials")
#: Keys of one ``mix`` group.
MIX_KEYS: tuple[str, ...] = ("name", "inputs", "stimuli", "families", "amplitude_na")


@dataclass(frozen=True)
class MixGroup:
    """One behaviour of a multi-behaviour dataset.

    Attributes:
        name: Group label (stored per trial and used to stratify the split).
        inputs: Input channels this group's trials drive (a subset of the scenario's inputs);
            the others stay 0 nA.
        stimuli: Number of trials of this group.
        families: Stimulus families (``None``: the dataset's ``families``, else the diverse set).
        amplitude_na: ``(min, max)`` peak amplitude (nA); ``None``: the dataset's.
    """

    name: str
    inputs: tuple[str, ...]
    stimuli: int
    families: tuple[str, ...] | None = None
    amplitude_na: tuple[float, float] | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset declared in an experiment file (see the module docstring).

    Attributes:
        name: Dataset name (``[A-Za-z0-9_-]+``), the table's key.
        scenario: Registered scenario (inputs, outputs, duration, default amplitudes).
        stimuli: Number of trials (the sum over ``mix`` groups when mixing).
        dt_out_ms: Sampling interval of inputs and outputs (ms).
        seed: Seeds the stimuli and the split.
        parameter_set: c302 parameter set (``None``: the simulator's default, C0).
        reader: Connectome reader.
        dt_ms: NEURON integration step (ms).
        ablated: Neurons whose connections are removed.
        families: Stimulus families (``None``: the diverse training families).
        amplitude_na: ``(min, max)`` peak amplitude (nA); ``None``: the scenario's range.
        stimulus_dt_ms: Grid the stimuli are drawn on before being subsampled to ``dt_out_ms``
            (ms; ``None``: ``dt_out_ms``). Datasets at different ``dt_out_ms`` with the same
            ``stimulus_dt_ms`` and seed get the same stimuli (the paper's 0.5 vs 0.1 ms data).
        mix: Groups of a multi-behaviour dataset (empty: one group driving every input).
        role: ``"train"`` (split 50/25/25 stratified by family) or ``"test"`` (all trials in
            the test split, for evaluation only).
        path: An existing dataset file to use instead of simulating (absolute, or resolved
            against ``base_dir`` by :meth:`from_dict`).
        test_for: ``role = "test"`` only: names of the training datasets whose cells this set
            evaluates (e.g. the spiking-model OOD set only for cells trained on spiking data);
            ``None``: every cell it fits. Not part of :meth:`spec_hash` (it does not change
            the data).
        generator: A typed-task generator (:data:`~neuroreduce.simulators.toy_tasks.
            TASK_GENERATORS`, e.g. ``"toy_spikes"``) that builds the whole dataset (its own
            stimuli, typed fields and split), written ``scenario = "toy_spikes"`` in the file;
            ``scenario`` is then ``None``.
        importer: A registered importer (``neuroreduce importers``) that reads ``source``
            (recordings, imaging files); ``scenario`` is then ``None``. A dataset without a
            split of its own is split 50/25/25 with ``seed``.
        source: The importer's file or folder (absolute, or resolved against ``base_dir``).
        import_options: The importer's options as sorted ``(name, value)`` pairs.
        allow_held_out: Let a ``role = "train"`` dataset draw held-out (battery) families
            (:func:`neuroreduce.stimuli.held_out_families`); refused otherwise.
        duration_ms: Trial length (ms) of a generator with its own runner (``l5pc``);
            ``None``: the generator's default.
        generator_options: That generator's options (``simulate --option``) as sorted
            ``(name, value)`` pairs, e.g. ``nmda = false``.
        train_trials: Keep only the first this many training trials (in trial order); the
            validation and test trials stay as they are, so datasets that differ only here
            share their test set (curves of accuracy against data size). ``None``: all.
    """

    name: str
    scenario: str | None = None
    stimuli: int = 40
    dt_out_ms: float = 0.5
    seed: int = 0
    parameter_set: str | None = None
    reader: str = "default"
    dt_ms: float = 0.05
    ablated: tuple[str, ...] = ()
    families: tuple[str, ...] | None = None
    amplitude_na: tuple[float, float] | None = None
    stimulus_dt_ms: float | None = None
    mix: tuple[MixGroup, ...] = ()
    role: str = "train"
    path: str | None = None
    test_for: tuple[str, ...] | None = None
    generator: str | None = None
    importer: str | None = None
    source: str | None = None
    import_options: tuple[tuple[str, Any], ...] = ()
    allow_held_out: bool = False
    duration_ms: float | None = None
    generator_options: tuple[tuple[str, Any], ...] = ()
    train_trials: int | None = None

    @classmethod
    def from_dict(
        cls, name: str, table: Mapping[str, Any], *, base_dir: str | Path | None = None
    ) -> DatasetSpec:
        """Parse and check one ``[datasets.<name>]`` table.

        Args:
            name: The table's key.
            table: Its keys (see :data:`DATASET_KEYS`).
            base_dir: Folder a relative ``path`` is resolved against (the experiment file's
                folder); ``None`` keeps it relative to the current directory.

        Raises:
            ConfigError: naming the bad key and the allowed keys or values.
        """
        where = f"[datasets.{name}]"
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"dataset name {name!r} must match [A-Za-z0-9_-]+; rename the table")
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where} must be a table of keys ({', '.join(DATASET_KEYS)})")
        _check_keys(table, DATASET_KEYS, where)
        role = _choice(table.get("role", "train"), ROLES, f"{where} role")
        test_for = None
        if "test_for" in table:
            if role != "test":
                raise ConfigError(f"{where} test_for: only a role = \"test\" dataset has it")
            test_for = _names(table["test_for"], f"{where} test_for")
        train_trials = _train_trials(table, role, where)
        if "path" in table:
            extra = [k for k in (*_SIMULATION_KEYS, "duration_ms", "options") if k in table]
            if extra:
                raise ConfigError(
                    f"{where}: key {extra[0]!r} cannot be combined with 'path' (a file is loaded, "
                    "not simulated); remove one of them"
                )
            path = _text(table["path"], f"{where} path")
            resolved = Path(path).expanduser()
            if base_dir is not None and not resolved.is_absolute():
                resolved = Path(base_dir) / resolved
            return cls(name=name, role=role, path=str(resolved), test_for=test_for,
                       train_trials=train_trials)
        if "importer" in table:
            spec = cls._imported(name, table, where, role=role, test_for=test_for,
                                 base_dir=base_dir)
            return replace(spec, train_trials=train_trials)
        if "scenario" not in table:
            raise ConfigError(f"{where} needs 'scenario' (to simulate), 'importer' (to import "
                              "recordings) or 'path' (to load a file)")
        from neuroreduce.scenarios import get_scenario, list_scenarios
        from neuroreduce.simulators.toy_tasks import TASK_GENERATORS

        which = _text(table["scenario"], f"{where} scenario")
        if which in TASK_GENERATORS and which not in list_scenarios():
            spec = cls._generated(name, which, table, where, role=role, test_for=test_for)
            return replace(spec, train_trials=train_trials)
        for key in ("duration_ms", "options"):
            if key in table:
                raise ConfigError(f"{where}: key {key!r} does not apply to scenario {which!r} "
                                  "(it applies to generators with their own runner, such as "
                                  "l5pc)")
        if which not in list_scenarios():
            raise unknown_name_error("scenario", which, [*list_scenarios(), *TASK_GENERATORS])
        scenario = get_scenario(which)
        families = _families(table.get("families"), f"{where} families")
        amplitude = _amplitude(table.get("amplitude_na"), f"{where} amplitude_na")
        mix = _mix(table.get("mix"), scenario.inputs, where) if "mix" in table else ()
        if mix and "stimuli" in table:
            raise ConfigError(
                f"{where}: give 'stimuli' per mix group, not for the whole dataset (remove it)"
            )
        stimuli = sum(g.stimuli for g in mix) if mix else _int(table.get("stimuli", 40),
                                                                f"{where} stimuli", minimum=1)
        if role == "train" and stimuli < 3:
            raise ConfigError(f"{where} stimuli: a train dataset needs >= 3 trials (one per split)")
        allow = table.get("allow_held_out", False)
        if not isinstance(allow, bool):
            raise ConfigError(f"{where} allow_held_out must be true or false, got {allow!r}")
        _refuse_held_out(role, allow, [families, *(g.families for g in mix)], where)
        spec = cls(
            name=name,
            scenario=scenario.name,
            stimuli=stimuli,
            dt_out_ms=_positive(table.get("dt_out_ms", 0.5), f"{where} dt_out_ms"),
            seed=_int(table.get("seed", 0), f"{where} seed", minimum=0),
            parameter_set=(
                None if table.get("parameter_set") is None
                else _text(table["parameter_set"], f"{where} parameter_set")
            ),
            reader=_text(table.get("reader", "default"), f"{where} reader"),
            dt_ms=_positive(table.get("dt_ms", 0.05), f"{where} dt_ms"),
            ablated=_names(table.get("ablated", []), f"{where} ablated"),
            families=families,
            amplitude_na=amplitude,
            stimulus_dt_ms=(
                None if table.get("stimulus_dt_ms") is None
                else _positive(table["stimulus_dt_ms"], f"{where} stimulus_dt_ms")
            ),
            mix=mix,
            role=role,
            test_for=test_for,
            allow_held_out=allow,
        )
        spec._check_simulator(where)
        return replace(spec, train_trials=train_trials)

    @classmethod
    def _generated(cls, name: str, generator: str, table: Mapping[str, Any], where: str, *,
                   role: str, test_for: tuple[str, ...] | None) -> DatasetSpec:
        """Dataset ``name`` built by the typed-task generator ``generator`` (keys
        :data:`GENERATOR_KEYS`)."""
        from neuroreduce.simulators.toy_tasks import get_task_generator

        gen = get_task_generator(generator)
        allowed = (*GENERATOR_KEYS, *(RUN_OPTION_KEYS if gen.run_options else ()))
        for key in table:
            if key not in allowed:
                raise ConfigError(f"{where}: key {key!r} does not apply to task generator "
                                  f"{generator!r}; allowed keys: {', '.join(allowed)}")
        stimuli = _int(table.get("stimuli", 40), f"{where} stimuli", minimum=1)
        if role == "train" and stimuli < 3:
            raise ConfigError(f"{where} stimuli: a train dataset needs >= 3 trials (one per split)")
        raw = table.get("options", {})
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where} options must be a table, e.g. {{ nmda = false }}")
        spec = cls(
            name=name, stimuli=stimuli,
            dt_out_ms=_positive(table.get("dt_out_ms", gen.default_dt_ms), f"{where} dt_out_ms"),
            seed=_int(table.get("seed", 0), f"{where} seed", minimum=0),
            role=role, test_for=test_for, generator=generator,
            dt_ms=_positive(table.get("dt_ms", 0.05), f"{where} dt_ms"),
            duration_ms=(None if "duration_ms" not in table
                         else _positive(table["duration_ms"], f"{where} duration_ms")),
            generator_options=tuple(sorted((str(k), frozen(v)) for k, v in raw.items())),
        )
        if gen.check_options is not None:  # unknown options: one line now, not at run time
            try:
                gen.check_options(**spec.run_settings())
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from None
        return spec

    def run_settings(self) -> dict[str, Any]:
        """A runner generator's keyword settings: ``seed``, ``dt_out_ms``, ``duration_ms``,
        ``dt_ms`` and ``options`` (plain values)."""
        return {"seed": self.seed, "dt_out_ms": self.dt_out_ms, "duration_ms": self.duration_ms,
                "dt_ms": self.dt_ms,
                "options": {k: thawed(v) for k, v in self.generator_options}}

    @classmethod
    def _imported(cls, name: str, table: Mapping[str, Any], where: str, *, role: str,
                  test_for: tuple[str, ...] | None,
                  base_dir: str | Path | None) -> DatasetSpec:
        """Dataset ``name`` read by a registered importer (keys :data:`IMPORT_KEYS`)."""
        from neuroreduce.datasets.importer_registry import importer_options, options_to_dict

        for key in table:
            if key not in IMPORT_KEYS:
                raise ConfigError(f"{where}: key {key!r} does not apply to an imported dataset; "
                                  f"allowed keys: {', '.join(IMPORT_KEYS)}")
        importer = _text(table["importer"], f"{where} importer")
        if "source" not in table:
            raise ConfigError(f"{where} needs 'source' (the file or folder to import)")
        source = Path(_text(table["source"], f"{where} source")).expanduser()
        if base_dir is not None and not source.is_absolute():
            source = Path(base_dir) / source
        raw = table.get("options", {})
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where} options must be a table, e.g. {{ dt_ms = 0.2 }}")
        try:
            options = options_to_dict(importer_options(importer, raw))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        return cls(
            name=name, seed=_int(table.get("seed", 0), f"{where} seed", minimum=0),
            role=role, test_for=test_for, importer=importer, source=str(source),
            import_options=tuple(sorted((k, frozen(v)) for k, v in options.items())),
        )

    def _check_simulator(self, where: str) -> None:
        from neuroreduce.scenarios import get_scenario

        scenario = get_scenario(self.scenario or "")
        duration = scenario.duration_ms
        steps = duration / self.dt_out_ms
        if abs(steps - round(steps)) > 1e-6:
            raise ConfigError(
                f"{where} dt_out_ms: {self.dt_out_ms} ms does not divide the {duration} ms trials"
            )
        if self.stimulus_dt_ms is not None:
            factor = self.dt_out_ms / self.stimulus_dt_ms
            if abs(factor - round(factor)) > 1e-6 or round(factor) < 1:
                raise ConfigError(
                    f"{where} stimulus_dt_ms: dt_out_ms = {self.dt_out_ms} ms must be a whole "
                    f"multiple of stimulus_dt_ms = {self.stimulus_dt_ms} ms"
                )
        from neuroreduce.simulators.registry import entry_for

        entry_for(scenario).validate(
            scenario, self.simulator_options(), dt_out_ms=self.dt_out_ms, where=where
        )

    def simulator_options(self) -> SimulatorOptions:
        """The simulator options this spec declares (each simulator uses those that apply)."""
        return SimulatorOptions(
            parameter_set=self.parameter_set, reader=self.reader, dt_ms=self.dt_ms,
            ablated=self.ablated,
        )

    @property
    def simulated(self) -> bool:
        """True if the dataset is simulated (not loaded from ``path`` nor imported)."""
        return self.path is None and self.importer is None

    def to_dict(self) -> dict[str, Any]:
        """The spec as a JSON-able table (round-trips through :meth:`from_dict`)."""
        extra = {} if self.test_for is None else {"test_for": list(self.test_for)}
        if self.train_trials is not None:
            extra["train_trials"] = self.train_trials
        if self.path is not None:
            return {"path": self.path, "role": self.role, **extra}
        if self.importer is not None:
            return {"importer": self.importer, "source": self.source,
                    "options": {k: thawed(v) for k, v in self.import_options},
                    "seed": self.seed, "role": self.role, **extra}
        if self.generator is not None:
            table = {"scenario": self.generator, "stimuli": self.stimuli,
                     "dt_out_ms": self.dt_out_ms, "seed": self.seed, "role": self.role, **extra}
            if self._runner_generator():
                table.update(dt_ms=self.dt_ms,
                             options={k: thawed(v) for k, v in self.generator_options})
                if self.duration_ms is not None:
                    table["duration_ms"] = self.duration_ms
            return table
        out: dict[str, Any] = {
            "scenario": self.scenario,
            "dt_out_ms": self.dt_out_ms,
            "seed": self.seed,
            "reader": self.reader,
            "dt_ms": self.dt_ms,
            "ablated": list(self.ablated),
            "role": self.role,
        }
        if self.parameter_set is not None:
            out["parameter_set"] = self.parameter_set
        if self.families is not None:
            out["families"] = list(self.families)
        if self.amplitude_na is not None:
            out["amplitude_na"] = list(self.amplitude_na)
        if self.stimulus_dt_ms is not None:
            out["stimulus_dt_ms"] = self.stimulus_dt_ms
        if self.mix:
            out["mix"] = [
                {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(g).items()
                 if v is not None}
                for g in self.mix
            ]
        else:
            out["stimuli"] = self.stimuli
        if self.allow_held_out:
            out["allow_held_out"] = True
        return {**out, **extra}

    def spec_hash(self) -> str:
        """SHA-256 (hex) over everything that changes the data.

        Covers the declared keys (not the name), the scenario's definition (inputs, outputs,
        duration, amplitude range, ablations), :data:`GENERATION_VERSION`, and the simulator's
        fingerprint from its registry entry (for C. elegans the c302 build key: parameter set,
        reader and its revision, integration step, stimulated cells, c302/NEURON/pyNeuroML/cect
        versions; for the toy its full provenance). A ``path`` dataset hashes the file's stored
        content hash; a task-generator dataset hashes its keys, the generator's name and the
        SHA-256 of the generator's source file (an edit there rebuilds the cached file).

        Raises:
            DatasetError: if a ``path`` dataset's file is missing or not a dataset.
        """
        if self.path is not None:
            payload: dict[str, Any] = {
                "path_content_hash": stored_content_hash(self.path),
                "role": self.role,
            }
            if self.train_trials is not None:
                payload["train_trials"] = self.train_trials
        elif self.importer is not None:
            payload = {
                "spec": {k: v for k, v in self.to_dict().items()
                         if k not in ("test_for", "source")},
                "source_files": source_fingerprint(self.source or ""),
                "importer": _importer_fingerprint(self.importer),
                "generation": GENERATION_VERSION,
            }
        elif self.generator is not None:
            payload = {
                "spec": {k: v for k, v in self.to_dict().items() if k != "test_for"},
                "generator": _generator_fingerprint(self.generator),
                "generation": GENERATION_VERSION,
            }
            data = _generator_data_fingerprint(self)
            if data is not None:  # e.g. l5pc: morphology, NMODL files, NEURON version
                payload["generator_data"] = data
        else:
            payload = {
                "spec": {k: v for k, v in self.to_dict().items() if k != "test_for"},
                "scenario": _scenario_fingerprint(self.scenario or ""),
                "generation": GENERATION_VERSION,
                "simulator": _simulator_fingerprint(self),
            }
            held = _held_out_fingerprint(self)
            if held:  # battery families may change: their source is part of the hash
                payload["held_out_families"] = held
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def _runner_generator(self) -> bool:
        from neuroreduce.simulators.toy_tasks import get_task_generator

        return self.generator is not None and get_task_generator(self.generator).run_options

    @property
    def derived(self) -> bool:
        """True for a ``path`` dataset cut to ``train_trials`` (written as a cached file)."""
        return self.path is not None and self.train_trials is not None

    def file_name(self) -> str:
        """``<name>-<first 12 hex of spec_hash>.h5``."""
        return f"{self.name}-{self.spec_hash()[:12]}.h5"


def _scenario_fingerprint(name: str) -> dict[str, Any]:
    from neuroreduce.scenarios import get_scenario

    sc = get_scenario(name)
    return {
        "inputs": list(sc.inputs),
        "outputs": list(sc.outputs),
        "duration_ms": sc.duration_ms,
        "amplitude_range_na": list(sc.amplitude_range_na),
        "ablated": list(sc.ablated),
        "simulator": sc.simulator,
    }


def _generator_fingerprint(name: str) -> dict[str, Any]:
    from neuroreduce.simulators.toy_tasks import get_task_generator

    return {"name": name, "source_sha256": _module_sha256(get_task_generator(name).make, name)}


def _generator_data_fingerprint(spec: DatasetSpec) -> str | None:
    """The generator's own fingerprint of what it simulates (``TaskGenerator.fingerprint``;
    ``None`` when it has none)."""
    from neuroreduce.simulators.toy_tasks import get_task_generator

    gen = get_task_generator(spec.generator or "")
    return None if gen.fingerprint is None else gen.fingerprint(**spec.run_settings())


def _train_trials(table: Mapping[str, Any], role: str, where: str) -> int | None:
    if "train_trials" not in table:
        return None
    if role != "train":
        raise ConfigError(f"{where} train_trials: only a role = \"train\" dataset has training "
                          "trials; remove it")
    return _int(table["train_trials"], f"{where} train_trials", minimum=1)


def _module_sha256(func: Any, fallback: str) -> str:
    import inspect

    try:
        source = Path(inspect.getsourcefile(func) or "").read_bytes()
    except (OSError, TypeError):
        source = getattr(func, "__qualname__", fallback).encode()
    return hashlib.sha256(source).hexdigest()


def _held_out_fingerprint(spec: DatasetSpec) -> dict[str, str]:
    """SHA-256 of the source of each held-out family the spec draws (empty: none)."""
    from neuroreduce.stimuli import _FAMILIES, held_out_families

    names = [*(spec.families or ()), *(n for g in spec.mix for n in (g.families or ()))]
    held = set(held_out_families())
    return {n: _module_sha256(_FAMILIES[n], n) for n in sorted(set(names) & held)}


def _importer_fingerprint(name: str) -> dict[str, Any]:
    from neuroreduce.datasets.importer_registry import get_importer

    return {"name": name, "source_sha256": _module_sha256(get_importer(name).load, name)}


def source_fingerprint(source: str | Path) -> list[list[Any]]:
    """``[relative path, size, SHA-256]`` of every file of an import source (a file, or all
    files below a folder, sorted), so an edited recording invalidates the cached import.

    Raises:
        DatasetError: if ``source`` does not exist (naming it).
    """
    root = Path(source)
    if not root.exists():
        raise DatasetError(f"import source not found: {root}; check the 'source' key")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    out = []
    for path in files:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        rel = path.name if path == root else str(path.relative_to(root))
        out.append([rel, path.stat().st_size, digest.hexdigest()])
    return out




def _simulator_fingerprint(spec: DatasetSpec) -> dict[str, Any]:
    from neuroreduce.scenarios import get_scenario
    from neuroreduce.simulators.registry import entry_for

    scenario = get_scenario(spec.scenario or "")
    return entry_for(scenario).fingerprint(scenario, spec.simulator_options())


def _check_keys(table: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(
                f"{where}: unknown key {key!r}; allowed keys: {', '.join(allowed)}"
            )


def _choice(value: Any, allowed: Sequence[str], where: str) -> str:
    if value not in allowed:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be a non-empty string, got {value!r}")
    return value


def _int(value: Any, where: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _positive(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where} must be a positive number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{where} must be a positive number, got {value!r}")
    return float(value)


def _names(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(f"{where} must be a list of names, e.g. [\"AVBL\", \"AVBR\"]")
    for item in value:
        _text(item, where)
    return tuple(value)


def _families(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    from neuroreduce.stimuli import list_families

    names = _names(value, where)
    if not names:
        raise ConfigError(f"{where} must name at least one stimulus family")
    known = list_families(held_out=True)
    for name in names:
        if name not in known:
            raise unknown_name_error("stimulus family", name, known)
    return names


def _refuse_held_out(role: str, allow: bool, lists: Sequence[tuple[str, ...] | None],
                     where: str) -> None:
    """Refuse held-out (battery) families in a training dataset unless explicitly allowed."""
    from neuroreduce.stimuli import held_out_families

    if role != "train" or allow:
        return
    held = set(held_out_families())
    bad = [n for names in lists for n in (names or ()) if n in held]
    if bad:
        raise ConfigError(
            f"{where} families: {bad[0]!r} is a held-out battery family, kept out of training "
            "sets; use it in a role = \"test\" dataset (or set allow_held_out = true)"
        )


def _amplitude(value: Any, where: str) -> tuple[float, float] | None:
    if value is None:
        return None
    ok = (
        isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in value)
    )
    if not ok or value[0] > value[1]:
        raise ConfigError(f"{where} must be [min, max] in nA with min <= max, got {value!r}")
    return (float(value[0]), float(value[1]))


def _mix(value: Any, scenario_inputs: tuple[str, ...], where: str) -> tuple[MixGroup, ...]:
    if isinstance(value, Mapping) or not isinstance(value, Sequence) or not value:
        raise ConfigError(
            f"{where} mix must be a non-empty list of tables with keys {', '.join(MIX_KEYS)}"
        )
    groups = []
    for k, item in enumerate(value):
        at = f"{where} mix[{k}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{at} must be a table with keys {', '.join(MIX_KEYS)}")
        _check_keys(item, MIX_KEYS, at)
        for key in ("inputs", "stimuli"):
            if key not in item:
                raise ConfigError(f"{at} needs {key!r}")
        inputs = _names(item["inputs"], f"{at} inputs")
        if not inputs or len(set(inputs)) != len(inputs):
            raise ConfigError(f"{at} inputs must name each input once")
        for name in inputs:
            if name not in scenario_inputs:
                raise unknown_name_error("input", name, list(scenario_inputs))
        name = _text(item.get("name", f"group{k}"), f"{at} name")
        groups.append(
            MixGroup(
                name=name,
                inputs=inputs,
                stimuli=_int(item["stimuli"], f"{at} stimuli", minimum=1),
                families=_families(item.get("families"), f"{at} families"),
                amplitude_na=_amplitude(item.get("amplitude_na"), f"{at} amplitude_na"),
            )
        )
    if len({g.name for g in groups}) != len(groups):
        raise ConfigError(f"{where} mix: group names must differ")
    return tuple(groups)


def stored_content_hash(path: str | Path) -> str:
    """The ``content_hash`` attribute of a dataset file (without loading its arrays).

    Raises:
        DatasetError: if the file is missing or not a neuroreduce dataset.
    """
    import h5py

    source = Path(path)
    if not source.is_file():
        raise DatasetError(f"dataset file not found: {source}; check the 'path' key")
    try:
        with h5py.File(source, "r") as f:
            value = f.attrs["content_hash"]
    except (OSError, KeyError):
        raise DatasetError(f"{source} is not a neuroreduce dataset file; import it first") from None
    return value.decode() if isinstance(value, bytes) else str(value)
