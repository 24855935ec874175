"""The ``neuroreduce`` command line: a thin typer layer, one library call per command."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from neuroreduce.cli_common import friendly_errors, out

app = typer.Typer(
    name="neuroreduce",
    help=(
        "Reduced-order surrogates of detailed neural simulations. Pipeline: "
        "simulate -> train -> evaluate -> report (or `neuroreduce demo` for all of it)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
@friendly_errors
def simulate(
    scenario: Annotated[str, typer.Argument(help="Scenario name, e.g. fcm (see `neuroreduce scenarios`).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="HDF5 dataset file to write.")],
    stimuli: Annotated[int, typer.Option("--stimuli", "--trials", help="Number of stimuli (trials).")] = 40,
    dt_out: Annotated[float | None, typer.Option(help="Sampling interval of inputs/outputs (ms; default 0.5, l5pc 1).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the stimuli and of the split.")] = 0,
    parameter_set: Annotated[str | None, typer.Option(help="c302 parameter set (default: the simulator's).")] = None,
    reader: Annotated[str, typer.Option(help="Connectome reader.")] = "default",
    dt: Annotated[float, typer.Option(help="NEURON integration step (ms).")] = 0.05,
    ablate: Annotated[list[str] | None, typer.Option(help="Neuron to ablate (repeatable).")] = None,
    workers: Annotated[int, typer.Option(help="Parallel simulation processes (CPUs of a local Ray instance).")] = 1,
    backend: Annotated[str, typer.Option(help="Where trials run: local (worker processes) or ray.")] = "local",
    address: Annotated[str | None, typer.Option(help="Ray cluster to join (e.g. ray://head:10001, auto); default: a local Ray instance.")] = None,
    families: Annotated[list[str] | None, typer.Option("--families", help="Stimulus family (repeatable; default: the diverse set; held-out bat_* families give an all-test dataset).")] = None,
    duration_ms: Annotated[float | None, typer.Option(help="Trial length (ms) for generators with their own runner (l5pc; default 6000).")] = None,
    option: Annotated[list[str] | None, typer.Option("--option", help="Generator option NAME=VALUE (l5pc: morphology=PATH, nmda=false, max_channels=8, ...).")] = None,
) -> None:
    """Simulate a scenario under a diverse, seeded stimulus set and write a dataset file."""
    from neuroreduce.cli_options import parse_assignments
    from neuroreduce.pipeline import SimulationSettings
    from neuroreduce.pipeline import simulate as run

    settings = SimulationSettings(parameter_set=parameter_set, reader=reader, dt_ms=dt,
                                  ablated=tuple(ablate or ()), workers=workers,
                                  backend=backend, address=address)
    ds = run(scenario, n_stimuli=stimuli, dt_out_ms=dt_out, seed=seed, settings=settings,
             out=output, progress=True, families=tuple(families) if families else None,
             duration_ms=duration_ms, options=parse_assignments(option, "--option") or None)
    fields = "; ".join(f"{s.role} {s.name} ({s.kind}, {len(s.channels) or len(s.classes)})"
                       for s in ds.field_specs)
    out.print(f"wrote {output}: {ds.n_trials} trials x {ds.n_time} samples (dt {ds.dt_ms} ms), "
              + (f"inputs {', '.join(ds.input_names)}, outputs {', '.join(ds.output_names)}"
                 if not ds.fields else f"fields: {fields}"), markup=False)


@app.command("import")
@friendly_errors
def import_data(
    fmt: Annotated[str, typer.Argument(help="Source format: a registered importer (`neuroreduce importers`), e.g. dat, csv, npz.")],
    source: Annotated[Path, typer.Argument(help="The importer's file or folder.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="HDF5 dataset file to write.")],
    input_names: Annotated[str | None, typer.Option(help="Comma-separated input columns (dat default: PLML,PLMR,AVBL,AVBR).")] = None,
    output_names: Annotated[str | None, typer.Option(help="Comma-separated output columns (dat default: DB1,LUAL,PVR,VB1).")] = None,
    input_units: Annotated[str | None, typer.Option(help="Unit of the inputs.")] = None,
    output_units: Annotated[str | None, typer.Option(help="Unit of the outputs.")] = None,
    option: Annotated[list[str] | None, typer.Option("--option", help="Importer option NAME=VALUE (repeatable; `neuroreduce importers` lists them).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the train/valid/test split.")] = 0,
) -> None:
    """Import external data (paper .dat, CSV, NPZ, recordings, imaging) into a dataset file."""
    from neuroreduce.cli_options import parse_assignments
    from neuroreduce.pipeline import import_dataset

    def names(text: str | None) -> tuple[str, ...] | None:
        return tuple(n.strip() for n in text.split(",") if n.strip()) if text else None

    ds = import_dataset(fmt, source, out=output, input_names=names(input_names),
                        output_names=names(output_names), input_units=input_units,
                        output_units=output_units, seed=seed,
                        options=parse_assignments(option, "--option"))
    fields = ", ".join(f"{f.spec.name} ({f.spec.role}, {f.spec.kind})" for f in ds.fields)
    out.print(f"wrote {output}: {ds.n_trials} trials x {ds.n_time} samples (dt {ds.dt_ms:g} ms)"
              + (f"; fields: {fields}" if fields else ""), markup=False)


@app.command()
@friendly_errors
def train(
    dataset: Annotated[Path, typer.Argument(help="Dataset file (HDF5) from `neuroreduce simulate` or an importer.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Run folder to write.")],
    model: Annotated[str, typer.Option(help="Model family (see `neuroreduce models`): rnn, lstm, gru, tcn, elm, mlp, stacked_rnn, plrnn.")] = "gru",
    hidden: Annotated[int | None, typer.Option(help="The family's main size (recurrent units, channels, memory units); default 4.")] = None,
    memory_units: Annotated[int | None, typer.Option(help="Memory units of the ELM neuron (its main size: the same as --hidden for --model elm).")] = None,
    model_option: Annotated[list[str] | None, typer.Option(help="Family hyper-parameter NAME=VALUE (repeatable), e.g. layers=3.")] = None,
    seeds: Annotated[int, typer.Option(help="Number of seeds, trained together as one ensemble.")] = 10,
    first_seed: Annotated[int, typer.Option(help="Seeds are first_seed .. first_seed+seeds-1.")] = 0,
    epochs: Annotated[int, typer.Option(help="Maximum epochs (best validation epoch is kept).")] = 1000,
    batch_size: Annotated[int, typer.Option(help="Minibatch size (trials).")] = 32,
    lr: Annotated[float | None, typer.Option(help="Adam learning rate (default: paper's per model).")] = None,
    loss: Annotated[str, typer.Option(help="Loss of continuous targets: rmse (paper) or mse.")] = "rmse",
    objective: Annotated[list[str] | None, typer.Option(help="Loss term FIELD=LOSS[:POS_WEIGHT][*WEIGHT] (repeatable), e.g. spikes=bce:balanced.")] = None,
    target: Annotated[list[str] | None, typer.Option(help="Field to predict (repeatable; default: every target and label field).")] = None,
    split: Annotated[str | None, typer.Option(help="Split strategy STRATEGY[:OPTION=VALUE,...], e.g. leave_groups_out:group=worm,fold=0.")] = None,
    patience: Annotated[int | None, typer.Option(help="Early-stopping patience in epochs (default: off).")] = None,
    train_option: Annotated[list[str] | None, typer.Option(help="Any other training setting NAME=VALUE (repeatable): optimizer, weight_decay, schedule, clip_norm, window_ms, burn_in_ms, warmup_ms, teacher_forcing_interval, ...")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in the same folder.")] = True,
    stream: Annotated[bool, typer.Option(help="Stream minibatches from the file (datasets larger than memory).")] = False,
) -> None:
    """Train a seed ensemble of surrogates on a dataset's train split (best validation kept)."""
    from neuroreduce.cli_options import parse_assignments, parse_objective, parse_split
    from neuroreduce.models import count_parameters
    from neuroreduce.pipeline import train_from_file
    from neuroreduce.training import TrainConfig
    from neuroreduce.training.ensemble_loop import DivergenceWarning, TrainingDivergedError

    _check_seed_range(first_seed, seeds)
    config = TrainConfig(model=model, hidden=_main_size(model, hidden, memory_units),
                         seeds=tuple(range(first_seed, first_seed + seeds)), epochs=epochs,
                         batch_size=batch_size, learning_rate=lr, loss=loss,
                         early_stopping_patience=patience,
                         model_options=tuple(parse_assignments(model_option,
                                                               "--model-option").items()),
                         objective=parse_objective(objective),
                         targets=tuple(target) if target else None, split=parse_split(split),
                         **_train_options(train_option))
    with warnings.catch_warnings():  # one line below names every diverged member
        warnings.simplefilter("ignore", DivergenceWarning)
        result = train_from_file(dataset, config, output, resume=resume, progress=True,
                                 stream=stream)
    lost = ", ".join(f"{k} (seed {result.seeds[k]})" for k in result.diverged)
    if len(result.diverged) == len(result.seeds):  # nothing trained: a failed command
        raise TrainingDivergedError(
            f"every member diverged (NaN/inf): {lost}; {output} keeps their best weights so "
            "far; try a smaller learning rate")
    if result.diverged:
        out.print(f"[yellow]warning: members {lost} diverged (NaN/inf); they keep their best "
                  "weights so far; try a smaller learning rate[/]")
    ours = count_parameters(result.model.member(0))
    best = ", ".join(f"{e}" for e in result.best_epochs)
    out.print(f"trained {model.upper()}-{config.hidden} x {seeds} seeds -> {output}\n"
              f"parameters per seed: {ours}{_keras_note(model, result, config.hidden)}; "
              f"best validation epoch per seed: {best}")


