"""A workbook open in LibreOffice over UNO: its cells read, edited and put back.

    uno_module()        pyuno, imported lazily (sheetnet imports fine without LibreOffice)
    apply_edits         numbers with setValue, text with setString (never parsed as formulas)
    read_block          one block of values in one getDataArray call
    formula_errors      the formula cells that computed to an error, on every sheet
    LoadedBook          one document kept open, recalculated edit by edit (engine.loaded)

libreoffice.py owns the soffice process (start, watchdog, load); this module only what is done
with a document once loaded.
"""
from __future__ import annotations

import contextlib
import itertools
import numbers
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..a1 import cell_name
from .base import (MAX_LISTED, Block, CellError, EngineError, FormulaError, book_path,
                   quote_sheet)

INSTALL_HINT = ("LibreOffice (soffice) is not installed: "
                 "apt-get install libreoffice-calc-nogui python3-uno")
# Debian's python3-uno lives outside any venv; its .so matches Python 3.11.
_UNO_DIRS = ("/usr/lib/python3/dist-packages", "/usr/lib/libreoffice/program")
# LibreOffice error codes that it displays with an Excel-style name; every
# other code it displays as "Err:NNN" (502 = invalid argument, e.g. SQRT(-1)).
ERROR_NAMES = {503: "#NUM!", 519: "#VALUE!", 521: "#NULL!", 524: "#REF!",
                525: "#NAME?", 532: "#DIV/0!", 32767: "#N/A"}


def uno_module():
    """Import pyuno lazily, so sheetnet imports fine without LibreOffice."""
    for d in _UNO_DIRS:
        if d not in sys.path:
            sys.path.append(d)
    try:
        import uno
    except ImportError as exc:
        raise EngineError(f"cannot import LibreOffice's Python bridge ({exc}); {INSTALL_HINT}") from None
    return uno


def apply_edits(doc, edits, book: str) -> None:
    """Set cells: numbers with setValue, strings with setString (never parsed as formulas)."""
    for sheet_name, row, col, value in edits:
        cell = doc_sheet(doc, sheet_name, book).getCellByPosition(col, row)
        if isinstance(value, str):
            # the read-only document ignores setString("") and clearContents (the old text
            # stays): the empty text is written as a formula that gives ""
            cell.setString(value) if value else cell.setFormula('=""')
        elif isinstance(value, numbers.Real):
            cell.setValue(float(value))
        else:
            raise TypeError(f"edit value must be a number or str, not {type(value).__name__}")


class LoadedBook:
    """One workbook open in a running LibreOffice, recalculated edit by edit (see
    ``LibreOffice.loaded``); ``recalculate`` takes the engine's arguments, so run and verify
    read it as they read an engine."""

    name = "libreoffice"

    def __init__(self, engine, path: Path):
        self.engine, self.path = engine, path
        self.doc = None  # loaded by the first recalculate, and again after a crash
        self.timings: dict[str, float] = {}
        self.crashes = 0  # edits soffice crashed on (each answered from an edited copy)

    def open(self) -> None:
        """Load the workbook (the engine's watchdog bounds it) and drop its charts.

        LibreOffice 7.4 now and then crashes (exit 134, a SIGSEGV under ScCellObj::setString, in
        ScCellValue::release's listener code) on an edit made over UNO to a loaded GPT workbook,
        most often the first edit after the load. Measured on the example GPT, cells style,
        prompt edits: about one first edit in three with the Prompt sheet's chart, about one in
        twenty-five without.
        The chart draws nothing in a hidden document that is never saved."""
        with self.engine._watchdog(f"loading {self.path.name}"):
            self.doc = self.engine._load(self.path)
            drop_charts(self.doc)

    def close(self) -> None:
        if self.doc is not None:
            with contextlib.suppress(Exception):  # a dead soffice has closed it already
                self.doc.close(True)
            self.doc = None

    def recalculate(self, path, reads: Sequence[Block], edits=(), check_errors: bool = True):
        """As LibreOffice.recalculate on the loaded document (``path`` must be it): only the
        cells the edits reach are recalculated; the edited cells are put back afterwards, so each
        call starts from the workbook as it was loaded.

        When soffice crashes on an edit (see ``open``), a fresh soffice answers this call from a
        copy of the workbook with the edits written into its cells (LibreOffice.recalculate:
        no cell is set over UNO there), and the next call loads the workbook again. Each call
        starts from the workbook as saved, so the answer is the same."""
        if book_path(path) != self.path:
            raise EngineError(f"{path} is not the loaded workbook {self.path.name}")
        try:
            if self.doc is None:
                self.open()
            return self._recalculate(reads, edits, check_errors)
        except FormulaError:
            raise
        except EngineError:
            if self.engine.alive() or self.engine.timed_out:
                raise  # a refusal or a timeout, not a crash: another load would not help
            self.crashes += 1
            self.doc = None
            out = self.engine.recalculate(self.path, reads, edits, check_errors=check_errors)
            self.timings = dict(self.engine.timings)
            return out

    def _recalculate(self, reads, edits, check_errors):
        with self.engine._watchdog(f"recalculating {self.path.name}"):
            cells = [doc_sheet(self.doc, s, self.path.name).getCellByPosition(c, r)
                     for s, r, c, _ in edits]
            saved = [_contents(cell) for cell in cells]
            try:
                clock = time.perf_counter()
                apply_edits(self.doc, edits, self.path.name)
                self.doc.calculate()  # the dirty cells only: what the edits reach
                self.timings = {"recalc": time.perf_counter() - clock}
                if check_errors:
                    errors, total = formula_errors(self.doc)
                    if total:
                        raise FormulaError(errors, total)
                return [read_block(doc_sheet(self.doc, b.sheet, self.path.name), b) for b in reads]
            finally:
                for cell, (kind, value) in zip(cells, saved):
                    _restore(cell, kind, value)


