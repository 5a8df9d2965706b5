"""Byte-level BPE tokenizers trained here (the ``tokenizers`` library, nothing downloaded), saved
as Hugging Face GPT-2 folders, and the prompts the sheet must tokenize as they do."""
from __future__ import annotations

import atexit
import functools
import itertools
import random
import shutil
import sys
import tempfile
from pathlib import Path

# imported at collection (see foreign.py: after LibreOffice starts, a first import of
# transformers' GPT-2 fails under pyuno's import hook)
from tokenizers import ByteLevelBPETokenizer
from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

SMALL_VOCAB = 1_000
GPT2_VOCAB = 50_257   # 256 bytes + 50,000 merges + <|endoftext|>
CORPUS_BYTES = 4 * 2 ** 20


def corpus(limit: int = CORPUS_BYTES) -> list[str]:
    """A few MB of text from installed files: the Python standard library's sources and docs,
    plus generated lines with the prompts' kinds of characters (é, 中文, emoji, digits)."""
    lines, size = [], 0
    for path in sorted(Path(sys.base_prefix, "lib").glob("python3*/**/*.py")):
        text = path.read_text(encoding="utf-8", errors="ignore")
        lines.append(text)
        size += len(text.encode("utf-8"))
        if size > limit:
            break
    rng = random.Random(0)
    lines += _made_up_words(rng, limit // 2)
    words = ["café", "naïve", "中文", "字符", "😀", "🎉", "Mississippi", "lessly", "don't",
             "we'll", "it's", "I'm", "they've", "you're", "he'd", "2024", "3.14", "!!!", "...",
             "résumé", "Ünïcödé", "東京", "日本語"]
    for _ in range(20_000):
        lines.append(" ".join(rng.choice(words) for _ in range(rng.randint(1, 12))))
    return lines


def _made_up_words(rng: random.Random, size: int) -> list[str]:
    # Zipf-distributed made-up words (consonant-vowel syllables, some capitalised): enough
    # distinct frequent words for 50,000 merges, which source code alone does not give
    onsets, vowels = "b c d f g h j k l m n p r s t v w z br ch cl dr fl gr pl sh st th tr".split(), \
        "a e i o u ai ea ou y".split()
    lexicon = ["".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(rng.randint(1, 4)))
               for _ in range(60_000)]
    cumulative = list(itertools.accumulate(1 / (k + 1) for k in range(len(lexicon))))
    out, total = [], 0
    while total < size:
        line = " ".join(rng.choices(lexicon, cum_weights=cumulative, k=16))
        line = line.capitalize() + rng.choice([".", ",", "!", "?", ";"])
        out.append(line)
        total += len(line)
    return out


def train(folder: Path, vocab_size: int, text: list[str]) -> Path:
    """A ByteLevelBPETokenizer of ``vocab_size`` ids saved as vocab.json + merges.txt."""
    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator(text, vocab_size=vocab_size, min_frequency=2,
                            special_tokens=["<|endoftext|>"], show_progress=False)
    folder.mkdir(parents=True, exist_ok=True)
    tok.save_model(str(folder))
    return folder


def gpt2_folder(folder: Path, vocab_size: int, text: list[str], n_embd: int = 16) -> Path:
    """A tiny random GPT-2 (transformers, from a config) with the tokenizer beside it."""
    import torch
    train(folder, vocab_size, text)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=vocab_size, n_positions=64, n_embd=n_embd, n_layer=1,
                        n_head=2)
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def _exactly_64(text: str) -> str:
    # cropped to whole characters within 64 bytes, then filled with dots to 64
    while len(text.encode("utf-8")) > 64:
        text = text[:-1]
    return text + "." * (64 - len(text.encode("utf-8")))