def _main_size(model: str, hidden: int | None, memory_units: int | None) -> int:
    """The family's main size from ``--hidden`` or its own word for it (``--memory-units``:
    families whose registry entry names their size ``memory_units``, i.e. the ELM neuron)."""
    from neuroreduce.errors import ConfigError
    from neuroreduce.models.registry import get_family

    if memory_units is None:
        return 4 if hidden is None else hidden
    size_name = get_family(model).size_name
    if size_name != "memory_units":
        raise ConfigError(f"--memory-units applies to the ELM neuron (--model elm); model "
                          f"{model!r} counts its size in {size_name!r}: use --hidden")
    if hidden is not None and hidden != memory_units:
        raise ConfigError(f"--hidden {hidden} and --memory-units {memory_units} disagree (both "
                          "set the ELM's memory units); give one of them")
    return memory_units


def _check_seed_range(first_seed: int, seeds: int) -> None:
    """``--first-seed``/``--seeds`` give seeds numpy and torch take, in a list that fits."""
    from neuroreduce.errors import ConfigError
    from neuroreduce.limits import check_seed_count
    from neuroreduce.training.config import SEED_MAX

    if seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    if not 0 <= first_seed <= SEED_MAX - seeds + 1:
        raise ConfigError(f"seeds --first-seed .. --first-seed + --seeds - 1 must lie in "
                          f"[0, {SEED_MAX}], got {first_seed} .. {first_seed + seeds - 1}")
    check_seed_count(seeds)


