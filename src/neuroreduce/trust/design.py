"""Stimulus design with the simulator in the loop (issue 14, part 4).

Start from a small simulated set, train a seed ensemble, and add the candidate stimuli the
ensemble disagrees on most (member spread of the predicted outputs); simulate them, retrain,
repeat for ``rounds`` rounds. Beside it, *random* sampling of the same candidate pools with the
same budget. After every round both surrogates are scored on the held-out battery
(:mod:`neuroreduce.trust.battery`) and on an in-distribution test set of the diverse families.

Candidates come from a rich generator (:class:`CandidateGenerator`): waveforms of the given
families, mixed with a shared waveform to set the cross-input correlation ``c`` (``c > 0``: a
fraction ``|c|`` of every input is one shared waveform; ``c < 0``: odd inputs get its mirror
``A - s``), and scaled by an amplitude factor; ``(amplitude, correlation)`` of the pool is a
Latin hypercube (space filling). Frequency content comes from the families (sine, chirp, noise
time constants).

Files under the output folder (all written atomically)::

    trials/initial-r0-<key>.npz            round 0 (shared by the strategies)
    trials/<strategy>-r<round>-<key>.npz   the simulated trials a round added (currents nA,
                                            outputs mV); key = SHA-256 of what changes them
                                            (:meth:`DesignConfig.key`), so a design with other
                                            training settings reuses the evaluation sets and
                                            round 0
    trials/eval-<set>-<key>.npz            the battery and in-distribution test sets
    rounds/<strategy>-r<round>-<key>.json  the round's scores
    design.csv, design.json, design.png    held-out error vs simulated trials, both strategies

A loop stopped mid-round resumes from these files without simulating a finished round again.
Simulations go through :func:`neuroreduce.pipeline.run_simulator`, so ``workers`` processes or
Ray run them like any simulation.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import time
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from neuroreduce._io import write_bytes_atomic, write_json_atomic, write_text_atomic
from neuroreduce.errors import ConfigError

#: Selection strategies.
STRATEGIES: tuple[str, ...] = ("disagreement", "random")
_VERSION = 1


@dataclass(frozen=True)
class CandidateGenerator:
    """The rich generator the candidate pools are drawn from.

    Attributes:
        families: Waveform families (``None``: the diverse and out-of-distribution families);
            held-out battery families are refused.
        amplitude_scale: ``(min, max)`` factor on the scenario's amplitude range.
        correlation: ``(min, max)`` cross-input correlation parameter, within ``[-1, 1]``.
        candidates: Candidates per round (the pool; >= ``per_round``).
    """

    families: tuple[str, ...] | None = None
    amplitude_scale: tuple[float, float] = (0.25, 1.5)
    correlation: tuple[float, float] = (-1.0, 1.0)
    candidates: int = 64

    def __post_init__(self) -> None:
        from neuroreduce.stimuli import held_out_families, list_families

        if self.families is not None:
            fams = tuple(self.families)
            object.__setattr__(self, "families", fams)
            if not fams:
                raise ConfigError("generator families must name at least one family")
            for name in fams:
                if name in held_out_families():
                    raise ConfigError(f"generator family {name!r} is a held-out battery family; "
                                      "pick training families (neuroreduce design scores on them)")
                if name not in list_families():
                    raise ConfigError(f"unknown generator family {name!r}; known: "
                                      f"{', '.join(list_families())}")
        for key, lo_ok in (("amplitude_scale", 0.0), ("correlation", -1.0)):
            pair = getattr(self, key)
            ok = (isinstance(pair, list | tuple) and len(pair) == 2
                  and all(isinstance(v, int | float) and not isinstance(v, bool)
                          and math.isfinite(v) for v in pair))
            hi_ok = 1.0 if key == "correlation" else math.inf
            if not ok or not lo_ok <= pair[0] <= pair[1] <= hi_ok:
                raise ConfigError(f"generator {key} must be [min, max] with {lo_ok:g} <= min <= "
                                  f"max{' <= 1' if key == 'correlation' else ''}; got {pair!r}")
            object.__setattr__(self, key, (float(pair[0]), float(pair[1])))
        if isinstance(self.candidates, bool) or not isinstance(self.candidates, int):
            raise ConfigError(f"generator candidates must be an integer, got {self.candidates!r}")
        if self.candidates < 1:
            raise ConfigError(f"the candidate pool is empty (candidates = {self.candidates}); "
                              "set candidates >= per_round")

    def names(self) -> tuple[str, ...]:
        """The families drawn (diverse + out-of-distribution when ``families`` is None)."""
        from neuroreduce.stimuli import diverse_families, ood_families

        return self.families or (*diverse_families(), *ood_families())


@dataclass(frozen=True)
class DesignConfig:
    """A design-in-the-loop study (the ``[design]``, ``[generator]``, ``[training]`` tables).

    Attributes:
        scenario: Registered scenario (e.g. ``"toy"``, ``"fcm"``).
        dt_out_ms: Sampling interval of inputs and outputs (ms).
        initial: Trials simulated before the first round (random from pool 0; >= 3).
        per_round: Trials added per round.
        rounds: Rounds after the initial set (total budget ``initial + rounds * per_round``).
        strategies: Which of :data:`STRATEGIES` to run.
        seed: Seeds the pools, the random picks, the evaluation sets and the ensemble.
        battery_per_family: Trials per held-out battery family in the evaluation set.
        in_distribution: Trials of the diverse families in the in-distribution test set.
        generator: The candidate generator.
        model: Model family of the ensemble.
        hidden: Hidden units.
        members: Seed-ensemble size (>= 2: the spread needs two members).
        epochs: Training epochs per round.
        batch_size: Training minibatch size.
        learning_rate: Adam learning rate (``None``: the family's default).
        parameter_set: c302 parameter set (``None``: the simulator's default).
        dt_ms: Simulator integration step (ms).
        workers: Simulation worker processes.
        backend: ``"local"`` or ``"ray"``.
        address: Ray cluster address (``None``: a local Ray instance).
    """

    scenario: str = "toy"
    dt_out_ms: float = 1.0
    initial: int = 8
    per_round: int = 4
    rounds: int = 3
    strategies: tuple[str, ...] = STRATEGIES
    seed: int = 0
    battery_per_family: int = 2
    in_distribution: int = 8
    generator: CandidateGenerator = field(default_factory=CandidateGenerator)
    model: str = "gru"
    hidden: int = 8
    members: int = 4
    epochs: int = 40
    batch_size: int = 8
    learning_rate: float | None = 0.01
    parameter_set: str | None = None
    dt_ms: float = 0.05
    workers: int = 1
    backend: str = "local"
    address: str | None = None

    def __post_init__(self) -> None:
        from neuroreduce.scenarios import get_scenario

        get_scenario(self.scenario)
        for key in ("initial", "per_round", "rounds", "seed", "battery_per_family",
                    "in_distribution", "hidden", "members", "epochs", "batch_size", "workers"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"design {key} must be an integer >= 0, got {v!r}")
        if self.initial + self.rounds * self.per_round == 0:
            raise ConfigError("the budget is 0 simulated trials; set initial >= 3 (and "
                              "per_round, rounds for more)")
        if self.initial < 3:
            raise ConfigError(f"design initial must be >= 3 trials (train and valid), got "
                              f"{self.initial}")
        if self.rounds > 0 and self.per_round < 1:
            raise ConfigError("design per_round is 0: each round would add nothing; set "
                              "per_round >= 1 or rounds = 0")
        if self.generator.candidates < max(self.per_round, self.initial):
            raise ConfigError(f"the candidate pool ({self.generator.candidates}) is smaller than "
                              f"what a round picks ({max(self.per_round, self.initial)}); raise "
                              "generator candidates")
        strategies = tuple(self.strategies)
        object.__setattr__(self, "strategies", strategies)
        if not strategies or any(s not in STRATEGIES for s in strategies):
            raise ConfigError(f"design strategies must be a non-empty list of "
                              f"{', '.join(STRATEGIES)}; got {list(strategies)}")
        if self.members < 2:
            raise ConfigError(f"design members must be >= 2 (disagreement needs two), got "
                              f"{self.members}")
        if self.battery_per_family < 1:
            raise ConfigError("design battery_per_family must be >= 1")
        if not (isinstance(self.dt_out_ms, int | float) and self.dt_out_ms > 0):
            raise ConfigError(f"design dt_out_ms must be > 0, got {self.dt_out_ms!r}")

    @property
    def budget(self) -> int:
        """Simulated training trials at the end of the loop."""
        return self.initial + self.rounds * self.per_round

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["strategies"] = list(self.strategies)
        return out

    def key(self, scope: str = "rounds") -> str:
        """SHA-256 over what changes the simulated trials (never workers/backend/strategies).

        Args:
            scope: ``"eval"`` (the evaluation sets: scenario, simulator, seed and their sizes),
                ``"initial"`` (round 0: also the generator and ``initial``) or ``"rounds"``
                (later rounds: everything, since the ensemble picks them).
        """
        from neuroreduce.pipeline import SimulationSettings
        from neuroreduce.scenarios import get_scenario
        from neuroreduce.simulators.registry import entry_for

        d = self.to_dict()
        for k in ("workers", "backend", "address", "strategies"):
            d.pop(k)
        if scope in ("eval", "initial"):
            keep = {"scenario", "dt_out_ms", "seed", "parameter_set", "dt_ms",
                    "battery_per_family", "in_distribution"}
            if scope == "initial":
                keep |= {"generator", "initial"}
            d = {k: v for k, v in d.items() if k in keep}
        sc = get_scenario(self.scenario)
        opts = SimulationSettings(parameter_set=self.parameter_set, dt_ms=self.dt_ms)
        d["simulator"] = entry_for(sc).fingerprint(sc, opts.simulator_options())
        d["scenario_def"] = {"inputs": list(sc.inputs), "outputs": list(sc.outputs),
                             "duration_ms": sc.duration_ms,
                             "amplitude_range_na": list(sc.amplitude_range_na)}
        d["version"] = _VERSION
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()


_TABLE_KEYS = {"design": [f.name for f in fields(DesignConfig) if f.name != "generator"],
               "generator": [f.name for f in fields(CandidateGenerator)]}


def load_design(path: str | Path) -> DesignConfig:
    """Read a design file (``[design]`` and optional ``[generator]`` tables).

    Raises:
        ConfigError: on a missing/unreadable file, an unknown key or a bad value (one line).
    """
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"design file not found: {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read design file {path}: {exc}") from None
    return design_from_dict(table, where=str(path))


def design_from_dict(table: Mapping[str, Any], *, where: str = "design") -> DesignConfig:
    """Build a :class:`DesignConfig` from ``{"design": {...}, "generator": {...}}``."""
    unknown = sorted(set(table) - set(_TABLE_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown table(s) {', '.join(unknown)}; allowed: design, "
                          "generator")
    parts: dict[str, dict[str, Any]] = {}
    for name, allowed in _TABLE_KEYS.items():
        part = dict(table.get(name, {}))
        bad = sorted(set(part) - set(allowed))
        if bad:
            raise ConfigError(f"{where}: [{name}] unknown key(s) {', '.join(bad)}; allowed: "
                              f"{', '.join(allowed)}")
        parts[name] = part
    gen = parts["generator"]
    for key in ("families", "amplitude_scale", "correlation"):
        if isinstance(gen.get(key), list):
            gen[key] = tuple(gen[key])
    try:
        generator = CandidateGenerator(**gen)
        design = dict(parts["design"])
        if isinstance(design.get("strategies"), list):
            design["strategies"] = tuple(design["strategies"])
        return DesignConfig(**design, generator=generator)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


# ------------------------------------------------------------------------------ candidates
def candidate_pool(config: DesignConfig, round_index: int) -> tuple[np.ndarray, list[str]]:
    """The candidate stimuli of one round: currents ``[candidate, time, input]`` (nA) and a
    JSON record per candidate (family, amplitude scale, correlation)."""
    from scipy.stats import qmc

    from neuroreduce.scenarios import get_scenario
    from neuroreduce.simulators.base import n_samples
    from neuroreduce.stimuli import generate_stimuli

    gen = config.generator
    sc = get_scenario(config.scenario)
    n, n_in = gen.candidates, len(sc.inputs)
    n_time = n_samples(sc.duration_ms, config.dt_out_ms)
    lo, hi = sc.amplitude_range_na
    seed = config.seed * 1000 + 17  # pools never repeat the evaluation sets' trials
    first = round_index * n
    base = generate_stimuli(n_inputs=n_in, n_time=n_time, dt_ms=config.dt_out_ms, n_trials=n,
                            amplitude_range_na=(lo, hi), families=gen.names(), seed=seed,
                            first_trial=first)
    shared = generate_stimuli(n_inputs=1, n_time=n_time, dt_ms=config.dt_out_ms, n_trials=n,
                              amplitude_range_na=(hi, hi), families=gen.names(), seed=seed + 1,
                              first_trial=first)
    lhs = qmc.LatinHypercube(d=2, seed=np.random.default_rng([seed, round_index])).random(n)
    scales = gen.amplitude_scale[0] + lhs[:, 0] * (gen.amplitude_scale[1] - gen.amplitude_scale[0])
    corrs = gen.correlation[0] + lhs[:, 1] * (gen.correlation[1] - gen.correlation[0])
    currents = np.empty_like(base.currents)
    records = []
    for k in range(n):
        c, s = float(corrs[k]), shared.currents[k, :, 0]
        mirror = np.where(np.arange(n_time) > 0, hi - s, 0.0)
        for j in range(n_in):
            common = mirror if (c < 0 and j % 2 == 1) else s
            currents[k, :, j] = (1 - abs(c)) * base.currents[k, :, j] + abs(c) * common
        currents[k] *= float(scales[k])
        currents[k, 0] = 0.0
        records.append(json.dumps({"family": base.families[k], "round": round_index,
                                   "candidate": k, "amplitude_scale": round(float(scales[k]), 6),
                                   "correlation": round(c, 6)}, sort_keys=True))
    return currents, records


def evaluation_sets(config: DesignConfig) -> dict[str, tuple[np.ndarray, tuple[str, ...]]]:
    """Stimuli of the held-out ``battery`` and the ``in_distribution`` test set:
    ``{name: (currents [trial, time, input] nA, families)}``."""
    from neuroreduce.scenarios import get_scenario
    from neuroreduce.simulators.base import n_samples
    from neuroreduce.stimuli import diverse_families, generate_stimuli
    from neuroreduce.trust.battery import battery_families

    sc = get_scenario(config.scenario)
    common = {"n_inputs": len(sc.inputs), "n_time": n_samples(sc.duration_ms, config.dt_out_ms),
              "dt_ms": config.dt_out_ms, "amplitude_range_na": sc.amplitude_range_na}
    bat = battery_families()
    battery = generate_stimuli(**common, n_trials=len(bat) * config.battery_per_family,
                               families=bat, seed=config.seed * 1000 + 5)
    indist = generate_stimuli(**common, n_trials=config.in_distribution,
                              families=diverse_families(), seed=config.seed * 1000 + 7)
    out = {"battery": (battery.currents, battery.families)}
    if config.in_distribution:
        out["in_distribution"] = (indist.currents, indist.families)
    return out


# ------------------------------------------------------------------------------ the loop
@dataclass
class _Store:
    """The output folder's cached trials and round scores."""

    root: Path
    keys: dict[str, str]

    @property
    def key(self) -> str:
        return self.keys["rounds"]

    def _key(self, name: str) -> str:
        scope = "eval" if name.startswith("eval-") else "initial" if name == "initial-r0" else (
            "rounds")
        return self.keys[scope]

    def trials(self, name: str) -> Path:
        return self.root / "trials" / f"{name}-{self._key(name)[:12]}.npz"

    def round(self, strategy: str, r: int) -> Path:
        return self.root / "rounds" / f"{strategy}-r{r}-{self.key[:12]}.json"

    def load(self, name: str) -> dict[str, np.ndarray] | None:
        path = self.trials(name)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["key"]) != self._key(name):
                    return None
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, KeyError):
            return None  # unreadable: simulate again

    def save(self, name: str, **arrays: Any) -> None:
        buf = io.BytesIO()
        np.savez(buf, key=np.array(self._key(name)), **arrays)
        write_bytes_atomic(self.trials(name), buf.getvalue())


