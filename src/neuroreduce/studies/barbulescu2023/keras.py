"""The paper's parameter count: Keras recurrent layers keep one bias vector per gate.

PyTorch keeps two (``bias_ih`` and ``bias_hh``), so our count
(:func:`neuroreduce.models.count_parameters`) is ``gates * hidden`` larger for the same
architecture. The study records this count per cell (``keras_parameters``) so that our sizes
can be read next to the paper's.
"""

from __future__ import annotations

from neuroreduce.models.rnn import GATES, check_cell, check_sizes
from neuroreduce.studies.base import CellShape


def keras_parameter_count(cell: str, n_inputs: int, n_outputs: int, hidden: int) -> int:
    """Parameter count the paper reports: Keras layers with one bias vector per gate.

    ``gates * hidden * (n_inputs + hidden + 1) + n_outputs * (hidden + 1)``; e.g. 4 -> 4:
    RNN-16 404, LSTM-8 452, GRU-8 348.

    Raises:
        ConfigError: on an unknown recurrent cell or a non-positive size.
    """
    check_sizes(n_inputs=n_inputs, n_outputs=n_outputs, hidden=hidden)
    gates = GATES[check_cell(cell)]
    return gates * hidden * (n_inputs + hidden + 1) + n_outputs * (hidden + 1)


def keras_parameters(shape: CellShape) -> int | None:
    """The per-cell field ``keras_parameters`` (the study's :class:`~.CellField` hook); None
    for a model that is not one recurrent layer."""
    if shape.model not in GATES:
        return None
    return keras_parameter_count(shape.model, n_inputs=shape.n_inputs,
                                 n_outputs=shape.n_outputs, hidden=shape.hidden)
