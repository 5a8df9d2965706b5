"""Charts draw in LibreOffice: the exported file itself (never a re-saved copy) is printed to PDF
and rasterised, and each series' colour is found in the chart.  A workbook without a theme part
printed its charts blank: axes and legend, no line or bar."""
from __future__ import annotations

import importlib.util
import re
import subprocess
import tempfile
import zipfile
from pathlib import Path

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


# the cells use none of the series' colours (heatmaps run 5B9BD5 - white - F8696B: < 50 pixels
# come near them on any page at 300 dpi); a drawn line or bar puts ~1,000 to ~90,000 on its page
ENOUGH = 500


def _page(pdf: Path, k: int, dpi: int):
    # page k (1-based) of pdf as an (h, w, 3) uint8 array
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["pdftoppm", "-r", str(dpi), "-f", str(k), "-l", str(k), "-singlefile",
                        str(pdf), f"{tmp}/p"], check=True)
        return render._ppm(Path(tmp) / "p.ppm")


def _best_pages(pdf: Path, series: int) -> list[int]:
    # every page, the likeliest chart pages first: most pixels of a series' colour at 50 dpi
    rough = [sum(render.colour_pixels(image, ACCENTS[k]) for k in range(series))
             for image in render.pages(pdf, dpi=50)]
    return sorted(range(1, len(rough) + 1), key=lambda k: -rough[k - 1])


@pytest.mark.parametrize("net, options", BOOKS, ids=[b[0] for b in BOOKS])
def test_every_series_draws_in_its_colour(examples, tmp_path, net, options):
    book = tmp_path / f"{net}.xlsx"
    export(examples / net, book, ExportOptions(force=True, **options))
    series = _series_count(book)
    assert series >= 1
    pdf = render.pdf_of(book, tmp_path)
    found = [0] * series
    # each series' best page at 300 dpi. The GPT prints ~60 pages: they are counted in the order
    # _best_pages gives, and the count stops once every series has ENOUGH, a verdict more pages
    # cannot change (found only grows); short of it, every page is counted, as before
    for page in _best_pages(pdf, series):
        image = _page(pdf, page, 300)
        for k in range(series):
            found[k] = max(found[k], render.colour_pixels(image, ACCENTS[k]))
        if min(found) >= ENOUGH:
            break
    assert min(found) >= ENOUGH, f"pixels of each series' colour, best page: {found}"


@pytest.mark.parametrize("limit, charted", [(10_000_000, True), (1_000, False)])
def test_a_gpt_past_the_chart_limit_has_no_prompt_chart(examples, tmp_path, monkeypatch, limit,
                                                        charted):
    # LibreOffice reads a chart's data while loading, computing the whole model on its on-demand
    # path before any recalculation: a large GPT's Prompt sheet goes without (its Output table stays)
    from sheetnet.capture import gpt_body
    monkeypatch.setattr(gpt_body, "CHART_MAX_WEIGHTS", limit)
    book = tmp_path / "gpt.xlsx"
    export(examples / "gpt.pt", book, ExportOptions(style="arrays", prompt="The cell"))
    with zipfile.ZipFile(book) as z:
        names = z.namelist()
    assert any(re.fullmatch(r"xl/charts/chart\d+\.xml", n) for n in names) == charted
    assert any(n.startswith("xl/drawings/drawing") for n in names) == charted
