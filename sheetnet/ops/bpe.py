"""Byte-level BPE (GPT-2's tokenizer) in cells: a prompt cell -> code points -> the pre-tokenizer's
words -> UTF-8 bytes -> per word the merges, lowest rank first, one per row -> token ids.

Numbers carry everything after the code points, so no step compares text (= ignores case, MATCH
on text depends on the engine's collation):
- a symbol is ``word * M + token id`` (M a power of ten above the vocabulary: 300464 is word 3,
  id 464), so a pair never merges across words;
- a pair's key is ``word * R + rank`` (R a power of ten above the merge count), blank when the
  pair has no merge: the row's MIN is the next merge, per word lowest rank first, leftmost of
  equals (GPT-2's order; ``tokenizers`` gives the same ids);
- a merge's rank is found in a sorted column of codes ``(left * V + right) * R + rank`` by
  MATCH(..., 1), a binary search: 50,000 merges cost ~16 comparisons per pair.

Every engine reads characters here as code points (LEN("😀") = 1); Excel reads UTF-16 units, so
a surrogate pair is combined in CodePoints and its second unit gives no bytes.  _xlfn.UNICODE
is Excel 2013's: Excel 2010 has only CODE, which gives the code page's byte, not UTF-8.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Example, Op, PerCellOnly, Ref, register

_ROWS = PerCellOnly("a tokenizer row reads its neighbours and the row above: one formula per cell")
HIGH, LOW, END = 55296, 56320, 57343   # UTF-16 surrogates D800, DC00, DFFF
LO_TAB = "\x01"   # a tab as LibreOffice gives it from a cell with a line break (CodePoints)


def _col(values) -> np.ndarray:
    return np.array([[v] for v in values], dtype=object)


def _table(rows) -> np.ndarray:
    return np.array(rows, dtype=object)


def _blank(x) -> bool:
    return x is None or (isinstance(x, str) and x == "")


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
        text = "" if _blank(v[self.text][0, 0]) else str(v[self.text][0, 0])
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
            out.append("" if _blank(c) else out[-1] if c == 0 else
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
            if _blank(cls[i]):
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
            return 1.0 if cls[i - 1] != "S" or not (_blank(after) or after == "S") else 0.0
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
        return _col([0.0 if _blank(c) or c == 0 else 1.0 if c < 128 else 2.0 if c < 2048 else
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
        return _col([float(b + i if _blank(c) else b - 0.5 if c == 0 else b)
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


@register
@dataclass(frozen=True)
class FirstSymbols(Op):
    """(count, 1): each byte as a symbol, word * ``scale`` + the id of its byte character
    (``byte_ids``, 256 rows); "" past the last byte."""
    INPUTS = ("bytes", "words", "byte_ids")
    bytes: Ref
    words: Ref
    byte_ids: Ref
    scale: int
    array = _ROWS

    def reference(self, v):
        ids, words = v[self.byte_ids][:, 0], v[self.words][:, 2]
        return _col(["" if _blank(b) else float(words[int(row) - 1] * self.scale + ids[int(b)])
                     for b, row in v[self.bytes]])

    def formula(self, r, i, j):
        b, row = r.cell(self.bytes, i, 0), r.cell(self.bytes, i, 1)
        return (f'IF({b}="","",{r.index(self.words, row, 3)}*{self.scale}'
                f'+{r.index(self.byte_ids, f"{b}+1", 1)})')

    @staticmethod
    def example():
        words = np.array([[1.0, -1.0, 1.0], [0.0, -1.0, 1.0], [1.0, -1.0, 2.0]], dtype=object)
        bytes_ = _table([[104.0, 1.0], [105.0, 2.0], [33.0, 3.0], ["", ""]])
        ids = _col([float((b * 7) % 256) for b in range(256)])
        return Example({"bytes": bytes_, "words": words, "byte_ids": ids},
                       FirstSymbols("bytes", "words", "byte_ids", 1000))


SUMMARY = ("next merge: word*R + rank", "word", "rank", "at symbol", "left id", "right id",
           "merged id")   # MergeSteps' first columns; the symbols and the pairs follow


@register
@dataclass(frozen=True)
class MergeSteps(Op):
    """(steps + 1, 7 + 2W - 1), one row per merge: [the SUMMARY of the merge this row makes;
    its W symbols (word * scale + id, "" past the last); its W - 1 pair keys].

    A pair key is word * rank_scale + rank when the two symbols are in one word and ``codes``
    (sorted, a -1 sentinel first) holds (left * vocab + right) * rank_scale + rank; blank
    otherwise.  The row's MIN is the merge made: the symbol at its position becomes the merged
    id and the rest shift left in the next row.  MIN = 0 (no pair left): the row is final.
    """
    INPUTS = ("first", "codes", "merged")
    first: Ref
    codes: Ref
    merged: Ref
    vocab: int
    scale: int
    rank_scale: int
    steps: int
    array = _ROWS

    def reference(self, v):
        width = v[self.first].shape[0]
        found = np.asarray(v[self.codes], dtype=np.float64)[1:, 0].astype(np.int64)
        codes = dict(zip((found // self.rank_scale).tolist(), (found % self.rank_scale).tolist()))
        merged = np.asarray(v[self.merged], dtype=np.float64)[:, 0]
        row, out = [x for x in v[self.first][:, 0]], []
        for _ in range(self.steps + 1):
            pairs = [self._key(a, b, codes) for a, b in zip(row, row[1:])]
            keys = [p for p in pairs if p != ""]
            best = min(keys) if keys else 0.0
            summary = [""] * 6
            if best:
                word, rank = divmod(int(best), self.rank_scale)
                pos = pairs.index(best)
                summary = [float(x) for x in (word, rank, pos, row[pos] % self.scale,
                                              row[pos + 1] % self.scale, merged[rank])]
                row_after = row[:pos] + [word * self.scale + summary[5]] + row[pos + 2:] + [""]
            out.append([best, *summary, *row, *pairs])
            row = row_after if best else row
        return np.array(out, dtype=object).reshape(self.steps + 1, 7 + 2 * width - 1)

    def _key(self, a, b, codes):
        if _blank(b) or a // self.scale != b // self.scale:
            return ""
        rank = codes.get(int(a % self.scale) * self.vocab + int(b % self.scale))
        return "" if rank is None else float(a // self.scale * self.rank_scale + rank)

    def formula(self, r, i, j):
        width = r.shape(self.first)[0]
        sym, pair, m, big_r = 7, 7 + width, self.scale, self.rank_scale
        if j >= pair:    # the pair of symbols j - pair and the one after
            a, b = r.mine(i, j - width), r.mine(i, j - width + 1)
            key = f"(MOD({a},{m})*{self.vocab}+MOD({b},{m}))*{big_r}"
            found = f"INDEX({r.all(self.codes)},MATCH({key}+{big_r - 1},{r.all(self.codes)},1))"
            look = (f'IF({b}="","",IF(INT({a}/{m})<>INT({b}/{m}),"",'
                    f'IF({found}>={key},INT({a}/{m})*{big_r}+{found}-{key},"")))')
            if i == 0:
                return look
            # a pair the last merge did not touch is the row above's, shifted past the merge:
            # two lookups per row, not one per pair (IronCalc's MATCH is no binary search)
            k, best, pos = j - pair, r.mine(i - 1, 0), r.mine(i - 1, 3)
            same, after = r.mine(i - 1, j), r.mine(i - 1, j + 1) if k + 2 < width else '""'
            return (f"IF({best}=0,{same},IF({k}<{pos}-1,{same},"
                    f"IF({k}>{pos},{after},{look})))")
        if j >= sym:
            k = j - sym
            if i == 0:
                return r.cell(self.first, k, 0)
            best, word, pos, new = (r.mine(i - 1, c) for c in (0, 1, 3, 6))
            here = r.mine(i - 1, j)
            after = r.mine(i - 1, j + 1) if k + 1 < width else '""'
            return (f"IF({best}=0,{here},IF({k}<{pos},{here},"
                    f"IF({k}={pos},{word}*{m}+{new},{after})))")
        best = r.mine(i, 0)
        row = r.span(r.node, (i, i + 1), (pair, pair + width - 1))
        symbols = r.span(r.node, (i, i + 1), (sym, sym + width))
        pos = r.mine(i, 3)
        text = {0: f"MIN({row})", 1: f"INT({best}/{big_r})", 2: f"MOD({best},{big_r})",
                3: f"MATCH({best},{row},0)-1", 4: f"MOD(INDEX({symbols},1,{pos}+1),{m})",
                5: f"MOD(INDEX({symbols},1,{pos}+2),{m})",
                6: f"INDEX({r.all(self.merged)},{r.mine(i, 2)}+1)"}[j]
        return text if j == 0 else f'IF({best}=0,"",{text})'

    @staticmethod
    def example():
        # vocabulary 0..9 (M = R = 10): merges (1,2)->5 rank 0, (5,3)->6 rank 1, (2,2)->7 rank 2
        codes = _col([-1.0, *sorted(float((a * 10 + b) * 10 + k)
                                    for k, (a, b) in enumerate([(1, 2), (5, 3), (2, 2)]))])
        first = _col([11.0, 12.0, 13.0, 22.0, 22.0, 22.0, ""])   # word 1: 1 2 3; word 2: 2 2 2
        return Example({"first": first, "codes": codes, "merged": _col([5.0, 6.0, 7.0])},
                       MergeSteps("first", "codes", "merged", 10, 10, 10, 4))


@register
@dataclass(frozen=True)
class StepTokens(Op):
    """(steps + 1, 3): each merge's left, right and merged token as ``labels`` (V, 1) show them."""
    INPUTS = ("steps", "labels")
    steps: Ref
    labels: Ref
    array = _ROWS

    def reference(self, v):
        labels = v[self.labels][:, 0]
        return np.array([["" if _blank(row[4 + j]) else labels[int(row[4 + j])] for j in range(3)]
                         for row in v[self.steps]], dtype=object)

    def formula(self, r, i, j):
        cell = r.cell(self.steps, i, 4 + j)
        return f'IF({cell}="","",{r.index(self.labels, f"{cell}+1", 1)})'

    @staticmethod
    def example():
        return Example({"steps": _table([["", "", "", "", 1.0, 2.0, 5.0], [0.0] + [""] * 6]),
                        "labels": _col([f"t{k}" for k in range(10)])},
                       StepTokens("steps", "labels"))


