"""Mechanistic spike-timing baselines: adex (CMA-ES), arx_spiking, spike_glm as families."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from neuroreduce.errors import ConfigError
from neuroreduce.evaluation.spikes import intrinsic_reliability, normalised_gamma, spike_trains
from neuroreduce.models.baselines.adex import fit_adex, simulate
from neuroreduce.models.registry import model_config
from neuroreduce.simulators.spike_timing import ADEX_TRUE, AdExParams, simulate_adex_ou
from neuroreduce.training.config import TrainConfig
from neuroreduce.training.inference import predict_fields
from neuroreduce.training.runs import load_run
from neuroreduce.training.trainer import train

torch.set_num_threads(1)
DT = 0.2


def _gamma_a(v_data: np.ndarray, v_model: np.ndarray, *, reps: int = 4) -> tuple[float, float]:
    """(mean Gamma_A, mean Gamma_int) over the stimuli of ``[trial, time]`` traces (+-2 ms)."""
    td = spike_trains(v_data, dt_ms=DT)
    tm = spike_trains(v_model, dt_ms=DT)
    dur = (v_data.shape[1] - 1) * DT
    ga, gi = [], []
    for s in range(v_data.shape[0] // reps):
        sl = slice(reps * s, reps * (s + 1))
        ga.append(normalised_gamma(td[sl], tm[sl], window_ms=2.0, duration_ms=dur))
        gi.append(intrinsic_reliability(td[sl], window_ms=2.0, duration_ms=dur))
    return float(np.nanmean(ga)), float(np.nanmean(gi))


def _physical_run(params: dict, current: np.ndarray) -> np.ndarray:
    """AdEx voltage (mV) of reduced ``params`` (times in ms) at 0.05 ms steps."""
    p = dict(params)
    p["tau_m"] /= DT
    p["tau_w"] /= DT
    return simulate(current, p, 4, 20.0)[0]


@pytest.fixture(scope="module")
def small():
    ds = simulate_adex_ou(2, seed=0, duration_ms=400.0)
    return dataclasses.replace(ds, split=np.array([0, 0, 1, 2] * 2, np.int8))


@pytest.mark.parametrize("model,hidden,options", [
    ("arx_spiking", 20, ()),
    ("adex", 1, (("iterations", 2), ("forced_iterations", 2), ("popsize", 6))),
    ("spike_glm", 20, (("bases", 4),)),
    ("mat", 1, (("iterations", 3), ("popsize", 6))),
])
def test_family_trains_saves_loads_predicts(small, tmp_path, model, hidden, options):
    res = train(small, TrainConfig(model=model, hidden=hidden, epochs=1, seeds=(0,),
                                   model_options=options), tmp_path, progress=False)
    run = load_run(tmp_path)
    a, b = predict_fields(res, small), predict_fields(run, small)
    assert set(a) == {"outputs", "spikes"}
    assert a["outputs"].shape == (1, 8, 2001, 1)
    for k in a:
        np.testing.assert_allclose(a[k], b[k])
    p = a["spikes"]
    assert p.min() >= 0 and p.max() <= 1
    v = a["outputs"][0, ..., 0]
    crossing = np.zeros(v.shape, bool)
    crossing[:, 1:] = (v[:, :-1] < 0) & (v[:, 1:] >= 0)
    if model == "spike_glm":  # a spike probability; spikes drawn from it (fixed realisation)
        assert crossing.any() and 0 < p.mean() < 0.1
    else:  # spikes drawn in the voltage (0 mV crossings) are the samples the head marks
        assert np.array_equal(crossing, p[0, ..., 0] > 0.5)


def test_arx_spiking_fits_spikes(small, tmp_path):
    """Its threshold is chosen so that the training traces fire (Gamma well above 0)."""
    res = train(small, TrainConfig(model="arx_spiking", epochs=1, seeds=(0,)), None,
                progress=False)
    v = predict_fields(res, small)["outputs"][0, ..., 0]
    ga, _ = _gamma_a(small.outputs[..., 0], v)
    print(f"arx_spiking Gamma_A (train+test, 400 ms): {ga:.3f}")
    assert ga > 0.15
    silent = np.full_like(v, -60.0)  # the wrong control: a model that never fires scores 0
    silent[:, ::500] = 20.0  # ... or one firing regularly, unrelated to the stimulus
    assert abs(_gamma_a(small.outputs[..., 0], silent)[0]) < 0.15


def test_mat_fits_spikes(small):
    """MAT's threshold fit reaches a clearly positive Gamma; on a current unrelated to the
    voltage (the wrong control, trials shifted) it does not."""
    from neuroreduce.models.baselines.mat import MATConfig, fit_mat

    cfg = MATConfig(iterations=10, popsize=8)
    cur, vol = small.inputs[..., 0], small.outputs[..., 0]
    good = fit_mat(cur, vol, None, cfg)["train_gamma"]
    bad = fit_mat(np.roll(cur, 4, axis=0)[:, ::-1], vol, None, cfg)["train_gamma"]
    print(f"MAT train Gamma {good:.3f}, unrelated current {bad:.3f}")
    assert good > 0.3 and bad < good - 0.15


def test_spike_glm_history_is_refractory(small):
    """The fitted history filter suppresses firing right after a spike (refractoriness)."""
    from neuroreduce.models.baselines.spike_glm import SpikeGLMConfig, fit_spike_glm

    cfg = SpikeGLMConfig(hidden=20, bases=4)
    spk = small.field("spikes").values[..., 0] > 0.5
    values = fit_spike_glm(small.inputs[..., 0], spk, cfg)
    assert values["hist"][:3].sum() < -2.0  # the 1-5 ms traces: strongly negative
    shuffled = np.random.default_rng(0).permuted(spk, axis=1)  # wrong control: no refractoriness
    assert fit_spike_glm(small.inputs[..., 0], shuffled, cfg)["hist"][:3].sum() > -2.0


@pytest.mark.parametrize("model,option", [
    ("adex", {"popsize": 2}), ("adex", {"step_ms": 0.0}), ("adex", {"spike_weight": -1.0}),
    ("adex", {"forced_iterations": -1}), ("arx_spiking", {"order": 0}),
    ("arx_spiking", {"history_ms": (1.0, -2.0)}), ("arx_spiking", {"alpha_ridge": float("nan")}),
    ("spike_glm", {"bases": 30}), ("spike_glm", {"alpha": 0.0}),
    ("mat", {"tau_ms": (10.0,)}), ("mat", {"refractory_ms": 0.0}),
])
def test_bad_options(model, option):
    with pytest.raises(ConfigError) as err:
        model_config(model, 20, option)
    assert "\n" not in str(err.value)


def test_adex_refuses_other_tasks():
    from neuroreduce.models.baselines import adex
    from neuroreduce.training.task import Head, InputBlock, TaskLayout

    layout = TaskLayout((InputBlock("inputs", "continuous", ("a", "b"), 0),),
                        (Head("outputs", "continuous", ("v",), 1, 0),))
    with pytest.raises(ConfigError, match="one input channel"):
        adex.check(adex.AdExConfig(), layout)


def test_reduced_parameters_roundtrip():
    p = AdExParams.from_reduced(ADEX_TRUE.reduced())
    for f in dataclasses.fields(p):
        assert getattr(p, f.name) == pytest.approx(getattr(ADEX_TRUE, f.name))


@pytest.mark.slow
def test_adex_self_fit():
    """An adex_ou set (6 stimuli x 4 repetitions x 2 s) is fitted back by the AdEx baseline.

    Fit on the first 1.4 s of every other trace (12 traces), scored on the last 0.6 s of all
    24 (held-out time). Control: the true model with its threshold 3 mV too high scores
    clearly lower (so the Gamma_A check can fail).
    """
    ds = simulate_adex_ou(6, seed=0)
    cur = ds.inputs[..., 0].astype(np.float64)
    vol = ds.outputs[..., 0].astype(np.float64)
    spk = ds.field("spikes").values[..., 0] > 0.5
    n_train = int(round(1400 / DT)) + 1
    idx = np.arange(0, 24, 2)
    result = fit_adex(cur[idx, :n_train], vol[idx, :n_train], spk[idx, :n_train], dt=DT,
                      sample_ms=DT, seed=0)
    fitted = AdExParams.from_reduced(result.params)
    test = slice(n_train - 1, None)

    def score(params: dict) -> float:
        return _gamma_a(vol[:, test], _physical_run(params, cur)[:, test])[0]

    g_fit, g_int = score(result.params), _gamma_a(vol[:, test], vol[:, test])[1]
    g_true = score(ADEX_TRUE.reduced())
    wrong = dict(ADEX_TRUE.reduced(), VT=ADEX_TRUE.VT_mV + 3.0)
    g_wrong = score(wrong)
    print(f"\nfitted {fitted}\ntrue   {ADEX_TRUE}\nx0 = {result.params['x0']:.2f} pA; "
          f"loss {result.loss:.3f} after {result.evaluations} evaluations")
    print(f"held-out Gamma_A: fit {g_fit:.3f}, true {g_true:.3f}, VT+3 mV {g_wrong:.3f}; "
          f"Gamma_int {g_int:.3f}")
    assert g_true > 0.95
    assert g_fit > G_FIT_MIN
    assert g_wrong < g_fit - 0.1
    assert fitted.gL_nS == pytest.approx(ADEX_TRUE.gL_nS, rel=0.25)
    assert fitted.DT_mV == pytest.approx(ADEX_TRUE.DT_mV, rel=0.5)


#: Tolerance of the self-fit (set from the measured value; see the report).
G_FIT_MIN = 0.85  # measured 0.975 (true model 1.060, VT + 3 mV 0.239), seed 0
