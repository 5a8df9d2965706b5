"""Recalculation that follows the edit (issue 16, item 4): in a token-id GPT workbook, editing one
prompt token dirties the positions from that one on, never the rows before it.

Spreadsheet engines recompute every cell that reads an edited cell, directly or through others,
whether or not its value changes.  So the proof is the workbook's own dependency graph: every
formula's references (ranges expanded, array formulas covering their whole range) read from the
written .xlsx, and the cells reachable from the edited input cell.  Both styles.
"""
from __future__ import annotations

import re
from collections import defaultdict

import openpyxl
import pytest
from openpyxl.utils import column_index_from_string, range_boundaries

from foreign import random_gpt
from sheetnet.checkpoint import save_checkpoint
from sheetnet.manifest import read_manifest
from sheetnet.options import ExportOptions
from sheetnet.pipeline import export

T, PROMPT = 8, [3, 1, 4, 1, 5]
_STRING = re.compile(r'"(?:[^"]|"")*"')
_REF = re.compile(r"(?:'((?:[^']|'')+)'!|([A-Za-z_][\w.]*)!)?"
                  r"(?<![\w.$])(\$?[A-Z]{1,3}\$?\d+(?::\$?[A-Z]{1,3}\$?\d+)?)(?![\w(])")
# the displays that read the prompt's length n (the text so far, the steps table, the next
# token): a handful of cells each, none of them read by a position's computation
DISPLAYS = ("steps.", "gen.text_so_far", "gen.generated_so_far", "tokens.text", "next.")


def _cells(ref: str):
    c0, r0, c1, r1 = range_boundaries(ref.replace("$", ""))
    return ((r, c) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1))


def _names(book) -> dict[str, tuple[str, str]]:
    # defined names (sheetnet names whole input blocks: "prompt") -> (sheet, range)
    out = {}
    for name, defined in book.defined_names.items():
        for sheet, ref in defined.destinations:
            out[name.lower()] = (sheet, ref)
    return out


def dependents(path) -> dict:
    """(sheet, row, col) -> the formula cells that read it (1-based rows and columns)."""
    book, out = openpyxl.load_workbook(path), defaultdict(set)
    names = _names(book)
    word = re.compile(r"(?<![\w.!'$])([A-Za-z_][\w.]*)(?![\w.(!])")
    assert names, "the workbook names its input blocks: the walk must follow the names"
    for ws in book.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                value = cell.value
                text = getattr(value, "text", value)   # an ArrayFormula keeps its text in .text
                if not (isinstance(text, str) and text.startswith("=")):
                    continue
                covers = list(_cells(value.ref)) if hasattr(value, "ref") else [(cell.row, cell.column)]
                text = _STRING.sub('""', text)
                reads = [((m.group(1) or "").replace("''", "'") or m.group(2) or ws.title,
                          m.group(3)) for m in _REF.finditer(text)]
                reads += [names[w.lower()] for w in word.findall(text) if w.lower() in names]
                for sheet, ref in reads:
                    for r, c in _cells(ref):
                        out[(sheet, r, c)].update((ws.title, rr, cc) for rr, cc in covers)
    return out


def dirty_from(deps: dict, start) -> set:
    seen, todo = set(), [start]
    while todo:
        for d in deps.get(todo.pop(), ()):
            if d not in seen:
                seen.add(d)
                todo.append(d)
    return seen


def position_rows(entry, cells: set) -> set[int]:
    """The tensor rows (positions, for a (T, ...) node) of ``entry`` among ``cells``."""
    rows = set()
    r0, c0 = entry.row + 1, entry.col + 1          # manifest: 0-based top-left
    nrows, ncols = entry.cells
    for r in range(nrows):
        for c in range(ncols):
            if (entry.sheet, r0 + r, c0 + c) in cells:
                rows.add(c if entry.layout == "transposed" else r)
    return rows


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    model = random_gpt(seed=4, block_size=T)
    path = tmp_path_factory.mktemp("ckpt") / "gpt.pt"
    save_checkpoint(path, "gpt", model.config.to_dict(), model.state_dict(), {})
    return path


@pytest.mark.parametrize("style", ["cells", "arrays"])
@pytest.mark.parametrize("edited", [len(PROMPT) - 1, 2])
def test_an_edited_prompt_token_dirties_only_its_position_and_later(checkpoint, tmp_path, style,
                                                                  edited):
    book = tmp_path / "gpt.xlsx"
    export(checkpoint, book, ExportOptions(tokens=PROMPT, context=T, style=style))
    m = read_manifest(book)
    prompt = m.nodes["prompt"]
    cell = (prompt.sheet, prompt.row + 1 + edited, prompt.col + 1)
    dirty = dirty_from(dependents(book), cell)

    early = {name: sorted(r for r in position_rows(e, dirty) if r < edited)
             for name, e in m.nodes.items() if e.shape[0] == T and not name.startswith(DISPLAYS)}
    assert {name: rows for name, rows in early.items() if rows} == {}
    # the edit does reach every later position's logits and draw (the walk above is not empty)
    for name in ("logits", "sample.id", "gen.id"):
        assert position_rows(m.nodes[name], dirty) >= set(range(edited + 1, T)), name
    assert position_rows(m.nodes["logits"], dirty) >= {edited}


def test_arrays_style_writes_attention_outputs_one_array_per_position_row(checkpoint, tmp_path):
    # y = probs @ v (ops.CausalMatMul) has no whole-node array, only its row form: each
    # position's (1, head size) row is one MMULT of that row's probabilities and v's rows up to
    # it, not one per-cell MMULT per number (LibreOffice compiles and listens to each of those)
    book = tmp_path / "gpt.xlsx"
    export(checkpoint, book, ExportOptions(tokens=PROMPT, context=T, style="arrays"))
    m = read_manifest(book)
    ws = openpyxl.load_workbook(book)[m.nodes["h0.attn.y0"].sheet]
    y = m.nodes["h0.attn.y0"]
    arrays = []
    for i in range(T):
        value = ws.cell(y.row + 1 + i, y.col + 1).value
        assert hasattr(value, "ref") and value.text.startswith("=MMULT("), (i, value)
        arrays.append(value.ref)
    width = y.shape[1]
    assert [len(list(_cells(ref))) for ref in arrays] == [width] * T  # a row each, whole width
