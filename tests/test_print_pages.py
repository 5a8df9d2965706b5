"""How a sheet too wide for one page prints (issue 19): a GPT's sheets print their print area's
ranges a page each, whole blocks on each (a block longer than a page in equal parts); LibreOffice
adds no page of its own (its PDF has a page per range)."""
import html
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pdf_helpers import page_lines, printout
from sheetnet.a1 import col_letter
from sheetnet.manifest import read_manifest
from sheetnet.options import ExportOptions
from sheetnet.pipeline import export
from sheetnet.spec import SheetSpec
from sheetnet.xlsx_print import (BLOCK_FLOOR, MAX_PAGED_ROWS, PRINTABLE, ROW_POINTS, SCALE_FLOOR,
                                 PageSetup, column_points)


@pytest.fixture(scope="module")
def gpt_book(examples, tmp_path_factory):
    out = tmp_path_factory.mktemp("pages") / "gpt.xlsx"
    export(examples / "gpt.pt", out, ExportOptions(prompt="The cell"))
    return out


def _setups(book: Path):
    """sheet -> (landscape, scale or None (fit), [ranges (r0, c0, r1, c1), 0-based], widths)."""
    with zipfile.ZipFile(book) as zf:
        wb = zf.read("xl/workbook.xml").decode()
        names = [html.unescape(n) for n in re.findall(r'<sheet name="([^"]*)"', wb)]
        areas = {names[int(k)]: html.unescape(a) for k, a in re.findall(
            r'<definedName name="_xlnm.Print_Area" localSheetId="(\d+)">([^<]*)<', wb)}
        out = {}
        for k, name in enumerate(names, start=1):
            xml = zf.read(f"xl/worksheets/sheet{k}.xml").decode()
            setup = re.search(r"<pageSetup [^>]*>", xml).group(0)
            scale = re.search(r'scale="(\d+)"', setup)
            default = float(re.search(r'defaultColWidth="([^"]+)"', xml).group(1))
            widths = {int(c) - 1: float(w) for c, w in
                      re.findall(r'<col min="(\d+)" max="\d+" width="([^"]+)"', xml)}
            ranges = [_cells(part.split("!")[1]) for part in areas.get(name, "").split(",")
                      if part]
            out[name] = ("landscape" in setup, int(scale.group(1)) if scale else None, ranges,
                         lambda c, w=widths, d=default: w.get(c, d))
    return out


def _cells(ref: str) -> tuple[int, int, int, int]:
    # "$B$4:$Q$36" -> (3, 1, 35, 16): row, col, last row, last col, 0-based
    def col(letters):
        return sum((ord(ch) - 64) * 26 ** k for k, ch in enumerate(reversed(letters))) - 1
    (c0, r0), (c1, r1) = (re.fullmatch(r"\$([A-Z]+)\$(\d+)", p).groups() for p in ref.split(":"))
    return int(r0) - 1, col(c0), int(r1) - 1, col(c1)


def test_wide_sheets_print_a_page_per_range_and_never_cut_a_block_that_fits(gpt_book, tmp_path):
    setups = _setups(gpt_book)
    wide = {s: v for s, v in setups.items() if v[2]}
    assert {"B1 Attention", "B1 MLP", "Logit lens"} <= set(wide)
    for sheet, (landscape, scale, ranges, width_of) in wide.items():
        across, down = (PRINTABLE[1], PRINTABLE[0]) if landscape else PRINTABLE
        width, height = across * 100 / scale, down * 100 / scale
        for name, e in read_manifest(gpt_book).nodes.items():
            if e.sheet != sheet or e.op == "View":
                continue
            rows, cols = e.shape[::-1] if e.laid_transposed else e.shape
            r0, c0, r1, c1 = e.row, e.col, e.row + rows - 1, e.col + cols - 1
            points = column_points(width_of(0)) + sum(column_points(width_of(c))
                                                      for c in range(c0, c1 + 1))
            if points > width or (rows + 3) * ROW_POINTS > height:
                continue  # longer than a page: cut in equal parts
            assert any(r[0] <= r0 and r1 <= r[2] and r[1] <= c0 and c1 <= r[3]
                       for r in ranges), (sheet, name, col_letter(c0), r0 + 1)
    # LibreOffice prints each range on a page of its own and adds none: a page's first line is
    # its sheet's heading (row 1 repeats), so a wide sheet has as many pages as ranges
    firsts = [" ".join(lines[0]) if lines else "" for lines in
              page_lines(printout(gpt_book, tmp_path))]
    for sheet, (_, _, ranges, _) in wide.items():
        assert firsts.count(sheet) == len(ranges), (sheet, firsts.count(sheet), len(ranges))


@pytest.mark.parametrize("rows, paged", [(600, True), (MAX_PAGED_ROWS + 1, False)])
def test_a_sheet_too_tall_to_page_by_ranges_prints_at_the_floor(rows, paged):
    # 40 columns of numbers: too wide for one page at the floor; a GPT-2 Sampling sheet lays
    # 50,257 ids down its rows, too many ranges for a print area (and slow to find)
    spec = SheetSpec("S", freeze=(1, 1))
    spec.blocks.append((1, 1, np.zeros((rows, 40)), "weight"))
    setup = PageSetup(spec, last_col=40, last_row=rows)
    assert bool(setup.ranges) == paged
    assert setup.scale >= BLOCK_FLOOR and (paged or setup.scale == SCALE_FLOOR)
