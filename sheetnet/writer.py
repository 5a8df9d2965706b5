"""The workbook as data (BookSpec: sheets of cells, blocks, formulas, charts) and its writing.

Knows cells, styles and charts; nothing about the IR.  xlsx.py streams it to SpreadsheetML:
numbers with the shortest exact text (every weight reads back bit for bit), strings always as
text cells (even "=1+1").  The file is written to a temporary name beside the target and
renamed, so a failed export leaves nothing behind.  Reading back: manifest.py.
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .files import atomic_path
from .manifest import MANIFEST_SHEET
from .xlsx import write_xlsx


def _templates_dir() -> Path:
    # a source checkout or editable install has templates/ beside the package; a wheel install
    # puts them under <prefix>/share/sheetnet/templates (pyproject's data-files)
    beside = Path(__file__).resolve().parent.parent / "templates"
    return beside if beside.is_dir() else Path(sys.prefix) / "share" / "sheetnet" / "templates"


TEMPLATES = _templates_dir()
_CHUNK = 30_000  # characters of manifest JSON per cell (a cell holds at most 32,767)


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
    blanks left empty.  ``texts`` is read as each row is written, never copied cell by cell."""
    row: int
    col: int
    texts: Sequence[str]
    down: bool
    kind: str = "label"


@dataclass(frozen=True)
class Rule:
    """Data validation on one cell: "list" offers the cells of ``formula`` (an absolute range)
    as a drop-down; "above" takes only numbers greater than ``formula``.  ``error`` is what the
    spreadsheet says to a typed value that breaks the rule."""
    row: int
    col: int
    kind: str
    formula: str
    error: str


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
    state: str = "visible"             # or "hidden", "veryHidden"

    def put(self, row: int, col: int, value, kind: str = "text") -> None:
        self.cells[(row, col)] = (value, kind)


@dataclass
class BookSpec:
    sheets: list[SheetSpec]
    manifest: dict = field(default_factory=dict)  # Manifest.to_json(), for the very hidden sheet
    names: dict[str, str] = field(default_factory=dict)  # defined name -> "'Sheet'!$A$1:$B$2"


def load_styles() -> dict:
    return json.loads((TEMPLATES / "styles.json").read_text())


def write_book(book: BookSpec, path: str | os.PathLike, force: bool = False,
               precision: str = "float64", progress=None) -> None:
    """Write ``book`` to ``path`` atomically, with the manifest in a very hidden sheet.

    Args:
        book: the sheets.
        path: the .xlsx to write.
        force: overwrite an existing file.
        precision: "float64" writes every number's shortest exact text; "float32" the
            shortest text that reads back as the same float32 (8 or 9 significant digits).
        progress: optional callable(sheet_spec) after each sheet is written.
    Raises:
        SheetnetError: the folder is missing, or the file exists and ``force`` is False.
    """
    with atomic_path(path, force=force) as tmp:
        write_xlsx(BookSpec(book.sheets + [_manifest_sheet(book.manifest)], book.manifest,
                            book.names), tmp, load_styles(), precision=precision,
                   progress=progress)


def _manifest_sheet(manifest: dict) -> SheetSpec:
    # what verify/run/import need to find every tensor again, kept in a sheet users don't see
    spec = SheetSpec(MANIFEST_SHEET, state="veryHidden")
    text = json.dumps(manifest, separators=(",", ":"))
    for k in range(0, max(len(text), 1), _CHUNK):
        spec.put(k // _CHUNK, 0, text[k:k + _CHUNK])
    return spec
