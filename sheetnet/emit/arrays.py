"""``--style arrays``: one array formula per node instead of one formula per cell.

Elementwise ops reuse their cell formula with whole ranges in place of single cells (the same
pattern, so it lives in one place); ops whose cell form would collapse inside an array formula
get their own entry: MAX(0, Z) collapses to one number, so ReLU becomes IF(Z>0, Z, 0).
"""
from __future__ import annotations

from ..ir import graph as ir
from .a1 import Refs
from .formulas import CELL_FORMULAS


class ArrayRefs(Refs):
    """Refs for array formulas: a node's whole range reads as its tensor, so a node laid out
    transposed (layout.py) is read through TRANSPOSE; book.py writes a transposed result through
    TRANSPOSE as well, and the formulas below need no case of their own."""

    def all(self, name: str) -> str:
        text = super().all(name)
        return f"TRANSPOSE({text})" if self.regions[name].transposed else text


class WholeRefs(ArrayRefs):
    """Refs where "cell (i, j) of a node" means the node's whole range."""

    def cell(self, name: str, i: int, j: int) -> str:
        return self.all(name)


def _elementwise(op, refs: Refs) -> str:
    return CELL_FORMULAS[type(op)](op, WholeRefs(refs.regions, refs.here, refs.names), 0, 0)


def linear(op: ir.Linear, r: Refs) -> str:
    # (N, out) = MMULT((N, in), (in, out)) + the bias row broadcast down the N rows
    out = f"MMULT({r.all(op.x)},TRANSPOSE({r.all(op.w)}))"
    return f"{out}+TRANSPOSE({r.all(op.b)})" if op.b else out


ARRAY_FORMULAS = {op: _elementwise for op in (ir.Tanh, ir.Sigmoid, ir.Gelu, ir.Copy, ir.Add,
                                              ir.Sub, ir.Sqrt, ir.Step, ir.LeakyRelu)}
ARRAY_FORMULAS.update({
    ir.Linear: linear,
    ir.Relu: lambda op, r: "IF({x}>0,{x},0)".format(x=r.all(op.x)),
})


# --- text and transformer ops (the GPT) --------------------------------------------------------
def causal_scores(op: ir.CausalScores, r: Refs) -> str:
    # q kᵀ / sqrt(hs) in one MMULT; a cell is masked (blank) when its key's position (column)
    # is after its query's (row): positions come from the rows of q's and k's first columns
    q, k = r.col(op.q, 0), r.col(op.k, 0)
    first_q, first_k = r.cell(op.q, 0, 0), r.cell(op.k, 0, 0)
    scores = f"MMULT({r.all(op.q)},TRANSPOSE({r.all(op.k)}))/SQRT({r.regions[op.q].ncols})"
    return (f"IF(TRANSPOSE(ROW({k}))-ROW({first_k})<=ROW({q})-ROW({first_q}),"
            f"{scores},\"\")")


def softmax(op: ir.Softmax, r: Refs) -> str:
    # max and sum are (N, 1) columns broadcast along the rows; masked (blank) cells give 0
    x, m, s = r.all(op.x), r.all(op.max), r.all(op.sum)
    probs = f"EXP({x}-{m})/{s}"
    return f"IF(ISNUMBER({x}),{probs},0)" if op.causal else probs


ARRAY_FORMULAS.update({op: _elementwise for op in (ir.Normalize, ir.ScaleShift, ir.Divide)})
ARRAY_FORMULAS.update({
    ir.CausalScores: causal_scores,
    ir.Softmax: softmax,
    ir.MatMul: lambda op, r: f"MMULT({r.all(op.a)},{r.all(op.b)})",
})


def _reading_tensors(fn):
    return lambda op, r: fn(op, ArrayRefs(r.regions, r.here, r.names))


# every entry reads its inputs through ArrayRefs (the book hands plain Refs)
ARRAY_FORMULAS = {op: _reading_tensors(fn) for op, fn in ARRAY_FORMULAS.items()}
