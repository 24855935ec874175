"""Stimulus design with the simulator in the loop (issue 14, part 4), on the toy simulator."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import neuroreduce.trust.design as design
from neuroreduce.errors import ConfigError
from neuroreduce.trust.battery import battery_families
from neuroreduce.trust.design import (
    CandidateGenerator,
    DesignConfig,
    candidate_pool,
    design_from_dict,
    load_design,
    run_design,
)

ROOT = Path(__file__).resolve().parents[1]
SMALL = DesignConfig(scenario="toy", initial=6, per_round=4, rounds=2, members=3, epochs=20,
                     strategies=("disagreement",), generator=CandidateGenerator(candidates=24))


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class _Counter:
    """Counts simulated trials; raises (a simulated kill) at call ``kill_at``."""

    def __init__(self, kill_at: int | None = None) -> None:
        self.calls, self.trials, self.kill_at = 0, 0, kill_at
        self.real = design.simulate_trials

    def __call__(self, config, currents, *, progress=False):
        self.calls += 1
        if self.kill_at is not None and self.calls == self.kill_at:
            raise KeyboardInterrupt("killed mid-round")
        self.trials += len(currents)
        return self.real(config, currents, progress=progress)


def test_design_loop_reduces_held_out_error(tmp_path: Path) -> None:
    result = run_design(SMALL, tmp_path)
    rows = result["rows"]
    assert [r["n_trials"] for r in rows] == [6, 10, 14]
    # tolerance: the last round's battery error at most 85 % of round 0's (seeded run: ~65 %)
    assert rows[-1]["battery_rmse"] < 0.85 * rows[0]["battery_rmse"]
    assert rows[-1]["in_distribution_rmse"] < rows[0]["in_distribution_rmse"]
    assert set(rows[0]["per_family"]) == set(battery_families())
    for name in ("design.csv", "design.json", "design.png"):
        assert (tmp_path / name).stat().st_size > 0
    lines = (tmp_path / "design.csv").read_text().splitlines()
    assert lines[0].startswith("strategy,round,n_trials") and len(lines) == 4


def test_resume_after_kill_does_not_simulate_again(tmp_path: Path, monkeypatch) -> None:
    killed = _Counter(kill_at=5)  # battery, in-distribution, round 0, round 1, then round 2
    monkeypatch.setattr(design, "simulate_trials", killed)
    with pytest.raises(KeyboardInterrupt):
        run_design(SMALL, tmp_path)
    assert killed.trials == 18 + 8 + 6 + 4
    first_rows = [json.loads(p.read_text()) for p in sorted((tmp_path / "rounds").glob("*.json"))]
    assert [r["round"] for r in first_rows] == [0, 1]
    resumed = _Counter()
    monkeypatch.setattr(design, "simulate_trials", resumed)
    result = run_design(SMALL, tmp_path)
    assert (resumed.calls, resumed.trials) == (1, 4)  # only the unfinished round 2
    assert result["rows"][:2] == first_rows
    again = _Counter()
    monkeypatch.setattr(design, "simulate_trials", again)
    assert run_design(SMALL, tmp_path)["rows"] == result["rows"]
    assert again.calls == 0
    # other training settings reuse the evaluation sets and round 0, not the picked rounds
    retrained = _Counter()
    monkeypatch.setattr(design, "simulate_trials", retrained)
    run_design(replace(SMALL, epochs=5), tmp_path)
    assert retrained.trials == 2 * 4
    # control: another design (other key) simulates from scratch
    fresh = _Counter()
    monkeypatch.setattr(design, "simulate_trials", fresh)
    run_design(replace(SMALL, rounds=0, seed=1), tmp_path)
    assert fresh.trials == 18 + 8 + 6


def test_random_strategy_shares_round_zero_and_budget(tmp_path: Path, monkeypatch) -> None:
    counter = _Counter()
    monkeypatch.setattr(design, "simulate_trials", counter)
    config = replace(SMALL, rounds=1, strategies=("disagreement", "random"), epochs=5)
    rows = run_design(config, tmp_path)["rows"]
    by = {(r["strategy"], r["round"]): r for r in rows}
    assert by[("random", 0)]["battery_rmse"] == by[("disagreement", 0)]["battery_rmse"]
    assert by[("random", 1)]["n_trials"] == by[("disagreement", 1)]["n_trials"] == 10
    assert counter.trials == 18 + 8 + 6 + 4 + 4  # round 0 simulated once for both


def test_candidate_pool_sets_cross_input_structure() -> None:
    pos = replace(SMALL, generator=CandidateGenerator(candidates=6, correlation=(1.0, 1.0),
                                                      amplitude_scale=(1.0, 1.0)))
    cur, records = candidate_pool(pos, 0)
    assert cur.shape == (6, 101, 4) and len(records) == 6
    assert np.allclose(cur[:, :, 0], cur[:, :, 1]) and np.allclose(cur[:, :, 0], cur[:, :, 3])
    neg = replace(pos, generator=replace(pos.generator, correlation=(-1.0, -1.0)))
    cur, _ = candidate_pool(neg, 0)
    assert np.allclose(cur[:, 1:, 0] + cur[:, 1:, 1], 1.0)  # toy range max 1 nA: mirror images
    mixed = replace(pos, generator=replace(pos.generator, correlation=(0.0, 0.0)))
    cur, _ = candidate_pool(mixed, 0)
    assert not np.allclose(cur[:, :, 0], cur[:, :, 1])  # control: independent channels
    assert not np.array_equal(candidate_pool(SMALL, 1)[0], candidate_pool(SMALL, 2)[0])


@pytest.mark.parametrize(("table", "match"), [
    ({"design": {"initial": 0, "rounds": 0}}, "budget is 0"),
    ({"generator": {"candidates": 0}}, "candidate pool is empty"),
    ({"design": {"per_round": 10}, "generator": {"candidates": 8}}, "candidate pool"),
    ({"generator": {"correlation": [-2, 1]}}, "correlation"),
    ({"generator": {"amplitude_scale": [1.5, 0.5]}}, "amplitude_scale"),
    ({"generator": {"families": ["bat_in_phase"]}}, "held-out"),
    ({"generator": {"families": ["nope"]}}, "unknown generator family"),
    ({"design": {"rounds": 2, "per_round": 0}}, "per_round is 0"),
    ({"design": {"members": 1}}, "members"),
    ({"design": {"strategies": ["greedy"]}}, "strategies"),
    ({"design": {"epoch": 3}}, "unknown key"),
    ({"designs": {}}, "unknown table"),
])
def test_bad_input_is_one_line(table: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        design_from_dict(table)
    assert "\n" not in str(info.value)


def test_cli_design_errors_and_example_file(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from neuroreduce.cli import app

    bad = tmp_path / "bad.toml"
    bad.write_text("[generator]\ncandidates = 0\n")
    res = CliRunner().invoke(app, ["design", str(bad), "-o", str(tmp_path / "out")])
    assert res.exit_code == 2 and "candidate pool is empty" in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    example = load_design(ROOT / "experiments" / "trust" / "design_toy.toml")
    assert example.scenario == "toy" and example.budget == 14
    with pytest.raises(ConfigError, match="not found"):
        load_design(tmp_path / "missing.toml")
