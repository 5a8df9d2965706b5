"""``--style arrays``: one array formula per node instead of one formula per cell.

Elementwise ops reuse their cell formula with whole ranges in place of single cells (the same
pattern, so it lives in one place); ops whose cell form would collapse inside an array formula
get their own entry: MAX(0, Z) collapses to one number, so ReLU becomes IF(Z>0, Z, 0).
IronCalc applies neither ERF (nor NORMSDIST) nor ISNUMBER to each cell of a range inside an array
formula: GELU stays one formula per cell (it is not in ARRAY_FORMULAS), and a masked score is
found by ``x=""`` instead of ISNUMBER.
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


ARRAY_FORMULAS = {op: _elementwise for op in (ir.Tanh, ir.Sigmoid, ir.Copy, ir.Add,
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
    return f'IF({x}="",0,{probs})' if op.causal else probs


def pick_row(op: ir.PickRow, r: Refs) -> str:
    # row max(n, 1) of x, as a one-hot row times x.  Not INDEX: IronCalc's INDEX reads the cells
    # of an array formula's range before that formula has run (zeros); MMULT waits for them.
    # Adding exact zeros changes nothing: the row comes out bit for bit.
    first, x0 = r.col(op.x, 0), r.cell(op.x, 0, 0)   # the tensor's rows, down its first column
    at = f"ROW({first})-ROW({x0})+COLUMN({first})-COLUMN({x0})+1"  # 1, 2, ... either layout
    hot = f"IF({at}=MAX({r.cell(op.n, 0, 0)},1),1,0)"
    hot = hot if r.regions[op.x].transposed else f"TRANSPOSE({hot})"  # a (1, T) row
    return f"MMULT({hot},{r.all(op.x)})"


ARRAY_FORMULAS.update({op: _elementwise for op in (ir.Normalize, ir.ScaleShift, ir.Divide)})
ARRAY_FORMULAS.update({
    ir.CausalScores: causal_scores,
    ir.Softmax: softmax,
    ir.MatMul: lambda op, r: f"MMULT({r.all(op.a)},{r.all(op.b)})",
    ir.PickRow: pick_row,
})


def _reading_tensors(fn):
    return lambda op, r: fn(op, ArrayRefs(r.regions, r.here, r.names))


# every entry reads its inputs through ArrayRefs (the book hands plain Refs)
ARRAY_FORMULAS = {op: _reading_tensors(fn) for op, fn in ARRAY_FORMULAS.items()}
