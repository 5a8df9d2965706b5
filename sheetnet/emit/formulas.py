"""Op -> formula text, one function per op, in one table (``CELL_FORMULAS``).

Each function gets the op, the references (``Refs``) and the output cell (i, j) and returns the
formula without its leading "=".  Only functions that Excel 2010+ and LibreOffice both compute.
This module knows nothing about openpyxl or the layout beyond ``Refs``.
"""
from __future__ import annotations

from ..ir import graph as ir
from .a1 import Refs, number


def linear(op: ir.Linear, r: Refs, i: int, j: int) -> str:
    # z[i, j] = x[i, :] . W[j, :] + b[j]: a row of activations against a row (neuron) of weights
    if r.regions[op.x].ncols == 1:
        dot = f"{r.cell(op.x, i, 0)}*{r.cell(op.w, j, 0)}"
    else:
        dot = f"SUMPRODUCT({r.row(op.x, i)},{r.row(op.w, j)})"
    return f"{dot}+{r.cell(op.b, j, 0)}" if op.b else dot


def gelu(op: ir.Gelu, r: Refs, i: int, j: int) -> str:
    x = r.cell(op.x, i, j)
    if op.form == "tanh":
        return f"0.5*{x}*(1+TANH(SQRT(2/PI())*({x}+0.044715*{x}^3)))"
    return f"0.5*{x}*(1+ERF({x}/SQRT(2)))"


def _unary(pattern: str):
    return lambda op, r, i, j: pattern.format(x=r.cell(op.x, i, j))


def _binary(pattern: str):
    return lambda op, r, i, j: pattern.format(a=r.cell(op.a, i, j), b=r.cell(op.b, i, j))


CELL_FORMULAS = {
    ir.Linear: linear,
    ir.Relu: _unary("MAX(0,{x})"),
    ir.LeakyRelu: lambda op, r, i, j: "IF({x}>0,{x},{s}*{x})".format(
        x=r.cell(op.x, i, j), s=number(op.slope)),
    ir.Tanh: _unary("TANH({x})"),
    ir.Sigmoid: _unary("1/(1+EXP(-{x}))"),
    ir.Gelu: gelu,
    ir.Copy: _unary("{x}"),
    ir.Sqrt: _unary("SQRT({x})"),
    ir.Step: _unary("IF({x}>0,1,0)"),
    ir.Add: _binary("{a}+{b}"),
    ir.Sub: _binary("{a}-{b}"),
}


def cell_formula(op, refs: Refs, i: int, j: int) -> str:
    """The formula text (no leading "=") that computes output cell (i, j) of ``op``."""
    try:
        fn = CELL_FORMULAS[type(op)]
    except KeyError:
        raise NotImplementedError(f"no formula for op {type(op).__name__}") from None
    return fn(op, refs, i, j)
