"""A seed ensemble of recurrent surrogates packed into one recurrent layer.

K members with ``hidden`` units each become one PyTorch layer with ``K * hidden`` units whose
input and recurrent weights are block-diagonal (member ``k`` sees only its own input slice and
its own hidden units). Off-diagonal blocks are zero and their gradients are masked to zero by a
gradient hook, so the members stay independent: training the packed module with the sum of the
members' losses gives each member exactly the gradient it would get alone, and Adam (an
elementwise optimiser) then updates each member as if it were trained alone. One packed GRU is
4-6x faster than K separate GRU-8 models on CPU (see docs/performance.md).

The read-out is packed as batched weights ``[member, output, hidden]``.

Two engines compute the same function from the same packed parameters: ``"packed"`` runs the
block-diagonal PyTorch layer (always available, used on GPUs); ``"fused"`` takes each member's
diagonal blocks out of the packed weights by differentiable indexing and runs the compiled
whole-sequence recurrence of :mod:`neuroreduce.models.fused` (CPU; about 5x faster than packed
and 35x faster than K separate models for the paper's GRU-8). ``"auto"`` (default) uses the
fused engine where it builds. Parameters, state dicts, gradients and checkpoints are the same
whichever engine runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from neuroreduce.errors import CheckpointError, ConfigError
from neuroreduce.models import fused
from neuroreduce.models.rnn import (
    GATES,
    RecurrentSurrogate,
    check_cell,
    check_sizes,
    recurrent_layer,
)

_RNN_NAMES: tuple[str, ...] = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


class SurrogateEnsemble(nn.Module):
    """K independent :class:`RecurrentSurrogate` members evaluated as one module.

    Build it with :meth:`from_seeds` (member ``k`` initialised exactly as a lone model built
    after ``torch.manual_seed(seeds[k])``) or :meth:`from_members`; take member ``k`` out with
    :meth:`member`.

    Args:
        cell: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        n_members: Number of members K.
        n_inputs: Input channels per member.
        n_outputs: Output channels per member.
        hidden: Recurrent units per member.
        engine: ``"auto"``, ``"fused"`` or ``"packed"`` (see the module docstring); CUDA inputs
            always take the packed path.

    The constructor leaves all weights zero; use the class methods to get initialised members.
    """

    def __init__(
        self,
        cell: str,
        n_members: int,
        *,
        n_inputs: int,
        n_outputs: int,
        hidden: int,
        engine: str = "auto",
    ) -> None:
        super().__init__()
        check_sizes(n_inputs=n_inputs, n_outputs=n_outputs, hidden=hidden)
        self.engine = fused.check_engine(engine)
        if isinstance(n_members, bool) or not isinstance(n_members, int) or n_members < 1:
            raise ConfigError(f"n_members must be a positive integer, got {n_members!r}")
        self.cell = check_cell(cell)
        self.n_members = n_members
        self.n_inputs = n_inputs
        self.n_outputs = n_outputs
        self.hidden = hidden
        k, g = n_members, GATES[cell]
        self.rnn = recurrent_layer(cell, k * n_inputs, k * hidden)
        self.readout_weight = nn.Parameter(torch.zeros(k, n_outputs, hidden))
        self.readout_bias = nn.Parameter(torch.zeros(k, n_outputs))
        member = torch.arange(k)
        owner_ih = torch.full((g, k, hidden, k, n_inputs), -1, dtype=torch.long)
        owner_hh = torch.full((g, k, hidden, k, hidden), -1, dtype=torch.long)
        for m in range(k):
            owner_ih[:, m, :, m, :] = m
            owner_hh[:, m, :, m, :] = m
        owners = {
            "rnn.weight_ih_l0": owner_ih.reshape(g * k * hidden, k * n_inputs),
            "rnn.weight_hh_l0": owner_hh.reshape(g * k * hidden, k * hidden),
            "rnn.bias_ih_l0": member.view(1, k, 1).expand(g, k, hidden).reshape(-1).clone(),
            "rnn.bias_hh_l0": member.view(1, k, 1).expand(g, k, hidden).reshape(-1).clone(),
            "readout_weight": member.view(k, 1, 1).expand(k, n_outputs, hidden).clone(),
            "readout_bias": member.view(k, 1).expand(k, n_outputs).clone(),
        }
        self._owners = owners
        with torch.no_grad():
            for p in self.parameters():
                p.zero_()
        for name in ("weight_ih_l0", "weight_hh_l0"):
            self.register_buffer(f"_off_{name}", owners[f"rnn.{name}"] < 0, persistent=False)
            getattr(self.rnn, name).register_hook(self._masker(f"_off_{name}"))

    def _masker(self, buffer: str) -> Callable[[torch.Tensor], torch.Tensor]:
        """A gradient hook zeroing the off-diagonal blocks (even where the gradient is NaN)."""

        def hook(grad: torch.Tensor) -> torch.Tensor:
            return grad.masked_fill(getattr(self, buffer), 0.0)

        return hook

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_members(
        cls, members: Sequence[RecurrentSurrogate], *, engine: str = "auto"
    ) -> SurrogateEnsemble:
        """Pack lone models (all of the same cell and sizes) into one ensemble (copies weights).

        Raises:
            ConfigError: if ``members`` is empty or the members differ in cell or sizes.
        """
        if not members:
            raise ConfigError("an ensemble needs at least one member")
        first = members[0]
        shape = (first.cell, first.n_inputs, first.n_outputs, first.hidden)
        for i, m in enumerate(members):
            if (m.cell, m.n_inputs, m.n_outputs, m.hidden) != shape:
                raise ConfigError(
                    f"member {i} is {m.cell}-{m.hidden} ({m.n_inputs}->{m.n_outputs}); member 0 "
                    f"is {first.cell}-{first.hidden} ({first.n_inputs}->{first.n_outputs})"
                )
        ens = cls(
            first.cell,
            len(members),
            n_inputs=first.n_inputs,
            n_outputs=first.n_outputs,
            hidden=first.hidden,
            engine=engine,
        )
        ens.load_member_state_dicts([m.state_dict() for m in members])
        return ens

    @classmethod
    def from_seeds(
        cls,
        cell: str,
        seeds: Sequence[int],
        *,
        n_inputs: int,
        n_outputs: int,
        hidden: int,
        engine: str = "auto",
    ) -> SurrogateEnsemble:
        """Member ``k`` = a ``RecurrentSurrogate`` built right after ``manual_seed(seeds[k])``.

        The global torch RNG is left as if seeded with the last seed; callers wanting it intact
        should wrap the call in ``torch.random.fork_rng()``.
        """
        members = []
        for seed in seeds:
            torch.manual_seed(int(seed))
            members.append(RecurrentSurrogate(cell, n_inputs, n_outputs, hidden))
        return cls.from_members(members, engine=engine)

    # ------------------------------------------------------------------ member access
    def _views(self) -> dict[str, torch.Tensor]:
        """Packed parameters reshaped so member ``k`` is index ``[:, k, :, k, :]`` or ``[k]``."""
        g, k, h, i, o = GATES[self.cell], self.n_members, self.hidden, self.n_inputs, self.n_outputs
        return {
            "rnn.weight_ih_l0": self.rnn.weight_ih_l0.view(g, k, h, k, i),
            "rnn.weight_hh_l0": self.rnn.weight_hh_l0.view(g, k, h, k, h),
            "rnn.bias_ih_l0": self.rnn.bias_ih_l0.view(g, k, h),
            "rnn.bias_hh_l0": self.rnn.bias_hh_l0.view(g, k, h),
            "readout.weight": self.readout_weight.view(k, o, h),
            "readout.bias": self.readout_bias.view(k, o),
        }

    def member_state_dict(self, k: int) -> dict[str, torch.Tensor]:
        """State dict of member ``k`` as a lone :class:`RecurrentSurrogate` (copied tensors)."""
        self._check_member(k)
        g, h = GATES[self.cell], self.hidden
        v = self._views()
        with torch.no_grad():
            return {
                "rnn.weight_ih_l0": v["rnn.weight_ih_l0"][:, k, :, k, :].reshape(g * h, -1).clone(),
                "rnn.weight_hh_l0": v["rnn.weight_hh_l0"][:, k, :, k, :].reshape(g * h, h).clone(),
                "rnn.bias_ih_l0": v["rnn.bias_ih_l0"][:, k, :].reshape(-1).clone(),
                "rnn.bias_hh_l0": v["rnn.bias_hh_l0"][:, k, :].reshape(-1).clone(),
                "readout.weight": v["readout.weight"][k].clone(),
                "readout.bias": v["readout.bias"][k].clone(),
            }

    def member(self, k: int) -> RecurrentSurrogate:
        """Member ``k`` as a standalone :class:`RecurrentSurrogate` (a copy, same mode)."""
        model = RecurrentSurrogate(self.cell, self.n_inputs, self.n_outputs, self.hidden)
        model.load_state_dict(self.member_state_dict(k))
        return model.train(self.training)

    def load_member_state_dicts(self, states: Sequence[dict[str, torch.Tensor]]) -> None:
        """Overwrite all members from lone-model state dicts (one per member, in order).

        Raises:
            CheckpointError: on a wrong member count or a tensor of the wrong shape or name.
        """
        if len(states) != self.n_members:
            raise CheckpointError(f"got {len(states)} member states for {self.n_members} members")
        g, h = GATES[self.cell], self.hidden
        v = self._views()
        with torch.no_grad():
            for p in self.parameters():
                p.zero_()
            for k, state in enumerate(states):
                if set(state) != set(v):
                    raise CheckpointError(
                        f"member {k} has tensors {sorted(state)}; expected {sorted(v)}"
                    )
                try:
                    v["rnn.weight_ih_l0"][:, k, :, k, :] = state["rnn.weight_ih_l0"].view(g, h, -1)
                    v["rnn.weight_hh_l0"][:, k, :, k, :] = state["rnn.weight_hh_l0"].view(g, h, h)
                    v["rnn.bias_ih_l0"][:, k, :] = state["rnn.bias_ih_l0"].view(g, h)
                    v["rnn.bias_hh_l0"][:, k, :] = state["rnn.bias_hh_l0"].view(g, h)
                    v["readout.weight"][k] = state["readout.weight"]
                    v["readout.bias"][k] = state["readout.bias"]
                except RuntimeError as exc:
                    raise CheckpointError(
                        f"member {k} does not fit a {self.cell}-{h} model with "
                        f"{self.n_inputs} inputs and {self.n_outputs} outputs: "
                        f"{str(exc).splitlines()[0]}"
                    ) from None

    def parameter_owners(self) -> dict[str, torch.Tensor]:
        """Per parameter name, a long tensor of its shape: owning member, or -1 (zero block)."""
        return dict(self._owners)

    def enforce_block_structure(self) -> None:
        """Set the off-diagonal (unowned) blocks back to exactly zero."""
        with torch.no_grad():
            for name in ("weight_ih_l0", "weight_hh_l0"):
                getattr(self.rnn, name).masked_fill_(getattr(self, f"_off_{name}"), 0.0)

    def _check_member(self, k: int) -> None:
        if not 0 <= k < self.n_members:
            raise ConfigError(f"member {k} does not exist; the ensemble has {self.n_members}")

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run every member on its own minibatch, from zero initial states.

        Args:
            x: Normalised inputs, shape ``[member, batch, time, n_inputs]``.

        Returns:
            Normalised outputs, shape ``[member, batch, time, n_outputs]``.

        Raises:
            ConfigError: if ``x`` does not have that shape.
        """
        k = self.n_members
        if x.ndim != 4 or x.shape[0] != k or x.shape[3] != self.n_inputs:
            raise ConfigError(
                f"ensemble input must have shape [{k}, batch, time, {self.n_inputs}]; "
                f"got {tuple(x.shape)}"
            )
        kernels = self._kernels_for(x)
        if kernels is not None:
            return self._forward_fused(kernels, x)
        _, b, t, i = x.shape
        packed = x.permute(1, 2, 0, 3).reshape(b, t, k * i)
        states, _ = self.rnn(packed)
        states = states.view(b, t, k, self.hidden)
        y = torch.einsum("btkh,koh->kbto", states, self.readout_weight)
        return y + self.readout_bias[:, None, None, :]

    def member_weights(self) -> dict[str, torch.Tensor]:
        """Every member's own weights, stacked, as differentiable views of the packed ones.

        Returns:
            ``weight_ih [K, gates*H, n_inputs]``, ``weight_hh [K, gates*H, H]``,
            ``bias_ih``/``bias_hh [K, gates*H]`` (PyTorch gate order), ``readout_weight
            [K, n_outputs, H]``, ``readout_bias [K, n_outputs]``.
        """
        g, k, h, i = GATES[self.cell], self.n_members, self.hidden, self.n_inputs
        v = self._views()

        def blocks(w: torch.Tensor) -> torch.Tensor:  # [g, k, h, k, n] -> [k, g*h, n]
            return torch.diagonal(w, dim1=1, dim2=3).permute(3, 0, 1, 2).reshape(k, g * h, -1)

        return {
            "weight_ih": blocks(v["rnn.weight_ih_l0"]).reshape(k, g * h, i),
            "weight_hh": blocks(v["rnn.weight_hh_l0"]).reshape(k, g * h, h),
            "bias_ih": v["rnn.bias_ih_l0"].permute(1, 0, 2).reshape(k, g * h),
            "bias_hh": v["rnn.bias_hh_l0"].permute(1, 0, 2).reshape(k, g * h),
            "readout_weight": self.readout_weight,
            "readout_bias": self.readout_bias,
        }

    def _forward_fused(self, kernels: object, x: torch.Tensor) -> torch.Tensor:
        """The fused engine on ``x [member or 1, batch, time, n_inputs]`` (1: shared inputs)."""
        k, h = self.n_members, self.hidden
        _, b, t, i = x.shape
        w = {name: v.to(x.dtype) for name, v in self.member_weights().items()}
        h0 = x.new_zeros(k, b, h)
        weights = (w["weight_hh"], w["bias_hh"], w["readout_weight"], w["readout_bias"], h0)
        if i > GATES[self.cell] * h:  # many inputs: one matmul beats per-step projections
            gi = torch.matmul(x.reshape(x.shape[0], b * t, i), w["weight_ih"].transpose(1, 2))
            gi = (gi + w["bias_ih"].unsqueeze(1)).view(k, b, t, -1)
            y, _, _ = fused.fused_surrogate(
                kernels, self.cell, gi, None, None, *weights, projected=True
            )
        else:
            y, _, _ = fused.fused_surrogate(
                kernels, self.cell, x, w["weight_ih"], w["bias_ih"], *weights
            )
        return y

    def _kernels_for(self, x: torch.Tensor) -> object | None:
        """The fused extension if this call should use it, else ``None`` (packed path)."""
        if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
            return None
        return fused.kernels_for(self.engine)

    def forward_shared(self, x: torch.Tensor) -> torch.Tensor:
        """Run every member on the same ``x [batch, time, n_inputs]`` -> ``[member, ...]``."""
        if x.ndim != 3 or x.shape[2] != self.n_inputs:
            raise ConfigError(
                f"inputs must have shape [batch, time, {self.n_inputs}]; got {tuple(x.shape)}"
            )
        kernels = self._kernels_for(x)
        if kernels is not None:  # no copy per member: the kernels read shared inputs
            return self._forward_fused(kernels, x.unsqueeze(0))
        return self.forward(x.unsqueeze(0).expand(self.n_members, *x.shape))
