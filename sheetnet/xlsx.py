"""A streaming .xlsx writer of our own: SpreadsheetML text straight into a zip, row by row.

Why not openpyxl: it builds a Python object per cell and formats each one on its own (about
100k cells/s here); weights are most of a model's cells and arrive as NumPy rows, so we format a
whole row with one join (see benchmarks/bench_writers.py for the figures).  It writes only what
sheetnet uses: numbers, inline strings, formulas, array formulas, cell styles from
templates/styles.json, column widths, frozen panes, drop-down lists, colour scales, defined names,
scatter and bar charts, hidden sheets and print settings (the parts besides the sheets' cells:
xlsx_parts.py; numbers as text: xlsx_numbers.py).
"""
from __future__ import annotations

import math
import queue
import threading
import zipfile
from collections import defaultdict
from functools import partial

import numpy as np

from .a1 import cell_name, col_letter, quote_sheet
from .errors import SheetnetError
from .xlsx_numbers import NineDigits, block_format, number_text
from .xlsx_parts import (CT, NS, NS_R, Styles, attr_text, chart_xml, drawing_xml, rels_xml,
                         xml_text)
from .xlsx_print import PageSetup
from .xlsx_theme import theme_xml

_COLS = [col_letter(c) for c in range(16_384)]  # every column's letters, for the hot loops


def _cell(row: int, col: int, value, style: int, fmt) -> str:
    ref = f"{_COLS[col]}{row + 1}"
    kind = type(value).__name__
    if kind == "Formula":
        return f'<c r="{ref}" s="{style}"><f>{xml_text(value.text)}</f></c>'
    if isinstance(value, str):
        return f'<c r="{ref}" s="{style}" t="inlineStr"><is><t xml:space="preserve">' \
               f'{xml_text(value)}</t></is></c>'
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return f'<c r="{ref}" s="{style}"/>'
    return f'<c r="{ref}" s="{style}"><v>{fmt([float(value)])[0]}</v></c>'


def _rows(spec, styles: Styles, fmt):
    """Yield each row's XML, in row order, merging scattered cells, text runs, number blocks and
    array formulas.  A cell's XML is made only when its row is written: a GPT-2-sized Output sheet
    has ~400k array-formula cells and 200k labels, whose XML held up front cost ~150 MB."""
    spans = sorted(_spans(spec, styles, fmt), key=lambda s: s[0])  # (first row, stop, cells of r)
    rows: set[int] = set()
    for first, stop, _ in spans:
        rows.update(range(first, stop))
    active, k = [], 0
    for r in sorted(rows):
        while k < len(spans) and spans[k][0] <= r:
            active.append(spans[k])
            k += 1
        active = [a for a in active if a[1] > r]
        row_items = [item for _, _, cells in active for item in cells(r)]
        row_items.sort(key=lambda t: t[0])
        _check_apart(spec.name, r, row_items)
        yield f'<row r="{r + 1}">{"".join(x for _, x, _ in row_items)}</row>'


def _check_apart(sheet: str, r: int, items) -> None:
    # two things on one cell: LibreOffice keeps one of them silently, Excel calls the file damaged
    for (c0, _, width), (c1, _, _) in zip(items, items[1:]):
        if c0 + width > c1:
            raise SheetnetError(f"internal error: two values for cell {cell_name(r, c1)} on "
                                f"sheet {sheet!r}; please report it")


def _spans(spec, styles: Styles, fmt):
    """(first row, stop row, fn(r) -> [(col, xml, columns it covers)]) per part of the sheet."""
    by_row: dict[int, list[int]] = defaultdict(list)
    for r, c in spec.cells:
        by_row[r].append(c)
    for r, cols in by_row.items():
        yield r, r + 1, partial(_scattered, spec.cells, cols, styles, fmt)
    for run in spec.runs:
        yield run.row, run.row + (len(run.texts) if run.down else 1), \
            partial(_run_cells, run, styles.index.get(run.kind, 0))
    for a in spec.arrays:
        yield a.row, a.row + a.nrows, partial(_array_cells, a, styles.index.get(a.kind, 0))
    for r0, c0, arr, kind in spec.blocks:
        style = styles.with_format(kind, _block_format(spec, styles, c0, arr, kind))
        yield r0, r0 + arr.shape[0], partial(
            _block_cells, r0, c0, arr, style, fmt, NineDigits(arr, fmt),
            _RowFormat(c0, arr.shape[1] if arr.ndim == 2 else 0, style, fmt))


