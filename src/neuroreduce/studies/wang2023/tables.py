"""Wang et al.'s published numbers (Table 1, forward/reverse accuracy in %), as data."""

from __future__ import annotations

from dataclasses import dataclass

PAPER_REFERENCE = (
    "Wang P.Y., Sapra S., George V.K., Silva G.A.: Generalizable Machine Learning in "
    "Neuroscience using Graph Neural Networks (UC San Diego; project seed 001)"
)


@dataclass(frozen=True)
class Table1Row:
    """One row of Table 1: accuracy (%) mean and std per column (None: not reported).

    Attributes:
        model: Row label (``"SVM"``, ``"MLP"``, ``"GNN (connectome)"``, ``"GNN"``, ...).
        train: "Training Set": held-out windows of the training worm(s).
        train_std: Its standard deviation.
        unseen: "Evaluation Set (Kato)": worms not seen in training.
        unseen_std: Its standard deviation.
        other: "Evaluation Set (Nichols)": another recording set.
        other_std: Its standard deviation.
    """

    model: str
    train: float | None
    train_std: float | None
    unseen: float | None
    unseen_std: float | None
    other: float | None
    other_std: float | None


#: Table 1 of the paper (forward vs reverse crawling).
TABLE1: tuple[Table1Row, ...] = (
    Table1Row("Brennan & Proekt", 83.0, None, 81.0, None, None, None),
    Table1Row("SVM", 98.8, 0.4, 82.8, 7.6, 79.0, 11.7),
    Table1Row("MLP", 99.3, 0.6, 93.9, 10.3, 88.9, 11.4),
    Table1Row("GNN (connectome)", 99.5, 0.6, 96.8, 4.3, 85.5, 12.9),
    Table1Row("GNN", 99.5, 0.5, 97.7, 3.1, 95.5, 6.1),
)

#: Other numbers of the text: 7 states ~92 % on the same worm, 4 states 87 % on unseen worms
#: (GNN trained on three worms), ~70 % for MLP and GNN on the 21 Nichols worms; 3 shared
#: neurons instead of 15 "not significantly" worse.
TEXT_NUMBERS = {"seven_states_same_worm": 92.0, "four_states_unseen_gnn": 87.0,
                "four_states_nichols": 70.0}


def paper_row(name: str) -> Table1Row | None:
    """The Table 1 row called ``name`` (None if the paper has none)."""
    return next((r for r in TABLE1 if r.model == name), None)
