"""Byte-level BPE without an engine: the loader reads tokenizer files as checked data, its Python
encoder and the Tokenizer sheet's reference (ops/bpe.py run by ir.reference) give exactly the ids
tokenizers and transformers.GPT2TokenizerFast give, and past its limits the sheet gives a status
and no id.  (tests/test_bpe_sheet.py recalculates the same sheet in the engines.)"""
from __future__ import annotations

import json

import numpy as np
import pytest
from tokenizers import pre_tokenizers

from bpe_data import gpt2_sized, prompts, reference_ids, small
from sheetnet.capture import bpe as sheet
from sheetnet.errors import SheetnetError
from sheetnet.ir import graph as ir
from sheetnet.ir.reference import evaluate
from sheetnet.loaders import bpe as loader
from sheetnet.ops.bpe import BpeNote

PROMPTS = prompts()
FOLDERS = {"small": small, "gpt2-sized": gpt2_sized}


def test_the_prompts_are_what_the_issue_asks():
    assert len(PROMPTS) >= 200 and max(len(p.encode("utf-8")) for p in PROMPTS) == 64
    for kind in (" ", "\n", "0", "'s", "'ll", "!!", "é", "中文", "😀", "Mississippilessly"):
        assert any(kind in p for p in PROMPTS), kind


@pytest.fixture(scope="module", params=list(FOLDERS))
def folder(request):
    return FOLDERS[request.param]()


def test_trained_sizes():
    assert len(loader.read_bpe(small()).tokens) == 1_000
    big = loader.read_bpe(gpt2_sized())
    assert (len(big.tokens), len(big.merges)) == (50_257, 50_000)


def test_python_encoder_equals_tokenizers(folder):
    bpe = loader.read_bpe(folder)
    assert [bpe.encode(p) for p in PROMPTS] == reference_ids(folder, PROMPTS)


def _tokenizer_graph(bpe, context=64):
    g = ir.Graph()
    sheet.add_tables(g, bpe)
    g.add("labels", ir.Const(np.array(bpe.tokens, dtype=object)[:, None]), (len(bpe.tokens), 1),
          "Vocab")
    g.add("prompt", ir.Input(np.array([["x"]], dtype=object)), (1, 1), "Tokenizer")
    sheet.add_tokenizer(g, bpe, "prompt", "labels", context, 7)
    return g


def _sheet(g, text):
    v = evaluate(g, {"prompt": np.array([[text]], dtype=object)})
    note, n = v["bpe.note"][0, 0], int(v["bpe.n"][0, 0])
    return note, [int(i) for i in v["bpe.ids"][:n, 0]] if note == "ok" else None, v


def test_sheet_reference_equals_tokenizers(folder):
    g = _tokenizer_graph(loader.read_bpe(folder))
    got = [_sheet(g, p)[:2] for p in PROMPTS]
    assert got == [("ok", ids) for ids in reference_ids(folder, PROMPTS)]


def test_ids_after_the_prompt_are_the_pad():
    g = _tokenizer_graph(loader.read_bpe(small()))
    note, ids, v = _sheet(g, "Hello")
    assert note == "ok" and v["bpe.ids"][len(ids):, 0].tolist() == [7.0] * (64 - len(ids))


def test_mississippilessly_merge_by_merge():
    # the readers' favourite: each row's pair is the lowest-ranked pair left in its word
    bpe = loader.read_bpe(gpt2_sized())
    g = _tokenizer_graph(bpe)
    note, ids, v = _sheet(g, "Mississippilessly")
    steps = v["bpe.steps"]
    done = [row for row in steps if row[0] != 0]
    assert note == "ok" and ids == bpe.encode("Mississippilessly") and len(done) == 17 - len(ids)
    for row in done:
        word, rank, pos, left, right, merged = (int(x) for x in row[1:7])
        assert bpe.merges[rank] == (left, right, merged) and word == 1
        symbols = [int(s) % 100_000 for s in row[7:7 + 64] if s != ""]
        ranks = [bpe.ranks.get(p) for p in zip(symbols, symbols[1:])]
        assert rank == min(r for r in ranks if r is not None) and ranks.index(rank) == pos
    assert [t for t in v["bpe.step_tokens"][0]] == [bpe.tokens[int(steps[0, k])] for k in (4, 5, 6)]


