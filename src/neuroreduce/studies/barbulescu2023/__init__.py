"""Barbulescu et al. (2023), Sci. Rep. 13:11542: RNN surrogates of the C. elegans connectome.

The study's experiment files are ``experiments/barbulescu2023/exp1..exp5.toml`` (Tables 1-5),
``fidelity.toml`` (beyond the paper) and the suite ``all.toml``. Its parts:

* :mod:`.tables` - the published Tables 1-5 and Experiment 4's input claims, as data;
* :mod:`.keras` - the paper's (Keras) parameter count, recorded per cell as
  ``keras_parameters``;
* :mod:`.comparison` - our results next to a table (``analysis/paper_comparison.json`` and the
  report section);
* :mod:`.conclusions` - Experiments 1-5's claims tested on our results.
"""

from __future__ import annotations

from neuroreduce.studies.barbulescu2023.comparison import comparison_analysis, report_sections
from neuroreduce.studies.barbulescu2023.conclusions import study_conclusions
from neuroreduce.studies.barbulescu2023.keras import keras_parameters
from neuroreduce.studies.barbulescu2023.tables import PAPER_REFERENCE, PAPER_TABLES
from neuroreduce.studies.base import CellField, Study, StudyAnalysis

STUDY = Study(
    name="barbulescu2023",
    title="Barbulescu et al. 2023: recurrent surrogates of C. elegans forward crawling",
    reference=PAPER_REFERENCE,
    tables=PAPER_TABLES,
    conclusions=study_conclusions,
    cell_fields=(CellField("keras_parameters", "params (paper/Keras)", keras_parameters),),
    analyses=(StudyAnalysis("paper_comparison", comparison_analysis),),
    report_sections=report_sections,
    figure_notes={"loss": "paper Figs 5, 7, 9 layout",
                  "sequences": "paper Figs 6, 8, 10-12 layout"},
    replaces=frozenset({"importance"}),
)

__all__ = ["STUDY"]
