"""Generic building blocks: each one function that appends a layer's IR nodes to a Graph.

A block knows the computation (which ops, in which order, on which sheet) and nothing of a
model family: the caller names the weights it reads (``Weights``: node name, checkpoint name, how
titles call it) and the nodes it makes.  So GPT-2's c_attn, c_fc, ln_1 live in the GPT preset
(gpt_body.py), and a Llama-style decoder would reuse ``attention`` with its own q/k/v weights and
add RMSNorm or rotary as new blocks here.  No block writes formula text: that is emit's.

Node order is layout's order (a sheet reads top to bottom in graph order), so each block adds its
nodes in the order a reader meets them.  Shapes: T positions (rows), C features, hs head size.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..ir import graph as ir


@dataclass(frozen=True)
class Weights:
    """One linear layer's weight (out, in) and bias (out,), as checkpoint and sheets name them."""
    node: str                # the graph nodes are "<node>.W" and "<node>.b"
    source: str              # checkpoint names "<source>.weight" and "<source>.bias"
    label: str               # how titles call the layer: "c_proj"
    weight: Any              # (out, in) tensor
    bias: Any | None = None  # (out,) tensor, or None for a layer without bias

    @classmethod
    def of(cls, module, node: str, source: str, label: str) -> "Weights":
        """The weights of an nn.Linear-like ``module`` (``.weight``, ``.bias``)."""
        return cls(node, source, label, module.weight, module.bias)


@dataclass(frozen=True)
class Activation:
    """An elementwise activation as a block applies it: its node name, op and titles."""
    name: str                        # node name suffix: "<block>.gelu"
    short: str                       # in other titles: "GELU"
    make: Callable[[str], object]    # input node name -> the IR op
    title: str                       # the activation node's title


def param(g: ir.Graph, name: str, tensor, sheet: str, *, source: str, row: bool = False,
          **kw) -> str:
    """A weight node; ``row``: a vector as one (1, F) row instead of an (F, 1) column.

    Weights keep PyTorch's (out, in) layout, so the sheet reads like the checkpoint.
    """
    value = ir.as_matrix(tensor)
    value = value.T if row else value
    return g.add(name, ir.Param(value, source=source), value.shape, sheet, **kw)


def linear_params(g: ir.Graph, weights: Weights, sheet: str, title: str, rows, cols,
                  bias_label: str = "bias") -> tuple[str, str | None]:
    """W (out, in) with its title and labels, and the bias (out, 1) beside it.

    Returns:
        the W node's name and the bias node's (None without bias).
    """
    w = param(g, f"{weights.node}.W", weights.weight, sheet, source=f"{weights.source}.weight",
              title=title, row_labels=rows, col_labels=cols)
    b = None
    if weights.bias is not None:
        b = param(g, f"{weights.node}.b", weights.bias, sheet, source=f"{weights.source}.bias",
                  title="", col_labels=[bias_label], beside=True)
    return w, b


def layer_norm(g: ir.Graph, name: str, x: str, sheet: str, *, gain, bias, eps: float,
               source: str, pos, feats, label: str | None = None) -> str:
    """LayerNorm of x (T, C): mean | var beside x, then normalised, gain, bias and the output.

    Args:
        name: the output node's name; the steps are "<name>.mean", ".var", ".norm", ".gain" and
            ".bias".
        gain, bias: the (C,) tensors (bias may be None); ``source`` their checkpoint prefix.
        label: how titles call it ("Block 1 - LayerNorm 1"); None: its node name.
    Returns:
        the output node, (T, C).
    """
    t, width = g.shape(x)
    label = label or name
    g.add(f"{name}.mean", ir.RowMean(x), (t, 1), sheet, title="", col_labels=["mean"],
          beside=True, ref=f"{name}.mean")
    g.add(f"{name}.var", ir.RowVar(x, f"{name}.mean"), (t, 1), sheet, title="",
          col_labels=["variance"], beside=True, ref=f"{name}.var")
    g.add(f"{name}.norm", ir.Normalize(x, f"{name}.mean", f"{name}.var", eps), (t, width),
          sheet, title=f"{label} normalised: (x - mean) / sqrt(variance + {eps:g})",
          row_labels=pos, col_labels=feats, ref=f"{name}.norm")
    param(g, f"{name}.gain", gain, sheet, row=True, source=f"{source}.weight",
          title=f"{label} gain (weight)", row_labels=["gain"], col_labels=feats)
    shift = None
    if bias is not None:
        shift = param(g, f"{name}.bias", bias, sheet, row=True, source=f"{source}.bias",
                      title=f"{label} bias", row_labels=["bias"], col_labels=feats)
    return g.add(name, ir.ScaleShift(f"{name}.norm", f"{name}.gain", shift), (t, width), sheet,
                 title=f"{label} = normalised * gain + bias", row_labels=pos, col_labels=feats,
                 ref=name)


