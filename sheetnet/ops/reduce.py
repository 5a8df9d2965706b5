"""Reductions along a row or down a column, log-softmax, and batch norm in inference.

Row ops reduce the last dim (features) of (N, F) to (N, 1); column ops reduce the rows (the
positions of one sample, e.g. a bag of embeddings mean-pooled) to (1, F).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import ELEMENTWISE, Example, Op, PerCellOnly, Ref, number, register

X = np.array([[1.0, -2.0, 0.5, 4.0], [0.25, 0.0, -1.5, 3.0], [2.0, 1.0, -1.0, 0.5]])  # (3, 4)
X_MAX = X.max(axis=1, keepdims=True)
X_SUM = np.exp(X - X_MAX).sum(axis=1, keepdims=True)
# per-feature (1, F) running statistics, gain and bias of a BatchNorm1d
MEAN, VAR = np.array([[0.5, -1.0, 0.0, 2.0]]), np.array([[1.0, 0.25, 4.0, 0.5]])
GAIN, BIAS = np.array([[2.0, -1.0, 0.5, 1.0]]), np.array([[0.1, 0.0, -0.3, 1.0]])
_ONE_PER_ROW = PerCellOnly("one number per row from a whole row: a cell formula per row already")
_ONE_PER_COL = PerCellOnly("one number per column from a whole column: one cell formula each")


@register
@dataclass(frozen=True)
class RowSum(Op):
    """(N, 1): the sum of each row."""
    INPUTS = ("x",)
    x: Ref
    array = _ONE_PER_ROW

    def reference(self, v):
        return v[self.x].sum(axis=1, keepdims=True)

    def formula(self, r, i, j):
        return f"SUM({r.row(self.x, i)})"

    @staticmethod
    def example():
        return Example({"x": X}, RowSum("x"), lambda T, x: x.sum(1, keepdim=True))


@register
@dataclass(frozen=True)
class ColMean(Op):
    """(1, F): the mean of each column (mean-pooling positions)."""
    INPUTS = ("x",)
    x: Ref
    array = _ONE_PER_COL

    def reference(self, v):
        return v[self.x].mean(axis=0, keepdims=True)

    def formula(self, r, i, j):
        return f"AVERAGE({r.col(self.x, j)})"

    @staticmethod
    def example():
        return Example({"x": X}, ColMean("x"), lambda T, x: x.mean(0, keepdim=True))


@register
@dataclass(frozen=True)
class ColSum(Op):
    """(1, F): the sum of each column (sum-pooling positions)."""
    INPUTS = ("x",)
    x: Ref
    array = _ONE_PER_COL

    def reference(self, v):
        return v[self.x].sum(axis=0, keepdims=True)

    def formula(self, r, i, j):
        return f"SUM({r.col(self.x, j)})"

    @staticmethod
    def example():
        return Example({"x": X}, ColSum("x"), lambda T, x: x.sum(0, keepdim=True))


@register
@dataclass(frozen=True)
class LogSoftmax(Op):
    """x - max - ln(sum exp(x - max)) per row: max and sum (N, 1) from RowMax and RowSumExp."""
    INPUTS = ("x", "max", "sum")
    x: Ref
    max: Ref
    sum: Ref
    array = ELEMENTWISE

    def reference(self, v):
        return v[self.x] - v[self.max] - np.log(v[self.sum])

    def formula(self, r, i, j):
        return f"{r.cell(self.x, i, j)}-{r.cell(self.max, i, 0)}-LN({r.cell(self.sum, i, 0)})"

    @staticmethod
    def example():
        return Example({"x": X, "max": X_MAX, "sum": X_SUM}, LogSoftmax("x", "max", "sum"),
                       lambda T, x, m, s: T.log_softmax(x, 1))


@register
@dataclass(frozen=True)
class BatchNorm(Op):
    """Inference batch norm of x (N, F): (x - running mean) / sqrt(running var + eps) * gain +
    bias, each a (1, F) row of weight cells, so editing a running statistic recomputes."""
    INPUTS = ("x", "mean", "var", "gain", "bias")
    x: Ref
    mean: Ref
    var: Ref
    gain: Ref | None = None   # None: affine=False
    bias: Ref | None = None
    eps: float = 1e-5
    array = ELEMENTWISE

    def reference(self, v):
        out = (v[self.x] - v[self.mean]) / np.sqrt(v[self.var] + self.eps)
        out = out * v[self.gain] if self.gain else out
        return out + v[self.bias] if self.bias else out

    def formula(self, r, i, j):
        text = "({x}-{m})/SQRT({v}+{eps})".format(
            x=r.cell(self.x, i, j), m=r.cell(self.mean, 0, j), v=r.cell(self.var, 0, j),
            eps=number(self.eps))
        text = f"{text}*{r.cell(self.gain, 0, j)}" if self.gain else text
        return f"{text}+{r.cell(self.bias, 0, j)}" if self.bias else text

    @staticmethod
    def example():
        return Example({"x": X, "mean": MEAN, "var": VAR, "gain": GAIN, "bias": BIAS},
                       BatchNorm("x", "mean", "var", "gain", "bias", 1e-5),
                       lambda T, x, m, v, g, b: T.nn.functional.batch_norm(
                           x, m[0], v[0], g[0], b[0], False, 0.0, 1e-5))
