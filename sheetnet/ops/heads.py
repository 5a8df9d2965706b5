"""Attention heads as the generic front end lays them out: scores with any scale, a causal mask
over a computed (T, T) block, and cell moves (a gather by position, blocks stacked by rows).

A (1, H, T, D) tensor is not copied into its own block: its heads are column rectangles of the
(T, H*D) projection (ir.View, no cells; capture/heads.py).  ``Gather`` is the fallback when a
view of a tensor is no rectangle of any block: each cell a plain reference to one source cell.
Masked (future) scores are blank cells, as in attention.py's CausalScores.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Example, Op, PerCellOnly, Ref, number, register

_RNG = np.random.default_rng(23)
Q, K = _RNG.normal(size=(3, 2)), _RNG.normal(size=(3, 2))   # (T=3, head size 2)
S = _RNG.normal(size=(3, 3))                                 # (T, T) scores
_MOVES = PerCellOnly("each cell is a plain reference to one cell of its input")


def _masked(scores: np.ndarray) -> np.ndarray:
    scores = scores.copy()
    scores[np.triu(np.ones(scores.shape, dtype=bool), k=1)] = -np.inf
    return scores


@register
@dataclass(frozen=True)
class ScaledScores(Op):
    """(T, S) = q kᵀ * scale; ``causal``: the future (column > row) masked, -inf in PyTorch and
    the reference, blank in the sheet.  CausalScores is the case scale = 1/sqrt(head size)."""
    INPUTS = ("q", "k")
    q: Ref
    k: Ref
    scale: float = 1.0
    causal: bool = False

    def reference(self, v):
        scores = v[self.q] @ v[self.k].T * self.scale
        return _masked(scores) if self.causal else scores

    def formula(self, r, i, j):
        if self.causal and j > i:
            return '""'
        dot = f"SUMPRODUCT({r.row(self.q, i)},{r.row(self.k, j)})"
        return dot if self.scale == 1 else f"{dot}*{number(self.scale)}"

    def array(self, r):
        scores = f"MMULT({r.all(self.q)},TRANSPOSE({r.all(self.k)}))*{number(self.scale)}"
        if not self.causal:
            return scores
        q, k = r.col(self.q, 0), r.col(self.k, 0)
        first_q, first_k = r.cell(self.q, 0, 0), r.cell(self.k, 0, 0)
        return (f"IF(TRANSPOSE(ROW({k}))-ROW({first_k})<=ROW({q})-ROW({first_q}),"
                f"{scores},\"\")")

    @staticmethod
    def example():
        def masked(T, q, k):
            scores = q @ k.T * 0.3
            return scores.masked_fill(T.ones_like(scores).triu(1).bool(), -float("inf"))
        return Example({"q": Q, "k": K}, ScaledScores("q", "k", 0.3, True), masked)


@register
@dataclass(frozen=True)
class CausalMask(Op):
    """x (T, T) with the future (column > row) masked: masked_fill(tril == 0, -inf) on scores
    that were not computed masked; blank cells in the sheet, -inf in PyTorch."""
    INPUTS = ("x",)
    x: Ref
    array = PerCellOnly("each cell a plain reference to x's cell, or blank above the diagonal")

    def reference(self, v):
        return _masked(v[self.x])

    def formula(self, r, i, j):
        return '""' if j > i else r.cell(self.x, i, j)

    @staticmethod
    def example():
        return Example({"x": S}, CausalMask("x"), lambda T, x: x.masked_fill(
            T.ones_like(x).triu(1).bool(), -float("inf")))


@register
@dataclass(frozen=True)
class Gather(Op):
    """(R, C): cell k (row-major) is x's cell (rows[k], cols[k]): a view of a tensor that is no
    rectangle of the block holding it (a head's transpose, an interleaved repeat)."""
    INPUTS = ("x",)
    x: Ref
    shape: tuple[int, int]
    rows: tuple[int, ...]
    cols: tuple[int, ...]
    array = _MOVES

    def reference(self, v):
        return np.asarray(v[self.x])[np.array(self.rows), np.array(self.cols)].reshape(self.shape)

    def formula(self, r, i, j):
        k = i * self.shape[1] + j
        return r.cell(self.x, self.rows[k], self.cols[k])

    @staticmethod
    def example():
        x = np.arange(6.0).reshape(2, 3) - 2.5                 # (2, 3) -> its transpose (3, 2)
        rows, cols = zip(*[(i, j) for j in range(3) for i in range(2)])
        return Example({"x": x}, Gather("x", (3, 2), rows, cols), lambda T, x: x.T.contiguous())


@register
@dataclass(frozen=True)
class StackRows(Op):
    """Blocks with the same columns stacked top to bottom (torch.cat along a leading dim)."""
    INPUTS = ("parts",)
    parts: tuple[Ref, ...]
    array = _MOVES

    def reference(self, v):
        return np.vstack([v[p] for p in self.parts])

    def formula(self, r, i, j):
        for part in self.parts:
            rows = r.shape(part)[0]
            if i < rows:
                return r.cell(part, i, j)
            i -= rows
        raise IndexError("row beyond the stacked parts")

    @staticmethod
    def example():
        return Example({"p": Q, "q": K[:2]}, StackRows(("p", "q")),
                       lambda T, p, q: T.cat([p, q], 0))
