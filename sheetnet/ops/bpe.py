"""Byte-level BPE (GPT-2's tokenizer) in cells: a prompt cell -> code points -> the pre-tokenizer's
words -> UTF-8 bytes (ops/pretokenize.py) -> per word the merges, lowest rank first, one per row
-> token ids (here).

Numbers carry everything after the code points, so no step compares text (= ignores case, MATCH
on text depends on the engine's collation):
- a symbol is ``word * M + token id`` (M a power of ten above the vocabulary: 300464 is word 3,
  id 464), so a pair never merges across words;
- a pair's key is ``word * R + rank`` (R a power of ten above the merge count), blank when the
  pair has no merge: the row's MIN is the next merge, per word lowest rank first, leftmost of
  equals (GPT-2's order; ``tokenizers`` gives the same ids);
- a merge's rank is found in a sorted column of codes ``(left * V + right) * R + rank`` by
  MATCH(..., 1), a binary search: 50,000 merges cost ~16 comparisons per pair.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Example, Op, Ref, register
from .pretokenize import _ROWS, _col, _table
from .text import blank

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
        return _col(["" if blank(b) else float(words[int(row) - 1] * self.scale + ids[int(b)])
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
        if blank(b) or a // self.scale != b // self.scale:
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
        return np.array([["" if blank(row[4 + j]) else labels[int(row[4 + j])] for j in range(3)]
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
        return np.array([[float(sum(not blank(x) for x in last[7:7 + width]))]])

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
        text = "" if blank(v[self.text][0, 0]) else str(v[self.text][0, 0])
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
