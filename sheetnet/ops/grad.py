"""The ops a backward pass adds: weight and bias gradients, embedding-table gradients and the
pieces of LayerNorm's backward (activation slopes are in slopes.py, the losses in loss.py).

Each op's ``derivative`` (in its own unit) builds its input gradients out of these and the
ordinary ops (MatMul, Times, ColSum ...), micrograd style, but as IR nodes: the gradients are
live formulas.  A derivative is called as ``op.derivative(b, out, grad)`` with

    b.add(op, shape) -> name    add a node of the backward pass
    b.shape(name)               a node's (rows, cols)
    b.wants(name)               whether a gradient of that node is needed (it leads to a weight)

and returns [(input node, its gradient's node), ...] for the inputs it wants; each gradient has
the input's shape (``reduce_to`` sums a broadcast operand's gradient back to its shape).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .base import Example, Op, PerCellOnly, Ref, as_array_text, number, register

_RNG = np.random.default_rng(17)
G, X = _RNG.normal(size=(3, 4)), _RNG.normal(size=(3, 2))   # (N=3, out=4) grads, (N, in=2)
Z = np.array([[-3.0, -0.5, 0.0, 0.25], [2.0, 25.0, -1.0, 0.75], [0.5, -2.0, 1.5, -0.25]])
_erf = np.vectorize(math.erf, otypes=[np.float64])
_PER_COLUMN = PerCellOnly("one number per column from a whole column: one cell formula each")
_PER_ROW = PerCellOnly("one number per row from a whole row: one cell formula each")


def reduce_to(b, grad: str, shape: tuple[int, int]) -> str:
    """``grad`` summed over the axes an operand of ``shape`` was broadcast along (a (1, F) row
    repeated down N rows gets the column sums), so it has the operand's shape."""
    rows, cols = b.shape(grad)
    if shape[0] == 1 and rows > 1:
        from .reduce import ColSum
        grad, rows = b.add(ColSum(grad), (1, cols)), 1
    if shape[1] == 1 and cols > 1:
        from .reduce import RowSum
        grad = b.add(RowSum(grad), (rows, 1))
    return grad


# --- matrix products ---------------------------------------------------------------------------
@register
@dataclass(frozen=True)
class OuterSum(Op):
    """(out, in) = g (N, out)^T @ x (N, in): the sum over the batch of each row's outer product,
    a Linear's weight gradient in the weight's own layout (one cell per weight)."""
    INPUTS = ("g", "x")
    g: Ref
    x: Ref

    def reference(self, v):
        return v[self.g].T @ v[self.x]

    def formula(self, r, i, j):
        # dW[i, j] = sum over the batch of g[n, i] * x[n, j]: column i of g against column j of x
        return f"SUMPRODUCT({r.col(self.g, i)},{r.col(self.x, j)})"

    def array(self, r):
        return f"MMULT(TRANSPOSE({r.all(self.g)}),{r.all(self.x)})"

    @staticmethod
    def example():
        return Example({"g": G, "x": X}, OuterSum("g", "x"), lambda T, g, x: g.T @ x)


@register
@dataclass(frozen=True)
class MatMulT(Op):
    """(N, K) = a (N, M) @ b (K, M)^T: a matrix product's gradient with respect to its left side."""
    INPUTS = ("a", "b")
    a: Ref
    b: Ref

    def reference(self, v):
        return v[self.a] @ v[self.b].T

    def formula(self, r, i, j):
        return f"SUMPRODUCT({r.row(self.a, i)},{r.row(self.b, j)})"

    def array(self, r):
        return f"MMULT({r.all(self.a)},TRANSPOSE({r.all(self.b)}))"

    @staticmethod
    def example():
        return Example({"a": G, "b": G[:2]}, MatMulT("a", "b"), lambda T, a, b: a @ b.T)


@register
@dataclass(frozen=True)
class ColumnSums(Op):
    """(F, 1) = the sum of each column of g (N, F), as a column: a bias's gradient in the bias's
    own (out, 1) layout."""
    INPUTS = ("g",)
    g: Ref
    array = _PER_COLUMN

    def reference(self, v):
        return v[self.g].sum(axis=0)[:, None]

    def formula(self, r, i, j):
        return f"SUM({r.col(self.g, i)})"

    @staticmethod
    def example():
        return Example({"g": G}, ColumnSums("g"), lambda T, g: g.sum(0)[:, None])


@register
@dataclass(frozen=True)
class ColumnDots(Op):
    """(1, F): the sum down each column of g * x, both (N, F): a LayerNorm gain's gradient."""
    INPUTS = ("g", "x")
    g: Ref
    x: Ref
    array = _PER_COLUMN

    def reference(self, v):
        return (v[self.g] * v[self.x]).sum(axis=0, keepdims=True)

    def formula(self, r, i, j):
        return f"SUMPRODUCT({r.col(self.g, j)},{r.col(self.x, j)})"

    @staticmethod
    def example():
        return Example({"g": G, "x": Z}, ColumnDots("g", "x"),
                       lambda T, g, x: (g * x).sum(0, keepdim=True))


