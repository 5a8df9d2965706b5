"""A1-style references: the only place that turns (sheet, row, col) into formula text."""
from __future__ import annotations

import re

from ..a1 import cell_name, col_letter, quote_sheet  # noqa: F401 (emit's names for them)
from ..layout import Region
from ..ops import number  # noqa: F401 (the one place; ops write numbers into formulas too)


def absolute(region: Region) -> str:
    """'Sheet'!$A$1:$B$2, the form defined names and charts take."""
    first = f"${col_letter(region.col)}${region.row + 1}"
    last = f"${col_letter(region.col + region.ncols - 1)}${region.row + region.nrows}"
    return f"{quote_sheet(region.sheet)}!{first}:{last}"


_CELL_LIKE = re.compile(r"^([A-Za-z]{1,3}[0-9]+|[RrCc][0-9]*|R[0-9]*C[0-9]*|TRUE|FALSE)$")


def defined_name(node: str) -> str:
    """A node's name as a defined name both Excel and LibreOffice accept: letters, digits and
    underscores, not starting with a digit and not readable as a cell ("L1") or R1C1 reference."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", node)
    if name[0].isdigit() or _CELL_LIKE.match(name):
        name = "_" + name
    return name


class Refs:
    """References to node cells as seen from a formula on sheet ``here``.

    A whole node is referred to by its defined name when ``names`` has one (formulas then read
    closer to the math: MMULT(L1_in, TRANSPOSE(L1_W))); single cells and rows stay A1 ranges.
    """

    def __init__(self, regions: dict[str, Region], here: str = "", names: dict | None = None,
                 node: str = ""):
        self.regions = regions
        self.here = here
        self.names = names or {}
        self.node = node  # the node whose formulas these are: ``mine`` reads its other cells

    def _prefix(self, region: Region) -> str:
        return "" if region.sheet == self.here else quote_sheet(region.sheet) + "!"

    # i, j, rows and cols below are the tensor's; Region.at finds the cells (transposed or not)
    def shape(self, name: str) -> tuple[int, int]:
        return self.regions[name].shape

    def cell(self, name: str, i: int, j: int) -> str:
        r = self.regions[name]
        return self._prefix(r) + cell_name(*r.at(i, j))

    def mine(self, i: int, j: int) -> str:
        """Cell (i, j) of the node being written (a formula reading an earlier cell of its own)."""
        return self.cell(self.node, i, j)

    def span(self, name: str, rows: tuple[int, int], cols: tuple[int, int]) -> str:
        """Cells [r0, r1) x [c0, c1) of a node as "A1:B2" (one cell as "A1")."""
        r = self.regions[name]
        first = cell_name(*r.at(rows[0], cols[0]))
        last = cell_name(*r.at(rows[1] - 1, cols[1] - 1))
        return self._prefix(r) + (first if first == last else f"{first}:{last}")

    def row(self, name: str, i: int) -> str:
        return self.span(name, (i, i + 1), (0, self.shape(name)[1]))

    def col(self, name: str, j: int) -> str:
        return self.span(name, (0, self.shape(name)[0]), (j, j + 1))

    def index(self, name: str, i: str, j: str) -> str:
        """INDEX into a whole node by the tensor's 1-based row and column (formula texts)."""
        if self.regions[name].transposed:
            i, j = j, i
        return f"INDEX({self.all(name)},{i},{j})"

    def all(self, name: str) -> str:
        if name in self.names:
            return self.names[name]
        return self.span(name, (0, self.shape(name)[0]), (0, self.shape(name)[1]))
