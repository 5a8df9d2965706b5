"""The ops a backward pass adds: weight and bias gradients, activation slopes, embedding-table
gradients and the pieces of LayerNorm's backward (the losses are in loss.py).

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

from .base import ELEMENTWISE, Example, Op, PerCellOnly, Ref, as_array_text, number, register

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


# --- activations: the output's gradient times the activation's slope ----------------------------
class _Masked(Op):
    """g times the slope of an activation at x (or at its output y): ``PATTERN`` with {g}, {x}."""
    INPUTS = ("g", "x")
    array = ELEMENTWISE
    PATTERN = "{g}"

    def formula(self, r, i, j):
        return self.PATTERN.format(g=r.cell(self.g, i, j), x=r.cell(self.x, i, j))

    @classmethod
    def example(cls):
        return Example({"g": G[:, :4], "x": Z}, cls("g", "x"), cls.TORCH)


def _torch_slope(fn):
    # torch's own backward of fn at x, times g: what the op must equal
    def run(T, g, x):
        x = x.clone().requires_grad_(True)
        (y,) = T.autograd.grad(fn(T, x), x, g)
        return y.detach()
    return run


@register
@dataclass(frozen=True)
class ReluGrad(_Masked):
    """g where ReLU's input x > 0, else 0 (the on/off mask times the gradient)."""
    g: Ref
    x: Ref
    PATTERN = "IF({x}>0,{g},0)"
    TORCH = staticmethod(_torch_slope(lambda T, x: T.relu(x)))

    def reference(self, v):
        return np.where(v[self.x] > 0, v[self.g], 0.0)


@register
@dataclass(frozen=True)
class LeakyReluGrad(_Masked):
    g: Ref
    x: Ref
    slope: float = 0.01

    def reference(self, v):
        return np.where(v[self.x] > 0, v[self.g], self.slope * v[self.g])

    def formula(self, r, i, j):
        g, x = r.cell(self.g, i, j), r.cell(self.x, i, j)
        return f"IF({x}>0,{g},{number(self.slope)}*{g})"

    @staticmethod
    def example():
        return Example({"g": G, "x": Z}, LeakyReluGrad("g", "x", 0.2), _torch_slope(
            lambda T, x: T.nn.functional.leaky_relu(x, 0.2)))


@register
@dataclass(frozen=True)
class TanhGrad(_Masked):
    """g (1 - y^2), y = tanh(x) the activation's output."""
    g: Ref
    x: Ref  # the output y
    PATTERN = "{g}*(1-{x}^2)"
    TORCH = staticmethod(lambda T, g, y: g * (1 - y * y))

    def reference(self, v):
        return v[self.g] * (1.0 - v[self.x] ** 2)


@register
@dataclass(frozen=True)
class SigmoidGrad(_Masked):
    """g y (1 - y), y = sigmoid(x) the activation's output."""
    g: Ref
    x: Ref  # the output y
    PATTERN = "{g}*{x}*(1-{x})"
    TORCH = staticmethod(lambda T, g, y: g * y * (1 - y))

    def reference(self, v):
        return v[self.g] * v[self.x] * (1.0 - v[self.x])


@register
@dataclass(frozen=True)
class GeluGrad(_Masked):
    """g times GELU's slope at x: Phi(x) + x phi(x) (erf form), or the tanh form's slope."""
    g: Ref
    x: Ref
    form: str = "erf"
    array = PerCellOnly("IronCalc does not apply ERF to each cell of a range in an array formula")

    def reference(self, v):
        x, g = v[self.x], v[self.g]
        if self.form == "tanh":
            c = math.sqrt(2.0 / math.pi)
            t = np.tanh(c * (x + 0.044715 * x ** 3))
            return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x))
        return g * (0.5 * (1 + _erf(x / math.sqrt(2.0))) + x * np.exp(-x * x / 2)
                    / math.sqrt(2 * math.pi))

    def formula(self, r, i, j):
        g, x = r.cell(self.g, i, j), r.cell(self.x, i, j)
        if self.form == "tanh":
            t = f"TANH(SQRT(2/PI())*({x}+0.044715*{x}^3))"
            return (f"{g}*(0.5*(1+{t})+0.5*{x}*(1-{t}^2)*SQRT(2/PI())*(1+3*0.044715*{x}^2))")
        # EXP(-(x^2)/2): a sheet's unary minus binds before ^, so -x^2 would be (-x)^2
        return f"{g}*(0.5*(1+ERF({x}/SQRT(2)))+{x}*EXP(-({x}^2)/2)/SQRT(2*PI()))"

    @staticmethod
    def example():
        # the erf form (GELU's default): its formula once squared a negated x
        return Example({"g": G, "x": Z}, GeluGrad("g", "x"), _torch_slope(
            lambda T, x: T.nn.functional.gelu(x)))


@register
@dataclass(frozen=True)
class SiluGrad(_Masked):
    """g s (1 + x (1 - s)), s = sigmoid(x): SiLU's slope at x."""
    g: Ref
    x: Ref
    PATTERN = "{g}*(1+{x}*(1-1/(1+EXP(-{x}))))/(1+EXP(-{x}))"
    TORCH = staticmethod(_torch_slope(lambda T, x: T.nn.functional.silu(x)))

    def reference(self, v):
        x = v[self.x]
        s = 1.0 / (1.0 + np.exp(-x))
        return v[self.g] * s * (1 + x * (1 - s))


@register
@dataclass(frozen=True)
class EluGrad(_Masked):
    """g where x > 0, else g alpha exp(x): ELU's slope."""
    g: Ref
    x: Ref
    alpha: float = 1.0

    def reference(self, v):
        x, g = v[self.x], v[self.g]
        return np.where(x > 0, g, g * self.alpha * np.exp(np.minimum(x, 0)))

    def formula(self, r, i, j):
        g, x = r.cell(self.g, i, j), r.cell(self.x, i, j)
        return f"IF({x}>0,{g},{g}*{number(self.alpha)}*EXP({x}))"

    @staticmethod
    def example():
        return Example({"g": G, "x": Z}, EluGrad("g", "x", 0.5), _torch_slope(
            lambda T, x: T.nn.functional.elu(x, 0.5)))


@register
@dataclass(frozen=True)
class SoftplusGrad(_Masked):
    """g where beta x > threshold (softplus is x there), else g e / (1 + e), e = exp(beta x):
    as torch's backward, which never overflows (IF computes only the branch it takes)."""
    g: Ref
    x: Ref
    beta: float = 1.0
    threshold: float = 20.0

    def reference(self, v):
        bx, g = self.beta * v[self.x], v[self.g]
        e = np.exp(np.minimum(bx, self.threshold))
        return np.where(bx > self.threshold, g, g * e / (1 + e))

    def formula(self, r, i, j):
        g, x = r.cell(self.g, i, j), r.cell(self.x, i, j)
        bx = x if self.beta == 1 else f"{number(self.beta)}*{x}"
        return f"IF({bx}>{number(self.threshold)},{g},{g}*EXP({bx})/(1+EXP({bx})))"

    @staticmethod
    def example():
        return Example({"g": G, "x": Z}, SoftplusGrad("g", "x", 2.0, 5.0), _torch_slope(
            lambda T, x: T.nn.functional.softplus(x, 2.0, 5.0)))


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
