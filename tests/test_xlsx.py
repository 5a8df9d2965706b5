"""Our .xlsx writer, read back by LibreOffice and openpyxl."""
import re
import zipfile

import numpy as np
import openpyxl
import pytest
from openpyxl.utils import column_index_from_string

from sheetnet.emit.book import _add_bound, _add_rules
from sheetnet.engines import Block
from sheetnet.ir import graph as ir
from sheetnet.layout import Region
from sheetnet.errors import SheetnetError
from sheetnet.pipeline import export
from sheetnet.options import ExportOptions
from sheetnet.layout import Numbers
from sheetnet.spec import ArraySpec, BookSpec, Formula, SheetSpec, TextRun, load_styles
from sheetnet.xlsx import write_xlsx
from sheetnet.xlsx_read import Book
from lo_helpers import validation_rule

WORDS = ["=1+1", "@SUM(A1)", "+x", "-", "_x0041_", "a\x01b", "tab\there", "<&>", "  sp  ", "Ünï"]


def test_text_stays_text_whatever_it_looks_like(engine, tmp_path):
    sheet = SheetSpec("S")
    for i, w in enumerate(WORDS):
        sheet.put(i, 0, w)
    path = tmp_path / "w.xlsx"
    write_xlsx(BookSpec([sheet], {}), path, load_styles())
    got = engine.recalculate(path, [Block("S", 0, 0, len(WORDS), 1)])[0][:, 0].tolist()
    assert got == WORDS
    cells = [c for (c,) in openpyxl.load_workbook(path)["S"].iter_rows()]
    assert all(c.data_type == "s" for c in cells)


def test_our_reader_gives_back_the_text_written(tmp_path):
    # "a\x01b" is written as a_x0001_b and "_x0041_" as _x005F_x0041_ (XML cannot hold the
    # first; the second would read as "A"): the reader decodes both, as Excel and LibreOffice do
    sheet = SheetSpec("S")
    for i, w in enumerate(WORDS):
        sheet.put(i, 0, w)
    path = tmp_path / "w.xlsx"
    write_xlsx(BookSpec([sheet], {}), path, load_styles())
    found = {}
    with Book(path) as book:
        book.cells("S", (0, len(WORDS)), (0, 1), lambda r, c, t, text: found.update({r: (t, text)}))
        shared = book.strings({int(text) for t, text in found.values() if t == "s"})
    got = [shared[int(text)] if t == "s" else text for t, text in (found[r] for r in sorted(found))]
    assert got == WORDS


def test_numbers_formulas_arrays_and_hidden_sheets(engine, tmp_path):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 4))
    w[0, 0] = 5e-324  # subnormal, and
    w[0, 1] = 0.1 + 0.2  # a value "%.16g" would round
    sheet = SheetSpec("Layer 1")
    sheet.blocks.append((1, 1, w, "weight"))
    sheet.put(5, 1, Formula("SUM(B2:E4)"), "formula")
    sheet.arrays.append(ArraySpec(7, 1, 3, 3, "MMULT(B2:E4,TRANSPOSE(B2:E4))"))
    hidden = SheetSpec("secret", state="veryHidden")
    hidden.put(0, 0, "x")
    path = tmp_path / "n.xlsx"
    write_xlsx(BookSpec([sheet, hidden], {}, names={"W1": "'Layer 1'!$B$2:$E$4"}), path,
               load_styles())
    back, total, mm = engine.recalculate(path, [Block("Layer 1", 1, 1, 3, 4),
                                                Block("Layer 1", 5, 1, 1, 1),
                                                Block("Layer 1", 7, 1, 3, 3)])
    assert np.array_equal(back.astype(float), w)  # bit for bit through LibreOffice
    assert abs(total[0, 0] - w.sum()) < 1e-12
    np.testing.assert_allclose(mm.astype(float), w @ w.T, rtol=0, atol=1e-12)
    wb = openpyxl.load_workbook(path)
    assert wb["secret"].sheet_state == "veryHidden"
    assert "W1" in wb.defined_names


def test_float32_precision_round_trips_float32_weights(engine, tmp_path):
    rng = np.random.default_rng(1)
    w32 = (rng.normal(size=(50, 40)) * 0.02).astype(np.float32)
    w32[0, :4] = [np.float32(1e-38), np.float32(3.4e38), np.float32(0.1), np.float32(-0.0)]
    sheet = SheetSpec("W")
    sheet.blocks.append((0, 0, w32.astype(np.float64), "weight"))
    path = tmp_path / "w32.xlsx"
    write_xlsx(BookSpec([sheet], {}), path, load_styles(), precision="float32")
    back = engine.recalculate(path, [Block("W", 0, 0, 50, 40)])[0].astype(float)
    assert np.array_equal(back.astype(np.float32), w32)
    assert np.max(np.abs(back - w32) / np.maximum(np.abs(w32), 1e-30)) < 6e-8


