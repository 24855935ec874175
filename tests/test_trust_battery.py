"""The held-out battery of stimulus families (issue 14, part 1)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from neuroreduce.errors import ConfigError
from neuroreduce.experiments.dataset_spec import DatasetSpec
from neuroreduce.scenarios import get_scenario
from neuroreduce.stimuli import (
    diverse_families,
    diverse_set,
    generate_stimuli,
    held_out_families,
    list_families,
    ood_families,
)
from neuroreduce.trust.battery import OVER_RANGE_FACTOR, battery_families

ROOT = Path(__file__).resolve().parents[1]
AMP = (0.0, 0.1)
#: Hashes taken before the battery existed (commit 6fe02b2): the Barbulescu study's cached data
#: depend on these stimuli, so they must never change.
GOLDEN_FCM_40 = "b014dfd0520580fe812b7b7fa7f74185834075797188476cf6543506b8591473"
GOLDEN_OOD_8 = "686c37870d2694d829eae3ad089463dd6f7c3cc4f2a4e8dba190782fb4a91c44"
GOLDEN_TOY_SPEC = "056ae187d1df903c3453c0747acfd6013baa4c46c85786d0d086c18606e73487"


def _hash(stim) -> str:
    return hashlib.sha256(stim.currents.tobytes() + json.dumps(stim.params).encode()).hexdigest()


def _draw(families, n=18, seed=0, n_inputs=4):
    return generate_stimuli(n_inputs=n_inputs, n_time=1001, dt_ms=0.5, n_trials=n,
                            amplitude_range_na=AMP, families=families, seed=seed)


def _corr01(currents: np.ndarray) -> list[float]:
    """Correlation of inputs 0 and 1 after 300 ms (past every onset) per trial."""
    out = []
    for c in currents[:, 600:]:
        if c[:, 0].std() > 0 and c[:, 1].std() > 0:
            out.append(float(np.corrcoef(c[:, 0], c[:, 1])[0, 1]))
    return out


def test_battery_families_are_registered_held_out_and_not_training_families() -> None:
    names = battery_families()
    assert len(names) == 9 and held_out_families() == names
    assert set(names) <= set(list_families(held_out=True))
    assert not set(names) & set(list_families())  # default listing: the families before
    assert not set(names) & set(diverse_families()) and not set(names) & set(ood_families())
    assert set(ood_families()) == {"sawtooth", "square", "alpha_bursts", "smooth_steps"}


def test_existing_family_outputs_unchanged_golden() -> None:
    fcm = diverse_set(get_scenario("fcm"), dt_ms=0.5, n_trials=40, seed=0)
    assert _hash(fcm) == GOLDEN_FCM_40
    assert _hash(_draw(ood_families(), n=8, seed=3)) == GOLDEN_OOD_8
    assert DatasetSpec.from_dict("t", {"scenario": "toy", "stimuli": 12}).spec_hash() == \
        GOLDEN_TOY_SPEC
    # control: the check can fail (another seed gives other stimuli)
    assert _hash(diverse_set(get_scenario("fcm"), dt_ms=0.5, n_trials=40, seed=1)) != GOLDEN_FCM_40


def test_battery_waveforms_are_valid_and_reproducible() -> None:
    a = _draw(battery_families())
    b = _draw(battery_families())
    assert np.array_equal(a.currents, b.currents) and a.params == b.params
    assert np.isfinite(a.currents).all() and (a.currents >= 0).all()
    assert (a.currents[:, 0] == 0).all()  # at rest at t = 0
    for text in a.params:
        assert len(json.loads(text)["channels"]) == 4
    # a trial does not depend on how many are drawn
    one = generate_stimuli(n_inputs=4, n_time=1001, dt_ms=0.5, n_trials=1, amplitude_range_na=AMP,
                           families=[battery_families()[5]], seed=0, first_trial=5)
    assert np.array_equal(one.currents[0], a.currents[5])


def test_cross_input_correlations_differ_from_training_families() -> None:
    in_phase = _corr01(_draw(["bat_in_phase"], n=8).currents)
    anti = _corr01(_draw(["bat_anti_phase"], n=8).currents)
    train = _corr01(_draw(diverse_families(), n=28, seed=1).currents)
    assert min(in_phase) > 0.99
    assert max(anti) < -0.99
    # control: the independent training channels are nowhere near +-1 on average
    assert abs(np.mean(train)) < 0.3 and np.mean(np.abs(train)) < 0.6
    silent = _draw(["bat_one_silent"], n=8).currents
    assert all(int((np.abs(c).max(axis=0) == 0).sum()) == 1 for c in silent)
    assert not any((np.abs(c).max(axis=0) == 0).any() for c in _draw(diverse_families()).currents)


def test_amplitude_timing_and_band_probes() -> None:
    over = _draw(["bat_over_range"], n=6).currents
    peaks = over.max(axis=1)  # [trial, input]
    assert peaks.min() >= AMP[1] - 1e-12 and peaks.max() <= OVER_RANGE_FACTOR * AMP[1] + 1e-12
    assert peaks.max() > 1.2 * AMP[1]
    assert _draw(diverse_families(), n=21).currents.max() <= AMP[1] + 1e-12  # control
    late = _draw(["bat_late_onset"], n=6).currents
    assert (late[:, : int(0.7 * 1000)] == 0).all() and (late[:, 900:].max(axis=1) > 0).any()
    sparse = _draw(["bat_sparse_events"], n=6).currents
    assert (sparse > 0).mean() < 0.05  # mostly silent
    broad = _draw(["bat_broadband"], n=4).currents[:, 200:, 0]
    slow = _draw(["bat_slow_drift"], n=4).currents[:, 200:, 0]
    # broadband noise changes much faster than a slow drift (mean |step| relative to range)
    assert np.abs(np.diff(broad, axis=1)).mean() > 20 * np.abs(np.diff(slow, axis=1)).mean()


def test_battery_refused_in_training_sets() -> None:
    base = {"scenario": "toy", "stimuli": 6, "dt_out_ms": 1.0}
    with pytest.raises(ConfigError, match="held-out battery family") as info:
        DatasetSpec.from_dict("x", {**base, "families": ["step", "bat_in_phase"]})
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="held-out"):
        DatasetSpec.from_dict("x", {"scenario": "toy", "mix": [
            {"name": "a", "inputs": ["in0"], "stimuli": 3, "families": ["bat_broadband"]}]})
    test = DatasetSpec.from_dict("x", {**base, "families": ["bat_in_phase"], "role": "test"})
    assert test.families == ("bat_in_phase",)
    allowed = DatasetSpec.from_dict("x", {**base, "families": ["bat_in_phase"],
                                          "allow_held_out": True})
    assert allowed.to_dict()["allow_held_out"] is True
    with pytest.raises(ConfigError, match="allow_held_out"):
        DatasetSpec.from_dict("x", {**base, "allow_held_out": "yes"})
    # control: training families are accepted
    assert DatasetSpec.from_dict("x", {**base, "families": ["step"]}).families == ("step",)


def test_simulate_families_puts_battery_in_test_split(tmp_path: Path) -> None:
    from neuroreduce.pipeline import simulate

    ds = simulate("toy", n_stimuli=4, dt_out_ms=1.0, families=("bat_in_phase", "bat_over_range"),
                  progress=False)
    assert set(ds.families) == {"bat_in_phase", "bat_over_range"}
    assert (ds.split == 2).all()
    train = simulate("toy", n_stimuli=6, dt_out_ms=1.0, families=("step", "ramp"), progress=False)
    assert (train.split == 0).any()  # control: training families keep a train split


def test_battery_experiment_declares_every_family_as_test() -> None:
    from neuroreduce.experiments.spec import load_experiment

    spec = load_experiment(ROOT / "experiments" / "trust" / "battery.toml")
    assert set(spec.extra) == set(battery_families())
    for name in spec.extra:
        assert spec.datasets[name].role == "test"
        assert spec.datasets[name].families == (name,)
    assert spec.datasets["fcm"].role == "train" and spec.datasets["fcm"].families is None


TOY_DATASIZE = """
[experiment]
name = "ds"
seeds = 2
metrics = ["rmse"]

