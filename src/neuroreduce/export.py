"""Export one member of a trained run for use outside neuroreduce: TorchScript or ONNX.

The exported model works in physical units (inputs in the training input units, e.g. nA;
outputs in the output units, e.g. mV): the normalisation is part of the graph. Next to every
exported file ``F`` a ``F.json`` describes it (input/output channel names and units, ``dt_ms``,
tensor names and shapes, cell and sizes, source run); the same JSON is stored inside the file
(TorchScript: extra file ``neuroreduce.json``; ONNX: metadata property ``neuroreduce``).

ONNX modes:

- ``"sequence"``: ``y = f(x)``, ``x [batch, time, n_inputs]`` -> ``y [batch, time, n_outputs]``
  from the zero state (batch and time are dynamic axes).
- ``"step"``: one time step with the state passed in and out, for a host simulator calling the
  surrogate every ``dt_ms``: inputs ``x [batch, n_inputs]``, ``h [batch, hidden]`` (and ``c``
  for LSTM), outputs ``y [batch, n_outputs]``, ``h_out`` (and ``c_out``). Start from zeros.

The TorchScript module has ``forward(x)``, ``init(batch)`` and ``step(x, state)`` (see
:mod:`neuroreduce.models.deploy`).
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch

import neuroreduce
from neuroreduce._io import (
    atomic_path,
    check_not_input,
    check_output_target,
    json_default,
    write_bytes_atomic,
    write_json_atomic,
)
from neuroreduce.errors import ConfigError
from neuroreduce.models.deploy import DeployedSurrogate, StepGraph, deploy_model
from neuroreduce.training.runs import TrainedRun, load_run

#: Export formats and ONNX modes accepted by :func:`export`.
FORMATS: tuple[str, ...] = ("onnx", "torchscript")
MODES: tuple[str, ...] = ("sequence", "step")
METADATA_KEY = "neuroreduce"
_ONNX_OPSET = 17


def _as_run(run: TrainedRun | str | Path) -> TrainedRun:
    """The loaded run, if export supports it (one-line ``ConfigError`` otherwise)."""
    run = run if isinstance(run, TrainedRun) else load_run(run)
    if run.io.layout is not None:
        fields = ", ".join(h.field for h in run.io.layout.heads)
        raise ConfigError(
            f"{run.run_dir} predicts typed fields ({fields}); export covers dense inputs -> "
            "continuous outputs so far; use neuroreduce.training.predict_fields in Python"
        )
    if run.config.warmup_ms is not None:
        raise ConfigError(
            f"{run.run_dir} was trained with a {run.config.warmup_ms:g} ms rest warm-up, which an "
            "exported member would not run; export a run trained without warmup_ms"
        )
    return run


def _check_member(run: TrainedRun, member: int) -> int:
    n = run.n_members
    if isinstance(member, bool) or not isinstance(member, int) or not 0 <= member < n:
        raise ConfigError(
            f"member {member!r} does not exist; {run.run_dir} has {n} member(s), 0..{n - 1}"
        )
    return member


def deployable(run: TrainedRun | str | Path, member: int = 0) -> DeployedSurrogate:
    """Member ``member`` of a trained run as a module in physical units (eval mode, CPU).

    Args:
        run: A loaded run or its folder.
        member: Ensemble member (0-based; member ``k`` was trained with seed ``seeds[k]``).

    Returns:
        A :class:`~neuroreduce.models.deploy.DeployedSurrogate` with ``forward``, ``init`` and
        ``step`` taking inputs in nA and returning mV (the run's units).

    Raises:
        CheckpointError: if the run folder is missing or broken.
        ConfigError: if ``member`` is not a member of the run.
    """
    run = _as_run(run)
    k = _check_member(run, member)
    norm = run.normalization
    return deploy_model(
        run.member(k),
        input_mean=norm.input_mean,
        input_std=norm.input_std,
        output_mean=norm.output_mean,
        output_std=norm.output_std,
    )


def metadata(run: TrainedRun, member: int, *, fmt: str, mode: str) -> dict[str, Any]:
    """What an exported file holds and how to call it (JSON-able)."""
    spec, lstm = run.spec, run.spec.name == "lstm"
    if mode == "sequence":
        inputs = {"x": ["batch", "time", spec.n_inputs]}
        outputs = {"y": ["batch", "time", spec.n_outputs]}
    else:
        states = ("h", "c") if lstm else ("h",)
        inputs = {"x": ["batch", spec.n_inputs], **{s: ["batch", spec.hidden] for s in states}}
        outputs = {
            "y": ["batch", spec.n_outputs],
            **{f"{s}_out": ["batch", spec.hidden] for s in states},
        }
    return {
        "format": "neuroreduce-surrogate",
        "file_format": fmt,
        "mode": mode,
        "inputs": inputs,
        "outputs": outputs,
        "input_names": list(run.io.input_names),
        "output_names": list(run.io.output_names),
        "input_units": run.io.input_units,
        "output_units": run.io.output_units,
        "dt_ms": run.io.dt_ms,
        "model": spec.to_dict(),
        "member": member,
        "seed": run.config.seeds[member],
        "run_dir": str(Path(run.run_dir).resolve()),
        "dataset_hash": run.dataset_hash,
        "neuroreduce_version": neuroreduce.__version__,
        "torch_version": torch.__version__,
    }


def _check_output(run: TrainedRun, path: str | Path) -> None:
    """Refuse an export (or its sidecar JSON) that would overwrite a file of the run folder."""
    for target in (Path(path), sidecar_path(path)):
        check_output_target(target)
        check_not_input(target, folders=(run.run_dir,))


def sidecar_path(path: str | Path) -> Path:
    """The metadata JSON written next to an exported file: ``<path>.json``."""
    return Path(f"{path}.json")


def export_torchscript(run: TrainedRun | str | Path, path: str | Path, *, member: int = 0) -> Path:
    """Save member ``member`` as a scripted module (``torch.jit.load`` reads it back).

    The loaded module has ``forward(x [batch, time, in])``, ``init(batch)`` and
    ``step(x [batch, in], state)``, in physical units.

    Returns:
        The path written (atomically, with ``<path>.json`` beside it).

    Raises:
        CheckpointError: if the run folder is missing or broken.
        ConfigError: if ``member`` is not a member of the run.
    """
    run = _as_run(run)
    _check_output(run, path)
    deployed = deployable(run, member)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated upstream
        module = torch.jit.script(deployed)
    meta = metadata(run, member, fmt="torchscript", mode="sequence+step")
    meta["inputs"] = {"x": ["batch", "time", run.spec.n_inputs]}
    meta["outputs"] = {"y": ["batch", "time", run.spec.n_outputs]}
    text = json.dumps(meta, indent=2, sort_keys=True, default=json_default)
    target = Path(path)
    buffer = io.BytesIO()  # serialised in memory: torch aborts the process on a full disk
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(module, buffer, _extra_files={f"{METADATA_KEY}.json": text})
    write_bytes_atomic(target, buffer.getbuffer())
    write_json_atomic(sidecar_path(target), meta)
    return target


def export_onnx(
    run: TrainedRun | str | Path,
    path: str | Path,
    *,
    member: int = 0,
    mode: str = "sequence",
) -> Path:
    """Export member ``member`` to ONNX (see the module docstring for the two modes).

    Uses the TorchScript-based ``torch.onnx.export`` (``dynamo=False``): it emits the native
    ONNX ``RNN``/``GRU``/``LSTM`` operators with dynamic batch and time axes in well under a
    second (the dynamo exporter took ~16 s here and fixed the time axis).

    Returns:
        The path written (atomically, with ``<path>.json`` beside it).

    Raises:
        CheckpointError: if the run folder is missing or broken.
        ConfigError: on an unknown ``mode`` or a member that is not in the run.
    """
    import onnx

    if mode not in MODES:
        raise ConfigError(f"unknown ONNX mode {mode!r}; use one of {', '.join(MODES)}")
    run = _as_run(run)
    _check_output(run, path)
    deployed = deployable(run, member)
    meta = metadata(run, member, fmt="onnx", mode=mode)
    names_in, names_out = list(meta["inputs"]), list(meta["outputs"])
    if mode == "sequence":
        module: torch.nn.Module = deployed
        example: tuple[torch.Tensor, ...] = (torch.zeros(2, 3, run.spec.n_inputs),)
        axes = {"x": {0: "batch", 1: "time"}, "y": {0: "batch", 1: "time"}}
    else:
        module = StepGraph(deployed)
        state = deployed.init(2)
        states = state if isinstance(state, tuple) else (state,)
        example = (torch.zeros(2, run.spec.n_inputs), *states)
        axes = {name: {0: "batch"} for name in (*names_in, *names_out)}
    target = Path(path)
    with atomic_path(target) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecation of the TorchScript-based exporter
            torch.onnx.export(
                module,
                example,
                str(tmp),
                input_names=names_in,
                output_names=names_out,
                dynamic_axes=axes,
                opset_version=_ONNX_OPSET,
                dynamo=False,
            )
        proto = onnx.load(str(tmp))
        entry = proto.metadata_props.add()
        entry.key = METADATA_KEY
        entry.value = json.dumps(meta, sort_keys=True, default=json_default)
        onnx.save(proto, str(tmp))
    write_json_atomic(sidecar_path(target), meta)
    return target


def export_ensemble_torchscript(run: TrainedRun | str | Path, path: str | Path) -> Path:
    """Save the whole ensemble as one scripted module returning (mean, spread).

    The loaded module has ``forward(x) -> (mean, spread)``, ``init(batch)`` and
    ``step(x, state) -> (mean, spread, state)`` in physical units (see
    :mod:`neuroreduce.trust.deployed_ensemble`); the metadata carries the run's calibration
    scale (``calibration.json``) when ``neuroreduce evaluate`` has written one, so
    ``mean +- scale * max(spread, floor)`` is the calibrated interval.

    Returns:
        The path written (atomically, with ``<path>.json`` beside it).
    """
    from neuroreduce.trust.deployed_ensemble import deployed_ensemble
    from neuroreduce.trust.predict import read_calibration

    run = _as_run(run)
    _check_output(run, path)
    module_py = deployed_ensemble(run)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.script(module_py)
    meta = metadata(run, 0, fmt="torchscript", mode="ensemble sequence+step")
    meta.pop("member")
    meta.pop("seed")
    meta["members"] = run.n_members
    meta["seeds"] = list(run.config.seeds)
    meta["inputs"] = {"x": ["batch", "time", run.spec.n_inputs]}
    meta["outputs"] = {"mean": ["batch", "time", run.spec.n_outputs],
                       "spread": ["batch", "time", run.spec.n_outputs]}
    calibration = read_calibration(run.run_dir)
    meta["calibration"] = None if calibration is None else calibration.to_dict()
    text = json.dumps(meta, indent=2, sort_keys=True, default=json_default)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(module, buffer, _extra_files={f"{METADATA_KEY}.json": text})
    target = Path(path)
    write_bytes_atomic(target, buffer.getbuffer())
    write_json_atomic(sidecar_path(target), meta)
    return target


def export(
    run: TrainedRun | str | Path,
    path: str | Path,
    *,
    fmt: str = "onnx",
    member: int = 0,
    mode: str = "sequence",
    ensemble: bool = False,
) -> Path:
    """Export in ``fmt`` (``"onnx"`` or ``"torchscript"``); ``mode`` applies to ONNX only;
    ``ensemble`` exports every member as one TorchScript module returning (mean, spread).

    Raises:
        ConfigError: on an unknown format or mode, or a member not in the run.
        CheckpointError: if the run folder is missing or broken.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    if ensemble:
        if fmt != "torchscript":
            raise ConfigError("--ensemble exports TorchScript (mean and spread of every member); "
                              "add --format torchscript, or export one member to ONNX")
        return export_ensemble_torchscript(run, path)
    if fmt == "torchscript":
        return export_torchscript(run, path, member=member)
    return export_onnx(run, path, member=member, mode=mode)