def simulate_trials(config: DesignConfig, currents: np.ndarray, *,
                    progress: bool = False) -> np.ndarray:
    """Simulate ``currents`` ``[trial, time, input]`` (nA) -> outputs ``[trial, time, output]``
    (mV) through :func:`neuroreduce.pipeline.run_simulator` (workers or Ray)."""
    from neuroreduce.pipeline import SimulationSettings, run_simulator
    from neuroreduce.scenarios import get_scenario

    settings = SimulationSettings(parameter_set=config.parameter_set, dt_ms=config.dt_ms,
                                  workers=config.workers, backend=config.backend,
                                  address=config.address)
    outputs, _ = run_simulator(get_scenario(config.scenario), currents,
                               dt_out_ms=config.dt_out_ms, settings=settings, progress=progress)
    return np.asarray(outputs)


def run_design(config: DesignConfig, out_dir: str | Path, *, progress: bool = False,
               log: Any = None) -> dict[str, Any]:
    """Run (or resume) the design loop for every strategy; write the CSV, JSON and figure.

    Returns:
        ``{"config", "key", "rows": [{strategy, round, n_trials, battery_rmse,
        in_distribution_rmse, ratio, per_family, ...}], "wall_s"}``; RMSE in the output
        units (mV), mean over ensemble members (``*_ensemble_rmse``: of the ensemble mean).
    """
    log = log or (lambda msg: None)
    start = time.perf_counter()
    out = Path(out_dir)
    store = _Store(out, {s: config.key(s) for s in ("eval", "initial", "rounds")})
    evals = {}
    for name, (currents, fams) in evaluation_sets(config).items():
        cached = store.load(f"eval-{name}")
        if cached is None:
            t0 = time.perf_counter()
            outputs = simulate_trials(config, currents, progress=progress)
            store.save(f"eval-{name}", currents=currents, outputs=outputs)
            log(f"simulated {name}: {len(currents)} trials in {time.perf_counter() - t0:.1f} s")
            cached = {"currents": currents, "outputs": outputs}
        evals[name] = (cached["currents"], cached["outputs"], fams)
    rows = []
    for strategy in config.strategies:
        rows.extend(_run_strategy(config, strategy, store, evals, progress=progress, log=log))
    result = {"config": config.to_dict(), "key": store.key, "rows": rows,
              "wall_s": round(time.perf_counter() - start, 3)}
    write_results(out, result)
    return result


