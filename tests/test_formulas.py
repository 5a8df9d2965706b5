"""Formula text per op: [op, output cell, expected text] rows, as XlsxWriter tests its formulas."""
import pytest
# imported before any test starts LibreOffice: uno's import hook turns the ModuleNotFoundError torch
# expects from an optional module (torch.distributed.elastic...) into an ImportError it does not catch
from foreign import random_gpt

from sheetnet.emit.a1 import Refs, cell_name, col_letter, number, quote_sheet
from sheetnet.emit.arrays import ARRAY_FORMULAS
from sheetnet.emit.book import transposed
from sheetnet.emit.formulas import cell_formula
from sheetnet.ir import graph as ir
from sheetnet.layout import Region

REGIONS = {
    "x": Region("S", 4, 1, 1, 3),          # B5:D5
    "x1": Region("S", 4, 1, 1, 1),         # B5
    "w": Region("Layer 1", 9, 1, 2, 3),    # B10:D11 on another sheet
    "w1": Region("S", 9, 1, 2, 1),         # B10:B11
    "b": Region("Layer 1", 9, 4, 2, 1),    # E10:E11
    "z": Region("S", 20, 2, 2, 2),         # C21:D22
    "y": Region("S", 30, 2, 2, 2),         # C31:D32
}
R = Refs(REGIONS, here="S")

CELL_CASES = [
    (ir.Linear("x", "w", "b"), (0, 1), "SUMPRODUCT(B5:D5,'Layer 1'!B11:D11)+'Layer 1'!E11"),
    (ir.Linear("x", "w", None), (0, 0), "SUMPRODUCT(B5:D5,'Layer 1'!B10:D10)"),
    (ir.Linear("x1", "w1", "b"), (0, 1), "B5*B11+'Layer 1'!E11"),
    (ir.Relu("z"), (1, 0), "MAX(0,C22)"),
    (ir.LeakyRelu("z", 0.01), (0, 1), "IF(D21>0,D21,0.01*D21)"),
    (ir.Tanh("z"), (0, 0), "TANH(C21)"),
    (ir.Sigmoid("z"), (0, 0), "1/(1+EXP(-C21))"),
    (ir.Gelu("z", "erf"), (0, 0), "0.5*C21*(1+ERF(C21/SQRT(2)))"),
    (ir.Gelu("z", "tanh"), (0, 0), "0.5*C21*(1+TANH(SQRT(2/PI())*(C21+0.044715*C21^3)))"),
    (ir.Copy("z"), (1, 1), "D22"),
    (ir.Add("z", "y"), (1, 1), "D22+D32"),
    (ir.Sub("z", "y"), (0, 0), "C21-C31"),
    (ir.Sqrt("z"), (0, 0), "SQRT(C21)"),
    (ir.Step("z"), (0, 1), "IF(D21>0,1,0)"),
    (ir.Silu("z"), (0, 0), "C21/(1+EXP(-C21))"),
    (ir.Softplus("z"), (1, 0), "IF(C22>20,C22,LN(1+EXP(C22)))"),
    (ir.Softplus("z", 2.0, 5.0), (0, 0), "IF(2*C21>5,C21,LN(1+EXP(2*C21))/2)"),
    (ir.Elu("z"), (0, 1), "IF(D21>0,D21,EXP(D21)-1)"),
    (ir.Elu("z", 0.5), (0, 0), "IF(C21>0,C21,0.5*(EXP(C21)-1))"),
]


@pytest.mark.parametrize("op, cell, expected", CELL_CASES, ids=lambda v: str(v)[:40])
def test_cell_formula(op, cell, expected):
    assert cell_formula(op, R, *cell) == expected


ARRAY_CASES = [
    (ir.Linear("x", "w", "b"),
     "TRANSPOSE(MMULT('Layer 1'!B10:D11,TRANSPOSE(B5:D5)))+TRANSPOSE('Layer 1'!E10:E11)"),
    (ir.Relu("z"), "IF(C21:D22>0,C21:D22,0)"),
    (ir.Tanh("z"), "TANH(C21:D22)"),
    (ir.Add("z", "y"), "C21:D22+C31:D32"),
    (ir.Silu("z"), "C21:D22/(1+EXP(-C21:D22))"),
    (ir.Softplus("z", 2.0, 5.0), "IF(2*C21:D22>5,C21:D22,LN(1+EXP(2*C21:D22))/2)"),
    (ir.Elu("z", 0.5), "IF(C21:D22>0,C21:D22,0.5*(EXP(C21:D22)-1))"),
]


@pytest.mark.parametrize("op, expected", ARRAY_CASES, ids=lambda v: str(v)[:40])
def test_array_formula(op, expected):
    assert ARRAY_FORMULAS[type(op)](op, R) == expected