def test_text_runs_land_beside_cells_and_blocks_of_the_same_rows(engine, tmp_path):
    sheet = SheetSpec("S")
    sheet.runs.append(TextRun(1, 0, Numbers(3), down=True))                   # A2:A4
    sheet.runs.append(TextRun(0, 1, ["=1+1", "", "c"], down=False))            # B1, (C1), D1
    sheet.runs.append(TextRun(1, 5, ["x", "", "z"], down=True, kind="title"))  # F2, (F3), F4
    sheet.blocks.append((1, 1, np.arange(6.0).reshape(3, 2), "weight"))        # B2:C4
    sheet.put(2, 4, Formula("SUM(B3:C3)"), "formula")                         # E3
    path = tmp_path / "runs.xlsx"
    write_xlsx(BookSpec([sheet], {}), path, load_styles())
    got = engine.recalculate(path, [Block("S", 0, 0, 4, 6)])[0]
    want = [["", "=1+1", "", "c", "", ""],
            ["0", 0.0, 1.0, "", "", "x"],
            ["1", 2.0, 3.0, "", 5.0, ""],
            ["2", 4.0, 5.0, "", "", "z"]]
    assert [[v if v is not None else "" for v in row] for row in got.tolist()] == want
    ws = openpyxl.load_workbook(path)["S"]
    assert ws["B1"].data_type == "s" and ws["A2"].data_type == "s" and ws["C1"].value is None
    assert ws.dimensions == "A1:F4"


def test_two_things_on_one_cell_are_refused_not_written(tmp_path):
    # LibreOffice would keep one of them; Excel would call the file damaged
    sheet = SheetSpec("S")
    sheet.blocks.append((1, 1, np.zeros((3, 4)), "weight"))                   # B2:E4
    sheet.runs.append(TextRun(0, 4, ["a", "b"], down=True))                   # E1, E2
    with pytest.raises(SheetnetError, match="two values for cell E2 on sheet 'S'"):
        write_xlsx(BookSpec([sheet], {}), tmp_path / "x.xlsx", load_styles())


@pytest.mark.parametrize("name, style", [("sqrt_2x2.pt", "cells"), ("textnet.pt", "cells"),
                                         ("gpt.pt", "cells"), ("gpt.pt", "arrays")])
def test_every_row_and_cell_is_written_once_in_order(examples, tmp_path, name, style):
    # what Excel insists on, read from the sheet XML itself: rows ascending, cells ascending
    # within a row, each cell once (a cell without r="" is the one after the previous)
    book = tmp_path / "b.xlsx"
    export(examples / name, book, ExportOptions(style=style))
    with zipfile.ZipFile(book) as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/sheet")]
        assert sheets
        for part in sheets:
            last_row = 0
            for row, body in re.findall(r'<row r="(\d+)">(.*?)</row>', z.read(part).decode(), re.S):
                assert int(row) > last_row, (part, row)
                last_row, col = int(row), 0
                for ref, letters, number in re.findall(r'<c( r="([A-Z]+)(\d+)")?[ >/]', body):
                    now = column_index_from_string(letters) if ref else col + 1
                    assert now > col and (not ref or number == row), (part, row, letters)
                    col = now


def test_every_cell_carries_its_reference_in_order(tmp_path):
    # IronCalc refuses a cell without r="B5"; Gnumeric drops it silently
    sheet = SheetSpec("S")
    sheet.blocks.append((3, 2, np.arange(12, dtype=np.float64).reshape(3, 4) / 7, "weight"))
    sheet.blocks.append((7, 27, np.float32([[0.1, 1 / 3, 2e-9]]), "weight"))
    sheet.arrays.append(ArraySpec(9, 0, 2, 2, "B4:C5"))
    sheet.put(0, 0, "title")
    for precision in ("float64", "float32"):
        path = tmp_path / f"r_{precision}.xlsx"
        write_xlsx(BookSpec([sheet], {}), path, load_styles(), precision=precision)
        xml = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode()
        cells = re.findall(r"<c( r=\"([A-Z]+)([0-9]+)\")?[ >/]", xml)
        assert all(has_r for has_r, _, _ in cells)
        want = (["A1"] + [f"{c}{r}" for r in (4, 5, 6) for c in "CDEF"]
                + ["AB8", "AC8", "AD8"] + [f"{c}{r}" for r in (10, 11) for c in "AB"])
        assert [f"{c}{r}" for _, c, r in cells] == want
        wb = openpyxl.load_workbook(path)
        got = np.array([[c.value for c in row] for row in wb["S"]["C4:F6"]])
        want64 = np.arange(12).reshape(3, 4) / 7
        cast = np.float64 if precision == "float64" else np.float32  # float32: 8-9 digits
        assert np.array_equal(got.astype(cast), want64.astype(cast))
        f32 = [c.value for c in wb["S"]["AB8:AD8"][0]]
        assert np.array_equal(np.float32(f32), np.float32([0.1, 1 / 3, 2e-9]))


def test_a_one_cell_array_formula_names_its_cell_alone(tmp_path):
    sheet = SheetSpec("S")
    sheet.arrays.append(ArraySpec(4, 1, 1, 1, "SUMPRODUCT(EXP(C1:C3))"))
    path = tmp_path / "one.xlsx"
    write_xlsx(BookSpec([sheet], {}), path, load_styles())
    xml = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode()
    assert re.search(r'<c r="B5" s="[0-9]+"><f t="array" ref="B5">SUMPRODUCT\(EXP\(C1:C3\)\)'
                     r'</f></c>', xml)


