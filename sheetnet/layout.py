"""Place every tensor of the graph exactly once on a sheet.

A block is a title line, a line of column labels, then the tensor's rows, each led by its row
label in the column left of the data.  Sheets flow "down" (blocks stacked, one blank line apart;
a ``beside`` block sits to the right of the one before, e.g. a bias beside its weights) or
"right" (blocks side by side, sharing rows: the Walk sheet's x | z | a | ... | y columns).

A tensor wider than a sheet (a GPT-2 logits row has 50,257 columns; a sheet 16,384) is laid out
transposed: its columns run down the sheet.  That is the only place this is decided: a Region
knows which way its tensor lies and maps the tensor's (i, j) to a cell (``Region.at``), so the
formula emitters, which refer to cells through ``emit.a1.Refs``, need no special case.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .a1 import MAX_CELL_CHARS, MAX_COLS, MAX_FORMULA_CHARS, MAX_ROWS  # noqa: F401 (re-exported)
from .errors import SheetnetError
from .ir import graph as ir

FIRST_ROW = 2  # row 0 holds the sheet's heading, row 1 stays blank


@dataclass(frozen=True)
class Region:
    """A tensor's cells: 0-based top-left (row, col) and the (nrows, ncols) it covers on ``sheet``.

    ``transposed``: the tensor's element (i, j) sits at sheet row j, column i (so ``shape``, the
    tensor's, is (ncols, nrows)).
    """
    sheet: str
    row: int
    col: int
    nrows: int
    ncols: int
    transposed: bool = False

    @property
    def shape(self) -> tuple[int, int]:
        """The tensor's (rows, cols), whichever way it lies on the sheet."""
        return (self.ncols, self.nrows) if self.transposed else (self.nrows, self.ncols)

    def at(self, i: int, j: int) -> tuple[int, int]:
        """The sheet (row, col) of the tensor's element (i, j)."""
        return (self.row + j, self.col + i) if self.transposed else (self.row + i, self.col + j)

    def sub(self, rows: tuple[int, int], cols: tuple[int, int]) -> "Region":
        """Tensor rows [r0, r1) x cols [c0, c1), lying as this region does."""
        if self.transposed:
            rows, cols = cols, rows
        return Region(self.sheet, self.row + rows[0], self.col + cols[0],
                      rows[1] - rows[0], cols[1] - cols[0], self.transposed)


@dataclass(frozen=True)
class Labels:
    """A line of label cells on ``sheet`` from (row, col): along the row, or down the column when
    ``down``; ``texts[k]`` at step k, blank texts left empty.  ``texts`` is the node's own list,
    not a copy: a GPT-2 vocabulary labels four tensors of 50,257 rows, and a dict entry per label
    cell held ~85 MB there."""
    sheet: str
    row: int
    col: int
    texts: Sequence[str]
    down: bool

    def at(self, row: int, col: int) -> str | None:
        """The label at sheet (row, col), None where this line has no cell."""
        k, across = (row - self.row, col - self.col) if self.down else (col - self.col,
                                                                          row - self.row)
        return self.texts[k] if across == 0 and 0 <= k < len(self.texts) else None


class Numbers(Sequence):
    """"0", "1", ... "n-1", made when read: the row labels of a tensor without names for them."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, k: int) -> str:
        if not 0 <= k < self.n:
            raise IndexError(k)
        return str(k)


@dataclass
class Plan:
    """Where each node's data sits, plus the text around it: titles ((sheet, row, col) -> text)
    and lines of labels."""
    regions: dict[str, Region] = field(default_factory=dict)
    titles: dict[tuple[str, int, int], str] = field(default_factory=dict)
    labels: list[Labels] = field(default_factory=list)

    def label_at(self, sheet: str, row: int, col: int) -> str | None:
        """The label text at a cell, None where there is none (a slow scan: for tests and tools)."""
        for line in self.labels:
            text = line.at(row, col) if line.sheet == sheet else None
            if text is not None:
                return text
        return None


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
        rows, cols = node.shape
        # wider than the sheet and taller than wide: lay it down the rows instead
        transposed = left + 1 + cols > MAX_COLS and cols > rows
        row_texts, col_texts = ((node.col_labels, node.row_labels) if transposed else
                                (node.row_labels, node.col_labels))
        has_row_labels = row_texts is not None or not (node.beside or _flows_right(graph, node))
        data_col = left + 1 if has_row_labels else left
        region = Region(node.sheet, top + 2, data_col, *((cols, rows) if transposed else node.shape),
                        transposed)
        _check_limits(node, region)
        p.regions[node.name] = region
        _decorate(p, node, region, top, left, has_row_labels, row_texts, col_texts)
        cur["prev"] = region
        cur["row"] = max(cur["row"], region.row + region.nrows + 1)
        cur["col"] = region.col + region.ncols + 1
    return p


def _flows_right(graph: ir.Graph, node: ir.Node) -> bool:
    return graph.sheet_flow.get(node.sheet, "down") == "right"


def _decorate(p: Plan, node: ir.Node, region: Region, top: int, left: int, row_labels: bool,
              row_texts, col_texts):
    # row_texts / col_texts: the labels of the sheet's rows and columns (swapped when transposed)
    if node.title or not node.beside:
        title = node.title or node.name
        if region.transposed:
            title += (f" [laid out transposed: its {region.nrows:,} columns run down the rows, "
                      f"more than a sheet's {MAX_COLS:,} columns]")
        p.titles[(node.sheet, top, left)] = title
    if col_texts:
        p.labels.append(Labels(node.sheet, top + 1, region.col, col_texts, down=False))
    if row_labels and (row_texts or region.nrows > 1):
        p.labels.append(Labels(node.sheet, region.row, left, row_texts or Numbers(region.nrows),
                               down=True))


def _check_limits(node: ir.Node, region: Region) -> None:
    if region.row + region.nrows > MAX_ROWS or region.col + region.ncols > MAX_COLS:
        rows, cols = node.shape
        raise SheetnetError(
            f"tensor {node.name} ({rows:,} x {cols:,}) does not fit on sheet {node.sheet!r}: it "
            f"would need {region.row + region.nrows:,} rows and {region.col + region.ncols:,} "
            f"columns{' (laid out transposed)' if region.transposed else ''}; a sheet holds "
            f"{MAX_ROWS:,} rows x {MAX_COLS:,} columns")
