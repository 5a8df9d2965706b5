"""``--style arrays``: one array formula per node instead of one formula per cell.

Each op says its array form (sheetnet/ops): its own ``array`` formula, ``ELEMENTWISE`` (its cell
formula with whole ranges in place of single cells: the same pattern, so it lives in one place),
or ``PerCellOnly`` with the reason (those ops get one formula per cell in both styles).
"""
from __future__ import annotations

from ..ops import ELEMENTWISE, REGISTRY, PerCellOnly
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
