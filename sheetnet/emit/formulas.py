"""Op -> formula text, one function per op, in one table (``CELL_FORMULAS``).

Each function gets the op, the references (``Refs``) and the output cell (i, j) and returns the
formula without its leading "=".  Only functions and forms that Excel 2010+, LibreOffice,
Gnumeric and IronCalc all compute (tests/test_engines.py recalculates every example in each):
no range built from two INDEXes, no ISTEXT over a range, and a formula that applies a function
to each cell of a range (EXACT, EXP) inside a SUMPRODUCT is an ``ArrayText``.
This module knows nothing about openpyxl or the layout beyond ``Refs``.
"""
from __future__ import annotations

from ..ir import graph as ir
from .a1 import Refs, number


class ArrayText(str):
    """Formula text entered as a one-cell array formula ({=...}).

    Gnumeric evaluates ``EXACT(range, x)`` or ``EXP(range - x)`` inside a plain SUMPRODUCT cell
    at one cell of the range, not at each (wrong answers, no error); as an array formula every
    engine evaluates them cell by cell, and LibreOffice's and Excel's values do not change.
    """


def _array(fn):
    return lambda *args: ArrayText(fn(*args))


def linear(op: ir.Linear, r: Refs, i: int, j: int) -> str:
    # z[i, j] = x[i, :] . W[j, :] + b[j]: a row of activations against a row (neuron) of weights
    if r.shape(op.x)[1] == 1:
        dot = f"{r.cell(op.x, i, 0)}*{r.cell(op.w, j, 0)}"
    else:
        dot = f"SUMPRODUCT({r.row(op.x, i)},{r.row(op.w, j)})"
    return f"{dot}+{r.cell(op.b, j, 0)}" if op.b else dot


def gelu(op: ir.Gelu, r: Refs, i: int, j: int) -> str:
    x = r.cell(op.x, i, j)
    if op.form == "tanh":
        return f"0.5*{x}*(1+TANH(SQRT(2/PI())*({x}+0.044715*{x}^3)))"
    return f"0.5*{x}*(1+ERF({x}/SQRT(2)))"


def _unary(pattern: str):
    return lambda op, r, i, j: pattern.format(x=r.cell(op.x, i, j))


def _binary(pattern: str):
    return lambda op, r, i, j: pattern.format(a=r.cell(op.a, i, j), b=r.cell(op.b, i, j))


def largest_id(op: ir.LargestIds, r: Refs, i: int, j: int) -> str:
    # the position of the (i+1)-th largest value v.  Ties (probabilities that underflowed to 0,
    # say) take their positions in order, each once: v's first occurrence has rank (the count of
    # values above v) + 1, so rank i+1 is v's (i+1 - count above)-th occurrence, which SMALL
    # finds among the positions holding v (n, past the end, elsewhere).  The positions count
    # along the row or down the column alike (a transposed layout), one of the two terms is 0.
    x, x0, n = r.all(op.x), r.cell(op.x, 0, 0), r.shape(op.x)[1]
    v = f"LARGE({x},{i + 1})"
    at = f"COLUMN({x})-COLUMN({x0})+ROW({x})-ROW({x0})"
    return ArrayText(f"SMALL(IF({x}={v},{at},{n}),{i + 1}-SUMPRODUCT(({x}>{v})*1))")


CELL_FORMULAS = {
    ir.Linear: linear,
    ir.Relu: _unary("MAX(0,{x})"),
    ir.LeakyRelu: lambda op, r, i, j: "IF({x}>0,{x},{s}*{x})".format(
        x=r.cell(op.x, i, j), s=number(op.slope)),
    ir.Tanh: _unary("TANH({x})"),
    ir.Sigmoid: _unary("1/(1+EXP(-{x}))"),
    ir.Gelu: gelu,
    ir.Copy: _unary("{x}"),
    ir.Sqrt: _unary("SQRT({x})"),
    ir.Step: _unary("IF({x}>0,1,0)"),
    ir.Add: _binary("{a}+{b}"),
    ir.Sub: _binary("{a}-{b}"),
}


# --- text and transformer ops (the GPT) --------------------------------------------------------
def _message(template: str, cell: str) -> str:
    # a formula string that shows ``template`` with the cell's text in place of {}
    return '"' + template.replace('"', '""').format('"&' + cell + '&"') + '"'


