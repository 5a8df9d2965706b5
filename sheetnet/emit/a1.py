"""A1-style references: the only place that turns (sheet, row, col) into formula text."""
from __future__ import annotations

from ..layout import Region


def col_letter(col: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    out = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        out = chr(65 + rem) + out
    return out


def cell_name(row: int, col: int) -> str:
    """0-based (row, col) -> "B3"."""
    return f"{col_letter(col)}{row + 1}"


def quote_sheet(sheet: str) -> str:
    """'Layer 1' -> "'Layer 1'"; quotes inside a name are doubled, as both engines expect."""
    return "'" + sheet.replace("'", "''") + "'"


def number(value: float) -> str:
    """The shortest text that reads back as exactly this float64."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


class Refs:
    """References to node cells as seen from a formula on sheet ``here``."""

    def __init__(self, regions: dict[str, Region], here: str = ""):
        self.regions = regions
        self.here = here

    def _prefix(self, region: Region) -> str:
        return "" if region.sheet == self.here else quote_sheet(region.sheet) + "!"

    def cell(self, name: str, i: int, j: int) -> str:
        r = self.regions[name]
        return self._prefix(r) + cell_name(r.row + i, r.col + j)

    def span(self, name: str, rows: tuple[int, int], cols: tuple[int, int]) -> str:
        """Cells [r0, r1) x [c0, c1) of a node as "A1:B2" (one cell as "A1")."""
        r = self.regions[name]
        first = cell_name(r.row + rows[0], r.col + cols[0])
        last = cell_name(r.row + rows[1] - 1, r.col + cols[1] - 1)
        return self._prefix(r) + (first if first == last else f"{first}:{last}")

    def row(self, name: str, i: int) -> str:
        return self.span(name, (i, i + 1), (0, self.regions[name].ncols))

    def col(self, name: str, j: int) -> str:
        return self.span(name, (0, self.regions[name].nrows), (j, j + 1))

    def all(self, name: str) -> str:
        r = self.regions[name]
        return self.span(name, (0, r.nrows), (0, r.ncols))