@pytest.mark.parametrize("text, expected", [
    # one whole TRANSPOSE(...) loses it; anything else gains one
    ("TRANSPOSE(MMULT(A1:B2,TRANSPOSE(C1:D1)))", "MMULT(A1:B2,TRANSPOSE(C1:D1))"),
    ("TRANSPOSE(A1:B2)+TRANSPOSE(C1:D2)", "TRANSPOSE(TRANSPOSE(A1:B2)+TRANSPOSE(C1:D2))"),
    ("MMULT(A1:B2,C1:D2)", "TRANSPOSE(MMULT(A1:B2,C1:D2))"),
    ('TRANSPOSE(A1&")")&TRANSPOSE(B1)', 'TRANSPOSE(TRANSPOSE(A1&")")&TRANSPOSE(B1))'),
    ('TRANSPOSE(A1&"(")', 'A1&"("'),  # a text's parenthesis is not the formula's
])
def test_transposed_unwraps_a_whole_transpose(text, expected):
    assert transposed(text) == expected


@pytest.mark.parametrize("col, letters", [(0, "A"), (25, "Z"), (26, "AA"), (701, "ZZ"),
                                          (702, "AAA"), (16383, "XFD")])
def test_col_letter(col, letters):
    assert col_letter(col) == letters


def test_cell_name_and_quoting():
    assert cell_name(0, 0) == "A1"
    assert quote_sheet("B1 Attention") == "'B1 Attention'"
    assert quote_sheet("it's") == "'it''s'"


@pytest.mark.parametrize("value", [0.1, -1e-300, 1 / 3, 2.0, 123456789.123456789, 5e-324])
def test_number_text_round_trips_exactly(value):
    assert float(number(value)) == value


# --- the GPT's ops -------------------------------------------------------------------------------
GPT_REGIONS = {
    "p": Region("Prompt", 4, 1, 1, 1),     # B5: the prompt
    "n": Region("Prompt", 8, 1, 1, 1),     # B9: characters read
    "ch": Region("Prompt", 20, 1, 4, 1),   # B21:B24 characters
    "id": Region("Prompt", 20, 3, 4, 1),   # D21:D24 ids
    "chars": Region("Vocab", 4, 1, 3, 1),  # Vocab!B5:B7
    "wte": Region("Embedding", 4, 1, 3, 2),  # Embedding!B5:C7
    "x": Region("S", 4, 1, 4, 2),          # B5:C8, 4 positions x 2 features
    "m": Region("S", 4, 3, 4, 1),          # D5:D8 row means
    "v": Region("S", 4, 4, 4, 1),          # E5:E8 row variances
    "g": Region("S", 10, 1, 1, 2),         # B11:C11 gain row
    "bb": Region("S", 12, 1, 1, 2),        # B13:C13 bias row
    "q": Region("S", 20, 1, 4, 2),         # B21:C24
    "k": Region("S", 20, 3, 4, 2),         # D21:E24
    "s": Region("S", 30, 1, 4, 4),         # B31:E34 scores
    "mx": Region("S", 30, 5, 4, 1),        # F31:F34
    "z": Region("S", 30, 6, 4, 1),         # G31:G34
    "row": Region("S", 40, 1, 1, 3),       # B41:D41
    "t": Region("S", 42, 1, 1, 1),         # B43
}
G = Refs(GPT_REGIONS, here="S")
P = Refs(GPT_REGIONS, here="Prompt")

