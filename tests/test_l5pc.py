"""The L5PC simulator (Hay 2011 cell in NEURON): layout, bad input, resume, reference checks.

Fast tests use a tiny configuration (4 synaptic channels, 50-100 ms trials, dt 0.1 ms); the cell
is built once per process and shared. Reference checks of the full cell are marked slow.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from neuroreduce.errors import ConfigError, DatasetError, SimulationError
from neuroreduce.simulators.l5pc.cell import check_finite
from neuroreduce.simulators.l5pc.inputs import InputConfig, draw_trial

pytest.importorskip("neuron")


@pytest.fixture
def morphology(shared_data):
    path = shared_data / "l5pc" / "cell1.asc"
    if not path.is_file():
        pytest.skip("cell1.asc is absent")
    return path


def _tiny(morphology, **kw):
    from neuroreduce.simulators.l5pc.generate import L5PCSpec

    fields = dict(morphology=str(morphology), duration_ms=60.0, dt_ms=0.1, max_channels=4,
                  inputs=InputConfig(exc_rate_range_hz=(150.0, 250.0),
                                     inh_rate_range_hz=(20.0, 40.0)))
    fields.update(kw)
    return L5PCSpec(**fields)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("rates", [(-1.0, 2.0), (float("nan"), 2.0), (3.0, 1.0)])
def test_negative_or_nan_rates_are_one_line_errors(rates):
    with pytest.raises(ConfigError, match="exc_rate_range_hz") as err:
        InputConfig(exc_rate_range_hz=rates)
    assert "\n" not in str(err.value)


def test_unstable_voltage_names_trial_and_suggests_smaller_step():
    check_finite(np.zeros(5), trial=3, dt_ms=0.1)  # finite: passes
    with pytest.raises(SimulationError, match=r"trial 3: .*unstable.*--dt 0.025") as err:
        check_finite(np.array([0.0, np.nan]), trial=3, dt_ms=0.1)
    assert "\n" not in str(err.value)


def test_unknown_and_unreadable_morphology(tmp_path):
    from neuroreduce.simulators.l5pc.cell import CellConfig, L5PCCell

    with pytest.raises(DatasetError, match="not found"):
        L5PCCell(CellConfig(str(tmp_path / "missing.asc")))
    bad = tmp_path / "bad.asc"
    bad.write_text('("Garbage"\n  (Color Red)\n  ( 1 2 3 4 )\n)\n')
    with pytest.raises(DatasetError, match="bad.asc") as err:
        L5PCCell(CellConfig(str(bad)))
    assert "\n" not in str(err.value)


def test_events_are_the_spike_train_module_draws():
    """Trial k of the L5PC inputs is trial k of generate_spike_trains (reused, not rewritten)."""
    from neuroreduce.simulators.l5pc.inputs import spike_config
    from neuroreduce.spike_trains import generate_spike_trains

    cfg = InputConfig()
    ref = generate_spike_trains(spike_config(cfg, n_channels=5, duration_ms=300, seed=2), 3)
    t, c, p = draw_trial(cfg, n_channels=5, duration_ms=300, seed=2, trial=2)
    np.testing.assert_array_equal(t, ref.times_ms[2])
    np.testing.assert_array_equal(c, ref.channels[2])
    assert p == ref.params[2]


def test_ampa_only_spec_defaults_to_calibrated_conductance():
    """``nmda=False`` without ``exc_gmax_ns`` takes the calibrated AMPA conductance (also via
    the CLI's options); the NMDA cell's 0.4 nS and explicit values are kept."""
    from neuroreduce.simulators.l5pc.generate import AMPA_ONLY_EXC_GMAX_NS, L5PCSpec
    from neuroreduce.simulators.l5pc.task import make_spec

    assert L5PCSpec(morphology="cell.asc").exc_gmax_ns == 0.4
    ampa = L5PCSpec(morphology="cell.asc", nmda=False)
    assert ampa.exc_gmax_ns == AMPA_ONLY_EXC_GMAX_NS > 0.4
    assert ampa.cell_config().exc_gmax_ns == AMPA_ONLY_EXC_GMAX_NS
    assert L5PCSpec(morphology="cell.asc", nmda=False, exc_gmax_ns=0.4).exc_gmax_ns == 0.4
    assert make_spec(options={"morphology": "cell.asc", "nmda": False}).exc_gmax_ns == (
        AMPA_ONLY_EXC_GMAX_NS)


# ----------------------------------------------------------------------------- the cell
def test_cell_structure_and_channel_count(morphology):
    """Hay's 40 um rule gives NeuronIO's 639 dendritic segments = channels per population."""
    from neuroreduce.simulators.l5pc.generate import L5PCSpec, runner_for

    runner = runner_for(L5PCSpec(morphology=str(morphology), dt_ms=0.1, duration_ms=60.0))
    cell = runner.cell
    assert runner.n_channels == 639
    assert cell.n_segments["basal"] + cell.n_segments["apical"] == 639
    assert [s.L for s in cell.sections["axonal"]] == [30.0, 30.0]  # Hay's axon stub
    assert -80.0 < runner.provenance()["rest_soma_v_mv"] < -70.0
    # hot zone: apical Ca_LVAst 100x denser at 685-885 um than outside
    inside = [seg.gCa_LVAstbar_Ca_LVAst for sec in cell.sections["apical"] for seg in sec
              if 685 < cell.distance(seg) < 885]
    outside = [seg.gCa_LVAstbar_Ca_LVAst for sec in cell.sections["apical"] for seg in sec
               if cell.distance(seg) < 600]
    assert inside and max(outside) == pytest.approx(0.000187) and min(inside) == 0.0187


def test_channel_count_mismatch_is_one_line_error(morphology):
    from neuroreduce.simulators.l5pc.generate import generate

    with pytest.raises(ConfigError, match="4 dendritic segments.*n_channels = 639") as err:
        generate(_tiny(morphology, n_channels=639), 1, progress=False)
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------- end to end
def test_cli_tiny_run_layout(morphology, tmp_path):
    from neuroreduce.cli import app
    from neuroreduce.datasets.io import load_dataset

    out = tmp_path / "l5pc.h5"
    result = CliRunner().invoke(app, [
        "simulate", "l5pc", "--trials", "3", "--duration-ms", "60", "--dt", "0.1",
        "-o", str(out), "--option", f"morphology={morphology}", "--option", "max_channels=4",
        "--option", "exc_rate_range_hz=[150,250]", "--option", "keep_raw=true"])
    assert result.exit_code == 0, result.output
    ds = load_dataset(out)
    assert ds.n_trials == 3 and ds.n_time == 61 and ds.dt_ms == 1.0
    assert ds.inputs.shape == (3, 61, 0) and ds.output_names == ("soma_v",)
    syn = ds.field("synapses")
    assert syn.spec.kind == "events" and syn.spec.channels == (
        "exc_0000", "exc_0001", "exc_0002", "exc_0003",
        "inh_0000", "inh_0001", "inh_0002", "inh_0003")
    spikes = ds.field("spikes").values
    assert spikes.shape == (3, 61, 1) and set(np.unique(spikes)) <= {0.0, 1.0}
    raw = ds.field("soma_v_raw").values
    np.testing.assert_array_equal(ds.outputs, np.minimum(raw, -55.0))
    assert raw[:, 0, 0] == pytest.approx(ds.provenance["cell"]["rest_soma_v_mv"], abs=0.01)
    assert ds.families == ("nmda",) * 3
    params = json.loads(ds.stimulus_params[0])
    assert 150 <= params["mean_rate_hz"]["excitatory"] <= 250
    prov = ds.provenance
    assert prov["n_exc_synapses"] == 4 and len(prov["morphology_sha256"]) == 64
    assert set(prov["mechanisms_sha256"]) >= {"NaTa_t.mod", "AmpaNmda.mod", "GabaA.mod"}
    assert prov["neuron_cost_trials"] == 3 and prov["neuron_s_per_simulated_s"] > 0
    assert prov["neuron_cpu_s_per_simulated_s"] > 0
    # excitation depolarises the soma above rest
    assert raw.max() > prov["cell"]["rest_soma_v_mv"] + 0.5
    assert not any(p.name.startswith(".l5pc") for p in tmp_path.iterdir())  # chunks removed
    # the rest of the command line: ELM with --memory-units, evaluate, report
    run = tmp_path / "elm3"
    result = CliRunner().invoke(app, [
        "train", str(out), "--model", "elm", "--memory-units", "3", "--seeds", "2",
        "--epochs", "2", "--batch-size", "2", "--objective", "spikes=bce:5",
        "--objective", "outputs=mse", "--target", "spikes", "--target", "outputs",
        "--train-option", "optimizer=adamw",
        "--train-option", "weight_decay=0.01", "--train-option", "betas=[0.9,0.99]",
        "--train-option", "schedule=cosine", "--train-option", "min_learning_rate=1e-5",
        "-o", str(run)])
    assert result.exit_code == 0, result.output
    assert "trained ELM-3 x 2 seeds" in result.output
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["hidden"] == 3 and config["train"]["betas"] == [0.9, 0.99]
    for command in ("evaluate", "report"):
        result = CliRunner().invoke(app, [command, str(run)])
        assert result.exit_code == 0, result.output
    results = json.loads((run / "results.json").read_text())
    assert "roc_auc" in json.dumps(results) and "explained_variance" in json.dumps(results)
    assert (run / "report" / "figures" / "spikes_raster.png").is_file()
    refused = CliRunner().invoke(app, ["train", str(out), "--model", "gru",
                                       "--memory-units", "3", "-o", str(tmp_path / "g")])
    assert refused.exit_code != 0 and "use --hidden" in refused.output
    refused = CliRunner().invoke(app, ["train", str(out), "--model", "elm", "--hidden", "4",
                                       "--memory-units", "3", "-o", str(tmp_path / "e")])
    assert refused.exit_code != 0 and "disagree" in refused.output


def test_resume_after_interrupt_equals_serial(morphology, tmp_path, monkeypatch):
    from neuroreduce.datasets.io import load_dataset
    from neuroreduce.simulators.l5pc.generate import STOP_AFTER_ENV, chunk_folder, generate

    spec = _tiny(morphology)
    out = tmp_path / "resumed.h5"
    monkeypatch.setenv(STOP_AFTER_ENV, "2")
    with pytest.raises(SimulationError, match="stopped after 2 trials"):
        generate(spec, 3, out=out, progress=False)
    assert not out.exists()  # nothing half-written
    assert len(list(chunk_folder(spec, out).glob("trial_*.npz"))) == 2
    monkeypatch.delenv(STOP_AFTER_ENV)
    resumed = generate(spec, 3, out=out, progress=False)
    assert resumed.provenance["trials_simulated"] == 1  # only the missing trial
    serial = generate(spec, 3, out=tmp_path / "serial.h5", progress=False)
    assert serial.provenance["trials_simulated"] == 3
    np.testing.assert_array_equal(resumed.outputs, serial.outputs)
    np.testing.assert_array_equal(load_dataset(out).outputs, serial.outputs)
    # a different seed is a different spec: nothing reused
    assert chunk_folder(dataclasses.replace(spec, seed=1), out) != chunk_folder(spec, out)


def test_ampa_only_variant_differs(morphology):
    from neuroreduce.simulators.l5pc.generate import generate

    nmda = generate(_tiny(morphology, keep_raw=True), 1, progress=False)
    # the same conductance per event (not the calibrated AMPA-only one): NMDA adds to it
    ampa = generate(_tiny(morphology, keep_raw=True, nmda=False, exc_gmax_ns=0.4), 1,
                    progress=False)
    assert (nmda.families, ampa.families) == (("nmda",), ("ampa_only",))
    assert nmda.stimulus_params == ampa.stimulus_params  # the same events
    v_nmda, v_ampa = nmda.field("soma_v_raw").values, ampa.field("soma_v_raw").values
    assert v_nmda[0, 30:, 0].mean() > v_ampa[0, 30:, 0].mean() + 0.1  # NMDA adds slow current


# ----------------------------------------------------------------------------- slow
@pytest.mark.slow
def test_generation_killed_with_sigkill_resumes_and_equals_serial(morphology, tmp_path):
    """A real kill: the CLI process is SIGKILLed after some trials were written; the rerun
    simulates only the missing trials, and the dataset equals an uninterrupted serial run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from neuroreduce.datasets.io import load_dataset
    from neuroreduce.simulators.l5pc.generate import chunk_folder, generate

    spec = _tiny(morphology, duration_ms=200.0)
    out = tmp_path / "killed.h5"
    args = [sys.executable, "-m", "neuroreduce.cli", "simulate", "l5pc", "--trials", "40",
            "--duration-ms", "200", "--dt", "0.1", "-o", str(out),
            "--option", f"morphology={morphology}", "--option", "max_channels=4",
            "--option", "exc_rate_range_hz=[150,250]", "--option", "inh_rate_range_hz=[20,40]"]
    folder = chunk_folder(spec, out)
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list(folder.glob("trial_*.npz"))) >= 3:
            break
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.skip("generation finished before it could be killed (machine too fast)")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    done = len(list(folder.glob("trial_*.npz")))
    assert 3 <= done < 40 and not out.exists()  # killed mid-way: nothing half-written
    for chunk in folder.glob("trial_*.npz"):  # written atomically: none is truncated
        with np.load(chunk, allow_pickle=False) as data:
            assert data["soma_v"].size > 0
    resumed = generate(spec, 40, out=out, progress=False)
    assert resumed.provenance["trials_simulated"] == 40 - done
    serial = generate(spec, 40, out=tmp_path / "serial.h5", progress=False)
    np.testing.assert_array_equal(load_dataset(out).outputs, serial.outputs)
    np.testing.assert_array_equal(resumed.field("spikes").values, serial.field("spikes").values)


