"""A NumPy float64 interpreter of the IR: one small function per op.

It is the sheet's semantics written in NumPy: tests hold it against PyTorch (so the IR is a faithful
capture) and the formulas against it (so the sheet computes the IR).
"""
from __future__ import annotations

import math

import numpy as np

from . import graph as ir

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _linear(op, v):
    out = v[op.x] @ v[op.w].T  # (N, in) @ (in, out)
    return out + v[op.b][:, 0] if op.b else out


def _gelu(op, v):
    x = v[op.x]
    if op.form == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _view(op, v):
    (r0, r1), (c0, c1) = op.rows, op.cols
    return v[op.x][r0:r1, c0:c1]


REFERENCE = {
    ir.Input: lambda op, v: np.asarray(op.default),
    ir.Param: lambda op, v: np.asarray(op.value, dtype=np.float64),
    ir.Const: lambda op, v: np.asarray(op.value),
    ir.Linear: _linear,
    ir.Relu: lambda op, v: np.maximum(0.0, v[op.x]),
    ir.LeakyRelu: lambda op, v: np.where(v[op.x] > 0, v[op.x], op.slope * v[op.x]),
    ir.Tanh: lambda op, v: np.tanh(v[op.x]),
    ir.Sigmoid: lambda op, v: 1.0 / (1.0 + np.exp(-v[op.x])),
    ir.Gelu: _gelu,
    ir.Copy: lambda op, v: v[op.x].copy(),
    ir.Add: lambda op, v: v[op.a] + v[op.b],
    ir.Sub: lambda op, v: v[op.a] - v[op.b],
    ir.Sqrt: lambda op, v: np.sqrt(v[op.x]),
    ir.Step: lambda op, v: (v[op.x] > 0).astype(np.float64),
    ir.View: _view,
}


def evaluate(graph: ir.Graph, inputs: dict | None = None) -> dict[str, np.ndarray]:
    """Run the graph.

    Args:
        graph: the captured model.
        inputs: optional values for Input nodes by name (default: each Input's default).
    Returns:
        every node's value by name, each of the node's 2-D shape.
    """
    values: dict[str, np.ndarray] = {}
    for node in graph.nodes.values():
        if inputs and node.name in inputs:
            values[node.name] = np.asarray(inputs[node.name]).reshape(node.shape)
            continue
        try:
            fn = REFERENCE[type(node.op)]
        except KeyError:
            raise NotImplementedError(f"no reference for op {type(node.op).__name__}") from None
        out = fn(node.op, values)
        if out.shape != node.shape:
            raise ValueError(f"{node.name}: computed shape {out.shape}, declared {node.shape}")
        values[node.name] = out
    return values
