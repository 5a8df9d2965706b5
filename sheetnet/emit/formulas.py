"""Op -> formula text: each op's ``formula`` (sheetnet/ops), found through the op registry.

Each formula gets the op, the references (``Refs``) and the output cell (i, j) and returns the
text without its leading "=".  Only functions and forms that Excel 2010+, LibreOffice,
Gnumeric and IronCalc all compute (tests/test_engines.py recalculates every example in each):
no range built from two INDEXes, no ISTEXT over a range, and a formula that applies a function
to each cell of a range (EXACT, EXP) inside a SUMPRODUCT is an ``ArrayText``.
This module knows nothing about openpyxl or the layout beyond ``Refs``.
"""
from __future__ import annotations

from ..ops import REGISTRY
from .a1 import Refs

CELL_FORMULAS = {cls: cls.formula for cls in REGISTRY.values()}  # op type -> fn(op, refs, i, j)


def cell_formula(op, refs: Refs, i: int, j: int) -> str:
    """The formula text (no leading "=") that computes output cell (i, j) of ``op``."""
    try:
        fn = CELL_FORMULAS[type(op)]
    except KeyError:
        raise NotImplementedError(f"no formula for op {type(op).__name__}") from None
    return fn(op, refs, i, j)