@pytest.mark.slow
def test_two_workers_equal_serial(morphology, tmp_path):
    from neuroreduce.execution import Backend
    from neuroreduce.simulators.l5pc.generate import generate

    spec = _tiny(morphology)
    par = generate(spec, 3, out=tmp_path / "p.h5", backend=Backend(workers=2), progress=False)
    ser = generate(spec, 3, out=tmp_path / "s.h5", progress=False)
    np.testing.assert_array_equal(par.outputs, ser.outputs)
    assert par.provenance["trials_simulated"] == 3


@pytest.mark.slow
def test_reference_checks_with_wrong_control(morphology):
    """Rin, bAP and BAC firing against Hay 2011; without the Ca hot zone the Ca spike goes."""
    from neuroreduce.simulators.l5pc import checks

    control = checks.make_runner(str(morphology), hot_zone_um=None)
    ctrl = checks.bac_firing(control)
    control.close()
    runner = checks.make_runner(str(morphology))
    rin = checks.input_resistance(runner)
    assert rin.passed, rin
    bap = checks.bap_amplitude(runner)
    assert bap[0].passed, bap[0]  # 620 um
    assert bap[0].value > bap[1].value > 5.0  # attenuates along the trunk
    full = checks.bac_firing(runner)
    ca, _, gone = checks.bac_checks(full, ctrl)
    assert ca.passed and gone.passed, (ca, gone)
    assert not checks.bac_checks(ctrl, ctrl)[0].passed  # the check fails on the wrong cell
    runner.close()


