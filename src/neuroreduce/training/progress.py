"""The epoch progress bar of training (rich)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


@contextlib.contextmanager
def progress_bar(
    enabled: bool, config: Any, start: int
) -> Iterator[Callable[[Any], None]]:
    if not enabled:
        yield lambda report: None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[best]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    label = f"{config.model}-{config.hidden} x{config.n_members}"
    with Progress(*columns) as bar:
        task = bar.add_task(label, total=config.epochs, completed=start, best="best val -")

        def advance(report: Any) -> None:
            best = [v for v in report.best_valid_losses if math.isfinite(v)]
            text = f"best val {min(best):.3e} (mean {np.mean(best):.3e})" if best else "-"
            bar.update(task, completed=report.epoch, best=text)

        yield advance
