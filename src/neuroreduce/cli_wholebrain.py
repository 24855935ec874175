"""``neuroreduce wholebrain run FILE``: the Wang et al. protocol study (a thin layer over
:func:`neuroreduce.studies.wang2023.run.run_study`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neuroreduce.cli_common import friendly_errors, out

wholebrain_app = typer.Typer(
    help="Whole-brain imaging: k-of-n worms x folds protocol studies (Wang et al.).",
    no_args_is_help=True,
)


@wholebrain_app.command("run")
@friendly_errors
def run(
    file: Annotated[Path, typer.Argument(help="Study TOML file (experiments/wang2023/*.toml).")],
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="Output folder (default: runs/wang2023/<name>).")] = None,
    data: Annotated[str | None, typer.Option(
        help="Source path of the recordings (overrides [data] source).")] = None,
    backend: Annotated[str, typer.Option(help="Where cells run: local or ray.")] = "local",
    workers: Annotated[int, typer.Option(help="Concurrent cells.")] = 1,
    address: Annotated[str | None, typer.Option(
        help="Ray cluster address (auto, ray://host:10001); default: a local Ray.")] = None,
) -> None:
    """Import or simulate the recordings, run every cell of the protocol, write the report."""
    from neuroreduce.execution import Backend
    from neuroreduce.studies.wang2023.run import load_spec, run_study

    spec = load_spec(file, source=data)
    chosen = Backend(kind=backend, workers=workers, address=address)
    folder = output if output is not None else Path("runs") / "wang2023" / spec.name
    out.print(f"study {spec.name} -> {folder}")
    results = run_study(spec, folder, backend=chosen, progress=True)
    for name, doc in results["runs"].items():
        for model, e in doc["summary"].items():
            cols = []
            for s in ("test", "unseen", "other"):
                m = e[s]["mean"]
                cols.append(f"{s} {'-' if m is None else f'{100 * m:.1f}'}")
            out.print(f"{name:8s} {model:18s} " + "  ".join(cols))
    out.print(f"wall time {results['wall_s']:.0f} s; report: {folder / 'report.md'}")
