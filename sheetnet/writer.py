"""Write a BookSpec to .xlsx with openpyxl.  Knows cells, styles and charts; nothing about the IR.

Numbers are written with the shortest exact text (``repr``), not openpyxl's "%.16g", so every
weight reads back bit for bit.  Strings are always text cells, even "=1+1".  The file is written
to a temporary name beside the target and renamed, so a failed export leaves nothing behind.
"""
from __future__ import annotations

import json
import math
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import openpyxl
import openpyxl.cell._writer as _cell_writer
from openpyxl.chart import Reference, ScatterChart, Series
from openpyxl.styles import Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.formula import ArrayFormula

from .errors import SheetnetError
from .files import atomic_path


def _templates_dir() -> Path:
    # a source checkout or editable install has templates/ beside the package; a wheel install
    # puts them under <prefix>/share/sheetnet/templates (pyproject's data-files)
    beside = Path(__file__).resolve().parent.parent / "templates"
    return beside if beside.is_dir() else Path(sys.prefix) / "share" / "sheetnet" / "templates"


TEMPLATES = _templates_dir()
MANIFEST_SHEET = "_sheetnet"
_CHUNK = 30_000  # characters of manifest JSON per cell (a cell holds at most 32,767)


@dataclass(frozen=True)
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
class ChartSpec:
    title: str
    x: tuple[int, int, int]            # (col, first_row, last_row), 0-based, on the chart's sheet
    series: list[tuple[str, int, int, int]]  # (name, col, first_row, last_row)
    anchor: tuple[int, int]            # (row, col) of the chart's top-left corner


@dataclass
class SheetSpec:
    name: str
    cells: dict[tuple[int, int], tuple[object, str]] = field(default_factory=dict)
    blocks: list[tuple[int, int, np.ndarray, str]] = field(default_factory=list)
    arrays: list[ArraySpec] = field(default_factory=list)
    charts: list[ChartSpec] = field(default_factory=list)
    lists: list[tuple[int, int, str]] = field(default_factory=list)  # (row, col, "=range") drop-downs
    freeze: tuple[int, int] | None = None
    widths: dict[int, float] = field(default_factory=dict)

    def put(self, row: int, col: int, value, kind: str = "text") -> None:
        self.cells[(row, col)] = (value, kind)


@dataclass
class BookSpec:
    sheets: list[SheetSpec]
    manifest: dict


def load_styles() -> dict:
    return json.loads((TEMPLATES / "styles.json").read_text())


@contextmanager
def _exact_floats():
    # openpyxl formats floats with "%.16g", which loses the last bit of ~40% of float64 values
    original = _cell_writer.safe_string

    def exact(value):
        if isinstance(value, float) and math.isfinite(value):
            return repr(value)
        return original(value)
    _cell_writer.safe_string = exact
    try:
        yield
    finally:
        _cell_writer.safe_string = original


class _Styler:
    def __init__(self, styles: dict):
        self.kinds = {}
        for kind, s in styles["kinds"].items():
            side = Side(style="thin", color=s["border"]) if "border" in s else None
            self.kinds[kind] = dict(
                font=Font(bold=s.get("bold", False), italic=s.get("italic", False),
                          color=s.get("color"), size=s.get("size")),
                fill=PatternFill("solid", fgColor=s["fill"]) if "fill" in s else None,
                border=Border(left=side, right=side, top=side, bottom=side) if side else None,
                number_format=s.get("number_format"))

    def apply(self, cell, kind: str) -> None:
        for attr, value in self.kinds.get(kind, {}).items():
            if value is not None:
                setattr(cell, attr, value)


