"""What every engine shares: the Block to read, error types, and the checks around a call."""
from __future__ import annotations

import math
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import SheetnetError

__all__ = ["Block", "CellError", "EngineError", "FormulaError", "ERROR_NAMES", "MAX_LISTED",
           "DEFAULT_TIMEOUT", "check_timeout", "quote_sheet", "book_path", "errors_or_none", "need_program",
           "empty_blocks"]

# what a formula error reads as in Excel, Gnumeric and IronCalc
ERROR_NAMES = ("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "#ERROR!",
               "#N/IMPL!", "#SPILL!", "#CALC!", "#CIRC!")
MAX_LISTED = 1000  # error cells listed in a FormulaError (all are counted)
_SHOWN_ERRORS = 5  # of them, named in its message
DEFAULT_TIMEOUT = 300.0  # seconds for each recalculation (LibreOffice: start-up too, separately)


def check_timeout(seconds: float) -> float:
    """An engine's timeout as a float.

    Raises:
        EngineError: ``seconds`` is not a number above 0.
    """
    try:
        seconds = float(seconds)
    except (TypeError, ValueError):
        raise EngineError(f"timeout must be a number of seconds, not {seconds!r}") from None
    if not (seconds > 0 and math.isfinite(seconds)):  # NaN too; a timer cannot wait for ever
        raise EngineError(f"timeout must be a finite number of seconds above 0, not {seconds:g}")
    return seconds


@dataclass(frozen=True)
class Block:
    """A rectangle to read: 0-based top-left row/col and its size."""
    sheet: str
    row: int
    col: int
    nrows: int
    ncols: int


@dataclass(frozen=True)
class CellError:
    """A formula cell whose result is an error, e.g. ('Layer 1', 'C7', '#VALUE!')."""
    sheet: str
    cell: str
    error: str


class EngineError(SheetnetError):
    """An engine is missing, crashed, hung, or could not read a workbook."""


class FormulaError(EngineError):
    """Formula cells computed to errors; ``errors`` lists them (at most MAX_LISTED).

    ``total`` counts all of them, also those left out of ``errors``.
    """

    def __init__(self, errors: Sequence[CellError], total: int | None = None):
        self.errors = list(errors)
        self.total = len(self.errors) if total is None else total
        shown = ", ".join(f"{quote_sheet(e.sheet)}!{e.cell} {e.error}"
                          for e in self.errors[:_SHOWN_ERRORS])
        more = ", ..." if self.total > _SHOWN_ERRORS else ""
        noun = "cell computes" if self.total == 1 else "cells compute"
        super().__init__(f"{self.total} formula {noun} to errors: {shown}{more}")


def quote_sheet(name: str) -> str:
    """Return a sheet name as a formula would spell it: 'Layer 1', 'O''Neil', Sheet1."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and not re.fullmatch(r"[A-Za-z]{1,3}\d+", name):
        return name
    return "'" + name.replace("'", "''") + "'"


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
