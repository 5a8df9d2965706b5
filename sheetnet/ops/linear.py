"""Matrix ops: a Linear layer, a matrix product, and blocks side by side."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Example, Op, PerCellOnly, Ref, register

_RNG = np.random.default_rng(7)
# (N=2, in=3) activations, (out=4, in=3) weights and a (4, 1) bias: PyTorch's layouts
X, W, B = _RNG.normal(size=(2, 3)), _RNG.normal(size=(4, 3)), _RNG.normal(size=(4, 1))


@register
@dataclass(frozen=True)
class Linear(Op):
    """(N, out) = x (N, in) @ w (out, in)^T + b (out, 1)."""
    INPUTS = ("x", "w", "b")
    x: Ref
    w: Ref
    b: Ref | None = None

    def reference(self, v):
        out = v[self.x] @ v[self.w].T  # (N, in) @ (in, out)
        return out + v[self.b][:, 0] if self.b else out

    def formula(self, r, i, j):
        # z[i, j] = x[i, :] . W[j, :] + b[j]: a row of activations against a row (neuron) of weights
        if r.shape(self.x)[1] == 1:
            dot = f"{r.cell(self.x, i, 0)}*{r.cell(self.w, j, 0)}"
        else:
            dot = f"SUMPRODUCT({r.row(self.x, i)},{r.row(self.w, j)})"
        return f"{dot}+{r.cell(self.b, j, 0)}" if self.b else dot

    def array(self, r):
        # (N, out) = (W (out, in) @ x^T (in, N))^T + the bias row broadcast down the N rows.
        # W is read as it lies: TRANSPOSE(W) would copy the whole matrix in every formula (a
        # position row's, at GPT-2's 50,257 x 768 LM head, 38.6 million numbers per row), while
        # x and the result are one row each; the dot products add in the same k order.
        out = f"TRANSPOSE(MMULT({r.all(self.w)},TRANSPOSE({r.all(self.x)})))"
        return f"{out}+TRANSPOSE({r.all(self.b)})" if self.b else out

    def derivative(self, b, out, grad):
        # grad (N, out): dx = grad @ W (N, in), dW = grad^T @ x (out, in), db = column sums (out, 1)
        from .grad import ColumnSums, OuterSum
        found = []
        if b.wants(self.x):
            found.append((self.x, b.add(MatMul(grad, self.w), b.shape(self.x))))
        if b.wants(self.w):
            found.append((self.w, b.add(OuterSum(grad, self.x), b.shape(self.w))))
        if self.b and b.wants(self.b):
            found.append((self.b, b.add(ColumnSums(grad), b.shape(self.b))))
        return found

    @staticmethod
    def example():
        return Example({"x": X, "w": W, "b": B}, Linear("x", "w", "b"),
                       lambda T, x, w, b: T.nn.functional.linear(x, w, b[:, 0]))


@register
@dataclass(frozen=True)
class MatMul(Op):
    """(N, M) = a (N, K) @ b (K, M), e.g. attention probabilities @ values."""
    INPUTS = ("a", "b")
    a: Ref
    b: Ref

    def reference(self, v):
        return v[self.a] @ v[self.b]

    def formula(self, r, i, j):
        # a row times a column: MMULT gives the one number (SUMPRODUCT needs equal shapes)
        return f"MMULT({r.row(self.a, i)},{r.col(self.b, j)})"

    def array(self, r):
        return f"MMULT({r.all(self.a)},{r.all(self.b)})"

    def derivative(self, b, out, grad):
        # grad (N, M): da = grad @ b^T (N, K), db = a^T @ grad (K, M)
        from .grad import MatMulT, OuterSum
        found = []
        if b.wants(self.a):
            found.append((self.a, b.add(MatMulT(grad, self.b), b.shape(self.a))))
        if b.wants(self.b):
            found.append((self.b, b.add(OuterSum(self.a, grad), b.shape(self.b))))
        return found

    @staticmethod
    def example():
        return Example({"a": X, "b": W.T}, MatMul("a", "b"), lambda T, a, b: a @ b)


@register
@dataclass(frozen=True)
class Concat(Op):
    """Tensors with the same rows side by side (attention heads -> one (T, n_embd) block)."""
    INPUTS = ("parts",)
    parts: tuple[Ref, ...]
    array = PerCellOnly("each cell is a plain reference to one part's cell")

    def reference(self, v):
        return np.hstack([v[p] for p in self.parts])

    def formula(self, r, i, j):
        for part in self.parts:
            width = r.shape(part)[1]
            if j < width:
                return r.cell(part, i, j)
            j -= width
        raise IndexError("column beyond the concatenated parts")

    @staticmethod
    def example():
        return Example({"p": X, "q": W[:2]}, Concat(("p", "q")), lambda T, p, q: T.cat([p, q], 1))
