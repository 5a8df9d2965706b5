"""Generation in the sheet (issue 16): each position after the prompt takes as its input the id
drawn from the previous position's logits, so one recalculation continues the prompt.

    NextInput    the id each position reads: the prompt's, then the draw of the row above
    DrawIndex    which u of the MINSTD stream (ops/minstd.py) a position's draw uses
    ShiftRows    the steps as a table: row j is position max(n, 1) - 1 + j (step j + 1)
    JoinText     cells joined into one text (the prompt and its continuation)
    RowTopIds, RowLargest   each row's top candidates and their values
    LargestSoftmax, TableAt the candidates' probability under the model (T = 1), their tokens

n is the prompt's length (a (1, 1) cell); a prompt of n tokens draws its first new token at
position max(n, 1) - 1, so that position's draw is step 1, u_1.  Every formula of a position row
reads only rows at or before its own: a later row reads earlier outputs, so a read of a whole
column would be a circular reference.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Example, Op, PerCellOnly, Ref, as_array_text, register
from .select import kth_largest_id
from .text import blank, cell_text

_IDS = np.array([[5.0], [2.0], [0.0], [0.0]])     # (T=4, 1) the prompt's ids, then pads
_PICKS = np.array([[1.0], [3.0], [4.0], [2.0]])   # (4, 1) each position's draw
_N = np.array([[2.0]])                            # a prompt of 2 tokens
_TYPED = np.array([[5.0], [2.0], [None], [None]], dtype=object)  # (4, 1) as typed: 2, then blanks
_ROWS = np.array([[0.5, 2.0, -1.0, 0.5], [3.0, 3.0, 1.0, -2.0], [0.0, 1.0, 2.0, 3.0]])


def _n(v, n: Ref) -> int:
    # the prompt's length as the draws count it: an empty prompt draws from position 0
    return max(int(np.asarray(v[n], dtype=np.float64)[0, 0]), 1)


@register
@dataclass(frozen=True)
class NextInput(Op):
    """(T, 1): position i's input id: the prompt's where the position's own ``typed`` cell is
    filled, else (blank, "") the id drawn at position i - 1 (``picks``, a node computed later from
    these very ids: the graph's one forward edge, ``LATER``; the reference interpreter iterates
    until the ids settle).  Position 0 always reads the prompt (nothing is drawn before it).

    Each row reads its own cells and the row above only, never the prompt's length: an edit of
    one prompt cell dirties the positions from there on, not the whole model."""
    INPUTS = ("prompt", "typed", "picks")
    LATER = ("picks",)
    prompt: Ref
    typed: Ref
    picks: Ref
    array = PerCellOnly("each row reads the draw of the row above it: a chain of cells")

    def reference(self, v):
        ids = np.asarray(v[self.prompt], dtype=object)[:, 0].copy()
        typed = np.asarray(v[self.typed], dtype=object)[:, 0]
        picks = v[self.picks] if self.picks in v else None
        if picks is not None:  # before the first pass computes them the ids are the prompt's
            for i in range(1, len(ids)):
                if blank(typed[i]):
                    ids[i] = np.asarray(picks, dtype=object)[i - 1, 0]
        numbers = all(isinstance(i, float) for i in ids)
        return np.array(ids, dtype=np.float64 if numbers else object)[:, None]

    def formula(self, r, i, j):
        own = r.cell(self.prompt, i, 0)
        if i == 0:
            return own
        return f'IF({r.cell(self.typed, i, 0)}="",{r.cell(self.picks, i - 1, 0)},{own})'

    @staticmethod
    def example():
        return Example({"prompt": _IDS, "typed": _TYPED, "picks": _PICKS},
                       NextInput("prompt", "typed", "picks"))


@register
@dataclass(frozen=True)
class DrawIndex(Op):
    """(T, 1): the 0-based index into the stream of the u position i draws with: the count of
    blank ``typed`` cells at positions 1..i (a running count, so each row reads its own cell and
    the row above).  For a prompt of n >= 1 tokens that is max(i + 1 - n, 0): step 1, drawn at
    the prompt's last position, uses u_1; the draws before it feed nothing."""
    INPUTS = ("typed",)
    typed: Ref
    array = PerCellOnly("a running count: each row adds its own cell to the row above")

    def reference(self, v):
        typed = np.asarray(v[self.typed], dtype=object)[:, 0]
        blanks = [0.0] + [float(blank(c)) for c in typed[1:]]
        return np.cumsum(blanks)[:, None]

    def formula(self, r, i, j):
        if i == 0:
            return "0"
        return f'{r.mine(i - 1, 0)}+IF({r.cell(self.typed, i, 0)}="",1,0)'

    @staticmethod
    def example():
        return Example({"typed": _TYPED}, DrawIndex("typed"))


