"""A static, self-contained HTML page linking a run's figures and tables (no JavaScript)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from neuroreduce._io import write_text_atomic

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em} h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
figure{margin:1em 0} figcaption{font-size:.9em;color:#555}
img{max-width:100%;border:1px solid #eee}
code,pre{background:#f6f6f6;padding:.1em .3em;font-size:.9em}
pre{padding:.6em;overflow-x:auto}
"""


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An HTML table from a header and rows (cells are escaped)."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def key_values(items: Mapping[str, Any]) -> str:
    """A two-column table of settings."""
    return table(["setting", "value"], [(k, v) for k, v in items.items()])


def write_page(
    path: str | Path,
    *,
    title: str,
    sections: Sequence[tuple[str, str]],
) -> Path:
    """Write one HTML page with ``sections`` = ``[(heading, inner_html), ...]`` atomically."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for heading, inner in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>\n{inner}")
    parts.append("</body></html>\n")
    write_text_atomic(path, "\n".join(parts))
    return Path(path)


def figure(src: str, caption: str) -> str:
    """An ``<img>`` with a caption; ``src`` is relative to the page."""
    return (
        f'<figure><a href="{html.escape(src)}"><img src="{html.escape(src)}" '
        f'alt="{html.escape(caption)}"></a><figcaption>{html.escape(caption)}</figcaption></figure>'
    )
