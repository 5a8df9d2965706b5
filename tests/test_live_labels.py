"""Position labels follow an edit (issue 19).  A GPT workbook labels its positions (each
position-wise block's rows, the attention heatmaps' axes, the Logit lens) "t3 ␣": formulas that
read the position's token as the Prompt sheet shows it.  After the prompt, Temperature or Seed is
edited in LibreOffice, the labels name the tokens of the edited prompt and of the continuation
that sheetnet's PyTorch loop (generation.generate_ids) draws from it, and the Logit lens equals
PyTorch float64 (logit_lens.trace, verify's) for the edited prompt.  Both styles; and the BPE
prompt workbook's positions, labelled by their tokens the same way."""
from __future__ import annotations

import json
import numpy as np
import pytest
import torch

from bpe_data import small
from cli_helpers import invoke
from foreign import hf_gpt2
from sheetnet.capture import logit_lens
from sheetnet.capture.generation import generate_ids
from sheetnet.capture.gpt_body import PAD, char_label
from sheetnet.capture.gpt_tokens import token_label
from sheetnet.engines import ENGINES, Block, open_engine
from sheetnet.loaders import load, load_checkpoint
from sheetnet.loaders.bpe import read_bpe
from sheetnet.loaders.hf_gpt2 import byte_level_text
from sheetnet.manifest import read_manifest
from sheetnet.models.gpt import GPT
from sheetnet.options import ExportOptions
from sheetnet.pipeline import export
from sheetnet.verifier import numeric

STYLES = ["cells", "arrays"]
EXPORTED = "The cell"
# (prompt typed, temperature, top-k, seed): a new prompt, greedy; the exported prompt sampled
EDITS = [("A net is", 0.0, 0, 1), (EXPORTED, 1.0, 0, 7)]
# where positions are labelled: (node, "rows" left of it or "axis" above it)
LABELLED = [("h0.mlp.fc", "rows"), ("logits", "rows"), ("sample.probs", "rows"),
            ("lens.char", "rows"), ("h1.attn.probs0", "rows"), ("h1.attn.probs1", "axis")]


@pytest.fixture(scope="module")
def example(examples):
    payload = load_checkpoint(examples / "gpt.pt")
    return GPT.from_checkpoint(payload).double().eval(), payload["metadata"]["vocab"]


@pytest.fixture(scope="module")
def books(examples, tmp_path_factory):
    out = {}
    for style in STYLES:
        out[style] = tmp_path_factory.mktemp(style) / "gpt.xlsx"
        export(examples / "gpt.pt", out[style], ExportOptions(style=style, prompt=EXPORTED))
    return out


def _label_block(e, where: str) -> Block:
    # the labels of a node's positions: the column left of its rows, or the row above it
    t = e.shape[0]
    return (Block(e.sheet, e.row, e.col - 1, t, 1) if where == "rows" else
            Block(e.sheet, e.row - 1, e.col, 1, t))


def _edits(manifest, prompt: str, temperature: float, top_k: int, seed: int) -> list:
    return [(manifest.nodes[name].sheet, manifest.nodes[name].row, manifest.nodes[name].col, v)
            for name, v in (("prompt", prompt), ("temperature", temperature), ("top_k", top_k),
                            ("seed", seed))]


_CACHE: dict = {}


@pytest.fixture
def edited(engine, books, example):
    """(style, edit) -> the book recalculated in LibreOffice after the edit: the labels, the
    Prompt sheet's gen.id and the lens cells, read in one load."""
    def get(style: str, edit: tuple) -> dict:
        if (style, edit) not in _CACHE:
            manifest = read_manifest(books[style])
            layers = example[0].config.n_layer
            nodes = ["gen.id", "lens.top", "lens.prob"] + [f"lens{k}.logits"
                                                           for k in range(layers + 1)]
            blocks = [_label_block(manifest.nodes[n], w) for n, w in LABELLED]
            blocks += [Block(e.sheet, e.row, e.col, *e.shape)
                       for e in (manifest.nodes[n] for n in nodes)]
            cells = engine.recalculate(books[style], blocks, edits=_edits(manifest, *edit))
            labels = {n: [str(v) for v in np.asarray(c, dtype=object).flat]
                      for (n, _), c in zip(LABELLED, cells)}
            _CACHE[(style, edit)] = {"labels": labels, **dict(zip(nodes, cells[len(LABELLED):]))}
        return _CACHE[(style, edit)]
    return get