def _train_options(items: list[str] | None) -> dict[str, Any]:
    """``--train-option`` values, checked against the TrainConfig fields they may set."""
    from dataclasses import fields

    from neuroreduce.cli_options import parse_assignments
    from neuroreduce.errors import ConfigError
    from neuroreduce.training import TrainConfig

    options = parse_assignments(items, "--train-option")
    own = {"model", "hidden", "seeds", "epochs", "batch_size", "learning_rate", "loss",
           "early_stopping_patience", "model_options", "objective", "targets", "split"}
    allowed = [f.name for f in fields(TrainConfig) if f.name not in own]
    for key in options:
        if key not in allowed:
            raise ConfigError(f"--train-option {key!r} is not a setting it can change; use one "
                              f"of {', '.join(allowed)} (the others have their own options)")
    return options


def _keras_note(model: str, result: Any, hidden: int) -> str:
    """The Barbulescu paper's Keras count for its one-layer RNN families (else nothing)."""
    from neuroreduce.models import keras_parameter_count

    if model not in ("rnn", "lstm", "gru") or result.layout is None or not result.layout.is_plain:
        return ""
    layout = result.layout
    paper = keras_parameter_count(model, n_inputs=layout.n_inputs,
                                  n_outputs=layout.n_outputs, hidden=hidden)
    return f" (paper/Keras count, one bias per gate: {paper})"


