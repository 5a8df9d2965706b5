"""Causal self-attention in steps: scores, the row max and sum of a stable softmax, the softmax.

A masked (future) score is -inf in PyTorch and the reference and a blank cell in the sheet: the
row max and sum read only a row's first i+1 cells (``causal``), and exp(-inf - max) = 0 makes the
reference's max and sum skip them by themselves.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .base import Example, Op, PerCellOnly, Ref, as_array_text, register

_RNG = np.random.default_rng(11)
Q, K = _RNG.normal(size=(3, 2)), _RNG.normal(size=(3, 2))  # (T=3, head size 2)
S = _RNG.normal(size=(3, 4)) * 2                             # (N=3, 4) scores
S_MAX = S.max(axis=1, keepdims=True)                         # (3, 1)
S_SUM = np.exp(S - S_MAX).sum(axis=1, keepdims=True)         # (3, 1)
_ROWWISE = PerCellOnly("one number per row from a whole row: a cell formula per row already")


def _upto_diagonal(r, name: str, i: int, causal: bool) -> str:
    # row i of a (T, T) score block; causal: only its first i+1 cells (the rest are masked)
    cols = (0, i + 1) if causal else (0, r.shape(name)[1])
    return r.span(name, (i, i + 1), cols)


@register
@dataclass(frozen=True)
class CausalScores(Op):
    """(T, T) = q kᵀ / sqrt(head size); future cells (column > row) are masked: -inf in PyTorch
    and the reference, blank cells in the sheet (verify counts a blank against -inf as equal)."""
    INPUTS = ("q", "k")
    q: Ref
    k: Ref

    def reference(self, v):
        q, k = v[self.q], v[self.k]  # (T, hs) each
        scores = q @ k.T / math.sqrt(q.shape[1])
        scores[np.triu(np.ones(scores.shape, dtype=bool), k=1)] = -np.inf
        return scores

    def formula(self, r, i, j):
        if j > i:
            return '""'  # the future: masked (PyTorch's -inf), shown blank
        return f"SUMPRODUCT({r.row(self.q, i)},{r.row(self.k, j)})/SQRT({r.shape(self.q)[1]})"

    def array(self, r):
        # q kᵀ / sqrt(hs) in one MMULT; a cell is masked (blank) when its key's position (column)
        # is after its query's (row): positions come from the rows of q's and k's first columns
        q, k = r.col(self.q, 0), r.col(self.k, 0)
        first_q, first_k = r.cell(self.q, 0, 0), r.cell(self.k, 0, 0)
        size = r.regions[self.q].ncols  # the head size (q is never transposed: T is small)
        scores = f"MMULT({r.all(self.q)},TRANSPOSE({r.all(self.k)}))/SQRT({size})"
        return (f"IF(TRANSPOSE(ROW({k}))-ROW({first_k})<=ROW({q})-ROW({first_q}),"
                f"{scores},\"\")")

    @staticmethod
    def example():
        def masked(T, q, k):
            scores = q @ k.T / math.sqrt(q.shape[1])
            return scores.masked_fill(T.ones_like(scores).triu(1).bool(), -math.inf)
        return Example({"q": Q, "k": K}, CausalScores("q", "k"), masked)


@register
@dataclass(frozen=True)
class RowMax(Op):
    """(N, 1): the max of each row; ``causal``: of row i's first i+1 cells only."""
    INPUTS = ("x",)
    x: Ref
    causal: bool = False
    array = _ROWWISE

    def reference(self, v):
        return v[self.x].max(axis=1, keepdims=True)

    def formula(self, r, i, j):
        return f"MAX({_upto_diagonal(r, self.x, i, self.causal)})"

    @staticmethod
    def example():
        return Example({"x": S}, RowMax("x"), lambda T, x: x.max(1, keepdim=True).values)


@register
@dataclass(frozen=True)
class RowSumExp(Op):
    """(N, 1): sum of exp(x - max) along each row (``causal``: the first i+1 cells)."""
    INPUTS = ("x", "max")
    x: Ref
    max: Ref
    causal: bool = False
    array = _ROWWISE

    def reference(self, v):
        return np.exp(v[self.x] - v[self.max]).sum(axis=1, keepdims=True)

    @as_array_text  # EXP over a range inside SUMPRODUCT: see ArrayText
    def formula(self, r, i, j):
        return "SUMPRODUCT(EXP({x}-{m}))".format(
            x=_upto_diagonal(r, self.x, i, self.causal), m=r.cell(self.max, i, 0))

    @staticmethod
    def example():
        return Example({"x": S, "max": S_MAX}, RowSumExp("x", "max"),
                       lambda T, x, m: (x - m).exp().sum(1, keepdim=True))


@register
@dataclass(frozen=True)
class Softmax(Op):
    """exp(x - max) / sum per row, the row max subtracted so exp never overflows; ``causal``:
    0 for the masked cells above the diagonal."""
    INPUTS = ("x", "max", "sum")
    x: Ref
    max: Ref
    sum: Ref
    causal: bool = False

    def reference(self, v):
        return np.exp(v[self.x] - v[self.max]) / v[self.sum]

    def formula(self, r, i, j):
        if self.causal and j > i:
            return "0"
        return f"EXP({r.cell(self.x, i, j)}-{r.cell(self.max, i, 0)})/{r.cell(self.sum, i, 0)}"

    def array(self, r):
        # max and sum are (N, 1) columns broadcast along the rows; masked (blank) cells give 0
        x, m, s = r.all(self.x), r.all(self.max), r.all(self.sum)
        probs = f"EXP({x}-{m})/{s}"
        return f'IF({x}="",0,{probs})' if self.causal else probs

    @staticmethod
    def example():
        return Example({"x": S, "max": S_MAX, "sum": S_SUM}, Softmax("x", "max", "sum"),
                       lambda T, x, m, s: T.softmax(x, 1))
