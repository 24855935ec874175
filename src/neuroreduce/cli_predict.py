"""``neuroreduce predict``: the ensemble's prediction of new stimuli, with its uncertainty."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer

from neuroreduce.cli_common import friendly_errors, out


@friendly_errors
def predict(
    run: Annotated[Path, typer.Argument(help="Run folder from `neuroreduce train`.")],
    dataset: Annotated[Path, typer.Argument(help="Dataset file whose inputs to predict (its outputs, if any, are not used).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="HDF5 file to write.")],
    members: Annotated[bool, typer.Option("--members", help="Also write every member's prediction.")] = False,
) -> None:
    """Ensemble mean, member spread and calibrated intervals; flags unfamiliar inputs."""
    from neuroreduce.datasets.io import load_dataset
    from neuroreduce.training import check_compatible, load_run
    from neuroreduce.trust.predict import predict_ensemble, write_predictions
    from neuroreduce.trust.range_check import OutOfRangeWarning

    loaded = load_run(run)
    data = load_dataset(dataset)
    check_compatible(loaded, data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", OutOfRangeWarning)
        pred = predict_ensemble(loaded, data.inputs)
    path = write_predictions(output, pred, run=loaded, members=members)
    interval = ("no intervals (run `neuroreduce evaluate` first to calibrate them)"
                if pred.level is None else f"{100 * pred.level:.0f} % intervals lower/upper")
    out.print(f"wrote {path}: mean and spread of {pred.members.shape[0]} members for "
              f"{pred.mean.shape[0]} trials; {interval}", markup=False)
    for w in caught:
        if issubclass(w.category, OutOfRangeWarning):
            out.print(f"warning: {w.message}", markup=False)
