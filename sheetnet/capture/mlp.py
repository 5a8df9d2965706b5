"""Lowering of plain MLPs (nn.Sequential of Linear and activations), and the sqrt net's extras:
an Input dashboard and the Walk sheet (the seed's "walking the net" over a grid of x)."""
from __future__ import annotations

import numpy as np
from torch import nn

from ..errors import SheetnetError
from ..ir import graph as ir
from ..ops import ACTIVATION_MODULES, activation
from . import blocks

# an activation's op (factory, short name for titles) comes from the op library: adding one never
# touches capture
SUPPORTED = ["Linear", *ACTIVATION_MODULES, "Identity"]


def _layers(seq: nn.Sequential) -> list[tuple[str, nn.Linear, list[tuple[str, nn.Module]]]]:
    """Group a Sequential into (name, Linear, [activations after it]); unsupported -> clear error."""
    groups: list = []
    for path, mod in seq.named_children():
        if isinstance(mod, nn.Linear):
            groups.append((path, mod, []))
        elif isinstance(mod, nn.Identity):
            continue
        elif activation(type(mod)) and groups:
            groups[-1][2].append((path, mod))
        else:
            where = "before the first Linear" if activation(type(mod)) else f"at {path}"
            raise SheetnetError(f"layer {type(mod).__name__} {where} is not supported; "
                                f"supported: {', '.join(SUPPORTED)}")
    if not groups:
        raise SheetnetError("the model has no Linear layer to export")
    return groups


def neuron_labels(prefix: str, n: int) -> list[str]:
    """Labels of n neurons: "n1".."n<n>" after ``prefix`` ("L1." on the Walk sheet)."""
    return [f"{prefix}n{i + 1}" for i in range(n)]


def lower_sequential(g: ir.Graph, seq: nn.Sequential, x: str, *, prefix: str = "",
                     sheet: str | None = None, in_labels: list[str] | None = None,
                     with_params: bool = True, show_steps: bool = True,
                     param_names: dict[str, str] | None = None) -> str:
    """Append the MLP's ops reading node ``x`` (N, in); returns the output node's name.

    Args:
        g: graph to extend.
        seq: the Sequential.
        x: name of the input node.
        prefix: node-name prefix ("walk." for the Walk sheet's second pass).
        sheet: put every node on this sheet (Walk); default one sheet per Linear layer.
        in_labels: feature names of x, used as weight column labels.
        with_params: add the weight nodes (False: reuse those of an earlier pass).
        show_steps: add a 1/0 "ReLU on" row after each ReLU.
        param_names: checkpoint name of each Linear's parameters by its path in ``seq``, for a
            Sequential assembled from another model's modules (default: the path itself).
    """
    groups = _layers(seq)
    labels = in_labels or [f"x{i + 1}" for i in range(g.shape(x)[1])]
    n = g.shape(x)[0]
    for k, (path, lin, acts) in enumerate(groups, start=1):
        last = k == len(groups)
        lname = "Output" if last else f"Layer {k}"
        here = sheet or lname
        outs = neuron_labels(f"L{k}." if sheet else "", lin.out_features) if not last or \
            lin.out_features > 1 else ["y"]
        tag = "out" if last else f"L{k}"
        w, b = f"{tag}.W", (f"{tag}.b" if lin.bias is not None else None)
        if with_params:
            src = (param_names or {}).get(path, path)
            blocks.linear_params(g, blocks.Weights.of(lin, tag, src, path), here,
                                 f"{lname}: weights W ({lin.out_features} x {lin.in_features}) "
                                 "and bias b, one row per neuron", outs, labels, bias_label="b")
        if not sheet:  # the layer's input, repeated so the sheet reads on its own
            x = g.add(f"{prefix}{tag}.in", ir.Copy(x), (n, len(labels)), here,
                      title="input to this layer", col_labels=labels)
        x = g.add(f"{prefix}{tag}.z", ir.Linear(x, w, b), (n, lin.out_features), here,
                  title=f"{lname}: z = x · W^T + b" if not sheet else f"L{k} z",
                  col_labels=outs, ref=f"{prefix}{path}")
        for j, (apath, act) in enumerate(acts):
            make, short = activation(type(act))
            z, nth = x, "" if j == 0 else str(j + 1)   # a second activation in a row: a2, on2
            x = g.add(f"{prefix}{tag}.a{nth}", make(x, act), (n, lin.out_features), here,
                      title=f"a = {short}(z)" if not sheet else f"L{k} a", col_labels=outs,
                      ref=f"{prefix}{apath}")
            if show_steps and isinstance(act, nn.ReLU):
                g.add(f"{prefix}{tag}.on{nth}", ir.Step(z), (n, lin.out_features), here,
                      title="ReLU on? (1 = z > 0)" if not sheet else f"L{k} on",
                      col_labels=outs, style="flag")
        labels = outs
    return x


def capture_mlp(model: nn.Sequential, meta: dict, batch: np.ndarray | None = None) -> ir.Graph:
    """A generic MLP: an Input sheet with one row of inputs, then one sheet per layer."""
    g = ir.Graph(meta={"architecture": "mlp", **meta})
    n_in = _layers(model)[0][1].in_features
    x0 = np.zeros((1, n_in)) if batch is None else np.asarray(batch, dtype=np.float64)
    labels = [f"x{i + 1}" for i in range(n_in)] if n_in > 1 else ["x"]
    x = g.add("x", ir.Input(x0), x0.shape, "Input", title="Input: type values here",
              col_labels=labels)
    y = lower_sequential(g, model, x, in_labels=labels)
    g.add("y", ir.Copy(y), g.shape(y), "Input", title="Output: the net's y", role="output",
          col_labels=g.nodes[y].col_labels)
    return g
