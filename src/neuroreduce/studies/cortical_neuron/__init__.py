"""A detailed cortical neuron and its surrogates (seed 003, the blog; issue 11).

The question: how small can a surrogate of a layer-5 pyramidal cell driven by ~1,300 synapses
be and still predict its spikes (ROC AUC) and soma voltage? The blog trained 216 stacked
RNN/GRU/LSTM networks (best validation AUC 0.965 at 1.66 M parameters); Beniaguev et al.
(2021) reached 0.991 with a deep TCN; Spieler et al. (2023) 0.9915 with a 6,827-parameter
Branch-ELM. Our data come from our own simulation with the same recipe (simulator ``l5pc``) or
from NeuronIO files (importer ``neuronio``), said wherever results are compared.

Parts: :mod:`.tables` (published numbers, the blog's configurations, :func:`parameter_table`),
:mod:`.scoring` (ROC scores, threshold precision, soma voltage, surrogate cost),
:mod:`.analysis` (every cell re-scored, top 10, NMDA vs AMPA-only, AUC vs data size),
:mod:`.figures` and :mod:`.conclusions`. Experiment files: ``experiments/cortical_neuron/``
(``blog_grid.toml`` as the blog wrote it, ``reduced.toml`` for a 2-core machine,
``tiny.toml`` for the end-to-end test).
"""

from __future__ import annotations

from neuroreduce.studies.base import Study, StudyAnalysis
from neuroreduce.studies.cortical_neuron.analysis import cortical_analysis
from neuroreduce.studies.cortical_neuron.conclusions import report_sections, study_conclusions
from neuroreduce.studies.cortical_neuron.tables import (
    ANCHORS,
    BENIAGUEV_REFERENCE,
    BLOG_REFERENCE,
    BLOG_TOP10,
    SPIELER_ELM,
    SPIELER_REFERENCE,
    format_parameter_table,
    parameter_table,
)

STUDY = Study(
    name="cortical_neuron",
    title="Cortical neuron: RNN/TCN/ELM/GLM surrogates of an L5 pyramidal cell, by ROC AUC",
    reference=" ".join((BLOG_REFERENCE, BENIAGUEV_REFERENCE, SPIELER_REFERENCE)),
    tables={"anchors": ANCHORS, "blog_top10": BLOG_TOP10, "spieler_elm": SPIELER_ELM},
    conclusions=study_conclusions,
    analyses=(StudyAnalysis("cortical_neuron", cortical_analysis),),
    report_sections=report_sections,
)

__all__ = ["STUDY", "format_parameter_table", "parameter_table"]
