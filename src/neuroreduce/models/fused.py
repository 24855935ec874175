"""A compiled whole-sequence recurrence for K small independent RNN/LSTM/GRU cells (CPU).

PyTorch has no fused CPU kernel for the GRU, and its per-step autograd graph dominates the cost
of the small models of the paper. Here the recurrence of all K members runs as one C++ loop
(``csrc/fused_rnn_kernels.h``, bound in ``csrc/fused_rnn.cpp``) wrapped in a
:class:`torch.autograd.Function`. Each member's sequences run in blocks of 8 lanes (one AVX
vector), so every step is a few dozen vector operations whatever the hidden size. The input
projection (for few inputs; many inputs are projected by one PyTorch matmul first), the
recurrence and the linear read-out run in the same loop, backward accumulates the gradients of
all weights in the same way, and the activations saved for backward live in recycled buffers.
Formulas and gate order are PyTorch's, so results equal ``nn.GRU``/``nn.LSTM``/``nn.RNN`` to float
rounding.

The extension is compiled on first use with :func:`torch.utils.cpp_extension.load` into the
torch extensions folder (``$TORCH_EXTENSIONS_DIR`` or ``~/.cache/torch_extensions``), under a
name keyed by the source, the compiler flags and the torch version, so later processes only
load it. Building is serialised across threads (a lock) and processes (a file lock, which also
clears a lock file left behind by a build that was killed). If it cannot be built (no compiler,
no ninja, a compile error) :func:`load_kernels` says why and callers fall back to the pure
PyTorch packed path.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import sys
import threading
import time
import warnings
import weakref
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from neuroreduce.errors import ConfigError, DependencyError

#: Engines of :class:`~neuroreduce.models.ensemble.SurrogateEnsemble`: ``"fused"`` (compiled
#: recurrence), ``"packed"`` (one block-diagonal PyTorch layer, always available, also used on
#: GPUs), ``"auto"`` (fused where it builds, otherwise packed with one warning).
ENGINES: tuple[str, ...] = ("auto", "fused", "packed")

_CSRC = Path(__file__).parent / "csrc"
#: The C++ sources: the torch bindings and the torch-free kernels they include.
SOURCES: tuple[Path, ...] = (_CSRC / "fused_rnn.cpp", _CSRC / "fused_rnn_kernels.h")
_BUILD_TIMEOUT_S = 900.0

_lock = threading.Lock()
_kernels: ModuleType | None = None
_failure: str | None = None
_warned = False
#: Seconds the last call of :func:`load_kernels` spent compiling/loading (``None``: not yet).
last_load_seconds: float | None = None


def check_engine(engine: str) -> str:
    """Return ``engine`` if it is one of :data:`ENGINES`.

    Raises:
        ConfigError: for any other value, naming the allowed ones.
    """
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    return engine


def compile_flags() -> list[str]:
    """C++ flags: ``-O3``, plus AVX2/FMA where this CPU has them (the build name records them)."""
    flags = ["-O3"]
    if platform.machine() in ("x86_64", "AMD64"):
        try:
            cpu = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            cpu = ""
        words = set(cpu.split())
        if {"avx2", "fma"} <= words:
            flags += ["-mavx2", "-mfma"]
    return flags


def build_name(flags: list[str]) -> str:
    """Extension name keyed by the C++ source, the flags and the torch version."""
    digest = hashlib.sha256()
    for source in SOURCES:
        digest.update(source.read_bytes())
    digest.update(" ".join(flags).encode())
    digest.update(torch.__version__.encode())
    return f"neuroreduce_fused_rnn_{digest.hexdigest()[:12]}"


def _build() -> ModuleType:
    """Compile (or load the cached build of) the extension; raises on any failure."""
    from filelock import FileLock
    from torch.utils import cpp_extension

    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        raise RuntimeError(f"no C++ compiler ({compiler!r}) on PATH")
    cpp_extension.verify_ninja_availability()
    flags = compile_flags()
    name = build_name(flags)
    build_dir = Path(cpp_extension._get_build_directory(name, verbose=False))
    build_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(build_dir.parent / f"{name}.lock"), timeout=_BUILD_TIMEOUT_S):
        stale = build_dir / "lock"  # torch's own baton; only we build this name, so it is stale
        if stale.exists():
            stale.unlink()
        if not (build_dir / f"{name}.so").exists():
            sys.stderr.write(
                "neuroreduce: compiling the fused recurrence once (about a minute) in "
                f"{build_dir}\n"
            )
        return cpp_extension.load(
            name,
            sources=[str(SOURCES[0])],
            extra_cflags=flags,
            extra_include_paths=[str(_CSRC)],
            build_directory=str(build_dir),
            verbose=False,
        )


def load_kernels(*, required: bool = False) -> ModuleType | None:
    """The compiled extension, building it on first use (thread- and process-safe).

    Args:
        required: Raise instead of returning ``None`` when the extension cannot be built.

    Returns:
        The extension module, or ``None`` if it cannot be built (the reason is remembered, see
        :func:`failure_reason`; later calls do not retry).

    Raises:
        DependencyError: if ``required`` and the build failed.
    """
    global _kernels, _failure, last_load_seconds
    with _lock:
        if _kernels is None and _failure is None:
            start = time.perf_counter()
            try:
                _kernels = _build()
            except Exception as exc:  # noqa: BLE001 - any build problem means: fall back
                first = str(exc).strip().splitlines()
                _failure = f"{type(exc).__name__}: {first[0] if first else ''}"[:300]
            last_load_seconds = time.perf_counter() - start
    if _kernels is None and required:
        raise DependencyError(
            f"the fused recurrence could not be built ({_failure}); install a C++ compiler and "
            "ninja, or use engine='packed'"
        )
    return _kernels


def failure_reason() -> str | None:
    """Why the extension could not be built (``None`` if it built or was not tried yet)."""
    return _failure


def reset_kernels() -> None:
    """Forget the loaded extension or the build failure, so the next use tries again."""
    global _kernels, _failure, _warned
    with _lock:
        _kernels, _failure, _warned = None, None, False


def kernels_for(engine: str) -> ModuleType | None:
    """The extension to use for ``engine``, or ``None`` for the packed path.

    ``"packed"`` -> ``None``; ``"fused"`` -> the extension or :class:`DependencyError`;
    ``"auto"`` -> the extension, or ``None`` after one warning if it cannot be built.
    """
    global _warned
    if check_engine(engine) == "packed":
        return None
    kernels = load_kernels(required=engine == "fused")
    if kernels is None and not _warned:
        _warned = True
        warnings.warn(
            f"the fused recurrence could not be built ({_failure}); using the slower packed "
            "PyTorch path (set engine='packed' to silence this)",
            RuntimeWarning,
            stacklevel=3,
        )
    return kernels


class _Lease:
    """Marks a workspace buffer busy for as long as an autograd graph holds this object."""

    def __init__(self, buffer: torch.Tensor) -> None:
        self.buffer = buffer
        weakref.finalize(self, _release, buffer)


_free: list[torch.Tensor] = []
_pool_lock = threading.RLock()
_MAX_FREE = 2


def _release(buffer: torch.Tensor) -> None:
    with _pool_lock:  # re-entrant: a finalizer may run while this thread holds it
        if len(_free) < _MAX_FREE:
            _free.append(buffer)


def _workspace(numel: int, dtype: torch.dtype) -> _Lease:
    """A buffer of at least ``numel`` elements, reused across training steps.

    The activations saved for backward are tens of MB; allocating them afresh at every step
    costs more than the forward pass itself (page faults), so they live in recycled buffers.
    A buffer returns to the pool only when the autograd graph that saved it is freed.
    """
    with _pool_lock:
        for i, buf in enumerate(_free):
            if buf.dtype == dtype and buf.numel() >= numel:
                return _Lease(_free.pop(i))
    return _Lease(torch.empty(numel, dtype=dtype))


def clear_workspace() -> None:
    """Free the recycled buffers of saved activations."""
    with _pool_lock:
        _free.clear()


class _Surrogate(torch.autograd.Function):
    """Autograd wrapper of the C++ forward/backward (see :func:`fused_surrogate`)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        kernels: ModuleType,
        cell: str,
        proj: bool,
        need_grad: bool,
        *tensors: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        args = [t.contiguous() for t in tensors]  # x, w_ih, b_ih, w_hh, b_hh, w_out, b_out, h0, c0
        x, w_hh, h0 = args[0], args[3], args[7]
        if need_grad:
            k, b, t, h = w_hh.shape[0], x.shape[1], x.shape[2], h0.shape[2]
            numel = kernels.saved_numel(cell, k, b, t, h, x.dtype == torch.float64)
            ctx.lease = _workspace(numel, x.dtype)
            buffer = ctx.lease.buffer
        else:
            buffer = x.new_empty(0)
        y, h_last, c_last, saved = kernels.forward(cell, *args, proj, buffer)
        if c_last is None:
            c_last = h_last.new_empty(0)
            ctx.mark_non_differentiable(c_last)
        ctx.kernels, ctx.cell, ctx.proj = kernels, cell, proj
        ctx.set_materialize_grads(False)
        if need_grad:
            ctx.save_for_backward(*args, saved, h_last)
        return y, h_last, c_last

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(
        ctx: Any,
        dy: torch.Tensor | None,
        dh_last: torch.Tensor | None,
        dc_last: torch.Tensor | None,
    ) -> tuple[torch.Tensor | None, ...]:
        *args, saved, h_last = ctx.saved_tensors
        x, w_out = args[0], args[5]
        empty = x.new_empty(0)
        if dy is None:
            dy = x.new_zeros(w_out.shape[0], x.shape[1], x.shape[2], w_out.shape[1])
        need = ctx.needs_input_grad[4:]
        grads = ctx.kernels.backward(
            ctx.cell, *args, ctx.proj, saved, h_last, dy,
            empty if dh_last is None else dh_last,
            empty if dc_last is None else dc_last,
            bool(need[0]),
        )
        return (None, None, None, None) + tuple(
            g if n else None for g, n in zip(grads, need, strict=True)
        )


