"""Ops that compute each output cell from the same cell of their inputs: activations and arithmetic.

Each has the cell's formula; most reuse it as their array formula (``ELEMENTWISE``).  IronCalc
applies neither ERF (nor NORMSDIST) to each cell of a range inside an array formula, so GELU stays
one formula per cell; MAX(0, Z) collapses to one number inside an array, so ReLU has an IF form.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .base import ELEMENTWISE, Example, Op, PerCellOnly, Ref, number, register

_erf = np.vectorize(math.erf, otypes=[np.float64])
# (2, 3): negative, zero, small and large values (25 is past Softplus's default threshold of 20)
X = np.array([[-3.0, -0.5, 0.0], [0.25, 2.0, 25.0]])


class Unary(Op):
    """An op of one input ``x`` whose formula is ``PATTERN`` with {x} the input cell."""
    INPUTS = ("x",)
    PATTERN = "{x}"
    array = ELEMENTWISE
    MODULE = None  # the torch.nn activation this op computes, "module.QualName" (a Sequential's)
    SHORT = ""     # its name in sheet titles: "a = ReLU(z)"

    @classmethod
    def from_module(cls, x: str, module) -> "Unary":
        """The op computing ``module`` (an instance of MODULE) on node ``x``."""
        return cls(x)

    def formula(self, r, i, j):
        return self.PATTERN.format(x=r.cell(self.x, i, j))


@register
@dataclass(frozen=True)
class Relu(Unary):
    MODULE, SHORT = "torch.nn.modules.activation.ReLU", "ReLU"
    x: Ref
    PATTERN = "MAX(0,{x})"

    def reference(self, v):
        return np.maximum(0.0, v[self.x])

    def array(self, r):
        return "IF({x}>0,{x},0)".format(x=r.all(self.x))  # MAX(0, Z) would be one number

    def derivative(self, b, out, grad):
        from .slopes import ReluGrad  # the on/off mask times the gradient
        return [(self.x, b.add(ReluGrad(grad, self.x), b.shape(self.x)))]

    @staticmethod
    def example():
        return Example({"x": X}, Relu("x"), lambda T, x: T.nn.functional.relu(x))


@register
@dataclass(frozen=True)
class LeakyRelu(Unary):
    MODULE, SHORT = "torch.nn.modules.activation.LeakyReLU", "LeakyReLU"
    x: Ref
    slope: float = 0.01

    @classmethod
    def from_module(cls, x, module):
        return cls(x, float(module.negative_slope))

    def reference(self, v):
        return np.where(v[self.x] > 0, v[self.x], self.slope * v[self.x])

    def formula(self, r, i, j):
        return "IF({x}>0,{x},{s}*{x})".format(x=r.cell(self.x, i, j), s=number(self.slope))

    def derivative(self, b, out, grad):
        from .slopes import LeakyReluGrad
        return [(self.x, b.add(LeakyReluGrad(grad, self.x, self.slope), b.shape(self.x)))]

    @staticmethod
    def example():
        return Example({"x": X}, LeakyRelu("x", 0.2),
                       lambda T, x: T.nn.functional.leaky_relu(x, 0.2))


@register
@dataclass(frozen=True)
class Tanh(Unary):
    MODULE, SHORT = "torch.nn.modules.activation.Tanh", "tanh"
    x: Ref
    PATTERN = "TANH({x})"

    def reference(self, v):
        return np.tanh(v[self.x])

    def derivative(self, b, out, grad):
        from .slopes import TanhGrad  # 1 - tanh^2, from the output's cells
        return [(self.x, b.add(TanhGrad(grad, out), b.shape(self.x)))]

    @staticmethod
    def example():
        return Example({"x": X}, Tanh("x"), lambda T, x: x.tanh())


@register
@dataclass(frozen=True)
class Sigmoid(Unary):
    MODULE, SHORT = "torch.nn.modules.activation.Sigmoid", "sigmoid"
    x: Ref
    PATTERN = "1/(1+EXP(-{x}))"

    def reference(self, v):
        return 1.0 / (1.0 + np.exp(-v[self.x]))

    def derivative(self, b, out, grad):
        from .slopes import SigmoidGrad  # y (1 - y), from the output's cells
        return [(self.x, b.add(SigmoidGrad(grad, out), b.shape(self.x)))]

    @staticmethod
    def example():
        return Example({"x": X}, Sigmoid("x"), lambda T, x: x.sigmoid())


@register
@dataclass(frozen=True)
class Gelu(Unary):
    """GELU exactly as the model defines it: "erf" (exact) or "tanh" (GPT-2's gelu_new)."""
    MODULE, SHORT = "torch.nn.modules.activation.GELU", "GELU"
    x: Ref
    form: str = "erf"
    array = PerCellOnly("IronCalc does not apply ERF to each cell of a range in an array formula")

    @classmethod
    def from_module(cls, x, module):
        return cls(x, "tanh" if module.approximate == "tanh" else "erf")

    def reference(self, v):
        x = v[self.x]
        if self.form == "tanh":
            return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
        return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))

    def formula(self, r, i, j):
        x = r.cell(self.x, i, j)
        if self.form == "tanh":
            return f"0.5*{x}*(1+TANH(SQRT(2/PI())*({x}+0.044715*{x}^3)))"
        return f"0.5*{x}*(1+ERF({x}/SQRT(2)))"

    def derivative(self, b, out, grad):
        from .slopes import GeluGrad
        return [(self.x, b.add(GeluGrad(grad, self.x, self.form), b.shape(self.x)))]

    @staticmethod
    def example():
        return Example({"x": X}, Gelu("x", "tanh"),
                       lambda T, x: T.nn.functional.gelu(x, approximate="tanh"))