@register
@dataclass(frozen=True)
class ShiftRows(Op):
    """(T - 1, F): row j is row max(n, 1) - 1 + j of x (step j + 1's draw), "" past x's end."""
    INPUTS = ("x", "n")
    x: Ref
    n: Ref
    array = PerCellOnly("INDEX by the prompt's length: one cell at a time")

    def reference(self, v):
        x, n = np.asarray(v[self.x], dtype=object), _n(v, self.n)
        rows = [x[n - 1 + j] if n - 1 + j < len(x) else [""] * x.shape[1]
                for j in range(len(x) - 1)]
        out = np.array(rows, dtype=object).reshape(len(x) - 1, x.shape[1])
        numbers = all(isinstance(c, float) for c in out.flat)
        return out.astype(np.float64) if numbers else out

    def formula(self, r, i, j):
        # display only: no position row reads these cells, so INDEX may span the whole node
        t, n = r.shape(self.x)[0], f"MAX({r.cell(self.n, 0, 0)},1)"
        return f'IF({n}+{i}>{t},"",{r.index(self.x, f"{n}+{i}", j + 1)})'

    @staticmethod
    def example():
        return Example({"x": _PICKS, "n": np.array([[1.0]])}, ShiftRows("x", "n"),
                       lambda T, x, n: x[:-1])


@register
@dataclass(frozen=True)
class JoinText(Op):
    """(T, 1): the text of rows 0..i of a (T, 1) node joined, row i adding its cell to the row
    above (so each formula stays short however long the context), from row ``n`` on (the cell n;
    None: every row), ``sep`` between two cells; the last row is the whole text."""
    INPUTS = ("x", "n")
    x: Ref
    n: Ref | None = None
    sep: str = ""
    array = PerCellOnly("each row adds one cell to the text of the row above it")

    def reference(self, v):
        first = 0 if self.n is None else int(np.asarray(v[self.n], dtype=np.float64)[0, 0])
        out, text = [], ""
        for i, c in enumerate(np.asarray(v[self.x], dtype=object)[:, 0]):
            if i >= first:
                text += (self.sep if text else "") + cell_text(c)
            out.append(text)
        return np.array(out, dtype=object)[:, None]

    def formula(self, r, i, j):
        cell = r.cell(self.x, i, 0)
        above = '""' if i == 0 else r.mine(i - 1, 0)  # "" first: an id alone stays text
        piece = f'IF({above}="","","{self.sep}")&{cell}' if self.sep else cell
        piece = piece if self.n is None else f'IF({r.cell(self.n, 0, 0)}<={i},{piece},"")'
        return f"{above}&{piece}"

    @staticmethod
    def example():
        words = np.array([["a"], ["b c"], ["d"]], dtype=object)
        return Example({"x": words, "n": np.array([[1.0]])}, JoinText("x", "n", " "))


def _ranked_ids(row: np.ndarray, k: int) -> list[float]:
    # largest first, equal values in column order (LargestIds' order)
    return np.argsort(-row, kind="stable")[:k].astype(np.float64).tolist()


@register
@dataclass(frozen=True)
class RowTopIds(Op):
    """(N, k): the 0-based columns of each row's k largest values, each column once (equal
    values in column order, as LargestIds)."""
    INPUTS = ("x",)
    x: Ref
    k: int
    array = PerCellOnly("SMALL/LARGE by rank: a cell formula per rank already")

    def reference(self, v):
        x = np.asarray(v[self.x], dtype=np.float64)
        return np.array([_ranked_ids(row, self.k) for row in x])

    @as_array_text
    def formula(self, r, i, j):
        # LargestIds' formula on row i alone (see select.LargestIds for the ties)
        return kth_largest_id(r.row(self.x, i), r.cell(self.x, i, 0), r.shape(self.x)[1], j + 1)

    @staticmethod
    def example():
        return Example({"x": _ROWS}, RowTopIds("x", 3),
                       lambda T, x: T.sort(-x, dim=1, stable=True).indices[:, :3].double())


