"""Every workbook reads and prints well: the Guide's Contents links land where they say, every
sheet has its print set-up (titles, orientation, scaling with a floor, no chart split by a page
break), and small numbers show as numbers in LibreOffice rather than 0.0000."""
import re
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sheetnet.options import ExportOptions
from sheetnet.pipeline import export
from sheetnet.spec import BookSpec, SheetSpec, load_styles
from sheetnet.xlsx import write_xlsx
from sheetnet.xlsx_print import BLOCK_FLOOR, CHART_ROWS

M = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
CASES = [("sqrt_2x2.pt", ExportOptions()), ("textnet.pt", ExportOptions()),
         ("gpt.pt", ExportOptions(prompt="The cell", style="arrays"))]


@pytest.fixture(scope="module")
def books(examples, tmp_path_factory):
    out = tmp_path_factory.mktemp("print")
    made = {}
    for name, opts in CASES:
        made[name] = out / (name + ".xlsx")
        export(examples / name, made[name], opts)
    return made


def _parts(book: Path):
    """(sheet name -> (state, parsed sheet XML), parsed workbook.xml) straight from the zip."""
    with zipfile.ZipFile(book) as zf:
        wb = ET.fromstring(zf.read("xl/workbook.xml"))
        rels = ET.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
        target = {r.get("Id"): r.get("Target") for r in rels}
        sheets = {}
        for s in wb.iter(f"{M}sheet"):
            xml = ET.fromstring(zf.read("xl/" + target[s.get(f"{R}id")]))
            sheets[s.get("name")] = (s.get("state", "visible"), xml)
    return sheets, wb


def _text(sheet_xml, ref: str):
    for c in sheet_xml.iter(f"{M}c"):
        if c.get("r") == ref:
            return "".join(t.text or "" for t in c.iter(f"{M}t"))
    return None


def _split(location: str) -> tuple[str, str]:
    sheet, cell = location.rsplit("!", 1)
    return (sheet[1:-1].replace("''", "'") if sheet.startswith("'") else sheet), \
        cell.replace("$", "")


@pytest.mark.parametrize("name", [n for n, _ in CASES])
def test_contents_links_every_sheet_and_land_on_their_titles(books, name):
    sheets, _ = _parts(books[name])
    guide = sheets["Guide"][1]
    links = [(h.get("ref"), h.get("location")) for h in guide.iter(f"{M}hyperlink")]
    assert links
    linked = set()
    for ref, location in links:
        sheet, cell = _split(location)
        assert sheet in sheets, location
        here = _text(guide, ref)
        there = _text(sheets[sheet][1], cell)
        # a sheet's link lands on its heading (its name), a block's on its title
        assert here and here == there, (ref, location, here, there)
        linked.add(sheet)
    visible = {s for s, (state, _) in sheets.items() if state == "visible" and s != "Guide"}
    assert linked == visible


@pytest.mark.parametrize("name", [n for n, _ in CASES])
def test_every_sheet_has_print_set_up_and_charts_stay_on_one_page(books, name):
    sheets, wb = _parts(books[name])
    order = list(sheets)
    titles = {int(d.get("localSheetId")): d.text for d in wb.iter(f"{M}definedName")
              if d.get("name") == "_xlnm.Print_Titles"}
    assert titles, "no print titles"
    for k, text in titles.items():
        for part in text.split(","):  # 'Sheet'!$A:$A or 'Sheet'!$1:$4, on its own sheet
            sheet, span = _split(part)
            assert sheet == order[k] and re.fullmatch(r"[A-Z]+:[A-Z]+|\d+:\d+", span)
    for sheet, (state, xml) in sheets.items():
        setup = xml.find(f"{M}pageSetup")
        assert setup.get("orientation") in ("portrait", "landscape"), sheet
        fit = xml.find(f"{M}sheetPr/{M}pageSetUpPr").get("fitToPage") == "1"
        if fit:
            assert (setup.get("fitToWidth"), setup.get("fitToHeight")) == ("1", "0")
        else:
            assert int(setup.get("scale")) >= BLOCK_FLOOR, sheet  # whole blocks a page
        anchors = _chart_rows(books[name], xml)
        for brk in xml.iter(f"{M}brk"):
            row = int(brk.get("id"))
            assert not any(a < row < a + CHART_ROWS for a in anchors), (sheet, row, anchors)


def _chart_rows(book: Path, sheet_xml) -> list[int]:
    # the first row of each chart on the sheet, from its drawing part
    drawing = sheet_xml.find(f"{M}drawing")
    if drawing is None:
        return []
    with zipfile.ZipFile(book) as zf:
        names = [n for n in zf.namelist() if n.startswith("xl/drawings/drawing")]
        rows = []
        for n in names:
            xml = zf.read(n).decode()
            rows += [int(r) for r in re.findall(r"<xdr:from>.*?<xdr:row>(\d+)</xdr:row>", xml)]
    return rows


def test_the_text_nets_chart_prints_on_one_page(books):
    # the Input sheet's chart was split across a page break: it now sits within one page
    sheets, _ = _parts(books["textnet.pt"])
    xml = sheets["Input"][1]
    anchors = _chart_rows(books["textnet.pt"], xml)
    assert anchors
    breaks = [int(b.get("id")) for b in xml.iter(f"{M}brk")]
    assert not any(a < b < a + CHART_ROWS for a in anchors for b in breaks)


@pytest.mark.parametrize("kind", ["weight", "formula", "output", "input"])
def test_small_numbers_show_in_libreoffice(engine, tmp_path, kind):
    # what LibreOffice displays for each value in a cell of this kind: never 0.0000 for a
    # probability of 2.6e-05 or a gradient of -1e-07; zero reads 0; an integer stays whole
    values = [2.6e-05, -1e-07, 0.0, 3.0, -0.5, 1234.5678]
    sheet = SheetSpec("S")
    sheet.blocks.append((0, 0, np.array([values]), kind))
    book = tmp_path / "n.xlsx"
    write_xlsx(BookSpec([sheet]), book, load_styles())
    with engine._watchdog("reading displayed text"):
        doc = engine._load(book.resolve())
        try:
            shown = [doc.Sheets.getByIndex(0).getCellByPosition(j, 0).getString()
                     for j in range(len(values))]
        finally:
            doc.close(True)
    for value, text in zip(values, shown):
        assert float(text) == pytest.approx(value, rel=1e-3), (value, text)
    assert shown[2] == "0" and shown[3] == "3", shown


def test_libreoffice_reads_the_contents_links(engine, books):
    # LibreOffice turns each location into a link field "#'Sheet'.A1" on the cell's text
    sheets, _ = _parts(books["textnet.pt"])
    want = {h.get("ref"): _split(h.get("location"))
            for h in sheets["Guide"][1].iter(f"{M}hyperlink")}
    with engine._watchdog("reading links"):
        doc = engine._load(books["textnet.pt"].resolve())
        try:
            guide = doc.Sheets.getByName("Guide")
            for ref, (sheet, cell) in want.items():
                fields = guide.getCellRangeByName(ref).getTextFields()
                url = fields.createEnumeration().nextElement().URL
                assert url.replace("'", "").replace("$", "") == f"#{sheet}.{cell}", (ref, url)
        finally:
            doc.close(True)