def _torch_ids(model, vocab, edit, sheet_ids) -> list[int]:
    # the edited prompt and the continuation the rule draws from it (the sheet's id at a tie)
    prompt, temperature, top_k, seed = edit
    t = model.config.block_size
    ids = [vocab.index(c) for c in prompt]
    drawn, _ = generate_ids(model, ids + [PAD] * (t - len(ids)), len(ids), temperature, top_k,
                            seed, sheet_ids=sheet_ids)
    return drawn


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("edit", EDITS)
def test_labels_name_the_edited_prompts_tokens(example, edited, style, edit):
    model, vocab = example
    got = edited(style, edit)
    sheet_ids = [float(i) for i in numeric(got["gen.id"])[:, 0]]
    ids = _torch_ids(model, vocab, edit, sheet_ids)
    assert sheet_ids == [float(i) for i in ids]  # the sheet computed on these tokens
    want = [f"t{i} {char_label(vocab[j])}" for i, j in enumerate(ids)]
    # the labels as the exported book first computed them (its prompt, greedy) said something
    # else: an edit that left them would fail here
    exported = _torch_ids(model, vocab, (EXPORTED, 0.0, 0, 1), None)
    assert want != [f"t{i} {char_label(vocab[j])}" for i, j in enumerate(exported)]
    for node, _ in LABELLED:
        assert got["labels"][node] == want, node


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("edit", EDITS)
def test_logit_lens_after_an_edit_equals_torch(example, edited, style, edit):
    model, vocab = example
    got = edited(style, edit)
    ids = _torch_ids(model, vocab, edit, [float(i) for i in numeric(got["gen.id"])[:, 0]])
    trace: dict = {}
    with torch.no_grad():
        model(torch.tensor([ids]), trace=trace)
    want = logit_lens.trace(model, trace, model.config.n_layer)
    assert np.abs(numeric(got["lens.prob"]) - want["lens.prob"]).max() < 1e-12
    # the top character per position and layer, as its label ('␣' for a space)
    tops = [[char_label(vocab[int(i)]) for i in row] for row in want["lens.id"]]
    assert np.asarray(got["lens.top"], dtype=object).tolist() == tops
    for k in range(model.config.n_layer + 1):
        logits = want[f"lens{k}.logits"]
        err = np.abs(numeric(got[f"lens{k}.logits"]) - logits).max() / np.abs(logits).max()
        assert err < 1e-12, (k, err)


@pytest.mark.parametrize("name", [n for n in ENGINES if n != "libreoffice"])
def test_labels_follow_the_edit_in_other_engines(example, books, name):
    # Gnumeric and IronCalc compute the label formulas after the same edit (arrays style)
    model, vocab = example
    edit = EDITS[0]
    manifest = read_manifest(books["arrays"])
    e = manifest.nodes["gen.id"]
    with open_engine(name, timeout=600) as other:
        *labels, sheet_ids = other.recalculate(
            books["arrays"], [_label_block(manifest.nodes[n], w) for n, w in LABELLED] +
            [Block(e.sheet, e.row, e.col, *e.shape)], edits=_edits(manifest, *edit))
    ids = _torch_ids(model, vocab, edit, [float(i) for i in numeric(sheet_ids)[:, 0]])
    want = [f"t{i} {char_label(vocab[j])}" for i, j in enumerate(ids)]
    for (node, _), cells in zip(LABELLED, labels):
        assert [str(v) for v in np.asarray(cells, dtype=object).flat] == want, node


