"""Arithmetic as torch writes it: broadcasting binary ops, negation, and cell moves (reshape,
transpose) for the generic front end (capture/torch_export.py).

Broadcasting is the 2-D kind a sheet can show: an operand is the whole (N, F) block, a (1, F)
row repeated down the rows, an (N, 1) column repeated along them, or one (1, 1) cell (a scalar
constant).  The same shapes broadcast in NumPy and in array formulas, so the reference is plain
NumPy and the array form is the cell formula over whole ranges.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import ELEMENTWISE, Example, Op, PerCellOnly, Ref, register
from .elementwise import Unary

X = np.array([[-3.0, -0.5, 0.0], [0.25, 2.0, 25.0]])   # (2, 3)
ROW = np.array([[1.5, -2.0, 0.125]])                   # (1, 3): one value per feature
COL = np.array([[4.0], [-0.75]])                       # (2, 1): one value per row


def broadcast_cell(r, name: str, i: int, j: int) -> str:
    """Cell (i, j) of ``name`` broadcast to a bigger block: a row or column of 1 repeats."""
    rows, cols = r.shape(name)
    return r.cell(name, i if rows > 1 else 0, j if cols > 1 else 0)


class Broadcast(Op):
    """a <op> b, each (N, F), (1, F), (N, 1) or (1, 1): ``PATTERN`` with {a} and {b}."""
    INPUTS = ("a", "b")
    PATTERN = "{a}"
    array = ELEMENTWISE
    FN = staticmethod(np.add)

    def reference(self, v):
        return self.FN(v[self.a], v[self.b])

    def formula(self, r, i, j):
        return self.PATTERN.format(a=broadcast_cell(r, self.a, i, j),
                                   b=broadcast_cell(r, self.b, i, j))

    @classmethod
    def example(cls):
        # a (2, 3) block with a row broadcast; the column form is the same code on the other axis
        return Example({"a": X, "b": ROW}, cls("a", "b"), cls.TORCH)


@register
@dataclass(frozen=True)
class Add(Broadcast):
    """a + b: the residual stream, two embeddings, or torch's add with a row or column."""
    a: Ref
    b: Ref
    PATTERN, FN = "{a}+{b}", staticmethod(np.add)

    def derivative(self, b, out, grad):
        from .grad import reduce_to  # a broadcast operand gets the sum over its copies
        return [(x, reduce_to(b, grad, b.shape(x))) for x in (self.a, self.b) if b.wants(x)]

    TORCH = staticmethod(lambda T, a, b: a + b)


@register
@dataclass(frozen=True)
class Sub(Broadcast):
    """a - b: the sqrt net's error, or torch's sub with a row or column."""
    a: Ref
    b: Ref
    PATTERN, FN = "{a}-{b}", staticmethod(np.subtract)

    def derivative(self, b, out, grad):
        from .grad import reduce_to
        found = [(self.a, reduce_to(b, grad, b.shape(self.a)))] if b.wants(self.a) else []
        if b.wants(self.b):
            minus = reduce_to(b, grad, b.shape(self.b))
            found.append((self.b, b.add(Negate(minus), b.shape(self.b))))
        return found

    TORCH = staticmethod(lambda T, a, b: a - b)


@register
@dataclass(frozen=True)
class Times(Broadcast):
    a: Ref
    b: Ref
    PATTERN, FN = "{a}*{b}", staticmethod(np.multiply)

    def derivative(self, b, out, grad):
        # d(a b)/da = b: the gradient times the other operand, summed back to a's shape
        from .grad import reduce_to
        return [(x, reduce_to(b, b.add(Times(grad, other), b.shape(out)), b.shape(x)))
                for x, other in ((self.a, self.b), (self.b, self.a)) if b.wants(x)]

    TORCH = staticmethod(lambda T, a, b: a * b)


@register
@dataclass(frozen=True)
class Over(Broadcast):
    a: Ref
    b: Ref
    PATTERN, FN = "{a}/{b}", staticmethod(np.divide)

    def derivative(self, b, out, grad):
        # d(a/b)/da = 1/b; d(a/b)/db = -a/b^2 = -out/b: each summed back to its operand's shape
        from .grad import reduce_to
        found = []
        if b.wants(self.a):
            found.append((self.a, reduce_to(b, b.add(Over(grad, self.b), b.shape(out)),
                                            b.shape(self.a))))
        if b.wants(self.b):
            per = b.add(Over(b.add(Times(grad, out), b.shape(out)), self.b), b.shape(out))
            found.append((self.b, b.add(Negate(reduce_to(b, per, b.shape(self.b))),
                                        b.shape(self.b))))
        return found

    @staticmethod
    def example():
        # divide by a column: the other broadcast axis
        return Example({"a": X, "b": COL}, Over("a", "b"), lambda T, a, b: a / b)


@register
@dataclass(frozen=True)
class Negate(Unary):
    x: Ref
    PATTERN = "-{x}"

    def reference(self, v):
        return -v[self.x]

    def derivative(self, b, out, grad):
        return [(self.x, b.add(Negate(grad), b.shape(self.x)))]

    @staticmethod
    def example():
        return Example({"x": X}, Negate("x"), lambda T, x: -x)


@register
@dataclass(frozen=True)
class Reshape(Op):
    """The same numbers in row-major order as a (rows, cols) block: flatten (1, C, L) -> (1, C*L)."""
    INPUTS = ("x",)
    x: Ref
    shape: tuple[int, int]
    array = PerCellOnly("each cell is a plain reference to one cell of x, moved")

    def reference(self, v):
        return v[self.x].reshape(self.shape)

    def formula(self, r, i, j):
        k = i * self.shape[1] + j            # the cell's place in row-major order
        width = r.shape(self.x)[1]
        return r.cell(self.x, k // width, k % width)

    def derivative(self, b, out, grad):
        return [(self.x, b.add(Reshape(grad, b.shape(self.x)), b.shape(self.x)))]

    @staticmethod
    def example():
        return Example({"x": X}, Reshape("x", (3, 2)), lambda T, x: x.reshape(3, 2))


@register
@dataclass(frozen=True)
class Transpose(Op):
    """(F, N) = x (N, F) transposed (a computed matrix's .t(); a weight's is read in place)."""
    INPUTS = ("x",)
    x: Ref

    def reference(self, v):
        return v[self.x].T.copy()

    def formula(self, r, i, j):
        return r.cell(self.x, j, i)

    def array(self, r):
        return f"TRANSPOSE({r.all(self.x)})"

    def derivative(self, b, out, grad):
        return [(self.x, b.add(Transpose(grad), b.shape(self.x)))]

    @staticmethod
    def example():
        return Example({"x": X}, Transpose("x"), lambda T, x: x.T)
