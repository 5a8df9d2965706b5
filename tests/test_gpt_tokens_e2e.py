"""GPTs without a character vocabulary, end to end in LibreOffice: token ids typed into cells and
checked against transformers' GPT-2 in float64, every GPT format through the command line, bad ids,
and a vocabulary wider than a sheet (20,000 tokens: the logits lie transposed)."""
from __future__ import annotations

import json

import numpy as np
import openpyxl
import pytest
import torch

from foreign import (functional_gpt, hf_gpt2, random_gpt, write_meta_pkl, write_mingpt_workdir,
                     write_nanogpt)
from sheetnet.checkpoint import save_checkpoint
from sheetnet.emit.a1 import cell_name
from sheetnet.engines import Block
from sheetnet.errors import SheetnetError
from sheetnet.pipeline import export
from sheetnet.options import TOLERANCE, ExportOptions
from sheetnet.runner import run
from sheetnet.verifier import verify
from sheetnet.manifest import read_manifest
from cli_helpers import invoke


@pytest.fixture(scope="module")
def hf_book(tmp_path_factory):
    """A tiny GPT-2 saved without vocab.json (50 ids, 16 positions), exported with context 6."""
    folder = tmp_path_factory.mktemp("hf")
    hf = hf_gpt2(seed=3).double()
    hf.save_pretrained(folder / "model")
    book = folder / "hf.xlsx"
    export(folder / "model", book, ExportOptions(tokens=[5, 17, 3], context=6))
    return folder / "model", book, hf


def hf_logits(hf, ids: list[int]) -> np.ndarray:
    with torch.no_grad():
        return hf(torch.tensor([ids])).logits[0].numpy()


def test_hf_gpt2_without_vocab_matches_transformers(engine, hf_book):
    folder, book, hf = hf_book
    report = verify(book, folder, engine=engine)
    assert report.ok and report.max_abs_err <= TOLERANCE, report.table()
    for ids in ([5, 17, 3], [49], [0, 1, 2, 3, 4, 5]):
        out = run(book, engine=engine, tokens=ids)
        expected = hf_logits(hf, ids)   # transformers on the prompt alone
        assert out["tokens"] == ids and out["inputs"] == ids + [None] * (6 - len(ids))
        assert np.array(out["outputs"]).shape == expected.shape
        assert np.abs(np.array(out["outputs"]) - expected).max() <= TOLERANCE
        assert out["next_token"] == int(expected[-1].argmax()) and out["note"] == "ok"


def test_bad_ids_show_in_the_sheet_and_stop_run_and_verify(engine, hf_book, tmp_path):
    folder, book, _ = hf_book
    with pytest.raises(SheetnetError, match=r"^token id 50 is outside the vocabulary \(ids 0..49\)$"):
        run(book, engine=engine, tokens=[1, 50])
    with pytest.raises(SheetnetError, match=r"^t1 is blank: type the ids from t0 on, without gaps$"):
        run(book, engine=engine, tokens=[1, "", 2])
    with pytest.raises(SheetnetError, match="7 tokens given; the workbook holds 6"):
        run(book, engine=engine, tokens=[1] * 7)
    nodes = read_manifest(book).nodes
    typed, ids, note = nodes["prompt"], nodes["tokens.id"], nodes["prompt.note"]
    edits = [(typed.sheet, typed.row + i, typed.col, v) for i, v in enumerate([7, 2.5, 50])]
    got_ids, got_note = engine.recalculate(
        book, [Block(ids.sheet, ids.row, ids.col, 4, 1),
               Block(note.sheet, note.row, note.col, 1, 1)], edits=edits, check_errors=False)
    assert got_ids[:, 0].tolist() == [7.0, "token id 2.5 is outside the vocabulary (ids 0..49)",
                                      "token id 50 is outside the vocabulary (ids 0..49)", 0.0]
    assert got_note[0, 0] == "a token id is not valid: see the id column"
    wb = openpyxl.load_workbook(book)   # a user types 99 into t1 and saves
    wb[typed.sheet][cell_name(typed.row + 1, typed.col)] = 99
    wb.save(tmp_path / "typed.xlsx")
    with pytest.raises(SheetnetError, match=r"^token id 99 is outside the vocabulary"):
        verify(tmp_path / "typed.xlsx", folder, engine=engine)
    # a gap typed in the sheet: each id reads its own cell only (edit locality), so the gap is
    # a pad there and the status cell says what to fix; verify refuses the workbook
    gap = [(typed.sheet, typed.row + i, typed.col, v) for i, v in enumerate([7, "", 3])]
    got_ids, got_note = engine.recalculate(
        book, [Block(ids.sheet, ids.row, ids.col, 3, 1),
               Block(note.sheet, note.row, note.col, 1, 1)], edits=gap, check_errors=False)
    assert got_ids[:, 0].tolist() == [7.0, 0.0, 3.0]
    assert got_note[0, 0] == ("a blank cell before the last typed id: type the ids from t0 on, "
                              "without gaps")
    wb[typed.sheet][cell_name(typed.row + 1, typed.col)] = None
    wb[typed.sheet][cell_name(typed.row + 2, typed.col)] = 3
    wb.save(tmp_path / "gap.xlsx")
    with pytest.raises(SheetnetError, match=r"^t1 is blank: type the ids from t0 on, without gaps$"):
        verify(tmp_path / "gap.xlsx", folder, engine=engine)
    res = invoke("run", book, "--prompt", "hi")
    assert res.exit_code == 1 and res.output == ("error: this workbook takes no prompt (it takes: "
                                                 "tokens, temperature, top_k, seed)\n")


