"""A working sheet prints only its head (issue 19): the sqrt nets' Breakpoints sheet carries a
_xlnm.Print_Area over its first rows (the x range), and its title and the
Guide say so; LibreOffice prints it on one page (it printed 69 for sqrt_net.pt before)."""
import re
import subprocess
import zipfile

import pytest

from pdf_helpers import printout
from sheetnet.capture.sqrt import WORK
from sheetnet.manifest import read_manifest
from sheetnet.options import ExportOptions
from sheetnet.pipeline import export


@pytest.fixture(scope="module", params=["sqrt_2x2.pt", "sqrt_net.pt"])
def book(request, examples, tmp_path_factory):
    out = tmp_path_factory.mktemp("head") / "sqrt.xlsx"
    export(examples / request.param, out, ExportOptions())
    return out


def _print_areas(book) -> dict[str, str]:
    # sheet name -> its print area, from workbook.xml's local defined names
    with zipfile.ZipFile(book) as zf:
        wb = zf.read("xl/workbook.xml").decode()
    sheets = re.findall(r'<sheet name="([^"]*)"', wb)
    return {sheets[int(k)]: ref for k, ref in re.findall(
        r'<definedName name="_xlnm.Print_Area" localSheetId="(\d+)">([^<]*)</definedName>', wb)}


def test_the_working_sheets_print_area_is_its_head(book):
    # (a sheet too wide for a page has one too: its pages' ranges, see test_print_pages.py)
    areas = _print_areas(book)
    assert WORK in areas and "," not in areas[WORK]
    first, last = areas[WORK].split("!")[1].replace("$", "").split(":")
    assert first == "A1"
    last_row = int(re.sub(r"[A-Z]+", "", last))
    nodes = read_manifest(book).nodes
    hi = nodes["range.hi"]
    assert nodes["range.lo"].sheet == hi.sheet == WORK
    assert last_row == hi.row + 1            # down to the x range, the rest left out
    # the working's own nodes lie below it: none of it prints
    below = [n for n, e in nodes.items() if e.sheet == WORK and e.row + 1 > last_row]
    assert len(below) > 20


def test_libreoffice_prints_the_working_sheet_on_one_page(book, tmp_path):
    # the whole book to PDF: the Breakpoints sheet's pages are those after the Walk's last
    text = subprocess.run(["pdftotext", "-layout", str(printout(book, tmp_path)), "-"],
                          check=True, capture_output=True, text=True).stdout
    firsts = [p.strip().splitlines()[0] for p in text.split("\f") if p.strip()]
    assert sum(line.startswith(WORK) for line in firsts) == 1, firsts
    assert "printed: only this head" in text


def test_the_guide_says_the_working_sheet_is_left_out_of_a_printout(book):
    import openpyxl
    guide = openpyxl.load_workbook(book, read_only=True)["Guide"]
    text = " ".join(str(c.value) for row in guide.iter_rows() for c in row if c.value)
    assert "Breakpoints sheet is its working" in text and "printout leaves out" in text