GPT_CELL_CASES = [
    (P, ir.PromptLength("p", 32), (0, 0), "MIN(LEN(B5),32)"),
    (P, ir.Chars("p", "n", 4), (2, 0), "MID(B5,LEN(B5)-B9+3,1)"),
    (P, ir.TokenId("ch", "chars", 0), (1, 0),
     "IF(B22=\"\",0,IF((SUMPRODUCT(MIN((ROW('Vocab'!B5:B7)-ROW('Vocab'!B5)-3)*EXACT(B22,"
     "'Vocab'!B5:B7)))+3)<3,(SUMPRODUCT(MIN((ROW('Vocab'!B5:B7)-ROW('Vocab'!B5)-3)*EXACT(B22,"
     "'Vocab'!B5:B7)))+3),\"not in vocab: '\"&B22&\"'\"))"),
    (P, ir.PromptNote("p", "id", 4), (0, 0),
     'IF(COUNT(D21:D24)<4,"not in vocab: see the id column",IF(LEN(B5)>4,'
     '"the prompt has "&LEN(B5)&" characters; the context holds 4: the sheet reads the last 4",'
     'IF(LEN(B5)=0,"type a prompt","ok")))'),
    (G, ir.Lookup("wte", "id"), (1, 1), "INDEX('Embedding'!B5:C7,'Prompt'!D22+1,2)"),
    (G, ir.RowMean("x"), (2, 0), "AVERAGE(B7:C7)"),
    (G, ir.RowVar("x", "m"), (2, 0), "SUMPRODUCT((B7:C7-D7)^2)/2"),
    (G, ir.Normalize("x", "m", "v", 1e-5), (1, 1), "(C6-D6)/SQRT(E6+1e-05)"),
    (G, ir.ScaleShift("x", "g", "bb"), (3, 1), "C8*C11+C13"),
    (G, ir.ScaleShift("x", "g", None), (3, 0), "B8*B11"),
    (G, ir.CausalScores("q", "k"), (2, 1), "SUMPRODUCT(B23:C23,D22:E22)/SQRT(2)"),
    (G, ir.CausalScores("q", "k"), (1, 2), '""'),
    (G, ir.RowMax("s", causal=True), (1, 0), "MAX(B32:C32)"),
    (G, ir.RowMax("row"), (0, 0), "MAX(B41:D41)"),
    (G, ir.RowSumExp("s", "mx", causal=True), (2, 0), "SUMPRODUCT(EXP(B33:D33-F33))"),
    (G, ir.Softmax("s", "mx", "z", causal=True), (2, 1), "EXP(C33-F33)/G33"),
    (G, ir.Softmax("s", "mx", "z", causal=True), (1, 3), "0"),
    (G, ir.MatMul("s", "q"), (3, 1), "MMULT(B34:E34,C21:C24)"),
    (G, ir.Concat(("q", "k")), (1, 3), "E22"),
    (G, ir.PickRow("s", "t"), (0, 2), "INDEX(B31:E34,MAX(B43,1),3)"),
    (G, ir.Divide("row", "t"), (0, 1), "C41/B43"),
    (G, ir.Largest("row", 2), (1, 0), "LARGE(B41:D41,2)"),
    # the (i+1 - values above)-th position holding the (i+1)-th largest: ties each once, in order
    (G, ir.LargestIds("row", 2), (1, 0),
     "SMALL(IF(B41:D41=LARGE(B41:D41,2),COLUMN(B41:D41)-COLUMN(B41)+ROW(B41:D41)-ROW(B41),3),"
     "2-SUMPRODUCT((B41:D41>LARGE(B41:D41,2))*1))"),
]

# one-cell array formulas: Gnumeric computes these element by element only as arrays
ARRAY_CELL_OPS = (ir.TokenId, ir.RowSumExp, ir.LargestIds, ir.WordId, ir.FilledCount)


@pytest.mark.parametrize("refs, op, cell, expected", GPT_CELL_CASES,
                         ids=[f"{type(c[1]).__name__}-{c[2]}" for c in GPT_CELL_CASES])
def test_gpt_cell_formula_is_an_array_exactly_when_gnumeric_needs_it(refs, op, cell, expected):
    from sheetnet.ops import ArrayText
    assert isinstance(cell_formula(op, refs, *cell), ArrayText) == isinstance(op, ARRAY_CELL_OPS)


@pytest.mark.parametrize("refs, op, cell, expected", GPT_CELL_CASES,
                         ids=[f"{type(c[1]).__name__}-{c[2]}" for c in GPT_CELL_CASES])
def test_gpt_cell_formula(refs, op, cell, expected):
    assert cell_formula(op, refs, *cell) == expected


GPT_ARRAY_CASES = [
    (ir.CausalScores("q", "k"), 'IF(TRANSPOSE(ROW(D21:D24))-ROW(D21)<=ROW(B21:B24)-ROW(B21),'
     'MMULT(B21:C24,TRANSPOSE(D21:E24))/SQRT(2),"")'),
    (ir.Softmax("s", "mx", "z", causal=True), 'IF(B31:E34="",0,EXP(B31:E34-F31:F34)/G31:G34)'),
    # row t of s as a one-hot row times s (IronCalc's INDEX reads an array's cells too early)
    (ir.PickRow("s", "t"), "MMULT(TRANSPOSE(IF(ROW(B31:B34)-ROW(B31)+COLUMN(B31:B34)-COLUMN(B31)"
     "+1=MAX(B43,1),1,0)),B31:E34)"),
    (ir.Softmax("row", "t", "t"), "EXP(B41:D41-B43)/B43"),
    (ir.MatMul("s", "q"), "MMULT(B31:E34,B21:C24)"),
    (ir.Normalize("x", "m", "v", 1e-5), "(B5:C8-D5:D8)/SQRT(E5:E8+1e-05)"),
    (ir.ScaleShift("x", "g", "bb"), "B5:C8*B11:C11+B13:C13"),
    (ir.Divide("row", "t"), "B41:D41/B43"),
]


@pytest.mark.parametrize("op, expected", GPT_ARRAY_CASES, ids=lambda v: str(v)[:40])
def test_gpt_array_formula(op, expected):
    assert ARRAY_FORMULAS[type(op)](op, G) == expected