BPE = ["Ġthe", "a", "Ċ", "Ã©", "=1+1", "123", "TRUE", "ĠĠ", "âĢ", "x", "Ġ"]   # vocab.json order
SHOWN = [" the", "a", "\\n", "é", "=1+1", "123", "TRUE", "  ", "\\xe2\\x80", "x", "\u2423"]


def test_bpe_strings_are_looked_up_from_the_vocab_sheet(engine, tmp_path):
    hf = hf_gpt2(seed=9, vocab_size=len(BPE), n_positions=4).double()
    hf.save_pretrained(tmp_path / "hf")
    (tmp_path / "hf" / "vocab.json").write_text(json.dumps({s: i for i, s in enumerate(BPE)}))
    (tmp_path / "hf" / "merges.txt").write_text("#version: 0.2\nĠ t\n")
    book = tmp_path / "bpe.xlsx"
    res = invoke("export", tmp_path / "hf", book, "--tokens", "0,4,2")
    assert res.exit_code == 0, res.output
    report = verify(book, tmp_path / "hf", engine=engine)
    assert report.ok, report.table()
    assert {"tokens.text", "next.text", "top.text"} <= {r.name for r in report.rows}
    out = run(book, engine=engine, tokens=[5, 6, 3, 7])
    expected = hf_logits(hf, [5, 6, 3, 7])[-1]
    text = [" the", "a", "\n", "é", "=1+1", "123", "TRUE", "  ", "\\xe2\\x80", "x", " "]
    assert out["next_token"] == text[int(expected.argmax())]
    assert out["top_tokens"] == [SHOWN[i] for i in out["top_ids"]]
    tokens = read_manifest(book).nodes["tokens.text"]
    shown, = engine.recalculate(book, [Block(tokens.sheet, tokens.row, tokens.col, 4, 1)])
    assert shown[:, 0].tolist() == [" the", "=1+1", "\\n", None]   # text cells, never formulas


def _checkpoint(fmt: str, folder):
    # (path, logits(ids)) for a GPT of 11 ids saved by ``fmt`` with no vocabulary beside it
    if fmt == "hf-gpt2":
        hf = hf_gpt2(seed=5, vocab_size=11, n_positions=8).double()
        hf.save_pretrained(folder / "hf")
        return folder / "hf", lambda ids: hf_logits(hf, ids)
    model = random_gpt(seed=6, gelu="tanh", tied=False) if fmt == "mingpt" else random_gpt(seed=6)
    if fmt == "nanogpt":
        path = write_nanogpt(folder / "out", model, vocab=False)
    elif fmt == "mingpt":
        path = write_mingpt_workdir(folder / "chargpt", model)
    else:
        path = folder / "gpt.pt"
        save_checkpoint(path, "gpt", model.config.to_dict(), model.state_dict(), {})
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    return path, lambda ids: functional_gpt(sd, 2, model.config.gelu, torch.tensor([ids]))[0].numpy()


