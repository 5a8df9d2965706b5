"""Byte-level BPE's first steps in cells (GPT-2's tokenizer; the merges are ops/bpe.py): a prompt
cell -> code points -> character classes -> the pre-tokenizer's words -> UTF-8 bytes.

Every engine reads characters here as code points (LEN("😀") = 1); Excel reads UTF-16 units, so
a surrogate pair is combined in CodePoints and its second unit gives no bytes.  _xlfn.UNICODE
is Excel 2013's: Excel 2010 has only CODE, which gives the code page's byte, not UTF-8.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Example, Op, PerCellOnly, Ref, register
from .text import blank

_ROWS = PerCellOnly("a tokenizer row reads its neighbours and the row above: one formula per cell")
HIGH, LOW, END = 55296, 56320, 57343   # UTF-16 surrogates D800, DC00, DFFF
LO_TAB = "\x01"   # a tab as LibreOffice gives it from a cell with a line break (CodePoints)


def _col(values) -> np.ndarray:
    return np.array([[v] for v in values], dtype=object)


def _table(rows) -> np.ndarray:
    return np.array(rows, dtype=object)


def _unit(t: str, k: int) -> str:
    return f"_xlfn.UNICODE(MID({t},{k},1))"


@register
@dataclass(frozen=True)
class CodePoints(Op):
    """(count, 2): character i+1 of ``text`` and its code point; "" past the end.  A surrogate
    pair (Excel's UTF-16) is combined on its first unit; its second unit gets code point 0.
    U+0001 reads as a tab: LibreOffice stores a tab in a cell that also holds a line break as a
    field, which MID and UNICODE give as U+0001 (and a typed prompt holds no U+0001)."""
    INPUTS = ("text",)
    text: Ref
    count: int
    array = _ROWS

    def reference(self, v):
        text = "" if blank(v[self.text][0, 0]) else str(v[self.text][0, 0])
        text = text.replace(LO_TAB, "\t")
        return np.array([[text[i], float(ord(text[i]))] if i < len(text) else ["", ""]
                         for i in range(self.count)], dtype=object)

    def formula(self, r, i, j):
        t = r.cell(self.text, 0, 0)
        ch, u = f"MID({t},{i + 1},1)", _unit(t, i + 1)
        if j == 0:
            return f'IF({ch}="","",IF({u}=1,CHAR(9),{ch}))'
        pair = f"({u}-{HIGH})*1024+{_unit(t, i + 2)}-{LOW}+65536"
        return (f'IF({ch}="","",IF(AND({u}>={HIGH},{u}<{LOW}),{pair},'
                f"IF(AND({u}>={LOW},{u}<={END}),0,IF({u}=1,9,{u}))))")

    @staticmethod
    def example():
        return Example({"text": _col(["a😀é\x01中"])}, CodePoints("text", 7))


@register
@dataclass(frozen=True)
class CharClasses(Op):
    """(N, 1): each code point's class (L, N, S, O) from the run table (``starts`` sorted, with
    ``classes`` beside), by MATCH(code, starts, 1); a surrogate's second unit (0) repeats the
    class above, "" stays ""."""
    INPUTS = ("code", "starts", "classes")
    code: Ref
    starts: Ref
    classes: Ref
    array = _ROWS

    def reference(self, v):
        starts = np.asarray(v[self.starts], dtype=np.float64)[:, 0]
        classes = v[self.classes][:, 0]
        out = []
        for c in v[self.code][:, 1]:
            out.append("" if blank(c) else out[-1] if c == 0 else
                       classes[np.searchsorted(starts, c, side="right") - 1])
        return _col(out)

    def formula(self, r, i, j):
        c = r.cell(self.code, i, 1)
        above = r.mine(i - 1, 0) if i else '""'
        found = f"INDEX({r.all(self.classes)},MATCH({c},{r.all(self.starts)},1))"
        return f'IF({c}="","",IF({c}=0,{above},{found}))'

    @staticmethod
    def example():
        code = _table([["a", 97.0], ["1", 49.0], ["", 128512.0], ["", 0.0], [" ", 32.0], ["", ""]])
        return Example({"code": code, "starts": _col([0.0, 32.0, 33.0, 48.0, 58.0,
                                                                    97.0, 123.0]),
                        "classes": _col(["O", "S", "O", "N", "O", "L", "O"])},
                       CharClasses("code", "starts", "classes"))


def _contraction(n1, n2) -> float:
    # letters after an apostrophe that GPT-2 splits off: 's 't 'm 'd (1 more), 're 've 'll (2)
    if n1 in (115.0, 116.0, 109.0, 100.0):
        return 1.0
    return 2.0 if (n1, n2) in ((114.0, 101.0), (118.0, 101.0), (108.0, 108.0)) else -1.0


@register
@dataclass(frozen=True)
class Pretokenize(Op):
    """(N, 3): GPT-2's pre-tokenizer, one character per row: [1 where a word starts, else 0;
    letters left in a contraction ('s 't 're 've 'm 'll 'd), -1 outside one; word number].

    A word starts at a class change (letter, number, other, whitespace), except that a space
    joins the word after it; a run of whitespace followed by text keeps its last character for
    that text (itself a word unless it is a space); an apostrophe that starts a word and is
    followed by s t re ve m ll d is a word of its own.  "" past the prompt.
    """
    INPUTS = ("code", "cls")
    code: Ref
    cls: Ref
    array = _ROWS

    def reference(self, v):
        code, cls = v[self.code][:, 1], v[self.cls][:, 0]
        n, out = len(code), []
        for i in range(n):
            if blank(cls[i]):
                out.append(["", "", ""])
                continue
            prev = out[i - 1] if i else None
            start = 1.0 if i == 0 else 0.0 if code[i] == 0 or prev[1] > 0 else \
                1.0 if prev[1] == 0 else self._start(code, cls, i)
            left = prev[1] - 1 if prev is not None and prev[1] > 0 else -1.0
            if start == 1.0 and code[i] == 39.0:
                nxt = [code[k] if k < n else "" for k in (i + 1, i + 2)]
                left = _contraction(*nxt)
            out.append([start, left, (prev[2] if prev else 0.0) + start])
        return np.array(out, dtype=object)

    @staticmethod
    def _start(code, cls, i):
        after = cls[i + 1] if i + 1 < len(cls) else ""
        if cls[i] == "S":
            return 1.0 if cls[i - 1] != "S" or not (blank(after) or after == "S") else 0.0
        return 0.0 if code[i - 1] == 32.0 else 1.0 if cls[i - 1] == "S" or cls[i] != cls[i - 1] \
            else 0.0

    def formula(self, r, i, j):
        c, k = r.cell(self.code, i, 1), r.cell(self.cls, i, 0)
        if j == 2:
            return f'IF({k}="","",{r.mine(i - 1, 2) + "+" if i else ""}{r.mine(i, 0)})'
        if j == 1:
            nxt = [r.cell(self.code, m, 1) if m < r.shape(self.code)[0] else '""'
                   for m in (i + 1, i + 2)]
            left = (f"IF(OR({nxt[0]}=115,{nxt[0]}=116,{nxt[0]}=109,{nxt[0]}=100),1,"
                    f"IF(OR(AND({nxt[0]}=114,{nxt[1]}=101),AND({nxt[0]}=118,{nxt[1]}=101),"
                    f"AND({nxt[0]}=108,{nxt[1]}=108)),2,-1))")
            own = f"IF(AND({r.mine(i, 0)}=1,{c}=39),{left},-1)"
            if i:   # inside a contraction: one letter fewer left
                own = f"IF({r.mine(i - 1, 1)}>0,{r.mine(i - 1, 1)}-1,{own})"
            return f'IF({k}="","",{own})'
        if i == 0:
            return f'IF({k}="","",1)'
        pk, pc, left = r.cell(self.cls, i - 1, 0), r.cell(self.code, i - 1, 1), r.mine(i - 1, 1)
        after = r.cell(self.cls, i + 1, 0) if i + 1 < r.shape(self.cls)[0] else '""'
        space = f'IF(OR({pk}<>"S",AND({after}<>"",{after}<>"S")),1,0)'
        text = f'IF({pc}=32,0,IF(OR({pk}="S",{k}<>{pk}),1,0))'
        return (f'IF({k}="","",IF(OR({c}=0,{left}>0),0,IF({left}=0,1,'
                f'IF({k}="S",{space},{text}))))')

    @staticmethod
    def example():
        text = "it's  a\n'll 42!'s"
        code = _table([[ch, float(ord(ch))] for ch in text] + [["", ""]] * 2)
        cls = _col(["S" if ch.isspace() else "L" if ch.isalpha() else "N" if ch.isdigit()
                    else "O" for ch in text] + ["", ""])
        return Example({"code": code, "cls": cls}, Pretokenize("code", "cls"))


@register
@dataclass(frozen=True)
class Utf8Length(Op):
    """(N, 1): the UTF-8 length of each code point (1 to 4); 0 past the prompt and for a
    surrogate's second unit."""
    INPUTS = ("code",)
    code: Ref
    array = _ROWS

    def reference(self, v):
        return _col([0.0 if blank(c) or c == 0 else 1.0 if c < 128 else 2.0 if c < 2048 else
                     3.0 if c < 65536 else 4.0 for c in v[self.code][:, 1]])

    def formula(self, r, i, j):
        c = r.cell(self.code, i, 1)
        return f'IF({c}="",0,IF({c}=0,0,IF({c}<128,1,IF({c}<2048,2,IF({c}<65536,3,4)))))'

    @staticmethod
    def example():
        code = _table([["", 97.0], ["", 233.0], ["", 20013.0], ["", 128512.0], ["", 0.0], ["", ""]])
        return Example({"code": code}, Utf8Length("code"))


@register
@dataclass(frozen=True)
class ByteKeys(Op):
    """(N, 1): where each character's bytes start (the bytes before it), as a strictly rising
    key for MATCH(byte, keys, 1): a surrogate's second unit is 0.5 below the next character, the
    rows past the prompt count on from the total."""
    INPUTS = ("code", "nbytes")
    code: Ref
    nbytes: Ref
    array = _ROWS

    def reference(self, v):
        n = np.asarray(v[self.nbytes], dtype=np.float64)[:, 0]
        before = np.concatenate([[0.0], np.cumsum(n)[:-1]])
        codes = v[self.code][:, 1]
        return _col([float(b + i if blank(c) else b - 0.5 if c == 0 else b)
                     for i, (b, c) in enumerate(zip(before, codes))])

    def formula(self, r, i, j):
        c = r.cell(self.code, i, 1)
        before = f"SUM({r.span(self.nbytes, (0, i), (0, 1))})" if i else "0"
        return f'IF({c}="",{before}+{i},{before}-IF({c}=0,0.5,0))'

    @staticmethod
    def example():
        code = _table([["", 97.0], ["", 128512.0], ["", 0.0], ["", 233.0], ["", ""], ["", ""]])
        return Example({"code": code, "nbytes": _col([1.0, 4.0, 0.0, 2.0, 0.0, 0.0])},
                       ByteKeys("code", "nbytes"))


@register
@dataclass(frozen=True)
class Utf8Bytes(Op):
    """(count, 2): [byte k of the prompt's UTF-8, the 1-based row of its character]; "" past
    the last byte.  Lead byte: the code point's top bits under 0/110/1110/11110; then 10xxxxxx."""
    INPUTS = ("code", "nbytes", "keys")
    code: Ref
    nbytes: Ref
    keys: Ref
    count: int
    array = _ROWS

    def reference(self, v):
        # as the sheet does it: the byte's character by the rising keys, then its bits
        keys = np.asarray(v[self.keys], dtype=np.float64)[:, 0]
        n = np.asarray(v[self.nbytes], dtype=np.float64)[:, 0]
        out = []
        for k in range(self.count):
            if k >= n.sum():
                out.append(["", ""])
                continue
            row = int(np.searchsorted(keys, k, side="right"))   # 1-based
            cp, at = int(v[self.code][row - 1, 1]), int(k - keys[row - 1])
            out.append([float(chr(cp).encode("utf-8")[at]), float(row)])
        return np.array(out, dtype=object)

    def formula(self, r, i, j):
        total = f"SUM({r.all(self.nbytes)})"
        if j == 1:
            return f'IF({i}<{total},MATCH({i},{r.all(self.keys)},1),"")'
        row = r.mine(i, 1)
        cp, n = r.index(self.code, row, 2), r.index(self.nbytes, row, 1)
        k = f"({i}-{r.index(self.keys, row, 1)})"
        lead = f"CHOOSE({n},0,192,224,240)+INT({cp}/64^({n}-1))"
        return f'IF({row}="","",IF({k}=0,{lead},128+MOD(INT({cp}/64^({n}-1-{k})),64)))'

    @staticmethod
    def example():
        code = _table([["", 97.0], ["", 128512.0], ["", 233.0], ["", ""]])
        return Example({"code": code, "nbytes": _col([1.0, 4.0, 2.0, 0.0]),
                        "keys": _col([0.0, 1.0, 5.0, 10.0])},
                       Utf8Bytes("code", "nbytes", "keys", 8))