@app.command()
@friendly_errors
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run folder from `neuroreduce train`.")],
    dataset: Annotated[Path | None, typer.Option(help="Dataset file (default: the one trained on).")] = None,
    spike_option: Annotated[list[str] | None, typer.Option(help="Spike-timing scoring NAME=VALUE (repeatable): coincidence_window_ms (2 for QSNMC 2007, 4 for 2009), spike_threshold (mV), probability_threshold (0.5 or count), group, n_bootstrap.")] = None,
) -> None:
    """RMSE per split and output neuron (mean ± std over seeds); writes results.json/.csv."""
    from neuroreduce.cli_options import parse_assignments
    from neuroreduce.pipeline import evaluate as run_eval

    results = run_eval(run, dataset_path=dataset,
                       spike_options=parse_assignments(spike_option, "--spike-option") or None)
    units = results.get("output_units", "")
    if "splits" in results:
        table = Table(title=f"{run}: free-running RMSE ({units}), mean ± std over "
                            f"{len(results['seeds'])} seeds")
        names = results["output_names"]
        for col in ["split", "all outputs", "NRMSE", *names]:
            table.add_column(col, justify="right")
        for split, s in results["splits"].items():
            table.add_row(split, _ms(s["rmse"]), _ms(s["nrmse"]),
                          *[_ms(s["per_output"][n]["rmse"]) for n in names])
        out.print(table)
        _print_trust(results)
    for field, f in results.get("fields", {}).items():
        metrics = [m for m, v in next(iter(f["splits"].values()), {}).items()
                   if isinstance(v, dict)]
        table = Table(title=f"{run}: {field} ({f['kind']}), mean ± std over "
                            f"{len(results['seeds'])} seeds")
        for col in ["split", *metrics]:
            table.add_column(col, justify="right")
        for split, block in f["splits"].items():
            table.add_row(split, *[_ms(block[m]) for m in metrics])
        out.print(table)
    out.print(f"wrote {run / 'results.json'} and {run / 'results.csv'}")


def _print_trust(results: dict[str, Any]) -> None:
    """The ensemble-mean error beside the members', and how well the spread is calibrated."""
    units = results.get("output_units", "")
    test = results.get("ensemble", {}).get("test")
    from neuroreduce.reporting.trust_section import fmt_number

    if test and len(results.get("seeds", ())) > 1 and test.get("gain") is not None:
        out.print(f"test: ensemble-mean RMSE {fmt_number(test['ensemble_mean_rmse'], '.3g')} {units} "
                  f"vs {fmt_number(test['member_rmse_mean'], '.3g')} for the average member "
                  f"({fmt_number(test['gain'], '.0f', 100)} % lower; best member "
                  f"{fmt_number(test['member_rmse_best'], '.3g')})", markup=False)
    unc = results.get("uncertainty")
    if unc:
        out.print(f"uncertainty: {100 * unc['level']:.0f} % intervals (member spread calibrated "
                  f"on valid) cover {fmt_number(unc['test_coverage'], '.1f', 100)} % of test values; "
                  f"the spread ranks test trials by their error with Spearman rho "
                  f"{fmt_number(unc['test_spearman_trial_spread_vs_error'], '.2f')}", markup=False)