def softmax(g: ir.Graph, x: str, sheet: str, names: tuple[str, str, str], *,
            causal: bool = False, max_label: str = "max", **kw) -> str:
    """p = exp(x - row max) / sum exp, the max keeping exp finite: max | sum exp beside x.

    Args:
        names: the row max, sum exp and probabilities nodes; the last is also its ``ref``.
        causal: x is (T, T) causal scores; masked cells drop out and get p = 0.
        kw: the probabilities node's title and labels.
    Returns:
        the probabilities node, x's shape.
    """
    n = g.shape(x)[0]
    mx, total, probs = names
    g.add(mx, ir.RowMax(x, causal=causal), (n, 1), sheet, title="", col_labels=[max_label],
          beside=True)
    g.add(total, ir.RowSumExp(x, mx, causal=causal), (n, 1), sheet, title="",
          col_labels=["sum exp"], beside=True)
    return g.add(probs, ir.Softmax(x, mx, total, causal=causal), g.shape(x), sheet, ref=probs,
                 **kw)


def temperature_softmax(g: ir.Graph, logits: str, prefix: str, sheet: str, temperature: str,
                        *, scaled: dict, probs: dict) -> str:
    """softmax(logits / T): "<prefix>scaled", "<prefix>max", "<prefix>sum", "<prefix>probs".

    Args:
        logits: (N, V); temperature: the (1, 1) node T.
        scaled, probs: titles and labels of the scaled logits and the probabilities nodes.
    Returns:
        the probabilities node, (N, V).
    """
    x = g.add(f"{prefix}scaled", ir.Divide(logits, temperature), g.shape(logits), sheet, **scaled)
    return softmax(g, x, sheet, (f"{prefix}max", f"{prefix}sum", f"{prefix}probs"), **probs)


def top_k(g: ir.Graph, probs: str, k: int, sheet: str, *, labels: str | None = None,
          key: str = "", unit: str = "", **kw) -> None:
    """The k largest of probs (1, V): "top.id" | "top.<key>" (looked up in ``labels``) | "top.prob".

    Args:
        labels: a (V, 1) text node naming each id, or None: ids only.
        key, unit: the label column's node suffix and heading.
        kw: placement shared by the three columns (``order``).
    """
    ranks = [f"#{r + 1}" for r in range(k)]
    g.add("top.id", ir.LargestIds(probs, k), (k, 1), sheet, title=f"top {k} candidates",
          row_labels=ranks, col_labels=["id"], style="integer", **kw)
    if labels:
        g.add(f"top.{key}", ir.Lookup(labels, "top.id"), (k, 1), sheet, title="",
              col_labels=[unit], beside=True, **kw)
    g.add("top.prob", ir.Largest(probs, k), (k, 1), sheet, title="", col_labels=["probability"],
          beside=True, ref="top.prob", **kw)


# --- attention ---------------------------------------------------------------------------------
HeadWeights = Callable[[str, int], tuple[str, str | None]]  # ("q"|"k"|"v", head) -> (W, b) nodes


def fused_qkv(g: ir.Graph, name: str, weights: Weights, n_head: int, sheet: str,
              feats) -> HeadWeights:
    """Params of a fused (3C, C) q|k|v projection (GPT-2's c_attn), and each head's rows of it.

    Returns:
        a function (part, head) -> (W, b) that adds that head's views "<name>.W<part><head>"
        and "<name>.b<part><head>", (hs, C) and (hs, 1), when the head reads them.
    """
    c = len(feats)
    hs = c // n_head
    rows = [f"{p}{k}.{d}" for p in "qkv" for k in range(n_head) for d in range(hs)]
    w, b = linear_params(g, weights, sheet, f"attention weights {weights.label}: one row per "
                         "q, k, v output (head.dim)", rows, feats)

    def head(part: str, k: int) -> tuple[str, str | None]:
        span = ("qkv".index(part) * c + k * hs, "qkv".index(part) * c + (k + 1) * hs)
        wv = g.add(f"{name}.W{part}{k}", ir.View(w, span, (0, c)), (hs, c), sheet)
        bv = g.add(f"{name}.b{part}{k}", ir.View(b, span, (0, 1)), (hs, 1), sheet) if b else None
        return wv, bv
    return head


