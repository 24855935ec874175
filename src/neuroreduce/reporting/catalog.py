"""What is registered, in plain rows: model families and importers with their options, metrics.

Read straight from the registries (:mod:`neuroreduce.models.registry`,
:mod:`neuroreduce.evaluation.registry`), so ``neuroreduce models`` / ``neuroreduce metrics``
never go out of date. A hyper-parameter's meaning comes from the ``Attributes:`` section of its
family's config docstring (Google style).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from dataclasses import dataclass

from neuroreduce.evaluation.context import TARGET_KINDS


@dataclass(frozen=True)
class OptionInfo:
    """One hyper-parameter of a model family's config dataclass."""

    name: str
    type: str
    default: str
    description: str


@dataclass(frozen=True)
class FamilyInfo:
    """A registered model family and its hyper-parameters (``hidden`` first)."""

    name: str
    description: str
    config: str
    options: tuple[OptionInfo, ...]


@dataclass(frozen=True)
class MetricRow:
    """A registered metric: target kind, which way is better (``higher``, ``lower``, ``-``:
    not an objective), result shape, meaning."""

    name: str
    kind: str
    direction: str
    shape: str
    description: str


def _plain(text: str) -> str:
    """Docstring markup as plain text: ``:data:`~a.b.C``` -> ``C``, double backticks -> none."""
    text = re.sub(r":\w+:`~?([\w.]+)`", lambda m: m.group(1).rsplit(".", 1)[-1], text)
    return text.replace("``", "")


def attribute_docs(cls: type) -> dict[str, str]:
    """``name -> text`` of the ``Attributes:`` section of ``cls``'s docstring (joined lines)."""
    lines = inspect.cleandoc(cls.__doc__ or "").splitlines()
    out: dict[str, str] = {}
    inside, indent, current = False, None, None
    for line in lines:
        if line.strip() == "Attributes:":
            inside = True
            continue
        if not inside:
            continue
        if not line.strip():
            continue
        pad = len(line) - len(line.lstrip())
        if pad == 0:  # the next section
            break
        indent = pad if indent is None else indent
        head, sep, text = line.strip().partition(":")
        if pad == indent and sep and head.isidentifier():
            current = head
            out[current] = text.strip()
        elif current is not None:
            out[current] = f"{out[current]} {line.strip()}".strip()
    return {k: _plain(v) for k, v in out.items()}


def _default(f: dataclasses.Field) -> str:  # type: ignore[type-arg]
    if f.default is not dataclasses.MISSING:
        return repr(f.default)
    if f.default_factory is not dataclasses.MISSING:
        return repr(f.default_factory())
    return "(required)"


def _options(config: type) -> tuple[OptionInfo, ...]:
    docs = attribute_docs(config)
    return tuple(
        OptionInfo(f.name, f.type if isinstance(f.type, str) else getattr(f.type, "__name__",
                                                                           str(f.type)),
                   _default(f), docs.get(f.name, ""))
        for f in sorted(dataclasses.fields(config), key=lambda f: f.name != "hidden")
    )


def family_info(name: str) -> FamilyInfo:
    """The family ``name`` with every field of its config (error lists the known families)."""
    from neuroreduce.models.registry import get_family

    family = get_family(name)
    return FamilyInfo(family.name, family.description, family.config.__name__,
                      _options(family.config))


def families() -> list[FamilyInfo]:
    """Every registered model family, by name."""
    from neuroreduce.models.registry import list_models

    return [family_info(n) for n in list_models()]


_DIRECTION = {"min": "lower", "max": "higher", None: "-"}


def metrics(kind: str | None = None) -> list[MetricRow]:
    """Every registered metric (of target ``kind``, if given), by kind then name."""
    from neuroreduce.evaluation.registry import get_metric_info, list_metrics

    rows = [get_metric_info(n) for n in list_metrics(kind)]
    order = {k: i for i, k in enumerate(TARGET_KINDS)}
    return [MetricRow(i.name, i.kind, _DIRECTION.get(i.direction, str(i.direction)), i.shape,
                      i.description)
            for i in sorted(rows, key=lambda i: (order.get(i.kind, len(order)), i.name))]


@dataclass(frozen=True)
class ImporterInfo:
    """A registered import format and its options."""

    name: str
    description: str
    source: str
    options: tuple[OptionInfo, ...]


def importer_info(name: str) -> ImporterInfo:
    """The importer ``name`` with every field of its options (error lists the known ones)."""
    from neuroreduce.datasets.importer_registry import get_importer

    imp = get_importer(name)
    return ImporterInfo(imp.name, imp.description, imp.source, _options(imp.options))


def importers() -> list[ImporterInfo]:
    """Every registered importer, by name."""
    from neuroreduce.datasets.importer_registry import list_importers

    return [importer_info(n) for n in list_importers()]
