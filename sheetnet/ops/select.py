"""Ops that pick cells by position or rank: a row, the largest values and where they are."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Example, Op, PerCellOnly, Ref, as_array_text, register

# (1, 5) with a tie (0.5 twice): ties take their columns in order
ROW = np.array([[0.5, -1.0, 2.25, 0.5, 0.0]])
X = np.array([[1.0, 3.0, -2.0], [0.5, 0.5, -4.0], [7.0, 2.0, 7.0]])  # (3, 3), ties in rows 2, 3
_RANKED = PerCellOnly("LARGE/SMALL by rank: a cell formula per rank already")


@register
@dataclass(frozen=True)
class PickRow(Op):
    """(1, F): row n - 1 of x, n counting from 1 (the prompt's last position); n < 1 reads row 0."""
    INPUTS = ("x", "n")
    x: Ref
    n: Ref

    def reference(self, v):
        n = max(int(v[self.n][0, 0]), 1)
        return v[self.x][n - 1:n].copy()

    def formula(self, r, i, j):
        return r.index(self.x, f"MAX({r.cell(self.n, 0, 0)},1)", j + 1)

    def array(self, r):
        # row max(n, 1) of x, as a one-hot row times x.  Not INDEX: IronCalc's INDEX reads the
        # cells of an array formula's range before that formula has run (zeros); MMULT waits for
        # them.  Adding exact zeros changes nothing: the row comes out bit for bit.
        first, x0 = r.col(self.x, 0), r.cell(self.x, 0, 0)  # the rows, down its first column
        at = f"ROW({first})-ROW({x0})+COLUMN({first})-COLUMN({x0})+1"  # 1, 2, ... either layout
        hot = f"IF({at}=MAX({r.cell(self.n, 0, 0)},1),1,0)"
        hot = hot if r.regions[self.x].transposed else f"TRANSPOSE({hot})"  # a (1, T) row
        return f"MMULT({hot},{r.all(self.x)})"

    @staticmethod
    def example():
        return Example({"x": X, "n": np.array([[2.0]])}, PickRow("x", "n"),
                       lambda T, x, n: x[int(n) - 1:int(n)])


@register
@dataclass(frozen=True)
class Largest(Op):
    """(k, 1): the k largest values of a (1, F) row, largest first."""
    INPUTS = ("x",)
    x: Ref
    k: int
    array = _RANKED

    def reference(self, v):
        return np.sort(v[self.x][0])[::-1][:self.k, None].copy()

    def formula(self, r, i, j):
        return f"LARGE({r.all(self.x)},{i + 1})"

    @staticmethod
    def example():
        return Example({"x": ROW}, Largest("x", 3), lambda T, x: x[0].topk(3).values[:, None])


def kth_largest_id(x: str, x0: str, n: int, k: int) -> str:
    """The formula of the 0-based position of the k-th largest value of range ``x`` (first cell
    ``x0``, ``n`` cells along it), ties in position order, as LargestIds and RowTopIds write it."""
    v = f"LARGE({x},{k})"
    at = f"COLUMN({x})-COLUMN({x0})+ROW({x})-ROW({x0})"
    return f"SMALL(IF({x}={v},{at},{n}),{k}-SUMPRODUCT(({x}>{v})*1))"


@register
@dataclass(frozen=True)
class LargestIds(Op):
    """(k, 1): the 0-based columns of the k largest values, each column once (equal values in
    column order)."""
    INPUTS = ("x",)
    x: Ref
    k: int
    array = _RANKED

    def reference(self, v):
        # largest first, equal values in column order (as the sheet's formulas pick them)
        return np.argsort(-v[self.x][0], kind="stable")[:self.k, None].astype(np.float64)

    @as_array_text
    def formula(self, r, i, j):
        # the position of the (i+1)-th largest value v.  Ties (probabilities that underflowed to
        # 0, say) take their positions in order, each once: v's first occurrence has rank (the
        # count of values above v) + 1, so rank i+1 is v's (i+1 - count above)-th occurrence,
        # which SMALL finds among the positions holding v (n, past the end, elsewhere).  The
        # positions count along the row or down the column alike (a transposed layout), one of
        # the two terms is 0.
        return kth_largest_id(r.all(self.x), r.cell(self.x, 0, 0), r.shape(self.x)[1], i + 1)

    @staticmethod
    def example():
        return Example({"x": ROW}, LargestIds("x", 4),
                       lambda T, x: T.sort(-x[0], stable=True).indices[:4, None].double())


@register
@dataclass(frozen=True)
class RowArgmax(Op):
    """(N, 1): the 0-based column of each row's largest value (the first one on ties, as torch)."""
    INPUTS = ("x",)
    x: Ref
    array = PerCellOnly("MATCH of a row's MAX: one number per row")

    def reference(self, v):
        return np.argmax(v[self.x], axis=1).astype(np.float64)[:, None]

    def formula(self, r, i, j):
        # MAX is one of the row's values exactly, so MATCH(..., 0) finds its first column
        return "MATCH(MAX({x}),{x},0)-1".format(x=r.row(self.x, i))

    @staticmethod
    def example():
        return Example({"x": X}, RowArgmax("x"), lambda T, x: x.argmax(1, keepdim=True).double())
