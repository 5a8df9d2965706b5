"""A sheet's cells: their A1-style names and the limits of a sheet, the one place for both: the
loaders, the layout, the writer, the formula emitters, the engines and import all need them, and
none of them may import another stage for it."""
from __future__ import annotations

MAX_ROWS, MAX_COLS = 1_048_576, 16_384  # the .xlsx sheet limits (Excel and LibreOffice 7.4)
MAX_FORMULA_CHARS = 8_192  # Excel's limit on one formula's text; LibreOffice's is larger
MAX_CELL_CHARS = 32_767     # Excel's and LibreOffice's limit on the text of one cell


def _letters(col: int) -> str:
    out = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        out = chr(65 + rem) + out
    return out


_LETTERS = [_letters(c) for c in range(16_384)]  # every column a sheet has; a formula-heavy
                                                  # export asks for letters millions of times


def col_letter(col: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    return _LETTERS[col] if 0 <= col < len(_LETTERS) else _letters(col)


def cell_name(row: int, col: int) -> str:
    """0-based (row, col) -> "B3"."""
    return f"{col_letter(col)}{row + 1}"


def quote_sheet(sheet: str) -> str:
    """'Layer 1' -> "'Layer 1'"; quotes inside a name are doubled, as both engines expect."""
    return "'" + sheet.replace("'", "''") + "'"
