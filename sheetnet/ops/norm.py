"""LayerNorm in the steps a reader can follow: row mean, row variance, normalize, scale, shift."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import ELEMENTWISE, Example, Op, PerCellOnly, Ref, number, register

X = np.array([[1.0, -2.0, 0.5, 4.0], [0.25, 0.0, -1.5, 3.0]])  # (N=2, F=4)
MEAN, VAR = X.mean(axis=1, keepdims=True), X.var(axis=1, keepdims=True)  # (2, 1) each
GAIN, BIAS = np.array([[0.5, 2.0, -1.0, 1.5]]), np.array([[0.1, -0.2, 0.3, 0.0]])  # (1, F)
_ROWWISE = PerCellOnly("one number per row from a whole row: a cell formula per row already")


@register
@dataclass(frozen=True)
class RowMean(Op):
    """(N, 1): the mean of each row."""
    INPUTS = ("x",)
    x: Ref
    array = _ROWWISE

    def reference(self, v):
        return v[self.x].mean(axis=1, keepdims=True)

    def formula(self, r, i, j):
        return f"AVERAGE({r.row(self.x, i)})"

    def derivative(self, b, out, grad):
        from .grad import Spread  # each cell moves the mean by 1/F
        return [(self.x, b.add(Spread(grad, b.shape(self.x)[1]), b.shape(self.x)))]

    @staticmethod
    def example():
        return Example({"x": X}, RowMean("x"), lambda T, x: x.mean(1, keepdim=True))


@register
@dataclass(frozen=True)
class RowVar(Op):
    """(N, 1): the biased variance of each row about ``mean`` (divide by F, as LayerNorm does)."""
    INPUTS = ("x", "mean")
    x: Ref
    mean: Ref
    array = _ROWWISE

    def reference(self, v):
        return ((v[self.x] - v[self.mean]) ** 2).mean(axis=1, keepdims=True)

    def formula(self, r, i, j):
        return "SUMPRODUCT(({x}-{m})^2)/{n}".format(
            x=r.row(self.x, i), m=r.cell(self.mean, i, 0), n=r.shape(self.x)[1])

    def derivative(self, b, out, grad):
        from .grad import RowVarGrad
        return [(x, b.add(RowVarGrad(grad, self.x, self.mean, wrt), b.shape(x)))
                for x, wrt in ((self.x, "x"), (self.mean, "mean")) if b.wants(x)]

    @staticmethod
    def example():
        return Example({"x": X, "mean": MEAN}, RowVar("x", "mean"),
                       lambda T, x, m: x.var(1, keepdim=True, unbiased=False))


@register
@dataclass(frozen=True)
class Normalize(Op):
    """(x - mean) / sqrt(var + eps), mean and var (N, 1) broadcast along each row."""
    INPUTS = ("x", "mean", "var")
    x: Ref
    mean: Ref
    var: Ref
    eps: float = 1e-5
    array = ELEMENTWISE

    def reference(self, v):
        return (v[self.x] - v[self.mean]) / np.sqrt(v[self.var] + self.eps)

    def formula(self, r, i, j):
        return "({x}-{m})/SQRT({v}+{eps})".format(
            x=r.cell(self.x, i, j), m=r.cell(self.mean, i, 0), v=r.cell(self.var, i, 0),
            eps=number(self.eps))

    def derivative(self, b, out, grad):
        # x, mean and var each move the output; LayerNorm's mean and var also depend on x, and
        # the backward pass adds those paths (RowVar's, RowMean's) to x's gradient
        from .grad import NormalizeGrad
        return [(x, b.add(NormalizeGrad(grad, self.x, self.mean, self.var, self.eps, wrt),
                          b.shape(x)))
                for x, wrt in ((self.x, "x"), (self.mean, "mean"), (self.var, "var"))
                if b.wants(x)]

    @staticmethod
    def example():
        return Example({"x": X, "mean": MEAN, "var": VAR}, Normalize("x", "mean", "var", 1e-5),
                       lambda T, x, m, v: T.nn.functional.layer_norm(x, (x.shape[1],), eps=1e-5))


@register
@dataclass(frozen=True)
class ScaleShift(Op):
    """x * gain + bias with gain and bias (1, F) rows broadcast down the N rows (LayerNorm)."""
    INPUTS = ("x", "gain", "bias")
    x: Ref
    gain: Ref
    bias: Ref | None = None
    array = ELEMENTWISE

    def reference(self, v):
        return v[self.x] * v[self.gain] + (v[self.bias] if self.bias else 0.0)

    def formula(self, r, i, j):
        return f"{r.cell(self.x, i, j)}*{r.cell(self.gain, 0, j)}" + (
            f"+{r.cell(self.bias, 0, j)}" if self.bias else "")

    def derivative(self, b, out, grad):
        # out = x gain + bias, gain and bias (1, F) rows broadcast down the N rows
        from .arith import Times
        from .grad import ColumnDots
        from .reduce import ColSum
        found = []
        if b.wants(self.x):
            found.append((self.x, b.add(Times(grad, self.gain), b.shape(self.x))))
        if b.wants(self.gain):
            found.append((self.gain, b.add(ColumnDots(grad, self.x), b.shape(self.gain))))
        if self.bias and b.wants(self.bias):
            found.append((self.bias, b.add(ColSum(grad), b.shape(self.bias))))
        return found

    @staticmethod
    def example():
        return Example({"x": X, "gain": GAIN, "bias": BIAS}, ScaleShift("x", "gain", "bias"),
                       lambda T, x, g, b: x * g + b)
