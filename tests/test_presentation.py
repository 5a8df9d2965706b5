"""What a reader sees: the Guide first, the legend, defined names, heatmaps and charts."""
import openpyxl
import pytest

from lo_helpers import validation_rule
from sheetnet.emit.a1 import cell_name, defined_name
from sheetnet.pipeline import export
from sheetnet.options import ExportOptions
from sheetnet.manifest import read_manifest


@pytest.fixture(scope="module")
def books(examples, tmp_path_factory):
    out = tmp_path_factory.mktemp("books")
    made = {}
    for name, opts in [("sqrt_2x2.pt", ExportOptions()), ("textnet.pt", ExportOptions()),
                       ("gpt.pt", ExportOptions(prompt="The cell", style="arrays"))]:
        made[name] = out / (name + ".xlsx")
        export(examples / name, made[name], opts)
    return made


@pytest.mark.parametrize("name", ["sqrt_2x2.pt", "textnet.pt", "gpt.pt"])
def test_guide_first_with_legend(books, name):
    wb = openpyxl.load_workbook(books[name])
    assert wb.sheetnames[0] == "Guide"
    text = " ".join(str(c.value) for row in wb["Guide"].iter_rows() for c in row if c.value)
    assert "sheetnet verify" in text and "Legend" in text and "Input: type here" in text


@pytest.mark.parametrize("name", ["sqrt_2x2.pt", "textnet.pt", "gpt.pt"])
def test_every_tensor_has_a_defined_name_on_its_cells(books, name):
    wb = openpyxl.load_workbook(books[name])
    nodes = read_manifest(books[name]).nodes
    for node, entry in nodes.items():
        if entry.op == "View":
            continue
        dn = wb.defined_names[defined_name(node)]
        sheet, cells = next(iter(dn.destinations))
        assert sheet == entry.sheet
        first = cells.split(":")[0].replace("$", "")
        assert wb[sheet][first].row == entry.row + 1 and wb[sheet][first].column == entry.col + 1


def test_array_formulas_read_through_names(books):
    wb = openpyxl.load_workbook(books["gpt.pt"])
    ws = wb["B1 Attention"]
    texts = [c.value.text for row in ws.iter_rows() for c in row
             if type(c.value).__name__ == "ArrayFormula"]
    # the weights by name, read as they lie; a position's row as its range (one array per
    # position: generation)
    import re
    row = re.compile(r"TRANSPOSE\(MMULT\(h0_attn_Wq0,TRANSPOSE\(\$?[A-Z]+\$?\d+:\$?[A-Z]+\$?\d+\)\)\)")
    assert any(row.search(t) for t in texts), texts[:5]


def test_heatmaps_on_weights_and_attention(books):
    wb = openpyxl.load_workbook(books["gpt.pt"])
    ranges = {str(r.sqref) for r in wb["B1 Attention"].conditional_formatting}
    nodes = read_manifest(books["gpt.pt"]).nodes
    probs = nodes["h0.attn.probs0"]
    from sheetnet.emit.a1 import cell_name
    assert cell_name(probs.row, probs.col) + ":" in " ".join(ranges)
    assert len(ranges) >= 4  # c_attn, c_proj and both heads' probabilities


def test_charts(books):
    assert len(openpyxl.load_workbook(books["sqrt_2x2.pt"])["Regions"]._charts) == 1
    assert len(openpyxl.load_workbook(books["textnet.pt"])["Input"]._charts) == 1
    assert len(openpyxl.load_workbook(books["gpt.pt"])["Prompt"]._charts) == 1


@pytest.mark.parametrize("node, expected", [("L1.W", "L1_W"), ("h0.attn.q0", "h0_attn_q0"),
                                            ("x", "x"), ("L1", "_L1"), ("0.z", "_0_z"),
                                            ("R2C3", "_R2C3"), ("TRUE", "_TRUE")])
def test_defined_name_rules(node, expected):
    assert defined_name(node) == expected


@pytest.mark.parametrize("name", ["sqrt_2x2.pt", "gpt.pt"])
def test_column_labels_sit_right_aligned_over_their_numbers(books, name):
    wb = openpyxl.load_workbook(books[name])
    nodes = read_manifest(books[name]).nodes
    for node in ("L1.W", "h0.mlp.fc"):
        if node in nodes:
            e = nodes[node]
            ws = wb[e.sheet]
            over = ws.cell(e.row, e.col + 1)       # the line above the first number
            beside = ws.cell(e.row + 1, e.col)     # the row label left of it
            assert over.value and over.alignment.horizontal == "right", (node, over.value)
            assert beside.value and beside.alignment.horizontal in (None, "general"), node
            break
    else:
        pytest.fail("no node to look at")


@pytest.mark.parametrize("name, operator, words, lo", [
    ("textnet.pt", "greaterThan", "greater than 0", "GREATER"),
    # the GPT's temperature is the sampling rule's: 0 is greedy (issue 16)
    ("gpt.pt", "greaterThanOrEqual", "0 or more", "GREATER_EQUAL")])
def test_the_temperature_cell_takes_only_numbers_above_zero(engine, books, name, operator, words,
                                                            lo):
    # below 0 its softmax would favour the least likely; the text net's divides by T at 0
    t = read_manifest(books[name]).nodes["temperature"]
    ws = openpyxl.load_workbook(books[name])[t.sheet]
    rules = {str(dv.sqref): dv for dv in ws.data_validations.dataValidation}
    dv = rules[cell_name(t.row, t.col)]
    assert (dv.type, dv.operator, dv.formula1, dv.showErrorMessage) == ("decimal", operator,
                                                                        "0", True)
    assert words in dv.error
    # and LibreOffice reads the same rule
    got = validation_rule(engine, books[name], t.sheet, t.row, t.col)
    assert got == ("DECIMAL", lo, "0", True)


@pytest.mark.parametrize("name", ["textnet.pt", "gpt.pt"])
def test_every_input_cell_looks_like_one(books, name):
    # whole-number inputs (top-k, seed) carry the input fill too, with an integer format; the
    # fill is the one the input kind declares, so a reader finds every typed cell by its colour
    import json
    from sheetnet.spec import TEMPLATES
    kinds = json.loads((TEMPLATES / "styles.json").read_text())["kinds"]
    wb = openpyxl.load_workbook(books[name])
    for node, entry in read_manifest(books[name]).nodes.items():
        if entry.kind != "input":
            continue
        cell = wb[entry.sheet].cell(entry.row + 1, entry.col + 1)
        assert cell.fill.fgColor.rgb.endswith(kinds["input"]["fill"]), (node, cell.coordinate)
        if node in ("top_k", "seed"):
            assert cell.number_format == "0", node
