"""Memory estimates made before any large allocation, and the limit they are checked against.

A command whose arrays would not fit in memory must say so in one line, before it allocates
(not crash with ``MemoryError``, be killed by the kernel, or run for minutes first). Each
estimate is deliberately simple, an upper-end guess in bytes of float32 data:

* **simulate**: ``stimuli x samples x channels x 4 bytes x 3`` (stimulus currents, simulated
  outputs, and the copy written to the file);
* **loading a dataset**: the declared size of every array in the HDF5 file (``shape x item
  size``, read before any data: a small compressed file that declares a huge shape is refused)
  ``x 2`` (the arrays as read and their float32/normalised copies);
* **training**: the ensemble's parameters ``x 4 bytes x 5`` (weights, gradients, Adam's two
  moments, the best-epoch copy; counted on a model built on torch's ``meta`` device, so the
  RNN families' block-diagonal packing, quadratic in members, is included) plus minibatch
  activations kept for back-propagation:
  ``members x batch x samples x (8 x hidden x layers + channels) x 4 bytes``.

The limit is :data:`AVAILABLE_FRACTION` of the memory available now (``MemAvailable`` of
``/proc/meminfo``, or ``psutil`` where installed); the environment variable
``NEUROREDUCE_MEMORY_LIMIT_GB`` sets it instead (e.g. ``NEUROREDUCE_MEMORY_LIMIT_GB=64``). Where
neither is known no check is made.
"""

from __future__ import annotations

import math
import os
from typing import Any

from neuroreduce.errors import ConfigError, NeuroreduceError

#: Environment variable that sets the memory limit in GB (10^9 bytes).
LIMIT_ENV = "NEUROREDUCE_MEMORY_LIMIT_GB"
#: Part of the available memory an estimate may use.
AVAILABLE_FRACTION = 0.8
#: Copies of the trial arrays a simulation holds at once (stimuli, outputs, file write).
SIMULATION_COPIES = 3
#: Copies of a dataset's arrays while loading (as read, converted/normalised).
LOAD_COPIES = 2
#: Floats per parameter while training: weights, gradients, Adam's two moments, best copy.
PARAMETER_COPIES = 5
#: Floats kept per hidden unit, layer and time step for back-propagation (gates and states).
ACTIVATIONS_PER_UNIT = 8
FLOAT_BYTES = 4


def available_bytes() -> int | None:
    """Memory available to new allocations now (bytes), or ``None`` where unknown."""
    try:
        import psutil  # optional: not a dependency

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - not installed or not supported: try /proc
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def memory_limit() -> tuple[int | None, str]:
    """The limit in bytes (``None``: no check) and how it was set, for messages.

    Raises:
        ConfigError: if ``NEUROREDUCE_MEMORY_LIMIT_GB`` is not a number > 0.
    """
    text = os.environ.get(LIMIT_ENV, "").strip()
    if text:
        try:
            gb = float(text)
        except ValueError:
            gb = math.nan
        if not (math.isfinite(gb) and gb > 0):
            raise ConfigError(f"{LIMIT_ENV} must be a number of GB > 0, got {text!r}")
        return int(gb * 1e9), f"{format_bytes(int(gb * 1e9))} ({LIMIT_ENV})"
    available = available_bytes()
    if available is None:
        return None, "unknown"
    limit = int(available * AVAILABLE_FRACTION)
    return limit, (f"{format_bytes(limit)} ({AVAILABLE_FRACTION:.0%} of the "
                   f"{format_bytes(available)} available)")