UNKNOWN_CHAR = "not in vocab: '{}'"  # what a token id cell says for a character outside the vocabulary


def chars(op: ir.Chars, r: Refs, i: int, j: int) -> str:
    # the last n characters: start n-1 characters before the end; MID past the end gives ""
    t = r.cell(op.text, 0, 0)
    return f"MID({t},LEN({t})-{r.cell(op.n, 0, 0)}+{i + 1},1)"


@_array
def token_id(op: ir.TokenId, r: Refs, i: int, j: int) -> str:
    # EXACT tells 'a' from 'A' (MATCH would not).  SUMPRODUCT evaluates EXACT and ROW over the
    # vocabulary column without an array formula (Excel 2010+), and MIN finds the first matching
    # row: (row - n) where EXACT holds, 0 elsewhere, so MIN + n is the id, or n when none matched
    c, chars, n = r.cell(op.char, i, 0), r.all(op.chars), r.shape(op.chars)[0]
    rows = f"ROW({chars})-ROW({r.cell(op.chars, 0, 0)})"  # 0, 1, ... down the column
    found = f"(SUMPRODUCT(MIN(({rows}-{n})*EXACT({c},{chars})))+{n})"
    return f'IF({c}="",{op.pad},IF({found}<{n},{found},{_message(UNKNOWN_CHAR, c)}))'


def prompt_note(op: ir.PromptNote, r: Refs, i: int, j: int) -> str:
    t, cap = r.cell(op.text, 0, 0), op.cap
    too_long = (f'"the prompt has "&LEN({t})&" characters; the context holds {cap}: '
                f'the sheet reads the last {cap}"')
    # COUNT, not SUMPRODUCT(ISTEXT(...)) (0 in IronCalc): an id cell holds a number or a message
    ids, n = r.all(op.ids), r.shape(op.ids)[0] * r.shape(op.ids)[1]
    return (f'IF(COUNT({ids})<{n},"not in vocab: see the id column",'
            f'IF(LEN({t})>{cap},{too_long},IF(LEN({t})=0,"type a prompt","ok")))')


def _upto_diagonal(r: Refs, name: str, i: int, causal: bool) -> str:
    # row i of a (T, T) score block; causal: only its first i+1 cells (the rest are masked)
    cols = (0, i + 1) if causal else (0, r.shape(name)[1])
    return r.span(name, (i, i + 1), cols)


def causal_scores(op: ir.CausalScores, r: Refs, i: int, j: int) -> str:
    if j > i:
        return '""'  # the future: masked (PyTorch's -inf), shown blank
    return f"SUMPRODUCT({r.row(op.q, i)},{r.row(op.k, j)})/SQRT({r.shape(op.q)[1]})"


def softmax(op: ir.Softmax, r: Refs, i: int, j: int) -> str:
    if op.causal and j > i:
        return "0"
    return f"EXP({r.cell(op.x, i, j)}-{r.cell(op.max, i, 0)})/{r.cell(op.sum, i, 0)}"


def concat(op: ir.Concat, r: Refs, i: int, j: int) -> str:
    for part in op.parts:
        width = r.shape(part)[1]
        if j < width:
            return r.cell(part, i, j)
        j -= width
    raise IndexError("column beyond the concatenated parts")