def attention_head(g: ir.Graph, name: str, k: int, x: str, sheet: str, weights: HeadWeights,
                   pos, reads: str) -> str:
    """Head k of causal self-attention on x (T, C): q | k | v, masked scores, softmax, y.

    Nodes "<name>.q<k>" ... "<name>.y<k>"; ``reads``: how titles call x ("ln").
    Returns y = probs @ v, (T, hs).
    """
    t = len(pos)
    for part in "qkv":
        w, b = weights(part, k)
        hs = g.shape(w)[0]
        g.add(f"{name}.{part}{k}", ir.Linear(x, w, b), (t, hs), sheet, ref=f"{name}.{part}{k}",
              beside=part != "q", row_labels=pos if part == "q" else None,
              title=f"head {k}: {part} = {reads} · W{part}^T + b",
              col_labels=[f"{part}{k}.{d}" for d in range(hs)])
    scores = g.add(f"{name}.scores{k}", ir.CausalScores(f"{name}.q{k}", f"{name}.k{k}"), (t, t),
                   sheet, ref=f"{name}.scores{k}", row_labels=pos, col_labels=pos,
                   title=f"head {k}: scores = q · k^T / sqrt({hs}); row = query position, "
                         "column = key position; the future is masked (blank)")
    probs = softmax(g, scores, sheet, (f"{name}.max{k}", f"{name}.sum{k}", f"{name}.probs{k}"),
                    causal=True, max_label="row max", row_labels=pos, col_labels=pos,
                    title=f"head {k}: attention = exp(score - row max) / sum exp "
                          "(0 for the future)")
    # causal: row i reads v's rows up to i only (a generated position reads earlier outputs)
    return g.add(f"{name}.y{k}", ir.CausalMatMul(probs, f"{name}.v{k}"), (t, hs), sheet,
                 beside=True,
                 ref=f"{name}.y{k}", title=f"head {k}: y = attention · v",
                 col_labels=[f"y{k}.{d}" for d in range(hs)])


def heads_side_by_side(g: ir.Graph, name: str, n_head: int, x: str, sheet: str,
                       weights: HeadWeights, pos, reads: str) -> tuple[str, ...]:
    """The heads of causal self-attention as columns: one band of q | k | v for every head, one
    of scores | row max | sum exp per head, one of attention | y per head.  The same nodes,
    names and refs as ``attention_head``'s, in that order.

    Returns:
        each head's y = probs @ v, (T, hs).
    """
    t = len(pos)
    for k in range(n_head):
        for part in "qkv":
            w, b = weights(part, k)
            hs = g.shape(w)[0]
            g.add(f"{name}.{part}{k}", ir.Linear(x, w, b), (t, hs), sheet,
                  ref=f"{name}.{part}{k}", beside=(k, part) != (0, "q"),
                  row_labels=pos if (k, part) == (0, "q") else None,
                  title=f"head {k}: {part} = {reads} · W{part}^T + b",
                  col_labels=[f"{part}{k}.{d}" for d in range(hs)])
    for k in range(n_head):
        scores = g.add(f"{name}.scores{k}", ir.CausalScores(f"{name}.q{k}", f"{name}.k{k}"),
                       (t, t), sheet, ref=f"{name}.scores{k}", beside=k > 0,
                       row_labels=None if k else pos, col_labels=pos,
                       title=f"head {k}: scores = q · k^T / sqrt({hs}); row = query, "
                             "column = key; the future is masked (blank)")
        g.add(f"{name}.max{k}", ir.RowMax(scores, causal=True), (t, 1), sheet, title="",
              col_labels=["row max"], beside=True)
        g.add(f"{name}.sum{k}", ir.RowSumExp(scores, f"{name}.max{k}", causal=True), (t, 1),
              sheet, title="", col_labels=["sum exp"], beside=True)
    ys = []
    for k in range(n_head):
        n = f"{name}.scores{k}"
        probs = g.add(f"{name}.probs{k}", ir.Softmax(n, f"{name}.max{k}", f"{name}.sum{k}",
                                                      causal=True), (t, t), sheet,
                      ref=f"{name}.probs{k}", beside=k > 0, row_labels=None if k else pos,
                      col_labels=pos, title=f"head {k}: attention = exp(score - row max) / "
                                            "sum exp (0 for the future)")
        ys.append(g.add(f"{name}.y{k}", ir.CausalMatMul(probs, f"{name}.v{k}"), (t, hs), sheet,
                        beside=True, ref=f"{name}.y{k}", title=f"head {k}: y = attention · v",
                        col_labels=[f"y{k}.{d}" for d in range(hs)]))
    return tuple(ys)


