"""Step API, deployable surrogates and TorchScript/ONNX export give the outputs of predict()."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from neuroreduce.datasets.dataset import Dataset
from neuroreduce.errors import CheckpointError, ConfigError
from neuroreduce.export import deployable, export_onnx, export_torchscript, sidecar_path
from neuroreduce.models import RecurrentSurrogate
from neuroreduce.training import TrainConfig, load_run, predict, train


def _dataset(seed: int = 0) -> Dataset:
    """3 inputs (nA, around 0.5) -> 2 outputs (mV, around -60): a leaky mix, 12 trials x 40."""
    rng = np.random.default_rng(seed)
    u = (0.5 + 0.2 * rng.normal(size=(12, 40, 3))).astype(np.float32)
    y = np.zeros((12, 40, 2))
    for t in range(1, 40):
        y[:, t] = 0.8 * y[:, t - 1] + u[:, t, :2] - 0.3 * u[:, t, 2:]
    split = np.array([0] * 8 + [1] * 2 + [2] * 2)
    return Dataset(u, (y - 60).astype(np.float32), 0.5, ("a", "b", "c"), ("p", "q"), split=split)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    ds = _dataset()
    for cell in ("gru", "lstm"):
        cfg = TrainConfig(model=cell, hidden=5, seeds=(0, 1), epochs=2, batch_size=4)
        out[cell] = tmp_path_factory.mktemp(cell) / "run"
        train(ds, cfg, out[cell], progress=False)
    return out


def _inputs() -> np.ndarray:
    return (0.5 + 0.2 * np.random.default_rng(7).normal(size=(3, 25, 3))).astype(np.float32)


def _close(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------ step API
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_stepping_equals_forward(cell: str) -> None:
    model = RecurrentSurrogate(cell, 3, 2, 6).eval()
    x = torch.randn(4, 30, 3)
    state = model.init(4)
    if cell == "lstm":
        assert isinstance(state, tuple) and [s.shape for s in state] == [(4, 6), (4, 6)]
    else:
        assert isinstance(state, torch.Tensor) and state.shape == (4, 6)
    ys = []
    with torch.no_grad():
        for t in range(30):
            y, state = model.step(x[:, t], state)
            ys.append(y)
        whole = model(x)
    assert ys[0].shape == (4, 2)
    torch.testing.assert_close(torch.stack(ys, dim=1), whole, rtol=0, atol=1e-6)


def test_step_rejects_bad_shapes() -> None:
    model = RecurrentSurrogate("lstm", 3, 2, 6)
    with pytest.raises(ConfigError, match=r"\[batch, 3\]"):
        model.step(torch.zeros(4, 5), model.init(4))
    with pytest.raises(ConfigError, match="init"):
        model.step(torch.zeros(4, 3), torch.zeros(4, 6))
    with pytest.raises(ConfigError, match="positive"):
        model.init(0)


# ------------------------------------------------------------------------------ deployable
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_deployable_in_physical_units_equals_predict(runs: dict[str, Path], cell: str) -> None:
    run = load_run(runs[cell])
    x = _inputs()
    expected = predict(run, x)
    for member in (0, 1):
        dep = deployable(run, member)
        with torch.no_grad():
            y = dep(torch.from_numpy(x)).numpy()
            state, steps = dep.init(3), []
            for t in range(x.shape[1]):
                yt, state = dep.step(torch.from_numpy(x[:, t]), state)
                steps.append(yt.numpy())
        _close(y, expected[member])
        _close(np.stack(steps, axis=1), expected[member])
    assert not np.allclose(expected[0], expected[1])  # members differ: the index matters


# ------------------------------------------------------------------------------ exports
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_torchscript_export_equals_predict(
    runs: dict[str, Path], cell: str, tmp_path: Path
) -> None:
    path = export_torchscript(runs[cell], tmp_path / "m.pt", member=1)
    loaded = torch.jit.load(str(path))
    x = _inputs()
    expected = predict(load_run(runs[cell]), x)[1]
    with torch.no_grad():
        _close(loaded(torch.from_numpy(x)).numpy(), expected)
        state, steps = loaded.init(3), []
        for t in range(x.shape[1]):
            yt, state = loaded.step(torch.from_numpy(x[:, t]), state)
            steps.append(yt.numpy())
    _close(np.stack(steps, axis=1), expected)
    meta = json.loads(sidecar_path(path).read_text())
    assert meta["member"] == 1 and meta["seed"] == 1 and meta["dt_ms"] == 0.5
    assert meta["input_names"] == ["a", "b", "c"] and meta["output_units"] == "mV"
    files = {"neuroreduce.json": ""}
    torch.jit.load(str(path), _extra_files=files)
    assert json.loads(files["neuroreduce.json"])["model"]["name"] == cell


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("mode", ["sequence", "step"])
def test_onnx_export_equals_predict(
    runs: dict[str, Path], cell: str, mode: str, tmp_path: Path
) -> None:
    import onnx
    import onnxruntime as ort

    path = export_onnx(runs[cell], tmp_path / "m.onnx", member=0, mode=mode)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = _inputs()
    expected = predict(load_run(runs[cell]), x)[0]
    names = [i.name for i in session.get_inputs()]
    if mode == "sequence":
        assert names == ["x"]
        _close(session.run(["y"], {"x": x})[0], expected)
        _close(session.run(["y"], {"x": x[:1, :7]})[0], expected[:1, :7])  # dynamic axes
    else:
        states = ["h", "c"] if cell == "lstm" else ["h"]
        assert names == ["x", *states]
        feed = {s: np.zeros((3, 5), np.float32) for s in states}
        steps = []
        for t in range(x.shape[1]):
            y, *new = session.run(None, {"x": x[:, t], **feed})
            feed = dict(zip(states, new, strict=True))
            steps.append(y)
        _close(np.stack(steps, axis=1), expected)
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    meta = json.loads(props["neuroreduce"])
    assert meta == json.loads(sidecar_path(path).read_text())
    assert meta["mode"] == mode and meta["output_names"] == ["p", "q"]


def test_export_errors(runs: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="member 2 does not exist"):
        export_onnx(runs["gru"], tmp_path / "m.onnx", member=2)
    with pytest.raises(ConfigError, match="member -1"):
        export_torchscript(runs["gru"], tmp_path / "m.pt", member=-1)
    with pytest.raises(ConfigError, match="mode"):
        export_onnx(runs["gru"], tmp_path / "m.onnx", mode="batch")
    with pytest.raises(CheckpointError, match="does not exist"):
        export_torchscript(tmp_path / "nothing", tmp_path / "m.pt")
    assert not list(tmp_path.glob("m.*"))  # nothing written on failure


def test_cli_export(runs: dict[str, Path], tmp_path: Path) -> None:
    from neuroreduce.cli import app

    cli = CliRunner()
    target = tmp_path / "step.onnx"
    res = cli.invoke(
        app,
        [
            "export",
            str(runs["lstm"]),
            "-o",
            str(target),
            "--format",
            "onnx",
            "--mode",
            "step",
            "--member",
            "1",
        ],
    )
    assert res.exit_code == 0, res.output
    assert target.is_file() and json.loads(sidecar_path(target).read_text())["member"] == 1
    res = cli.invoke(
        app,
        [
            "export",
            str(runs["lstm"]),
            "-o",
            str(tmp_path / "x.pt"),
            "--format",
            "torchscript",
            "--member",
            "5",
        ],
    )
    assert res.exit_code == 2 and "member 5 does not exist" in res.output
    res = cli.invoke(
        app, ["export", str(runs["lstm"]), "-o", str(tmp_path / "x.pt"), "--format", "tflite"]
    )
    assert res.exit_code == 2 and "tflite" in res.output