def test_bpe_workbook_labels_positions_by_their_tokens(engine, tmp_path):
    # a 1,000-id GPT-2 with its byte-level BPE: the Tokenizer sheet's ids feed the body, whose
    # labels read each position's token; an edited prompt relabels them
    folder, book, t = small(), tmp_path / "bpe.xlsx", 16
    res = invoke("export", folder, book, "--prompt", "Hello world", "--context", str(t),
                 "--style", "arrays")   # arrays: see test_bpe_gpt.py
    assert res.exit_code == 0, res.output
    manifest = read_manifest(book)
    prompt = "it's 中文 ok"
    blocks = [_label_block(manifest.nodes[n], w) for n, w in
              [("h0.mlp.fc", "rows"), ("h0.attn.probs0", "axis"), ("logits", "rows")]]
    e = manifest.nodes["gen.id"]
    *labels, sheet_ids = engine.recalculate(
        book, blocks + [Block(e.sheet, e.row, e.col, t, 1)],
        edits=[("Prompt", manifest.nodes["prompt"].row, manifest.nodes["prompt"].col, prompt)])
    bpe = read_bpe(folder)
    model = GPT.from_checkpoint(load(folder)).double().eval()
    strings = byte_level_text(bpe.tokens + [""] * (model.config.vocab_size - len(bpe.tokens)))
    ids = bpe.encode(prompt)
    drawn, _ = generate_ids(model, ids + [PAD] * (t - len(ids)), len(ids), 0.0, 0, 1,
                            sheet_ids=[float(i) for i in numeric(sheet_ids)[:, 0]])
    want = [f"t{i} {token_label(strings[j])}" for i, j in enumerate(drawn)]
    assert any(len(strings[j]) > 1 for j in ids)  # a token of several characters
    for cells in labels:
        assert [str(v) for v in np.asarray(cells, dtype=object).flat] == want


# a vocabulary of tokens a spreadsheet would read as something else (test_gpt_tokens_e2e's)
HOSTILE = ["Ġthe", "a", "Ċ", "Ã©", "=1+1", "123", "TRUE", "ĠĠ", "âĢ", "x", "Ġ"]


def test_labels_of_hostile_tokens_stay_text(engine, tmp_path):
    # typed ids whose tokens are "=1+1", "TRUE", "123" and "  ": each label is the text
    # "t1 =1+1", never a formula's or a number's value
    hf = hf_gpt2(seed=9, vocab_size=len(HOSTILE), n_positions=4).double()
    hf.save_pretrained(tmp_path / "hf")
    (tmp_path / "hf" / "vocab.json").write_text(json.dumps({s: i for i, s in enumerate(HOSTILE)}))
    (tmp_path / "hf" / "merges.txt").write_text("#version: 0.2\nĠ t\n")
    book = tmp_path / "hostile.xlsx"
    res = invoke("export", tmp_path / "hf", book, "--tokens", "0,1")
    assert res.exit_code == 0, res.output
    manifest = read_manifest(book)
    typed, cell = [5, 4, 6, 7], manifest.nodes["prompt"]
    edits = [(cell.sheet, cell.row + i, cell.col, float(j)) for i, j in enumerate(typed)]
    blocks = [_label_block(manifest.nodes[n], w) for n, w in
              [("h0.mlp.fc", "rows"), ("h0.attn.probs0", "axis"), ("logits", "rows")]]
    labels = engine.recalculate(book, blocks, edits=edits)
    strings = byte_level_text(HOSTILE)
    want = [f"t{i} {token_label(strings[j])}" for i, j in enumerate(typed)]
    assert "t1 =1+1" in want and "t2 TRUE" in want
    for cells in labels:
        assert [v for v in np.asarray(cells, dtype=object).flat] == want