def _final(r, steps: Ref, k: int) -> str:
    # symbol k of the last merge row
    rows, _ = r.shape(steps)
    return r.cell(steps, rows - 1, 7 + k)


@register
@dataclass(frozen=True)
class TokenCount(Op):
    """(1, 1): how many tokens the last merge row holds."""
    INPUTS = ("steps",)
    steps: Ref
    array = _ROWS

    def reference(self, v):
        last = v[self.steps][-1]
        width = (len(last) - 6) // 2
        return np.array([[float(sum(not _blank(x) for x in last[7:7 + width]))]])

    def formula(self, r, i, j):
        rows, cols = r.shape(self.steps)
        width = (cols - 6) // 2
        return f"COUNT({r.span(self.steps, (rows - 1, rows), (7, 7 + width))})"

    @staticmethod
    def example():
        last = [0.0, *[""] * 6, 11.0, 12.0, "", "", "", ""]
        return Example({"steps": _table([[1.0] + [""] * 12, last])}, TokenCount("steps"))


@register
@dataclass(frozen=True)
class BpeNote(Op):
    """(1, 1) text: "ok", or why the Tokenizer sheet gives no ids (an empty prompt, more bytes
    than it holds, more merges than its rows, more tokens than the workbook's positions)."""
    EMPTY = "type a prompt"
    BYTES = "the prompt is longer than {} bytes in UTF-8, the Tokenizer sheet's limit"
    STEPS = "the prompt needs more than {} merge steps, the Tokenizer sheet's limit"
    TOKENS = "the prompt is {} tokens; the workbook holds {} positions"
    INPUTS = ("text", "nbytes", "steps", "n")
    text: Ref
    nbytes: Ref
    steps: Ref
    n: Ref
    max_bytes: int
    context: int
    array = _ROWS

    def reference(self, v):
        text = "" if _blank(v[self.text][0, 0]) else str(v[self.text][0, 0])
        total, n = float(np.sum(np.asarray(v[self.nbytes], dtype=np.float64))), v[self.n][0, 0]
        rows = v[self.steps].shape[0]
        note = (self.EMPTY if not text else
                self.BYTES.format(self.max_bytes) if len(text) > self.max_bytes
                or total > self.max_bytes else
                self.STEPS.format(rows - 1) if v[self.steps][-1, 0] != 0 else
                self.TOKENS.format(int(n), self.context) if n > self.context else "ok")
        return np.array([[note]], dtype=object)

    def formula(self, r, i, j):
        t, n, rows = r.cell(self.text, 0, 0), r.cell(self.n, 0, 0), r.shape(self.steps)[0]
        tokens = '"{}"'.format(self.TOKENS.format('"&{}&"'.format(n), self.context))
        too_long = f'"{self.BYTES.format(self.max_bytes)}"'
        return (f'IF(LEN({t})=0,"{self.EMPTY}",IF(OR(LEN({t})>{self.max_bytes},'
                f'SUM({r.all(self.nbytes)})>{self.max_bytes}),{too_long},'
                f'IF({r.cell(self.steps, rows - 1, 0)}<>0,"{self.STEPS.format(rows - 1)}",'
                f'IF({n}>{self.context},{tokens},"ok"))))')

    @staticmethod
    def example():
        steps = _table([[1.0, *[""] * 6], [0.0, *[""] * 6]])
        return Example({"text": _col(["héllo"]), "nbytes": _col([1.0, 2.0, 1.0, 1.0, 1.0]),
                        "steps": steps, "n": _col([3.0])}, BpeNote("text", "nbytes", "steps", "n",
                                                                   6, 2))