def _block_format(spec, styles: Styles, c0: int, arr, kind: str) -> str | None:
    # a block of a kind marked "fit_decimals" (weights): fixed decimals that fit its columns
    if not styles.spec.get(kind, {}).get("fit_decimals") or arr.ndim != 2 or not arr.size:
        return None
    width = min(spec.widths.get(c, spec.default_width) for c in range(c0, c0 + arr.shape[1]))
    return block_format(arr, width)


def _scattered(cells, cols, styles, fmt, r):
    out = []
    for c in cols:
        value, kind = cells[(r, c)]
        out.append((c, _cell(r, c, value, styles.index.get(kind, 0), fmt), 1))
    return out


def _run_cells(run, style, r):
    if run.down:
        text = run.texts[r - run.row]
        return [(run.col, _cell(r, run.col, text, style, None), 1)] if text else []
    return [(run.col + j, _cell(r, run.col + j, text, style, None), 1)
            for j, text in enumerate(run.texts) if text]


def _block_cells(r0, c0, arr, style, fmt, nine, row_format, r):
    return [(c0, row_format(r, arr[r - r0], nine(r - r0)), arr.shape[1])]


def _array_cells(a, style, r):
    # the top-left cell carries the formula and the range it fills; the others are empty cells
    # that LibreOffice and Excel fill in
    ref = cell_name(a.row, a.col)
    if (a.nrows, a.ncols) != (1, 1):
        ref += ":" + cell_name(a.row + a.nrows - 1, a.col + a.ncols - 1)
    out = []
    for c in range(a.col, a.col + a.ncols):
        top_left = (r, c) == (a.row, a.col)
        body = f'<f t="array" ref="{ref}">{xml_text(a.text)}</f>' if top_left else ""
        out.append((c, f'<c r="{_COLS[c]}{r + 1}" s="{style}">{body}</c>', 1))
    return out


class _RowFormat:
    """A block's rows as XML, one join per row, every cell with its reference ("r" is optional in
    the standard, but IronCalc refuses a cell without it and Gnumeric silently drops the cell).

    The cells' text is made once per block, with "\\x00" where the row number goes and a printf
    pattern where the value goes: a row is then one ``replace`` and one ``%``, both in C.
    """

    def __init__(self, c0: int, ncols: int, style: int, fmt):
        self.fmt = fmt
        self.cells = [f'<c r="{_COLS[c]}\x00" s="{style}"><v>' for c in range(c0, c0 + ncols)]
        self.as_text = "%s</v></c>".join(self.cells) + "%s</v></c>"  # numbers already text
        self.parts8 = [cell + "%.8g</v></c>" for cell in self.cells]
        self.eight = "".join(self.parts8)

    def __call__(self, r: int, values: np.ndarray, nine=None) -> str:
        # nine: float32 text of a float32 row, True where a value needs 9 digits (_needs_nine)
        if not self.cells:
            return ""
        if nine is None:
            pattern, args = self.as_text, self.fmt(values.tolist())
        else:
            pattern, args = self.eight, values.tolist()
            if nine.any():  # ~1.5% of weights: patch those cells' patterns only
                parts = self.parts8.copy()
                for k in np.flatnonzero(nine):
                    parts[k] = self.cells[k] + "%.9g</v></c>"
                pattern = "".join(parts)
        return pattern.replace("\x00", str(r + 1)) % tuple(args)


def _sheet_head(spec, tab_selected: bool, fit: bool = True) -> str:
    view = ""
    if spec.freeze and spec.freeze != (0, 0):
        r, c = spec.freeze
        split = (f'xSplit="{c}" ' if c else "") + (f'ySplit="{r}" ' if r else "")
        pane = "bottomRight" if r and c else ("bottomLeft" if r else "topRight")
        view = (f'<pane {split}topLeftCell="{cell_name(r, c)}" activePane="{pane}" '
                f'state="frozen"/><selection pane="{pane}"/>')
    widths = "".join(f'<col min="{c + 1}" max="{c + 1}" width="{w}" customWidth="1"/>'
                     for c, w in sorted(spec.widths.items()))
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet {NS} {NS_R}>'
            f'<sheetPr><pageSetUpPr fitToPage="{int(fit)}"/></sheetPr>' + _dimension(spec) +
            f'<sheetViews><sheetView workbookViewId="0"{" tabSelected=" + chr(34) + "1" + chr(34) if tab_selected else ""}>'
            f'{view}</sheetView></sheetViews>'
            f'<sheetFormatPr defaultRowHeight="15" defaultColWidth="{spec.default_width}"/>'
            + (f"<cols>{widths}</cols>" if widths else "") + "<sheetData>")


def _dimension(spec) -> str:
    # the used range up front: without it openpyxl's read-only mode parses every sheet to find
    # it (read_manifest of a GPT-2-small book: minutes instead of a second)
    return f'<dimension ref="A1:{cell_name(*_last_cell(spec))}"/>'


