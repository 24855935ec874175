"""Simulated whole-brain data with known wiring (neuroreduce.simulators.wholebrain_sim)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.errors import ConfigError, DatasetError
from neuroreduce.simulators import wholebrain_sim as W
from neuroreduce.simulators.toy_tasks import get_task_generator


def test_edge_auroc_known_cases():
    rng = np.random.default_rng(0)
    a = rng.random((12, 12)) < 0.3
    np.fill_diagonal(a, False)
    w = a.astype(float) + 0.1 * rng.random(a.shape)  # every edge outweighs every non-edge
    assert W.edge_auroc(w, a) == pytest.approx(1.0)
    assert W.edge_auroc(-w, a) == pytest.approx(0.0)  # reversed
    rand = [W.edge_auroc(np.random.default_rng(s).random(a.shape), a) for s in range(20)]
    assert abs(np.mean(rand) - 0.5) < 0.05
    # the diagonal is ignored: a huge self-weight changes nothing
    w2 = w.copy()
    np.fill_diagonal(w2, -100.0)
    assert W.edge_auroc(w2, a) == pytest.approx(1.0)
    sym = W.edge_auroc(w, a | a.T, symmetric=True)
    assert sym == pytest.approx(1.0)


def test_edge_auroc_bad_input():
    with pytest.raises(ConfigError, match="same \\[N, N\\]"):
        W.edge_auroc(np.zeros((3, 3)), np.zeros((4, 4), bool))
    with pytest.raises(ConfigError, match="both edges and non-edges"):
        W.edge_auroc(np.zeros((3, 3)), np.zeros((3, 3), bool))
    with pytest.raises(ConfigError, match="finite"):
        W.edge_auroc(np.full((3, 3), np.nan), np.eye(3, dtype=bool))


def test_connectome_edges_match_known_wiring():
    names = ["AVAL", "AVAR", "AVBL", "VB2", "RMEL"]
    edges = W.connectome_edges(names)
    chem = W.adjacency_matrix(edges, kind="chemical")
    gap = W.adjacency_matrix(edges, kind="gap_junction")
    assert (gap == gap.T).all()  # gap junctions are symmetric
    assert chem[0, 1] or chem[1, 0]  # AVAL and AVAR are connected (White et al. 1986)
    assert gap[2, 3]  # AVB -> VB gap junctions drive forward crawling
    assert not np.diag(chem | gap).any()
    anym = W.adjacency_matrix(edges)
    assert (anym == (chem | gap)).all()
    sub = W.adjacency_matrix(edges, ["VB2", "AVBL"])
    assert sub.shape == (2, 2) and sub[1, 0] == gap[2, 3]
    with pytest.raises(ConfigError, match="not among the wired"):
        W.adjacency_matrix(edges, ["ZZZ"])


def test_indicator_filters_saturates_and_zscores():
    frames = 200
    v = np.full((frames, 2), -50.0)
    v[50:52, 0] = -20.0  # a brief depolarisation of neuron 0
    v[:, 1] += np.random.default_rng(1).normal(0, 1, frames)
    z = W.indicator(v, frame_s=0.6, tau_rise_s=0.15, tau_decay_s=1.0, hill=2.0, noise=0.0,
                    rng=np.random.default_rng(0))
    assert z.shape == (frames, 2) and z.dtype == np.float32
    assert np.allclose(z.mean(axis=0), 0, atol=1e-5) and np.allclose(z.std(axis=0), 1, atol=1e-4)
    peak = int(np.argmax(z[:, 0]))
    assert 50 <= peak <= 53  # the indicator rises within a frame or two of the event
    assert z[peak + 4, 0] < z[peak, 0]  # and decays after it (tau ~1 s = 1.7 frames)
    assert z[49, 0] < z[peak, 0]  # nothing before the event (causal kernel)


def test_behaviour_label_follows_command_interneurons():
    rng = np.random.default_rng(2)
    frames = 100
    pool = ["AVAL", "AVAR", "AVBL", "AVBR", "X"]
    state = (np.sin(np.arange(frames) / 5) > 0).astype(int)
    v = rng.normal(0, 0.1, (frames, 5))
    v[:, :2] += state[:, None]  # AVA up in reversal
    v[:, 2:4] -= state[:, None]  # AVB down
    lab = W.behaviour_labels(v, pool)
    assert (lab == state).mean() > 0.95
    wrong = W.behaviour_labels(v[:, [2, 3, 0, 1, 4]], pool)  # AVA and AVB swapped: control
    assert (wrong == state).mean() < 0.05


def test_config_errors_are_one_line():
    with pytest.raises(ConfigError, match="individuals must be an integer >= 2"):
        W.WholeBrainSimConfig(individuals=1)
    with pytest.raises(ConfigError, match="always must include"):
        W.WholeBrainSimConfig(always=("AVAL",))
    with pytest.raises(ConfigError, match="whole number"):
        W.WholeBrainSimConfig(frame_ms=10.0, sample_ms=3.0)
    with pytest.raises(ConfigError, match="neurons must be"):
        W.WholeBrainSimConfig(neurons="some")
    assert W.WholeBrainSimConfig().spec_hash() == W.WholeBrainSimConfig(workers=3).spec_hash()
    assert W.WholeBrainSimConfig().spec_hash() != W.WholeBrainSimConfig(seed=1).spec_hash()


def test_individual_plans_differ_and_record_the_core():
    config = W.WholeBrainSimConfig(individuals=3, frames=40)
    plans = [W.individual_plan(config, i) for i in range(3)]
    for p in plans:
        assert set(config.always) <= set(p["recorded"]) <= set(config.pool)
        assert np.asarray(p["frame_currents"]).shape == (45, 4 + len(config.sensory))
    assert plans[0]["recorded"] != plans[1]["recorded"] or plans[1]["recorded"] != \
        plans[2]["recorded"]
    assert plans[0]["tau_decay_s"] != plans[1]["tau_decay_s"]
    assert W.individual_plan(config, 1) == plans[1]  # seeded
    assert get_task_generator("wholebrain_sim").default_dt_ms == 600.0
    plain = Dataset(inputs=np.zeros((2, 5, 2), np.float32),
                    outputs=np.zeros((2, 5, 0), np.float32), dt_ms=600.0,
                    input_names=("AVAL", "AVBL"), output_names=())
    with pytest.raises(DatasetError, match="no true adjacency"):
        W.true_adjacency(plain)


@pytest.mark.slow
def test_simulated_recordings_layout_and_label():
    config = W.WholeBrainSimConfig(individuals=2, frames=60, recorded_fraction=0.5)
    ds = W.simulate_wholebrain(config)
    assert ds.inputs.shape[:2] == (2, 60) and ds.dt_ms == 600.0 and ds.input_units == "z"
    assert ds.families == ("sim-00", "sim-01")
    beh, worm = ds.field("behaviour"), ds.field("worm")
    assert beh.spec.classes == ("forward", "reversal") and beh.spec.ignore_label == -1
    assert worm.spec.role == "group" and list(worm.values) == [0, 1]
    for i, text in enumerate(ds.stimulus_params):
        meta = json.loads(text)
        assert meta["worm"] == ds.families[i] and meta["n_frames"] == 60
        assert set(ds.input_names) <= set(meta["recorded"])  # shared neurons only
    labels = np.asarray(beh.values)[..., 0]
    assert 0.1 < labels.mean() < 0.9
    ava, avb = ds.input_names.index("AVAL"), ds.input_names.index("AVBL")
    for i in range(2):
        assert np.corrcoef(ds.inputs[i, :, ava], labels[i])[0, 1] > 0.3
        assert np.corrcoef(ds.inputs[i, :, avb], labels[i])[0, 1] < -0.3
    adj = W.true_adjacency(ds)
    assert adj.shape == (len(ds.input_names),) * 2 and adj.any()


def test_adjacency_agrees_with_gnn_connectome_convention():
    """models.graph's connectome adjacency (row = receiving neuron) is ours transposed."""
    from neuroreduce.models.graph.edges import connectome_adjacency

    names = ["AIBL", "AIBR", "AVAL", "AVAR", "AVEL", "AVER", "RID", "RIML", "RIMR", "SMDVL"]
    theirs = connectome_adjacency(names, self_loops=False) > 0
    ours = W.adjacency_matrix(W.connectome_edges(names))
    assert (theirs == ours.T).all()
    assert W.edge_auroc(theirs.astype(float), ours.T) == pytest.approx(1.0)
    assert W.edge_auroc(theirs.astype(float), ours) < 0.95  # control: direction matters
