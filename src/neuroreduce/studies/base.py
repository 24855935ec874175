"""What a study is: the paper-specific layer on top of the generic experiment runner.

A *study* bundles what belongs to one publication (one seed of the project): its citation, its
published reference tables, the conclusions it claims (as a function that tests them on our
results), extra per-cell record fields (e.g. the paper's own parameter count), extra analyses
(e.g. our results next to a published table) and extra report sections. The generic runner,
analyses and report ask the study named by an experiment file (``study = "..."``) for these
hooks; a file without a study gets the generic results only.

All hooks are plain functions of plain data (:class:`CellShape`, :class:`StudyContext`), so a
study never imports the runner's internals and the runner never imports a study by path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

#: A generated paragraph: ``{"kind", "title", "text", "holds"}`` (``holds``: True / False when it
#: tests a claim of the study, None when it only reports numbers).
Paragraph = dict[str, Any]


@dataclass(frozen=True)
class CellShape:
    """The architecture of one grid cell, as the study's per-cell fields see it.

    Attributes:
        model: Registered model name (``"rnn"``, ``"lstm"``, ``"gru"``, ...).
        hidden: Recurrent units (model size).
        n_inputs: Input channels the cell was trained on.
        n_outputs: Output channels.
    """

    model: str
    hidden: int
    n_inputs: int
    n_outputs: int


@dataclass(frozen=True)
class CellField:
    """An extra per-cell value a study records (``cell.json``, results table, report column).

    Attributes:
        name: Key in ``cell.json`` and column of ``results.json``/``.csv`` (e.g.
            ``"keras_parameters"``).
        label: Column header in the report (e.g. ``"params (paper/Keras)"``).
        compute: ``CellShape -> JSON value``; runs in the worker that trains the cell.
    """

    name: str
    label: str
    compute: Callable[[CellShape], Any]


@dataclass(frozen=True)
class StudyContext:
    """What a study's analyses and conclusions see of a finished experiment.

    Attributes:
        cells: The finished cells (:class:`~neuroreduce.experiments.expfiles.CellSummary`).
        analyses: Results of the analyses run so far, by name (``"error_vs_size"``,
            ``"ablation"``, ``"attribution"``, ``"ood"``, ``"speed"``, the study's own).
        resolved: The experiment's ``resolved.json``.
        table: The reference table the file compares with (its ``paper`` key), or None.
        tolerance: Relative error margin of "within x of the best" (``[analysis]``
            ``size_tolerance``).
    """

    cells: Sequence[Any]
    analyses: Mapping[str, Any]
    resolved: Mapping[str, Any]
    table: str | None = None
    tolerance: float = 0.10


@dataclass(frozen=True)
class StudyAnalysis:
    """An analysis a study adds; its result is written to ``analysis/<name>.json``.

    Attributes:
        name: File stem and key in the analyses mapping (e.g. ``"paper_comparison"``).
        run: ``StudyContext -> JSON-able dict``, or None when it does not apply (e.g. the file
            names no reference table); then nothing is written.
    """

    name: str
    run: Callable[[StudyContext], dict[str, Any] | None]


@dataclass(frozen=True)
class Study:
    """One publication's layer over the generic experiments (see the module docstring).

    Attributes:
        name: Registry key, ``[a-z0-9_]+`` by convention ``<first author><year>``; the value of
            ``study = "..."`` in an experiment file.
        title: One line for reports.
        reference: The citation.
        tables: Published reference tables by key (the values of ``paper = "..."``); any
            frozen objects the study's own hooks understand.
        conclusions: ``StudyContext -> [Paragraph]``: the study's claims tested on our results;
            placed right after the generic ranking paragraph.
        cell_fields: Extra per-cell values (see :class:`CellField`).
        analyses: Extra analyses, run after the generic error-vs-size analysis.
        report_sections: ``analyses -> [(heading, html)]``: sections placed after the results
            table of the report (e.g. our results next to a published table).
        figure_notes: Extra words for generic report headings by figure kind (``"loss"``,
            ``"sequences"``), e.g. which of the paper's figures a layout follows.
        replaces: Kinds of generic paragraphs the study's ``conclusions`` write themselves (e.g.
            ``"importance"``), left out of the generic conclusions.
    """

    name: str
    title: str
    reference: str
    tables: Mapping[str, Any]
    conclusions: Callable[[StudyContext], list[Paragraph]]
    cell_fields: tuple[CellField, ...] = ()
    analyses: tuple[StudyAnalysis, ...] = ()
    report_sections: Callable[[Mapping[str, Any]], list[tuple[str, str]]] | None = None
    figure_notes: Mapping[str, str] | None = None
    replaces: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "tables", MappingProxyType(dict(self.tables)))
        object.__setattr__(self, "figure_notes", MappingProxyType(dict(self.figure_notes or {})))
        object.__setattr__(self, "replaces", frozenset(self.replaces))

    def note(self, figure: str) -> str:
        """The extra heading words for ``figure`` (``""`` when the study gives none)."""
        return (self.figure_notes or {}).get(figure, "")

    def fields_of(self, shape: CellShape) -> dict[str, Any]:
        """The study's per-cell values for ``shape``, in declaration order."""
        return {f.name: f.compute(shape) for f in self.cell_fields}