def _last_cell(spec) -> tuple[int, int]:
    last_row = last_col = 0
    for r, c in spec.cells:
        last_row, last_col = max(last_row, r), max(last_col, c)
    for run in spec.runs:
        n = len(run.texts) - 1
        last_row = max(last_row, run.row + (n if run.down else 0))
        last_col = max(last_col, run.col + (0 if run.down else n))
    for r0, c0, arr, _ in spec.blocks:
        if arr.size:
            last_row = max(last_row, r0 + arr.shape[0] - 1)
            last_col = max(last_col, c0 + arr.shape[1] - 1)
    for a in spec.arrays:
        last_row = max(last_row, a.row + a.nrows - 1)
        last_col = max(last_col, a.col + a.ncols - 1)
    return last_row, last_col


def _sheet_tail(spec, has_drawing: bool, page: PageSetup | None = None) -> str:
    parts = ["</sheetData>"]
    for k, (ref, low, mid, high) in enumerate(spec.scales):
        parts.append(f'<conditionalFormatting sqref="{ref}"><cfRule type="colorScale" '
                     f'priority="{k + 1}"><colorScale>'
                     + "".join(f'<cfvo type="{t}"{v}/>' for t, v in
                               (("min", ""), ("percentile", ' val="50"'), ("max", "")))
                     + f'<color rgb="FF{low}"/><color rgb="FF{mid}"/><color rgb="FF{high}"/>'
                     '</colorScale></cfRule></conditionalFormatting>')
    for k, ref in enumerate(spec.shades, start=len(spec.scales) + 1):  # a cell of 1: filled
        parts.append(f'<conditionalFormatting sqref="{ref}"><cfRule type="cellIs" dxfId="0" '
                     f'priority="{k}" operator="equal"><formula>1</formula></cfRule>'
                     '</conditionalFormatting>')
    if spec.rules:
        parts.append(f'<dataValidations count="{len(spec.rules)}">')
        for rule in spec.rules:
            kind = f'type="{rule.kind}"' + (f' operator="{rule.operator}"' if rule.operator else "")
            second = ("" if rule.formula2 is None else
                      f'<formula2>{xml_text(rule.formula2)}</formula2>')
            parts.append(f'<dataValidation {kind} allowBlank="0" showErrorMessage="1" '
                         f'error="{attr_text(rule.error)}" sqref="{cell_name(rule.row, rule.col)}">'
                         f'<formula1>{xml_text(rule.formula)}</formula1>{second}</dataValidation>')
        parts.append("</dataValidations>")
    if spec.links:  # internal links (the Guide's Contents): a place in the book, no URL
        parts.append("<hyperlinks>" + "".join(
            f'<hyperlink ref="{cell_name(r, c)}" location="{attr_text(to)}"/>'
            for r, c, to in spec.links) + "</hyperlinks>")
    parts.append((page or PageSetup(spec, _last_cell(spec)[1], _last_cell(spec)[0])).xml())
    if has_drawing:
        parts.append('<drawing r:id="rId1"/>')
    parts.append("</worksheet>")
    return "".join(parts)