@pytest.mark.slow
def test_fi_curve(morphology):
    """Firing rises with the step amplitude; each rate within 3 SD of the Hay 2011 target."""
    from neuroreduce.simulators.l5pc import checks

    runner = checks.make_runner(str(morphology))
    fi = checks.fi_curve(runner)
    runner.close()
    rates = [r.value for r in fi]
    assert rates == sorted(rates) and rates[0] > 0
    assert all(r.passed for r in fi), fi


@pytest.mark.slow
def test_l5pc_and_c302_in_one_process_leave_each_other_unchanged(morphology, tmp_path):
    """c302 sets process-wide NEURON values (cai0_ca_ion = 0) when it loads; the L5PC cell
    re-applies its own (temperature, initial Ca) before every run, so an L5PC run in a process
    that holds the c302 network equals one in a fresh worker (without set_globals its rest
    moved by ~0.03 mV), and the c302 network's results stay as they were."""
    from neuroreduce.execution import Backend
    from neuroreduce.simulators.celegans import CelegansConfig, CelegansSimulator
    from neuroreduce.simulators.l5pc.generate import generate

    worm = CelegansSimulator(CelegansConfig(scenario="fcm-50ms-test"))
    worm.prepare()
    step = np.zeros((1, 101, 4))
    step[0, 20:] = (0.002, 0.002, 0.0, 0.0)
    before = worm.run(step, dt_out_ms=0.5)
    spec = _tiny(morphology)
    serial = generate(spec, 2, out=tmp_path / "s.h5", progress=False)  # after c302 loaded
    fresh = generate(spec, 2, out=tmp_path / "p.h5", backend=Backend(workers=2), progress=False)
    np.testing.assert_array_equal(serial.outputs, fresh.outputs)
    np.testing.assert_array_equal(worm.run(step, dt_out_ms=0.5), before)
