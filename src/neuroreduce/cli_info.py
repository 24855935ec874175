"""``neuroreduce models``, ``metrics``, ``importers``, ``fields FILE``: what is registered.

Thin typer layer over :mod:`neuroreduce.reporting.catalog` and
:mod:`neuroreduce.reporting.field_summary`; ``cli.py`` merges :data:`info_app` into the main app
(the commands stay top level).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from neuroreduce.cli_common import friendly_errors, out

info_app = typer.Typer(no_args_is_help=True, add_completion=False)


def _table(title: str, columns: dict[str, bool], *, lines: bool = False) -> Table:
    """A table whose ``columns`` map name -> may wrap (short columns never wrap)."""
    table = Table(title=Text(title), show_lines=lines, title_justify="left")
    for name, wraps in columns.items():
        table.add_column(name, overflow="fold", no_wrap=not wraps)
    return table


def _row(table: Table, *cells: object) -> None:
    """Add cells as plain text (brackets such as ``[channel]`` are not rich markup)."""
    table.add_row(*(Text(str(c)) for c in cells))


@info_app.command()
@friendly_errors
def models(
    name: Annotated[str | None, typer.Argument(help="Show one family only.")] = None,
) -> None:
    """List the model families with their hyper-parameters (types, defaults, meaning)."""
    from neuroreduce.reporting.catalog import families, family_info

    chosen = [family_info(name)] if name else families()
    out.print("Train with --model FAMILY; --hidden sets 'hidden', --model-option NAME=VALUE "
              "the others.", highlight=False)
    for fam in chosen:
        table = _table(f"{fam.name}: {fam.description}",
                       {"option": False, "type": False, "default": False, "meaning": True})
        for opt in fam.options:
            _row(table, opt.name, opt.type, opt.default, opt.description)
        out.print(table)


@info_app.command()
@friendly_errors
def metrics(
    kind: Annotated[str | None, typer.Option(
        help="Only metrics of this target kind (continuous, binary, categorical, ...).")] = None,
) -> None:
    """List the registered metrics: target kind, which way is better, result shape, meaning."""
    from neuroreduce.reporting.catalog import metrics as rows

    table = _table("metrics (evaluation registry; evaluate scores each field with its kind's)",
                   {"metric": False, "kind": False, "better": False, "shape": True,
                    "description": True})
    for r in rows(kind):
        _row(table, r.name, r.kind, r.direction, r.shape, r.description)
    out.print(table)


@info_app.command()
@friendly_errors
def importers(
    name: Annotated[str | None, typer.Argument(help="Show one importer only.")] = None,
) -> None:
    """List the import formats (`neuroreduce import NAME SOURCE -o FILE`) with their options."""
    from neuroreduce.reporting.catalog import importer_info
    from neuroreduce.reporting.catalog import importers as rows

    chosen = [importer_info(name)] if name else rows()
    out.print("Import with `neuroreduce import NAME SOURCE -o FILE --option KEY=VALUE`.",
              highlight=False)
    for imp in chosen:
        table = _table(f"{imp.name} ({imp.source}): {imp.description}",
                       {"option": False, "type": False, "default": False, "meaning": True})
        for opt in imp.options:
            _row(table, opt.name, opt.type, opt.default, opt.description)
        out.print(table)


@info_app.command()
@friendly_errors
def fields(
    dataset: Annotated[Path, typer.Argument(help="Dataset file (HDF5).")],
) -> None:
    """Show a dataset's fields: role, kind, channels, units, classes, groups, shape, content."""
    from neuroreduce.reporting.field_summary import summarize_file

    s = summarize_file(dataset)
    table = _table(f"{s.path}: {s.n_trials} trials x {s.n_time} samples (dt {s.dt_ms:g} ms); "
                   f"split: {s.splits}; hash {s.content_hash[:16]}",
                   {"field": False, "role, kind": True, "units": False,
                    "channels / classes / groups": True, "shape; content": True}, lines=True)
    for r in s.fields:
        names = [f"channels {r.channels}" if r.channels else "", f"classes {r.classes}"
                 if r.classes else "", f"per group: {r.groups}" if r.groups else ""]
        _row(table, r.name, f"{r.role}, {r.kind}", r.units, "\n".join(n for n in names if n),
             f"{r.shape}\n{r.content}")
    out.print(table)