def _run_strategy(config: DesignConfig, strategy: str, store: _Store, evals: dict[str, Any],
                  *, progress: bool, log: Any) -> list[dict[str, Any]]:
    currents: list[np.ndarray] = []
    outputs: list[np.ndarray] = []
    records: list[str] = []
    rows = []
    model: Any = None
    for r in range(config.rounds + 1):
        name = "initial-r0" if r == 0 else f"{strategy}-r{r}"  # round 0 shared by strategies
        cached = store.load(name)
        if cached is None:
            pool, pool_records = candidate_pool(config, r)
            if r == 0:
                pick = _random_pick(config, 0, config.initial)
            elif strategy == "random":
                pick = _random_pick(config, r, config.per_round)
            else:
                pick = _disagreement_pick(model, pool, config.per_round)
            chosen = pool[pick]
            t0 = time.perf_counter()
            simulated = simulate_trials(config, chosen, progress=progress)
            store.save(name, currents=chosen, outputs=simulated,
                       records=np.array([pool_records[i] for i in pick]))
            log(f"{strategy} round {r}: simulated {len(pick)} trials in "
                f"{time.perf_counter() - t0:.1f} s")
            cached = store.load(name)
            assert cached is not None
        currents.append(cached["currents"])
        outputs.append(cached["outputs"])
        records.extend(str(x) for x in cached["records"])
        score_path = store.round(strategy, r)
        need_model = r < config.rounds and strategy == "disagreement" and store.load(
            f"{strategy}-r{r + 1}") is None
        row = _read_row(score_path)
        if row is None or need_model:
            t0 = time.perf_counter()
            model = _train(config, np.concatenate(currents), np.concatenate(outputs), records)
            train_s = time.perf_counter() - t0
            if row is None:
                row = {"strategy": strategy, "round": r, "n_trials": len(records),
                       "train_s": round(train_s, 3), **_score(model, evals)}
                write_json_atomic(score_path, row)
            log(f"{strategy} round {r}: {len(records)} trials, battery RMSE "
                f"{row['battery_rmse']:.4g}, ratio {row.get('ratio', float('nan')):.3g}")
        rows.append(row)
    return rows


