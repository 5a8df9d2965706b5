"""Token-id input and tensors wider than a sheet, without LibreOffice: the new ops' formula text
and reference, transposed layout through Refs, the token capture against PyTorch, --style auto."""
import json

import numpy as np
import pytest
import torch

from foreign import hf_gpt2, random_gpt
from sheetnet import layout, loaders
from sheetnet.capture.gpt import lower_gpt
from sheetnet.capture.gpt_tokens import capture_gpt_tokens, token_label
from sheetnet.emit.a1 import Refs
from sheetnet.emit.arrays import ARRAY_FORMULAS
from sheetnet.manifest import build
from sheetnet.emit.formulas import cell_formula
from sheetnet.errors import SheetnetError
from sheetnet.pipeline import choose_style
from sheetnet.ir import graph as ir
from sheetnet.ir.reference import evaluate
from sheetnet.layout import MAX_COLS, Region
from sheetnet.loaders.hf_gpt2 import byte_level_text
from sheetnet.options import AUTO_ARRAYS_ABOVE, ExportOptions

REGIONS = {
    "x": Region("P", 16, 1, 3, 1),              # B17:B19, the typed ids
    "n": Region("P", 4, 1, 1, 1),               # B5
    "ids": Region("P", 16, 2, 3, 1),            # C17:C19
    "table": Region("Vocab", 4, 1, 5, 1),       # B5:B9
    "wide": Region("O", 10, 1, 4, 2, True),     # a (2, 4) tensor laid down B11:C14
    "cell": Region("O", 2, 1, 1, 1),            # B3
}
R = Refs(REGIONS, here="P")

CELL_CASES = [
    (ir.FilledCount("x"), (0, 0), 'SUMPRODUCT((B17:B19<>"")*1)'),
    (ir.CheckedIds("x", 5, 0), (1, 0),
     'IF(B18="",0,IF(ISNUMBER(B18),'
     'IF(AND(B18>=0,B18<5,B18=INT(B18)),B18,"token id "&B18&" is outside the vocabulary '
     '(ids 0..4)"),"token id "&B18&" is outside the vocabulary (ids 0..4)"))'),
    (ir.TokenText("table", "ids", "n"), (2, 0), "IF(B5>2,INDEX('Vocab'!B5:B9,C19+1,1),\"\")"),
    (ir.IdsNote("ids", "x"), (0, 0),
     'IF(COUNT(C17:C19)<3,"a token id is not valid: see the id column",'
     'IF(SUMPRODUCT((B17:B18="")*(B18:B19<>""))>0,"a blank cell before the last typed id: type '
     'the ids from t0 on, without gaps",IF(SUMPRODUCT((B17:B19<>"")*1)=0,'
     '"type token ids in the yellow cells, from t0 on","ok")))'),
    # a transposed tensor: element (i, j) at sheet row j, column i; INDEX swaps its arguments
    (ir.Copy("wide"), (1, 3), "'O'!C14"),
    (ir.PickRow("wide", "n"), (0, 2), "INDEX('O'!B11:C14,3,MAX(B5,1))"),
    (ir.RowMax("wide"), (1, 0), "MAX('O'!C11:C14)"),
    (ir.Divide("wide", "cell"), (0, 3), "'O'!B14/'O'!B3"),
]


@pytest.mark.parametrize("op, cell, expected", CELL_CASES, ids=lambda v: str(v)[:40])
def test_cell_formula(op, cell, expected):
    assert cell_formula(op, R, *cell) == expected


def test_array_formulas_read_transposed_tensors_through_transpose():
    assert ARRAY_FORMULAS[ir.Divide](ir.Divide("wide", "cell"), R) == "TRANSPOSE('O'!B11:C14)/'O'!B3"


