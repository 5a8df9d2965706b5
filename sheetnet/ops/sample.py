"""Sampling the next id by formulas, exactly specified (issue 16).

The rule: cells Temperature T (>= 0), Top-k k (0 = all) and Seed (an integer 1 .. 2^31 - 2).
The uniform numbers are the MINSTD stream: state_0 = seed, state_j = state_(j-1) * 48271 mod
2147483647, u_j = state_j / 2147483647.  Step j keeps the ids whose logit is at least the k-th
largest (ties kept), p = softmax(logits / T) over them (0 elsewhere), and picks the smallest id
whose cumulative p, summed in id order, reaches u_j.  T = 0 is greedy: p is 1 at the argmax (the
smallest id among equal maxima), so the same pick returns the argmax whatever u_j in (0, 1).

One unit per step a reader follows down the sheet (the stream's units are in minstd.py):
    MinstdNext -> Uniform              state_j, u_j
    TopKMask -> MaskedSoftmax -> CumulativeSum -> PickId -> ValueAt   kept, p, cumulative p, id, p(id)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Example, Op, PerCellOnly, Ref, as_array_text, register

# (1, 6) logits with a tie at the 3rd largest (0.5 twice) and a tie at the max (2.0 twice)
LOGITS = np.array([[0.5, 2.0, -1.0, 0.5, 2.0, 0.25]])
_ONE_PER_ROW = PerCellOnly("one number from a whole (1, V) row: a cell formula already")


def kth_largest(row: np.ndarray, k: int) -> float:
    """The top-k threshold of a (V,) row: its k-th largest value; its smallest when k is 0 (or
    at least V), so that every id is kept."""
    k = len(row) if k <= 0 or k >= len(row) else k
    return float(np.sort(row)[::-1][k - 1])


def top_k_mask(logits: np.ndarray, k: int) -> np.ndarray:
    """1 where a logit of the (1, V) row is at least the k-th largest (ties kept), else 0; every
    id when k is 0 (or at least V)."""
    return (logits >= kth_largest(logits[0], k)).astype(np.float64)


@register
@dataclass(frozen=True)
class TopKMask(Op):
    """(1, V): 1 for the ids kept by top-k (logit >= the k-th largest, ties kept), 0 for the rest;
    k (a (1, 1) cell) 0 keeps every id, k above V is V."""
    INPUTS = ("x", "k")
    x: Ref
    k: Ref
    array = PerCellOnly("LARGE of the row by the k cell: a cell formula per id reads it once")

    def reference(self, v):
        return top_k_mask(np.asarray(v[self.x], dtype=np.float64), int(v[self.k][0, 0]))

    def formula(self, r, i, j):
        # nested IF, not OR: OR evaluates LARGE(.., 0), an error, even when k = 0
        x, k, n = r.all(self.x), r.cell(self.k, 0, 0), r.shape(self.x)[1]
        return f"IF({k}<1,1,IF({r.cell(self.x, 0, j)}>=LARGE({x},MIN({k},{n})),1,0))"

    @staticmethod
    def example():
        def kept(T, x, k):
            kth = x[0].topk(int(k)).values[-1]
            return (x >= kth).double()
        return Example({"x": LOGITS, "k": np.array([[3.0]])}, TopKMask("x", "k"), kept)


def masked_softmax(logits: np.ndarray, mask: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logits / T) over the kept ids, 0 elsewhere; T = 0: 1 at the first argmax."""
    if temperature == 0:
        out = np.zeros_like(logits, dtype=np.float64)
        out[0, int(np.argmax(logits[0]))] = 1.0
        return out
    # the max is always kept (it is at least the k-th largest), so it is the kept ids' max too
    e = np.exp((logits - logits.max()) / temperature) * mask
    return e / e.sum()


