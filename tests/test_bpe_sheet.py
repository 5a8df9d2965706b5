"""The Tokenizer sheet recalculated: every prompt typed into a prompt cell (as engine edits, many
Tokenizer sheets per workbook, a batch at a time) gives, in every cell of every Tokenizer node,
what ops/bpe.py's reference gives, and ids exactly tokenizers' and GPT2TokenizerFast's.
LibreOffice takes all the prompts with the GPT-2-sized tokenizer (50,000 merges); a batch with
the small one (1,000 ids) goes through LibreOffice and Gnumeric, a few with the GPT-2-sized one
through IronCalc (Gnumeric needs ~30 s to load those tables, IronCalc ~5 s per Tokenizer sheet:
benchmarks/bench_bpe.py).
(No prompt has a carriage return: LibreOffice stores a typed "\r\n" as "\n", so the cell never
holds one.)"""
from __future__ import annotations

import numpy as np
import pytest

from bpe_data import (NODES, gpt2_sized, prompts, recalculate, reference_ids, same_cell, small,
                      tokenizer_book)
from sheetnet.engines import open_engine

PROMPTS = prompts()
COPIES = 44           # Tokenizer sheets per workbook: 5 batches for the 220 prompts
BATCH = PROMPTS[::20]          # 11 prompts, the hard cases' share among them
FEW = [PROMPTS[0], PROMPTS[-1], "中文 字符 we'll 😀", "\n\t 's 42", PROMPTS[50]]


@pytest.fixture(scope="module")
def books(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bpe")
    return {name: (make(), *tokenizer_book(make(), folder / f"{name}.xlsx", copies),
                   folder / f"{name}.xlsx")
            for name, make, copies in (("gpt2-sized", gpt2_sized, COPIES),
                                       ("small", small, len(BATCH)),
                                       ("few", gpt2_sized, len(FEW)))}


def _check(engine, book, texts):
    if hasattr(engine, "loaded"):  # LibreOffice: one load, each batch typed into it
        with engine.loaded(book[-1]) as doc:
            _check_batches(doc, book, texts)
    else:  # Gnumeric, IronCalc: a load per batch
        _check_batches(engine, book, texts)


def _check_batches(engine, book, texts):
    tokenizer, graph, plan, path = book
    copies = sum(1 for name in graph.nodes if name.endswith(".ids"))
    wrong, ids = [], []
    for k in range(0, len(texts), copies):
        batch = texts[k:k + copies]
        for text, (got, want) in zip(batch, recalculate(engine, graph, plan, path, batch)):
            wrong += [(text, name, ij, got[name][ij], want[name][ij]) for name in NODES
                      for ij in np.ndindex(want[name].shape)
                      if not same_cell(got[name][ij], want[name][ij])]
            n = int(got["n"][0, 0])
            assert got["note"][0, 0] == "ok", (text, got["note"][0, 0])
            ids.append([int(i) for i in got["ids"][:n, 0]])
    assert not wrong, wrong[:5]
    assert ids == reference_ids(tokenizer, texts)


def test_every_prompt_in_libreoffice(engine, books):
    _check(engine, books["gpt2-sized"], PROMPTS)


def test_a_batch_with_the_small_tokenizer_in_libreoffice_and_gnumeric(engine, books):
    _check(engine, books["small"], BATCH)
    with open_engine("gnumeric", timeout=600) as other:
        _check(other, books["small"], BATCH)


def test_a_few_with_50000_merges_in_ironcalc(books):
    with open_engine("ironcalc", timeout=600) as other:
        _check(other, books["few"], FEW)
