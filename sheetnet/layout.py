"""Place every tensor of the graph exactly once on a sheet.

A block is a title line, a line of column labels, then the tensor's rows, each led by its row
label in the column left of the data.  Sheets flow "down" (blocks stacked, one blank line apart;
a ``beside`` block sits to the right of the one before, e.g. a bias beside its weights) or
"right" (blocks side by side, sharing rows: the Walk sheet's x | z | a | ... | y columns).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import SheetnetError
from .ir import graph as ir

MAX_ROWS, MAX_COLS = 1_048_576, 16_384  # the .xlsx sheet limits (Excel and LibreOffice 7.4)
MAX_FORMULA_CHARS = 8_192  # Excel's limit on one formula's text; LibreOffice's is larger
FIRST_ROW = 2  # row 0 holds the sheet's heading, row 1 stays blank


@dataclass(frozen=True)
class Region:
    """A tensor's cells: 0-based top-left (row, col) and its (rows, cols) shape on ``sheet``."""
    sheet: str
    row: int
    col: int
    nrows: int
    ncols: int

    def sub(self, rows: tuple[int, int], cols: tuple[int, int]) -> "Region":
        return Region(self.sheet, self.row + rows[0], self.col + cols[0],
                      rows[1] - rows[0], cols[1] - cols[0])


@dataclass
class Plan:
    """Where each node's data sits, plus the text cells around it: (sheet, row, col) -> text."""
    regions: dict[str, Region] = field(default_factory=dict)
    titles: dict[tuple[str, int, int], str] = field(default_factory=dict)
    labels: dict[tuple[str, int, int], str] = field(default_factory=dict)


def plan(graph: ir.Graph) -> Plan:
    """Lay out every node of ``graph``; Views get a sub-region of their source, no cells.

    Raises:
        SheetnetError: a tensor does not fit within the sheet limits.
    """
    p = Plan()
    cursors: dict[str, dict] = {}
    for node in sorted(graph.nodes.values(), key=lambda n: n.order):
        if isinstance(node.op, ir.View):
            p.regions[node.name] = p.regions[node.op.x].sub(node.op.rows, node.op.cols)
            continue
        cur = cursors.setdefault(node.sheet, {"row": FIRST_ROW, "col": 0, "prev": None})
        if graph.sheet_flow.get(node.sheet, "down") == "right":
            top, left = FIRST_ROW, cur["col"]
        elif node.beside and cur["prev"] is not None:
            top, left = cur["prev"].row - 2, cur["prev"].col + cur["prev"].ncols
        else:
            top, left = cur["row"], 0
        has_row_labels = node.row_labels is not None or not (node.beside or _flows_right(graph, node))
        data_col = left + 1 if has_row_labels else left
        region = Region(node.sheet, top + 2, data_col, *node.shape)
        _check_limits(node, region)
        p.regions[node.name] = region
        _decorate(p, node, region, top, left, has_row_labels)
        cur["prev"] = region
        cur["row"] = max(cur["row"], region.row + region.nrows + 1)
        cur["col"] = region.col + region.ncols + 1
    return p


def _flows_right(graph: ir.Graph, node: ir.Node) -> bool:
    return graph.sheet_flow.get(node.sheet, "down") == "right"


def _decorate(p: Plan, node: ir.Node, region: Region, top: int, left: int, row_labels: bool):
    if node.title or not node.beside:
        p.titles[(node.sheet, top, left)] = node.title or node.name
    for j, text in enumerate(node.col_labels or []):
        p.labels[(node.sheet, top + 1, region.col + j)] = text
    if row_labels:
        texts = node.row_labels or ([""] if region.nrows == 1 else
                                    [str(i) for i in range(region.nrows)])
        for i, text in enumerate(texts):
            if text:
                p.labels[(node.sheet, region.row + i, left)] = text


def _check_limits(node: ir.Node, region: Region) -> None:
    if region.row + region.nrows > MAX_ROWS or region.col + region.ncols > MAX_COLS:
        raise SheetnetError(
            f"tensor {node.name} {node.shape} does not fit on sheet {node.sheet!r} "
            f"(sheets hold {MAX_ROWS:,} rows x {MAX_COLS:,} columns)")
