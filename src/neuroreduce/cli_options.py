"""Parsing of the command line's compound options into typed config values.

``--model-option layers=2`` (values read as JSON where they parse, else as text),
``--objective spikes=bce:balanced`` / ``--objective outputs=mse*0.5`` and
``--split leave_groups_out:group=worm,k=1,fold=2``. Each bad option is one ``ConfigError`` line
that shows the expected form.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from neuroreduce.datasets.split_strategies import SplitSpec
from neuroreduce.errors import ConfigError
from neuroreduce.training.objectives import TermSpec


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_assignments(items: Sequence[str] | None, what: str) -> dict[str, Any]:
    """``["a=1", "b=[2,3]"]`` -> ``{"a": 1, "b": [2, 3]}``."""
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{what} {item!r} must look like NAME=VALUE")
        out[key.strip()] = _value(value.strip())
    return out


def parse_objective(items: Sequence[str] | None) -> tuple[TermSpec, ...]:
    """``FIELD=LOSS[:POS_WEIGHT][*WEIGHT]`` per item, e.g. ``spikes=bce:balanced*2``."""
    terms = []
    for item in items or ():
        field, sep, rest = item.partition("=")
        if not sep or not field or not rest:
            raise ConfigError(
                f"--objective {item!r} must look like FIELD=LOSS[:POS_WEIGHT][*WEIGHT], "
                "e.g. spikes=bce:balanced or outputs=mse*0.5"
            )
        rest, _, weight = rest.partition("*")
        loss, _, pos = rest.partition(":")
        terms.append(TermSpec(
            field.strip(), loss.strip(),
            weight=_value(weight) if weight else 1.0,
            pos_weight=(_value(pos) if pos else None),
        ))
    return tuple(terms)


def parse_split(text: str | None) -> SplitSpec | None:
    """``STRATEGY[:OPTION=VALUE,...]`` (``fold`` among the options) -> :class:`SplitSpec`."""
    if not text:
        return None
    name, _, rest = text.partition(":")
    options = parse_assignments([p for p in _top_level(rest) if p.strip()], "--split option")
    fold = options.pop("fold", 0)
    if isinstance(fold, bool) or not isinstance(fold, int):
        raise ConfigError(f"--split fold must be an integer, got {fold!r}")
    return SplitSpec(name.strip(), options, fold)


def _top_level(text: str) -> list[str]:
    """``text`` split at commas outside brackets and quotes (``fractions=[0.6,0.2,0.2],k=1``)."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts
