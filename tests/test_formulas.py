"""Formula text per op: [op, output cell, expected text] rows, as XlsxWriter tests its formulas."""
import pytest

from sheetnet.emit.a1 import Refs, cell_name, col_letter, number, quote_sheet
from sheetnet.emit.arrays import ARRAY_FORMULAS
from sheetnet.emit.formulas import cell_formula
from sheetnet.ir import graph as ir
from sheetnet.layout import Region

REGIONS = {
    "x": Region("S", 4, 1, 1, 3),          # B5:D5
    "x1": Region("S", 4, 1, 1, 1),         # B5
    "w": Region("Layer 1", 9, 1, 2, 3),    # B10:D11 on another sheet
    "w1": Region("S", 9, 1, 2, 1),         # B10:B11
    "b": Region("Layer 1", 9, 4, 2, 1),    # E10:E11
    "z": Region("S", 20, 2, 2, 2),         # C21:D22
    "y": Region("S", 30, 2, 2, 2),         # C31:D32
}
R = Refs(REGIONS, here="S")

CELL_CASES = [
    (ir.Linear("x", "w", "b"), (0, 1), "SUMPRODUCT(B5:D5,'Layer 1'!B11:D11)+'Layer 1'!E11"),
    (ir.Linear("x", "w", None), (0, 0), "SUMPRODUCT(B5:D5,'Layer 1'!B10:D10)"),
    (ir.Linear("x1", "w1", "b"), (0, 1), "B5*B11+'Layer 1'!E11"),
    (ir.Relu("z"), (1, 0), "MAX(0,C22)"),
    (ir.LeakyRelu("z", 0.01), (0, 1), "IF(D21>0,D21,0.01*D21)"),
    (ir.Tanh("z"), (0, 0), "TANH(C21)"),
    (ir.Sigmoid("z"), (0, 0), "1/(1+EXP(-C21))"),
    (ir.Gelu("z", "erf"), (0, 0), "0.5*C21*(1+ERF(C21/SQRT(2)))"),
    (ir.Gelu("z", "tanh"), (0, 0), "0.5*C21*(1+TANH(SQRT(2/PI())*(C21+0.044715*C21^3)))"),
    (ir.Copy("z"), (1, 1), "D22"),
    (ir.Add("z", "y"), (1, 1), "D22+D32"),
    (ir.Sub("z", "y"), (0, 0), "C21-C31"),
    (ir.Sqrt("z"), (0, 0), "SQRT(C21)"),
    (ir.Step("z"), (0, 1), "IF(D21>0,1,0)"),
]


@pytest.mark.parametrize("op, cell, expected", CELL_CASES, ids=lambda v: str(v)[:40])
def test_cell_formula(op, cell, expected):
    assert cell_formula(op, R, *cell) == expected


ARRAY_CASES = [
    (ir.Linear("x", "w", "b"), "MMULT(B5:D5,TRANSPOSE('Layer 1'!B10:D11))+TRANSPOSE('Layer 1'!E10:E11)"),
    (ir.Relu("z"), "IF(C21:D22>0,C21:D22,0)"),
    (ir.Tanh("z"), "TANH(C21:D22)"),
    (ir.Add("z", "y"), "C21:D22+C31:D32"),
]


@pytest.mark.parametrize("op, expected", ARRAY_CASES, ids=lambda v: str(v)[:40])
def test_array_formula(op, expected):
    assert ARRAY_FORMULAS[type(op)](op, R) == expected


@pytest.mark.parametrize("col, letters", [(0, "A"), (25, "Z"), (26, "AA"), (701, "ZZ"),
                                          (702, "AAA"), (16383, "XFD")])
def test_col_letter(col, letters):
    assert col_letter(col) == letters


def test_cell_name_and_quoting():
    assert cell_name(0, 0) == "A1"
    assert quote_sheet("B1 Attention") == "'B1 Attention'"
    assert quote_sheet("it's") == "'it''s'"


@pytest.mark.parametrize("value", [0.1, -1e-300, 1 / 3, 2.0, 123456789.123456789, 5e-324])
def test_number_text_round_trips_exactly(value):
    assert float(number(value)) == value