@pytest.mark.parametrize("text, note", [
    ("", BpeNote.EMPTY),
    ("a" * 65, BpeNote.BYTES.format(64)),
    ("é" * 33, BpeNote.BYTES.format(64)),           # 33 characters, 66 bytes
    ("😀" * 17, BpeNote.BYTES.format(64)),
    ("a b c d e f", "TOKENS"),
])
def test_past_a_limit_the_status_says_so_and_no_id_is_given(text, note):
    g = _tokenizer_graph(loader.read_bpe(small()), context=5)
    got, _, v = _sheet(g, text)
    if note == "TOKENS":   # more tokens than the workbook's 5 positions
        n = len(loader.read_bpe(small()).encode(text))
        assert n > 5
        note = BpeNote.TOKENS.format(n, 5)
    assert got == note
    assert v["bpe.ids"][:, 0].tolist() == [note] * 5


def test_a_64_byte_word_finishes_within_the_sheet():
    # the merge table has as many rows as bytes: one word of 64 bytes merges as far as it goes
    bpe = loader.read_bpe(gpt2_sized())
    g = _tokenizer_graph(bpe)
    for text in ("a" * 64, " " * 64, "Mississippi" * 5 + "lessly"[:9], "ab" * 32):
        text = text[:64]
        note, ids, _ = _sheet(g, text)
        assert note == "ok" and ids == bpe.encode(text), text


BYTE_LEVEL = pre_tokenizers.ByteLevel(add_prefix_space=False)


def _tokenizers_split(text: str) -> list[str]:
    chars = {c: b for b, c in enumerate(loader.byte_chars())}
    return [bytes(chars[c] for c in w).decode("utf-8")
            for w, _ in BYTE_LEVEL.pre_tokenize_str(text)]


NEWER_LETTERS = {"0x1c89", "0x1c8a", "0xa7cb", "0xa7cc", "0xa7cd", "0xa7da", "0xa7db", "0xa7dc"}


def _case(cp: int) -> str:
    # the code point after a space, between a letter and a digit, doubled before a letter
    return f"a {chr(cp)}1 {chr(cp)}{chr(cp)}x\n"


def test_pre_tokenizer_classes_agree_with_tokenizers_over_the_bmp():
    points = [*range(0x20, 0xD800), *range(0xE000, 0x10000), *range(0x1F300, 0x1F700)]
    wrong = []
    for k in range(0, len(points), 2000):   # a chunk at a time; a differing chunk point by point
        chunk = points[k:k + 2000]
        text = "".join(_case(cp) for cp in chunk)
        if loader.pre_tokenize(text) != _tokenizers_split(text):
            wrong += [hex(cp) for cp in chunk
                      if loader.pre_tokenize(_case(cp)) != _tokenizers_split(_case(cp))]
    # letters new in Unicode 16 (Oniguruma's data) that Python 3.11's unicodedata calls unassigned:
    # the sheet's class table is Python's, so they split as "other"
    assert set(wrong) <= NEWER_LETTERS, sorted(set(wrong) - NEWER_LETTERS)


# --- files as untrusted data ---------------------------------------------------------------
def _write(folder, vocab, merges):
    folder.mkdir(exist_ok=True)
    (folder / "vocab.json").write_text(vocab if isinstance(vocab, str) else json.dumps(vocab))
    (folder / "merges.txt").write_text(merges)
    return folder


def _byte_vocab(extra=()):
    vocab = {ch: b for b, ch in enumerate(loader.byte_chars())}
    for token in extra:
        vocab[token] = len(vocab)
    return vocab


