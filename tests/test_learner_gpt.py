"""The GPT workbook as a learner reads it (issue 19): positions labelled by their characters (a
space as '␣'; formulas reading the Prompt sheet's tokens, recalculated in test_live_labels.py),
the heads side by side, each attention heatmap labelled by characters on both axes, heatmaps
on the logits and the lens, titles in words ("Block 1 - LayerNorm 1") instead of node names
("h0.ln_1").  Read from the exported file, no engine."""
import re

import openpyxl
import pytest

from sheetnet.capture.gpt_body import SPACE, char_label
from sheetnet.loaders import load_checkpoint
from sheetnet.manifest import read_manifest
from sheetnet.options import ExportOptions
from sheetnet.pipeline import export

PROMPT = "The cell "


@pytest.fixture(scope="module")
def book(examples, tmp_path_factory):
    out = tmp_path_factory.mktemp("learner") / "gpt.xlsx"
    export(examples / "gpt.pt", out, ExportOptions(style="cells", prompt=PROMPT))
    return out, read_manifest(out), openpyxl.load_workbook(out)


def _cells(ws, row: int, col: int, n: int, down: bool) -> list:
    # n cells from (row, col), 0-based, down a column or along a row
    return [ws.cell(row + 1 + (k if down else 0), col + 1 + (0 if down else k)).value
            for k in range(n)]


def _label_formulas(manifest) -> list[str]:
    # each position's label: "t<i> " joined to the Prompt sheet's token cell i (gen.label, '␣'
    # for a space), so it follows an edit; tests/test_live_labels.py reads them recalculated
    from openpyxl.utils import get_column_letter as L
    e = manifest.nodes["gen.label"]
    return [f"=\"t{i} \"&'{e.sheet}'!{L(e.col + 1)}{e.row + 1 + i}" for i in range(e.shape[0])]


@pytest.mark.parametrize("node", ["h0.attn.probs0", "h1.attn.probs0", "h0.mlp.fc", "logits",
                                  "lens.prob"])
def test_positions_labelled_by_their_characters_live(book, node):
    _, manifest, wb = book
    e = manifest.nodes[node]
    ws = wb[e.sheet]
    rows = _cells(ws, e.row, e.col - 1 if node != "lens.prob" else e.col - 2, e.shape[0], True)
    assert rows == _label_formulas(manifest)


@pytest.mark.parametrize("block", [0, 1])
def test_attention_heatmap_labelled_by_characters_on_both_axes(book, block):
    _, manifest, wb = book
    for k in range(2):
        e = manifest.nodes[f"h{block}.attn.probs{k}"]
        top = _cells(wb[e.sheet], e.row - 1, e.col, e.shape[1], False)
        assert top == _label_formulas(manifest)


def test_the_labels_read_shows_a_space_visibly(book, examples):
    # the labels read gen.label, which reads vocab.label: each character as char_label shows it
    _, manifest, wb = book
    vocab = load_checkpoint(examples / "gpt.pt")["metadata"]["vocab"]
    e = manifest.nodes["vocab.label"]
    shown = _cells(wb[e.sheet], e.row, e.col, e.shape[0], True)
    assert shown == [char_label(ch) for ch in vocab]
    assert SPACE in shown and "\\n" in shown                  # a space and a newline visible


@pytest.mark.parametrize("part", ["q", "scores", "probs", "y"])
def test_heads_side_by_side(book, part):
    # head 2 sits on the same rows as head 1, to its right (not below it)
    _, manifest, _ = book
    one, two = (manifest.nodes[f"h0.attn.{part}{k}"] for k in range(2))
    assert one.row == two.row and two.col >= one.col + one.shape[1]


def _heatmapped(ws) -> list[str]:
    return [str(r.sqref) for r in ws.conditional_formatting
            if any(rule.type == "colorScale" for rule in r.rules)]


def _a1(e) -> str:
    from openpyxl.utils import get_column_letter as L
    return (f"{L(e.col + 1)}{e.row + 1}:{L(e.col + e.shape[1])}{e.row + e.shape[0]}")


@pytest.mark.parametrize("node", ["logits", "next.logits", "next.probs", "lens.prob",
                                  "h0.attn.probs1"])
def test_heatmaps(book, node):
    _, manifest, wb = book
    e = manifest.nodes[node]
    assert _a1(e) in _heatmapped(wb[e.sheet])


# node names ("h0.ln_1", "next.scaled", "lens2.logits") in a title: a reader cannot parse them
INTERNAL = re.compile(r"\bh\d+\.\w|\b(next|sample|lens\d*|gen|top)\.\w")


def test_titles_in_words(book):
    _, _, wb = book
    titles = [c.value for ws in wb.worksheets if ws.title != "Guide" and ws.sheet_state == "visible"
              for row in ws.iter_rows()
              for c in row if isinstance(c.value, str) and not c.value.startswith("=")]
    assert "Block 1 - LayerNorm 1 (ln_1) = normalised * gain + bias" in titles
    assert "Block 2 - LayerNorm 2 (ln_2) normalised: (x - mean) / sqrt(variance + 1e-05)" in titles
    assert "Final LayerNorm (ln_f) = normalised * gain + bias" in titles
    named = [t for t in titles if INTERNAL.search(t)]
    assert not named, named


def test_lens_table_shows_each_layers_top_character(book):
    _, manifest, wb = book
    e = manifest.nodes["lens.top"]
    ws = wb[e.sheet]
    heads = _cells(ws, e.row - 1, e.col, e.shape[1], False)
    assert heads == ["embedding", "block 1", "block 2"]
    assert all(str(v).startswith("=") for v in _cells(ws, e.row, e.col, e.shape[0], True))
