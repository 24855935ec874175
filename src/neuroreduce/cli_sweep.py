"""``neuroreduce sweep FILE``: an Optuna hyper-parameter search declared in a TOML file."""

# typer option declarations read best one per line
# ruff: noqa: E501

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from neuroreduce.cli_common import friendly_errors, out


@friendly_errors
def sweep(
    file: Annotated[Path, typer.Argument(help="Sweep file (TOML), e.g. experiments/sweeps/gru_fcm.toml.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Sweep folder (study sweep.db, trial runs, best.json).")],
    trials: Annotated[int | None, typer.Option(help="Total finished trials wanted (default: the file's); more extends the study.")] = None,
    workers: Annotated[int, typer.Option(help="Trials run at the same time (processes, or CPUs of a local Ray instance).")] = 1,
    backend: Annotated[str, typer.Option(help="Where trials run: local (processes) or ray.")] = "local",
    address: Annotated[str | None, typer.Option(help="Ray cluster to join (e.g. ray://head:10001); default: a local Ray instance.")] = None,
) -> None:
    """Search a declared space (model, hidden size, learning rate, ...) with Optuna; re-run to continue."""
    from neuroreduce.execution import Backend
    from neuroreduce.sweeps import load_sweep, run_sweep

    spec = load_sweep(file)
    result = run_sweep(spec, output, trials=trials, progress=True,
                       backend=Backend(kind=backend, workers=workers, address=address))
    for line in result.errors:
        out.print(f"[yellow]failed[/] {line}", highlight=False)
    counts = ", ".join(f"{n} {state}" for state, n in result.counts.items() if n)
    out.print(f"study {result.study_name!r} in {result.storage}: {counts}")
    if result.best is None:
        if result.counts.get("fail"):  # every finished trial failed: a failed command
            from neuroreduce.sweeps.runner import NoTrialSucceededError

            first = f"; first error: {result.errors[0]}" if result.errors else ""
            raise NoTrialSucceededError(
                f"no trial of the sweep succeeded ({counts}){first}")
        out.print("no trial completed yet; nothing to report")
        return
    best = result.best
    table = Table(title=f"best trial {best['trial']} (seed spread over {len(best['seeds'])} seeds)")
    table.add_column("")
    table.add_column("value", justify="right")
    for name, value in best["params"].items():
        table.add_row(name, f"{value:.4g}" if isinstance(value, float) else str(value))
    name = spec.metric_name
    label = name.upper() if name in ("rmse", "nrmse") else name.replace("_", " ")
    field = f" of {spec.metric_field}" if spec.metric_field else ""
    for split in ("valid", "test"):
        stats = best.get(f"{split}_{name}")
        if stats:
            table.add_row(f"{split} {label}{field}", f"{stats['mean']:.4g} ± {stats['std']:.2g}")
    final = best.get("final")
    if final:
        for split in ("valid", "test"):
            stats = final.get(f"{split}_{name}")
            if stats:
                table.add_row(f"{split} {label}{field}, retrained x {len(final['seeds'])} seeds",
                              f"{stats['mean']:.4g} ± {stats['std']:.2g}")
    out.print(table)
    out.print(f"wrote {result.best_path}; run folder {best['run_dir']}")
