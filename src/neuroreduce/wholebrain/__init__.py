"""Whole-brain imaging with behaviour (C. elegans): identities, alignment by neuron name and the
windowed layout models train on.

Recordings come from the importers of :mod:`neuroreduce.datasets.wholebrain_import`
(``flavell2023``, ``kato2015``, ``nwb_ophys``, ``wholebrain_npz``); :func:`windowed` cuts them
into the paper's windows of 8 frames (Wang et al.); :func:`identity_check` tests named traces
against behaviour.
"""

from neuroreduce.wholebrain.identities import identity_check, select_neurons, shared_neurons
from neuroreduce.wholebrain.windows import windowed

__all__ = ["identity_check", "select_neurons", "shared_neurons", "windowed"]