def fused_surrogate(
    kernels: ModuleType,
    cell: str,
    x: torch.Tensor,
    w_ih: torch.Tensor | None,
    b_ih: torch.Tensor | None,
    w_hh: torch.Tensor,
    b_hh: torch.Tensor,
    w_out: torch.Tensor,
    b_out: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor | None = None,
    *,
    projected: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """K independent recurrent surrogates (cell + linear read-out) over whole sequences.

    Differentiable in every tensor (first order).

    Args:
        kernels: The extension from :func:`load_kernels`.
        cell: ``"rnn"`` (tanh), ``"lstm"`` or ``"gru"``.
        x: Inputs ``[K, batch, time, n_inputs]``, or ``[1, batch, time, n_inputs]`` shared by
            all members; with ``projected``, ``x @ W_ih^T + b_ih`` of shape
            ``[K, batch, time, gates * H]``.
        w_ih: Input weights ``[K, gates * H, n_inputs]`` (``None`` with ``projected``).
        b_ih: Input biases ``[K, gates * H]`` (``None`` with ``projected``).
        w_hh: Recurrent weights ``[K, gates * H, H]`` (PyTorch gate order and layout).
        b_hh: Recurrent biases ``[K, gates * H]``.
        w_out: Read-out weights ``[K, n_outputs, H]``.
        b_out: Read-out biases ``[K, n_outputs]``.
        h0: Initial hidden states ``[K, batch, H]``.
        c0: Initial cell states ``[K, batch, H]`` (LSTM; ``None`` means zeros).
        projected: ``x`` already holds the input projections (better for many inputs).

    Returns:
        ``(y, h_last, c_last)``: outputs ``y_t = W_out h_t + b_out`` ``[K, batch, time,
        n_outputs]`` for ``t = 1 .. T``, the last hidden state ``[K, batch, H]`` and, for the
        LSTM, the last cell state (else ``None``); on CPU, in the dtype of ``x``.
    """
    empty = x.new_empty(0)
    if cell == "lstm" and c0 is None:
        c0 = torch.zeros_like(h0)
    tensors = [t for t in (x, w_ih, b_ih, w_hh, b_hh, w_out, b_out, h0, c0) if t is not None]
    need_grad = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    if need_grad and x.requires_grad and x.shape[0] != w_hh.shape[0]:
        x = x.expand(w_hh.shape[0], *x.shape[1:])
    y, h_last, c_last = _Surrogate.apply(
        kernels,
        cell,
        projected,
        need_grad,
        x,
        empty if w_ih is None else w_ih,
        empty if b_ih is None else b_ih,
        w_hh,
        b_hh,
        w_out,
        b_out,
        h0,
        empty if c0 is None else c0,
    )
    return y, h_last, c_last if cell == "lstm" else None