@register
@dataclass(frozen=True)
class Silu(Unary):
    """x * sigmoid(x) (SiLU, "swish")."""
    MODULE, SHORT = "torch.nn.modules.activation.SiLU", "SiLU"
    x: Ref
    PATTERN = "{x}/(1+EXP(-{x}))"

    def reference(self, v):
        return v[self.x] / (1.0 + np.exp(-v[self.x]))

    def derivative(self, b, out, grad):
        from .slopes import SiluGrad
        return [(self.x, b.add(SiluGrad(grad, self.x), b.shape(self.x)))]

    @staticmethod
    def example():
        return Example({"x": X}, Silu("x"), lambda T, x: T.nn.functional.silu(x))


@register
@dataclass(frozen=True)
class Softplus(Unary):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (as torch does)."""
    MODULE, SHORT = "torch.nn.modules.activation.Softplus", "Softplus"
    x: Ref
    beta: float = 1.0
    threshold: float = 20.0

    @classmethod
    def from_module(cls, x, module):
        return cls(x, float(module.beta), float(module.threshold))

    def reference(self, v):
        bx = self.beta * v[self.x]
        with np.errstate(over="ignore"):  # exp of a big bx: the branch np.where drops
            soft = np.log1p(np.exp(bx)) / self.beta
        return np.where(bx > self.threshold, v[self.x], soft)

    def formula(self, r, i, j):
        x, t = r.cell(self.x, i, j), number(self.threshold)
        if self.beta == 1:  # the common case reads as the textbook formula
            return f"IF({x}>{t},{x},LN(1+EXP({x})))"
        b = number(self.beta)
        return f"IF({b}*{x}>{t},{x},LN(1+EXP({b}*{x}))/{b})"

    def derivative(self, b, out, grad):
        from .slopes import SoftplusGrad
        return [(self.x, b.add(SoftplusGrad(grad, self.x, self.beta, self.threshold),
                               b.shape(self.x)))]

    @staticmethod
    def example():
        return Example({"x": X}, Softplus("x", 2.0, 5.0),
                       lambda T, x: T.nn.functional.softplus(x, 2.0, 5.0))


@register
@dataclass(frozen=True)
class Elu(Unary):
    """x where x > 0, else alpha (exp(x) - 1)."""
    MODULE, SHORT = "torch.nn.modules.activation.ELU", "ELU"
    x: Ref
    alpha: float = 1.0

    @classmethod
    def from_module(cls, x, module):
        return cls(x, float(module.alpha))

    def reference(self, v):
        return np.where(v[self.x] > 0, v[self.x], self.alpha * np.expm1(np.minimum(v[self.x], 0)))

    def formula(self, r, i, j):
        x = r.cell(self.x, i, j)
        if self.alpha == 1:  # the common case reads as the textbook formula
            return f"IF({x}>0,{x},EXP({x})-1)"
        return f"IF({x}>0,{x},{number(self.alpha)}*(EXP({x})-1))"

    def derivative(self, b, out, grad):
        from .slopes import EluGrad
        return [(self.x, b.add(EluGrad(grad, self.x, self.alpha), b.shape(self.x)))]

    @staticmethod
    def example():
        return Example({"x": X}, Elu("x", 0.5), lambda T, x: T.nn.functional.elu(x, 0.5))


@register
@dataclass(frozen=True)
class Step(Unary):
    """1 where x > 0 else 0: which ReLUs are on."""
    x: Ref
    PATTERN = "IF({x}>0,1,0)"

    def reference(self, v):
        return (v[self.x] > 0).astype(np.float64)

    @staticmethod
    def example():
        return Example({"x": X}, Step("x"), lambda T, x: (x > 0).double())


@register
@dataclass(frozen=True)
class Sqrt(Unary):
    x: Ref
    PATTERN = "SQRT({x})"

    def reference(self, v):
        return np.sqrt(v[self.x])

    @staticmethod
    def example():
        return Example({"x": np.abs(X)}, Sqrt("x"), lambda T, x: x.sqrt())


@register
@dataclass(frozen=True)
class Copy(Unary):
    """The same values shown again, e.g. a layer's input repeated on its own sheet."""
    x: Ref
    PATTERN = "{x}"

    def reference(self, v):
        return v[self.x].copy()

    def derivative(self, b, out, grad):
        return [(self.x, grad)]  # the same values: the same gradient

    @staticmethod
    def example():
        return Example({"x": X}, Copy("x"), lambda T, x: x)


@register
@dataclass(frozen=True)
class Divide(Op):
    """x / by, ``by`` one cell (the softmax temperature)."""
    INPUTS = ("x", "by")
    x: Ref
    by: Ref
    array = ELEMENTWISE

    def reference(self, v):
        return v[self.x] / v[self.by][0, 0]

    def formula(self, r, i, j):
        return f"{r.cell(self.x, i, j)}/{r.cell(self.by, 0, 0)}"

    @staticmethod
    def example():
        return Example({"x": X, "by": np.array([[0.8]])}, Divide("x", "by"),
                       lambda T, x, by: x / by)
