"""The MINSTD stream by formulas (issue 16's sampling rule, ops/sample.py): state_0 = seed,
state_j = state_(j-1) * 48271 mod 2147483647, u_j = state_j / 2147483647, exact in float64.

The formula splits the product by Schrage's method (minstd_text, MinstdNext) so that no MOD sees
a large quotient: Excel's MOD gives #NUM! once the quotient reaches 2^27.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import ELEMENTWISE, Example, Op, PerCellOnly, Ref, register

MODULUS, MULTIPLIER = 2147483647, 48271   # MINSTD (Park and Miller, 1993): m = 2^31 - 1
SCHRAGE_Q, SCHRAGE_R = 44488, 3399        # m = a*q + r with r < q: nothing passes 2^31 * 48271


def minstd_next(state: int) -> int:
    """The next MINSTD state, in exact integer arithmetic (the rule's definition)."""
    return state * MULTIPLIER % MODULUS


def minstd_text(s: str) -> str:
    """The formula text of the next state after the state in cell ``s`` (see MinstdNext)."""
    low = f"MOD({s},{SCHRAGE_Q})"        # s mod q, exact
    high = f"({s}-{low})/{SCHRAGE_Q}"    # s div q: an exact division of an exact multiple
    # a*(s mod q) - r*(s div q) lies in (-m, m) and is never 0: MOD(., m) adds m if negative
    return f"MOD({MULTIPLIER}*{low}-{SCHRAGE_R}*{high},{MODULUS})"


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
        return minstd_text(r.cell(self.x, i, j))

    @staticmethod
    def example():
        states = np.array([[1.0, 42.0, 2147483646.0], [44488.0, 123456789.0, 1043618065.0]])
        return Example({"x": states}, MinstdNext("x"),
                       lambda T, x: (x.long() * MULTIPLIER % MODULUS).double())


@register
@dataclass(frozen=True)
class MinstdStream(Op):
    """(n, 1): state_1 .. state_n of the MINSTD stream from the seed cell (a (1, 1) node):
    row 0 is the seed's next state, each row after it the next state of the row above."""
    INPUTS = ("seed",)
    seed: Ref
    n: int
    array = PerCellOnly("each state reads the cell above it: a chain of cells")

    def reference(self, v):
        out, state = [], int(np.asarray(v[self.seed], dtype=np.float64)[0, 0])
        for _ in range(self.n):
            state = minstd_next(state)
            out.append(float(state))
        return np.array(out)[:, None]

    def formula(self, r, i, j):
        return minstd_text(r.cell(self.seed, 0, 0) if i == 0 else r.mine(i - 1, 0))

    @staticmethod
    def example():
        def stream(T, seed):
            out, s = [], seed.long()
            for _ in range(4):
                s = s * MULTIPLIER % MODULUS
                out.append(s)
            return T.cat(out, 0).double()
        return Example({"seed": np.array([[2147483646.0]])}, MinstdStream("seed", 4), stream)


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
