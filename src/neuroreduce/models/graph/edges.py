"""Edges of the graph models: inferred from activity (an edge encoder) or the connectome.

Adjacency convention: ``A[..., i, j]`` is the weight of the message from node ``j`` into node
``i``, so one message-passing step is ``H_i = sum_j A_ij x_j`` (Wang et al. eq. 12-14); self
edges (the diagonal) count like any other.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from neuroreduce.errors import ConfigError

#: Suffixes that turn a neuron class name (``"AVA"``) into its cells (``"AVAL"``, ``"AVAR"``).
_CLASS_SUFFIXES = ("L", "R", "D", "V", "DL", "DR", "VL", "VR")


class InferredEdges(nn.Module):
    """The paper's edge encoder (Wang et al. eq. 8-11), dense over all ordered node pairs.

    ``h_i = ReLU(W_enc x_i + b)`` per node; ``H_ij = W_out ReLU(W_a h_i + W_b h_j + b)`` (the
    linear map of the concatenation ``[h_i, h_j]`` written as two halves, so no ``[N, N, 2H]``
    tensor is built); ``p_ij = softmax(H_ij)`` over two edge types; ``w_ij = p_ij[1]``.
    Parameters: ``F*H + H + 2*H*H + H + 2*H + 2``.

    Args:
        n_features: Features per node ``F``.
        hidden: Width ``H`` of the node and pair encoders.
    """

    def __init__(self, n_features: int, hidden: int) -> None:
        super().__init__()
        self.node = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU())
        self.pair_i = nn.Linear(hidden, hidden)
        self.pair_j = nn.Linear(hidden, hidden, bias=False)
        self.out = nn.Linear(hidden, 2)

    def encode(self, feats: torch.Tensor) -> torch.Tensor:
        """Node hidden features ``[..., N, H]`` of node features ``[..., N, F]``."""
        return self.node(feats)

    def weights(self, h: torch.Tensor) -> torch.Tensor:
        """Edge weights ``[..., N, N]`` in (0, 1) from node hidden features ``[..., N, H]``."""
        z = torch.relu(self.pair_i(h)[..., :, None, :] + self.pair_j(h)[..., None, :, :])
        logits = self.out(z)
        # softmax over the two edge types, second probability: sigmoid of the logit difference
        return torch.sigmoid(logits[..., 1] - logits[..., 0])

    def forward(self, feats: torch.Tensor, *, static: bool, first: int = 0) -> torch.Tensor:
        """Adjacency of node features ``feats [batch, time, N, F]``.

        Args:
            feats: Node features per frame.
            static: One graph per sequence: hidden features averaged over frames ``first..``
                (Wang et al.: "the aggregation step also averages hidden features across all
                timesteps"), shape ``[batch, 1, N, N]``; else one per frame ``[batch, time, N,
                N]``.
            first: First frame of the average (earlier frames see a zero-padded window).
        """
        h = self.encode(feats)
        if static:
            first = first if first < h.shape[1] else 0
            h = h[:, first:].mean(dim=1, keepdim=True)
        return self.weights(h)


class FixedEdges(nn.Module):
    """A fixed adjacency ``[N, N]`` (a buffer, rebuilt from the config, not saved)."""

    def __init__(self, adjacency: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("adjacency", torch.as_tensor(adjacency, dtype=torch.float32),
                             persistent=False)

    def forward(self, feats: torch.Tensor, *, static: bool = True, first: int = 0) -> torch.Tensor:
        return self.adjacency


def neuron_names_of(channels: Sequence[str]) -> tuple[str, ...]:
    """The node (neuron) names of window-layout channels: the first half (traces).

    Raises:
        ConfigError: on an odd channel count (the layout is traces then derivatives).
    """
    if len(channels) % 2:
        raise ConfigError(
            f"graph models need 2N input channels (N traces then N derivatives); got "
            f"{len(channels)}"
        )
    return tuple(str(c) for c in channels[: len(channels) // 2])


@functools.lru_cache(maxsize=4)
def _connections(reader: str) -> tuple[frozenset[str], tuple[tuple[str, str, bool], ...]]:
    """(cell names, (pre, post, is_gap_junction) per connection) of connectome ``reader``."""
    from neuroreduce.simulators.connectome import load_reader

    cells, conns = load_reader(reader).read_data(include_nonconnected_cells=True)
    out = tuple((str(c.pre_cell), str(c.post_cell), "_GJ" in str(c.synclass)) for c in conns)
    return frozenset(map(str, cells)), out


def _cells_of(name: str, cells: frozenset[str]) -> list[str]:
    """Connectome cells a recorded name stands for: itself, its zero-padding-free form (Kato's
    ``VB01`` is ``VB1``), or the members of a class name (``AVA`` -> ``AVAL``, ``AVAR``)."""
    name = name.strip()
    m = re.fullmatch(r"([A-Za-z]+)0+(\d+)", name)
    if m:
        name = m.group(1) + m.group(2)
    if name in cells:
        return [name]
    return [name + s for s in _CLASS_SUFFIXES if name + s in cells]


def connectome_adjacency(
    neurons: Sequence[str], *, synapses: str = "both", self_loops: bool = True,
    normalise: bool = False, reader: str = "default",
) -> np.ndarray:
    """Binary adjacency ``[N, N]`` among ``neurons`` from the C. elegans connectome (``cect``).

    ``A[i, j] = 1`` when neuron ``j`` makes a chemical synapse onto ``i`` or the two share a gap
    junction (symmetric). A name that stands for several cells (a class such as ``AVA``) is
    connected where any of its cells is. Names the connectome lacks get only their self loop.

    Args:
        neurons: Node names in node order.
        synapses: ``"both"``, ``"chemical"`` or ``"gap"``.
        self_loops: Put 1 on the diagonal.
        normalise: Divide each row by its sum (the mean over a node's in-neighbours).
        reader: Connectome reader (:mod:`neuroreduce.simulators.connectome`).

    Raises:
        ConfigError: on an unknown ``synapses``, or when no name is a connectome neuron.
    """
    if synapses not in ("both", "chemical", "gap"):
        raise ConfigError(f"unknown synapses {synapses!r}; known: both, chemical, gap")
    cells, conns = _connections(reader)
    owner: dict[str, list[int]] = {}
    for i, name in enumerate(neurons):
        for c in _cells_of(str(name), cells):
            owner.setdefault(c, []).append(i)
    if not owner:
        raise ConfigError(
            f"none of the {len(neurons)} neuron names ({', '.join(list(neurons)[:5])}...) is a "
            "C. elegans neuron of the connectome; gnn_connectome needs identified neurons"
        )
    n = len(neurons)
    adj = np.zeros((n, n), np.float32)
    for pre, post, gap in conns:
        if (gap and synapses == "chemical") or (not gap and synapses == "gap"):
            continue
        for j in owner.get(pre, ()):
            for i in owner.get(post, ()):
                if i != j:
                    adj[i, j] = 1.0
                    if gap:
                        adj[j, i] = 1.0
    if self_loops:
        np.fill_diagonal(adj, 1.0)
    if normalise:
        adj = adj / np.maximum(adj.sum(axis=1, keepdims=True), 1.0)
    return adj