def _read_row(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _random_pick(config: DesignConfig, r: int, k: int) -> np.ndarray:
    rng = np.random.default_rng([config.seed, 99, r])
    return np.sort(rng.choice(config.generator.candidates, size=k, replace=False))


def member_spread(model: Any, currents: np.ndarray) -> np.ndarray:
    """Per-trial disagreement of an ensemble: the std over members of the predicted outputs,
    averaged over time and outputs; shape ``[trial]`` (output units)."""
    from neuroreduce.training.runs import predict

    pred = predict(model, currents)  # [member, trial, time, output]
    return pred.std(axis=0).mean(axis=(1, 2))


def _disagreement_pick(model: Any, pool: np.ndarray, k: int) -> np.ndarray:
    spread = member_spread(model, pool)
    return np.sort(np.argsort(-spread, kind="stable")[:k])


def _train(config: DesignConfig, currents: np.ndarray, outputs: np.ndarray,
           records: list[str]) -> Any:
    """Train the seed ensemble in memory (75/25 train/valid, seeded)."""
    import torch

    from neuroreduce.datasets.dataset import Dataset
    from neuroreduce.scenarios import get_scenario
    from neuroreduce.training import train
    from neuroreduce.training.config import TrainConfig

    sc = get_scenario(config.scenario)
    n = len(currents)
    split = np.zeros(n, dtype=np.int8)
    n_valid = max(1, n // 4)
    split[np.random.default_rng([config.seed, 7, n]).permutation(n)[:n_valid]] = 1
    dataset = Dataset(inputs=currents.astype(np.float32), outputs=outputs.astype(np.float32),
                      dt_ms=config.dt_out_ms, input_names=sc.inputs, output_names=sc.outputs,
                      families=tuple(json.loads(r)["family"] for r in records),
                      stimulus_params=tuple(records), split=split,
                      provenance={"design": True})
    tc = TrainConfig(model=config.model, hidden=config.hidden,
                     seeds=tuple(config.seed * 100 + m for m in range(config.members)),
                     epochs=config.epochs, batch_size=config.batch_size,
                     learning_rate=config.learning_rate)
    threads = torch.get_num_threads()
    try:
        return train(dataset, tc, None, progress=False)
    finally:
        torch.set_num_threads(threads)


def _score(model: Any, evals: dict[str, Any]) -> dict[str, Any]:
    """Member-mean and ensemble-mean RMSE on each evaluation set, per battery family."""
    from neuroreduce.training.runs import predict

    out: dict[str, Any] = {}
    for name, (currents, outputs, fams) in evals.items():
        pred = predict(model, currents).astype(np.float64)  # [member, trial, time, output]
        err = pred - outputs[None]
        out[f"{name}_rmse"] = float(np.sqrt((err**2).mean(axis=(1, 2, 3))).mean())
        out[f"{name}_ensemble_rmse"] = float(np.sqrt(((pred.mean(0) - outputs) ** 2).mean()))
        if name == "battery":
            fam = np.asarray(fams)
            out["per_family"] = {f: float(np.sqrt((err[:, fam == f] ** 2).mean(axis=(1, 2, 3)))
                                          .mean()) for f in dict.fromkeys(fams)}
    if "in_distribution_rmse" in out and out["in_distribution_rmse"] > 0:
        out["ratio"] = out["battery_rmse"] / out["in_distribution_rmse"]
    return out


# ------------------------------------------------------------------------------ outputs
def write_results(out: Path, result: dict[str, Any]) -> list[Path]:
    """``design.json``, ``design.csv`` (one row per strategy and round) and ``design.png``."""
    rows = result["rows"]
    cols = ["strategy", "round", "n_trials", "battery_rmse", "in_distribution_rmse", "ratio",
            "battery_ensemble_rmse", "train_s"]
    lines = [",".join(cols)] + [",".join(csv_cell(r.get(c)) for c in cols) for r in rows]
    write_json_atomic(out / "design.json", result)
    write_text_atomic(out / "design.csv", "\n".join(lines) + "\n")
    paths = [out / "design.json", out / "design.csv"]
    paths.append(_figure(out / "design.png", rows))
    return paths


def csv_cell(v: Any) -> str:
    """One CSV cell: empty for ``None``, 6 significant digits for floats."""
    if v is None:
        return ""
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _figure(path: Path, rows: list[dict[str, Any]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for strategy in dict.fromkeys(r["strategy"] for r in rows):
        mine = [r for r in rows if r["strategy"] == strategy]
        n = [r["n_trials"] for r in mine]
        ax.plot(n, [r["battery_rmse"] for r in mine], "o-", label=f"{strategy}: battery")
        if all("in_distribution_rmse" in r for r in mine):
            ax.plot(n, [r["in_distribution_rmse"] for r in mine], "s--",
                    label=f"{strategy}: in-distribution")
    ax.set_xlabel("simulated training trials")
    ax.set_ylabel("test RMSE (mean over members)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())
    return path