def _contents(cell) -> tuple[str, object]:
    # what a cell holds, to put back: ("formula", text), ("value", x), ("text", s) or ("empty", "")
    kind = cell.getType().value
    if kind == "FORMULA":
        return "formula", cell.getFormula()
    if kind == "VALUE":
        return "value", cell.getValue()
    return ("text", cell.getString()) if kind == "TEXT" else ("empty", "")


def _restore(cell, kind: str, value) -> None:
    if kind == "formula":
        cell.setFormula(value)
    elif kind == "value":
        cell.setValue(value)
    elif kind == "text":
        cell.setString(value)
    else:  # the read-only document ignores clearContents: an empty text reads as blank
        cell.setFormula('=""')


def drop_charts(doc) -> None:
    """Remove every chart from a loaded document (never saved): see LoadedBook.open."""
    sheets = doc.Sheets
    for i in range(sheets.getCount()):
        charts = sheets.getByIndex(i).getCharts()
        for name in charts.getElementNames():
            charts.removeByName(name)


def doc_sheet(doc, name: str, book: str):
    """The sheet called ``name``, or EngineError naming the book."""
    sheets = doc.Sheets
    if not sheets.hasByName(name):
        raise EngineError(f"{book} has no sheet {quote_sheet(name)}")
    return sheets.getByName(name)


def read_block(sheet, b: Block) -> np.ndarray:
    """Read one Block with a single getDataArray call; '' (empty or error) -> None."""
    if not (b.nrows and b.ncols):
        return np.empty((b.nrows, b.ncols), dtype=object)
    rng = sheet.getCellRangeByPosition(b.col, b.row, b.col + b.ncols - 1, b.row + b.nrows - 1)
    out = np.array(rng.getDataArray(), dtype=object)  # a rectangle of float / str
    out[out == ""] = None
    return out


def formula_errors(doc) -> tuple[list[CellError], int]:
    """Find formula cells whose result is an error, on every sheet.

    Returns:
        (the first MAX_LISTED of them, the total count); each listed cell costs a UNO round trip.
    """
    error = uno_module().getConstantByName("com.sun.star.sheet.FormulaResult.ERROR")
    found: list[CellError] = []
    total = 0
    sheets = doc.Sheets
    for i in range(sheets.getCount()):
        sheet = sheets.getByIndex(i)
        name = sheet.getName()
        for a in sheet.queryFormulaCells(error).getRangeAddresses():
            total += (a.EndRow - a.StartRow + 1) * (a.EndColumn - a.StartColumn + 1)
            cells = ((r, c) for r in range(a.StartRow, a.EndRow + 1)
                     for c in range(a.StartColumn, a.EndColumn + 1))
            for r, c in itertools.islice(cells, max(0, MAX_LISTED - len(found))):
                code = sheet.getCellByPosition(c, r).getError()
                found.append(CellError(name, cell_name(r, c), ERROR_NAMES.get(code, f"Err:{code}")))
    return found, total
