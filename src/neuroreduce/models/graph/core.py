"""The network shared by the graph families: node features, one message-passing step,
aggregation across nodes, a two-layer MLP.

Dense torch throughout: the graphs are small (tens to a few hundred recorded neurons), the
inferred graph is all pairs and is batched over ``[batch, time]``, so one ``einsum`` is the
message-passing step; PyTorch Geometric's sparse ``MessagePassing`` would add index bookkeeping
and nothing else (``tests/test_graph_models.py`` checks the step against PyG's ``SimpleConv``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from neuroreduce.errors import ConfigError
from neuroreduce.models.mlp import check_input, feedforward


def node_features(x: torch.Tensor, window: int) -> torch.Tensor:
    """Per-node causal window features of window-layout inputs.

    Args:
        x: ``[batch, time, 2N]``: N traces, then their N derivatives.
        window: Frames per node feature vector (the current one included); frames before the
            start are zeros.

    Returns:
        ``[batch, time, N, 2 * window]``: node ``j`` at frame ``t`` holds its trace over frames
        ``t - window + 1 .. t`` (oldest first), then its derivative over the same frames.
    """
    b, t, c = x.shape
    n = c // 2
    nodes = x.view(b, t, 2, n).transpose(2, 3)  # [b, t, N, 2]
    padded = F.pad(nodes, (0, 0, 0, 0, window - 1, 0))  # zeros before the first frame
    frames = padded.unfold(1, window, 1)  # [b, t, N, 2, window]
    return frames.reshape(b, t, n, 2 * window)


class GraphNet(nn.Module):
    """Node features -> edges -> ``H = A X`` -> (node encoder) -> aggregation -> MLP.

    Args:
        n_inputs: ``2N`` input channels (window layout).
        n_outputs: Output channels (logits, or ``2N`` next-frame increments for trajectories).
        hidden: Width of the MLP (and of the edge encoder / LSTM).
        layers: Hidden layers of the MLP ``g`` (1: two linear layers, the paper's).
        window: Frames per node feature vector (``memory="window"``).
        memory: ``"window"`` (causal window of frames) or ``"lstm"`` (an LSTM over each node's
            frames, shared by all nodes, ``hidden`` units: the paper's RNN variants).
        node_hidden: Width of a per-node ``Linear + ReLU`` applied after message passing (0:
            none, as the paper).
        aggregation: ``"concat"`` (nodes concatenated, the paper's) or ``"sum"``.
        edges: ``None`` (no message passing: ``A = I``), or a module mapping node features
            ``[batch, time, N, F]`` to an adjacency broadcastable to ``[batch, time, N, N]``.
        static: Passed to ``edges``: one graph per sequence instead of per frame.
    """

    def __init__(
        self, *, n_inputs: int, n_outputs: int, hidden: int, layers: int, window: int,
        memory: str, node_hidden: int, aggregation: str, edges: nn.Module | None,
        static: bool = False,
    ) -> None:
        super().__init__()
        if n_inputs % 2:
            raise ConfigError(
                f"graph models need 2N input channels (N traces then N derivatives); got "
                f"{n_inputs}"
            )
        self.n_inputs, self.n_outputs = n_inputs, n_outputs
        self.n_nodes = n_inputs // 2
        self.window, self.memory, self.static = window, memory, static
        self.lstm = nn.LSTM(2, hidden, batch_first=True) if memory == "lstm" else None
        n_feat = hidden if memory == "lstm" else 2 * window
        self.edges = edges
        self.node = (
            nn.Sequential(nn.Linear(n_feat, node_hidden), nn.ReLU()) if node_hidden else None
        )
        per_node = node_hidden or n_feat
        self.aggregation = aggregation
        width = per_node * self.n_nodes if aggregation == "concat" else per_node
        self.head = feedforward(width, hidden, layers, n_outputs)

    @property
    def n_features(self) -> int:
        """Features per node before message passing."""
        return self.lstm.hidden_size if self.lstm is not None else 2 * self.window

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Node features ``[batch, time, N, F]`` of inputs ``[batch, time, 2N]``."""
        if self.lstm is None:
            return node_features(x, self.window)
        b, t, _ = x.shape
        seq = x.view(b, t, 2, self.n_nodes).permute(0, 3, 1, 2).reshape(b * self.n_nodes, t, 2)
        h, _ = self.lstm(seq)
        return h.reshape(b, self.n_nodes, t, -1).transpose(1, 2)

    def _first_full(self) -> int:
        return self.window - 1 if self.lstm is None else 0

    def adjacency(self, x: torch.Tensor) -> torch.Tensor | None:
        """Edge weights for inputs ``x`` (``None`` without message passing): ``[batch, time,
        N, N]`` (dynamic), ``[batch, 1, N, N]`` (static) or ``[N, N]`` (fixed)."""
        if self.edges is None:
            return None
        return self.edges(self.features(x), static=self.static, first=self._first_full())

    def pooled_adjacency(self, x: torch.Tensor) -> torch.Tensor:
        """One graph ``[N, N]`` for all of ``x [batch, time, 2N]`` (e.g. every window of a worm:
        the paper's per-worm static edges): the edge encoder's node hidden features averaged
        over every sequence and frame (frames with a full window), then the pair encoder.

        Raises:
            ConfigError: for a model without inferred edges.
        """
        if not hasattr(self.edges, "encode"):
            if self.edges is None:
                raise ConfigError("this model has no edges (mlp_agg)")
            return self.edges(None)
        h = self.edges.encode(self.features(x))
        first = self._first_full() if self._first_full() < h.shape[1] else 0
        return self.edges.weights(h[:, first:].mean(dim=(0, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [batch, time, 2N]`` -> ``[batch, time, n_outputs]``; frame ``t`` depends on
        frames ``<= t`` only, except with static inferred edges (one graph from the whole
        sequence).

        Raises:
            ConfigError: if ``x`` does not have shape ``[batch, time, 2N]``.
        """
        check_input(x, self.n_inputs)
        feats = self.features(x)
        if self.edges is not None:
            adj = self.edges(feats, static=self.static, first=self._first_full())
            if adj.ndim == 2:
                feats = torch.einsum("ij,btjf->btif", adj, feats)
            else:
                feats = torch.einsum("btij,btjf->btif", adj.expand(-1, feats.shape[1], -1, -1),
                                     feats)
        if self.node is not None:
            feats = self.node(feats)
        agg = feats.flatten(-2) if self.aggregation == "concat" else feats.sum(dim=-2)
        return self.head(agg)
