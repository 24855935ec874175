"""Wang et al.: a GNN with inferred edges vs MLP, SVM and connectome-GNN on whole-brain imaging.

Its files are ``experiments/wang2023/*.toml``, run with ``neuroreduce wholebrain run FILE``
(the k-of-n worms x folds protocol of :mod:`neuroreduce.wholebrain.protocol` is not a grid of
the generic runner). Parts:

* :mod:`.tables` - Table 1 and the text's numbers, as data;
* :mod:`.run` - the study file, its data (imported or simulated with known wiring), the main
  grid and the variants (without AVA, few neurons), edge AUROC;
* :mod:`.conclusions` - the paper's claims tested on the results (holds / does not hold);
* :mod:`.report` - the Markdown report (Table 1 layout next to the paper, confusion matrices).
"""

from __future__ import annotations

from neuroreduce.studies.base import Study
from neuroreduce.studies.wang2023.conclusions import study_conclusions
from neuroreduce.studies.wang2023.tables import PAPER_REFERENCE, TABLE1

STUDY = Study(
    name="wang2023",
    title="Wang et al.: GNN with inferred edges generalises behaviour decoding to unseen worms",
    reference=PAPER_REFERENCE,
    tables={"table1": TABLE1},
    conclusions=study_conclusions,
)

__all__ = ["STUDY"]
