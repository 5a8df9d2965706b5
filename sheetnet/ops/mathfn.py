"""Elementwise math the generic front end meets in modern decoders (RMSNorm's pow / rsqrt, exp,
log, cos, sin), the row mean of squares RMSNorm divides by, and a select by a 0/1 condition
(a number or another number, or a number or "-").

Each cell reads the same cell of its input, so the array form is the cell formula over whole
ranges (``ELEMENTWISE``), except the row reduction (one cell per row already).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .arith import broadcast_cell
from .base import ELEMENTWISE, Example, Op, PerCellOnly, Ref, number, register
from .elementwise import Unary

X = np.array([[-3.0, -0.5, 0.25], [0.75, 2.0, 5.5]])     # (2, 3)
POS = np.abs(X) + 0.125                                  # (2, 3): for sqrt and log


@register
@dataclass(frozen=True)
class Power(Unary):
    """x ** exponent (RMSNorm squares its input: exponent 2)."""
    x: Ref
    exponent: float = 2.0

    def reference(self, v):
        return np.power(v[self.x], self.exponent)

    def formula(self, r, i, j):
        return f"POWER({r.cell(self.x, i, j)},{number(self.exponent)})"

    @staticmethod
    def example():
        return Example({"x": X}, Power("x", 3.0), lambda T, x: x.pow(3))


@register
@dataclass(frozen=True)
class Exp(Unary):
    x: Ref
    PATTERN = "EXP({x})"

    def reference(self, v):
        return np.exp(v[self.x])

    @staticmethod
    def example():
        return Example({"x": X}, Exp("x"), lambda T, x: x.exp())


@register
@dataclass(frozen=True)
class Log(Unary):
    """The natural log (LN; LOG is base 10 in a sheet)."""
    x: Ref
    PATTERN = "LN({x})"

    def reference(self, v):
        return np.log(v[self.x])

    @staticmethod
    def example():
        return Example({"x": POS}, Log("x"), lambda T, x: x.log())


@register
@dataclass(frozen=True)
class Rsqrt(Unary):
    """1 / sqrt(x): RMSNorm's (and LayerNorm's decomposed) scale."""
    x: Ref
    PATTERN = "1/SQRT({x})"

    def reference(self, v):
        return 1.0 / np.sqrt(v[self.x])

    @staticmethod
    def example():
        return Example({"x": POS}, Rsqrt("x"), lambda T, x: x.rsqrt())


@register
@dataclass(frozen=True)
class Cos(Unary):
    x: Ref
    PATTERN = "COS({x})"

    def reference(self, v):
        return np.cos(v[self.x])

    @staticmethod
    def example():
        return Example({"x": X}, Cos("x"), lambda T, x: x.cos())


@register
@dataclass(frozen=True)
class Sin(Unary):
    x: Ref
    PATTERN = "SIN({x})"

    def reference(self, v):
        return np.sin(v[self.x])

    @staticmethod
    def example():
        return Example({"x": X}, Sin("x"), lambda T, x: x.sin())


@register
@dataclass(frozen=True)
class RowMeanSquare(Op):
    """(N, 1): the mean of the squares of each row, RMSNorm's mean(x ** 2) without a block of
    squares (SUMSQ of the row over its width)."""
    INPUTS = ("x",)
    x: Ref
    array = PerCellOnly("one number per row from a whole row: a cell formula per row already")

    def reference(self, v):
        return (v[self.x] ** 2).mean(axis=1, keepdims=True)

    def formula(self, r, i, j):
        return f"SUMSQ({r.row(self.x, i)})/{r.shape(self.x)[1]}"

    @staticmethod
    def example():
        return Example({"x": X}, RowMeanSquare("x"), lambda T, x: x.pow(2).mean(1, keepdim=True))


@register
@dataclass(frozen=True)
class Where(Op):
    """a where cond is not 0, else b (torch.where / masked_fill with finite values); each of
    cond, a, b a whole block, a (1, F) row, an (N, 1) column or one cell, broadcast in 2-D."""
    INPUTS = ("cond", "a", "b")
    cond: Ref
    a: Ref
    b: Ref
    array = ELEMENTWISE

    def reference(self, v):
        return np.where(v[self.cond] != 0, v[self.a], v[self.b]).astype(np.float64)

    def formula(self, r, i, j):
        c, a, b = (broadcast_cell(r, n, i, j) for n in (self.cond, self.a, self.b))
        return f"IF({c}<>0,{a},{b})"

    @staticmethod
    def example():
        cond = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
        return Example({"cond": cond, "a": X, "b": np.array([[-7.5]])}, Where("cond", "a", "b"),
                       lambda T, c, a, b: T.where(c != 0, a, b))


@register
@dataclass(frozen=True)
class ShownIf(Op):
    """a where cond is not 0, else the text "-" (a table row that holds nothing now, such as
    the sqrt net's spare region rows: still a live formula, so an edit that fills it shows);
    cond broadcast as in Where."""
    INPUTS = ("cond", "a")
    BLANK = "-"
    cond: Ref
    a: Ref
    # Gnumeric gives #VALUE! where a (N, 1) cond broadcast over an (N, F) block picks the text
    # inside an array formula (the sqrt net's on/off pattern, measured): a formula per cell
    array = PerCellOnly("a number or text per cell: Gnumeric's array IF fails its broadcast text")

    def reference(self, v):
        cond, a = np.broadcast_arrays(v[self.cond] != 0, np.asarray(v[self.a], dtype=np.float64))
        out = np.full(a.shape, self.BLANK, dtype=object)
        out[cond] = a[cond]
        return out

    def formula(self, r, i, j):
        c, a = (broadcast_cell(r, n, i, j) for n in (self.cond, self.a))
        return f'IF({c}<>0,{a},"{self.BLANK}")'

    @staticmethod
    def example():
        return Example({"cond": np.array([[1.0], [0.0]]), "a": X}, ShownIf("cond", "a"))


@register
@dataclass(frozen=True)
class RmsNormalize(Op):
    """x / sqrt(mean square + eps), the mean square (N, 1) broadcast along each row (RMSNorm
    before its gain)."""
    INPUTS = ("x", "ms")
    x: Ref
    ms: Ref
    eps: float = 1e-6
    array = ELEMENTWISE

    def reference(self, v):
        return v[self.x] / np.sqrt(v[self.ms] + self.eps)

    def formula(self, r, i, j):
        return f"{r.cell(self.x, i, j)}/SQRT({r.cell(self.ms, i, 0)}+{number(self.eps)})"

    @staticmethod
    def example():
        ms = (X ** 2).mean(axis=1, keepdims=True)
        return Example({"x": X, "ms": ms}, RmsNormalize("x", "ms", 1e-6),
                       lambda T, x, ms: T.nn.functional.rms_norm(x, (3,), eps=1e-6))
