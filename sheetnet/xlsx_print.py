"""How a sheet prints: orientation, scaling, repeated title rows and columns, and page breaks
that keep each chart on one page.  Estimated from the sheet's column widths, its blocks and the
charts' anchors (the writer knows them all); LibreOffice, Excel and Gnumeric paginate from these
settings.

A sheet one page wide at SCALE_FLOOR or more prints fit to that width.  A wider one (a GPT's
blocks side by side) prints at the scale and orientation, BLOCK_FLOOR or more, that need the
fewest pages when every page holds whole blocks: the rows are cut between blocks (at an empty
row), and each band of rows is cut between the blocks side by side in it (a block wider than a
page is cut in equal parts); the pieces are the ranges of its print area, each printed on a page
of its own with the title rows and columns repeated (LibreOffice and Excel start a page per range).

Page arithmetic, in points, for A4 (the smaller of A4 and Letter in each direction) with the
writer's half-inch margins: 523 x 770 printable.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from .a1 import col_letter

PRINTABLE = (523.0, 770.0)    # (short side, long side) in points, inside the margins
SCALE_FLOOR = 55              # percent: a sheet one page wide at this or more prints so
BLOCK_FLOOR = 45              # a wider one prints whole blocks down to this (5 pt type; its
                              # titles and labels print beside the numbers, repeated per page)
SCALES = range(BLOCK_FLOOR, 101, 5)  # the scales a wide sheet tries
ROW_POINTS = 15.0             # the writer's default row height
CHART_ROWS = 18               # a chart's anchor spans this many rows (xlsx_parts.drawing_xml)
CHART_COLS = 8                # ... and this many columns
ROOM = 0.97                   # of a page a range may fill: the widths are estimates
MAX_AREA_CHARS = 8000         # a print area's text above this (Excel's limit is 8,192): no ranges
MAX_PAGED_COLUMNS = 1000      # a sheet wider than this prints at the floor, cut where it falls
MAX_PAGED_ROWS = 5000         # ... or taller: its ranges would pass MAX_AREA_CHARS anyway (about
#                               260 of them), and finding them is O(pages x boxes): a GPT-2
#                               Sampling sheet (50,257 ids down the rows) took minutes
MARGINS = ('<pageMargins left="0.5" right="0.5" top="0.5" bottom="0.5" header="0.3" '
           'footer="0.3"/>')


def column_points(width_chars: float) -> float:
    # LibreOffice prints a column of w characters 7*w points wide (measured on its PDFs: 77 pt
    # for 11); Excel's (7*w+5)*0.75 is narrower, so a page that fits here fits there too
    return width_chars * 7.0


def sheet_points(spec, last_col: int) -> float:
    """The printed width of columns A..last_col, in points at 100%."""
    return sum(column_points(spec.widths.get(c, spec.default_width)) for c in range(last_col + 1))


class PageSetup:
    """The print settings of one sheet.

    Args:
        spec: the SheetSpec (widths, freeze, charts).
        last_col: the last used column (0-based).
    """

    def __init__(self, spec, last_col: int, last_row: int = 0):
        # a working sheet prints only its head (SheetSpec.print_rows): its first rows say what
        # it is; the rest is working a reader follows on screen (the sqrt net's Breakpoints
        # printed 69 pages)
        self.rows = getattr(spec, "print_rows", None)
        self.last_col = last_col
        self.title_rows, self.title_cols = spec.freeze or (0, 0)
        self.ranges: list[tuple[int, int, int, int]] = []  # (row, col, last row, last col)
        width = sheet_points(spec, last_col)
        anchors = [c.anchor[0] for c in spec.charts]
        last_row = max([last_row] + [a + CHART_ROWS - 1 for a in anchors])  # a chart's rows too
        # fit to one page wide, in the orientation of fewer pages (then the larger scale),
        # unless that prints below the floor: then whole blocks per page (a GPT sheet's 100
        # columns at 15% is unreadable)
        options = []
        for landscape in (False, True):
            across, down = (PRINTABLE[1], PRINTABLE[0]) if landscape else PRINTABLE
            scale = min(100.0, 100.0 * across / width) if width else 100.0
            breaks = _chart_breaks(anchors, self.title_rows, down / (ROW_POINTS * scale / 100))
            pages = _fit_pages(breaks, last_row, self.title_rows,
                               down / (ROW_POINTS * scale / 100))
            options.append(((pages, -scale), landscape, scale, breaks))
        _, self.landscape, self.scale, self.breaks = min(options)
        self.fit = self.scale >= SCALE_FLOOR or bool(self.rows)
        if not self.fit and (last_col > MAX_PAGED_COLUMNS or last_row > MAX_PAGED_ROWS):
            # a GPT-2 logits row, or its 50,257 ids down a sheet: at the floor
            self.scale, self.breaks = float(SCALE_FLOOR), []
        elif not self.fit:
            self.landscape, self.scale, self.ranges = _pages(spec, self.title_rows,
                                                             self.title_cols)
            self.breaks = []

    def print_titles(self, sheet_ref: str) -> str | None:
        """The _xlnm.Print_Titles text ('Sheet'!$A:$A,'Sheet'!$1:$1), None without titles."""
        parts = []
        if self.title_cols:
            parts.append(f"{sheet_ref}!$A:${col_letter(self.title_cols - 1)}")
        if self.title_rows:
            parts.append(f"{sheet_ref}!$1:${self.title_rows}")
        return ",".join(parts) or None

    def print_area(self, sheet_ref: str) -> str | None:
        """The _xlnm.Print_Area text: a sheet that prints its head only ('Sheet'!$A$1:$H$9), or
        a wide sheet's ranges, a page each; None: the whole sheet."""
        if self.rows:
            return f"{sheet_ref}!$A$1:${col_letter(self.last_col)}${self.rows}"
        text = ",".join(f"{sheet_ref}!${col_letter(c0)}${r0 + 1}:${col_letter(c1)}${r1 + 1}"
                        for r0, c0, r1, c1 in self.ranges)
        return text if text and len(text) <= MAX_AREA_CHARS else None

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