@register
@dataclass(frozen=True)
class BpeIds(Op):
    """(T, 1): the token ids of the last merge row (symbol mod ``scale``) at the first n
    positions, ``pad`` after; the note in every cell when it is not "ok" (never a wrong id)."""
    INPUTS = ("steps", "note", "n")
    steps: Ref
    note: Ref
    n: Ref
    scale: int
    count: int
    pad: int = 0
    array = _ROWS

    def reference(self, v):
        note, n, last = v[self.note][0, 0], int(v[self.n][0, 0]), v[self.steps][-1]
        return _col([note if note != "ok" else float(last[7 + i] % self.scale) if i < n
                     else float(self.pad) for i in range(self.count)])

    def formula(self, r, i, j):
        note, n = r.cell(self.note, 0, 0), r.cell(self.n, 0, 0)
        width = (r.shape(self.steps)[1] - 6) // 2
        token = f"MOD({_final(r, self.steps, i)},{self.scale})" if i < width else str(self.pad)
        return f'IF({note}<>"ok",{note},IF({n}>{i},{token},{self.pad}))'

    @staticmethod
    def example():
        last = [0.0, *[""] * 6, 11.0, 12.0, 25.0, "", "", "", "", "", ""]
        return Example({"steps": _table([last]), "note": _col(["ok"]), "n": _col([3.0])},
                       BpeIds("steps", "note", "n", 10, 8, 9))
