"""The published results of Barbulescu et al. (2023), Sci. Rep. 13:11542, as data.

Tables 1-5 are transcribed exactly as printed (average RMSE of ten training runs, each run's
best-validation epoch). The paper's RMSE is in the units of its own published data, whose
output range is about 1.1 (``PAPER_OUTPUT_RANGE``, measured on the published ``.dat`` files,
see ``DESIGN.md``); our data come from another c302 network in mV. Comparisons must therefore be
scale-free: our NRMSE (RMSE / range of the true outputs) against the paper's RMSE divided by
``PAPER_OUTPUT_RANGE``, and ranks and ratios between models within one table.

Each table is registered under ``"table1"`` .. ``"table5"`` (the ``paper`` key of an experiment
file of the ``barbulescu2023`` study) and carries the experiment's conclusion as the paper states
it; :data:`INPUT_CLAIMS` holds Experiment 4's input -> output claims.
"""

from __future__ import annotations

from dataclasses import dataclass

from neuroreduce.errors import unknown_name_error
from neuroreduce.studies.barbulescu2023.keras import keras_parameter_count

#: Approximate range (max - min) of the outputs in the paper's published data (their units).
PAPER_OUTPUT_RANGE: float = 1.1

PAPER_REFERENCE = (
    "Barbulescu, R., Mestre, G., Oliveira, A. L., Silveira, L. M. (2023). Learning the dynamics "
    "of realistic models of C. elegans nervous system with recurrent neural networks. "
    "Sci. Rep. 13, 11542."
)


@dataclass(frozen=True)
class PaperColumn:
    """One model column of a published table.

    Attributes:
        label: Column header as printed, e.g. ``"GRU-8"`` or ``"Dataset 2-4"``.
        model: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        hidden: Recurrent units.
        dt_ms: Sampling interval of the column's dataset (ms).
        n_inputs: Input channels of the column's dataset.
        n_outputs: Output channels of the column's dataset.
        stated_parameters: Parameter count printed in the paper's text, if any.
    """

    label: str
    model: str
    hidden: int
    dt_ms: float = 0.5
    n_inputs: int = 4
    n_outputs: int = 4
    stated_parameters: int | None = None

    @property
    def parameters(self) -> int:
        """Keras parameter count (the paper's convention: one bias vector per gate)."""
        return keras_parameter_count(
            self.model, n_inputs=self.n_inputs, n_outputs=self.n_outputs, hidden=self.hidden
        )


@dataclass(frozen=True)
class PaperRow:
    """One printed row of a table: average RMSE (paper's units) per column, in column order.

    Attributes:
        label: Row header as printed (``"Training"``, ``"No-AVB"``, ...).
        split: Which split the row reports (``"train"``, ``"valid"``, ``"test"``).
        variant: Input-channel variant of the row (``"all"``, ``"no_avb"``, ``"no_plm"``).
        values: Average RMSE of ten runs, one per column.
    """

    label: str
    split: str
    variant: str
    values: tuple[float, ...]


@dataclass(frozen=True)
class PaperTable:
    """One published table with its experiment's stated findings.

    Attributes:
        key: Registry key, ``"table1"`` .. ``"table5"``.
        number: Table number in the paper.
        experiment: Experiment number (1-5) in the paper.
        title: The experiment's title as in the paper.
        caption: The table caption (abridged).
        figures: Figure numbers of the experiment (loss curves, sequences).
        columns: Model columns.
        rows: Printed rows.
        observation: What the paper observed (paraphrased with its numbers).
        conclusion: The conclusion the paper draws, quoted or closely paraphrased.
    """

    key: str
    number: int
    experiment: int
    title: str
    caption: str
    figures: tuple[int, ...]
    columns: tuple[PaperColumn, ...]
    rows: tuple[PaperRow, ...]
    observation: str
    conclusion: str

    def value(self, column: str, row: str) -> float:
        """RMSE printed in ``row`` (label) and ``column`` (label)."""
        j = [c.label for c in self.columns].index(column)
        return next(r for r in self.rows if r.label == row).values[j]

    def entries(self) -> list[dict[str, object]]:
        """Flat list of every printed value with its column's model description (JSON-able),
        including the scale-free value ``nrmse = rmse / PAPER_OUTPUT_RANGE``."""
        out: list[dict[str, object]] = []
        for row in self.rows:
            for col, value in zip(self.columns, row.values, strict=True):
                out.append(
                    {
                        "table": self.number,
                        "column": col.label,
                        "row": row.label,
                        "model": col.model,
                        "hidden": col.hidden,
                        "dt_ms": col.dt_ms,
                        "variant": row.variant,
                        "split": row.split,
                        "rmse": value,
                        "nrmse": value / PAPER_OUTPUT_RANGE,
                        "parameters": col.parameters,
                        "stated_parameters": col.stated_parameters,
                    }
                )
        return out


