"""Published numbers of the cortical-neuron works, as data, and our parameter counts next to them.

Sources (all on NeuronIO, Beniaguev et al.'s simulated layer-5 pyramidal cell: 1,278 inputs,
639 excitatory + 639 inhibitory, 6 s trials at 1 ms, ~1 output spike per second, soma voltage
clipped at -55 mV; two outputs: spike logit and soma voltage):

* the blog (seed 003, "Modeling a single biological neuron with recurrent architectures"):
  RNN/GRU/LSTM with 3 and 6 layers, the last recurrent layer of 2 units *is* the output (no
  linear read-out); its top-10 table (validation ROC AUC) is :data:`BLOG_TOP10`;
* Beniaguev, Segev & London (2021), Neuron 109:2727: a 7-layer temporal convolutional network,
  test AUC 0.991 (~12 M parameters, the blog's estimate);
* Spieler et al. (2023), the ELM neuron (ICLR 2024): Branch-ELM (45 branches x 100 synapses,
  interleaved E/I, MLP of one hidden layer of ``2 d_m`` units): AUC by parameter count
  (:data:`SPIELER_ELM`), best 54,002 parameters AUC 0.9946, explained variance 96.6 %,
  TP rate 0.83 at 1 % FP.

Our families differ from the blog's only by a linear read-out: ``stacked_rnn`` with
``sizes = (..., 2)`` adds a 2 x 2 read-out (6 parameters) after the 2-unit output layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: NeuronIO's inputs and outputs (spike logit, soma voltage).
NEURONIO_INPUTS, NEURONIO_OUTPUTS = 1278, 2

BLOG_REFERENCE = (
    "Seed 003 (blog post): Modeling a single biological neuron with recurrent architectures "
    "(RNN/GRU/LSTM on NeuronIO, 216-run grid, validation ROC AUC)."
)
BENIAGUEV_REFERENCE = (
    "Beniaguev D, Segev I, London M (2021) Single cortical neurons as deep artificial neural "
    "networks. Neuron 109(17):2727-2739.e3."
)
SPIELER_REFERENCE = (
    "Spieler A, Rahaman N, Martius G, Schölkopf B, Levina A (2023) The ELM neuron: an efficient "
    "and expressive cortical neuron model can solve long-horizon tasks. arXiv:2306.16922 "
    "(ICLR 2024)."
)


@dataclass(frozen=True)
class BlogConfig:
    """One of the blog's network sizes.

    Attributes:
        label: Layer sizes as the blog writes them, e.g. ``"256-64-2"``.
        sizes: Recurrent layer sizes, first layer first (the last is the 2-unit output layer).
        stated: True when the blog's text names this size (its top-10 table); False for the one
            size we had to assume (the post lists six sizes but names only five).
    """

    label: str
    sizes: tuple[int, ...]
    stated: bool = True

    @property
    def layers(self) -> int:
        """Recurrent layers (3 or 6)."""
        return len(self.sizes)


#: The blog's six network sizes (3 and 6 layers). "128-32-2" is our assumption for the sixth.
BLOG_CONFIGS: tuple[BlogConfig, ...] = (
    BlogConfig("32-16-2", (32, 16, 2)),
    BlogConfig("128-32-2", (128, 32, 2), stated=False),
    BlogConfig("256-64-2", (256, 64, 2)),
    BlogConfig("128-64-64-64-32-2", (128, 64, 64, 64, 32, 2)),
    BlogConfig("256-128-64-32-16-2", (256, 128, 64, 32, 16, 2)),
    BlogConfig("512-256-128-64-32-2", (512, 256, 128, 64, 32, 2)),
)

#: The blog's grid axes.
BLOG_CELLS: tuple[str, ...] = ("rnn", "gru", "lstm")
BLOG_LEARNING_RATES: tuple[float, ...] = (0.001, 0.003, 0.006, 0.01)
BLOG_CLASS_WEIGHTS: tuple[float | None, ...] = (None, 5.0, 20.0)

#: The blog's top-10 table: (cell, parameters, sizes, learning rate, class weight, val AUC).
BLOG_TOP10: tuple[tuple[str, int, str, float, float | None, float], ...] = (
    ("lstm", 1_655_840, "256-64-2", 0.010, 20.0, 0.9653),
    ("lstm", 1_655_840, "256-64-2", 0.006, 20.0, 0.9597),
    ("lstm", 1_836_064, "256-128-64-32-16-2", 0.006, 5.0, 0.9576),
    ("lstm", 4_718_624, "512-256-128-64-32-2", 0.003, None, 0.9573),
    ("lstm", 849_952, "128-64-64-64-32-2", 0.010, 20.0, 0.9569),
    ("lstm", 1_836_064, "256-128-64-32-16-2", 0.003, 20.0, 0.9564),
    ("lstm", 849_952, "128-64-64-64-32-2", 0.006, 5.0, 0.9554),
    ("lstm", 4_718_624, "512-256-128-64-32-2", 0.001, 5.0, 0.9546),
    ("rnn", 42_824, "32-16-2", 0.006, None, 0.9546),
    ("lstm", 1_655_840, "256-64-2", 0.010, 5.0, 0.9539),
)

#: Spieler et al.'s NeuronIO Branch-ELMs: memory units d_m -> (parameters, test AUC).
SPIELER_ELM: dict[int, tuple[int, float]] = {
    1: (4_601, 0.944), 10: (5_852, 0.988), 15: (6_827, 0.9915), 20: (8_002, 0.9922),
    50: (19_252, 0.9934), 100: (54_002, 0.9946),
}

#: Headline anchors (test set unless said otherwise).
ANCHORS: dict[str, dict[str, Any]] = {
    "blog_best_lstm": {"auc": 0.9653, "parameters": 1_655_840, "split": "validation",
                       "source": "blog"},
    "beniaguev_tcn": {"auc": 0.991, "parameters": 12_000_000, "parameters_note":
                      "~12 M, the blog's estimate", "source": BENIAGUEV_REFERENCE},
    "elm_6827": {"auc": 0.9915, "parameters": 6_827, "source": SPIELER_REFERENCE},
    "branch_elm_best": {"auc": 0.9946, "parameters": 54_002, "explained_variance": 0.966,
                        "tpr_at_1pct_fp": 0.83, "source": SPIELER_REFERENCE},
}

#: Target of issue 11: at most this many parameters with test AUC >= 0.99, EV >= 0.95.
TARGET_PARAMETERS, TARGET_AUC, TARGET_EXPLAINED_VARIANCE = 10_000, 0.99, 0.95


def blog_parameters(cell: str, sizes: tuple[int, ...], n_inputs: int = NEURONIO_INPUTS) -> int:
    """The blog's count: stacked PyTorch RNN/GRU/LSTM layers, no read-out (two bias vectors per
    gate): ``sum_l g * h_l * (h_{l-1} + h_l + 2)``, ``g`` 1/3/4 for RNN/GRU/LSTM."""
    g = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    widths = (n_inputs, *sizes)
    return sum(g * b * (a + b + 2) for a, b in zip(widths[:-1], widths[1:], strict=True))


#: Our model configurations of the study: (label, family, hidden, options, published
#: parameters or None, what they are compared with). Small ones first.
def model_rows() -> list[tuple[str, str, int, dict[str, Any], int | None, str]]:
    """The configurations :func:`parameter_table` counts (see its docstring)."""
    rows: list[tuple[str, str, int, dict[str, Any], int | None, str]] = []
    for d_m, (published, auc) in SPIELER_ELM.items():
        rows.append((f"Branch-ELM d_m={d_m}", "elm", d_m, {
            "branches": 45, "synapses_per_branch": 100, "interleave": True, "tau_max_ms": 150.0},
            published, f"Spieler 2023, AUC {auc}"))
    rows.append(("ELM d_m=10 (every synapse its own branch)", "elm", 10, {}, None, "-"))
    rows.append(("GLM, 8 raised cosines, 100 ms", "glm", 100, {"bases": 8}, None,
                 "LN baseline (Pillow 2008)"))
    rows.append(("TCN small: 6 ch, 7 layers, k 1/3, dilation 2 (127 ms)", "tcn", 6, {
        "layers": 7, "first_kernel": 1, "kernel": 3, "dilation_base": 2}, None, "-"))
    rows.append(("TCN Beniaguev-like: 128 ch, 7 layers, k 35", "tcn", 128, {
        "layers": 7, "first_kernel": 35, "kernel": 35}, 12_000_000,
        "Beniaguev 2021, AUC 0.991 (~12 M, the blog's estimate)"))
    for cell, sizes in (("rnn", (8, 4, 2)), ("gru", (4, 4, 2)), ("lstm", (4, 4, 2))):
        label = "-".join(map(str, sizes))
        rows.append((f"{cell.upper()} {label} (small)", "stacked_rnn", sizes[0], {
            "cell": cell, "layers": len(sizes), "sizes": sizes}, None, "-"))
    for cell in BLOG_CELLS:
        for cfg in BLOG_CONFIGS:
            top = [r for r in BLOG_TOP10 if r[0] == cell and r[2] == cfg.label]
            note = f"blog, best val AUC {max(r[5] for r in top)}" if top else "blog grid"
            rows.append((f"{cell.upper()} {cfg.label}", "stacked_rnn", cfg.sizes[0], {
                "cell": cell, "layers": cfg.layers, "sizes": cfg.sizes},
                blog_parameters(cell, cfg.sizes), note + ("" if cfg.stated else
                                                          " (size assumed)")))
    return rows


def parameter_table(*, n_inputs: int = NEURONIO_INPUTS, n_outputs: int = NEURONIO_OUTPUTS,
                    max_parameters: int | None = None) -> list[dict[str, Any]]:
    """Our parameter count of every configuration of the study next to the published one.

    Families with a closed-form count (``stacked_rnn``, ``tcn``, ``elm``: their
    ``parameter_count``, equal to the built model's, see ``tests/test_families.py``) are counted
    from their checked config; the others are built (``build_model``) and their trainable
    scalars counted.

    Args:
        n_inputs: Input channels (NeuronIO: 1,278).
        n_outputs: Output channels (spike logit + soma voltage: 2).
        max_parameters: Keep only rows with at most this many of our parameters.

    Returns:
        Rows ``{"label", "model", "hidden", "options", "parameters", "published",
        "difference", "compared_with"}``, smallest first.
    """
    from neuroreduce.models import count_parameters, elm, stacked_rnn, tcn
    from neuroreduce.models.registry import build_model, model_config

    closed_form = {"stacked_rnn": stacked_rnn.parameter_count, "tcn": tcn.parameter_count,
                   "elm": elm.parameter_count}
    out = []
    for label, model, hidden, options, published, note in model_rows():
        if model in closed_form:
            ours = closed_form[model](model_config(model, hidden, options), n_inputs=n_inputs,
                                      n_outputs=n_outputs)
        else:
            ours = count_parameters(build_model(model, hidden=hidden, n_inputs=n_inputs,
                                                n_outputs=n_outputs, options=options))
        if max_parameters is not None and ours > max_parameters:
            continue
        out.append({"label": label, "model": model, "hidden": hidden,
                    "options": {k: list(v) if isinstance(v, tuple) else v
                                for k, v in options.items()},
                    "parameters": ours, "published": published,
                    "difference": None if published is None else ours - published,
                    "compared_with": note})
    return sorted(out, key=lambda r: r["parameters"])


def format_parameter_table(rows: list[dict[str, Any]]) -> str:
    """The rows of :func:`parameter_table` as a fixed-width text table."""
    lines = [f"{'model':50s} {'ours':>11s} {'published':>11s} {'diff':>8s}  compared with"]
    for r in rows:
        pub = "-" if r["published"] is None else f"{r['published']:,}"
        diff = "-" if r["difference"] is None else f"{r['difference']:+,}"
        lines.append(f"{r['label']:50s} {r['parameters']:>11,} {pub:>11s} {diff:>8s}  "
                     f"{r['compared_with']}")
    return "\n".join(lines)
