"""A byte-level BPE tokenizer (GPT-2's kind) read as untrusted data: vocab.json + merges.txt, or a
tokenizer.json whose model is BPE and whose pre-tokenizer is ByteLevel.

Nothing in the files is run or evaluated: JSON is parsed by ``json`` after a size check, and every
token and merge string stays a string (a token "=1+1" is the text "=1+1" wherever it lands).
What the sheet needs is numbers: each merge's (left id, right id, merged id) by rank, and the
id of each of the 256 byte characters.

``Bpe.encode`` is GPT-2's encoder in plain Python (pre-tokenizer, then per word the merges,
lowest rank first): the tokenizer's own encoding that ``verify`` compares the sheet with.  It
follows the ``tokenizers`` library, which the tests check it against: a pair listed twice takes
its later rank; every merge's parts and result must be in the vocabulary.
"""
from __future__ import annotations

import functools
import json
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SheetnetError

MAX_FILE_BYTES = 64 * 2 ** 20   # GPT-2's vocab.json is 1 MB, merges.txt 0.5 MB, tokenizer.json 1.4
MAX_IDS = 131_072               # the sheet's pair codes (left*V + right)*R + rank stay below 2**53
MAX_TOKEN_CHARS = 1_024         # GPT-2's longest token has 128 characters
FILES = ("vocab.json", "merges.txt")
# GPT-2's pre-tokenizer: 's 't 're 've 'm 'll 'd, letters, numbers, other, whitespace
CONTRACTIONS = ("s", "t", "re", "ve", "m", "ll", "d")
CLASSES = ("L", "N", "S", "O")  # letter (\p{L}), number (\p{N}), whitespace (\s), other


