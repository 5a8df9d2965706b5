"""Column labels fit their columns (issue 19): on the rendered GPT Prompt page the token table's
headers ran into one another ("its text nuation so far"); every column is now at least as wide as
its label (up to emit.book.LABEL_WIDTH_MAX), except the one-digit on/off columns made narrow on
purpose.  Read from the exported files (the widths the writer wrote), no engine."""
import openpyxl
import pytest
from openpyxl.utils import get_column_letter

from sheetnet.emit.book import LABEL_WIDTH_MAX, NARROW, _fit_column_labels
from sheetnet.manifest import read_manifest
from sheetnet.options import ExportOptions
from sheetnet.pipeline import export
from sheetnet.spec import SheetSpec, TextRun

EXAMPLES = [("gpt.pt", ExportOptions(prompt="The cell")), ("sqrt_net.pt", ExportOptions()),
            ("textnet.pt", ExportOptions())]


@pytest.fixture(scope="module")
def books(examples, tmp_path_factory):
    out = tmp_path_factory.mktemp("labels")
    made = {}
    for name, options in EXAMPLES:
        made[name] = out / (name + ".xlsx")
        export(examples / name, made[name], options)
    return made


def _width(ws, col: int) -> float:
    # the column's width as written: its <col> entry, else the sheet's default
    dim = ws.column_dimensions.get(get_column_letter(col + 1))
    return dim.width if dim is not None and dim.customWidth else ws.sheet_format.defaultColWidth


@pytest.mark.parametrize("name", [n for n, _ in EXAMPLES])
def test_every_column_label_fits_its_column(books, name):
    manifest, wb = read_manifest(books[name]), openpyxl.load_workbook(books[name])
    checked = 0
    for entry in manifest.nodes.values():
        if entry.op == "View" or entry.laid_transposed:
            continue
        ws = wb[entry.sheet]
        for c in range(entry.col, entry.col + entry.shape[1]):
            label = ws.cell(entry.row, c + 1).value        # the line above the data
            if not isinstance(label, str) or label.startswith("=") or _width(ws, c) == NARROW:
                continue
            assert _width(ws, c) >= min(len(label) + 1, LABEL_WIDTH_MAX), (entry.sheet, c, label)
            checked += 1
    assert checked > 0


@pytest.mark.parametrize("texts, widths, want", [
    (["x", "a long column label"], {}, {2: 20}),          # widened to the label
    (["short", "tiny"], {}, {}),                          # fits the default: left alone
    (["l" * 60], {}, {1: LABEL_WIDTH_MAX}),               # capped
    (["on/off pattern"], {1: NARROW}, {1: NARROW}),       # narrow on purpose: kept
    (["label"], {1: 30}, {1: 30}),                        # wider already: kept
])
def test_fit_column_labels(texts, widths, want):
    sheet = SheetSpec("S", widths=dict(widths))
    sheet.runs.append(TextRun(0, 1, texts, down=False, kind="column_label"))
    sheet.runs.append(TextRun(1, 0, ["a row label that is long"], down=True))  # rows: ignored
    _fit_column_labels(sheet)
    assert sheet.widths == want
