"""Spike timing of a single neuron under injected current (seed 002, a thesis; issue 12).

The question: can an RNN surrogate (GRU, LSTM, the dendPLRNN of Brenner et al. 2022 with
sparse teacher forcing or generalised teacher forcing of Hess et al. 2023) predict the spike
times of a cortical pyramidal cell under in-vivo-like current as well as the QSNMC winners
(AdEx, ARX) and a spike-history GLM / MAT, scored by the coincidence factor Gamma_A
(Jolivet et al. 2008)? Experiment files: ``experiments/spike_timing/`` (``qsnmc2007.toml`` on
the recordings, ``simulated.toml`` on the AdEx ground truth, ``tiny.toml`` for the test).

Parts: :mod:`.scores` (the ``spike_timing`` analysis: Gamma_A ± bootstrap error per model,
per stimulus and overall, the winner criterion, window / sampling-interval sensitivity, cost
against Hodgkin-Huxley at 0.01 ms), :mod:`.figures` (rasters, voltage traces, sensitivity)
and :mod:`.conclusions` (paragraphs and report sections).
"""

from __future__ import annotations

from neuroreduce.studies.base import Study, StudyAnalysis
from neuroreduce.studies.spike_timing.conclusions import report_sections, study_conclusions
from neuroreduce.studies.spike_timing.scores import spike_timing_analysis

REFERENCE = (
    "Seed 002 (bachelor thesis): RNNs with sparse teacher forcing against the QSNMC 2007 "
    "winners. Jolivet R, Schürmann F, Berger TK, Naud R, Gerstner W, Roth A (2008) The "
    "quantitative single-neuron modeling competition. Biol Cybern 99:417-426. Brenner M et al. "
    "(2022) Tractable dendritic RNNs for reconstructing nonlinear dynamical systems. ICML. "
    "Hess F et al. (2023) Generalized teacher forcing for learning chaotic dynamics. ICML."
)

STUDY = Study(
    name="spike_timing",
    title="Spike timing: RNN surrogates vs AdEx/ARX/GLM on QSNMC 2007 and simulated AdEx data",
    reference=REFERENCE,
    tables={},
    conclusions=study_conclusions,
    analyses=(StudyAnalysis("spike_timing", spike_timing_analysis),),
    report_sections=report_sections,
)

__all__ = ["STUDY"]