def _ms(stats: dict[str, Any]) -> str:
    return f"{stats['mean']:.3g} ± {stats['std']:.2g}"


@app.command()
@friendly_errors
def report(
    run: Annotated[Path, typer.Argument(help="Run folder from `neuroreduce train`.")],
    dataset: Annotated[Path | None, typer.Option(help="Dataset file (default: the one trained on).")] = None,
) -> None:
    """Figures (test sequences, inputs, loss curves, errors) and a static HTML page."""
    from neuroreduce.reporting.report import make_report

    page = make_report(run, dataset_path=dataset)
    out.print(f"report: {page}")


@app.command()
@friendly_errors
def demo(
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for the runs and reports.")] = Path("neuroreduce-demo"),
    seeds: Annotated[int, typer.Option(help="Seeds per ensemble.")] = 5,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 150,
    workers: Annotated[int, typer.Option(help="Simulation processes.")] = 2,
) -> None:
    """Everything on defaults: simulate FCM (cached), train GRU ensembles, evaluate, report."""
    from neuroreduce.demo import DemoConfig, run_demo

    result = run_demo(output, config=DemoConfig(seeds=seeds, epochs=epochs, workers=workers),
                      progress=True)
    out.print(f"dataset: {result.dataset}")
    for label, page in result.reports.items():
        out.print(f"{label} report: {page}")
    out.print(f"demo finished in {result.seconds:.0f} s")


@app.command()
def scenarios() -> None:
    """List the registered scenarios with their inputs and outputs."""
    from neuroreduce.scenarios import get_scenario, list_scenarios

    table = Table(title="scenarios")
    for col in ("name", "inputs (nA)", "outputs (mV)", "ms", "description"):
        table.add_column(col)
    for name in list_scenarios():
        s = get_scenario(name)
        table.add_row(name, ", ".join(s.inputs), ", ".join(s.outputs), f"{s.duration_ms:g}",
                      s.description)
    out.print(table)
    from neuroreduce.simulators.toy_tasks import TASK_GENERATORS

    typed = Table(title="typed task generators (same use: neuroreduce simulate NAME; see "
                        "`neuroreduce fields FILE`)")
    for col in ("name", "dt (ms)", "description"):
        typed.add_column(col)
    for name, gen in sorted(TASK_GENERATORS.items()):
        typed.add_row(name, f"{gen.default_dt_ms:g}", gen.description)
    out.print(typed)


# ---------------------------------------------------------------- command groups in own modules
# Each line registers a command (group) defined in a ``cli_*.py`` module (one owner each).
from neuroreduce.cli_export import export as _export_cmd  # noqa: E402

app.command("export")(_export_cmd)
from neuroreduce.cli_predict import predict as _predict_cmd  # noqa: E402

app.command("predict")(_predict_cmd)
from neuroreduce.cli_experiment import experiment_app  # noqa: E402

app.add_typer(experiment_app, name="experiment")
from neuroreduce.cli_sweep import sweep as _sweep_cmd  # noqa: E402

app.command("sweep")(_sweep_cmd)
from neuroreduce.cli_info import info_app  # noqa: E402

app.add_typer(info_app)  # models, metrics, fields: top-level commands
from neuroreduce.cli_trust import trust_app  # noqa: E402

app.add_typer(trust_app)  # design: top-level command
from neuroreduce.cli_wholebrain import wholebrain_app  # noqa: E402

app.add_typer(wholebrain_app, name="wholebrain")


if __name__ == "__main__":  # pragma: no cover
    app()
