"""The workbook as data: sheets of cells, number blocks, formulas, array formulas, text runs,
charts, validation rules and defined names (BookSpec), and where the templates live.

emit/ builds a BookSpec from the laid-out graph; writer.py writes it.  It knows cells, styles and
charts, nothing about the IR, and sits before both so that neither imports the other.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def _templates_dir() -> Path:
    # a source checkout or editable install has templates/ beside the package; a wheel install
    # puts them under <prefix>/share/sheetnet/templates (pyproject's data-files)
    beside = Path(__file__).resolve().parent.parent / "templates"
    return beside if beside.is_dir() else Path(sys.prefix) / "share" / "sheetnet" / "templates"


TEMPLATES = _templates_dir()


@dataclass(frozen=True, slots=True)  # slots: a GPT-2-sized book holds ~200k of them
class Formula:
    text: str  # without the leading "="


@dataclass(frozen=True)
class ArraySpec:
    """One array formula filling rows x cols from (row, col)."""
    row: int
    col: int
    nrows: int
    ncols: int
    text: str
    kind: str = "formula"


@dataclass(frozen=True)
class TextRun:
    """Text cells from (row, col), along the row or down the column: ``texts[k]`` at step k,
    blanks left empty (a Formula there: a label that reads a cell, see ir.CellLabels).
    ``texts`` is read as each row is written, never copied cell by cell."""
    row: int
    col: int
    texts: Sequence[str]
    down: bool
    kind: str = "label"


@dataclass(frozen=True)
class Rule:
    """Data validation on one cell: "list" offers the cells of ``formula`` (an absolute range)
    as a drop-down; "decimal" and "whole" take only numbers (whole ones) that ``operator``
    (greaterThan, greaterThanOrEqual, lessThanOrEqual, between) admits against ``formula`` (and
    ``formula2``, between's high end).  ``error`` is what the spreadsheet says to a typed value
    that breaks the rule."""
    row: int
    col: int
    kind: str
    formula: str
    error: str
    operator: str | None = None
    formula2: str | None = None


@dataclass(frozen=True)
class ChartSpec:
    title: str
    x: str                             # x values (scatter) or labels (bar): 'Sheet'!$A$1:$A$9
    series: list[tuple[str, str]]      # (name, range) of each series, ranges as for x
    anchor: tuple[int, int]            # (row, col) of the chart's top-left corner
    kind: str = "scatter"              # "scatter" (lines over numeric x) or "bar" (x = labels)
    x_title: str = "x"


@dataclass
class SheetSpec:
    name: str
    cells: dict[tuple[int, int], tuple[object, str]] = field(default_factory=dict)
    blocks: list[tuple[int, int, np.ndarray, str]] = field(default_factory=list)
    arrays: list[ArraySpec] = field(default_factory=list)
    runs: list[TextRun] = field(default_factory=list)
    charts: list[ChartSpec] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    freeze: tuple[int, int] | None = None
    widths: dict[int, float] = field(default_factory=dict)
    default_width: float = 11
    scales: list[tuple[str, str, str, str]] = field(default_factory=list)  # (A1 range, low, mid, high colours)
    shades: list[str] = field(default_factory=list)  # A1 ranges whose cells equal to 1 get a fill
    state: str = "visible"             # or "hidden", "veryHidden"
    links: list[tuple[int, int, str]] = field(default_factory=list)  # (row, col, "'Sheet'!A1"): a cell linking there
    print_rows: int | None = None      # a working sheet prints rows 1..print_rows only

    def put(self, row: int, col: int, value, kind: str = "text") -> None:
        self.cells[(row, col)] = (value, kind)


@dataclass
class BookSpec:
    sheets: list[SheetSpec]
    manifest: dict = field(default_factory=dict)  # Manifest.to_json(), for the very hidden sheet
    names: dict[str, str] = field(default_factory=dict)  # defined name -> "'Sheet'!$A$1:$B$2"


def load_styles() -> dict:
    return json.loads((TEMPLATES / "styles.json").read_text())
