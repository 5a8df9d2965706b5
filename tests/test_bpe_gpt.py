"""A GPT-2 folder with a byte-level BPE beside it (trained here) through the command line:
export --prompt builds the Tokenizer sheet and feeds its ids to the model, verify compares the
sheet's ids with the tokenizer's own encoding and every tensor with PyTorch, run --prompt and
run --tokens both work, --tokens still gives id cells, and bad input is one line."""
from __future__ import annotations

import json

import pytest

from bpe_data import reference_ids, small
from cli_helpers import invoke, one_line_error
from sheetnet.engines import Block
from sheetnet.manifest import read_manifest
from sheetnet.ops.bpe import BpeNote

PROMPT = "Hello world, it's 中文 😀"


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    out = tmp_path_factory.mktemp("bpe-gpt") / "gpt.xlsx"
    # --style arrays: the Tokenizer sheet is per cell in both styles; in cells style, an edit of
    # this 1,000-id GPT's inputs crashes LibreOffice now and then (exit 134; --tokens id cells
    # too, without a Tokenizer sheet), which arrays style has not shown
    res = invoke("export", small(), out, "--prompt", PROMPT, "--context", "16", "--style", "arrays")
    assert res.exit_code == 0, res.output
    return out


def _run(book, *args):
    res = invoke("run", book, *args, "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def test_export_has_the_tokenizer_sheets_and_the_prompts_ids(book, engine):
    manifest = read_manifest(book)
    sheets = {e.sheet for e in manifest.nodes.values()}
    assert {"Tokenizer", "BPE tables", "Vocab", "Prompt"} <= sheets
    entry = manifest.nodes["tokens.id"]
    ids = engine.recalculate(book, [Block(entry.sheet, entry.row, entry.col, 16, 1)])[0]
    want = reference_ids(small(), [PROMPT])[0]
    assert [int(i) for i in ids[:len(want), 0]] == want
    assert ids[len(want):, 0].tolist() == [0.0] * (16 - len(want))   # the pad


def test_verify_compares_the_ids_with_the_tokenizers_own(book):
    res = invoke("verify", book, small())
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if x.startswith("tokens.id"))
    assert line.split()[-2:] == ["torch", "ok"]   # the trace's ids: loaders/bpe.py's encoding
    assert "bpe.steps" in res.output and "all match" in res.output


@pytest.mark.parametrize("text", ["Mississippilessly", "we'll see\n\tok", "é😀"])
def test_run_prompt_tokenizes_in_the_sheet(book, text):
    got = _run(book, "--prompt", text)
    assert got["note"] == "ok" and got["tokens"] == reference_ids(small(), [text])[0]


def test_run_tokens_spells_them_and_checks_the_sheet_reads_them_back(book):
    ids = reference_ids(small(), ["Mississippilessly"])[0]
    got = _run(book, "--tokens", ",".join(map(str, ids)))
    assert got["tokens"] == ids
    want = _run(book, "--prompt", "Mississippilessly")
    assert got["next_token"] == want["next_token"] and got["outputs"] == want["outputs"]
    # the bytes of "Mi" one by one: the text they spell tokenizes otherwise
    spelled = [reference_ids(small(), [c])[0][0] for c in "Mi"]
    if spelled != reference_ids(small(), ["Mi"])[0]:
        one_line_error(invoke("run", book, "--tokens", ",".join(map(str, spelled))),
                       "which the workbook tokenizes as")


def test_run_past_the_limits_is_the_status_in_one_line(book):
    one_line_error(invoke("run", book, "--prompt", "x" * 65), BpeNote.BYTES.format(64))
    one_line_error(invoke("run", book, "--prompt", "a b c d e f g h i j k l m n o p q"),
                   "tokens; the workbook holds 16 positions")


def test_export_tokens_still_gives_id_cells(tmp_path):
    out = tmp_path / "ids.xlsx"
    assert invoke("export", small(), out, "--tokens", "5,6,7", "--context", "8").exit_code == 0
    nodes = read_manifest(out).nodes
    assert "bpe.steps" not in nodes and nodes["prompt"].shape == (8, 1)
    res = invoke("verify", out, small())
    assert res.exit_code == 0 and "all match" in res.output, res.output


def test_export_refusals_are_one_line(tmp_path):
    one_line_error(invoke("export", small(), tmp_path / "a.xlsx", "--prompt", "é" * 40),
                   "the prompt is 80 bytes in UTF-8; the Tokenizer sheet holds 64")
    one_line_error(invoke("export", small(), tmp_path / "b.xlsx", "--prompt",
                          "a b c d e f g h i", "--context", "4"),
                   "tokens; the workbook holds 4 positions")
    assert not list(tmp_path.iterdir())   # no partial output


def test_a_bad_merges_file_stops_only_a_prompt(tmp_path):
    import shutil
    folder = tmp_path / "model"
    shutil.copytree(small(), folder)
    (folder / "merges.txt").write_text("#version: 0.2\nonly-one-part\n")
    one_line_error(invoke("export", folder, tmp_path / "p.xlsx", "--prompt", "hi"),
                   "merge 1 is not two tokens")
    assert invoke("export", folder, tmp_path / "t.xlsx", "--tokens", "1,2",
                  "--context", "4").exit_code == 0


def test_functions_are_excel_2010s_but_unicode(book):
    # UNICODE (Excel 2013) is the one later function: Excel 2010's CODE gives a code page's byte
    from test_formulas import EXCEL_2010, _functions
    assert _functions(book) - EXCEL_2010 == {"_xlfn.UNICODE", "CHAR"}   # CHAR: Excel 97's


def test_import_writes_the_folder_back_with_its_tokenizer(book, tmp_path):
    res = invoke("import", book, tmp_path / "back")
    assert res.exit_code == 0, res.output
    for name in ("vocab.json", "merges.txt"):
        assert (tmp_path / "back" / name).read_bytes() == (small() / name).read_bytes()