# --- the tiny text net's ops ---------------------------------------------------------------------
TEXTNET_REGIONS = {
    "word": Region("Input", 4, 1, 1, 1),    # B5: the picked word
    "ids": Region("Vocab", 4, 1, 3, 1),     # Vocab!B5:B7
    "words": Region("Vocab", 4, 2, 3, 1),   # Vocab!C5:C7
    "logits": Region("S", 4, 1, 2, 3),      # B5:D6, 2 words x 3 logits
}
TXT = Refs(TEXTNET_REGIONS, here="Input")

TEXTNET_CELL_CASES = [
    # EXACT, never MATCH: case-sensitive, and * ? ~ are plain characters
    (TXT, ir.WordId("word", "words", "ids"), (0, 0),
     "IF(SUMPRODUCT(EXACT('Vocab'!C5:C7,B5)*1)=1,SUMPRODUCT(EXACT('Vocab'!C5:C7,B5)*'Vocab'!B5:B7),"
     "IF(SUMPRODUCT(EXACT('Vocab'!C5:C7,B5)*1)>1,\"in the vocabulary more than once: '\"&B5&\"'\","
     "IF(B5=\"\",\"pick a word from the list\",\"not in the vocabulary: '\"&B5&\"'\")))"),
    (Refs(TEXTNET_REGIONS, here="S"), ir.RowArgmax("logits"), (1, 0),
     "MATCH(MAX(B6:D6),B6:D6,0)-1"),
]


@pytest.mark.parametrize("refs, op, cell, expected", TEXTNET_CELL_CASES,
                         ids=[type(c[1]).__name__ for c in TEXTNET_CELL_CASES])
def test_textnet_cell_formula(refs, op, cell, expected):
    assert cell_formula(op, refs, *cell) == expected


# --- every function a workbook uses is one Excel 2010 computes ---------------------------------
# Excel 2010's names for what sheetnet may need (LibreOffice computes all of them); a function
# Excel added later is stored with an _xlfn. prefix and would show up here as one.
EXCEL_2010 = {"ABS", "AND", "AVERAGE", "CHOOSE", "COLUMN", "COUNT", "ERF", "EXACT", "EXP", "IF",
              "IFERROR", "INDEX", "INT", "ISNUMBER", "ISTEXT", "LARGE", "LEN", "LN", "MATCH", "MAX",
              "MID", "MIN", "MMULT", "MOD", "SMALL", "NOT", "OR", "PI", "ROW", "SQRT", "SUM",
              "SUMPRODUCT", "TANH", "TRANSPOSE"}


def _functions(book) -> set[str]:
    import re
    import zipfile
    names = set()
    with zipfile.ZipFile(book) as z:
        for part in z.namelist():
            if part.startswith("xl/worksheets/sheet"):
                for text in re.findall(r"<f[^>]*>(.*?)</f>", z.read(part).decode()):
                    names.update(re.findall(r"([A-Za-z_][A-Za-z0-9_.]*)\(", text))
    return names


@pytest.mark.parametrize("style", ["cells", "arrays"])
def test_workbooks_use_only_functions_excel_2010_computes(examples, tmp_path, style):
    import torch
    from sheetnet.checkpoint import save_checkpoint
    from sheetnet.pipeline import export
    from sheetnet.options import ExportOptions
    tanh_gpt = random_gpt(seed=3, gelu="tanh")
    save_checkpoint(tmp_path / "g.pt", "gpt", tanh_gpt.config.to_dict(), tanh_gpt.state_dict(), {})
    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Sigmoid(), torch.nn.Linear(3, 3),
                                   torch.nn.LeakyReLU(0.1), torch.nn.Linear(3, 3), torch.nn.Tanh(),
                                   torch.nn.Linear(3, 3), torch.nn.SiLU(), torch.nn.Linear(3, 3),
                                   torch.nn.Softplus(2.0), torch.nn.Linear(3, 3), torch.nn.ELU(0.5),
                                   torch.nn.Linear(3, 1)), tmp_path / "mlp.pt")
    used = set()
    for model, opts in [(examples / "sqrt_2x2.pt", {}), (examples / "textnet.pt", {}),
                        (examples / "gpt.pt", {"prompt": "The cell"}),
                        (tmp_path / "g.pt", {"tokens": [1, 2]}), (tmp_path / "mlp.pt", {})]:
        book = tmp_path / f"{model.stem}.xlsx"
        export(model, book, ExportOptions(style=style, force=True, **opts))
        used |= _functions(book)
    assert {"SUMPRODUCT", "EXACT", "INDEX", "MATCH", "ERF", "TANH", "LN"} <= used  # the scan finds them
    assert used <= EXCEL_2010, sorted(used - EXCEL_2010)
