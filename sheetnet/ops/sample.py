"""Sampling the next id by formulas, exactly specified (issue 16).

The rule: cells Temperature T (>= 0), Top-k k (0 = all) and Seed (an integer 1 .. 2^31 - 2).
The uniform numbers are the MINSTD stream: state_0 = seed, state_j = state_(j-1) * 48271 mod
2147483647, u_j = state_j / 2147483647.  Step j keeps the ids whose logit is at least the k-th
largest (ties kept), p = softmax(logits / T) over them (0 elsewhere), and picks the smallest id
whose cumulative p, summed in id order, reaches u_j.  T = 0 is greedy: p is 1 at the argmax (the
smallest id among equal maxima), so the same pick returns the argmax whatever u_j in (0, 1).

One unit per step a reader follows down the sheet:
    MinstdNext -> Uniform              state_j, u_j
    TopKMask -> MaskedSoftmax -> CumulativeSum -> PickId -> ValueAt   kept, p, cumulative p, id, p(id)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import ELEMENTWISE, Example, Op, PerCellOnly, Ref, as_array_text, register

MODULUS, MULTIPLIER = 2147483647, 48271   # MINSTD (Park and Miller, 1993): m = 2^31 - 1
SCHRAGE_Q, SCHRAGE_R = 44488, 3399        # m = a*q + r with r < q: nothing passes 2^31 * 48271

# (1, 6) logits with a tie at the 3rd largest (0.5 twice) and a tie at the max (2.0 twice)
LOGITS = np.array([[0.5, 2.0, -1.0, 0.5, 2.0, 0.25]])
_ONE_PER_ROW = PerCellOnly("one number from a whole (1, V) row: a cell formula already")


def minstd_next(state: int) -> int:
    """The next MINSTD state, in exact integer arithmetic (the rule's definition)."""
    return state * MULTIPLIER % MODULUS


@register
@dataclass(frozen=True)
class MinstdNext(Op):
    """state * 48271 mod 2147483647, each cell of x a MINSTD state (an integer 1 .. 2^31 - 2).

    Schrage's method in the formula: with m = a*q + r, a*s mod m = a*(s mod q) - r*(s div q),
    plus m when that is negative.  Both products stay below 2^31, so every intermediate is an
    exact integer and no MOD sees a large quotient (Excel's MOD gives #NUM! once the quotient
    reaches 2^27).  The direct MOD(s*48271, m), s*48271 < 2^47, measured exact in LibreOffice
    7.4 too; the split does not rely on any engine's MOD precision.
    """
    INPUTS = ("x",)
    x: Ref
    array = ELEMENTWISE

    def reference(self, v):
        states = np.asarray(v[self.x], dtype=np.float64)
        return np.vectorize(lambda s: float(minstd_next(int(s))))(states).reshape(states.shape)

    def formula(self, r, i, j):
        s = r.cell(self.x, i, j)
        low = f"MOD({s},{SCHRAGE_Q})"        # s mod q, exact
        high = f"({s}-{low})/{SCHRAGE_Q}"    # s div q: an exact division of an exact multiple
        # a*(s mod q) - r*(s div q) lies in (-m, m) and is never 0: MOD(., m) adds m if negative
        return f"MOD({MULTIPLIER}*{low}-{SCHRAGE_R}*{high},{MODULUS})"

    @staticmethod
    def example():
        states = np.array([[1.0, 42.0, 2147483646.0], [44488.0, 123456789.0, 1043618065.0]])
        return Example({"x": states}, MinstdNext("x"),
                       lambda T, x: (x.long() * MULTIPLIER % MODULUS).double())


@register
@dataclass(frozen=True)
class Uniform(Op):
    """u = state / 2147483647, in (0, 1): the number the pick compares with (exact in float64
    up to its last bit: one correctly rounded division)."""
    INPUTS = ("x",)
    x: Ref
    array = ELEMENTWISE

    def reference(self, v):
        return np.asarray(v[self.x], dtype=np.float64) / MODULUS

    def formula(self, r, i, j):
        return f"{r.cell(self.x, i, j)}/{MODULUS}"

    @staticmethod
    def example():
        return Example({"x": np.array([[1.0, 48271.0, 2147483646.0]])}, Uniform("x"),
                       lambda T, x: x / MODULUS)


def top_k_mask(logits: np.ndarray, k: int) -> np.ndarray:
    """1 where a logit of the (1, V) row is at least the k-th largest (ties kept), else 0; every
    id when k is 0 (or at least V)."""
    if k <= 0 or k >= logits.shape[1]:
        return np.ones_like(logits, dtype=np.float64)
    kth = np.sort(logits[0])[::-1][k - 1]
    return (logits >= kth).astype(np.float64)


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


@register
@dataclass(frozen=True)
class CumulativeSum(Op):
    """(1, V): c_j = x_0 + ... + x_j, summed in id order."""
    INPUTS = ("x",)
    x: Ref
    array = PerCellOnly("a growing range per cell: SUM of the row's first j + 1 cells")

    def reference(self, v):
        return np.cumsum(np.asarray(v[self.x], dtype=np.float64), axis=1)

    def formula(self, r, i, j):
        return f"SUM({r.span(self.x, (0, 1), (0, j + 1))})"

    @staticmethod
    def example():
        p = masked_softmax(LOGITS, top_k_mask(LOGITS, 3), 0.5)
        return Example({"x": p}, CumulativeSum("x"), lambda T, x: x.cumsum(1))


@register
@dataclass(frozen=True)
class PickId(Op):
    """(1, 1): the smallest id whose cumulative p reaches u: the count of ids with c_j < u
    (c never decreases).  u < 1 - 4.6e-10 and the total is 1 within V ulps, so an id always
    reaches u."""
    INPUTS = ("cum", "u")
    cum: Ref
    u: Ref
    array = _ONE_PER_ROW

    def reference(self, v):
        cum, u = np.asarray(v[self.cum], dtype=np.float64), float(v[self.u][0, 0])
        return np.array([[float(np.sum(cum[0] < u))]])

    @as_array_text  # a comparison over a range inside SUMPRODUCT: see ArrayText
    def formula(self, r, i, j):
        # not COUNTIF(range, "<"&u): that turns u into text, 15 digits, and the pick may move
        return f"SUMPRODUCT(({r.all(self.cum)}<{r.cell(self.u, 0, 0)})*1)"

    @staticmethod
    def example():
        cum = np.cumsum(masked_softmax(LOGITS, top_k_mask(LOGITS, 3), 0.5), axis=1)
        u = np.array([[(cum[0, 1] + cum[0, 3]) / 2]])  # between id 1's and id 3's: picks id 3
        return Example({"cum": cum, "u": u}, PickId("cum", "u"),
                       lambda T, c, u: (c < u).sum(1, keepdim=True).double())


@register
@dataclass(frozen=True)
class ValueAt(Op):
    """(1, 1): the cell of a (1, V) row at a 0-based id (the picked word's probability)."""
    INPUTS = ("x", "id")
    x: Ref
    id: Ref
    array = _ONE_PER_ROW

    def reference(self, v):
        return v[self.x][:, [int(v[self.id][0, 0])]].astype(np.float64)

    def formula(self, r, i, j):
        return r.index(self.x, 1, f"{r.cell(self.id, 0, 0)}+1")

    @staticmethod
    def example():
        p = masked_softmax(LOGITS, top_k_mask(LOGITS, 3), 0.5)
        return Example({"x": p, "id": np.array([[3.0]])}, ValueAt("x", "id"),
                       lambda T, x, i: x[:, [int(i)]])