def _cols(specs: list[tuple[str, str, int]], **common: object) -> tuple[PaperColumn, ...]:
    return tuple(PaperColumn(label, model, hidden, **common) for label, model, hidden in specs)  # type: ignore[arg-type]


def _splits(train: tuple[float, ...], valid: tuple[float, ...], test: tuple[float, ...]) -> tuple[
    PaperRow, ...
]:
    return (
        PaperRow("Training", "train", "all", train),
        PaperRow("Validation", "valid", "all", valid),
        PaperRow("Test", "test", "all", test),
    )


_TABLE1 = PaperTable(
    key="table1",
    number=1,
    experiment=1,
    title="RNN vs. LSTM vs. GRU (performance)",
    caption="Average RMSE of ten runs for RNN with 16 and 64 units and LSTM and GRU with 8 and "
    "32 units, at the iteration with the smallest validation loss (0.5 ms data).",
    figures=(5, 6),
    columns=(
        PaperColumn("RNN-16", "rnn", 16, stated_parameters=404),
        PaperColumn("LSTM-8", "lstm", 8, stated_parameters=452),
        PaperColumn("GRU-8", "gru", 8, stated_parameters=348),
        PaperColumn("RNN-64", "rnn", 64, stated_parameters=4676),
        PaperColumn("LSTM-32", "lstm", 32, stated_parameters=4868),
        PaperColumn("GRU-32", "gru", 32, stated_parameters=3684),
    ),
    rows=_splits(
        (1.04e-01, 9.93e-03, 7.79e-03, 6.28e-02, 7.60e-03, 6.71e-03),
        (1.29e-01, 3.61e-02, 3.47e-02, 8.87e-02, 3.64e-02, 3.50e-02),
        (1.34e-01, 1.49e-02, 1.00e-02, 9.54e-02, 1.52e-02, 1.23e-02),
    ),
    observation="The simple RNN does not reproduce the outputs (test RMSE 1.34e-1 and 9.54e-2) "
    "while LSTM and GRU do (1.0e-2 to 1.5e-2); GRU-8 has the lowest test RMSE.",
    conclusion="The RNN is clearly worse than LSTM and GRU; the GRU, less complex than the LSTM, "
    "is the main option and the LSTM the alternative.",
)

_TABLE2 = PaperTable(
    key="table2",
    number=2,
    experiment=2,
    title="LSTM vs. GRU (reduction)",
    caption="Average RMSE of ten runs of the GRU model for recurrent layers of 2 to 64 units.",
    figures=(7, 8),
    columns=_cols([(f"{h} Units", "gru", h) for h in (2, 4, 8, 16, 32, 64)]),
    rows=_splits(
        (4.29e-02, 1.05e-02, 7.79e-03, 6.78e-03, 6.71e-03, 5.80e-03),
        (5.37e-02, 3.48e-02, 3.47e-02, 3.49e-02, 3.50e-02, 3.62e-02),
        (6.00e-02, 1.17e-02, 1.00e-02, 9.36e-03, 1.23e-02, 1.68e-02),
    ),
    observation="Test RMSE falls from 6.0e-2 (2 units) to 1.17e-2 (4 units), is lowest at 16 "
    "units (9.36e-3) and rises again at 32 and 64 units (1.23e-2, 1.68e-2) while the training "
    "RMSE keeps falling.",
    conclusion="A GRU with 4 hidden units is optimal (low RMSE); more than 16 units worsens the "
    "test predictions (overfitting), so a 4-unit GRU beats a 64-unit GRU.",
)

_TABLE3 = PaperTable(
    key="table3",
    number=3,
    experiment=3,
    title="GRU (long sequences)",
    caption="Average RMSE of ten runs of GRU-4 and GRU-8 on dataset 1 (0.5 ms, 1001 steps) and "
    "dataset 2 (0.1 ms, 5001 steps).",
    figures=(9, 10),
    columns=(
        PaperColumn("Dataset 1-4", "gru", 4, dt_ms=0.5),
        PaperColumn("Dataset 2-4", "gru", 4, dt_ms=0.1),
        PaperColumn("Dataset 1-8", "gru", 8, dt_ms=0.5),
        PaperColumn("Dataset 2-8", "gru", 8, dt_ms=0.1),
    ),
    rows=_splits(
        (1.05e-02, 1.08e-02, 7.79e-03, 8.17e-03),
        (3.48e-02, 3.45e-02, 3.47e-02, 3.54e-02),
        (1.17e-02, 1.21e-02, 1.00e-02, 1.04e-02),
    ),
    observation="Test RMSE 1.17e-2 vs 1.21e-2 (GRU-4) and 1.00e-2 vs 1.04e-2 (GRU-8) for 0.5 vs "
    "0.1 ms: the finer step converges more slowly but ends at the same error.",
    conclusion="There is no noticeable difference between the two time steps; the GRU adapts to "
    "longer sequences (test RMSE below 1.3e-2 in every case).",
)