@register
@dataclass(frozen=True)
class RowLargest(Op):
    """(N, k): each row's k largest values, largest first."""
    INPUTS = ("x",)
    x: Ref
    k: int
    array = PerCellOnly("LARGE by rank: a cell formula per rank already")

    def reference(self, v):
        return -np.sort(-np.asarray(v[self.x], dtype=np.float64), axis=1)[:, :self.k]

    def formula(self, r, i, j):
        return f"LARGE({r.row(self.x, i)},{j + 1})"

    @staticmethod
    def example():
        return Example({"x": _ROWS}, RowLargest("x", 2), lambda T, x: x.topk(2, dim=1).values)


@register
@dataclass(frozen=True)
class LargestSoftmax(Op):
    """(N, k): the model's own probability (softmax of the row at temperature 1, over every id)
    of each row's k largest values: exp(k-th largest - max) / sum, with ``max`` (N, 1) and
    ``sum`` (N, 1) = sum of exp(x - max).  The steps table shows these beside the rule's p, so
    a greedy draw (p = 1 under the rule) still shows how sure the model was."""
    INPUTS = ("x", "max", "sum")
    x: Ref
    max: Ref
    sum: Ref
    k: int
    array = PerCellOnly("LARGE by rank: a cell formula per rank already")

    def reference(self, v):
        x = np.asarray(v[self.x], dtype=np.float64)
        top = -np.sort(-x, axis=1)[:, :self.k]
        return np.exp(top - v[self.max]) / v[self.sum]

    def formula(self, r, i, j):
        return (f"EXP(LARGE({r.row(self.x, i)},{j + 1})-{r.cell(self.max, i, 0)})"
                f"/{r.cell(self.sum, i, 0)}")

    @staticmethod
    def example():
        m = _ROWS.max(axis=1, keepdims=True)
        s = np.exp(_ROWS - m).sum(axis=1, keepdims=True)
        return Example({"x": _ROWS, "max": m, "sum": s}, LargestSoftmax("x", "max", "sum", 2),
                       lambda T, x, m, s: T.softmax(x, 1).topk(2, dim=1).values)


@register
@dataclass(frozen=True)
class TableAt(Op):
    """(N, k): the (V, 1) ``table``'s row ids[i, j] (0-based) for every cell of ``ids`` (N, k):
    the top candidates' tokens beside their ids."""
    INPUTS = ("table", "ids")
    table: Ref
    ids: Ref
    array = PerCellOnly("INDEX by a computed id: one cell at a time")

    def reference(self, v):
        table = np.asarray(v[self.table], dtype=object)[:, 0]
        ids = np.asarray(v[self.ids], dtype=np.float64).astype(int)
        return table[ids]

    def formula(self, r, i, j):
        return r.index(self.table, f"{r.cell(self.ids, i, j)}+1", 1)

    @staticmethod
    def example():
        table = np.array([["a"], ["b c"], ["="], ["d"]], dtype=object)
        return Example({"table": table, "ids": np.array([[2.0, 0.0], [3.0, 1.0]])},
                       TableAt("table", "ids"))


@register
@dataclass(frozen=True)
class CausalMatMul(Op):
    """(T, M) = a (T, T) @ b (T, M) where a is causal (0 above the diagonal: attention
    probabilities): row i reads a's first i + 1 cells and b's first i + 1 rows only, so no
    position reads a later one (MatMul's whole column of b would be a circular reference once
    later positions read earlier outputs)."""
    INPUTS = ("a", "b")
    a: Ref
    b: Ref
    array = PerCellOnly("row by row only: see row_array")

    def reference(self, v):
        return np.tril(np.asarray(v[self.a], dtype=np.float64)) @ v[self.b]

    def formula(self, r, i, j):
        return f"MMULT({r.span(self.a, (i, i + 1), (0, i + 1))},{r.span(self.b, (0, i + 1), (j, j + 1))})"

    def row_array(self, r, i):
        """Row i as one array formula over its whole width (``--style arrays``)."""
        return f"MMULT({r.span(self.a, (i, i + 1), (0, i + 1))},{r.span(self.b, (0, i + 1), (0, r.shape(self.b)[1]))})"

    @staticmethod
    def example():
        a = np.tril(np.abs(_ROWS[:, :3]))  # (3, 3) causal
        return Example({"a": a, "b": _ROWS}, CausalMatMul("a", "b"), lambda T, a, b: a.tril() @ b)
