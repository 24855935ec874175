"""``neuroreduce export``: a trained run (one member, or the ensemble) as TorchScript or ONNX."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neuroreduce.cli_common import friendly_errors, out


@friendly_errors
def export(
    run: Annotated[Path, typer.Argument(help="Run folder from `neuroreduce train`.")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="File to write (e.g. model.onnx, model.pt).")
    ],
    fmt: Annotated[str, typer.Option("--format", help="onnx or torchscript.")] = "onnx",
    member: Annotated[int, typer.Option(help="Ensemble member (seed index), 0-based.")] = 0,
    mode: Annotated[
        str,
        typer.Option(help="ONNX graph: sequence (whole trials) or step (one dt, state in/out)."),
    ] = "sequence",
    ensemble: Annotated[bool, typer.Option(
        "--ensemble", help="TorchScript of every member: returns the ensemble mean and spread.")
    ] = False,
) -> None:
    """Export a surrogate (inputs nA -> outputs mV) with a metadata JSON next to it."""
    from neuroreduce.export import export as run_export
    from neuroreduce.export import sidecar_path

    path = run_export(run, output, fmt=fmt, member=member, mode=mode, ensemble=ensemble)
    if ensemble:
        out.print(f"wrote {path} [torchscript ensemble: mean and spread] and "
                  f"{sidecar_path(path)}", markup=False)
        return
    what = f"{fmt} ({mode})" if fmt == "onnx" else fmt
    out.print(f"wrote {path} [{what}, member {member}] and {sidecar_path(path)}", markup=False)
