"""inspect: the plan without a file; and the limits it states are enforced at export."""
import json

import pytest

from cli_helpers import invoke

from sheetnet.emit.book import _checked
from sheetnet.errors import SheetnetError
from sheetnet.pipeline import export
from sheetnet.inspect import describe, inspect
from sheetnet.ir import graph as ir
from sheetnet.layout import MAX_FORMULA_CHARS


def test_inspect_model_counts_what_export_writes(examples, tmp_path):
    info = inspect(examples / "sqrt_2x2.pt")
    # 1x2 + 2 bias, 2x2 + 2 bias, 2x1... : every weight of the checkpoint exactly once
    assert info["weights"] == (2 + 2) + (4 + 2) + (2 + 1)
    assert set(info["sheets"]) == {"Input", "Layer 1", "Layer 2", "Output", "Regions", "Walk",
                                   "Breakpoints"}
    assert not list(tmp_path.iterdir())  # nothing written
    book = tmp_path / "s.xlsx"
    res = export(examples / "sqrt_2x2.pt", book)
    assert res.weight_cells == info["weights"] and res.formula_cells == info["formulas"]
    from_book = inspect(book)
    assert from_book["weights"] == info["weights"] and from_book["formulas"] == info["formulas"]
    assert "estimated file" in describe(info) and "outputs y" in describe(from_book)


def test_formula_length_limit_is_enforced():
    node = ir.Node("big", ir.Copy("x"), (1, 1), "S")
    assert _checked(node, "A" * (MAX_FORMULA_CHARS - 1))
    with pytest.raises(SheetnetError, match="characters; spreadsheets take at most 8,192"):
        _checked(node, "A" * MAX_FORMULA_CHARS)


def test_tensor_beyond_the_sheet_is_refused():
    from sheetnet import layout
    g = ir.Graph()
    # too wide, and too tall to lie transposed
    g.add("x", ir.Input(None), (layout.MAX_ROWS, layout.MAX_COLS + 1), "S")
    with pytest.raises(SheetnetError, match="does not fit on sheet 'S'"):
        layout.plan(g)


def test_inspect_takes_exports_options(examples, tmp_path):
    # a GPT's context decides its cells: inspect must be asked what export will be asked
    wide = json.loads(invoke("inspect", examples / "gpt.pt", "--context", "8", "--json").output)
    args = ["--context", "4", "--tokens", "1,2", "--style", "arrays", "--precision", "float32"]
    res = invoke("inspect", examples / "gpt.pt", *args, "--json")
    assert res.exit_code == 0, res.output
    narrow = json.loads(res.output)
    assert narrow["weights"] == wide["weights"] and narrow["formulas"] < wide["formulas"]
    assert (narrow["style"], narrow["precision"]) == ("arrays", "float32")
    assert (wide["style"], wide["precision"]) == ("cells", "float64")
    res = invoke("export", examples / "gpt.pt", tmp_path / "g.xlsx", *args)
    assert res.exit_code == 0, res.output
    book = json.loads(invoke("inspect", tmp_path / "g.xlsx", "--json").output)
    assert (book["weights"], book["formulas"]) == (narrow["weights"], narrow["formulas"])
    assert book["precision"] == "float32"
