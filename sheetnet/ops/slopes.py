"""Activation slopes for the backward pass: the output's gradient g times the activation's
derivative at its input x (or from its output y where that is cheaper: tanh, sigmoid), one
elementwise unit per activation, each equal to torch's own autograd (see grad.py for how a
``derivative`` slot builds these).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .base import ELEMENTWISE, Example, Op, PerCellOnly, Ref, number, register
from .grad import G, Z, _erf


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
