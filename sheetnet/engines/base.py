"""What every engine shares: the Block to read, error types, and the checks around a call.

Block, CellError, EngineError and FormulaError live in sheetnet/engine.py until LibreOffice's
engine moves into this package; everything else imports them from here.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from ..engine import Block, CellError, EngineError, FormulaError

__all__ = ["Block", "CellError", "EngineError", "FormulaError", "ERROR_NAMES", "MAX_LISTED",
           "book_path", "errors_or_none", "need_program", "empty_blocks"]

# what a formula error reads as in Excel, Gnumeric and IronCalc
ERROR_NAMES = ("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "#ERROR!",
               "#N/IMPL!", "#SPILL!", "#CALC!", "#CIRC!")
MAX_LISTED = 1000  # error cells listed in a FormulaError (all are counted)


def book_path(path: str | os.PathLike) -> Path:
    """The workbook's absolute path; EngineError when it is not a file."""
    path = Path(path).resolve()
    if not path.is_file():
        raise EngineError(f"workbook not found: {path}")
    return path


def need_program(program: str, hint: str) -> str:
    """The path of ``program`` on PATH, or EngineError(hint) saying how to install it."""
    found = shutil.which(program)
    if not found:
        raise EngineError(hint)
    return found


def errors_or_none(errors: list[CellError], total: int, check: bool) -> None:
    """Raise FormulaError when ``check`` and formula cells computed to errors."""
    if check and total:
        raise FormulaError(errors, total)


def empty_blocks(reads) -> list[np.ndarray]:
    """One object array of None per Block, to be filled."""
    return [np.full((b.nrows, b.ncols), None, dtype=object) for b in reads]


def plain(value):
    """An engine's cell value as LibreOffice's engine gives it: float, str, or None (empty, "")."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return float(value)
    return value if isinstance(value, str) else float(value)
