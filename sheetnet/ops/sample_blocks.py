"""The two-level draw for a large vocabulary (issue 16): sample.py's rule without (T, V) tables.

The per-id draw writes two (T, V) tables, p and cumulative p: at GPT-2's 50,257 ids and 16
positions, 1.6 million formula cells.  The same rule in two levels, with B ids to a block
(DRAW_BLOCK; the last block may be partial):

    BlockMass      (T, nb)  m_ib: the rule's p summed over block b's ids
    CumulativeSum  (T, nb)  their running sum (sample.py, running=True)
    PickId         (T, 1)   the block drawn: count of block cum < u (clamp=True)
    BlockIds       (T, B)   that block's ids, b*B + j
    IdProbs        (T, B)   their p by the rule (0 for an id past V)
    BlockStart     (T, 1)   the cumulative p before the block
    RunningFrom    (T, B)   the start plus the block's p, one id at a time
    PickInBlock    (T, 1)   count of those < u: the id's place in the block

The id is the block's ids at that place (ValueAt), the smallest whose cumulative p reaches u, as
the per-id draw finds it, up to the order the additions are made in (within 1e-15, far inside
generation.TIE).  Every formula reads its own row only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Example, Op, PerCellOnly, Ref, as_array_text, register
from .sample import ROWS, _kth_of, _one, count_below, counts_below, rule_cell, rule_probs

# 64 ids to a block: a block's running sum is a chain of 63 additions after its start, as the
# per-id cumulative p's chains (sample.CUM_BLOCK), and GPT-2's 50,257 ids make 786 blocks, so
# a position costs ~850 cells instead of 100,514.
DRAW_BLOCK = 64
_PER_ROW = PerCellOnly("one number per row from its own cells: a cell formula per row already")
_HELPERS = ("x", "kth", "max", "sum", "argmax", "t")  # the rule's inputs, as SampleProbs reads them


def _example_helpers(t: float = 0.5) -> dict:
    # ROWS (2, 6) with their top-3 threshold, max, kept sum and argmax: SampleProbs' example
    kth, m = _kth_of({"x": ROWS, "k": [[3.0]]}, "x", "k"), ROWS.max(axis=1, keepdims=True)
    s = (np.exp((ROWS - m) / t) * (ROWS >= kth)).sum(axis=1, keepdims=True)
    arg = ROWS.argmax(axis=1)[:, None].astype(np.float64)
    return {"x": ROWS, "kth": kth, "max": m, "sum": s, "argmax": arg, "t": np.array([[t]])}


def _torch_p(T, x, kth, t):
    # the rule's p in torch (T > 0): softmax(x / t) over the kept ids
    return T.softmax((x / t).masked_fill(x < kth, -np.inf), 1)


def _at(r, x: str, i: int, at: str) -> str:
    # row i of x at the 1-based place ``at`` (the row alone, transposed or not: see ValueAt)
    row = r.row(x, i)
    return f"INDEX({row},{at},1)" if r.regions[x].transposed else f"INDEX({row},1,{at})"


@register
@dataclass(frozen=True)
class BlockMass(Op):
    """(N, nb): per row, the rule's p summed over each block of ``size`` ids (nb = ceil(V /
    size), the last block partial): T > 0, the kept ids' exp((x - max) / T) summed over the
    block, over the row's kept sum; T = 0, 1 for the block holding the argmax, 0 elsewhere."""
    INPUTS = _HELPERS
    x: Ref
    kth: Ref
    max: Ref
    sum: Ref
    argmax: Ref
    t: Ref
    size: int = DRAW_BLOCK
    array = PerCellOnly("a greedy case (T = 0) beside the block's sum: one formula per block")

    def reference(self, v):
        # as the formula: T > 0, the block's kept exps summed, then divided by the row's sum
        x, t = np.asarray(v[self.x], dtype=np.float64), float(np.asarray(v[self.t]).flat[0])
        hot = np.asarray(v[self.argmax], dtype=np.float64)[:, 0].astype(int)
        kept = x >= np.asarray(v[self.kth], dtype=np.float64)
        if t == 0:
            e = np.zeros_like(x)
            e[np.arange(len(hot)), hot] = 1.0
        else:
            e = kept * np.exp((x - np.asarray(v[self.max], dtype=np.float64)) / t)
        nb, n = -(-x.shape[1] // self.size), x.shape[0]
        padded = np.zeros((n, nb * self.size))
        padded[:, :x.shape[1]] = e
        mass = padded.reshape(n, nb, self.size).sum(axis=2)
        return mass if t == 0 else mass / np.asarray(v[self.sum], dtype=np.float64)

    @as_array_text  # EXP over a range inside SUMPRODUCT: see ArrayText
    def formula(self, r, i, j):
        v, t = r.shape(self.x)[1], r.cell(self.t, 0, 0)
        xb = r.span(self.x, (i, i + 1), (j * self.size, min(v, (j + 1) * self.size)))
        kth, m, s, arg = (r.cell(n, i, 0) for n in (self.kth, self.max, self.sum, self.argmax))
        # the argmax's block: INT(id / size) is exact for whole ids below 2^52
        greedy = f"IF(INT({arg}/{self.size})={j},1,0)"
        return f"IF({t}=0,{greedy},SUMPRODUCT(({xb}>={kth})*EXP(({xb}-{m})/{t}))/{s})"

    @staticmethod
    def example():
        # 6 ids in blocks of 4: a whole block and a partial one
        def mass(T, x, kth, m, s, a, t):
            p = T.nn.functional.pad(_torch_p(T, x, kth, t), (0, 2))
            return p.view(2, 2, 4).sum(2)
        return Example(_example_helpers(), BlockMass(*_HELPERS, size=4), mass)


@register
@dataclass(frozen=True)
class BlockIds(Op):
    """(N, size): per row, the ids of the block drawn, b * size + j (past V in a partial last
    block: IdProbs gives those 0)."""
    INPUTS = ("block",)
    block: Ref
    size: int = DRAW_BLOCK
    array = _PER_ROW

    def reference(self, v):
        b = np.asarray(v[self.block], dtype=np.float64)
        return b * self.size + np.arange(self.size, dtype=np.float64)

    def formula(self, r, i, j):
        b = r.cell(self.block, i, 0)
        return f"{b}*{self.size}+{j}" if j else f"{b}*{self.size}"

    @staticmethod
    def example():
        return Example({"block": np.array([[0.0], [2.0]])}, BlockIds("block", size=3),
                       lambda T, b: b * 3 + T.arange(3, dtype=T.float64))


@register
@dataclass(frozen=True)
class IdProbs(Op):
    """(N, k): per row, the rule's p (SampleProbs) of the ids in ``ids`` (N, k), read from the
    row's logits by INDEX; 0 for an id past the row (a partial last block's)."""
    INPUTS = ("x", "ids", "kth", "max", "sum", "argmax", "t")
    x: Ref
    ids: Ref
    kth: Ref
    max: Ref
    sum: Ref
    argmax: Ref
    t: Ref
    array = PerCellOnly("INDEX by a computed id: one cell at a time")

    def reference(self, v):
        p = rule_probs(*(v[n] for n in (self.x, self.kth, self.max, self.sum, self.argmax,
                                        self.t)))
        ids = np.asarray(v[self.ids], dtype=np.float64).astype(int)
        padded = np.hstack([p, np.zeros((p.shape[0], 1))])  # an id past V reads the 0
        return padded[np.arange(len(ids))[:, None], np.minimum(ids, p.shape[1])]

    def formula(self, r, i, j):
        v, t, k = r.shape(self.x)[1], r.cell(self.t, 0, 0), r.cell(self.ids, i, j)
        kth, m, s, arg = (r.cell(n, i, 0) for n in (self.kth, self.max, self.sum, self.argmax))
        x = _at(r, self.x, i, f"{k}+1")
        rule = rule_cell(t, f"{arg}={k}", x, kth, m, s)
        return f"IF({k}>={v},0,{rule})"  # IF first: INDEX past the row is an error

    @staticmethod
    def example():
        ids = np.array([[4.0, 5.0, 6.0, 7.0], [1.0, 0.0, 3.0, 2.0]])  # row 0: 6, 7 past V
        names = ("x", "ids", "kth", "max", "sum", "argmax", "t")

        def probs(T, x, ids, kth, m, s, a, t):
            p = T.nn.functional.pad(_torch_p(T, x, kth, t), (0, 2))
            return p.gather(1, ids.long())
        helpers = _example_helpers()
        return Example({n: ids if n == "ids" else helpers[n] for n in names}, IdProbs(*names),
                       probs)


@register
@dataclass(frozen=True)
class BlockStart(Op):
    """(N, 1): per row, the cumulative sum before block b: 0 for the first block, else the
    ``cum`` (N, nb) row's cell b - 1."""
    INPUTS = ("cum", "block")
    cum: Ref
    block: Ref
    array = _PER_ROW

    def reference(self, v):
        cum = np.asarray(v[self.cum], dtype=np.float64)
        b = np.asarray(v[self.block], dtype=np.float64)[:, 0].astype(int)
        before = np.hstack([np.zeros((len(b), 1)), cum])  # column b: the cum at b - 1
        return before[np.arange(len(b)), b][:, None]

    def formula(self, r, i, j):
        b = r.cell(self.block, i, 0)
        return f"IF({b}=0,0,{_at(r, self.cum, i, b)})"  # IF first: INDEX(.., 0) is the row

    @staticmethod
    def example():
        cum = np.cumsum([[0.25, 0.5, 0.25], [0.125, 0.5, 0.375]], axis=1)
        return Example({"cum": cum, "block": np.array([[0.0], [2.0]])}, BlockStart("cum", "block"),
                       lambda T, c, b: T.nn.functional.pad(c, (1, 0)).gather(1, b.long()))


@register
@dataclass(frozen=True)
class RunningFrom(Op):
    """(N, W): per row, start + x_0 + ... + x_j, each cell adding its x to the cell before it
    (a chain of W cells: W is a block's 64 ids), the first adding x_0 to ``start`` (N, 1)."""
    INPUTS = ("x", "start")
    x: Ref
    start: Ref
    array = PerCellOnly("each cell adds its x to the cell before it: a chain of cells")

    def reference(self, v):
        # np.cumsum adds left to right, as the chain does
        both = np.hstack([np.asarray(v[self.start], dtype=np.float64),
                          np.asarray(v[self.x], dtype=np.float64)])
        return np.cumsum(both, axis=1)[:, 1:]

    def formula(self, r, i, j):
        before = r.mine(i, j - 1) if j else r.cell(self.start, i, 0)
        return f"{before}+{r.cell(self.x, i, j)}"

    @staticmethod
    def example():
        x = np.array([[0.125, 0.25, 0.0], [0.1, 0.2, 0.3]])
        return Example({"x": x, "start": np.array([[0.5], [0.0]])}, RunningFrom("x", "start"),
                       lambda T, x, s: s + x.cumsum(1))


@register
@dataclass(frozen=True)
class PickInBlock(Op):
    """(N, 1): per row, the place in block b of the smallest id whose cumulative p (``cum``,
    (N, size), from RunningFrom) reaches u: the count of c_j < u, clamped to the block's last
    real id, min(size - 1, v - 1 - b * size).

    The block was drawn because u lies between the cumulative masses before it and at its end;
    the running sum inside it adds the same p in another order, so only a u within rounding of
    the block's end (1e-16, far inside generation.TIE) finds no c_j >= u and reaches the clamp.
    """
    INPUTS = ("cum", "u", "block")
    cum: Ref
    u: Ref
    block: Ref
    v: int
    size: int = DRAW_BLOCK
    array = _PER_ROW

    def reference(self, v):
        b = np.asarray(v[self.block], dtype=np.float64)
        count = counts_below(v[self.cum], v[self.u])
        return np.minimum(count, np.minimum(self.size - 1, self.v - 1 - b * self.size))

    @as_array_text  # a comparison over a range inside SUMPRODUCT: see ArrayText
    def formula(self, r, i, j):
        b = r.cell(self.block, i, 0)
        count = count_below(r.row(self.cum, i), _one(r, self.u, i))
        return f"MIN({count},{self.size - 1},{self.v - 1}-{b}*{self.size})"

    @staticmethod
    def example():
        # row 0: block 0 of 3, u between c_0 and c_1 -> 1; row 1: the last block (ids 3, 4 of
        # v = 5), u past every c -> clamped to its last real id, place 1
        cum = np.array([[0.1, 0.4, 0.5], [0.7, 0.9, 0.9]])
        u, b = np.array([[0.25], [0.95]]), np.array([[0.0], [1.0]])

        def place(T, c, u, b):  # clamped to min(size - 1, v - 1 - b * size)
            return (c < u).sum(1, keepdim=True).double().minimum((4 - 3 * b).clamp_max(2))
        return Example({"cum": cum, "u": u, "block": b}, PickInBlock("cum", "u", "block", 5, 3),
                       place)
