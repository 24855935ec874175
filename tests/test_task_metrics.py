"""Task metrics registry: closed-form and hand-counted answers, each with a wrong control."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from neuroreduce.errors import ConfigError
from neuroreduce.evaluation import metrics, spikes
from neuroreduce.evaluation.context import MetricContext, MetricInfo
from neuroreduce.evaluation.registry import (
    compute_metric,
    get_metric_info,
    list_metrics,
    register_metric,
)

# --- continuous --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rmse", "nrmse", "explained_variance"])
def test_unmasked_continuous_metrics_equal_the_plain_ones_bit_for_bit(name: str) -> None:
    rng = np.random.default_rng(0)
    t, p = rng.normal(size=(4, 30, 3)), rng.normal(size=(4, 30, 3))
    plain = metrics.get_metric(name)(t, p)
    for mask in (None, np.ones(t.shape, dtype=bool)):
        assert np.array_equal(compute_metric(name, t, p, MetricContext(mask=mask)), plain)
    half = np.ones(t.shape, dtype=bool)
    half[:2] = False  # control: a real mask must change the value
    assert not np.allclose(compute_metric(name, t, p, MetricContext(mask=half)), plain)


def test_masked_continuous_ignores_missing_nan_values() -> None:
    t = np.zeros((1, 4, 2))
    t[0, :, 0] = [0.0, 2.0, 4.0, np.nan]
    p = t + np.array([1.0, 3.0])
    p[0, 3, 0] = 1e6  # a wild prediction at the missing step
    mask = np.ones(t.shape, dtype=bool)
    mask[0, 3, 0] = False
    ctx = MetricContext(mask=mask)
    np.testing.assert_allclose(compute_metric("rmse", t, p, ctx), [1.0, 3.0])
    assert compute_metric("nrmse", t, p, ctx)[0] == pytest.approx(0.25)
    assert np.isnan(compute_metric("nrmse", t, p, ctx)[1])  # flat channel
    assert np.isnan(compute_metric("rmse", t, p)[0])  # control: unmasked, the NaN leaks in
    ev = metrics.masked_explained_variance(t, t + 5.0, mask=mask)
    assert ev[0] == pytest.approx(1.0)  # a constant offset explains all variance


def test_rollout_rmse_per_horizon_with_missing_starts() -> None:
    t = np.zeros((2, 5, 1))
    p = np.zeros((2, 2, 5, 1))
    p[:, 0] = 1.0  # horizon 1: error 1 everywhere
    p[:, 1] = 2.0  # horizon 2: error 2, first step has no rollout
    p[:, 1, 0] = np.nan
    out = compute_metric("rollout_rmse", t, p, MetricContext(horizons=(1, 2)))
    np.testing.assert_allclose(out, [[1.0], [2.0]])
    with pytest.raises(ConfigError, match="horizons"):
        compute_metric("rollout_rmse", t, p, MetricContext(horizons=(1, 2, 3)))


# --- binary ------------------------------------------------------------------------------------


def _binary(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = (rng.random((3, 40, 2)) < 0.3).astype(int)
    return y, y.astype(float)


def test_auc_of_perfect_inverted_and_random_predictors() -> None:
    rng = np.random.default_rng(1)
    y, perfect = _binary(rng)
    np.testing.assert_allclose(compute_metric("roc_auc", y, perfect), [1.0, 1.0])
    np.testing.assert_allclose(compute_metric("roc_auc", y, 1.0 - perfect), [0.0, 0.0])
    noise = compute_metric("roc_auc", y, rng.random(y.shape))
    assert np.all(np.abs(noise - 0.5) < 0.2)  # control: not 1
    assert np.isnan(compute_metric("roc_auc", np.zeros((1, 5, 1)), np.ones((1, 5, 1)))[0])


def _hand_roc() -> tuple[np.ndarray, np.ndarray]:
    # scores 0.9 (pos), 0.5 (pos), 0.5 (neg), 0.1 (neg): ROC (0,0) (0,.5) (.5,1) (1,1)
    y = np.array([1, 1, 0, 0]).reshape(1, 4, 1)
    s = np.array([0.9, 0.5, 0.5, 0.1]).reshape(1, 4, 1)
    return y, s


def test_tpr_at_fpr_interpolates_the_hand_built_roc() -> None:
    y, s = _hand_roc()
    ctx = MetricContext(fp_rates=(0.0, 0.25, 0.5, 0.75))
    out = compute_metric("tpr_at_fpr", y, s, ctx)
    assert out.shape == (4, 1)
    np.testing.assert_allclose(out[:, 0], [0.5, 0.75, 1.0, 1.0])
    assert out[1, 0] != 0.5  # control: a step reading (best TPR at FPR <= 0.25) gives 0.5
    assert compute_metric("roc_auc", y, s)[0] == pytest.approx(3.5 / 4)  # pairs: 3 wins, 1 tie


def test_youden_and_gmean_thresholds_by_hand() -> None:
    # sorted: .9+ .8+ .7- .4+ .3- .2- .1-  (3 pos, 4 neg); best point: thr .4, FPR 1/4, TPR 1
    s = np.array([0.9, 0.8, 0.7, 0.4, 0.3, 0.2, 0.1]).reshape(1, 7, 1)
    y = np.array([1, 1, 0, 1, 0, 0, 0]).reshape(1, 7, 1)
    assert compute_metric("youden_j", y, s)[0] == pytest.approx(0.75)
    assert compute_metric("youden_threshold", y, s)[0] == pytest.approx(0.4)
    assert compute_metric("gmean", y, s)[0] == pytest.approx(np.sqrt(0.75))
    assert compute_metric("gmean_threshold", y, s)[0] == pytest.approx(0.4)
    assert compute_metric("youden_threshold", y, s)[0] != pytest.approx(0.8)  # control


def test_binary_mask_drops_bins_and_labels_are_checked() -> None:
    y, s = _hand_roc()
    mask = np.array([True, True, False, True]).reshape(1, 4, 1)  # drop the tied negative
    assert compute_metric("roc_auc", y, s, MetricContext(mask=mask))[0] == 1.0
    with pytest.raises(ConfigError, match="only 0 and 1"):
        compute_metric("roc_auc", y * 2, s)


# --- categorical -------------------------------------------------------------------------------


def _behaviour() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    true = np.array([[0, 0, 1, 1, 2, -1], [2, 2, 1, 0, -1, 0]])
    pred = np.array([[0, 1, 1, 1, 0, 2], [2, 2, 0, 0, 1, 0]])
    mask = np.ones(true.shape, dtype=bool)
    mask[1, 5] = False  # a missing step (its prediction is right; must not count)
    return true, pred, mask


def test_confusion_matrix_accuracy_balanced_accuracy_by_hand() -> None:
    true, pred, mask = _behaviour()
    ctx = MetricContext(ignore_label=-1, mask=mask, n_classes=3)
    cm = compute_metric("confusion_matrix", true, pred, ctx)
    # scored pairs (true, pred): (0,0) (0,1) (1,1) (1,1) (2,0) (2,2) (2,2) (1,0) (0,0)
    np.testing.assert_array_equal(cm, [[2, 1, 0], [1, 2, 0], [1, 0, 2]])
    assert compute_metric("accuracy", true, pred, ctx) == pytest.approx(6 / 9)
    assert compute_metric("balanced_accuracy", true, pred, ctx) == pytest.approx(2 / 3)
    keep = mask & (true != -1)
    ref = balanced_accuracy_score(true[keep], pred[keep])
    assert compute_metric("balanced_accuracy", true, pred, ctx) == pytest.approx(ref)
    probs = np.eye(3)[pred]  # one-hot probabilities give the same answer
    assert np.array_equal(compute_metric("confusion_matrix", true, probs, ctx), cm)
    with_nan = true.astype(float)
    with_nan[~mask] = np.nan  # a missing label may be NaN
    assert np.array_equal(compute_metric("confusion_matrix", with_nan, pred, ctx), cm)
    unmasked = MetricContext(ignore_label=-1, n_classes=3)  # control: the masked step counts
    assert compute_metric("accuracy", true, pred, unmasked) == pytest.approx(7 / 10)
    with pytest.raises(ConfigError, match="label -1 outside"):
        compute_metric("accuracy", true, pred, MetricContext(n_classes=3))


# --- spike timing ------------------------------------------------------------------------------


def test_spike_times_are_upward_crossings_interpolated() -> None:
    v = np.array([-10.0, 10.0, 30.0, -5.0, 0.0, 5.0, -1.0])
    np.testing.assert_allclose(spikes.spike_times(v, dt_ms=0.5, threshold=0.0), [0.25, 2.0])


def test_gamma_identical_shifted_and_hand_counted() -> None:
    d = np.array([10.0, 50.0, 90.0])
    g = spikes.coincidence_factor(d, d, window_ms=2.0, duration_ms=100.0)
    assert g == pytest.approx(1.0)
    assert spikes.coincidence_factor(d, d + 5.0, window_ms=2.0, duration_ms=100.0) < 0  # control
    # 10<->11 and 90<->89.5 coincide, 50 does not; nu = 3/100 per ms; 2 nu Delta = 0.12
    m = np.array([11.0, 70.0, 89.5])
    expected = (2 - 0.12 * 3) / (0.5 * 0.88 * 6)
    assert spikes.coincidence_factor(d, m, window_ms=2.0, duration_ms=100.0) == pytest.approx(
        expected
    )
    # each data spike coincides at most once: two model spikes near one data spike count once
    assert spikes.n_coincidences([10.0], [9.0, 11.0], window_ms=2.0) == 1


def _poisson(rng: np.random.Generator, rate_per_ms: float, duration_ms: float) -> np.ndarray:
    return np.sort(rng.uniform(0, duration_ms, rng.poisson(rate_per_ms * duration_ms)))


def test_gamma_of_independent_poisson_trains_is_near_zero() -> None:
    rng = np.random.default_rng(2)
    dur = 10_000.0  # 10 s at 20 Hz: ~200 spikes per train
    pairs = [(_poisson(rng, 0.02, dur), _poisson(rng, 0.02, dur)) for _ in range(400)]
    g = [spikes.coincidence_factor(a, b, window_ms=2.0, duration_ms=dur) for a, b in pairs]
    assert abs(np.mean(g)) < 0.01  # standard error of the mean ~0.001, bias ~-0.003
    jitter = [  # control: a jittered copy is far from chance
        spikes.coincidence_factor(a, a + rng.uniform(-1, 1, a.size), window_ms=2.0, duration_ms=dur)
        for a, _ in pairs[:20]
    ]
    assert np.mean(jitter) > 0.9


def test_gamma_a_of_a_repetition_against_the_others_is_near_one() -> None:
    rng = np.random.default_rng(3)
    base = _poisson(rng, 0.02, 5000.0)
    reps = [np.sort(base + rng.normal(0, 1.5, base.size)) for _ in range(6)]
    others = reps[1:]
    g_int = spikes.intrinsic_reliability(others, window_ms=2.0, duration_ms=5000.0)
    assert 0.5 < g_int < 0.95  # jittered repetitions are reliable but not identical
    g_a = spikes.normalised_gamma(others, [reps[0]] * 5, window_ms=2.0, duration_ms=5000.0)
    assert g_a == pytest.approx(1.0, abs=0.1)
    chance = spikes.normalised_gamma(  # control: an unrelated train scores ~0
        others, [_poisson(rng, 0.02, 5000.0)] * 5, window_ms=2.0, duration_ms=5000.0
    )
    assert abs(chance) < 0.15


def _traces(trains_ms: list[list[float]], n: int = 1001, dt: float = 0.5) -> np.ndarray:
    v = np.full((len(trains_ms), n), -70.0)
    for k, train in enumerate(trains_ms):
        v[k, np.round(np.asarray(train) / dt).astype(int)] = 20.0
    return v


def test_voltage_trace_metrics_through_the_registry() -> None:
    true = _traces([[100.0, 200.0, 300.0], [100.0, 200.0, 300.0], [150.0]])
    ctx = MetricContext(dt_ms=0.5, repetitions=np.array([0, 0, 1]))
    assert compute_metric("gamma", true, true, ctx) == pytest.approx(1.0)
    assert compute_metric("gamma_intrinsic", true, true, ctx) == pytest.approx(1.0)
    assert compute_metric("gamma_normalised", true, true, ctx) == pytest.approx(1.0)
    shifted = _traces([[110.0, 210.0, 310.0], [110.0, 210.0, 310.0], [160.0]])
    assert compute_metric("gamma", true, shifted, ctx) < 0.5  # control
    fewer = _traces([[100.0], [100.0, 200.0], []])
    assert compute_metric("spike_count_error", true, fewer, ctx) == pytest.approx(4 / 3)
    with pytest.raises(ConfigError, match="repetitions"):
        compute_metric("gamma_normalised", true, true, MetricContext(dt_ms=0.5))


def test_subthreshold_rmse_excludes_windows_around_spikes() -> None:
    true = _traces([[100.0, 300.0]])
    pred = true + 1.0  # 1 mV off everywhere ...
    pred[0, [200, 600]] = -70.0  # ... and the spikes missed by 90 mV
    ctx = MetricContext(dt_ms=0.5, spike_exclusion_ms=(2.0, 5.0))
    assert compute_metric("subthreshold_rmse", true, pred, ctx) == pytest.approx(1.0)
    no_window = MetricContext(dt_ms=0.5, spike_exclusion_ms=(0.0, 0.0))
    assert compute_metric("subthreshold_rmse", true, pred, no_window) > 1.0  # control


def test_bootstrap_se_is_seeded_and_near_the_analytic_value() -> None:
    x = np.random.default_rng(4).normal(size=200)
    se = spikes.bootstrap_se(x, n_resamples=10_000, seed=0)
    assert se == spikes.bootstrap_se(x, n_resamples=10_000, seed=0)
    assert se != spikes.bootstrap_se(x, n_resamples=10_000, seed=1)
    assert se == pytest.approx(x.std() / np.sqrt(x.size), rel=0.05)
    true = _traces([[100.0, 200.0], [100.0], [300.0]])
    out = compute_metric("gamma_bootstrap_se", true, true, MetricContext(dt_ms=0.5))
    assert out == 0.0  # every trial has Gamma 1: no spread


# --- registry and errors -----------------------------------------------------------------------


def test_registry_lists_kinds_and_rejects_bad_names_and_shapes() -> None:
    assert list_metrics("categorical") == ["accuracy", "balanced_accuracy", "confusion_matrix"]
    assert get_metric_info("roc_auc").direction == "max"
    assert get_metric_info("rmse").direction == "min"
    with pytest.raises(ConfigError, match="unknown metric 'mae'"):
        compute_metric("mae", np.zeros((1, 2, 1)), np.zeros((1, 2, 1)))
    with pytest.raises(ConfigError, match=r"\(1, 2, 3\) and y_pred \(1, 2, 4\)"):
        compute_metric("rmse", np.zeros((1, 2, 3)), np.zeros((1, 2, 4)))
    with pytest.raises(ConfigError, match=r"\(2, 5\) and y_pred \(2, 5, 1, 1\)"):
        compute_metric("accuracy", np.zeros((2, 5), int), np.zeros((2, 5, 1, 1)))
    with pytest.raises(ConfigError, match="mask shape"):
        compute_metric("rmse", np.zeros((1, 2, 1)), np.zeros((1, 2, 1)),
                       MetricContext(mask=np.ones((1, 3, 1), bool)))  # fmt: skip
    with pytest.raises(ConfigError, match="unknown target kind"):
        list_metrics("images")
    with pytest.raises(ConfigError, match="already registered"):
        register_metric(get_metric_info("rmse"))
    with pytest.raises(ConfigError, match="direction"):
        MetricInfo("x", "continuous", "up", True, lambda t, p, c: 0.0)
    assert metrics.METRICS.keys() == {"rmse", "nrmse", "explained_variance"}  # unchanged
