"""How a sheet prints: orientation, scaling, repeated title rows and columns, and page breaks
that keep each chart on one page.  Estimated from the sheet's column widths and the charts'
anchors (the writer knows both); LibreOffice, Excel and Gnumeric paginate from these settings.

Page arithmetic, in points, for A4 (the smaller of A4 and Letter in each direction) with the
writer's half-inch margins: 523 x 770 printable.
"""
from __future__ import annotations

import math

from .a1 import col_letter

PRINTABLE = (523.0, 770.0)    # (short side, long side) in points, inside the margins
SCALE_FLOOR = 55              # percent: below this, text is too small to read on paper
ROW_POINTS = 15.0             # the writer's default row height
CHART_ROWS = 18               # a chart's anchor spans this many rows (xlsx_parts.drawing_xml)
MARGINS = ('<pageMargins left="0.5" right="0.5" top="0.5" bottom="0.5" header="0.3" '
           'footer="0.3"/>')


def column_points(width_chars: float) -> float:
    # a column of w characters is w*7+5 pixels in Calibri 11 at 96 dpi; 0.75 point per pixel
    return (width_chars * 7 + 5) * 0.75


def sheet_points(spec, last_col: int) -> float:
    """The printed width of columns A..last_col, in points at 100%."""
    return sum(column_points(spec.widths.get(c, spec.default_width)) for c in range(last_col + 1))


class PageSetup:
    """The print settings of one sheet.

    Args:
        spec: the SheetSpec (widths, freeze, charts).
        last_col: the last used column (0-based).
    """

    def __init__(self, spec, last_col: int):
        # a working sheet prints only its head (SheetSpec.print_rows): its first rows say what
        # it is; the rest is working a reader follows on screen (the sqrt net's Breakpoints
        # printed 69 pages)
        self.rows = getattr(spec, "print_rows", None)
        self.last_col = last_col
        width = sheet_points(spec, last_col)
        self.landscape = width > PRINTABLE[0]
        across = PRINTABLE[1] if self.landscape else PRINTABLE[0]
        fit = min(100.0, 100.0 * across / width) if width else 100.0
        # fit to one page wide unless that would print below the floor: then print at the
        # floor, several pages wide (a GPT sheet's 100 columns at 15% is unreadable)
        self.fit = fit >= SCALE_FLOOR
        self.scale = fit if self.fit else float(SCALE_FLOOR)
        self.title_rows, self.title_cols = spec.freeze or (0, 0)
        down = PRINTABLE[0] if self.landscape else PRINTABLE[1]
        self.breaks = _chart_breaks([c.anchor[0] for c in spec.charts], self.title_rows,
                                    down / (ROW_POINTS * self.scale / 100))

    def print_titles(self, sheet_ref: str) -> str | None:
        """The _xlnm.Print_Titles text ('Sheet'!$A:$A,'Sheet'!$1:$1), None without titles."""
        parts = []
        if self.title_cols:
            parts.append(f"{sheet_ref}!$A:${col_letter(self.title_cols - 1)}")
        if self.title_rows:
            parts.append(f"{sheet_ref}!$1:${self.title_rows}")
        return ",".join(parts) or None

    def print_area(self, sheet_ref: str) -> str | None:
        """The _xlnm.Print_Area text ('Sheet'!$A$1:$H$9) of a sheet that prints its head only."""
        if not self.rows:
            return None
        return f"{sheet_ref}!$A$1:${col_letter(self.last_col)}${self.rows}"

    def xml(self) -> str:
        """pageMargins, pageSetup and rowBreaks, in the order CT_Worksheet wants them."""
        orientation = "landscape" if self.landscape else "portrait"
        sizing = ('fitToWidth="1" fitToHeight="0"' if self.fit
                  else f'scale="{int(self.scale)}"')
        out = MARGINS + f'<pageSetup paperSize="9" orientation="{orientation}" {sizing}/>'
        if self.breaks:
            brks = "".join(f'<brk id="{r}" max="16383" man="1"/>' for r in self.breaks)
            out += (f'<rowBreaks count="{len(self.breaks)}" manualBreakCount='
                    f'"{len(self.breaks)}">{brks}</rowBreaks>')
        return out


def _chart_breaks(anchors: list[int], title_rows: int, rows_per_page: float) -> list[int]:
    # walk the pages top to bottom; a chart that would cross a page's end starts a new page
    # (brk id r: the break falls above 0-based row r).  Repeated title rows take room on
    # every page after the first.
    body = max(1, math.floor(rows_per_page) - title_rows)
    first = max(1, math.floor(rows_per_page))
    breaks, start, end = [], 0, first
    for top in sorted(anchors):
        while top >= end:
            start, end = end, end + body
        if top + CHART_ROWS > end and top > start:
            breaks.append(top)
            start, end = top, top + body
    return breaks
