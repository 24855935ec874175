"""Studies: one package per publication, layered on the generic experiments.

``Study`` (:mod:`.base`) says what a publication adds to an experiment: reference tables,
conclusions tested on our results, per-cell fields, analyses and report sections. Studies are
registered by name in :mod:`.registry`; an experiment file names its study with
``study = "..."``. The registry's functions are available here as well (imported on first use,
so that :mod:`.base` stays importable by the generic modules the studies build on).
"""

from __future__ import annotations

from typing import Any

from neuroreduce.studies.base import CellField, CellShape, Study, StudyAnalysis, StudyContext

_REGISTRY_NAMES = ("STUDIES", "cell_fields", "field_names", "get_study", "list_studies",
                   "resolve_study", "study_of")

__all__ = ["CellField", "CellShape", "Study", "StudyAnalysis", "StudyContext",
           *_REGISTRY_NAMES]


def __getattr__(name: str) -> Any:
    if name in _REGISTRY_NAMES:
        from neuroreduce.studies import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