[datasets.small]
scenario = "toy"
stimuli = 8
dt_out_ms = 2.0

[datasets.large]
scenario = "toy"
stimuli = 24
dt_out_ms = 2.0

[datasets.bat_in_phase]
scenario = "toy"
stimuli = 2
dt_out_ms = 2.0
seed = 2
families = ["bat_in_phase"]
role = "test"

[datasets.bat_over_range]
scenario = "toy"
stimuli = 2
dt_out_ms = 2.0
seed = 2
families = ["bat_over_range"]
role = "test"

[training]
epochs = 3
batch_size = 8

[[grid]]
datasets = ["small", "large"]
models = ["gru"]
hidden = [4]
learning_rate = 0.01

[evaluate]
extra = ["bat_in_phase", "bat_over_range"]

[analysis]
speed = false
"""


@pytest.mark.slow  # ~15 s: a toy experiment with its report
def test_battery_in_experiment_report_and_datasize_table(tmp_path: Path) -> None:
    import torch

    from neuroreduce.experiments.runner import run_experiment
    from neuroreduce.trust.datasize import datasize_rows, write_datasize

    src = tmp_path / "ds.toml"
    src.write_text(TOY_DATASIZE)
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        exp = run_experiment(src, tmp_path / "ds", progress=False)
    finally:
        torch.set_num_threads(threads)
    html = next((exp / "report").glob("*.html")).read_text()
    assert "bat_in_phase" in html and "bat_over_range" in html  # per-family OOD / test rows
    rows = datasize_rows(exp)
    assert [r["n_train"] for r in rows] == [4, 12]
    for r in rows:
        assert set(r["per_family"]) == {"bat_in_phase", "bat_over_range"}
        assert r["battery_rmse"] == pytest.approx(np.mean(list(r["per_family"].values())))
        assert r["ratio"] == pytest.approx(r["battery_rmse"] / r["test_rmse"])
    paths = write_datasize(exp)
    assert all(p.stat().st_size > 0 for p in paths)
    assert (exp / "analysis" / "datasize.csv").read_text().count("\n") == 3
