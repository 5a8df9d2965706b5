"""``--style arrays``: one array formula per node instead of one formula per cell.

Each op says its array form (sheetnet/ops): its own ``array`` formula, ``ELEMENTWISE`` (its cell
formula with whole ranges in place of single cells: the same pattern, so it lives in one place),
or ``PerCellOnly`` with the reason (those ops get one formula per cell in both styles).
"""
from __future__ import annotations

from ..ops import ELEMENTWISE, REGISTRY, PerCellOnly, inputs
from .a1 import Refs


class ArrayRefs(Refs):
    """Refs for array formulas: a node's whole range reads as its tensor, so a node laid out
    transposed (layout.py) is read through TRANSPOSE; book.py writes a transposed result through
    TRANSPOSE as well, and the formulas need no case of their own."""

    def all(self, name: str) -> str:
        text = super().all(name)
        return f"TRANSPOSE({text})" if self.regions[name].transposed else text


class WholeRefs(ArrayRefs):
    """Refs where "cell (i, j) of a node" means the node's whole range."""

    def cell(self, name: str, i: int, j: int) -> str:
        return self.all(name)


def _elementwise(op, r: Refs) -> str:
    return op.formula(WholeRefs(r.regions, r.here, r.names), 0, 0)


def _own(op, r: Refs) -> str:
    # every op's own array formula reads its inputs through ArrayRefs (the book hands plain Refs)
    return op.array(ArrayRefs(r.regions, r.here, r.names))


def _array_form(cls):
    if cls.array is ELEMENTWISE:
        return _elementwise
    return None if isinstance(cls.array, PerCellOnly) else _own


# op type -> fn(op, refs) returning one array formula for the whole node
ARRAY_FORMULAS = {cls: _array_form(cls) for cls in REGISTRY.values() if _array_form(cls)}


# --- position rows: one array formula per row (generation, issue 16) ----------------------------
# Once a later position reads an earlier position's output (ops.NextInput), an array formula
# over all positions would read its own results: a circular reference (LibreOffice's Err:522).
# Every node whose rows are positions downstream of the generated ids gets one array formula per
# row instead, each reading only its own row of the position nodes it reads: an elementwise op
# by its own pattern, ROW_LOCAL ops by their array formula, an op with ``row_array`` by that;
# any other op's cells are written one by one (its cell formulas read rows <= their own).
ROW_LOCAL = frozenset(cls for cls in REGISTRY.values()
                      if cls.__name__ in ("Linear", "Softmax"))  # their array reads x row-wise


def position_nodes(graph) -> set[str]:
    """The nodes whose rows are positions computed from generated ids: the NextInput nodes and
    every node that reads one of these, with as many rows."""
    found, rows = set(), {}
    for node in graph.nodes.values():
        if getattr(node.op, "LATER", ()):
            found.add(node.name)
            rows[node.name] = node.shape[0]
            continue
        t = {rows[n] for n in (inputs(node.op) if hasattr(node.op, "INPUTS") else [])
             if n in found}
        if node.shape[0] in t:
            found.add(node.name)
            rows[node.name] = node.shape[0]
    return found


class RowRefs(ArrayRefs):
    """Refs for row i's array formula: a position node (and, in an elementwise pattern, any
    node of several rows) reads as its row i, as a (1, F) row; anything else as a whole."""

    def __init__(self, r: Refs, i: int, positions: set[str]):
        super().__init__(r.regions, r.here, r.names, r.node)
        self.i, self.positions = i, positions

    def _row(self, name: str, i: int) -> str:
        text = Refs.row(self, name, i)
        return f"TRANSPOSE({text})" if self.regions[name].transposed else text

    def all(self, name: str) -> str:
        return self._row(name, self.i) if name in self.positions else super().all(name)

    def cell(self, name: str, i: int, j: int) -> str:  # the elementwise patterns' reads
        return self._row(name, i) if self.shape(name)[0] > 1 else super().all(name)


def row_formulas(op, r: Refs, rows: int, positions: set[str]) -> list[str] | None:
    """One array formula per row of a position node (each a (1, F) row), or None: its cells
    are written one by one."""
    cls = type(op)
    if hasattr(op, "row_array"):
        return [op.row_array(RowRefs(r, i, positions), i) for i in range(rows)]
    if cls.array is ELEMENTWISE:
        return [op.formula(RowRefs(r, i, positions), i, 0) for i in range(rows)]
    if cls in ROW_LOCAL:
        return [op.array(RowRefs(r, i, positions)) for i in range(rows)]
    return None