@register
@dataclass(frozen=True)
class RowsAt(Op):
    """(V, F): row v holds the sum of the rows of g (N, F) whose id (ids, (N, 1)) is v: an
    embedding table's gradient, one cell per table cell (rows never looked up stay 0)."""
    INPUTS = ("g", "ids")
    g: Ref
    ids: Ref
    rows: int
    array = PerCellOnly("a sum over the batch per table cell, each a one-cell array formula")

    def reference(self, v):
        out = np.zeros((self.rows, v[self.g].shape[1]))
        np.add.at(out, np.asarray(v[self.ids], dtype=np.float64)[:, 0].astype(int), v[self.g])
        return out

    @as_array_text  # a comparison over a range inside SUMPRODUCT: see ArrayText
    def formula(self, r, i, j):
        return f"SUMPRODUCT(({r.all(self.ids)}={i})*{r.col(self.g, j)})"

    @staticmethod
    def example():
        ids = np.array([[2.0], [0.0], [2.0]])
        return Example({"g": G, "ids": ids}, RowsAt("g", "ids", 4),
                       lambda T, g, ids: T.zeros(4, 4, dtype=g.dtype).index_add(
                           0, ids[:, 0].long(), g))


# --- LayerNorm's steps (RowMean, RowVar, Normalize) ---------------------------------------------
@register
@dataclass(frozen=True)
class Spread(Op):
    """(N, F): g (N, 1) / F in every cell of its row: a row mean's gradient."""
    INPUTS = ("g",)
    g: Ref
    width: int
    array = PerCellOnly("a plain division per cell")

    def reference(self, v):
        return np.repeat(v[self.g] / self.width, self.width, axis=1)

    def formula(self, r, i, j):
        return f"{r.cell(self.g, i, 0)}/{self.width}"

    @staticmethod
    def example():
        return Example({"g": G[:, :1]}, Spread("g", 3), lambda T, g: (g / 3).repeat(1, 3))


@register
@dataclass(frozen=True)
class RowVarGrad(Op):
    """RowVar's gradient: ``wrt`` "x": g 2 (x - mean) / F (N, F); "mean": -g 2 sum(x - mean) / F
    (N, 1), which is 0 up to rounding when mean is the row's mean."""
    INPUTS = ("g", "x", "mean")
    g: Ref
    x: Ref
    mean: Ref
    wrt: str = "x"
    array = PerCellOnly("one formula per cell")

    def reference(self, v):
        d, n = v[self.x] - v[self.mean], v[self.x].shape[1]
        if self.wrt == "x":
            return v[self.g] * 2 * d / n
        return -v[self.g] * 2 * d.sum(axis=1, keepdims=True) / n

    def formula(self, r, i, j):
        g, m, n = r.cell(self.g, i, 0), r.cell(self.mean, i, 0), r.shape(self.x)[1]
        if self.wrt == "x":
            return f"{g}*2*({r.cell(self.x, i, j)}-{m})/{n}"
        return f"-{g}*2*(SUM({r.row(self.x, i)})-{n}*{m})/{n}"

    @staticmethod
    def example():
        mean = Z.mean(axis=1, keepdims=True) + 0.5  # off the mean: the "mean" gradient is not 0
        return Example({"g": G[:, :1], "x": Z, "mean": mean}, RowVarGrad("g", "x", "mean", "mean"),
                       lambda T, g, x, m: -g * 2 * (x - m).sum(1, keepdim=True) / x.shape[1])


@register
@dataclass(frozen=True)
class NormalizeGrad(Op):
    """Normalize's gradient, (x - mean) / sqrt(var + eps): ``wrt`` "x": g / s (N, F); "mean":
    -sum(g) / s (N, 1); "var": -sum(g (x - mean)) / (2 s^3) (N, 1), with s = sqrt(var + eps)."""
    INPUTS = ("g", "x", "mean", "var")
    g: Ref
    x: Ref
    mean: Ref
    var: Ref
    eps: float = 1e-5
    wrt: str = "x"
    array = PerCellOnly("one formula per cell")

    def reference(self, v):
        g, s = v[self.g], np.sqrt(v[self.var] + self.eps)
        if self.wrt == "x":
            return g / s
        if self.wrt == "mean":
            return -g.sum(axis=1, keepdims=True) / s
        return -(g * (v[self.x] - v[self.mean])).sum(axis=1, keepdims=True) / (2 * s ** 3)

    def formula(self, r, i, j):
        s = f"SQRT({r.cell(self.var, i, 0)}+{number(self.eps)})"
        if self.wrt == "x":
            return f"{r.cell(self.g, i, j)}/{s}"
        if self.wrt == "mean":
            return f"-SUM({r.row(self.g, i)})/{s}"
        return self._var(r, i, s)

    @as_array_text  # a difference of a range inside SUMPRODUCT: see ArrayText
    def _var(self, r, i, s):
        return (f"-SUMPRODUCT({r.row(self.g, i)},{r.row(self.x, i)}-{r.cell(self.mean, i, 0)})"
                f"/(2*{s}^3)")

    @staticmethod
    def example():
        mean, var = Z.mean(axis=1, keepdims=True), Z.var(axis=1, keepdims=True)
        return Example({"g": G, "x": Z, "mean": mean, "var": var},
                       NormalizeGrad("g", "x", "mean", "var", 1e-5, "var"),
                       lambda T, g, x, m, v: -(g * (x - m)).sum(1, keepdim=True)
                       / (2 * (v + 1e-5) ** 1.5))