def _write_sheet(ws, spec: SheetSpec, styler: _Styler, styles: dict) -> None:
    for r, c, arr, kind in spec.blocks:
        for i, row in enumerate(np.asarray(arr, dtype=np.float64)):
            for j, v in enumerate(row):
                styler.apply(ws.cell(r + i + 1, c + j + 1, float(v)), kind)
    for (r, c), (value, kind) in spec.cells.items():
        cell = ws.cell(r + 1, c + 1)
        if isinstance(value, Formula):
            cell.value = "=" + value.text
        elif isinstance(value, str):
            cell.value = value
            cell.data_type = "s"  # text, whatever it looks like: "=1+1" is a word, not a formula
        elif value is not None:
            cell.value = float(value)
        styler.apply(cell, kind)
    for a in spec.arrays:
        ref = f"{_a1(a.row, a.col)}:{_a1(a.row + a.nrows - 1, a.col + a.ncols - 1)}"
        ws.cell(a.row + 1, a.col + 1).value = ArrayFormula(ref, "=" + a.text)
        for i in range(a.nrows):
            for j in range(a.ncols):
                styler.apply(ws.cell(a.row + i + 1, a.col + j + 1), a.kind)
    for r, c, source in spec.lists:
        dv = DataValidation(type="list", formula1=source, allow_blank=False)
        dv.error, dv.errorTitle = "Pick a word from the vocabulary", "Not in the vocabulary"
        ws.add_data_validation(dv)
        dv.add(_a1(r, c))
    for chart in spec.charts:
        ws.add_chart(_scatter(ws, chart), _a1(*chart.anchor))
    width = styles.get("column_width", 11)
    for col in range(1, (ws.max_column or 1) + 1):
        ws.column_dimensions[get_column_letter(col)].width = spec.widths.get(col - 1, width)
    if spec.freeze:
        ws.freeze_panes = _a1(*spec.freeze)
    # print (and render to PDF) each sheet one page wide, landscape
    ws.page_setup.orientation = "landscape"
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0


def _a1(row: int, col: int) -> str:
    return f"{get_column_letter(col + 1)}{row + 1}"


def _scatter(ws, spec: ChartSpec) -> ScatterChart:
    chart = ScatterChart()
    chart.title, chart.style, chart.height, chart.width = spec.title, 13, 9, 16
    chart.x_axis.title = "x"
    xs = Reference(ws, min_col=spec.x[0] + 1, min_row=spec.x[1] + 1, max_row=spec.x[2] + 1)
    for name, col, r0, r1 in spec.series:
        ys = Reference(ws, min_col=col + 1, min_row=r0 + 1, max_row=r1 + 1)
        s = Series(ys, xs, title=name)
        s.marker.symbol = "none"
        chart.series.append(s)
    return chart


def write_book(book: BookSpec, path: str | os.PathLike, force: bool = False) -> None:
    """Write ``book`` to ``path`` atomically.

    Raises:
        SheetnetError: the folder is missing, or the file exists and ``force`` is False.
    """
    styles = load_styles()
    styler = _Styler(styles)
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for spec in book.sheets:
        _write_sheet(wb.create_sheet(spec.name), spec, styler, styles)
    _write_manifest(wb, book.manifest)
    with atomic_path(path, force=force) as tmp, _exact_floats():
        wb.save(tmp)


def _write_manifest(wb, manifest: dict) -> None:
    # what verify/run/import need to find every tensor again, kept in a sheet users don't see
    ws = wb.create_sheet(MANIFEST_SHEET)
    ws.sheet_state = "veryHidden"
    text = json.dumps(manifest, separators=(",", ":"))
    for k in range(0, max(len(text), 1), _CHUNK):
        cell = ws.cell(k // _CHUNK + 1, 1, text[k:k + _CHUNK])
        cell.data_type = "s"


def read_manifest(path: str | os.PathLike) -> dict:
    """The manifest sheetnet wrote into a workbook.

    Raises:
        SheetnetError: not an .xlsx, or not written by sheetnet.
    """
    path = Path(path)
    if not path.is_file():
        raise SheetnetError(f"workbook {path} does not exist")
    try:
        wb = openpyxl.load_workbook(path, read_only=True)
    except Exception as exc:
        raise SheetnetError(f"{path} is not a readable .xlsx workbook ({type(exc).__name__})") from None
    try:
        if MANIFEST_SHEET not in wb.sheetnames:
            raise SheetnetError(f"{path} was not written by sheetnet (no {MANIFEST_SHEET} sheet)")
        chunks = [row[0] for row in wb[MANIFEST_SHEET].iter_rows(values_only=True) if row[0]]
    finally:
        wb.close()
    try:
        return json.loads("".join(chunks))
    except ValueError:
        raise SheetnetError(f"{path}: the sheetnet manifest is damaged") from None