FORMULA_TOKENS = ["=+", "=+=", "=1+1"]   # "=1+1" is in the vocabulary, never merged to
FORMULA_MERGES = "#version: 0.2\n= +\n=+ =\n"


def test_a_token_that_looks_like_a_formula_is_text(tmp_path):
    bpe = loader.read_bpe(_write(tmp_path / "t", _byte_vocab(FORMULA_TOKENS), FORMULA_MERGES))
    g = _tokenizer_graph(bpe)
    note, ids, v = _sheet(g, "=+=")
    assert note == "ok" and [bpe.tokens[i] for i in ids] == ["=+="]
    assert v["bpe.step_tokens"][:2].tolist() == [["=", "+", "=+"], ["=+", "=", "=+="]]
    assert v["labels"][-1, 0] == "=1+1"


def test_a_formula_like_token_is_written_as_a_text_cell(tmp_path):
    import openpyxl

    from bpe_data import tokenizer_book
    folder = _write(tmp_path / "t", _byte_vocab(FORMULA_TOKENS), FORMULA_MERGES)
    graph, plan = tokenizer_book(folder, tmp_path / "b.xlsx", 1)
    region = plan.regions["labels"]
    cell = openpyxl.load_workbook(tmp_path / "b.xlsx")[region.sheet].cell(
        region.row + region.nrows, region.col + 1)   # the last id's token
    assert (cell.value, cell.data_type) == ("=1+1", "s")


@pytest.mark.parametrize("vocab, merges, message", [
    ("[1, 2]", "", "does not hold a JSON object"),
    ("{" * 100_000, "", "not readable JSON"),
    ({"a": 1.5}, "", "ids are whole numbers"),
    ({"a": -1}, "", "ids are whole numbers"),
    ({"a": 0, "b": 0}, "", "id 0 is given to two tokens"),
    ({"a": 0}, "", "lacks byte 0's character '\\x00'|lacks byte 0"),
    ("_bytes", "a b c\n", "merge 1 is not two tokens"),
    ("_bytes", "a b\n", "uses 'ab', which is not in the vocabulary"),
    ("_bytes", "a\n", "merge 1 is not two tokens"),
])
def test_bad_tokenizer_files_are_one_clear_error(tmp_path, vocab, merges, message):
    vocab = _byte_vocab() if vocab == "_bytes" else vocab
    with pytest.raises(SheetnetError, match=message):
        loader.read_bpe(_write(tmp_path / "t", vocab, merges))


def test_a_file_too_big_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    folder = _write(tmp_path / "t", _byte_vocab(), "")
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", 100)
    with pytest.raises(SheetnetError, match="a tokenizer file may have at most 100"):
        loader.read_bpe(folder)


def test_tokenizer_json_of_byte_level_kind(tmp_path):
    from tokenizers import ByteLevelBPETokenizer
    folder = small()
    trained = ByteLevelBPETokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    trained.save(str(tmp_path / "tokenizer.json"))
    bpe = loader.read_bpe(tmp_path)
    assert [bpe.encode(p) for p in PROMPTS[:50]] == reference_ids(folder, PROMPTS[:50])
    data = json.loads((tmp_path / "tokenizer.json").read_text())
    data["pre_tokenizer"]["add_prefix_space"] = True
    (tmp_path / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(SheetnetError, match="add_prefix_space is set"):
        loader.read_bpe(tmp_path)


def test_a_pair_listed_twice_merges_at_its_later_rank(tmp_path):
    bpe = loader.read_bpe(_write(tmp_path / "t", _byte_vocab(["ab", "bc", "abc"]),
                                 "a b\nb c\na b\nab c\n"))
    assert bpe.merges[0][:2] == (-1, -1) and bpe.ranks[bpe.byte_ids[97], bpe.byte_ids[98]] == 2
    assert bpe.encode("abc") == [bpe.byte_ids[97], len(loader.byte_chars()) + 1]