def test_wide_tensors_lie_down_the_rows_with_their_labels_swapped():
    g = ir.Graph()
    g.add("h", ir.Input(np.zeros((2, 3))), (2, 3), "S", row_labels=["t0", "t1"])
    v = MAX_COLS + 5
    g.add("logits", ir.Linear("h", "h"), (2, v), "S", row_labels=["t0", "t1"],
          col_labels=[f"c{j}" for j in range(v)], title="logits")
    g.add("m", ir.RowMax("logits"), (2, 1), "S", beside=True, title="")
    p = layout.plan(g)
    r = p.regions["logits"]
    assert r.transposed and (r.nrows, r.ncols) == (v, 2) and r.shape == (2, v)
    assert r.at(1, 7) == (r.row + 7, r.col + 1)
    assert p.label_at("S", r.row + 3, r.col - 1) == "c3" and p.label_at("S", r.row - 1, r.col) == "t0"
    assert "laid out transposed" in p.titles[("S", r.row - 2, 0)]
    assert r.sub((1, 2), (3, 5)) == Region("S", r.row + 3, r.col + 1, 2, 1, True)
    entry = build(g, p).nodes["logits"]
    assert entry.shape == (2, v) and entry.layout == "transposed"
    assert build(g, p).nodes["m"].layout is None


def test_a_tensor_too_big_either_way_is_refused_before_writing():
    g = ir.Graph()
    g.add("x", ir.Input(None), (layout.MAX_ROWS, MAX_COLS + 1), "Big sheet")
    with pytest.raises(SheetnetError, match=r"^tensor x \(1,048,576 x 16,385\) does not fit on "
                                            r"sheet 'Big sheet': it would need"):
        layout.plan(g)


@pytest.mark.parametrize("typed, ids, note", [
    ([1.0, 2.0, None, None], [1.0, 2.0, 0.0, 0.0], "ok"),
    ([None] * 4, [0.0] * 4, "type token ids in the yellow cells, from t0 on"),
    ([1.0, None, 3.0, None], [1.0, 0.0, 3.0, 0.0],  # a gap: a pad there, the status says so
     "a blank cell before the last typed id: type the ids from t0 on, without gaps"),
    ([4.0, 5.0, 1.5, -1.0], [4.0, "token id 5 is outside the vocabulary (ids 0..4)",
                             "token id 1.5 is outside the vocabulary (ids 0..4)",
                             "token id -1 is outside the vocabulary (ids 0..4)"],
     "a token id is not valid: see the id column"),
    (["abc", 0.0, "", None], ["token id abc is outside the vocabulary (ids 0..4)", 0.0, 0.0, 0.0],
     "a token id is not valid: see the id column"),
])
def test_checked_ids_reference(typed, ids, note):
    g = ir.Graph()
    g.add("x", ir.Input(np.array(typed, dtype=object)[:, None]), (4, 1), "S")
    g.add("n", ir.FilledCount("x"), (1, 1), "S")
    g.add("ids", ir.CheckedIds("x", 5, 0), (4, 1), "S")
    g.add("note", ir.IdsNote("ids", "x"), (1, 1), "S")
    v = evaluate(g)
    assert v["n"][0, 0] == sum(t not in (None, "") for t in typed)
    assert v["ids"][:, 0].tolist() == ids and v["note"][0, 0] == note


def test_token_capture_matches_torch_and_the_prompt_alone():
    model = random_gpt(seed=2, block_size=8).double()
    strings = ["<a>", " the", "\n\n", "x"] + [f"w{i}" for i in range(7)]
    g = capture_gpt_tokens(model, [3, 1, 2], strings, context=6)
    values = evaluate(g)
    ids = [3, 1, 2]
    with torch.no_grad():
        alone = model(torch.tensor([ids]))[0].numpy()
        for _ in range(3):  # the positions after the prompt: greedy (T = 0) by default
            ids.append(int(model(torch.tensor([ids]))[0, -1].argmax()))
        generated = model(torch.tensor([ids]))[0].numpy()
    assert values["gen.id"][:, 0].tolist() == ids
    np.testing.assert_allclose(values["logits"], generated, rtol=0, atol=1e-12)
    np.testing.assert_allclose(values["logits"][:3], alone, rtol=0, atol=1e-12)
    assert values["tokens.text"][:, 0].tolist() == ["x", " the", "\\n\\n", "", "", ""]
    assert values["next.text"][0, 0] == strings[int(alone[-1].argmax())]
    assert values["prompt.text"][0, 0] == "".join(strings[i] for i in ids)
    assert g.meta["run"]["inputs"] == {"tokens": "prompt", "temperature": "temperature",
                                       "top_k": "top_k", "seed": "seed"}


