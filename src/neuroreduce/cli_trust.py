"""``neuroreduce design FILE`` (stimulus design with the simulator in the loop) and
``neuroreduce datasize EXP_DIR`` (error vs training trials).

Thin typer layer over :mod:`neuroreduce.trust.design`; ``cli.py`` merges :data:`trust_app` into
the main app (the command stays top level).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neuroreduce.cli_common import friendly_errors, out

trust_app = typer.Typer(no_args_is_help=True, add_completion=False)


@trust_app.command()
@friendly_errors
def design(
    file: Annotated[Path, typer.Argument(help="Design file (TOML: [design], [generator]).")],
    output: Annotated[Path | None, typer.Option(
        "-o", "--output",
        help="Output folder (default: runs/design/<file stem>); re-running resumes.")] = None,
    workers: Annotated[int | None, typer.Option(
        help="Simulation worker processes (overrides the file).")] = None,
    backend: Annotated[str | None, typer.Option(help="local or ray (overrides the file).")] = None,
) -> None:
    """Pick stimuli where the ensemble disagrees most, simulate, retrain; compare with random."""
    from dataclasses import replace

    from neuroreduce.trust.design import load_design, run_design

    config = load_design(file)
    changes = {k: v for k, v in (("workers", workers), ("backend", backend)) if v is not None}
    if changes:
        config = replace(config, **changes)
    folder = output or Path("runs") / "design" / file.stem
    result = run_design(config, folder, progress=True, log=lambda m: out.print(m, markup=False))
    for row in result["rows"]:
        out.print(f"{row['strategy']:>12} round {row['round']}: {row['n_trials']} trials, "
                  f"battery RMSE {row['battery_rmse']:.4g}"
                  + (f" ({row['ratio']:.2f}x in-distribution)" if "ratio" in row else ""),
                  markup=False)
    out.print(f"wrote {folder}/design.csv, design.json, design.png "
              f"({result['wall_s']:.0f} s)", markup=False)


@trust_app.command()
@friendly_errors
def datasize(
    exp_dir: Annotated[Path, typer.Argument(help="A finished experiment folder (e.g. of "
                                            "experiments/trust/datasize.toml).")],
) -> None:
    """Tabulate in-distribution and held-out battery error vs the number of training trials."""
    from neuroreduce.trust.datasize import datasize_rows, write_datasize

    paths = write_datasize(exp_dir)
    for r in datasize_rows(exp_dir):
        out.print(f"{r['label']:>8} {r['n_train']:>4} train trials: test RMSE "
                  f"{r['test_rmse']:.4g}, battery {r['battery_rmse']:.4g} ({r['ratio']:.2f}x)",
                  markup=False)
    out.print(f"wrote {', '.join(str(p) for p in paths)}", markup=False)