def format_bytes(n: float) -> str:
    """``n`` bytes as a short text in GB/MB/kB (powers of 10)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"


def check_memory(
    nbytes: float, *, what: str, how: str, fix: str,
    error: type[NeuroreduceError] = ConfigError,
) -> None:
    """Refuse (one line) when the estimate ``nbytes`` is over the limit.

    Args:
        nbytes: The estimate (bytes).
        what: What would need it, e.g. ``"simulate"``.
        how: How it was estimated (the sizes that were multiplied).
        fix: What the user can make smaller.
        error: The error type to raise.
    """
    limit, described = memory_limit()
    if limit is None or nbytes <= limit:
        return
    raise error(f"{what} would need about {format_bytes(nbytes)} of memory ({how}), over the "
                f"limit of {described}; {fix}, or set {LIMIT_ENV} to change the limit")


def check_simulation(*, n_stimuli: int, n_time: float, n_channels: int) -> None:
    """Refuse a simulation whose trial arrays would not fit (see the module docstring)."""
    nbytes = float(n_stimuli) * n_time * n_channels * FLOAT_BYTES * SIMULATION_COPIES
    check_memory(
        nbytes, what="simulate",
        how=(f"{n_stimuli} stimuli x {n_time:.0f} samples x {n_channels} channels x "
             f"{FLOAT_BYTES} bytes x {SIMULATION_COPIES} copies"),
        fix="use fewer --stimuli or a larger --dt-out",
    )


def hdf5_bytes(group: Any) -> int:
    """Declared size (bytes) of every array under an open HDF5 file or group, read from the
    shapes and types only (no data is read)."""
    import h5py

    total = 0
    for item in group.values():
        if isinstance(item, h5py.Dataset):
            total += int(math.prod(item.shape or ())) * item.dtype.itemsize
        elif isinstance(item, h5py.Group):
            total += hdf5_bytes(item)
    return total


def check_dataset_file(group: Any, path: Any) -> None:
    """Refuse loading the HDF5 dataset ``group`` (the open file at ``path``) into memory when
    its declared arrays would not fit."""
    from neuroreduce.errors import DatasetError

    declared = hdf5_bytes(group)
    try:
        memory_limit()
    except ConfigError as exc:  # a bad NEUROREDUCE_MEMORY_LIMIT_GB, not a bad file
        raise DatasetError(str(exc)) from None
    check_memory(
        declared * LOAD_COPIES, what=f"loading {path}",
        how=f"its arrays declare {format_bytes(declared)} x {LOAD_COPIES} copies",
        fix="train with --stream to read it minibatch by minibatch, or use a smaller dataset",
        error=DatasetError,
    )


def training_bytes(
    *, n_parameters: int, members: int, batch: int, n_time: int, hidden: int, layers: int,
    n_channels: int,
) -> tuple[float, str]:
    """The training estimate (bytes) and its formula in words (see the module docstring)."""
    params = float(n_parameters) * FLOAT_BYTES * PARAMETER_COPIES
    per_step = ACTIVATIONS_PER_UNIT * hidden * layers + n_channels
    acts = float(members) * batch * n_time * per_step * FLOAT_BYTES
    how = (f"{n_parameters} parameters of {members} members x {PARAMETER_COPIES} copies + "
           f"activations of {members} members x {batch} trials x {n_time} samples x "
           f"{per_step} values, {FLOAT_BYTES} bytes each")
    return params + acts, how


def check_training(
    config: Any, *, n_inputs: int, n_outputs: int, n_train: int, n_time: int, dt_ms: float,
) -> None:
    """Refuse a training run (a :class:`~neuroreduce.training.config.TrainConfig` on a dataset
    of these sizes) whose parameters and activations would not fit."""
    window = config.window_ms
    steps = n_time if window is None else min(n_time, int(round(window / dt_ms)) + 1)
    steps += config.warmup_steps(dt_ms)
    options = dict(config.model_options)
    layers = options.get("layers", 1)
    layers = layers if isinstance(layers, int) and not isinstance(layers, bool) else 1
    nbytes, how = training_bytes(
        n_parameters=count_parameters(config, n_inputs=n_inputs, n_outputs=n_outputs),
        members=config.n_members, batch=max(1, min(config.batch_size, n_train)),
        n_time=steps, hidden=config.hidden, layers=max(1, layers),
        n_channels=n_inputs + n_outputs,
    )
    check_memory(nbytes, what="training", how=how,
                 fix="use a smaller --hidden, fewer --seeds or a smaller --batch-size")


def count_parameters(config: Any, *, n_inputs: int, n_outputs: int) -> int:
    """Parameters of the whole ensemble, counted on models built on torch's ``meta`` device (no
    memory) with one and two members and extrapolated to ``config.n_members`` as ``a k^2 + b k``
    (the RNN families pack members block-diagonally: quadratic in members); a family that
    cannot be built there is estimated as packed gated RNNs."""
    import torch

    from neuroreduce.models.registry import build_ensemble

    def built(k: int) -> int:
        with torch.device("meta"):
            ens = build_ensemble(config.model, seeds=range(k), n_inputs=n_inputs,
                                 n_outputs=n_outputs, hidden=config.hidden, engine="packed",
                                 options=dict(config.model_options))
        return sum(int(p.numel()) for p in ens.parameters())

    k = config.n_members
    try:
        one, two = built(1), built(2)
    except Exception:  # noqa: BLE001 - an estimate only: fall back to a formula
        h = k * config.hidden
        return 4 * h * (h + k * n_inputs + 2) + h * k * n_outputs
    quadratic = max(0, two - 2 * one) / 2
    return int(quadratic * k * k + (one - quadratic) * k)


def check_seed_count(n_seeds: int) -> None:
    """Refuse a seed count whose list alone would not fit, before it is built (the training
    estimate, made once the dataset is known, checks the rest)."""
    check_memory(float(n_seeds) * 100, what=f"{n_seeds} seeds",
                 how="about 100 bytes per seed for the list of seeds alone",
                 fix="use fewer --seeds")
