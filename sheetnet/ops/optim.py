"""The optimizer's update as op units: SGD, SGD with momentum, Adam, exactly as torch.optim
computes them (defaults: no weight decay, dampening 0, no Nesterov, no AMSGrad).

Each reads the weight, its gradient (or Adam's moments) and the Training sheet's cells (learning
rate, momentum, betas, eps: (1, 1) nodes), so editing a rate recomputes every step.  A step's
new weights are a node in the weight's own layout, one cell per weight.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import ELEMENTWISE, Example, Op, Ref, register

_RNG = np.random.default_rng(23)
W, D, M = _RNG.normal(size=(3, 2)), _RNG.normal(size=(3, 2)), _RNG.normal(size=(3, 2))
V = _RNG.uniform(0.01, 2.0, size=(3, 2))  # Adam's second moment: positive
LR, MU = np.array([[0.1]]), np.array([[0.9]])
B1, B2, EPS = np.array([[0.9]]), np.array([[0.999]]), np.array([[1e-8]])


def _scalar(v, name) -> float:
    return float(v[name][0, 0])


@register
@dataclass(frozen=True)
class SgdStep(Op):
    """w - lr d: plain gradient descent (d: the gradient, or momentum's buffer)."""
    INPUTS = ("w", "d", "lr")
    w: Ref
    d: Ref
    lr: Ref
    array = ELEMENTWISE

    def reference(self, v):
        return v[self.w] - _scalar(v, self.lr) * v[self.d]

    def formula(self, r, i, j):
        return f"{r.cell(self.w, i, j)}-{r.cell(self.lr, 0, 0)}*{r.cell(self.d, i, j)}"

    @staticmethod
    def example():
        return Example({"w": W, "d": D, "lr": LR}, SgdStep("w", "d", "lr"),
                       lambda T, w, d, lr: w - lr * d)


@register
@dataclass(frozen=True)
class MomentumBuffer(Op):
    """mu buf + d: SGD momentum's running direction (torch: the first step's buffer is d)."""
    INPUTS = ("d", "buf", "mu")
    d: Ref
    buf: Ref
    mu: Ref
    array = ELEMENTWISE

    def reference(self, v):
        return _scalar(v, self.mu) * v[self.buf] + v[self.d]

    def formula(self, r, i, j):
        return f"{r.cell(self.mu, 0, 0)}*{r.cell(self.buf, i, j)}+{r.cell(self.d, i, j)}"

    @staticmethod
    def example():
        return Example({"d": D, "buf": M, "mu": MU}, MomentumBuffer("d", "buf", "mu"),
                       lambda T, d, b, mu: mu * b + d)


@register
@dataclass(frozen=True)
class AdamMoment(Op):
    """beta m + (1 - beta) d^power: Adam's first (power 1) or second (power 2) moment; ``m``
    None on the first step (torch starts both at 0)."""
    INPUTS = ("d", "m", "beta")
    d: Ref
    m: Ref | None
    beta: Ref
    power: int = 1
    array = ELEMENTWISE

    def reference(self, v):
        beta, d = _scalar(v, self.beta), v[self.d]
        new = (1 - beta) * (d * d if self.power == 2 else d)
        return new + beta * v[self.m] if self.m else new

    def formula(self, r, i, j):
        beta, d = r.cell(self.beta, 0, 0), r.cell(self.d, i, j)
        new = f"(1-{beta})*{d}" + ("^2" if self.power == 2 else "")
        return f"{beta}*{r.cell(self.m, i, j)}+{new}" if self.m else new

    @staticmethod
    def example():
        return Example({"d": D, "m": V, "beta": B2}, AdamMoment("d", "m", "beta", 2),
                       lambda T, d, m, b: b * m + (1 - b) * d * d)


@register
@dataclass(frozen=True)
class AdamStep(Op):
    """w - lr / (1 - b1^t) m / (sqrt(v) / sqrt(1 - b2^t) + eps): Adam's bias-corrected update at
    step t (counting from 1), as torch.optim.Adam writes it."""
    INPUTS = ("w", "m", "v", "lr", "b1", "b2", "eps")
    w: Ref
    m: Ref
    v: Ref
    lr: Ref
    b1: Ref
    b2: Ref
    eps: Ref
    t: int = 1
    array = ELEMENTWISE

    def reference(self, v):
        lr, b1, b2, eps = (_scalar(v, n) for n in (self.lr, self.b1, self.b2, self.eps))
        denom = np.sqrt(v[self.v]) / np.sqrt(1 - b2 ** self.t) + eps
        return v[self.w] - lr / (1 - b1 ** self.t) * v[self.m] / denom

    def formula(self, r, i, j):
        lr, b1, b2, eps = (r.cell(n, 0, 0) for n in (self.lr, self.b1, self.b2, self.eps))
        m, v, w, t = r.cell(self.m, i, j), r.cell(self.v, i, j), r.cell(self.w, i, j), self.t
        return f"{w}-{lr}/(1-{b1}^{t})*{m}/(SQRT({v})/SQRT(1-{b2}^{t})+{eps})"

    @staticmethod
    def example():
        return Example({"w": W, "m": M, "v": V, "lr": LR, "b1": B1, "b2": B2, "eps": EPS},
                       AdamStep("w", "m", "v", "lr", "b1", "b2", "eps", 3),
                       lambda T, w, m, v, lr, b1, b2, eps:
                       w - lr / (1 - b1 ** 3) * m / (v.sqrt() / (1 - b2 ** 3).sqrt() + eps))
