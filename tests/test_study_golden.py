"""Golden regression of the ``barbulescu2023`` study: its numbers and generated conclusions.

A suite of four toy experiments (``tests/golden/study_barbulescu2023/experiments/``: Tables 1, 2
and 5 and the study without a table, with OOD data, an input variant and attribution) runs
through the generic runner; every results table and analysis JSON (paper comparison, error vs
size, ablation, OOD, attribution, conclusions), wall times removed, must equal
``expected.json``. The file was written by the code *before* the paper-specific code moved into
``neuroreduce.studies`` (same numbers, same sentences), so this test holds the move to it.

If a deliberate change alters these numbers or sentences, regenerate the file and say why in
the commit::

    python tests/test_study_golden.py    # rewrites tests/golden/study_barbulescu2023/expected.json
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden" / "study_barbulescu2023"
EXPECTED = GOLDEN / "expected.json"
#: Keys whose values are measured, not computed (left out of the comparison).
VOLATILE = frozenset({"wall_s", "wall_train_s", "wall_evaluate_s"})
#: Relative tolerance of floating-point values (other CPUs may round the last bits differently).
RTOL = 1e-6


def run_golden_suite(root: Path) -> Path:
    """Copy the golden experiment files into ``root`` and run the suite; returns its folder."""
    import torch

    from neuroreduce.experiments.runner import run_experiment

    src = root / "experiments"
    shutil.copytree(GOLDEN / "experiments", src)
    torch.manual_seed(0)
    return run_experiment(src / "all.toml", root / "run", progress=False)


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def canonical(run: Path) -> dict[str, Any]:
    """``{"<experiment>/<file>": JSON}`` of every results table and analysis (no wall times)."""
    out: dict[str, Any] = {}
    for exp in sorted(p for p in run.iterdir() if (p / "results.json").is_file()):
        out[f"{exp.name}/results.json"] = _strip(json.loads((exp / "results.json").read_text()))
        for f in sorted((exp / "analysis").glob("*.json")):
            # analysis.json: what ran and how long, not a result; trust.json: the generic
            # held-out trust analysis (coverage counts flip with the last bits of a CPU's
            # rounding), tested in tests/test_trust_held_out.py, not part of the study
            if f.name not in ("analysis.json", "trust.json"):
                out[f"{exp.name}/analysis/{f.name}"] = _strip(json.loads(f.read_text()))
    return out


def differences(got: Any, want: Any, where: str = "") -> list[str]:
    """Where ``got`` differs from ``want``: keys and their order, types, text exactly, numbers
    within :data:`RTOL` (NaN equals NaN)."""
    if isinstance(want, dict):
        if not isinstance(got, dict) or list(got) != list(want):
            return [f"{where}: keys {list(got) if isinstance(got, dict) else got!r} != "
                    f"{list(want)}"]
        return [d for k in want for d in differences(got[k], want[k], f"{where}/{k}")]
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [f"{where}: {got!r} != {want!r}"]
        return [d for i, (g, w) in enumerate(zip(got, want, strict=True))
                for d in differences(g, w, f"{where}[{i}]")]
    if isinstance(want, float) and isinstance(got, int | float) and not isinstance(got, bool):
        same = (math.isnan(want) and math.isnan(got)) or math.isclose(got, want, rel_tol=RTOL,
                                                                      abs_tol=1e-12)
        return [] if same else [f"{where}: {got!r} != {want!r}"]
    if type(got) is not type(want) or got != want:
        return [f"{where}: {got!r} != {want!r}"]
    return []


@pytest.fixture(scope="module")
def golden_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_golden_suite(tmp_path_factory.mktemp("study_golden"))


def test_study_numbers_and_conclusions_equal_the_golden_files(golden_run: Path) -> None:
    want = json.loads(EXPECTED.read_text())
    got = canonical(golden_run)
    assert sorted(got) == sorted(want)
    diff = differences(got, want)
    assert not diff, "\n".join(diff[:20])
    kinds = {p["kind"] for name, block in got.items() if name.endswith("conclusions.json")
             for p in block["paragraphs"]}
    assert {"exp1", "exp2", "exp3", "exp4", "exp5"} <= kinds  # every paper experiment ran
    assert got["t1/results.json"]["rows"][0]["keras_parameters"] == 404  # RNN-16: as printed


def test_study_sections_are_in_the_report(golden_run: Path) -> None:
    page = (golden_run / "t1" / "report" / "index.html").read_text()
    for words in ("Our results next to the paper", "params (paper/Keras)",
                  "Training (paper Figs 5, 7, 9 layout)", "Barbulescu, R."):
        assert words in page, words


def test_the_comparison_detects_a_perturbed_value() -> None:
    """The check can fail: one changed number, one changed word, one missing key."""
    want = json.loads(EXPECTED.read_text())
    got = copy.deepcopy(want)
    entry = got["t1/analysis/paper_comparison.json"]["rows"][2]["entries"][0]
    entry["our_nrmse"] *= 1 + 1e-4
    para = next(p for p in got["t2/analysis/conclusions.json"]["paragraphs"]
                if p["kind"] == "exp2")
    para["text"] = para["text"].replace("GRU", "LSTM", 1)
    del got["t5/results.json"]["rows"][0]["keras_parameters"]
    diff = differences(got, want)
    assert len(diff) == 3, diff
    assert "rows[2]/entries[0]/our_nrmse" in diff[0] and "conclusions.json" in diff[1]
    assert differences(copy.deepcopy(want), want) == []


def test_a_perturbed_paper_table_changes_comparison_and_conclusions(
    golden_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The golden run really goes through the study: a published value changed in the study's
    table changes the regenerated comparison and the Experiment 1 conclusion."""
    from neuroreduce.experiments.analysis import run_analyses
    from neuroreduce.experiments.spec import load_experiment
    from neuroreduce.studies.barbulescu2023 import tables

    table = tables.PAPER_TABLES["table1"]
    test = next(r for r in table.rows if r.split == "test")
    values = list(test.values)
    values[3] *= 3  # RNN-64, the paper's best RNN: the RNN/gated ratio of Experiment 1 changes
    worse = dataclasses.replace(test, values=tuple(values))
    monkeypatch.setitem(tables.PAPER_TABLES, "table1", dataclasses.replace(
        table, rows=tuple(worse if r is test else r for r in table.rows)))
    exp = tmp_path / "t1"
    shutil.copytree(golden_run / "t1", exp)
    run_analyses(exp, load_experiment(exp / "experiment.toml").analysis, progress=False)
    want = {k: v for k, v in json.loads(EXPECTED.read_text()).items() if k.startswith("t1/")}
    diff = differences(canonical(tmp_path), want)
    assert any("paper_comparison.json/rows[2]/entries[3]/paper_rmse" in d for d in diff), diff
    assert any("conclusions.json/paragraphs" in d and "in the paper the ratio" in d
               for d in diff), diff


if __name__ == "__main__":  # regenerate expected.json (see the module docstring)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        result = canonical(run_golden_suite(Path(tmp)))
    EXPECTED.write_text(json.dumps(result, indent=1) + "\n")
    sys.stdout.write(f"wrote {EXPECTED}\n")
