"""Configs, builders and parameter counts of ``mlp_agg``, ``gnn_inferred``, ``gnn_connectome``.

Deviation from Wang et al.: their MLP ``g`` applies batch norm to the output of its two layers;
batch norm's running statistics are buffers, which the trainer's best-weight copy (parameters
only) does not carry, so ``g`` here has no normalisation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from neuroreduce.errors import ConfigError
from neuroreduce.models.graph.core import GraphNet
from neuroreduce.models.graph.edges import (
    FixedEdges,
    InferredEdges,
    connectome_adjacency,
    neuron_names_of,
)
from neuroreduce.models.mlp import check_choice, check_int, feedforward_parameters

MEMORIES = ("window", "lstm")
AGGREGATIONS = ("concat", "sum")


@dataclass(frozen=True)
class MLPAggConfig:
    """Hyper-parameters of the MLP with aggregation (Wang et al. Fig. 3B).

    Attributes:
        hidden: Width of the two-layer MLP (16 for behaviour, 256 for trajectories in the
            paper; also the LSTM's units with ``memory="lstm"``).
        layers: Hidden layers of the MLP (1: two linear layers, as the paper).
        window: Frames of each node's trace and derivative seen at each frame (8: the paper's
            window; 1: one frame, the Markovian trajectory model).
        memory: ``"window"`` (causal window) or ``"lstm"`` (an LSTM shared by the nodes runs
            over each node's frames: the paper's RNN variants).
        node_hidden: Width of a per-node ``Linear + ReLU`` before aggregation (0: none).
        aggregation: ``"concat"`` (nodes concatenated, the paper's) or ``"sum"``.
    """

    hidden: int = 16
    layers: int = 1
    window: int = 8
    memory: str = "window"
    node_hidden: int = 0
    aggregation: str = "concat"

    def __post_init__(self) -> None:
        check_int("hidden", self.hidden)
        check_int("layers", self.layers, minimum=0)
        check_int("window", self.window)
        check_int("node_hidden", self.node_hidden, minimum=0)
        check_choice("memory", self.memory, MEMORIES)
        check_choice("aggregation", self.aggregation, AGGREGATIONS)


@dataclass(frozen=True)
class GNNInferredConfig(MLPAggConfig):
    """Hyper-parameters of the GNN with inferred edges (Wang et al. eq. 8-14, Fig. 3C).

    Attributes:
        hidden: Width of the MLP, of the edge encoder (and of the LSTM with ``memory="lstm"``).
        layers: Hidden layers of the MLP (1: two linear layers, as the paper).
        window: Frames of each node's trace and derivative seen at each frame.
        memory: ``"window"`` or ``"lstm"`` (see ``mlp_agg``).
        node_hidden: Width of a per-node ``Linear + ReLU`` after message passing (0: none).
        aggregation: ``"concat"`` (the paper's) or ``"sum"``.
        edges: ``"static"``: one graph per input sequence, from the edge encoder's node
            features averaged over its frames with a full window (a window dataset: one graph
            per window; the paper's per-worm graph is ``pooled_adjacency`` over a worm's
            windows; best for behaviour in the paper); ``"dynamic"``: one graph per frame
            (best for trajectories in the paper).
    """

    edges: str = "static"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("edges", self.edges, ("static", "dynamic"))


@dataclass(frozen=True)
class GNNConnectomeConfig(MLPAggConfig):
    """Hyper-parameters of the GNN on connectome edges (Wang et al. Table 1).

    Attributes:
        hidden: Width of the MLP (and of the LSTM with ``memory="lstm"``).
        layers: Hidden layers of the MLP (1: two linear layers).
        window: Frames of each node's trace and derivative seen at each frame.
        memory: ``"window"`` or ``"lstm"`` (see ``mlp_agg``).
        node_hidden: Width of a per-node ``Linear + ReLU`` after message passing (0: none).
        aggregation: ``"concat"`` or ``"sum"``.
        neurons: Node names in channel order; empty: the first half of the dataset's input
            channel names (filled in by the trainer and saved with the run).
        synapses: ``"both"`` (chemical synapses and gap junctions), ``"chemical"`` or ``"gap"``.
        self_loops: Each node also keeps its own features (``A_ii = 1``).
        normalise: Rows of the adjacency divided by their sums (mean over in-neighbours).
        reader: Connectome reader (``"default"``: c302's, ``"varshney"``).
    """

    neurons: tuple[str, ...] = ()
    synapses: str = "both"
    self_loops: bool = True
    normalise: bool = False
    reader: str = "default"

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.neurons, str) or not all(isinstance(n, str) for n in self.neurons):
            raise ConfigError("neurons must be a list of neuron names")
        object.__setattr__(self, "neurons", tuple(self.neurons))
        check_choice("synapses", self.synapses, ("both", "chemical", "gap"))
        for name in ("self_loops", "normalise"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false")
        from neuroreduce.simulators.connectome import get_reader

        get_reader(self.reader)


def _net(config: MLPAggConfig, n_inputs: int, n_outputs: int, edges: Any, static: bool):
    return GraphNet(
        n_inputs=n_inputs, n_outputs=n_outputs, hidden=config.hidden, layers=config.layers,
        window=config.window, memory=config.memory, node_hidden=config.node_hidden,
        aggregation=config.aggregation, edges=edges, static=static,
    )


def _n_features(config: MLPAggConfig) -> int:
    return config.hidden if config.memory == "lstm" else 2 * config.window


def build_mlp_agg(config: MLPAggConfig, *, n_inputs: int, n_outputs: int) -> GraphNet:
    """The MLP with aggregation (no message passing); seed torch first."""
    return _net(config, n_inputs, n_outputs, None, False)


def build_gnn_inferred(config: GNNInferredConfig, *, n_inputs: int, n_outputs: int) -> GraphNet:
    """The GNN with inferred edges; seed torch first."""
    edges = InferredEdges(_n_features(config), config.hidden)
    return _net(config, n_inputs, n_outputs, edges, config.edges == "static")


def build_gnn_connectome(
    config: GNNConnectomeConfig, *, n_inputs: int, n_outputs: int
) -> GraphNet:
    """The GNN on connectome edges among ``config.neurons``; seed torch first.

    Raises:
        ConfigError: when ``neurons`` is empty or does not have one name per node.
    """
    n_nodes = n_inputs // 2
    if len(config.neurons) != n_nodes:
        raise ConfigError(
            f"gnn_connectome needs one neuron name per node ({n_nodes}); got "
            f"{len(config.neurons)} (option neurons, filled in from the dataset by train)"
        )
    adj = connectome_adjacency(config.neurons, synapses=config.synapses,
                               self_loops=config.self_loops, normalise=config.normalise,
                               reader=config.reader)
    return _net(config, n_inputs, n_outputs, FixedEdges(adj), True)


def bind_neurons(config: GNNConnectomeConfig, layout: Any) -> Mapping[str, Any]:
    """Options taken from the data: the neuron names (first half of the input channels).

    Raises:
        ConfigError: when given names do not match the dataset's node count.
    """
    channels = [c for block in layout.inputs for c in block.channels]
    names = neuron_names_of(channels)
    if not config.neurons:
        return {"neurons": names}
    if len(config.neurons) != len(names):
        raise ConfigError(
            f"option neurons lists {len(config.neurons)} names; the dataset has {len(names)} "
            "neurons (leave neurons empty to use the dataset's channel names)"
        )
    return {}


def parameter_count(config: MLPAggConfig, *, n_inputs: int, n_outputs: int) -> int:
    """Trainable parameters of the family's model in closed form (any of the three configs).

    ``N = n_inputs / 2``, ``H = hidden``, ``F = 2 * window`` (or ``H`` with an LSTM, which adds
    ``4H(H + 4)``); inferred edges add ``F*H + H + 2H^2 + H + 2H + 2``; a node encoder adds
    ``F*node_hidden + node_hidden``; the MLP is ``feedforward_parameters(N * F' (concat) or F'
    (sum), H, layers, n_outputs)`` with ``F' = node_hidden or F``.
    """
    h, n = config.hidden, n_inputs // 2
    f = _n_features(config)
    total = 4 * h * (h + 4) if config.memory == "lstm" else 0
    if isinstance(config, GNNInferredConfig):
        total += f * h + h + 2 * h * h + h + 2 * h + 2
    if config.node_hidden:
        total += f * config.node_hidden + config.node_hidden
    per = config.node_hidden or f
    width = per * n if config.aggregation == "concat" else per
    return total + feedforward_parameters(width, h, config.layers, n_outputs)


FAMILIES = (
    dict(name="mlp_agg", config=MLPAggConfig, build=build_mlp_agg,
         description="whole-brain MLP with aggregation (Wang et al.): node windows "
                     "concatenated, two-layer MLP; input 2N channels (traces, derivatives)"),
    dict(name="gnn_inferred", config=GNNInferredConfig, build=build_gnn_inferred,
         description="whole-brain GNN with inferred edges (Wang et al.): edge encoder, 2 edge "
                     "types, one message-passing step, concatenation, MLP"),
    dict(name="gnn_connectome", config=GNNConnectomeConfig, build=build_gnn_connectome,
         bind=bind_neurons,
         description="whole-brain GNN on connectome edges (cect: chemical + gap junctions "
                     "among the recorded neurons), one message-passing step, MLP"),
)