def _fit_pages(breaks: list[int], last_row: int, title_rows: int, rows_per_page: float) -> int:
    # the pages a sheet one page wide takes: a page ends at a break or when it is full
    body = max(1, math.floor(rows_per_page) - title_rows)
    pages, end = 1, max(1, math.floor(rows_per_page))
    for top in sorted(breaks) + [last_row + 1]:
        while top > end:
            pages, end = pages + 1, end + body
        if top <= last_row:
            pages, end = pages + 1, top + body
    return pages


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


# --- a wide sheet: whole blocks per page ---------------------------------------------------------
def _pages(spec, title_rows: int, title_cols: int):
    """(landscape, scale, ranges) of the fewest pages at BLOCK_FLOOR or more (a larger scale
    on a tie: easier to read), each range one page of whole blocks (see the module's doc)."""
    boxes = _boxes(spec)
    best = None
    for scale in SCALES:
        for landscape in (True, False):
            ranges = _ranges(spec, boxes, title_rows, title_cols, scale, landscape)
            key = (len(ranges), -scale, not landscape)
            if best is None or key < best[0]:
                best = (key, landscape, float(scale), ranges)
    return best[1:]


def _boxes(spec) -> np.ndarray:
    """(K, 5) int array: row, col, last row, last col of everything on the sheet, and 1 where it
    is one block (numbers, an array formula, a label line over a block's columns, a chart) that
    a page break should not cut, 0 for a single cell (a title, a formula of a block)."""
    out = [(r0, c0, r0 + a.shape[0] - 1, c0 + a.shape[1] - 1, 1)
           for r0, c0, a, _ in spec.blocks if a.ndim == 2 and a.size]
    out += [(a.row, a.col, a.row + a.nrows - 1, a.col + a.ncols - 1, 1) for a in spec.arrays]
    for run in spec.runs:
        n = len(run.texts) - 1
        out.append((run.row, run.col, run.row + (n if run.down else 0),
                    run.col + (0 if run.down else n), 1))
    out += [(c.anchor[0], c.anchor[1], c.anchor[0] + CHART_ROWS - 1,
             c.anchor[1] + CHART_COLS - 1, 1) for c in spec.charts]
    return np.vstack([np.array(out, dtype=np.int64).reshape(-1, 5), _cell_runs(spec.cells)])


def _cell_runs(cells) -> np.ndarray:
    # single cells side by side in a row as one span (not whole: a break may fall between
    # them): a cells-style GPT sheet's 10,000 formula cells become a few hundred rows
    rc = np.array(sorted(cells), dtype=np.int64).reshape(-1, 2)
    if not len(rc):
        return np.zeros((0, 5), np.int64)
    new = np.ones(len(rc), bool)
    new[1:] = (rc[1:, 0] != rc[:-1, 0]) | (rc[1:, 1] != rc[:-1, 1] + 1)
    first = np.flatnonzero(new)
    last = np.append(first[1:], len(rc)) - 1
    return np.column_stack([rc[first, 0], rc[first, 1], rc[last, 0], rc[last, 1],
                            np.zeros(len(first), np.int64)])


