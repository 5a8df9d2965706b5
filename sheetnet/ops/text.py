"""Text in the sheet: a typed prompt becomes characters and token ids, a picked word its id, and
an id a row of a table (an embedding lookup).

Every message a cell may show is an attribute of its op, so the formula and the reference say
exactly the same words.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Example, Op, PerCellOnly, Ref, as_array_text, register

_TEXT = PerCellOnly("text: each cell's formula reads one character or word")
_CHARS = np.array([["a"], ["b"], ["A"]], dtype=object)       # (3, 1) a vocabulary column


def _text(cells) -> str:
    # a prompt cell read back from the workbook: an empty cell comes back as None
    value = np.asarray(cells, dtype=object).flat[0]
    return "" if value is None else str(value)


def blank(value) -> bool:
    """A cell as engines read it back that holds nothing: None (empty) or "" (a formula's "")."""
    return value is None or (isinstance(value, str) and value == "")


def cell_text(value) -> str:
    """A cell as EXACT reads it: blank -> "", a whole number without ".0", text as it is."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def message(template: str, cell: str) -> str:
    """A formula string that shows ``template`` with the cell's text in place of {}."""
    return '"' + template.replace('"', '""').format('"&' + cell + '&"') + '"'


def _numbers_or_text(out: list) -> np.ndarray:
    # ids are float64 while every cell holds one; a message anywhere makes the column text
    numbers = all(isinstance(x, float) for x in out)
    return np.array(out, dtype=np.float64 if numbers else object)[:, None]


@register
@dataclass(frozen=True)
class PromptLength(Op):
    """(1, 1): how many characters of ``text`` the sheet reads, min(len(text), cap)."""
    INPUTS = ("text",)
    text: Ref
    cap: int
    array = _TEXT

    def reference(self, v):
        return np.array([[min(len(_text(v[self.text])), self.cap)]], dtype=np.float64)

    def formula(self, r, i, j):
        return f"MIN(LEN({r.cell(self.text, 0, 0)}),{self.cap})"

    @staticmethod
    def example():
        return Example({"text": np.array([["abAb"]], dtype=object)}, PromptLength("text", 3))


@register
@dataclass(frozen=True)
class Chars(Op):
    """(count, 1): the last ``n`` characters of ``text``, one per row; "" past its end."""
    INPUTS = ("text", "n")
    text: Ref
    n: Ref
    count: int
    array = _TEXT

    def reference(self, v):
        text, n = _text(v[self.text]), int(v[self.n][0, 0])
        window = text[len(text) - n:] if n else ""
        return np.array([[window[i] if i < n else ""] for i in range(self.count)], dtype=object)

    def formula(self, r, i, j):
        # the last n characters: start n-1 characters before the end; MID past the end gives ""
        t = r.cell(self.text, 0, 0)
        return f"MID({t},LEN({t})-{r.cell(self.n, 0, 0)}+{i + 1},1)"

    @staticmethod
    def example():
        return Example({"text": np.array([["abAb"]], dtype=object), "n": np.array([[3.0]])},
                       Chars("text", "n", 4))


@register
@dataclass(frozen=True)
class TokenId(Op):
    """Token ids: the first row of the vocabulary's ``chars`` column holding exactly ``char``
    ('a' is not 'A'), 0-based.  An empty ``char`` (past the prompt) gets ``pad``; an unknown one
    the text "not in vocab: 'Ω'"."""
    UNKNOWN = "not in vocab: '{}'"  # what an id cell says for a character outside the vocabulary
    INPUTS = ("char", "chars")
    char: Ref
    chars: Ref
    pad: int = 0
    array = _TEXT

    def reference(self, v):
        first = {}
        for i, ch in enumerate(v[self.chars][:, 0]):
            first.setdefault(ch, i)  # a repeated character: its first row, as the sheet's MIN finds
        return _numbers_or_text([float(self.pad) if c in ("", None) else
                                 float(first[c]) if c in first else self.UNKNOWN.format(c)
                                 for c in v[self.char][:, 0]])

    @as_array_text
    def formula(self, r, i, j):
        # EXACT tells 'a' from 'A' (MATCH would not).  SUMPRODUCT evaluates EXACT and ROW over the
        # vocabulary column without an array formula (Excel 2010+), and MIN finds the first
        # matching row: (row - n) where EXACT holds, 0 elsewhere, so MIN + n is the id, or n when
        # none matched
        c, chars, n = r.cell(self.char, i, 0), r.all(self.chars), r.shape(self.chars)[0]
        rows = f"ROW({chars})-ROW({r.cell(self.chars, 0, 0)})"  # 0, 1, ... down the column
        found = f"(SUMPRODUCT(MIN(({rows}-{n})*EXACT({c},{chars})))+{n})"
        return (f'IF({c}="",{self.pad},IF({found}<{n},{found},'
                f'{message(self.UNKNOWN, c)}))')

    @staticmethod
    def example():
        typed = np.array([["A"], ["z"], [""], ["a"]], dtype=object)
        return Example({"char": typed, "chars": _CHARS}, TokenId("char", "chars", 1))


@register
@dataclass(frozen=True)
class PromptNote(Op):
    """(1, 1) text: "ok", or why the sheet reads something other than the whole prompt."""
    INPUTS = ("text", "ids")
    text: Ref
    ids: Ref
    cap: int
    array = _TEXT

    def reference(self, v):
        length, ids = len(_text(v[self.text])), v[self.ids]
        if any(isinstance(i, str) for i in ids.flat):
            note = "not in vocab: see the id column"
        elif length > self.cap:
            note = (f"the prompt has {length} characters; the context holds {self.cap}: "
                    f"the sheet reads the last {self.cap}")
        else:
            note = "type a prompt" if length == 0 else "ok"
        return np.array([[note]], dtype=object)

    def formula(self, r, i, j):
        t, cap = r.cell(self.text, 0, 0), self.cap
        too_long = (f'"the prompt has "&LEN({t})&" characters; the context holds {cap}: '
                    f'the sheet reads the last {cap}"')
        # COUNT, not SUMPRODUCT(ISTEXT(...)) (0 in IronCalc): an id cell holds a number or a message
        ids, n = r.all(self.ids), r.shape(self.ids)[0] * r.shape(self.ids)[1]
        return (f'IF(COUNT({ids})<{n},"not in vocab: see the id column",'
                f'IF(LEN({t})>{cap},{too_long},IF(LEN({t})=0,"type a prompt","ok")))')

    @staticmethod
    def example():
        return Example({"text": np.array([["abAb"]], dtype=object), "ids": np.zeros((3, 1))},
                       PromptNote("text", "ids", 3))


@register
@dataclass(frozen=True)
class Lookup(Op):
    """out[i, :] = table[ids[i], :]: an embedding lookup by 0-based id (also of text tables)."""
    INPUTS = ("table", "ids")
    table: Ref
    ids: Ref
    array = PerCellOnly("INDEX by a computed id: one cell at a time")

    def derivative(self, b, out, grad):
        # out[i] = table[ids[i]]: each table row gets the gradients of the rows that read it
        from .grad import RowsAt
        if not b.wants(self.table):
            return []
        rows = b.shape(self.table)[0]
        return [(self.table, b.add(RowsAt(grad, self.ids, rows), b.shape(self.table)))]

    def reference(self, v):
        rows = np.asarray(v[self.ids], dtype=np.float64)[:, 0].astype(int)
        return np.asarray(v[self.table])[rows]

    def formula(self, r, i, j):
        return r.index(self.table, f"{r.cell(self.ids, i, 0)}+1", j + 1)

    @staticmethod
    def example():
        table = np.array([[0.5, -1.0], [2.0, 3.25], [-4.0, 0.125]])  # (V=3, 2)
        return Example({"table": table, "ids": np.array([[2.0], [0.0], [2.0]])},
                       Lookup("table", "ids"), lambda T, table, ids: table[ids[:, 0].long()])


@register
@dataclass(frozen=True)
class WordId(Op):
    """(N, 1): the id beside each word's exact (case-sensitive, no wildcards) match in ``words``.

    MATCH and VLOOKUP ignore case and read * ? ~ as wildcards, so the sheet compares with EXACT.
    A word not in the vocabulary (or blank) gets a message text instead of an id.
    """
    MISSING = "not in the vocabulary: '{}'"   # messages shown in the id cell (not fields)
    TWICE = "in the vocabulary more than once: '{}'"
    BLANK = "pick a word from the list"
    INPUTS = ("word", "words", "ids")
    word: Ref
    words: Ref
    ids: Ref
    array = _TEXT

    def reference(self, v):
        words = [cell_text(w) for w in np.asarray(v[self.words], dtype=object)[:, 0]]
        ids = np.asarray(v[self.ids], dtype=np.float64)[:, 0]
        out = []
        for value in np.asarray(v[self.word], dtype=object)[:, 0]:
            word = cell_text(value)
            hits = [i for i, w in enumerate(words) if w == word]
            out.append(float(ids[hits[0]]) if len(hits) == 1 else
                       self.TWICE.format(word) if hits else
                       self.BLANK if word == "" else self.MISSING.format(word))
        return _numbers_or_text(out)

    @as_array_text
    def formula(self, r, i, j):
        # EXACT, not MATCH: MATCH ignores case ("Hello" = "hello") and reads * ? ~ as wildcards
        w, words, ids = r.cell(self.word, i, 0), r.all(self.words), r.all(self.ids)
        hits = f"SUMPRODUCT(EXACT({words},{w})*1)"
        return (f"IF({hits}=1,SUMPRODUCT(EXACT({words},{w})*{ids}),"
                f"IF({hits}>1,{message(self.TWICE, w)},"
                f"IF({w}=\"\",{message(self.BLANK, w)},{message(self.MISSING, w)})))")

    @staticmethod
    def example():
        words = np.array([["cat"], ["Dog"], ["a*"], ["cat"]], dtype=object)
        picked = np.array([["Dog"], ["dog"], ["a*"], ["cat"]], dtype=object)
        ids = np.array([[7.0], [8.0], [9.0], [10.0]])
        return Example({"word": picked, "words": words, "ids": ids}, WordId("word", "words", "ids"))
