"""How numbers read on paper (issue 19), proved on LibreOffice's printout: a block of numbers
(weights: fixed decimals per block, xlsx_numbers.block_format; formulas and outputs: General with
an indent; an input is a cell alone, General as typed) prints with a gap between neighbours, so
pdftotext finds one word per cell, each the cell's value to its shown digits; small values never
read 0.0000."""
import re

import numpy as np
import pytest

from pdf_helpers import page_lines, printout
from sheetnet.spec import BookSpec, Formula, SheetSpec, load_styles
from sheetnet.xlsx import write_xlsx
from sheetnet.xlsx_numbers import GAP, block_format


@pytest.mark.parametrize("values, width", [
    ([0.010430382, 0.010938771, -0.5], 11),      # the pair, signed
    ([2.6e-05, 0.5, 0.99], 11),                   # a probability that must not read 0.0000
    ([1.66, -0.0198, 0.58, 123.4], 11),
    ([-0.557632, 1.2e-05, 0.3], 8),               # narrow: one significant digit of the smallest
    ([1e-12, 1.0], 11),                           # no fixed format fits: General
    ([1.0, -2.0, 3.0], 11),                       # whole numbers: General (an edit shows whole)
    ([0.0, 0.0], 11),
])
def test_block_format_fits_its_column_and_keeps_small_values(values, width):
    fmt = block_format(np.array([values]), width)
    nonzero = [abs(v) for v in values if v]
    whole = all(float(v).is_integer() for v in values)
    if fmt is None:  # only where no fixed format could do
        assert whole or not all(
            len(f"{v:.{d}f}") <= width - GAP and float(f"{min(nonzero):.{d}f}") != 0
            for d in range(1, 12) for v in values)
        return
    decimals = len(fmt.split(".")[1])
    assert re.fullmatch(r"0\.0+", fmt)
    for v in values:
        assert len(f"{v:.{decimals}f}") <= width - GAP, (v, fmt)   # a visible gap
    assert float(f"{min(nonzero):.{decimals}f}") != 0                  # 2.6e-05 is not 0.0000


ROW = [0.010430382123, 0.010938771456, 2.6012345e-05, -0.123456789, 123.456789, 0.5]


@pytest.mark.parametrize("kind, as_formulas", [("weight", False), ("formula", True),
                                               ("output", True)])
def test_neighbouring_numbers_print_apart(tmp_path, kind, as_formulas):
    sheet = SheetSpec("S", widths={c: 11 for c in range(len(ROW))})
    if as_formulas:
        for j, v in enumerate(ROW):
            sheet.put(0, j, Formula(repr(v)), kind)
    else:
        sheet.blocks.append((0, 0, np.array([ROW]), kind))
    book = tmp_path / "n.xlsx"
    write_xlsx(BookSpec([sheet]), book, load_styles())
    words = [w for line in page_lines(printout(book, tmp_path))[0] for w in line]
    assert len(words) == len(ROW), words          # one word per cell: none ran together
    for value, text in zip(ROW, words):
        shown = float(text)
        assert shown != 0 and abs(shown - value) <= 5e-3 * max(abs(value), 1e-3), (value, text)
