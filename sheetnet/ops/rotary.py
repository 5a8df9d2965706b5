"""Rotary position embedding (RoPE) on every head of a projection at once, Llama's form:

    out = x * cos + rotate_half(x) * sin,   rotate_half(x) = cat(-x[..., D/2:], x[..., :D/2])

x is the (T, H*D) projection, heads side by side; cos and sin are (T, D) constant tables (the
front end computes them once with torch from the model's inv_freq buffer).  One cell per output
reads its own x cell and its partner half a head away, so no neg / slice / cat blocks are made.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Example, Op, PerCellOnly, Ref, register

_RNG = np.random.default_rng(31)
X = _RNG.normal(size=(3, 8))                       # (T=3, H=2 heads of D=4)
ANGLES = np.outer(np.arange(3.0), [1.0, 0.1])      # (T, D/2)
COS = np.cos(np.hstack([ANGLES, ANGLES]))          # (T, D)
SIN = np.sin(np.hstack([ANGLES, ANGLES]))


@register
@dataclass(frozen=True)
class Rotary(Op):
    """(T, H*D) = x * cos + rotate_half(x) * sin for each head of ``head_dim`` columns."""
    INPUTS = ("x", "cos", "sin")
    x: Ref
    cos: Ref
    sin: Ref
    head_dim: int
    array = PerCellOnly("each cell reads its partner half a head away: a cell formula each")

    def reference(self, v):
        x, d = v[self.x], self.head_dim
        heads = x.reshape(x.shape[0], -1, d)                     # (T, H, D)
        half = d // 2
        rotated = np.concatenate([-heads[..., half:], heads[..., :half]], axis=-1)
        out = heads * v[self.cos][:, None, :] + rotated * v[self.sin][:, None, :]
        return out.reshape(x.shape)

    def formula(self, r, i, j):
        d, half = self.head_dim, self.head_dim // 2
        k = j % d                                    # the column within its head
        partner = j + half if k < half else j - half
        sign = "-" if k < half else "+"              # rotate_half negates the second half
        return (f"{r.cell(self.x, i, j)}*{r.cell(self.cos, i, k)}{sign}"
                f"{r.cell(self.x, i, partner)}*{r.cell(self.sin, i, k)}")

    @staticmethod
    def example():
        def torch_rope(T, x, cos, sin):
            heads = x.reshape(3, 2, 4).transpose(0, 1)           # (H, T, D)
            rotated = T.cat([-heads[..., 2:], heads[..., :2]], dim=-1)
            return (heads * cos + rotated * sin).transpose(0, 1).reshape(3, 8)
        return Example({"x": X, "cos": COS, "sin": SIN}, Rotary("x", "cos", "sin", 4), torch_rope)
