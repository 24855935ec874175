"""``neuroreduce models``, ``metrics``, ``fields`` and ``scenarios``: they print what the
registries hold and what a file holds; bad names and bad files are one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from neuroreduce.cli import app
from neuroreduce.datasets.io import save_dataset
from neuroreduce.evaluation.registry import list_metrics
from neuroreduce.models.registry import list_models
from neuroreduce.reporting.catalog import attribute_docs, family_info
from neuroreduce.reporting.field_summary import summarize
from neuroreduce.simulators.toy_tasks import TASK_GENERATORS

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "200"})


def _one_line_error(r, text: str) -> None:
    assert r.exit_code == 2, r.output
    assert text in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output


def test_help_lists_the_info_commands() -> None:
    r = invoke("--help")
    for cmd in ("models", "metrics", "fields", "scenarios"):
        assert cmd in r.output


def test_models_lists_every_family_with_its_options() -> None:
    r = invoke("models")
    assert r.exit_code == 0, r.output
    for name in list_models():
        assert f"{name}: " in r.output
    for opt in family_info("tcn").options:  # every field of a config, with type and default
        assert opt.name in r.output and opt.type in r.output and opt.default in r.output


def test_family_info_reads_the_config_dataclass() -> None:
    tcn = family_info("tcn")
    names = [o.name for o in tcn.options]
    assert names[0] == "hidden" and {"layers", "kernel", "activation"} <= set(names)
    kernel = next(o for o in tcn.options if o.name == "kernel")
    assert (kernel.type, kernel.default) == ("int", "5") and "time steps" in kernel.description
    assert "``" not in " ".join(o.description for o in family_info("elm").options)


def test_attribute_docs_joins_continued_lines_and_stops_at_the_next_section() -> None:
    class Config:
        """Doc.

        Attributes:
            a: First line
                continued.
            b: Second.

        Raises:
            c: not an attribute.
        """

    assert attribute_docs(Config) == {"a": "First line continued.", "b": "Second."}


def test_one_model_and_an_unknown_one() -> None:
    r = invoke("models", "gru")
    assert r.exit_code == 0 and "gru: " in r.output and "tcn: " not in r.output
    _one_line_error(invoke("models", "transformer"), "unknown model 'transformer'")


def test_metrics_lists_every_registered_metric_with_its_kind_and_direction() -> None:
    r = invoke("metrics")
    assert r.exit_code == 0, r.output
    for name in list_metrics():
        assert name in r.output
    assert "[channel]" in r.output  # shapes are text, not rich markup
    r = invoke("metrics", "--kind", "binary")
    assert "roc_auc" in r.output and "higher" in r.output and "explained_variance" not in r.output
    _one_line_error(invoke("metrics", "--kind", "ordinal"), "unknown target kind 'ordinal'")


def test_scenarios_list_the_typed_task_generators() -> None:
    r = invoke("scenarios")
    assert r.exit_code == 0, r.output
    assert "fcm" in r.output
    for name in TASK_GENERATORS:
        assert name in r.output


@pytest.mark.parametrize("task", sorted(n for n in TASK_GENERATORS if n.startswith("toy_")))
def test_fields_of_each_toy_task(tmp_path, task) -> None:
    """The seconds-fast toy generators (the NEURON-backed ones have tests of their own)."""
    ds = TASK_GENERATORS[task].make(8, seed=0, dt_ms=1.0)
    path = tmp_path / f"{task}.h5"
    save_dataset(ds, path)
    r = invoke("fields", str(path))
    assert r.exit_code == 0, r.output
    assert f"{ds.n_trials} trials x {ds.n_time} samples" in r.output
    for spec in ds.field_specs:
        assert spec.name in r.output and f"{spec.role}, {spec.kind}" in r.output


def test_field_summary_counts_events_spikes_labels_and_missing_values() -> None:
    spikes = TASK_GENERATORS["toy_spikes"].make(6, seed=0, dt_ms=1.0)
    rows = {r.name: r for r in summarize(spikes).fields}
    events = spikes.field("synapses").values
    assert rows["synapses"].content.startswith(f"{events.times_ms.size} events")
    assert "Hz per channel" in rows["synapses"].content
    ones = int(np.asarray(spikes.field("spikes").values).sum())
    assert rows["spikes"].content.startswith(f"{ones} ones")
    behaviour = {r.name: r for r in summarize(TASK_GENERATORS["toy_behaviour"].make(8)).fields}
    assert "forward" in behaviour["behaviour"].classes
    assert "ignored (-1)" in behaviour["behaviour"].content
    assert behaviour["individual"].content.startswith("trials per member: w0 2")
    subsets = {r.name: r for r in summarize(TASK_GENERATORS["toy_subsets"].make(8)).fields}
    assert subsets["activity"].groups == "individual: 4 of 6 channels per member"
    assert subsets["activity"].content.startswith("missing ")
    assert subsets["inputs"].content == "complete"


def test_fields_of_a_missing_or_corrupt_file_is_one_line(tmp_path) -> None:
    _one_line_error(invoke("fields", str(tmp_path / "nope.h5")), "dataset file not found")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an hdf5 file at all" * 10)
    _one_line_error(invoke("fields", str(junk)), "not a readable HDF5 file")
    good = tmp_path / "good.h5"
    save_dataset(TASK_GENERATORS["toy_subsets"].make(4), good)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    r = invoke("fields", str(truncated))
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1 and "truncated" in r.output
