"""Declared experiment datasets: parsing, fingerprints, building/reuse, mixes, input selection."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from neuroreduce.datasets.io import load_dataset, save_dataset
from neuroreduce.errors import ConfigError, DatasetError
from neuroreduce.experiments import datasets as eds
from neuroreduce.experiments.datasets import (
    DATASET_KEYS,
    DatasetSpec,
    build_dataset,
    dataset_path,
    select_inputs,
)
from neuroreduce.scenarios import Scenario, get_scenario, list_scenarios, register_scenario

OOD = ["sawtooth", "square", "alpha_bursts", "smooth_steps"]
TOY = {"scenario": "toy", "stimuli": 12, "dt_out_ms": 1.0}
MIX = {
    "scenario": "toy",
    "dt_out_ms": 1.0,
    "mix": [
        {"name": "a", "inputs": ["in0", "in1"], "stimuli": 14},
        {"name": "b", "inputs": ["in2", "in3"], "stimuli": 14, "amplitude_na": [0.0, 0.5]},
    ],
}


def _spec(table: dict | None = None, name: str = "d", **kw) -> DatasetSpec:
    return DatasetSpec.from_dict(name, {**TOY, **(table or {}), **kw})


# --------------------------------------------------------------------------- parsing


def test_defaults_and_round_trip() -> None:
    spec = DatasetSpec.from_dict("fcm", {"scenario": "fcm"})
    assert (spec.stimuli, spec.dt_out_ms, spec.seed, spec.role) == (40, 0.5, 0, "train")
    assert spec.parameter_set is None and spec.families is None and spec.simulated
    for table in (TOY, MIX, {**TOY, "families": OOD, "role": "test", "test_for": ["x"]}):
        spec = DatasetSpec.from_dict("d", table)
        again = DatasetSpec.from_dict("d", json.loads(json.dumps(spec.to_dict())))
        assert again == spec
        assert again.spec_hash() == spec.spec_hash()


@pytest.mark.parametrize(
    "table, match",
    [
        ({**TOY, "stimulus": 3}, r"unknown key 'stimulus'; allowed keys: scenario, stimuli"),
        ({**TOY, "path": "x.h5"}, r"key 'scenario' cannot be combined with 'path'"),
        ({"stimuli": 4}, r"needs 'scenario'.*or 'path'"),
        ({**TOY, "scenario": "nope"}, r"unknown scenario 'nope'.*fcm"),
        ({**TOY, "role": "eval"}, r"role: 'eval' is not one of train, test"),
        ({**TOY, "families": ["step", "zigzag"]}, r"unknown stimulus family 'zigzag'"),
        ({**TOY, "families": []}, r"at least one stimulus family"),
        ({**TOY, "stimuli": 0}, r"stimuli must be an integer >= 1"),
        ({**TOY, "stimuli": 2}, r">= 3 trials"),
        ({**TOY, "stimuli": 2.5}, r"stimuli must be an integer"),
        ({**TOY, "seed": -1}, r"seed must be an integer >= 0"),
        ({**TOY, "dt_out_ms": 0}, r"dt_out_ms must be a positive number"),
        ({**TOY, "dt_out_ms": 0.3}, r"does not divide the 100.0 ms trials"),
        ({**TOY, "stimulus_dt_ms": 0.3}, r"whole multiple of stimulus_dt_ms"),
        ({**TOY, "amplitude_na": [0.2, 0.1]}, r"amplitude_na must be \[min, max\]"),
        ({**TOY, "ablated": "AVBL"}, r"ablated must be a list of names"),
        ({**TOY, "test_for": ["fcm"]}, r"only a role = \"test\" dataset"),
        ({**MIX, "stimuli": 4}, r"give 'stimuli' per mix group"),
        ({**MIX, "mix": []}, r"mix must be a non-empty list"),
        ({**MIX, "mix": [{"inputs": ["in0"], "stimuli": 3, "amp": 1}]}, r"unknown key 'amp'"),
        ({**MIX, "mix": [{"inputs": ["in9"], "stimuli": 3}]}, r"unknown input 'in9'.*in0"),
        ({**MIX, "mix": [{"inputs": ["in0"]}]}, r"mix\[0\] needs 'stimuli'"),
        (
            {**MIX, "mix": [{"name": "a", "inputs": ["in0"], "stimuli": 3}] * 2},
            r"group names must differ",
        ),
        ({"scenario": "fcm", "parameter_set": "Z"}, r"unknown parameter set 'Z'.*C0"),
        ({"scenario": "fcm", "reader": "nobody"}, r"unknown .*reader 'nobody'"),
        ({"scenario": "fcm", "dt_ms": 0.3}, r"whole multiple of the integration step"),
    ],
)
def test_bad_tables_raise_one_line_config_errors(table: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        DatasetSpec.from_dict("d", table)
    assert "\n" not in str(info.value)


def test_bad_name_and_keys_listed() -> None:
    with pytest.raises(ConfigError, match="must match"):
        DatasetSpec.from_dict("bad name", TOY)
    with pytest.raises(ConfigError) as info:
        DatasetSpec.from_dict("d", {**TOY, "colour": 1})
    for key in DATASET_KEYS:
        assert key in str(info.value)


def test_relative_path_is_resolved_against_base_dir(tmp_path: Path) -> None:
    spec = DatasetSpec.from_dict("p", {"path": "data/x.h5", "role": "test"}, base_dir=tmp_path)
    assert spec.path == str(tmp_path / "data" / "x.h5") and not spec.simulated
    assert dataset_path(spec, "elsewhere") == tmp_path / "data" / "x.h5"


def test_data_dir_with_dotdot_needs_no_missing_folder(tmp_path: Path) -> None:
    spec = _spec()
    data_dir = tmp_path / "exp1" / ".." / "data"  # exp1 does not exist (yet)
    assert dataset_path(spec, data_dir) == tmp_path / "data" / spec.file_name()
    path = build_dataset(spec, data_dir=data_dir, progress=False)
    assert path.is_file() and dataset_path(spec, data_dir).is_file()
    assert not (tmp_path / "exp1").exists()


# --------------------------------------------------------------------------- spec hash


def test_spec_hash_is_stable_and_sensitive_to_data_changes() -> None:
    base = _spec()
    assert base.spec_hash() == _spec().spec_hash()
    assert len(base.spec_hash()) == 64
    assert base.file_name() == f"d-{base.spec_hash()[:12]}.h5"
    changed = [
        _spec(seed=1),
        _spec(stimuli=13),
        _spec(dt_out_ms=0.5),
        _spec(stimulus_dt_ms=0.5),
        _spec(families=["step"]),
        _spec(amplitude_na=[0.0, 0.5]),
        _spec(role="test"),
        DatasetSpec.from_dict("d", MIX),
    ]
    hashes = {s.spec_hash() for s in changed}
    assert len(hashes) == len(changed) and base.spec_hash() not in hashes
    # the name and the test_for link do not change the data
    assert _spec(name="other").spec_hash() == base.spec_hash()
    test = _spec(role="test")
    assert _spec(role="test", test_for=["fcm"]).spec_hash() == test.spec_hash()


def test_spec_hash_covers_the_c302_build() -> None:
    fcm = DatasetSpec.from_dict("f", {"scenario": "fcm"})
    hashes = {
        fcm.spec_hash(),
        DatasetSpec.from_dict("f", {"scenario": "fcm", "parameter_set": "C"}).spec_hash(),
        DatasetSpec.from_dict("f", {"scenario": "fcm", "dt_ms": 0.025}).spec_hash(),
        DatasetSpec.from_dict("f", {"scenario": "fcm", "reader": "varshney"}).spec_hash(),
        DatasetSpec.from_dict("f", {"scenario": "fcm16"}).spec_hash(),  # other outputs
    }
    assert len(hashes) == 5
    # C0 is the simulator default: naming it changes the declaration, hence the hash
    explicit = DatasetSpec.from_dict("f", {"scenario": "fcm", "parameter_set": "C0"})
    assert explicit.spec_hash() != fcm.spec_hash()


def test_spec_hash_changes_with_tool_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    from neuroreduce.simulators import c302_build

    fcm = DatasetSpec.from_dict("f", {"scenario": "fcm"})
    before = fcm.spec_hash()
    monkeypatch.setattr(
        c302_build, "tool_versions", lambda: {"c302": "9.9", "neuron": "1.0", "cect": "0"}
    )
    assert fcm.spec_hash() != before


# --------------------------------------------------------------------------- building


def test_build_writes_named_file_and_reuses_it(tmp_path: Path, monkeypatch) -> None:
    spec = _spec()
    path = build_dataset(spec, data_dir=tmp_path, progress=False)
    assert path == tmp_path / spec.file_name() == dataset_path(spec, tmp_path)
    ds = load_dataset(path)
    assert ds.inputs.shape == (12, 101, 4) and ds.outputs.shape == (12, 101, 4)
    assert ds.provenance["dataset_spec_hash"] == spec.spec_hash()
    assert ds.provenance["dataset_name"] == "d" and ds.provenance["role"] == "train"
    assert sorted(np.bincount(ds.split).tolist()) == [3, 3, 6]
    assert set(ds.families) <= {"step", "multi_step", "ramp", "pulse_train", "sine", "chirp",
                                "noise"}

    def fail(*_a, **_k):
        raise AssertionError("simulated again")

    monkeypatch.setattr(eds, "simulate_dataset", fail)
    mtime = path.stat().st_mtime_ns
    assert build_dataset(spec, data_dir=tmp_path, progress=False) == path
    assert path.stat().st_mtime_ns == mtime


def test_a_corrupt_or_foreign_cached_file_is_resimulated(tmp_path: Path) -> None:
    spec = _spec()
    path = tmp_path / spec.file_name()
    path.write_bytes(b"not hdf5")
    assert load_dataset(build_dataset(spec, data_dir=tmp_path, progress=False)).n_trials == 12
    other = load_dataset(build_dataset(_spec(seed=3), data_dir=tmp_path, progress=False))
    save_dataset(other, path)  # loads fine but records another spec hash
    rebuilt = load_dataset(build_dataset(spec, data_dir=tmp_path, progress=False))
    assert rebuilt.provenance["dataset_spec_hash"] == spec.spec_hash()


def test_concurrent_builds_simulate_once(tmp_path: Path, monkeypatch) -> None:
    calls = []
    real = eds.simulate_dataset

    def slow(spec, **kw):
        calls.append(spec.name)
        time.sleep(0.3)
        return real(spec, **kw)

    monkeypatch.setattr(eds, "simulate_dataset", slow)
    spec = _spec()
    paths: list[Path] = []
    threads = [
        threading.Thread(
            target=lambda: paths.append(build_dataset(spec, data_dir=tmp_path, progress=False))
        )
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["d"] and len(paths) == 2 and paths[0] == paths[1]


def test_families_and_test_role(tmp_path: Path) -> None:
    spec = _spec(stimuli=8, families=OOD, role="test", seed=1)
    ds = load_dataset(build_dataset(spec, data_dir=tmp_path, progress=False))
    assert ds.families == tuple(OOD * 2)
    assert (ds.split == 2).all()
    assert ds.provenance["split_fractions"] == [0.0, 0.0, 1.0]
    assert ds.inputs.max() <= get_scenario("toy").amplitude_range_na[1]


def test_mix_drives_only_each_groups_inputs_and_stratifies_by_group(tmp_path: Path) -> None:
    spec = DatasetSpec.from_dict("m", MIX)
    assert spec.stimuli == 28
    ds = load_dataset(build_dataset(spec, data_dir=tmp_path, progress=False))
    a, b = slice(0, 14), slice(14, 28)
    assert np.all(ds.inputs[a][:, :, 2:] == 0) and np.all(ds.inputs[b][:, :, :2] == 0)
    assert (ds.inputs[a][:, :, :2].max(axis=1) > 0).all()
    assert ds.inputs[b].max() <= 0.5 + 1e-7
    assert ds.provenance["mix_groups"] == [
        {"name": "a", "inputs": ["in0", "in1"], "trials": [0, 14]},
        {"name": "b", "inputs": ["in2", "in3"], "trials": [14, 28]},
    ]
    groups = [json.loads(p)["group"] for p in ds.stimulus_params]
    assert groups == ["a"] * 14 + ["b"] * 14
    for part in (a, b):  # 14 trials of a group: 7 / 3-4 / 3-4 over the splits
        counts = np.bincount(ds.split[part], minlength=3)
        assert counts[0] == 7 and sorted(counts[1:].tolist()) == [3, 4]
    # trials differ between groups: the second group continues the trial sequence
    trials = [json.loads(p)["trial"] for p in ds.stimulus_params]
    assert trials == list(range(28))


def test_stimulus_grid_gives_the_same_stimuli_at_two_sampling_steps(tmp_path: Path) -> None:
    fine = eds.simulate_dataset(_spec(dt_out_ms=0.5, stimulus_dt_ms=0.5), progress=False)
    coarse = eds.simulate_dataset(_spec(dt_out_ms=1.0, stimulus_dt_ms=0.5), progress=False)
    assert fine.n_time == 201 and coarse.n_time == 101
    np.testing.assert_array_equal(coarse.inputs, fine.inputs[:, ::2])
    assert coarse.families == fine.families and (coarse.split == fine.split).all()


def test_path_dataset_is_used_as_is(tmp_path: Path) -> None:
    src = build_dataset(_spec(), data_dir=tmp_path / "a", progress=False)
    spec = DatasetSpec.from_dict("p", {"path": str(src)})
    assert build_dataset(spec, data_dir=tmp_path / "b", progress=False) == src
    assert spec.spec_hash() != DatasetSpec.from_dict("p", {"path": str(src),
                                                          "role": "test"}).spec_hash()
    unsplit = dataclasses.replace(load_dataset(src), split=None)
    save_dataset(unsplit, tmp_path / "unsplit.h5")
    with pytest.raises(DatasetError, match="no train/valid/test split"):
        build_dataset(DatasetSpec.from_dict("p", {"path": str(tmp_path / "unsplit.h5")}),
                      data_dir=tmp_path, progress=False)
    test_role = DatasetSpec.from_dict("p", {"path": str(tmp_path / "unsplit.h5"),
                                            "role": "test"})
    assert build_dataset(test_role, data_dir=tmp_path, progress=False).is_file()
    with pytest.raises(DatasetError, match="not found"):
        DatasetSpec.from_dict("p", {"path": str(tmp_path / "missing.h5")}).spec_hash()


# --------------------------------------------------------------------------- select_inputs


def test_select_inputs_keeps_channels_outputs_and_split() -> None:
    ds = eds.simulate_dataset(_spec(), progress=False)
    sub = select_inputs(ds, ["in3", "in1"])
    assert sub.input_names == ("in1", "in3")  # dataset order
    np.testing.assert_array_equal(sub.inputs, ds.inputs[:, :, [1, 3]])
    np.testing.assert_array_equal(sub.outputs, ds.outputs)
    assert (sub.split == ds.split).all() and sub.output_names == ds.output_names
    assert sub.provenance["selected_inputs"] == ["in1", "in3"]
    assert sub.provenance["all_inputs"] == ["in0", "in1", "in2", "in3"]
    assert select_inputs(ds, "all") is ds
    with pytest.raises(ConfigError, match=r"unknown input 'AVBL'.*in0, in1, in2, in3"):
        select_inputs(ds, ["AVBL"])
    with pytest.raises(ConfigError, match="twice"):
        select_inputs(ds, ["in0", "in0"])
    with pytest.raises(ConfigError, match="at least one"):
        select_inputs(ds, [])


# --------------------------------------------------------------------------- real network


@pytest.mark.slow
def test_tiny_real_fcm_nictation_mix(tmp_path: Path) -> None:
    """2 trials x 50 ms of the 10-input, 28-output network (one per behaviour)."""
    pytest.importorskip("neuron")
    full = get_scenario("fcm_nictation")
    name = "fcm_nictation_50ms_test"
    if name not in list_scenarios():
        register_scenario(dataclasses.replace(full, name=name, duration_ms=50.0))
    spec = DatasetSpec.from_dict(
        "tiny",
        {
            "scenario": name,
            "dt_out_ms": 0.5,
            "role": "test",
            "mix": [
                {"name": "fcm", "inputs": list(full.inputs[:4]), "stimuli": 1},
                {"name": "nictation", "inputs": list(full.inputs[4:]), "stimuli": 1,
                 "amplitude_na": [0.02, 0.05]},
            ],
        },
    )
    ds = load_dataset(build_dataset(spec, data_dir=tmp_path, progress=False))
    assert ds.inputs.shape == (2, 101, 10) and ds.outputs.shape == (2, 101, 28)
    assert ds.input_names == full.inputs and ds.output_names == full.outputs
    assert np.all(ds.inputs[0, :, 4:] == 0) and np.all(ds.inputs[1, :, :4] == 0)
    assert (ds.inputs[0, :, :4].max(axis=0) > 0).all()
    assert (ds.inputs[1, :, 4:].max(axis=0) > 0).all()
    assert np.isfinite(ds.outputs).all()
    assert ds.provenance["simulator.parameter_set"] == "C0"
    # the nictation trial moves the head motor neurons (URADR saturates from ~5 pA of IL2)
    uradr = ds.output_names.index("URADR")
    assert np.ptp(ds.outputs[1, :, uradr]) > 1.0


def test_scenarios_for_experiment_5_are_registered() -> None:
    fcm16, nict, both = (get_scenario(n) for n in ("fcm16", "nictation", "fcm_nictation"))
    assert (len(fcm16.inputs), len(fcm16.outputs)) == (4, 16)
    assert (len(nict.inputs), len(nict.outputs)) == (6, 12)
    assert both.inputs == fcm16.inputs + nict.inputs and len(both.inputs) == 10
    assert both.outputs == fcm16.outputs + nict.outputs and len(set(both.outputs)) == 28
    assert fcm16.outputs[:4] == get_scenario("fcm").outputs
    assert isinstance(both, Scenario)


def test_train_trials_keeps_the_first_training_trials_and_the_same_test_set(
        tmp_path: Path) -> None:
    table = {"scenario": "toy_spikes", "stimuli": 16, "seed": 3}
    full = load_dataset(build_dataset(DatasetSpec.from_dict("f", table), data_dir=tmp_path,
                                      progress=False))
    cut_spec = DatasetSpec.from_dict("c", {**table, "train_trials": 3})
    assert cut_spec.spec_hash() != DatasetSpec.from_dict("c", table).spec_hash()
    assert DatasetSpec.from_dict("c", cut_spec.to_dict()) == cut_spec
    cut = load_dataset(build_dataset(cut_spec, data_dir=tmp_path, progress=False))
    train = np.flatnonzero(full.split == 0)
    assert train.size > 3 and np.count_nonzero(cut.split == 0) == 3
    for part in (1, 2):  # validation and test trials unchanged
        np.testing.assert_array_equal(cut.outputs[cut.split == part],
                                      full.outputs[full.split == part])
    np.testing.assert_array_equal(cut.outputs[cut.split == 0], full.outputs[train[:3]])
    assert cut.provenance["train_trials"] == 3
    assert cut.provenance["train_trials_of"] == train.size
    # a file dataset cut the same way: a cached derived file, the source untouched
    path_spec = DatasetSpec.from_dict("p", {"path": str(dataset_path(
        DatasetSpec.from_dict("f", table), tmp_path)), "train_trials": 3})
    derived = build_dataset(path_spec, data_dir=tmp_path / "cache", progress=False)
    assert derived.parent == tmp_path / "cache"
    np.testing.assert_array_equal(load_dataset(derived).outputs, cut.outputs)
    too_many = DatasetSpec.from_dict("t", {**table, "train_trials": 99})
    with pytest.raises(ConfigError, match="only .* training trials"):
        build_dataset(too_many, data_dir=tmp_path, progress=False)
    with pytest.raises(ConfigError, match="only a role = \"train\" dataset"):
        DatasetSpec.from_dict("t", {**table, "role": "test", "train_trials": 2})


def test_runner_generator_keys_reach_the_generator(tmp_path: Path, monkeypatch) -> None:
    """l5pc's trial length, step and options are experiment-file keys, checked at load."""
    pytest.importorskip("neuron")
    from neuroreduce.simulators.toy_tasks import get_task_generator

    table = {"scenario": "l5pc", "stimuli": 3, "duration_ms": 60.0, "dt_ms": 0.1,
             "options": {"max_channels": 4, "nmda": False}}
    spec = DatasetSpec.from_dict("l", table)
    assert spec.duration_ms == 60.0 and dict(spec.generator_options)["nmda"] is False
    assert DatasetSpec.from_dict("l", spec.to_dict()) == spec
    with pytest.raises(ConfigError, match="unknown l5pc option 'nmdaa'"):
        DatasetSpec.from_dict("l", {**table, "options": {"nmdaa": False}})
    with pytest.raises(ConfigError, match="key 'duration_ms' does not apply"):
        DatasetSpec.from_dict("t", {"scenario": "toy_spikes", "duration_ms": 100.0})
    seen = {}

    def fake_make(n, **kw):
        seen.update(kw, n=n)
        return get_task_generator("toy_spikes").make(n, seed=kw["seed"], dt_ms=kw["dt_ms"])

    from neuroreduce.simulators.toy_tasks import TASK_GENERATORS

    monkeypatch.setitem(TASK_GENERATORS, "l5pc", dataclasses.replace(
        get_task_generator("l5pc"), make=fake_make,
        fingerprint=lambda **kw: json.dumps(kw, sort_keys=True)))
    build_dataset(spec, data_dir=tmp_path, backend=None, progress=False)
    assert seen["n"] == 3 and seen["duration_ms"] == 60.0 and seen["settings"].dt_ms == 0.1
    assert seen["options"] == {"max_channels": 4, "nmda": False}
    other = DatasetSpec.from_dict("l", {**table, "options": {"max_channels": 4}})
    assert other.spec_hash() != spec.spec_hash()  # options are part of the cache key
