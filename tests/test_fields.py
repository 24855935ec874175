"""Typed dataset fields: one-line errors for every bad input, event trains against hand counts,
HDF5 schema 2 round trips, schema-1 files, the unchanged v1 content hash, streaming reads."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.datasets.fields import EventTrains, Field, FieldSpec
from neuroreduce.datasets.io import load_dataset, save_dataset
from neuroreduce.datasets.streaming import StreamingDataset
from neuroreduce.errors import DatasetError

N, T = 3, 5


def dense_ds(*fields: Field, **kw) -> Dataset:
    """N trials x T samples of one dense input and output, plus ``fields``."""
    base = dict(inputs=np.zeros((N, T, 1)), outputs=np.zeros((N, T, 1)), dt_ms=1.0,
                input_names=("i",), output_names=("o",))
    return Dataset(**{**base, **kw}, fields=fields)


def spec(name: str = "t", role: str = "target", kind: str = "continuous", **kw) -> FieldSpec:
    kw.setdefault("channels", () if role == "group" else ("c",))
    return FieldSpec(name, role, kind, **kw)


GROUP = Field(spec("g", "group", "categorical", classes=("w0", "w1")), np.array([0, 1, 0]))
LABEL = dict(classes=("a", "b", "c"))


def ones(c: int = 1, dtype: object = np.float32) -> np.ndarray:
    return np.ones((N, T, c), dtype)


def labels(value: int, dtype: object = np.int16) -> np.ndarray:
    return np.full((N, T, 1), value, dtype)


# Each case: (id, bad builder, good builder that differs only in the fault, expected message).
# The good builder is the control: it shows each check rejects the fault and nothing else.
CASES = [
    ("unknown role", lambda: spec(role="output"), lambda: spec(role="target"),
     r"unknown role 'output'"),
    ("kind not allowed for role", lambda: spec(kind="events"), lambda: spec(kind="binary"),
     r"role 'target' takes kind continuous or binary, not 'events'"),
    ("label kind for a target", lambda: spec(kind="categorical", **LABEL),
     lambda: spec(role="label", kind="categorical", **LABEL), r"not 'categorical'"),
    ("label out of range",
     lambda: dense_ds(Field(spec("l", "label", "categorical", **LABEL), labels(3))),
     lambda: dense_ds(Field(spec("l", "label", "categorical", **LABEL), labels(2))),
     r"field 'l' \(label, categorical\): label 3 out of range 0..2"),
    ("unknown label -1 without ignore_label",
     lambda: dense_ds(Field(spec("l", "label", "categorical", **LABEL), labels(-1))),
     lambda: dense_ds(Field(spec("l", "label", "categorical", ignore_label=-1, **LABEL),
                            labels(-1))),
     r"label -1 out of range 0..2"),
    ("ignore_label is a class", lambda: spec("l", "label", "categorical", ignore_label=1, **LABEL),
     lambda: spec("l", "label", "categorical", ignore_label=-1, **LABEL),
     r"ignore_label 1 is a class index"),
    ("float ignore_label", lambda: spec("l", "label", "categorical", ignore_label=-1.5, **LABEL),
     lambda: spec("l", "label", "categorical", ignore_label=-2, **LABEL),
     r"ignore_label must be an integer"),
    ("ignore_label beyond int16",
     lambda: spec("l", "label", "categorical", ignore_label=40000, **LABEL),
     lambda: spec("l", "label", "categorical", ignore_label=32767, **LABEL),
     r"ignore_label must be an integer in -32768..32767"),
    ("float labels",
     lambda: dense_ds(Field(spec("l", "label", "categorical", **LABEL), labels(1, np.float32))),
     lambda: dense_ds(Field(spec("l", "label", "categorical", **LABEL), labels(1, np.int64))),
     r"needs integer class labels, got dtype float32"),
    ("string labels",
     lambda: dense_ds(Field(spec("l", "label", "categorical", **LABEL), np.full((N, T, 1), "a"))),
     lambda: dense_ds(Field(spec("l", "label", "categorical", **LABEL), labels(0))),
     r"needs integer class labels, got dtype <U1"),
    ("string target", lambda: dense_ds(Field(spec(), np.full((N, T, 1), "1.0"))),
     lambda: dense_ds(Field(spec(), np.full((N, T, 1), 1.0))),
     r"needs real numbers, got dtype <U3"),
    ("binary target not 0/1", lambda: dense_ds(Field(spec(kind="binary"), ones() * 2)),
     lambda: dense_ds(Field(spec(kind="binary"), ones(dtype=bool))), r"must hold only 0 and 1"),
    ("float group ids", lambda: dense_ds(Field(GROUP.spec, np.array([0.0, 1.0, 0.0]))),
     lambda: dense_ds(GROUP), r"needs integer ids \[trial\]=\(3,\), got float64"),
    ("group id out of range", lambda: dense_ds(Field(GROUP.spec, np.array([0, 2, 0]))),
     lambda: dense_ds(GROUP), r"ids must lie in 0..1"),
    ("value shape", lambda: dense_ds(Field(spec(), np.ones((N, T + 1, 1)))),
     lambda: dense_ds(Field(spec(), ones())), r"has shape \(3, 6, 1\); expected .* = \(3, 5, 1\)"),
    ("mask shape", lambda: dense_ds(Field(spec("m", "mask", "binary", of="outputs"),
                                          ones(2, bool))),
     lambda: dense_ds(Field(spec("m", "mask", "binary", of="outputs"), ones(1, bool))),
     r"field 'm' \(mask, binary\) has shape \(3, 5, 2\)"),
    ("mask not boolean",
     lambda: dense_ds(Field(spec(), ones()), Field(spec("m", "mask", "binary", of="t"),
                                                   ones() * 0.5)),
     lambda: dense_ds(Field(spec(), ones()), Field(spec("m", "mask", "binary", of="t"), ones())),
     r"must be boolean"),
    ("mask channels differ from its field",
     lambda: dense_ds(Field(spec(), ones()),
                      Field(spec("m", "mask", "binary", channels=("c", "d"), of="t"),
                            ones(2, bool))),
     lambda: dense_ds(Field(spec(), ones()), Field(spec("m", "mask", "binary", of="t"),
                                                   ones(1, bool))),
     r"mask 'm' has 2 channels, field 't' has 1"),
    ("mask of an unknown field",
     lambda: dense_ds(Field(spec("m", "mask", "binary", of="nope"), ones(1, bool))),
     lambda: dense_ds(Field(spec("m", "mask", "binary", of="outputs"), ones(1, bool))),
     r"mask 'm' is of unknown field 'nope'"),
    ("mask of an input",
     lambda: dense_ds(Field(spec("x", "input"), ones()),
                      Field(spec("m", "mask", "binary", of="x"), ones(1, bool))),
     lambda: dense_ds(Field(spec("x", "target"), ones()),
                      Field(spec("m", "mask", "binary", of="x"), ones(1, bool))),
     r"mask 'm' is of 'x', which is not a target or label field"),
    ("mask without 'of'", lambda: spec("m", "mask", "binary"),
     lambda: spec("m", "mask", "binary", of="outputs"), r"a mask names the field it masks"),
    ("availability shape",
     lambda: dense_ds(GROUP, Field(spec(availability_group="g"), ones(), np.ones((3, 1), bool))),
     lambda: dense_ds(GROUP, Field(spec(availability_group="g"), ones(), np.ones((2, 1), bool))),
     r"availability must be bool \[group member, channel\] = \(2, 1\), got \(3, 1\)"),
    ("availability not boolean",
     lambda: dense_ds(GROUP, Field(spec(availability_group="g"), ones(), np.full((2, 1), 2.5))),
     lambda: dense_ds(GROUP, Field(spec(availability_group="g"), ones(), np.full((2, 1), 1))),
     r"availability must be boolean"),
    ("availability of an unknown group",
     lambda: dense_ds(Field(spec(availability_group="g"), ones(), np.ones((2, 1), bool))),
     lambda: dense_ds(GROUP, Field(spec(availability_group="g"), ones(), np.ones((2, 1), bool))),
     r"availability_group 'g' is not a group field"),
    ("availability without a group name",
     lambda: dense_ds(GROUP, Field(spec(), ones(), np.ones((2, 1), bool))),
     lambda: dense_ds(GROUP, Field(spec(), ones())), r"has availability but no availability_group"),
    ("availability on a group", lambda: spec("g", "group", "categorical", classes=("a",),
                                             availability_group="g"),
     lambda: spec("g", "group", "categorical", classes=("a",)),
     r"only input, target and label fields have an availability_group"),
    ("duplicate names", lambda: dense_ds(Field(spec(), ones()), Field(spec(), ones())),
     lambda: dense_ds(Field(spec(), ones()), Field(spec("t2"), ones())),
     r"field names must be unique; repeated: t"),
    ("reserved name", lambda: dense_ds(Field(spec("outputs"), ones())),
     lambda: dense_ds(Field(spec("outputs2"), ones())), r"'outputs' is reserved"),
    ("bad name", lambda: spec("a b"), lambda: spec("a_b.c-1"), r"field name 'a b' must be"),
    ("dot name (an HDF5 path)", lambda: spec("."), lambda: spec(".x"), r"field name '.' must be"),
    ("no channels", lambda: spec(channels=()), lambda: spec(channels=("c",)),
     r"needs at least one channel"),
    ("one label class", lambda: spec("l", "label", "categorical", classes=("a",)),
     lambda: spec("l", "label", "categorical", classes=("a", "b")), r"at least two class names"),
    ("inf in a target", lambda: dense_ds(Field(spec(), ones() * np.inf)),
     lambda: dense_ds(Field(spec(), ones() * np.nan)), r"field 't' .* contains inf values"),
    ("inf in the dense outputs", lambda: dense_ds(outputs=np.full((N, T, 1), np.inf)),
     lambda: dense_ds(outputs=np.full((N, T, 1), np.nan)), r"outputs contain inf values"),
    ("NaN in an input field", lambda: dense_ds(Field(spec("x", "input"), ones() * np.nan)),
     lambda: dense_ds(Field(spec("x", "input"), ones())),
     r"field 'x' \(input, continuous\) contains NaN; inputs must be complete"),
    ("NaN in the dense inputs", lambda: dense_ds(inputs=np.full((N, T, 1), np.nan)),
     lambda: dense_ds(inputs=np.ones((N, T, 1))), r"inputs contain NaN or inf"),
    ("events for a dense kind", lambda: dense_ds(Field(spec("x", "input"), EventTrains.from_lists(
        [[1.0]] * N, [[0]] * N, 1))),
     lambda: dense_ds(Field(spec("x", "input", "events"), EventTrains.from_lists(
         [[1.0]] * N, [[0]] * N, 1))), r"holds events; declare its kind as 'events'"),
    ("events of other trials", lambda: dense_ds(Field(spec("x", "input", "events"),
                                                      EventTrains.from_lists([[1.0]], [[0]], 1))),
     lambda: dense_ds(Field(spec("x", "input", "events"),
                            EventTrains.from_lists([[1.0]] * N, [[0]] * N, 1))),
     r"has 1 trials x 1 channels; expected 3 x 1"),
    ("event channel out of range", lambda: EventTrains([1.0], [2], [0, 1], 2),
     lambda: EventTrains([1.0], [1], [0, 1], 2), r"event channels must lie in 0..1"),
    ("fractional event channel", lambda: EventTrains.from_lists([[1.0]], [[0.5]], 2),
     lambda: EventTrains.from_lists([[1.0]], [[1.0]], 2), r"event channels must be integer"),
    ("negative event time", lambda: EventTrains([-1.0], [0], [0, 1], 1),
     lambda: EventTrains([0.0], [0], [0, 1], 1), r"event times must be finite and >= 0"),
    ("bad offsets", lambda: EventTrains([1.0, 2.0], [0, 0], [0, 1], 1),
     lambda: EventTrains([1.0, 2.0], [0, 0], [0, 2], 1), r"event offsets must start at 0"),
]


@pytest.mark.parametrize(("bad", "good", "message"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_is_a_one_line_error_and_the_fixed_input_passes(bad, good, message) -> None:
    with pytest.raises(DatasetError, match=message) as err:
        bad()
    assert "\n" not in str(err.value)
    good()  # control: the same input without the fault is accepted


def test_binary_values_given_as_bool_are_stored_as_float_zero_one() -> None:
    ds = dense_ds(Field(spec(kind="binary"), np.eye(T, dtype=bool)[None, :, :1].repeat(N, 0)))
    v = ds.field("t").values
    assert v.dtype == np.float32 and v[:, 0, 0].tolist() == [1.0] * N and v[:, 1:].sum() == 0


def test_unrecorded_target_values_are_missing() -> None:
    """A target's values in channels its group did not record become NaN (hidden values are
    not data); recorded values are kept as they are."""
    y = np.arange(N * T * 2, dtype=np.float32).reshape(N, T, 2)
    av = np.array([[True, False], [True, True]])
    ds = dense_ds(GROUP, Field(spec(channels=("a", "b"), availability_group="g"), y, av))
    v = ds.field("t").values
    # group of trials: [0, 1, 0] -> channel b of trials 0 and 2 unrecorded
    assert np.isnan(v[[0, 2], :, 1]).all()
    np.testing.assert_array_equal(v[1], y[1])
    np.testing.assert_array_equal(v[:, :, 0], y[:, :, 0])
    assert not np.isnan(y).any()  # the caller's array is untouched


# ------------------------------------------------------------------------------ EventTrains
def test_dense_counts_equal_a_hand_count() -> None:
    # dt 0.5 ms, 4 samples: bins [0, .5), [.5, 1), [1, 1.5), [1.5, 2); events at 2.0 are dropped
    ev = EventTrains.from_lists(
        [[0.0, 0.49, 0.5, 1.2, 1.2, 1.99, 2.0, 7.0], [0.25]], [[0, 0, 1, 1, 1, 0, 0, 1], [1]], 2
    )
    want = np.zeros((2, 4, 2), np.float32)
    want[0, 0, 0] = 2  # 0.0, 0.49
    want[0, 1, 1] = 1  # 0.5
    want[0, 2, 1] = 2  # 1.2 twice
    want[0, 3, 0] = 1  # 1.99
    want[1, 0, 1] = 1
    got = ev.dense([0, 1], 4, 0.5)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(ev.dense([1, 0], 4, 0.5), want[::-1])
    assert not np.array_equal(ev.dense([0, 1], 4, 1.0), want)  # control: another dt differs


def test_from_lists_sorts_each_trial_keeping_time_channel_pairs() -> None:
    ev = EventTrains.from_lists([[3.0, 1.0, 2.0], []], [[2, 0, 1], []], 3)
    assert ev.times_ms.tolist() == [1.0, 2.0, 3.0] and ev.channels.tolist() == [0, 1, 2]
    assert ev.offsets.tolist() == [0, 3, 3] and ev.n_trials == 2
    raw = EventTrains([3.0, 1.0], [2, 0], [0, 2], 3)  # control: the constructor keeps the order
    assert raw.times_ms.tolist() == [3.0, 1.0]


def test_subset_and_slice_time() -> None:
    ev = EventTrains.from_lists([[0.5, 1.0], [2.0, 4.0, 6.0], [9.0]], [[0, 1], [1, 0, 1], [0]], 2)
    sub = ev.subset([2, 1, 1])
    assert sub.n_trials == 3
    for row, src in enumerate([2, 1, 1]):
        for a, b in zip(sub.trial(row), ev.trial(src), strict=True):
            np.testing.assert_array_equal(a, b)
    cut = ev.slice_time(2.0, 6.0, np.array([1, 0]))  # start included, stop excluded, shifted
    assert cut.trial(0)[0].tolist() == [0.0, 2.0] and cut.trial(0)[1].tolist() == [1, 0]
    assert cut.trial(1)[0].size == 0


# ------------------------------------------------------------------------------ HDF5
def every_kind(seed: int = 0) -> Dataset:
    """6 trials x 20 samples with events, a binary target, a label, a mask, a group with
    availability, NaN outputs and a split."""
    rng = np.random.default_rng(seed)
    n, t = 6, 20
    ev = EventTrains.from_lists([rng.uniform(0, 12, k) for k in range(n)],
                                [rng.integers(0, 3, k) for k in range(n)], 3)
    y = rng.normal(size=(n, t, 2)).astype(np.float32)
    y[0, 3, 1] = np.nan
    lab = rng.integers(0, 3, (n, t, 1)).astype(np.int16)
    lab[1, 2, 0] = -1
    return Dataset(
        inputs=rng.normal(size=(n, t, 1)), outputs=y, dt_ms=0.5, input_names=("i",),
        output_names=("o1", "o2"), split=np.array([0, 0, 1, 1, 2, 2]),
        families=("a", "b", "a", "b", "a", "b"),
        fields=(
            Field(FieldSpec("ev", "input", "events", ("e0", "e1", "e2"), "spikes"), ev),
            Field(FieldSpec("sp", "target", "binary", ("s",)),
                  (rng.random((n, t, 1)) < 0.3).astype(np.float32)),
            Field(FieldSpec("lab", "label", "categorical", ("l",), classes=("a", "b", "c"),
                            ignore_label=-1), lab),
            Field(FieldSpec("m", "mask", "binary", ("o1", "o2"), of="outputs"),
                  rng.random((n, t, 2)) < 0.8),
            Field(FieldSpec("grp", "group", "categorical", classes=("x", "y", "z")),
                  np.array([0, 1, 2, 0, 1, 2])),
            Field(FieldSpec("act", "target", "continuous", ("a0", "a1"), "mV",
                            availability_group="grp"), rng.normal(size=(n, t, 2)),
                  np.array([[1, 0], [1, 1], [0, 1]], bool)),
        ),
    )


def assert_same_fields(a: Dataset, b: Dataset) -> None:
    assert [f.spec for f in a.fields] == [f.spec for f in b.fields]
    for fa, fb in zip(a.fields, b.fields, strict=True):
        if isinstance(fa.values, EventTrains):
            for key in ("times_ms", "channels", "offsets"):
                np.testing.assert_array_equal(getattr(fa.values, key), getattr(fb.values, key))
        else:
            assert fa.values.dtype == fb.values.dtype, fa.name
            np.testing.assert_array_equal(fa.values, fb.values)
        if fa.availability is None:
            assert fb.availability is None
        else:
            np.testing.assert_array_equal(fa.availability, fb.availability)


def test_hdf5_round_trip_of_every_field_kind(tmp_path: Path) -> None:
    ds = every_kind()
    back = load_dataset(save_dataset(ds, tmp_path / "d.h5"))
    assert back.content_hash() == ds.content_hash()
    np.testing.assert_array_equal(back.inputs, ds.inputs)
    np.testing.assert_array_equal(back.outputs, ds.outputs)  # NaN where NaN
    np.testing.assert_array_equal(back.split, ds.split)
    assert back.families == ds.families and back.field_specs == ds.field_specs
    assert_same_fields(ds, back)
    # control: one changed label changes the hash, so the equality above can fail
    lab = ds.field("lab")
    changed = np.array(lab.values)
    changed[0, 0, 0] = (changed[0, 0, 0] + 1) % 3
    other = replace(ds, fields=tuple(Field(f.spec, changed) if f.name == "lab" else f
                                     for f in ds.fields))
    assert other.content_hash() != ds.content_hash()


def test_corrupted_field_values_are_detected(tmp_path: Path) -> None:
    path = save_dataset(every_kind(), tmp_path / "d.h5")
    with h5py.File(path, "r+") as f:
        f["fields/ev/times_ms"][0] += 0.25
    with pytest.raises(DatasetError, match="do not match the stored content hash"):
        load_dataset(path)


def test_schema_1_file_loads(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    ds = Dataset(rng.normal(size=(4, 6, 2)), rng.normal(size=(4, 6, 1)), 0.5, ("a", "b"), ("y",),
                 split=np.array([0, 0, 1, 2]))
    path = save_dataset(ds, tmp_path / "v1.h5")
    with h5py.File(path, "r+") as f:
        del f["fields"]
        del f.attrs["outputs_missing"]
        f.attrs["schema_version"] = 1
    back = load_dataset(path)
    assert back.fields == () and back.content_hash() == ds.content_hash()
    np.testing.assert_array_equal(back.outputs, ds.outputs)
    with StreamingDataset(path) as s:
        assert s.extra_specs == () and s.content_hash() == ds.content_hash()
    with h5py.File(path, "r+") as f:  # control: a version this code does not read is refused
        f.attrs["schema_version"] = 3
    with pytest.raises(DatasetError, match="schema version 3"):
        load_dataset(path)


def v1_hash(ds: Dataset) -> str:
    """``Dataset.content_hash`` as documented before typed fields: sha256 over each of inputs and
    outputs (shape text, then bytes), then the sorted JSON of dt, names, units and split."""
    h = hashlib.sha256()
    for arr in (ds.inputs, ds.outputs):
        h.update(str(arr.shape).encode())
        h.update(np.ascontiguousarray(arr, np.float32).tobytes())
    meta = {"dt_ms": float(ds.dt_ms), "input_names": list(ds.input_names),
            "output_names": list(ds.output_names), "units": [ds.input_units, ds.output_units],
            "split": None if ds.split is None else [int(s) for s in ds.split]}
    h.update(json.dumps(meta, sort_keys=True).encode())
    return h.hexdigest()


def test_content_hash_of_a_plain_dataset_is_the_v1_formula() -> None:
    rng = np.random.default_rng(2)
    ds = Dataset(rng.normal(size=(5, 7, 2)), rng.normal(size=(5, 7, 3)), 0.25, ("a", "b"),
                 ("x", "y", "z"), input_units="pA", split=np.array([0, 0, 1, 2, 2]))
    assert ds.content_hash() == v1_hash(ds)
    assert replace(ds, split=None).content_hash() == v1_hash(replace(ds, split=None))
    # control: a typed field enters the hash, so the formula no longer matches
    typed = replace(ds, fields=(Field(spec(), np.zeros((5, 7, 1))),))
    assert typed.content_hash() != v1_hash(typed)


def test_streaming_dataset_of_equals_select_trials(tmp_path: Path) -> None:
    ds = every_kind()
    path = save_dataset(ds, tmp_path / "d.h5")
    loaded = load_dataset(path)
    idx = np.array([4, 1, 1, 3, 0])  # unsorted, with a repeat
    with StreamingDataset(path) as s:
        assert s.field_specs == ds.field_specs
        np.testing.assert_array_equal(s.groups()["grp"], ds.groups()["grp"])
        streamed = s.dataset_of(idx)
        other = s.dataset_of(idx[::-1])
    chosen = loaded.select_trials(idx)
    assert streamed.families == chosen.families
    np.testing.assert_array_equal(streamed.inputs, chosen.inputs)
    np.testing.assert_array_equal(streamed.outputs, chosen.outputs)
    assert_same_fields(streamed, chosen)
    assert streamed.content_hash() == replace(chosen, split=None).content_hash()
    assert other.content_hash() != streamed.content_hash()  # control: other trials differ


def test_mask_of_dense_outputs_with_other_channels_is_refused() -> None:
    bad = Field(spec("m", "mask", "binary", channels=("c", "d"), of="outputs"), ones(2, bool))
    try:
        dense_ds(bad)
    except DatasetError:
        return
    raise AssertionError("accepted a 2-channel mask of a 1-channel 'outputs'")