CELL_FORMULAS.update({
    ir.PromptLength: lambda op, r, i, j: f"MIN(LEN({r.cell(op.text, 0, 0)}),{op.cap})",
    ir.Chars: chars,
    ir.TokenId: token_id,
    ir.PromptNote: prompt_note,
    ir.Lookup: lambda op, r, i, j: r.index(op.table, f"{r.cell(op.ids, i, 0)}+1", j + 1),
    ir.RowMean: lambda op, r, i, j: f"AVERAGE({r.row(op.x, i)})",
    ir.RowVar: lambda op, r, i, j: "SUMPRODUCT(({x}-{m})^2)/{n}".format(
        x=r.row(op.x, i), m=r.cell(op.mean, i, 0), n=r.shape(op.x)[1]),
    ir.Normalize: lambda op, r, i, j: "({x}-{m})/SQRT({v}+{eps})".format(
        x=r.cell(op.x, i, j), m=r.cell(op.mean, i, 0), v=r.cell(op.var, i, 0), eps=number(op.eps)),
    ir.ScaleShift: lambda op, r, i, j: f"{r.cell(op.x, i, j)}*{r.cell(op.gain, 0, j)}" + (
        f"+{r.cell(op.bias, 0, j)}" if op.bias else ""),
    ir.CausalScores: causal_scores,
    ir.RowMax: lambda op, r, i, j: f"MAX({_upto_diagonal(r, op.x, i, op.causal)})",
    ir.RowSumExp: _array(lambda op, r, i, j: "SUMPRODUCT(EXP({x}-{m}))".format(
        x=_upto_diagonal(r, op.x, i, op.causal), m=r.cell(op.max, i, 0))),
    ir.Softmax: softmax,
    # a row times a column: MMULT gives the one number (SUMPRODUCT needs equal shapes)
    ir.MatMul: lambda op, r, i, j: f"MMULT({r.row(op.a, i)},{r.col(op.b, j)})",
    ir.Concat: concat,
    ir.PickRow: lambda op, r, i, j: r.index(op.x, f"MAX({r.cell(op.n, 0, 0)},1)", j + 1),
    ir.Divide: lambda op, r, i, j: f"{r.cell(op.x, i, j)}/{r.cell(op.by, 0, 0)}",
    ir.Largest: lambda op, r, i, j: f"LARGE({r.all(op.x)},{i + 1})",
    ir.LargestIds: largest_id,
})


# --- the tiny text net: whole words ------------------------------------------------------------
@_array
def word_id(op: ir.WordId, r: Refs, i: int, j: int) -> str:
    # EXACT, not MATCH: MATCH ignores case ("Hello" = "hello") and reads * ? ~ as wildcards
    w, words, ids = r.cell(op.word, i, 0), r.all(op.words), r.all(op.ids)
    hits = f"SUMPRODUCT(EXACT({words},{w})*1)"
    return (f"IF({hits}=1,SUMPRODUCT(EXACT({words},{w})*{ids}),"
            f"IF({hits}>1,{_message(op.TWICE, w)},"
            f"IF({w}=\"\",{_message(op.BLANK, w)},{_message(op.MISSING, w)})))")


CELL_FORMULAS.update({
    ir.WordId: word_id,
    # MAX is one of the row's values exactly, so MATCH(..., 0) finds its first column
    ir.RowArgmax: lambda op, r, i, j: "MATCH(MAX({x}),{x},0)-1".format(x=r.row(op.x, i)),
})


# --- token ids typed into cells ----------------------------------------------------------------
def checked_ids(op: ir.CheckedIds, r: Refs, i: int, j: int) -> str:
    # ISNUMBER before the range test: a text cell would make INT() an error, not a message
    x, n = r.cell(op.x, i, 0), r.cell(op.n, 0, 0)
    gap, out = f'"{op.GAP.format(i)}"', _message(op.OUTSIDE.format("{}", op.size - 1), x)
    return (f'IF({x}="",IF({n}>{i},{gap},{op.pad}),IF(ISNUMBER({x}),'
            f"IF(AND({x}>=0,{x}<{op.size},{x}=INT({x})),{x},{out}),{out}))")


CELL_FORMULAS.update({
    # a blank cell, or one that computes to "", is not filled
    ir.FilledCount: _array(lambda op, r, i, j: f'SUMPRODUCT(({r.all(op.x)}<>"")*1)'),
    ir.CheckedIds: checked_ids,
    ir.TokenText: lambda op, r, i, j: 'IF({n}>{i},{text},"")'.format(
        n=r.cell(op.n, 0, 0), i=i, text=r.index(op.table, f"{r.cell(op.ids, i, 0)}+1", 1)),
    # COUNT, not SUMPRODUCT(ISTEXT(...)) (see prompt_note)
    ir.IdsNote: lambda op, r, i, j: 'IF(COUNT({ids})<{size},"{bad}",IF({n}=0,"{empty}","ok"))'
    .format(ids=r.all(op.ids), size=r.shape(op.ids)[0] * r.shape(op.ids)[1],
            n=r.cell(op.n, 0, 0), bad=op.BAD, empty=op.EMPTY),
})


def cell_formula(op, refs: Refs, i: int, j: int) -> str:
    """The formula text (no leading "=") that computes output cell (i, j) of ``op``."""
    try:
        fn = CELL_FORMULAS[type(op)]
    except KeyError:
        raise NotImplementedError(f"no formula for op {type(op).__name__}") from None
    return fn(op, refs, i, j)