@register
@dataclass(frozen=True)
class MaskedSoftmax(Op):
    """(1, V): p = exp((x - max) / T) / sum over the kept ids (mask 1), 0 for the others.

    T = 0 is greedy: p is 1 at the first largest logit (MATCH finds the smallest id among equal
    maxima) and 0 elsewhere, so the pick that follows returns the argmax whatever u is.
    """
    INPUTS = ("x", "mask", "t")
    x: Ref
    mask: Ref
    t: Ref
    array = PerCellOnly("a greedy case (T = 0) beside the softmax: one formula per probability")

    def reference(self, v):
        return masked_softmax(np.asarray(v[self.x], dtype=np.float64),
                              np.asarray(v[self.mask], dtype=np.float64), float(v[self.t][0, 0]))

    @as_array_text  # EXP over a range inside SUMPRODUCT: see ArrayText
    def formula(self, r, i, j):
        x, m, t = r.all(self.x), r.all(self.mask), r.cell(self.t, 0, 0)
        xj, mj = r.cell(self.x, 0, j), r.cell(self.mask, 0, j)
        greedy = f"IF(MATCH(MAX({x}),{x},0)={j + 1},1,0)"
        soft = f"{mj}*EXP(({xj}-MAX({x}))/{t})/SUMPRODUCT({m}*EXP(({x}-MAX({x}))/{t}))"
        return f"IF({t}=0,{greedy},{soft})"

    @staticmethod
    def example():
        mask = top_k_mask(LOGITS, 3)
        return Example({"x": LOGITS, "mask": mask, "t": np.array([[0.5]])},
                       MaskedSoftmax("x", "mask", "t"),
                       lambda T, x, m, t: T.softmax((x / t).masked_fill(m == 0, -np.inf), 1))


def _row(r, x: str, i: int) -> str:
    # row i of an (N, V) node as a range; a (1, V) node by its whole name (the text net's steps)
    return r.all(x) if r.shape(x)[0] == 1 else r.row(x, i)


def _one(r, x: str, i: int) -> str:
    # the (N, 1) node's cell for row i; a (1, 1) node's only cell for every row
    return r.cell(x, i if r.shape(x)[0] > 1 else 0, 0)


# The running sum's cells form a chain: a cell that adds its x to the cell before it waits for
# that cell, so a (T, 1,000) table was a 1,000-deep chain per row.  LibreOffice 7.4 then crashed
# (a SIGSEGV under ScCellObj::setValue, exit 134) on 4 of 6 edits of a cells-style token-id GPT
# after load; with chains of at most 63 cells, on 2 of 20 (engines/libreoffice.py avoids or
# survives the rest).  Three levels keep every chain short and the work linear:
CUM_BLOCK = 32      # a cell adds its x to the cell before it, within a block of 32 ids ...
CUM_SPAN = 1024     # ... a block's first cell adds the block before it, within 1,024 ids ...
# ... and a span's first cell is the SUM of the row so far: no cell waits on more than 63 others,
# and a row costs V + V^2 / 2,048 additions (GPT-2's 50,257 ids: 1.3 million).


def blocked_cumsum(row: np.ndarray, block: int = CUM_BLOCK, span: int = CUM_SPAN) -> np.ndarray:
    """A (V,) row's cumulative sums added in CumulativeSum's order (the formulas' own): SUMs as
    math.fsum, the correctly rounded sum that LibreOffice's compensated SUM gives for p >= 0."""
    import math
    out = np.empty(len(row))
    for j, x in enumerate(np.asarray(row, dtype=np.float64)):
        if j % span == 0:
            out[j] = math.fsum(row[:j + 1])
        elif j % block == 0:
            out[j] = out[j - block] + math.fsum(row[j - block + 1:j + 1])
        else:
            out[j] = out[j - 1] + x
    return out