def attention(g: ir.Graph, name: str, x: str, residual_in: str, sheet: str, *, n_head: int,
              heads: HeadWeights, proj: Weights, residual: str, pos, feats, reads: str,
              side_by_side: bool = False) -> str:
    """Multi-head causal attention on the normalised x (T, C), its projection and the residual.

    Args:
        name: node prefix of the heads and "<name>.y", "<name>.out".
        residual_in: the stream x + attention output adds to; ``residual`` names the sum.
        heads: each head's q, k, v weights (``fused_qkv`` or the model's own views).
        reads: how titles call x ("ln").
        side_by_side: the heads as columns (``heads_side_by_side``) instead of one below another.
    Returns:
        the residual stream after attention, (T, C).
    """
    if side_by_side:  # the heads as columns (heads_side_by_side), else stacked head by head
        ys = heads_side_by_side(g, name, n_head, x, sheet, heads, pos, reads)
    else:
        ys = tuple(attention_head(g, name, k, x, sheet, heads, pos, reads)
                   for k in range(n_head))
    hs = g.shape(ys[0])[1]
    y = g.add(f"{name}.y", ir.Concat(ys), (len(pos), hs * n_head), sheet, ref=f"{name}.y",
              title="y: the heads side by side", row_labels=pos,
              col_labels=[f"y{k}.{d}" for k in range(n_head) for d in range(hs)])
    w, b = linear_params(g, proj, sheet, f"output projection {proj.label}", feats,
                         g.nodes[y].col_labels)
    out = g.add(f"{name}.out", ir.Linear(y, w, b), (len(pos), len(feats)), sheet,
                ref=f"{name}.out", title=f"attention output = y · {proj.label}^T + bias",
                row_labels=pos, col_labels=feats)
    return _residual(g, residual, residual_in, out, sheet, "attention", pos, feats)


def mlp(g: ir.Graph, name: str, x: str, residual_in: str, sheet: str, *, fc: Weights,
        act: Activation, proj: Weights, residual: str, pos, feats, reads: str) -> str:
    """The transformer MLP on the normalised x (T, C): fc, activation, projection, residual.

    Nodes "<name>.fc" (T, H), "<name>.<act.name>" (T, H), "<name>.out" (T, C), then ``residual``;
    ``reads``: how titles call x ("ln").
    """
    t, width = len(pos), fc.weight.shape[0]
    hidden = [f"n{j}" for j in range(width)]
    w, b = linear_params(g, fc, sheet, f"MLP weights {fc.label}: one row per hidden neuron",
                         hidden, feats)
    h = g.add(f"{name}.fc", ir.Linear(x, w, b), (t, width), sheet, ref=f"{name}.fc",
              title=f"fc = {reads} · {fc.label}^T + bias", row_labels=pos, col_labels=hidden)
    a = g.add(f"{name}.{act.name}", act.make(h), (t, width), sheet, ref=f"{name}.{act.name}",
              title=act.title, row_labels=pos, col_labels=hidden)
    w, b = linear_params(g, proj, sheet, f"MLP weights {proj.label}: one row per output feature",
                         feats, hidden)
    out = g.add(f"{name}.out", ir.Linear(a, w, b), (t, len(feats)), sheet, ref=f"{name}.out",
                title=f"MLP output = {act.short} · {proj.label}^T + bias", row_labels=pos,
                col_labels=feats)
    return _residual(g, residual, residual_in, out, sheet, "MLP", pos, feats)


def _residual(g: ir.Graph, name: str, x: str, out: str, sheet: str, what: str, pos,
              feats) -> str:
    # the residual stream: x plus the sublayer's output, titled "res1 = x + attention output"
    short = name.rsplit(".", 1)[-1]
    return g.add(name, ir.Add(x, out), (len(pos), len(feats)), sheet, ref=name,
                 title=f"{short} = x + {what} output (the residual stream)", row_labels=pos,
                 col_labels=feats)