def _ranges(spec, boxes: np.ndarray, title_rows: int, title_cols: int, scale: float,
            landscape: bool) -> list[tuple[int, int, int, int]]:
    # the page's room at this scale, less the repeated title rows and columns
    across, down = (PRINTABLE[1], PRINTABLE[0]) if landscape else PRINTABLE
    width = across * 100 / scale * ROOM - sheet_points(spec, title_cols - 1)
    height = down * 100 / scale * ROOM - title_rows * ROW_POINTS
    # rows: everything below the title rows (a block's title sits in column A); columns:
    # everything right of the title columns
    down = boxes[boxes[:, 2] >= title_rows]
    body = boxes[boxes[:, 3] >= title_cols]
    if not len(down) or not len(body):
        return []
    rows = _cuts(down[:, [0, 2, 4]], title_rows, lambda r: ROW_POINTS, height, True)
    out = []
    for r0, r1 in rows:
        band = body[(body[:, 0] <= r1) & (body[:, 2] >= r0)]
        if not len(band):
            continue
        widths = lambda c: column_points(spec.widths.get(c, spec.default_width))  # noqa: E731
        for c0, c1 in _cuts(band[:, [1, 3, 4]], title_cols, widths, width, False):
            out.append((r0, c0, r1, c1))
    return out


def _cuts(spans: np.ndarray, first: int, size, room: float,
          adjacent: bool) -> list[tuple[int, int]]:
    """Cut one axis (rows or columns) into pieces of at most ``room`` points.

    spans: (K, 3) start, end, whole? along the axis.  Lines stay together where a whole span
    holds both (a block, its label line), and with ``adjacent`` (rows) wherever no blank line
    parts them (a title, its labels and its block); a group longer than the room is cut in equal
    parts.  The groups then fill the pieces in order.  Returns (first line, last line) pairs
    over the used lines from ``first`` on; the blank lines inside a piece print with it.
    """
    last = int(spans[:, 1].max())
    start, end = np.maximum(spans[:, 0], first), spans[:, 1]
    used = _covered(start, end, last)
    whole = (spans[:, 2] == 1) & (end > start)
    crossed = _covered(start[whole] + 1, end[whole], last)  # a whole span holds k-1 and k
    lines = np.flatnonzero(used[:last + 1])
    lines = lines[lines >= first]
    if not len(lines):
        return []
    ends = [0.0, *itertools.accumulate(size(k) for k in range(last + 1))]  # ends[k + 1]: 0..k

    def extent(a: int, b: int) -> float:  # lines a..b, in points
        return ends[b + 1] - ends[a]

    # a group starts where the line before is blank, or (columns) no whole span goes on
    starts = np.ones(len(lines), bool)
    joined = lines[1:] == lines[:-1] + 1
    starts[1:] = ~(joined if adjacent else joined & crossed[lines[1:]])
    pieces: list[list[int]] = []
    for group in np.split(lines, np.flatnonzero(starts)[1:]):
        group = group.tolist()
        parts = ([[group[0], group[-1]]] if extent(group[0], group[-1]) <= room
                 else _equal_parts(group, extent, room))
        for part in parts:
            if pieces and extent(pieces[-1][0], part[-1]) <= room:
                pieces[-1][1] = part[-1]
            else:
                pieces.append([part[0], part[-1]])
    return [(a, b) for a, b in pieces]


def _covered(start: np.ndarray, end: np.ndarray, last: int) -> np.ndarray:
    # (last + 2,) bool: True on every line some [start, end] holds (a difference array: one
    # pass over the spans in NumPy, not one slice assignment per span)
    keep = end >= start
    diff = np.zeros(last + 3, np.int64)
    np.add.at(diff, start[keep], 1)
    np.add.at(diff, end[keep] + 1, -1)
    return np.cumsum(diff)[:last + 2] > 0


def _equal_parts(group: list[int], extent, room: float) -> list[list[int]]:
    # a group longer than the room in parts of about equal size (lines differ in size: a
    # wide column), none longer than the room; a group that fits stays whole
    target = extent(group[0], group[-1]) / max(1, math.ceil(extent(group[0], group[-1]) / room))
    parts = [[group[0]]]
    for line in group[1:]:
        part = parts[-1]
        if extent(part[0], line) > room or extent(part[0], part[-1]) >= target - 1e-9:
            parts.append([line])
        else:
            part.append(line)
    return parts
