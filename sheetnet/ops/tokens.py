"""Token ids typed into cells (a GPT without a character vocabulary): checked, counted, shown."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Example, Op, PerCellOnly, Ref, as_array_text, register
from .text import _numbers_or_text, blank, cell_text, message

_TEXT = PerCellOnly("typed ids and messages: each cell's formula checks one cell")
TYPED = np.array([[2.0], [None], [7.0], [1.5], ["x"], [None]], dtype=object)  # (6, 1) as typed


@register
@dataclass(frozen=True)
class FilledCount(Op):
    """(1, 1): how many cells of x are not blank (the prompt's length in typed token ids)."""
    INPUTS = ("x",)
    x: Ref
    array = _TEXT

    def reference(self, v):
        return np.array([[float(sum(not blank(c) for c in v[self.x].flat))]])

    @as_array_text
    def formula(self, r, i, j):
        # a blank cell, or one that computes to "", is not filled
        return f'SUMPRODUCT(({r.all(self.x)}<>"")*1)'

    @staticmethod
    def example():
        return Example({"x": TYPED}, FilledCount("x"))


def checked_id(value, i: int, n: int, size: int, pad: int):
    """One typed id cell as the sheet checks it: a float id, or the message text."""
    if blank(value):
        return CheckedIds.GAP.format(i) if i < n else float(pad)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if number and 0 <= value < size and float(value).is_integer():
        return float(value)
    return CheckedIds.OUTSIDE.format(cell_text(value), size - 1)


@register
@dataclass(frozen=True)
class CheckedIds(Op):
    """(T, 1): the ids typed in x (T, 1), each a whole number in 0..size-1 or a message; a blank
    cell is a pad (``pad``): past the prompt, generation feeds the draws in there.

    Each cell reads its own typed cell only (not the prompt's length), so an edit stays local; a
    blank before the last filled cell, a gap, is IdsNote's message.
    """
    OUTSIDE = "token id {} is outside the vocabulary (ids 0..{})"   # messages (not fields)
    GAP = "t{} is blank: type the ids from t0 on, without gaps"
    INPUTS = ("x",)
    x: Ref
    size: int
    pad: int = 0
    array = _TEXT

    def reference(self, v):
        return _numbers_or_text([checked_id(c, i, 0, self.size, self.pad)
                                 for i, c in enumerate(v[self.x][:, 0])])

    def formula(self, r, i, j):
        # ISNUMBER before the range test: a text cell would make INT() an error, not a message
        x = r.cell(self.x, i, 0)
        out = message(self.OUTSIDE.format("{}", self.size - 1), x)
        return (f'IF({x}="",{self.pad},IF(ISNUMBER({x}),'
                f"IF(AND({x}>=0,{x}<{self.size},{x}=INT({x})),{x},{out}),{out}))")

    @staticmethod
    def example():
        return Example({"x": TYPED}, CheckedIds("x", 5, 3))


@register
@dataclass(frozen=True)
class TokenText(Op):
    """(T, 1): the (V, 1) text ``table``'s row ``ids[i]`` at the prompt's n positions, "" after."""
    INPUTS = ("table", "ids", "n")
    table: Ref
    ids: Ref
    n: Ref
    array = _TEXT

    def reference(self, v):
        n, table = int(v[self.n][0, 0]), np.asarray(v[self.table], dtype=object)
        return np.array([[table[int(k), 0] if i < n else ""]
                         for i, k in enumerate(v[self.ids][:, 0])], dtype=object)

    def formula(self, r, i, j):
        return 'IF({n}>{i},{text},"")'.format(
            n=r.cell(self.n, 0, 0), i=i, text=r.index(self.table, f"{r.cell(self.ids, i, 0)}+1", 1))

    @staticmethod
    def example():
        table = np.array([["he"], ["llo"], [" w"]], dtype=object)
        return Example({"table": table, "ids": np.array([[1.0], [2.0], [0.0]]),
                        "n": np.array([[2.0]])}, TokenText("table", "ids", "n"))


@register
@dataclass(frozen=True)
class IdsNote(Op):
    """(1, 1) text: "ok", or what to fix in the typed ids: an id outside the vocabulary (the id
    column says which), a gap (a blank cell before a filled one), or nothing typed."""
    BAD = "a token id is not valid: see the id column"
    GAP = "a blank cell before the last typed id: type the ids from t0 on, without gaps"
    EMPTY = "type token ids in the yellow cells, from t0 on"
    INPUTS = ("ids", "typed")
    ids: Ref
    typed: Ref
    array = _TEXT

    def reference(self, v):
        typed = [not blank(c) for c in v[self.typed][:, 0]]
        if any(isinstance(i, str) for i in v[self.ids].flat):
            return np.array([[self.BAD]], dtype=object)
        gap = any(b and not a for a, b in zip(typed, typed[1:]))  # blank, then filled
        return np.array([[self.GAP if gap else "ok" if any(typed) else self.EMPTY]], dtype=object)

    @as_array_text  # comparisons over ranges inside SUMPRODUCT: see ArrayText
    def formula(self, r, i, j):
        # COUNT, not SUMPRODUCT(ISTEXT(...)) (0 in IronCalc): an id cell holds a number or a message
        t = r.shape(self.typed)[0]
        gap = "0" if t < 2 else 'SUMPRODUCT(({}="")*({}<>""))'.format(
            r.span(self.typed, (0, t - 1), (0, 1)), r.span(self.typed, (1, t), (0, 1)))
        return ('IF(COUNT({ids})<{size},"{bad}",IF({gap}>0,"{gapm}",'
                'IF(SUMPRODUCT(({typed}<>"")*1)=0,"{empty}","ok")))').format(
            ids=r.all(self.ids), size=r.shape(self.ids)[0] * r.shape(self.ids)[1], gap=gap,
            typed=r.all(self.typed), bad=self.BAD, gapm=self.GAP, empty=self.EMPTY)

    @staticmethod
    def example():
        return Example({"ids": np.array([[3.0], [1.0], [0.0]]),
                        "typed": np.array([[3.0], [None], [1.0]], dtype=object)},
                       IdsNote("ids", "typed"))
