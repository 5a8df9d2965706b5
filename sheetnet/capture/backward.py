"""Reverse-mode differentiation on the IR: the backward pass as more nodes of the graph.

micrograd's ``backward`` walks its values in reverse topological order and calls each one's
``_backward``; here the walk is over graph nodes and each op's ``derivative`` (its unit, in
sheetnet/ops) *adds nodes* for its inputs' gradients, so every gradient is a live formula.  A node
read by several ops gets the sum of their contributions (an Add node per extra one).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import SheetnetError
from ..ir import graph as ir
from ..ops import Add


@dataclass
class _Builder:
    """What a derivative may do (see ops/grad.py): add nodes of the backward pass, read shapes,
    ask whether a node's gradient is needed."""
    g: ir.Graph
    sheet: str
    prefix: str
    wanted: set[str]
    order: int
    adder: object = None  # fn(name, op, sheet, **kw) adding a node (and its value); None: g.add
    made: list[str] = field(default_factory=list)

    def add(self, op, shape) -> str:
        name = f"{self.prefix}grad{len(self.made) + 1}"
        if self.adder is None:
            self.g.add(name, op, shape, self.sheet, title="", order=self.order)
        else:
            self.adder(name, op, self.sheet, title="", order=self.order)
        if self.g.shape(name) != tuple(shape):
            raise ValueError(f"{name}: {type(op).__name__} computes {self.g.shape(name)}, "
                             f"its derivative declared {tuple(shape)}")
        self.made.append(name)
        return name

    def shape(self, name: str) -> tuple[int, int]:
        return self.g.shape(name)

    def wants(self, name: str) -> bool:
        return name in self.wanted


def depends(g: ir.Graph, nodes: list[str], on: set[str]) -> set[str]:
    """The nodes among ``nodes`` (in graph order) that are in ``on`` or read one that is."""
    found = set(on)
    for name in nodes:
        if any(x in found for x in ir.op_inputs(g.nodes[name].op)):
            found.add(name)
    return found


def backward(g: ir.Graph, nodes: list[str], seed: tuple[str, str], params: list[str], *,
             sheet: str, prefix: str, order: int = 0, label=lambda name: name,
             add=None) -> dict[str, str]:
    """Add the nodes of d(loss)/d(param) for every param.

    Args:
        g: the graph, holding the forward pass ``nodes`` (graph order) and the seed's gradient.
        nodes: the forward pass's computed nodes, in the order they were added.
        seed: (output node, node holding d(loss)/d(output)), the loss's own gradient.
        params: the weight nodes (leaves) whose gradients are wanted.
        sheet, prefix, order: where the new nodes go and how they are named.
        label: how titles call a forward node ("L1.z").
        add: fn(name, op, sheet, **kw) that adds a node (default: the graph's own add).
    Returns:
        {param: the node of its gradient}, each of the param's shape.
    Raises:
        SheetnetError: an op on the way from a weight to the loss has no derivative (named).
    """
    wanted = depends(g, nodes, set(params))
    b = _Builder(g, sheet, prefix, wanted, order, add)
    grads: dict[str, list[str]] = {seed[0]: [seed[1]]}
    for name in reversed(nodes):
        if name not in grads or name in params:
            continue
        total = _sum(b, name, grads.pop(name), label)
        op = g.nodes[name].op
        derivative = getattr(op, "derivative", None)
        if derivative is None:
            raise SheetnetError(f"op {type(op).__name__} (node {name}) has no derivative yet: "
                                "cannot train through it")
        before = len(b.made)
        for x, gx in derivative(b, name, total):
            grads.setdefault(x, []).append(gx)
            if gx in b.made[before:] and not g.nodes[gx].title:
                g.nodes[gx].title = f"∂loss/∂{label(x)} (through {label(name)})"
    return {p: _sum(b, p, grads.get(p) or _no_path(p), label) for p in params}


def _sum(b: _Builder, name: str, parts: list[str], label) -> str:
    # one contribution is the gradient itself; more are added up, one Add each
    total = parts[0]
    for part in parts[1:]:
        total = b.add(Add(total, part), b.shape(name))
        b.g.nodes[total].title = f"∂loss/∂{label(name)}: the paths added up"
    return total


def _no_path(param: str):
    raise SheetnetError(f"weight {param} does not reach the loss: nothing to train")
