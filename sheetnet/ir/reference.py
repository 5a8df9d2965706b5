"""A NumPy float64 interpreter of the IR: each op's ``reference`` (sheetnet/ops), in graph order.

It is the sheet's semantics written in NumPy: tests hold it against PyTorch (so the IR is a faithful
capture) and the formulas against it (so the sheet computes the IR).
"""
from __future__ import annotations

import numpy as np

from ..ops import REGISTRY
from ..ops import cell_text, checked_id  # noqa: F401 (capture's names for them)
from . import graph as ir


def _view(op: ir.View, v):
    (r0, r1), (c0, c1) = op.rows, op.cols
    return v[op.x][r0:r1, c0:c1]


# what the graph's own node types (leaves and View) compute; every op computes its own
LEAVES = {
    ir.Input: lambda op, v: np.asarray(op.default),
    ir.Param: lambda op, v: np.asarray(op.value, dtype=np.float64),
    ir.Const: lambda op, v: np.asarray(op.value),
    ir.View: _view,
}
_OPS = frozenset(REGISTRY.values())


def _compute(op, values: dict) -> np.ndarray:
    if type(op) in _OPS:
        return op.reference(values)
    if type(op) in LEAVES:
        return LEAVES[type(op)](op, values)
    raise NotImplementedError(f"no reference for op {type(op).__name__}")


def evaluate(graph: ir.Graph, inputs: dict | None = None) -> dict[str, np.ndarray]:
    """Run the graph.

    Args:
        graph: the captured model.
        inputs: optional values for Input nodes by name (default: each Input's default).
    Returns:
        every node's value by name, each of the node's 2-D shape.
    """
    later = [n for node in graph.nodes.values() for n in ir.later_inputs(node.op)]
    values = _pass(graph, inputs, {})
    # a forward edge (generation: position i + 1 reads position i's draw): each pass fixes at
    # least one more position, so the values settle within as many passes as there are rows
    for _ in range(max((graph.shape(n)[0] for n in later), default=0)):
        again = _pass(graph, inputs, {n: values[n] for n in later})
        if all(_same(again[n], values[n]) for n in later):
            return again
        values = again
    return values


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and all(x == y for x, y in zip(a.flat, b.flat))


def _pass(graph: ir.Graph, inputs: dict | None, values: dict) -> dict[str, np.ndarray]:
    # every node once, in graph order; ``values`` may hold the forward edges' previous values
    values = dict(values)
    for node in graph.nodes.values():
        if inputs and node.name in inputs:
            values[node.name] = np.asarray(inputs[node.name]).reshape(node.shape)
            continue
        out = _compute(node.op, values)
        if out.shape != node.shape:
            raise ValueError(f"{node.name}: computed shape {out.shape}, declared {node.shape}")
        values[node.name] = out
    return values
