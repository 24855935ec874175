"""``neuroreduce export``: one member of a trained run as TorchScript or ONNX (physical units)."""

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
) -> None:
    """Export one surrogate (inputs nA -> outputs mV) with a metadata JSON next to it."""
    from neuroreduce.export import export as run_export
    from neuroreduce.export import sidecar_path

    path = run_export(run, output, fmt=fmt, member=member, mode=mode)
    what = f"{fmt} ({mode})" if fmt == "onnx" else fmt
    out.print(f"wrote {path} [{what}, member {member}] and {sidecar_path(path)}", markup=False)