@functools.cache
def _cache() -> Path:
    # one folder per test session (process), removed at exit
    folder = Path(tempfile.mkdtemp(prefix="sheetnet-bpe-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


@functools.cache
def small() -> Path:
    """The session's GPT-2 folder with a 1,000-id tokenizer (a 16-wide, 1-block model)."""
    return gpt2_folder(_cache() / "small", SMALL_VOCAB, corpus(2 ** 20))


@functools.cache
def gpt2_sized() -> Path:
    """The session's 50,257-id, 50,000-merge tokenizer (vocab.json + merges.txt only)."""
    return train(_cache() / "gpt2", GPT2_VOCAB, corpus())


def reference_ids(folder: Path, texts: list[str]) -> list[list[int]]:
    """tokenizers' ids for each text, checked equal to transformers.GPT2TokenizerFast's."""
    tok = ByteLevelBPETokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    fast = GPT2TokenizerFast.from_pretrained(str(folder))
    ids = [e.ids for e in tok.encode_batch(texts)]
    assert ids == [fast.encode(t) for t in texts]
    return ids


def prompts(count: int = 220, seed: int = 0) -> list[str]:
    """Prompts of at most 64 UTF-8 bytes: fixed hard cases, then random mixes of spaces,
    newlines, digits, contractions, punctuation runs, é, 中文 and emoji."""
    fixed = ["Mississippilessly", " Mississippilessly", "Hello world", "Hello  world",
             "Hello   world  ", "a\nb", "a \n b", "\n\n", "   ", " ", "x", "it's", "don't stop",
             "we'll've", "'s", "''s", "!'s", "'S", " 's", "I'M", "can't'nt", "12345 678",
             "3.14159", "¡¡!!??", "...---...", "café", "naïve résumé", "中文", "中文 字符",
             "😀", "a😀b", "😀😀 🎉", "tab\there", "cr\nlf", "\t\t x", "x\u00a0y", "x\u3000y",
             "Ⅻ ٣ ½", "e\u0301", "#!/usr/bin/env python", "def f(x):\n    return x", "line\n\tindented",
             "=1+1", "@home", "   leading", "trailing   ", "'ll 'd 've 're 'm 't", "x  'll"]
    fixed += [_exactly_64(t) for t in (
        "The quick brown fox jumps over the lazy dog; it's 2024, isn't it?",
        "中文字符 and émoji 😀🎉 — we'll see: 12345!!! ...", "Mississippilessly " * 4,
        "a" * 70, " \n" * 40)]
    rng = random.Random(seed)
    pieces = ["the", " the", "The", "cat", " sat", "Mississippi", "lessly", "'s", "'t", "'re",
              "'ve", "'m", "'ll", "'d", " ", "  ", "\n", "\t", "0", "42", "2024", "3.5", "!",
              "?!", "...", "--", "(", ")", "é", "café", "中", "文", "😀", "🎉", "👍🏽", "\u00a0",
              "Ω", "ß", "naïve", "import", " os", "def", "_", "x1", "'", "\"", "#"]
    out = list(fixed)
    while len(out) < count:
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 14)))
        while len(text.encode("utf-8")) > 64:
            text = text[:-1]
        if text and text not in out:
            out.append(text)
    return out


def tokenizer_book(folder: Path, path: Path, copies: int):
    """A workbook of ``copies`` Tokenizer sheets (T0, T1, ...) over one set of tables, each with
    its own prompt cell; returns (graph, plan).  Prompts go in as engine edits (``edits``)."""
    import numpy as np

    from sheetnet import layout
    from sheetnet.capture import bpe as sheet
    from sheetnet.emit.book import build_book
    from sheetnet.ir import graph as ir
    from sheetnet.loaders.bpe import read_bpe
    from sheetnet.writer import write_book
    bpe = read_bpe(folder)
    g = ir.Graph()
    sheet.add_tables(g, bpe)
    g.add("labels", ir.Const(np.array(bpe.tokens, dtype=object)[:, None]), (len(bpe.tokens), 1),
          "Vocab")
    for k in range(copies):
        g.add(f"p{k}", ir.Input(np.array([["x"]], dtype=object)), (1, 1), f"T{k}")
        sheet.add_tokenizer(g, bpe, f"p{k}", "labels", sheet.MAX_BYTES, 0, prefix=f"b{k}",
                            sheet=f"T{k}")
    plan = layout.plan(g)
    write_book(build_book(g, plan), path, force=True)
    return g, plan


NODES = ("code", "class", "words", "nbytes", "keys", "bytes", "first", "steps", "step_tokens",
         "n", "note", "ids")


def recalculate(engine, graph, plan, path: Path, texts: list[str]) -> list[tuple[dict, dict]]:
    """Each text typed into one prompt cell of the book (one load): per text, (the engine's
    cells, the reference's values) of every Tokenizer node."""
    import numpy as np

    from sheetnet.engines import Block
    from sheetnet.ir.reference import evaluate
    edits = [(plan.regions[f"p{k}"].sheet, plan.regions[f"p{k}"].row, plan.regions[f"p{k}"].col,
              text) for k, text in enumerate(texts)]
    names = [f"b{k}.{n}" for k in range(len(texts)) for n in NODES]
    blocks = [Block(r.sheet, r.row, r.col, r.nrows, r.ncols)
              for r in (plan.regions[n] for n in names)]
    got = dict(zip(names, engine.recalculate(path, blocks, edits=edits)))
    want = evaluate(graph, {f"p{k}": np.array([[t]], dtype=object) for k, t in enumerate(texts)})
    return [({n: got[f"b{k}.{n}"] for n in NODES}, {n: want[f"b{k}.{n}"] for n in NODES})
            for k in range(len(texts))]


def same_cell(got, want) -> bool:
    """A recalculated cell equals the reference's: text exactly, numbers exactly (all are
    whole numbers or halves), "" and blank alike."""
    if isinstance(want, str) or want is None:
        return (got or "") == (want or "")
    return isinstance(got, float) and got == float(want)