def test_the_theme_part_is_written_and_named(tmp_path):
    # without it LibreOffice draws every chart blank
    from sheetnet.xlsx_theme import ACCENTS
    path = tmp_path / "t.xlsx"
    write_xlsx(BookSpec([SheetSpec("S")], {}), path, load_styles())
    z = zipfile.ZipFile(path)
    theme = z.read("xl/theme/theme1.xml").decode()
    assert all(f'<a:accent{k + 1}><a:srgbClr val="{c}"/>' in theme for k, c in enumerate(ACCENTS))
    assert 'Target="theme/theme1.xml"' in z.read("xl/_rels/workbook.xml.rels").decode()
    assert ('PartName="/xl/theme/theme1.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.theme+xml"') in z.read("[Content_Types].xml").decode()
    assert openpyxl.load_workbook(path).loaded_theme == theme.encode()


# an input's bound (ir.Bound) -> its dataValidation: type, operator, formula1, formula2, error;
# and the (type, operator, formula1) LibreOffice reads back
BOUND_RULES = [
    (ir.bound_of(above=0.0), "decimal", "greaterThan", "0", None,
     "Type a number greater than 0", ("DECIMAL", "GREATER", "0")),
    (ir.bound_of(at_least=0.0), "decimal", "greaterThanOrEqual", "0", None,
     "Type a number of 0 or more", ("DECIMAL", "GREATER_EQUAL", "0")),
    (ir.bound_of(at_least=0.0, whole=True), "whole", "greaterThanOrEqual", "0", None,
     "Type a whole number of 0 or more", ("WHOLE", "GREATER_EQUAL", "0")),
    (ir.bound_of(at_least=1.0, at_most=2147483646.0, whole=True), "whole", "between", "1",
     "2147483646", "Type a whole number from 1 to 2147483646", ("WHOLE", "BETWEEN", "1")),
    (ir.bound_of(at_least=-0.5, at_most=0.25), "decimal", "between", "-0.5", "0.25",
     "Type a number from -0.5 to 0.25", ("DECIMAL", "BETWEEN", "-0.5")),
    (ir.bound_of(at_most=0.5), "decimal", "lessThanOrEqual", "0.5", None,
     "Type a number of 0.5 or less", ("DECIMAL", "LESS_EQUAL", "0.5")),
]


@pytest.fixture(scope="module")
def bound_book(tmp_path_factory):
    sheet = SheetSpec("S")
    for k, (bound, *_) in enumerate(BOUND_RULES):
        _add_bound(sheet, Region("S", k, 0, 1, 1), bound)
        sheet.put(k, 0, 1.0)
    sheet.put(0, 2, "a")
    _add_rules(sheet, Region("S", 0, 1, 1, 1), "list", "S!$C$1:$C$1", "Pick one from the list")
    path = tmp_path_factory.mktemp("rules") / "r.xlsx"
    write_xlsx(BookSpec([sheet], {}), path, load_styles())
    return path


@pytest.mark.parametrize("k", range(len(BOUND_RULES)))
def test_each_bound_is_written_as_its_validation_rule(engine, bound_book, k):
    _, kind, operator, low, high, error, lo = BOUND_RULES[k]
    xml = zipfile.ZipFile(bound_book).read("xl/worksheets/sheet1.xml").decode()
    second = "" if high is None else f"<formula2>{high}</formula2>"
    assert (f'<dataValidation type="{kind}" operator="{operator}" allowBlank="0" '
            f'showErrorMessage="1" error="{error}" sqref="A{k + 1}"><formula1>{low}</formula1>'
            f'{second}</dataValidation>') in xml
    dv, = [d for d in openpyxl.load_workbook(bound_book)["S"].data_validations.dataValidation
           if str(d.sqref) == f"A{k + 1}"]
    assert (dv.type, dv.operator, dv.formula1, dv.formula2, dv.error) == (kind, operator, low,
                                                                          high, error)
    assert validation_rule(engine, bound_book, "S", k, 0) == (*lo, True)


def test_a_list_rule_has_no_operator(engine, bound_book):
    xml = zipfile.ZipFile(bound_book).read("xl/worksheets/sheet1.xml").decode()
    assert ('<dataValidation type="list" allowBlank="0" showErrorMessage="1" '
            'error="Pick one from the list" sqref="B1"><formula1>S!$C$1:$C$1</formula1>'
            '</dataValidation>') in xml
    assert validation_rule(engine, bound_book, "S", 0, 1)[0] == "LIST"


@pytest.mark.parametrize("fields", [dict(above=0.0, at_least=0.0), dict(above=0.0, at_most=1.0),
                                    dict(at_least=2.0, at_most=1.0), dict(whole=True)])
def test_a_bound_that_cannot_be_written_is_refused_at_capture(fields):
    with pytest.raises(ValueError):
        ir.Input(np.zeros((1, 1)), **fields)
