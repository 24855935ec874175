"""The importer registry: names, options, the CLI and experiment datasets built by importers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from neuroreduce.cli import app
from neuroreduce.datasets.importer_registry import (
    get_importer,
    importer_options,
    list_importers,
    run_import,
)
from neuroreduce.datasets.io import load_dataset
from neuroreduce.errors import ConfigError, DatasetError
from neuroreduce.experiments.datasets import DatasetSpec, build_dataset


def _npz(path: Path, *, scale: float = 1.0) -> Path:
    rng = np.random.default_rng(0)
    np.savez(path, inputs=rng.normal(size=(6, 20, 2)), outputs=scale * rng.normal(size=(6, 20, 1)),
             dt_ms=np.array(0.5), input_names=np.array(["a", "b"]), output_names=np.array(["y"]))
    return path


def test_builtin_formats_are_registered_with_option_types() -> None:
    assert {"dat", "csv", "npz"} <= set(list_importers())
    opts = importer_options("csv", {"input_names": ["a", "b"], "output_names": "y"})
    assert opts.input_names == ("a", "b") and opts.output_names == ("y",)
    assert dataclasses.is_dataclass(get_importer("npz").options)


@pytest.mark.parametrize(("name", "options", "match"), [
    ("nope", {}, "unknown import format 'nope'"),
    ("csv", {"colour": 1}, "has no option 'colour'; its options: input_names"),
    ("csv", {"input_names": [1, 2]}, "input_names must be a list of column names"),
])
def test_bad_names_and_options_are_one_line_errors(name, options, match) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        importer_options(name, options)
    assert "\n" not in str(info.value)


def test_run_import_checks_the_source_exists(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist; give the file of 'npz' data"):
        run_import("npz", tmp_path / "missing.npz")
    ds = run_import("npz", _npz(tmp_path / "d.npz"), {"output_units": "mV"})
    assert ds.output_units == "mV" and ds.n_trials == 6


def test_cli_import_takes_importer_options(tmp_path: Path) -> None:
    src = _npz(tmp_path / "d.npz")
    result = CliRunner().invoke(app, ["import", "npz", str(src), "-o", str(tmp_path / "o.h5"),
                                      "--option", "input_units=pA"])
    assert result.exit_code == 0, result.output
    assert load_dataset(tmp_path / "o.h5").input_units == "pA"
    bad = CliRunner().invoke(app, ["import", "npz", str(src), "-o", str(tmp_path / "p.h5"),
                                   "--option", "colour=red"])
    assert bad.exit_code != 0 and "has no option 'colour'" in bad.output
    assert not (tmp_path / "p.h5").exists()
    listing = CliRunner().invoke(app, ["importers", "csv"])
    assert listing.exit_code == 0 and "input_names" in listing.output


def test_experiment_dataset_from_an_importer_is_cached_by_source_content(tmp_path: Path) -> None:
    src = _npz(tmp_path / "rec.npz")
    table = {"importer": "npz", "source": "rec.npz", "options": {"output_units": "mV"}, "seed": 3}
    spec = DatasetSpec.from_dict("rec", table, base_dir=tmp_path)
    assert spec.source == str(tmp_path / "rec.npz") and not spec.simulated
    assert DatasetSpec.from_dict("rec", spec.to_dict()) == spec
    path = build_dataset(spec, data_dir=tmp_path / "data", progress=False)
    ds = load_dataset(path)
    assert ds.split is not None and set(ds.split.tolist()) == {0, 1, 2}
    assert ds.output_units == "mV" and ds.provenance["importer"] == "npz"
    first = spec.spec_hash()
    _npz(src, scale=2.0)  # the recording changes: the cached import no longer applies
    assert spec.spec_hash() != first
    test_role = DatasetSpec.from_dict("rec", {**table, "role": "test"}, base_dir=tmp_path)
    assert set(load_dataset(build_dataset(test_role, data_dir=tmp_path / "data",
                                          progress=False)).split.tolist()) == {2}


@pytest.mark.parametrize(("table", "match"), [
    ({"importer": "npz"}, "needs 'source'"),
    ({"importer": "npz", "source": "x", "stimuli": 3}, "key 'stimuli' does not apply"),
    ({"importer": "npz", "source": "x", "options": 3}, "options must be a table"),
    ({"importer": "npz", "source": "x", "options": {"bad": 1}}, "has no option 'bad'"),
    ({"importer": "zip", "source": "x"}, "unknown import format 'zip'"),
])
def test_bad_import_tables(table, match) -> None:
    with pytest.raises(ConfigError, match=match):
        DatasetSpec.from_dict("d", table)
