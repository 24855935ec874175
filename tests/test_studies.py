"""The study registry: lookups, legacy folders, and a new study plugged in with one entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neuroreduce.errors import ConfigError
from neuroreduce.studies import CellField, CellShape, Study, StudyAnalysis, StudyContext
from neuroreduce.studies.registry import (
    STUDIES,
    cell_fields,
    get_study,
    list_studies,
    resolve_study,
    study_of,
)


def test_registry_lists_and_resolves_the_barbulescu_study() -> None:
    assert "barbulescu2023" in list_studies()
    study = get_study("barbulescu2023")
    assert sorted(study.tables) == ["table1", "table2", "table3", "table4", "table5"]
    assert "Sci. Rep. 13, 11542" in study.reference
    with pytest.raises(ConfigError, match="unknown study 'nope'.*barbulescu2023"):
        get_study("nope")
    assert resolve_study(None, None) is None
    assert resolve_study(None, "table3") == "barbulescu2023"  # the older form: paper only
    assert resolve_study("barbulescu2023", None) == "barbulescu2023"
    with pytest.raises(ConfigError, match="has no table 'table9'"):
        resolve_study("barbulescu2023", "table9")


def test_legacy_folders_find_their_study_and_unknown_ones_report_generically() -> None:
    assert study_of({"paper": "table2"}).name == "barbulescu2023"
    assert study_of({"study": "barbulescu2023", "paper": None}).name == "barbulescu2023"
    assert study_of({}) is None
    assert study_of({"study": "removed2019"}) is None  # an old folder still reports


def test_cell_fields_of_the_barbulescu_study() -> None:
    assert cell_fields("barbulescu2023", CellShape("gru", 8, 4, 4)) == {"keras_parameters": 348}
    assert cell_fields("barbulescu2023", CellShape("tcn", 8, 4, 4)) == {"keras_parameters": None}
    assert cell_fields(None, CellShape("gru", 8, 4, 4)) == {}


def test_study_objects_are_frozen() -> None:
    study = get_study("barbulescu2023")
    with pytest.raises(TypeError):
        study.tables["table6"] = None  # type: ignore[index]
    with pytest.raises(AttributeError):
        study.name = "other"  # type: ignore[misc]


TOY = """
[experiment]
name = "plugged"
study = "toy2099"
paper = "main"
seeds = 1

[datasets.toy]
scenario = "toy"
stimuli = 12
dt_out_ms = 1.0

[training]
epochs = 1
batch_size = 4
learning_rate = 0.01

[[grid]]
datasets = ["toy"]
models = ["gru"]
hidden = [2, 4]

[analysis]
speed = false
"""


def _toy_study() -> Study:
    def conclusions(ctx: StudyContext) -> list[dict]:
        best = min(ctx.cells, key=lambda c: c.error("test", "nrmse").mean)
        return [{"kind": "claim", "title": "Toy claim", "holds": best.hidden == 4,
                 "text": f"table {ctx.table}: best {best.label}; saw {sorted(ctx.analyses)}"}]

    return Study(
        name="toy2099", title="A made-up study", reference="Nobody (2099).",
        tables={"main": {"gru-4": 0.1}}, conclusions=conclusions,
        cell_fields=(CellField("units_squared", "units²", lambda s: s.hidden ** 2),),
        analyses=(StudyAnalysis("toy_check", lambda ctx: {"n_cells": len(ctx.cells)}),
                  StudyAnalysis("not_applicable", lambda ctx: None)),
        report_sections=lambda analyses: [("Toy section", f"<p>{analyses['toy_check']}</p>")],
        figure_notes={"loss": "toy layout"},
        replaces=frozenset({"size"}),
    )


@pytest.mark.slow
def test_a_new_study_needs_only_a_registry_entry(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from neuroreduce.experiments.runner import run_experiment

    monkeypatch.setitem(STUDIES, "toy2099", _toy_study())  # the one registry line
    path = tmp_path / "plugged.toml"
    path.write_text(TOY)
    out = run_experiment(path, tmp_path / "out", progress=False)
    data = json.loads((out / "results.json").read_text())
    assert "keras_parameters" not in data["columns"]
    assert [r["units_squared"] for r in data["rows"]] == [4, 16]
    cell = json.loads((out / "cells" / "toy__gru-4" / "cell.json").read_text())
    assert cell["units_squared"] == 16
    analysis = out / "analysis"
    assert json.loads((analysis / "toy_check.json").read_text()) == {"n_cells": 2}
    assert not (analysis / "not_applicable.json").exists()
    paragraphs = json.loads((analysis / "conclusions.json").read_text())["paragraphs"]
    kinds = [p["kind"] for p in paragraphs]
    assert kinds[:2] == ["ranking", "claim"] and "size" not in kinds  # replaced
    assert "table main" in paragraphs[1]["text"] and "toy_check" in paragraphs[1]["text"]
    page = (out / "report" / "index.html").read_text()
    for words in ("Toy section", "units²", "Training (toy layout)", "Nobody (2099)."):
        assert words in page, words