@register
@dataclass(frozen=True)
class CumulativeSum(Op):
    """(N, V): c_ij = x_i0 + ... + x_ij, summed in id order along each row.

    ``running`` (a GPT's (T, V) draws): each cell adds its own x to the cell before it
    (c_i(j-1) + x_ij), except at the first id of a block of ``block`` ids, which adds the SUM of
    that block's x to the block's start before it (c_i(j-block) + SUM), and at the first id of
    a span of ``span`` ids, the SUM of the row so far: chains of at most block + span / block
    cells (see CUM_BLOCK); the reference adds in the same order (blocked_cumsum).  Otherwise
    SUM of the row's first j + 1 cells (the text net's (1, V) steps), quadratic in V.
    """
    INPUTS = ("x",)
    x: Ref
    running: bool = False
    block: int = CUM_BLOCK
    span: int = CUM_SPAN
    array = PerCellOnly("a growing range per cell: SUM of the row's first j + 1 cells")

    def reference(self, v):
        x = np.asarray(v[self.x], dtype=np.float64)
        if not self.running:
            return np.cumsum(x, axis=1)
        return np.array([blocked_cumsum(row, self.block, self.span) for row in x])

    def formula(self, r, i, j):
        if self.running and j % self.span:
            if j % self.block:
                return f"{r.mine(i, j - 1)}+{r.cell(self.x, i, j)}"
            since = r.span(self.x, (i, i + 1), (j - self.block + 1, j + 1))
            return f"{r.mine(i, j - self.block)}+SUM({since})"
        if self.running and j == 0:
            return r.cell(self.x, i, 0)
        return f"SUM({r.span(self.x, (i, i + 1), (0, j + 1))})"

    @staticmethod
    def example():
        # blocks of 2 ids in spans of 4 over 6 ids: every kind of cell, twice each
        p = np.vstack([masked_softmax(LOGITS, top_k_mask(LOGITS, k), 0.5) for k in (3, 0)])
        return Example({"x": p}, CumulativeSum("x", running=True, block=2, span=4),
                       lambda T, x: x.cumsum(1))


def counts_below(cum, u) -> np.ndarray:
    """(N, 1): per row, how many cumulative p's (N, W) lie below u ((N, 1) or (1, 1)): the place
    of the first that reaches u (c never decreases)."""
    cum, u = np.asarray(cum, dtype=np.float64), np.asarray(u, dtype=np.float64)
    return np.sum(cum < u, axis=1, keepdims=True).astype(np.float64)


def count_below(cum: str, u: str) -> str:
    """counts_below as a cell formula over one row's range.  Not COUNTIF(range, "<"&u): that
    turns u into text, 15 digits, and the pick may move."""
    return f"SUMPRODUCT(({cum}<{u})*1)"


@register
@dataclass(frozen=True)
class PickId(Op):
    """(N, 1): per row, the smallest id whose cumulative p reaches u: the count of ids with
    c_j < u (c never decreases).  u < 1 - 4.6e-10 and the total is 1 within V ulps, so an id
    always reaches u.  u is (N, 1), or (1, 1) for every row.  ``clamp``: at most the last column
    (the two-level draw's block, whose cumulative masses are added in another order than the
    per-id p's: a u within rounding of the total would otherwise count past the end)."""
    INPUTS = ("cum", "u")
    cum: Ref
    u: Ref
    clamp: bool = False
    array = _ONE_PER_ROW

    def reference(self, v):
        count = counts_below(v[self.cum], v[self.u])
        return np.minimum(count, np.shape(v[self.cum])[1] - 1) if self.clamp else count

    @as_array_text  # a comparison over a range inside SUMPRODUCT: see ArrayText
    def formula(self, r, i, j):
        count = count_below(_row(r, self.cum, i), _one(r, self.u, i))
        return f"MIN({count},{r.shape(self.cum)[1] - 1})" if self.clamp else count

    @staticmethod
    def example():
        cum = np.cumsum(masked_softmax(LOGITS, top_k_mask(LOGITS, 3), 0.5), axis=1)
        u = np.array([[(cum[0, 1] + cum[0, 3]) / 2]])  # between id 1's and id 3's: picks id 3
        return Example({"cum": cum, "u": u}, PickId("cum", "u"),
                       lambda T, c, u: (c < u).sum(1, keepdim=True).double())