def write_xlsx(book, path, styles: dict, precision: str = "float64", compresslevel: int = 1,
               progress=None) -> None:
    """Write a BookSpec (see spec.py) as .xlsx at ``path``.

    Args:
        book: the sheets, plus hidden sheets and defined names.
        path: destination (the caller makes it atomic).
        styles: templates/styles.json as a dict.
        precision: "float64" (shortest exact text) or "float32" (the shortest text, 8 or 9
            significant digits, that reads back as the same float32).
        compresslevel: zlib level; 1 is several times faster than 6 for ~15% more bytes.
        progress: optional callable(cells_done) called after each sheet.
    """
    st, fmt = Styles(styles), number_text(precision)
    overrides, sheets_xml, wb_rels, names = [], [], [], []
    n_charts = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as zf:
        for k, spec in enumerate(book.sheets, start=1):
            last_row, last_col = _last_cell(spec)
            page = PageSetup(spec, last_col, last_row)
            titles = page.print_titles(quote_sheet(spec.name))
            if titles:  # rows and columns repeated on every printed page (the frozen ones)
                names.append(f'<definedName name="_xlnm.Print_Titles" localSheetId="{k - 1}">'
                             f'{xml_text(titles)}</definedName>')
            area = page.print_area(quote_sheet(spec.name))
            if area:  # a working sheet: its head only (LibreOffice, Excel, Gnumeric read it)
                names.append(f'<definedName name="_xlnm.Print_Area" localSheetId="{k - 1}">'
                             f'{xml_text(area)}</definedName>')
            with zf.open(f"xl/worksheets/sheet{k}.xml", "w", force_zip64=True) as f:
                f.write(_sheet_head(spec, k == 1, page.fit).encode())
                _write_behind(f, _chunks(_rows(spec, st, fmt)))
                f.write(_sheet_tail(spec, bool(spec.charts), page).encode())
            if spec.charts:
                targets = []
                for chart in spec.charts:
                    n_charts += 1
                    zf.writestr(f"xl/charts/chart{n_charts}.xml", chart_xml(chart))
                    overrides.append((f"/xl/charts/chart{n_charts}.xml",
                                      f"{CT}.drawingml.chart+xml"))
                    targets.append(("chart", f"../charts/chart{n_charts}.xml"))
                zf.writestr(f"xl/drawings/drawing{k}.xml", drawing_xml(spec.charts))
                zf.writestr(f"xl/drawings/_rels/drawing{k}.xml.rels", rels_xml(targets))
                zf.writestr(f"xl/worksheets/_rels/sheet{k}.xml.rels",
                            rels_xml([("drawing", f"../drawings/drawing{k}.xml")]))
                overrides.append((f"/xl/drawings/drawing{k}.xml", f"{CT}.drawing+xml"))
            overrides.append((f"/xl/worksheets/sheet{k}.xml",
                              f"{CT}.spreadsheetml.worksheet+xml"))
            state = f' state="{spec.state}"' if spec.state != "visible" else ""
            sheets_xml.append(f'<sheet name="{attr_text(spec.name)}" sheetId="{k}"{state} '
                              f'r:id="rId{k}"/>')
            wb_rels.append(("worksheet", f"worksheets/sheet{k}.xml"))
            if progress:
                progress(spec)
        for name, ref in book.names.items():
            names.append(f'<definedName name="{attr_text(name)}">{xml_text(ref)}</definedName>')
        wb_rels += [("styles", "styles.xml"), ("theme", "theme/theme1.xml")]
        shaded = any(s.shades for s in book.sheets)
        zf.writestr("xl/styles.xml", st.xml(styles.get("shade_on", "FFD966") if shaded else None))
        zf.writestr("xl/theme/theme1.xml", theme_xml())
        zf.writestr("xl/_rels/workbook.xml.rels", rels_xml(wb_rels))
        zf.writestr("xl/workbook.xml",
                    f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<workbook {NS} '
                    f'{NS_R}><bookViews><workbookView activeTab="0"/></bookViews>'
                    f'<sheets>{"".join(sheets_xml)}</sheets>'
                    + (f"<definedNames>{''.join(names)}</definedNames>" if names else "")
                    + '<calcPr calcId="191029" fullCalcOnLoad="1"/></workbook>')
        zf.writestr("_rels/.rels", rels_xml([("officeDocument", "xl/workbook.xml")]))
        overrides += [("/xl/workbook.xml", f"{CT}.spreadsheetml.sheet.main+xml"),
                      ("/xl/styles.xml", f"{CT}.spreadsheetml.styles+xml"),
                      ("/xl/theme/theme1.xml", f"{CT}.theme+xml")]
        zf.writestr("[Content_Types].xml",
                    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types '
                    'xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-'
                    'package.relationships+xml"/><Default Extension="xml" '
                    'ContentType="application/xml"/>'
                    + "".join(f'<Override PartName="{p}" ContentType="{t}"/>'
                              for p, t in overrides) + "</Types>")


def _write_behind(f, parts) -> None:
    # f.write's zlib and crc work releases the GIL: a second thread compresses one chunk while
    # this one formats the next (~1/3 off a big sheet's time on two cores)
    chunks: queue.Queue = queue.Queue(maxsize=4)
    failed: list[BaseException] = []

    def drain():
        while (chunk := chunks.get()) is not None:
            if not failed:
                try:
                    f.write(chunk)
                except BaseException as exc:  # handed to the caller below
                    failed.append(exc)

    writer = threading.Thread(target=drain, daemon=True)
    writer.start()
    try:
        for part in parts:
            if failed:
                break
            chunks.put(part)
    finally:
        chunks.put(None)
        writer.join()
    if failed:
        raise failed[0]


def _chunks(texts, size: int = 1 << 20):
    # ~1 MB of rows per chunk: bigger ones gain no speed and, freed by the other thread, leave
    # malloc holding hundreds of MB on a GPT-2-sized sheet
    batch, n = [], 0
    for text in texts:
        batch.append(text)
        n += len(text)
        if n >= size:
            yield "".join(batch).encode()
            batch, n = [], 0
    if batch:
        yield "".join(batch).encode()
