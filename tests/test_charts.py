"""Charts draw in LibreOffice: the exported file itself (never a re-saved copy) is printed to PDF
and rasterised, and each series' colour is found in the chart.  A workbook without a theme part
printed its charts blank: axes and legend, no line or bar."""
from __future__ import annotations

import importlib.util
import re
import zipfile

import pytest

from sheetnet.pipeline import export
from sheetnet.options import ExportOptions
from sheetnet.xlsx_theme import ACCENTS

from conftest import ROOT

_spec = importlib.util.spec_from_file_location("render_pictures", ROOT / "scripts" / "render_pictures.py")
render = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(render)

# the Walk (a scatter of two lines; the 2x2 net: sqrt_net's Walk prints 16 neurons wide, its
# chart too small on the page to count pixels), the text net's and the GPT's charts (bars)
BOOKS = [("sqrt_2x2.pt", {}), ("textnet.pt", {}), ("gpt.pt", {"prompt": "The cell"})]


def _series_count(book) -> int:
    with zipfile.ZipFile(book) as z:
        charts = [n for n in z.namelist() if re.fullmatch(r"xl/charts/chart\d+\.xml", n)]
        assert "xl/theme/theme1.xml" in z.namelist()
        return max(z.read(n).decode().count("<c:ser>") for n in charts)


@pytest.mark.parametrize("net, options", BOOKS, ids=[b[0] for b in BOOKS])
def test_every_series_draws_in_its_colour(examples, tmp_path, net, options):
    book = tmp_path / f"{net}.xlsx"
    export(examples / net, book, ExportOptions(force=True, **options))
    series = _series_count(book)
    assert series >= 1
    found = [0] * series
    for image in render.pages(render.pdf_of(book, tmp_path), dpi=300):
        for k in range(series):
            found[k] = max(found[k], render.colour_pixels(image, ACCENTS[k]))
    # the cells use none of these colours (heatmaps run 5B9BD5 - white - F8696B: < 50 pixels
    # come near them on any page); a drawn line or bar puts ~1,000 to ~90,000 on its page
    assert min(found) >= 500, f"pixels of each series' colour, best page: {found}"
