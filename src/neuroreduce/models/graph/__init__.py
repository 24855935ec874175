"""Graph models of whole-brain activity (Wang et al., "Generalizable machine learning in
neuroscience using graph neural networks"): neurons are nodes, the behaviour is a graph label.

Families (registered in :mod:`neuroreduce.models.registry`):

* ``mlp_agg`` — the paper's MLP with aggregation: node features concatenated, two-layer MLP.
* ``gnn_inferred`` — the paper's GNN: an edge encoder on node pairs gives two edge types per
  pair (softmax), the edge weight is the second probability, one message-passing step, then
  concatenation aggregation and the MLP. Edges ``static`` (one graph per input sequence) or
  ``dynamic`` (one graph per frame).
* ``gnn_connectome`` — the same GNN on fixed edges: chemical synapses and gap junctions among
  the recorded neurons from the C. elegans connectome (``cect``).

Every family takes the whole-brain window layout ("Layout 2"): inputs ``[batch, time, 2N]``
whose first ``N`` channels are the neurons' traces and the next ``N`` their derivatives (node
``j`` = channels ``j`` and ``N + j``), and gives ``[batch, time, n_outputs]`` at every frame from
the causal window of the last ``window`` frames (the window dataset labels only its last frame,
which then sees the whole window). With ``memory = "lstm"`` each node's frames go through an
LSTM shared by all nodes instead (the paper's RNN variants: "an LSTM unit before the MLP").
"""

from neuroreduce.models.graph.core import GraphNet, node_features
from neuroreduce.models.graph.edges import connectome_adjacency, neuron_names_of

__all__ = ["GraphNet", "connectome_adjacency", "neuron_names_of", "node_features"]