def byte_chars() -> list[str]:
    """GPT-2's bytes_to_unicode: the character that spells each byte 0..255 in vocab.json.
    Printable bytes stand for themselves; the other 68 take U+0100 on, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    others = iter(range(0x100, 0x200))
    return [chr(b) if b in printable else chr(next(others)) for b in range(256)]


@dataclass
class Bpe:
    """A byte-level BPE: ``tokens[id]`` (the vocabulary's strings, "" for an id it skips),
    ``merges[rank] = (left id, right id, merged id)``, ``byte_ids[b]`` the id of byte b."""
    tokens: list[str]
    merges: list[tuple[int, int, int]]
    byte_ids: list[int]
    ranks: dict = field(default_factory=dict, repr=False)   # (left, right) -> rank

    def __post_init__(self):
        self.ranks = {(a, b): r for r, (a, b, _) in enumerate(self.merges)}

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``: pre-tokenized into words, each word's bytes merged by rank."""
        ids = []
        for word in pre_tokenize(text):
            ids += self._merge([self.byte_ids[b] for b in word.encode("utf-8")])
        return ids

    def _merge(self, word: list[int]) -> list[int]:
        # GPT-2's loop: merge the lowest-ranked adjacent pair (leftmost of equals) until none
        while len(word) > 1:
            rank, k = min((self.ranks.get(p, len(self.merges)), k)
                          for k, p in enumerate(zip(word, word[1:])))
            if rank == len(self.merges):
                break
            word[k:k + 2] = [self.merges[rank][2]]
        return word

    def decode(self, ids) -> str:
        """Token ids -> text (bytes that are no whole UTF-8 character become U+FFFD, as HF does)."""
        back = {ch: b for b, ch in enumerate(byte_chars())}
        raw = bytes(back[ch] for i in ids for ch in self.tokens[int(i)] if ch in back)
        return raw.decode("utf-8", errors="replace")


@functools.cache
def class_runs() -> tuple[tuple[int, ...], tuple[str, ...]]:
    """The pre-tokenizer's character classes as runs over all code points: (first code point of
    each run, its class).  Letters are categories L*, numbers N*, whitespace Unicode's White_Space
    (the regex's \\s), everything else (unassigned too) other.  From Python's unicodedata."""
    starts, classes = [], []
    for cp in range(0x110000):
        cls = char_class(cp)
        if not classes or classes[-1] != cls:
            starts.append(cp)
            classes.append(cls)
    return tuple(starts), tuple(classes)


_WHITE_SPACE = {*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028,
                0x2029, 0x202F, 0x205F, 0x3000}


def char_class(cp: int) -> str:
    """One code point's class: "L", "N", "S" or "O" (see ``class_runs``)."""
    if cp in _WHITE_SPACE:
        return "S"
    category = unicodedata.category(chr(cp))
    return "L" if category[0] == "L" else "N" if category[0] == "N" else "O"


def pre_tokenize(text: str) -> list[str]:
    """GPT-2's split, written out as a scanner (the regex module is not a dependency):
    ``'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+``."""
    words, i, n = [], 0, len(text)
    cls = [char_class(ord(c)) for c in text]
    while i < n:
        j = _match(text, cls, i)
        words.append(text[i:j])
        i = j
    return words


def _match(text: str, cls: list[str], i: int) -> int:
    # the end of the regex's match at i, alternatives in the pattern's order
    n = len(text)
    if text[i] == "'":
        for c in CONTRACTIONS:
            if text.startswith(c, i + 1):
                return i + 1 + len(c)
    k = i + 1 if text[i] == " " and i + 1 < n and cls[i + 1] != "S" else i
    if cls[k] != "S":   # ' ?' then a run of letters, of numbers, or of others
        j = k + 1
        while j < n and cls[j] == cls[k]:
            j += 1
        return j
    j = i
    while j < n and cls[j] == "S":
        j += 1
    # \s+(?!\S): a run followed by text gives back its last character (unless that is all of it)
    return j if j == n or j - i == 1 else j - 1


def read_bpe(folder: Path) -> Bpe | None:
    """The byte-level BPE in a model folder: vocab.json + merges.txt, else tokenizer.json; None
    when the folder has neither.

    Raises:
        SheetnetError: a file too big, not valid JSON, or not a byte-level BPE this sheet computes.
    """
    if all((folder / f).is_file() for f in FILES):
        vocab = _json(folder / "vocab.json")
        return build(vocab, _merge_lines(_text(folder / "merges.txt")), folder / "vocab.json")
    if (folder / "tokenizer.json").is_file():
        return _from_tokenizer_json(folder / "tokenizer.json")
    return None


def _text(path: Path) -> str:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise SheetnetError(f"{path} is {size:,} bytes; a tokenizer file may have at most "
                            f"{MAX_FILE_BYTES:,}")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SheetnetError(f"{path} is not readable UTF-8 text ({exc})") from None


def _json(path: Path) -> dict:
    try:
        value = json.loads(_text(path))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise SheetnetError(f"{path} is not readable JSON ({type(exc).__name__})") from None
    if not isinstance(value, dict):
        raise SheetnetError(f"{path} does not hold a JSON object")
    return value


def _merge_lines(text: str) -> list:
    # merges.txt: "#version" lines skipped, then "left right" per line (tokenizers' rule)
    lines = [line for line in text.split("\n") if not line.startswith("#version")]
    if lines and lines[-1] == "":
        lines.pop()
    return [line.split(" ") for line in lines]


def _from_tokenizer_json(path: Path) -> Bpe:
    data = _json(path)
    model, pre = data.get("model"), data.get("pre_tokenizer")
    if not isinstance(model, dict) or model.get("type", "BPE") != "BPE":
        raise SheetnetError(f"{path}: the model is not BPE")
    pres = pre.get("pretokenizers", []) if isinstance(pre, dict) and pre.get("type") == "Sequence" \
        else [pre]
    if len(pres) != 1 or not isinstance(pres[0], dict) or pres[0].get("type") != "ByteLevel":
        raise SheetnetError(f"{path}: the pre-tokenizer is not ByteLevel (GPT-2's)")
    unsupported = {"add_prefix_space": pres[0].get("add_prefix_space", False),
                   "use_regex": not pres[0].get("use_regex", True),
                   "normalizer": data.get("normalizer"), "dropout": model.get("dropout"),
                   "continuing_subword_prefix": model.get("continuing_subword_prefix"),
                   "end_of_word_suffix": model.get("end_of_word_suffix"),
                   "byte_fallback": model.get("byte_fallback"),
                   "ignore_merges": model.get("ignore_merges")}
    bad = [k for k, v in unsupported.items() if v not in (None, False, "")]
    if bad:
        raise SheetnetError(f"{path}: {bad[0]} is set; the sheet computes GPT-2's byte-level BPE "
                            "without it")
    merges = [m.split(" ") if isinstance(m, str) else m for m in model.get("merges") or []]
    return build(model.get("vocab"), merges, path)


def build(vocab: object, merges: list, where: Path) -> Bpe:
    """A Bpe from a {token: id} object and a list of [left, right] merges, all checked.

    Raises:
        SheetnetError: ids not whole numbers in 0..MAX_IDS-1 or repeated, a string too long, a
            merge not two strings, or a merge's parts or result missing from the vocabulary.
    """
    if not isinstance(vocab, dict) or not vocab:
        raise SheetnetError(f"{where}: the vocabulary is not an object of token -> id")
    ids = {}
    for token, i in vocab.items():
        if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < MAX_IDS:
            raise SheetnetError(f"{where}: token {token[:40]!r} has id {str(i)[:40]}; ids are "
                                f"whole numbers from 0 to {MAX_IDS - 1}")
        if len(token) > MAX_TOKEN_CHARS:
            raise SheetnetError(f"{where}: a token has {len(token):,} characters (at most "
                                f"{MAX_TOKEN_CHARS:,})")
        ids[token] = i
    tokens = [""] * (max(ids.values()) + 1)
    for token, i in ids.items():
        if tokens[i]:
            raise SheetnetError(f"{where}: id {i} is given to two tokens")
        tokens[i] = token
    missing = [b for b, ch in enumerate(byte_chars()) if ch not in ids]
    if missing:
        raise SheetnetError(f"{where}: the vocabulary lacks byte {missing[0]}'s character "
                            f"{byte_chars()[missing[0]]!r}: not a byte-level BPE")
    if len(merges) >= MAX_IDS:
        raise SheetnetError(f"{where}: {len(merges):,} merges; the sheet takes at most "
                            f"{MAX_IDS - 1:,}")
    table = []
    for rank, pair in enumerate(merges):
        if not (isinstance(pair, list) and len(pair) == 2
                and all(isinstance(p, str) for p in pair)):
            raise SheetnetError(f"{where}: merge {rank + 1} is not two tokens separated by a space")
        lost = [t for t in (*pair, pair[0] + pair[1]) if t not in ids]
        if lost:
            raise SheetnetError(f"{where}: merge {rank + 1} ({pair[0][:40]!r} {pair[1][:40]!r}) "
                                f"uses {lost[0][:40]!r}, which is not in the vocabulary")
        table.append((ids[pair[0]], ids[pair[1]], ids[pair[0] + pair[1]]))
    return Bpe(tokens, _last_rank_wins(table), [ids[ch] for ch in byte_chars()])


def _last_rank_wins(table: list) -> list:
    # a pair listed twice merges at its later rank (tokenizers builds a map, the last write wins);
    # the earlier line can never apply, so it is kept but made unmatchable (-1, -1)
    last = {(a, b): r for r, (a, b, _) in enumerate(table)}
    return [(a, b, m) if last[a, b] == r else (-1, -1, m) for r, (a, b, m) in enumerate(table)]