def test_ids_only_without_strings():
    g = capture_gpt_tokens(random_gpt(seed=1), [5], None)
    assert "Vocab" not in g.sheets and "next.text" not in g.nodes
    assert g.meta["run"]["report"]["next_token"] == "next.id"
    assert g.nodes["logits"].col_labels[:3] == ["0", "1", "2"]


def test_lowering_errors_are_one_clear_line():
    payload = {"architecture": "gpt", "config": random_gpt().config.to_dict(),
               "state_dict": random_gpt().state_dict(), "metadata": {}}
    with pytest.raises(SheetnetError, match=r"^a prompt needs a vocabulary of 11 single characters "
                                            r"and this model has none: give token ids"):
        lower_gpt(payload, ExportOptions(prompt="hi"))
    bpe = dict(payload, metadata={"vocab": ["ab"] * 11})
    with pytest.raises(SheetnetError, match="this model has 11 tokens such as 'ab'"):
        lower_gpt(bpe, ExportOptions(prompt="hi"))
    with pytest.raises(SheetnetError, match=r"^token id 11 is outside the vocabulary \(ids 0..10\)$"):
        lower_gpt(payload, ExportOptions(tokens=[1, 11]))
    with pytest.raises(SheetnetError, match="9 token ids given; the workbook holds 8 positions"):
        lower_gpt(payload, ExportOptions(tokens=[1] * 9))
    with pytest.raises(SheetnetError, match="context 9 must be between 1"):
        lower_gpt(payload, ExportOptions(context=9))
    assert lower_gpt(bpe, ExportOptions(tokens=[1])).graph.nodes["vocab.text"]


def test_hf_byte_level_vocab_is_shown_as_text(tmp_path):
    assert byte_level_text(["Ġthe", "Ċ", "Ã©", "âĢ", "plain"]) == [" the", "\n", "é", "\\xe2\\x80",
                                                                     "plain"]
    assert byte_level_text(["a b"]) == ["a b"]      # not byte-level: kept as it is
    assert token_label(" the\n") == " the\\n" and token_label(" ") == "\u2423"  # "␣"
    hf = hf_gpt2(vocab_size=4, n_positions=4)
    hf.save_pretrained(tmp_path / "hf")
    (tmp_path / "hf" / "vocab.json").write_text(json.dumps({"Ġthe": 0, "a": 1, "Ċ": 2, "Ã©": 3}))
    assert loaders.load(tmp_path / "hf")["metadata"]["vocab"] == ["Ġthe", "a", "Ċ", "Ã©"]
    (tmp_path / "hf" / "merges.txt").write_text("#version: 0.2\nĠ t\n")
    assert loaders.load(tmp_path / "hf")["metadata"]["vocab"] == [" the", "a", "\n", "é"]


def test_style_auto_counts_formula_cells():
    g = ir.Graph()
    g.add("w", ir.Param(np.zeros((10, 10))), (10, 10), "S")
    g.add("few", ir.Copy("w"), (10, 10), "S")
    assert choose_style(g, "auto") == "cells" and choose_style(g, "arrays") == "arrays"
    g.add("many", ir.Copy("w"), (1, AUTO_ARRAYS_ABOVE), "S")
    assert choose_style(g, "auto") == "arrays" and choose_style(g, "cells") == "cells"