_TABLE4 = PaperTable(
    key="table4",
    number=4,
    experiment=4,
    title="LSTM & GRU (input importance)",
    caption="Average RMSE of ten runs of LSTM and GRU of 8, 16, 32 units trained without the "
    "AVB (No-AVB) or without the PLM (No-PLM) inputs.",
    figures=(11,),
    columns=_cols([(f"{m.upper()}-{h}", m, h) for m in ("lstm", "gru") for h in (8, 16, 32)]),
    rows=(
        PaperRow("No-AVB", "test", "no_avb",
                 (6.74e-02, 6.79e-02, 6.81e-02, 6.83e-02, 6.79e-02, 6.57e-02)),
        PaperRow("No-PLM", "test", "no_plm",
                 (2.00e-01, 2.03e-01, 2.01e-01, 1.96e-01, 1.96e-01, 1.97e-01)),
    ),
    observation="Size does not change the error. Without AVB, LUAL and PVR are reproduced well "
    "and DB1, VB1 poorly; without PLM, DB1 and VB1 are reproduced well and LUAL, PVR poorly "
    "(larger RMSE because LUAL and PVR have larger voltages).",
    conclusion="The AVB neurons are important for LUAL and PVR, the PLM inputs for DB1 and VB1 "
    "(as stated in the paper; note that its own observation - LUAL/PVR stay accurate without "
    "AVB - suggests the reverse pairing).",
)

_TABLE5 = PaperTable(
    key="table5",
    number=5,
    experiment=5,
    title="LSTM & GRU (scalability and generalizability)",
    caption="Average RMSE of ten runs on the mixed FCM + Nictation dataset (80 trials, 10 "
    "inputs, 28 outputs).",
    figures=(12,),
    columns=_cols(
        [(f"{m.upper()}-{h}", m, h) for m in ("lstm", "gru") for h in (8, 16, 32)],
        n_inputs=10,
        n_outputs=28,
    ),
    rows=(
        PaperRow("Avg RMSE", "test", "all",
                 (4.32e-02, 3.96e-02, 4.03e-02, 3.74e-02, 2.37e-02, 2.63e-02)),
    ),
    observation="GRU-16 is best (2.37e-2), every GRU beats the LSTM of the same size, and 16 "
    "recurrent units suffice for 28 outputs.",
    conclusion="Both layer types, GRU in particular, scale to two behaviours and 28 outputs with "
    "fewer recurrent units than outputs.",
)

PAPER_TABLES: dict[str, PaperTable] = {
    t.key: t for t in (_TABLE1, _TABLE2, _TABLE3, _TABLE4, _TABLE5)
}


def get_paper_table(key: str) -> PaperTable:
    """The published table registered as ``key`` (``"table1"`` .. ``"table5"``).

    Raises:
        ConfigError: for an unknown key (the message lists the known ones).
    """
    try:
        return PAPER_TABLES[key]
    except KeyError:
        raise unknown_name_error("paper table", key, list(PAPER_TABLES)) from None


def list_paper_tables() -> list[str]:
    """Keys of all registered tables."""
    return sorted(PAPER_TABLES)


@dataclass(frozen=True)
class InputClaim:
    """A claim of Experiment 4 that a group of inputs drives a set of outputs.

    Attributes:
        source: ``"stated"`` (the paper's conclusion) or ``"observed"`` (what its Table 4 /
            Fig. 11 text reports: outputs that become inaccurate without the inputs).
        group: Name of the input group (``"AVB"``, ``"PLM"``).
        inputs: The input channels of the group.
        outputs: The outputs the group is said to drive.
    """

    source: str
    group: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


#: Experiment 4's input -> output claims. The paper states "AVB neurons are important for LUAL
#: and PVR, PLM for DB1 and VB1", while its observation (without AVB, LUAL and PVR are still
#: reproduced well and DB1, VB1 are not; the reverse without PLM) implies the opposite pairing.
INPUT_CLAIMS: tuple[InputClaim, ...] = (
    InputClaim("stated", "AVB", ("AVBL", "AVBR"), ("LUAL", "PVR")),
    InputClaim("stated", "PLM", ("PLML", "PLMR"), ("DB1", "VB1")),
    InputClaim("observed", "AVB", ("AVBL", "AVBR"), ("DB1", "VB1")),
    InputClaim("observed", "PLM", ("PLML", "PLMR"), ("LUAL", "PVR")),
)