@pytest.mark.parametrize("fmt", ["sheetnet", "nanogpt", "mingpt", "hf-gpt2"])
def test_every_gpt_format_takes_token_ids_through_the_cli(tmp_path, fmt):
    path, logits = _checkpoint(fmt, tmp_path)
    book = tmp_path / "g.xlsx"
    res = invoke("export", path, book, "--tokens", "1,2,3")
    assert res.exit_code == 0 and "(style cells)" in res.output, res.output
    res = invoke("export", path, tmp_path / "p.xlsx", "--prompt", "hi")
    assert res.exit_code == 1 and res.output.startswith("error: a prompt needs a vocabulary of 11 "
                                                        "single characters and this model has none")
    res = invoke("run", book, "--tokens", "4,0,10", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    expected = logits([4, 0, 10])
    assert out["tokens"] == [4, 0, 10] and out["next_token"] == int(expected[-1].argmax())
    assert np.abs(np.array(out["outputs"]) - expected).max() <= TOLERANCE


def test_a_vocabulary_of_the_wrong_length_is_named_not_dropped(tmp_path):
    # a meta.pkl for another model (10 characters for 11 ids): ids only, and the user is told
    path = write_nanogpt(tmp_path / "out", random_gpt(seed=2), vocab=False)
    write_meta_pkl(path.parent / "meta.pkl", chars=list("abcdefghij"))
    book = tmp_path / "g.xlsx"
    res = invoke("export", path, book, "--tokens", "1,2")
    assert res.exit_code == 0, res.output
    note = "its vocabulary lists 10 tokens but the model has 11 ids, so the sheets show ids only"
    assert f"  note: {note}" in res.output.splitlines()
    guide = " ".join(str(c.value) for row in openpyxl.load_workbook(book)["Guide"].iter_rows()
                     for c in row if c.value)
    assert note in guide


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """A GPT with 20,000 token ids (more than a sheet's 16,384 columns): 8 wide, 1 block, 4 positions."""
    model = random_gpt(seed=4, vocab_size=20_000, n_embd=8, n_layer=1, n_head=2, block_size=4)
    path = tmp_path_factory.mktemp("wide") / "wide.pt"
    save_checkpoint(path, "gpt", model.config.to_dict(), model.state_dict(), {})
    return path, model.double()


@pytest.mark.parametrize("style", ["cells", "arrays"])
def test_a_vocabulary_wider_than_a_sheet(engine, wide, tmp_path, style):
    path, model = wide
    book = tmp_path / "wide.xlsx"
    res = export(path, book, ExportOptions(tokens=[1, 19_999, 7], style=style))
    assert res.style == style  # arrays: the transposed logits one array formula per position
    nodes = read_manifest(book).nodes
    assert nodes["logits"].shape == (4, 20_000) and nodes["logits"].layout == "transposed"
    assert nodes["next.probs"].layout == "transposed" and nodes["wte"].layout is None
    report = verify(book, path, engine=engine)
    assert report.ok and report.max_abs_err <= TOLERANCE, report.table()
    out = run(book, engine=engine, tokens=[19_999, 2], temperature=0.5)
    with torch.no_grad():
        expected = model(torch.tensor([[19_999, 2]]))[0]
    top = torch.topk(torch.softmax(expected[-1] / 0.5, dim=-1), 5)
    assert np.abs(np.array(out["outputs"]) - expected.numpy()).max() <= TOLERANCE
    # the next token is drawn at T = 0.5 (seed 1: u_1 = 48271 / (2^31 - 1)); top 5 as before
    from sheetnet.models.textnet import sample_pick
    drawn = sample_pick(expected[-1], 0.5, 0, 48271 / 2147483647)[0]
    assert out["next_token"] == drawn and out["top_ids"] == top.indices.tolist()
    assert np.abs(np.array(out["top_probs"]) - top.values.numpy()).max() <= TOLERANCE
    # ties (probabilities that underflow to 0) in the transposed column: each id once, in order
    cold = run(book, engine=engine, tokens=[19_999, 2], temperature=1e-4)
    zeros = [i for i, p in enumerate(torch.softmax(expected[-1] / 1e-4, dim=-1).tolist()) if p == 0]
    assert cold["top_probs"][1:] == [0.0] * 4 and cold["top_ids"][1:] == zeros[:4]