@register
@dataclass(frozen=True)
class ValueAt(Op):
    """(N, 1): per row, the cell of an (N, V) node at that row's 0-based id (the picked id's
    probability)."""
    INPUTS = ("x", "id")
    x: Ref
    id: Ref
    array = _ONE_PER_ROW

    def reference(self, v):
        ids = np.asarray(v[self.id], dtype=np.float64)[:, 0].astype(int)
        x = np.asarray(v[self.x], dtype=np.float64)
        return x[np.arange(len(ids)), ids][:, None]

    def formula(self, r, i, j):
        at = f"{r.cell(self.id, i, 0)}+1"
        if r.shape(self.x)[0] == 1:
            return r.index(self.x, 1, at)
        # the row alone (not INDEX over every row: a generated row would read later rows)
        row = r.row(self.x, i)
        return f"INDEX({row},{at},1)" if r.regions[self.x].transposed else f"INDEX({row},1,{at})"

    @staticmethod
    def example():
        p = np.vstack([masked_softmax(LOGITS, top_k_mask(LOGITS, k), 0.5) for k in (3, 0)])
        return Example({"x": p, "id": np.array([[3.0], [5.0]])}, ValueAt("x", "id"),
                       lambda T, x, i: x.gather(1, i.long()))


# --- the same rule row by row, for a GPT's (T, V) logits --------------------------------------
# TopKMask and MaskedSoftmax compute one (1, V) step with a LARGE or MAX over the row in every
# cell: V^2 work, nothing for the text net's 8 words, 2.5e9 comparisons per position for GPT-2's
# 50,257 ids.  The row forms read each row's threshold, max and sum from one helper cell each.
_ROW_HELPER = PerCellOnly("one number from a whole row: a cell formula per row already")
ROWS = np.vstack([LOGITS, LOGITS[:, ::-1] * 0.5])  # (2, 6): ties in each row


def _kth_of(v, x: Ref, k: Ref) -> np.ndarray:
    rows, k = np.asarray(v[x], dtype=np.float64), int(np.asarray(v[k]).flat[0])
    return np.array([[kth_largest(row, k)] for row in rows])


@register
@dataclass(frozen=True)
class KthLargest(Op):
    """(N, 1): each row's top-k threshold, its k-th largest value (the k cell, (1, 1)); its
    smallest when k is 0 or at least V, so "logit >= threshold" keeps every id."""
    INPUTS = ("x", "k")
    x: Ref
    k: Ref
    array = _ROW_HELPER

    def reference(self, v):
        return _kth_of(v, self.x, self.k)

    def formula(self, r, i, j):
        k, n = r.cell(self.k, 0, 0), r.shape(self.x)[1]
        return f"LARGE({r.row(self.x, i)},IF({k}<1,{n},MIN({k},{n})))"

    @staticmethod
    def example():
        def kth(T, x, k):
            return x.topk(int(k), dim=1).values[:, -1:]
        return Example({"x": ROWS, "k": np.array([[3.0]])}, KthLargest("x", "k"), kth)


@register
@dataclass(frozen=True)
class KeptSumExp(Op):
    """(N, 1): sum of exp((x - max) / T) over the kept ids (x >= the row's threshold); 1 at
    T = 0, where the probabilities do not divide by it."""
    INPUTS = ("x", "kth", "max", "t")
    x: Ref
    kth: Ref
    max: Ref
    t: Ref
    array = _ROW_HELPER

    def reference(self, v):
        x, t = np.asarray(v[self.x], dtype=np.float64), float(v[self.t][0, 0])
        kept, m = x >= v[self.kth], v[self.max]
        if t == 0:
            return np.ones((x.shape[0], 1))
        return (np.exp((x - m) / t) * kept).sum(axis=1, keepdims=True)

    @as_array_text  # EXP over a range inside SUMPRODUCT: see ArrayText
    def formula(self, r, i, j):
        x, t = r.row(self.x, i), r.cell(self.t, 0, 0)
        kth, m = r.cell(self.kth, i, 0), r.cell(self.max, i, 0)
        return f"IF({t}=0,1,SUMPRODUCT(({x}>={kth})*EXP(({x}-{m})/{t})))"

    @staticmethod
    def example():
        kth, m = _kth_of({"x": ROWS, "k": [[3.0]]}, "x", "k"), ROWS.max(axis=1, keepdims=True)
        return Example({"x": ROWS, "kth": kth, "max": m, "t": np.array([[0.5]])},
                       KeptSumExp("x", "kth", "max", "t"),
                       lambda T, x, k, m, t: ((x - m) / t).exp().mul(x >= k).sum(1, keepdim=True))


def rule_probs(x, kth, max_, sum_, argmax, t) -> np.ndarray:
    """masked_softmax's rule on (N, V) rows, with each row's threshold, max, kept sum and argmax
    (N, 1) given (their cells): T = 0 one-hot at the argmax, else the kept ids' exp / sum."""
    x, t = np.asarray(x, dtype=np.float64), float(np.asarray(t, dtype=np.float64).flat[0])
    hot = np.asarray(argmax, dtype=np.float64)[:, 0].astype(int)
    if t == 0:
        out = np.zeros_like(x)
        out[np.arange(len(hot)), hot] = 1.0
        return out
    kept = x >= np.asarray(kth, dtype=np.float64)
    return kept * np.exp((x - np.asarray(max_, dtype=np.float64)) / t) / np.asarray(sum_)


def rule_cell(t: str, is_argmax: str, x: str, kth: str, m: str, s: str) -> str:
    """The rule's p of one id as a cell formula (SampleProbs, sample_blocks.IdProbs): T = 0,
    1 where ``is_argmax`` holds; else exp((x - max) / T) / the kept sum where x is kept."""
    return f"IF({t}=0,IF({is_argmax},1,0),IF({x}>={kth},EXP(({x}-{m})/{t})/{s},0))"


@register
@dataclass(frozen=True)
class SampleProbs(Op):
    """(N, V): per row the rule's p (masked_softmax), from the row's helper cells: threshold,
    max, kept sum and argmax.  T > 0: exp((x - max) / T) / sum for the kept ids, 0 for the
    rest; T = 0: 1 at the argmax (the smallest id among equal maxima), 0 elsewhere."""
    INPUTS = ("x", "kth", "max", "sum", "argmax", "t")
    x: Ref
    kth: Ref
    max: Ref
    sum: Ref
    argmax: Ref
    t: Ref
    array = PerCellOnly("a greedy case (T = 0) beside the softmax: one formula per probability")

    def reference(self, v):
        return rule_probs(*(v[n] for n in (self.x, self.kth, self.max, self.sum, self.argmax,
                                           self.t)))

    def formula(self, r, i, j):
        x, t = r.cell(self.x, i, j), r.cell(self.t, 0, 0)
        kth, m, s = (r.cell(n, i, 0) for n in (self.kth, self.max, self.sum))
        return rule_cell(t, f"{r.cell(self.argmax, i, 0)}={j}", x, kth, m, s)

    @staticmethod
    def example():
        kth, m = _kth_of({"x": ROWS, "k": [[3.0]]}, "x", "k"), ROWS.max(axis=1, keepdims=True)
        s = (np.exp((ROWS - m) / 0.5) * (ROWS >= kth)).sum(axis=1, keepdims=True)
        arg = ROWS.argmax(axis=1)[:, None].astype(np.float64)
        return Example({"x": ROWS, "kth": kth, "max": m, "sum": s, "argmax": arg,
                        "t": np.array([[0.5]])}, SampleProbs("x", "kth", "max", "sum", "argmax", "t"),
                       lambda T, x, k, m, s, a, t: T.softmax((x / t).masked_fill(x < k, -np.inf), 1))
