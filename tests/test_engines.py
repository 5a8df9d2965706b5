"""Every example workbook, both styles, recalculated by LibreOffice, Gnumeric and IronCalc and
compared with PyTorch in float64; the engine interface (edits, error cells, timeouts, a missing
engine).  No test skips: a missing engine fails loudly."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from sheetnet.engines import ENGINES, Block, EngineError, FormulaError, open_engine
from sheetnet.pipeline import export
from sheetnet.options import TOLERANCE, ExportOptions
from sheetnet.runner import run
from sheetnet.verifier import verify
from sheetnet.manifest import read_manifest

EXAMPLES = ["sqrt_2x2.pt", "sqrt_net.pt", "textnet.pt", "textnet_wide.pt", "gpt.pt"]
STYLES = ["cells", "arrays"]
OTHERS = [name for name in ENGINES if name != "libreoffice"]


@pytest.fixture(scope="module")
def books(examples, tmp_path_factory):
    out = {}
    folder = tmp_path_factory.mktemp("engines")
    for net in EXAMPLES:
        for style in STYLES:
            out[net, style] = folder / f"{net}.{style}.xlsx"
            export(examples / net, out[net, style], ExportOptions(style=style, force=True))
    return out


@pytest.fixture(scope="module")
def engines(engine):
    # LibreOffice: the session's running one; the others are started per call anyway
    running = {"libreoffice": engine}
    for name in OTHERS:
        running[name] = open_engine(name, timeout=600).__enter__()
    return running


@pytest.mark.parametrize("name", list(ENGINES))
@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("net", EXAMPLES)
def test_every_example_verifies_in_every_engine(books, engines, examples, net, style, name):
    report = verify(books[net, style], examples / net, engine=engines[name])
    assert report.tol == TOLERANCE  # IronCalc's ERF (~5e-11 off) still fits: GPT 8.4e-10
    assert report.ok, report.table()
    assert len(report.compared) > 5


@pytest.mark.parametrize("name", OTHERS)
def test_run_with_edits_matches_libreoffice(books, engines, name):
    # a typed word goes in as text, the temperature as a number; outputs and the chain agree
    book = books["textnet.pt", "cells"]
    want = run(book, prompt="cat", temperature=0.7, engine=engines["libreoffice"])
    got = run(book, prompt="cat", temperature=0.7, engine=engines[name])
    assert got["next_token"] == want["next_token"] and got["chain"] == want["chain"]
    np.testing.assert_allclose(got["probs"], want["probs"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["outputs"], want["outputs"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", OTHERS)
def test_a_gpt_prompt_runs_the_same(books, engines, name):
    book = books["gpt.pt", "arrays"]
    want = run(book, prompt="Hello", engine=engines["libreoffice"])
    got = run(book, prompt="Hello", engine=engines[name])
    assert got["tokens"] == want["tokens"] and got["next_token"] == want["next_token"]
    np.testing.assert_allclose(got["outputs"], want["outputs"], rtol=0, atol=1e-9)


def _input_cell(book):
    entry = read_manifest(book).nodes["x"]
    return entry.sheet, entry.row, entry.col


@pytest.mark.parametrize("name", OTHERS)
def test_error_cells_are_named_by_sheet_and_cell_as_libreoffice_names_them(books, engines, name):
    book = books["sqrt_2x2.pt", "cells"]
    edits = [(*_input_cell(book), "not a number")]  # text where x goes: x*w is #VALUE!
    found = {}
    for engine in ("libreoffice", name):
        with pytest.raises(FormulaError) as info:
            engines[engine].recalculate(book, [Block("Input", 0, 0, 1, 1)], edits=edits)
        found[engine] = {(e.sheet, e.cell) for e in info.value.errors}
        assert info.value.total >= len(info.value.errors) > 0
        assert all(e.error.startswith("#") for e in info.value.errors)
    assert found[name] == found["libreoffice"]
    # unchecked, an error cell reads as empty
    got = engines[name].recalculate(book, [Block(*_input_cell(book), 1, 1)], edits=edits,
                                    check_errors=False)
    assert got[0][0, 0] == "not a number"


@pytest.mark.parametrize("name", OTHERS)
def test_a_slow_recalculation_is_stopped_at_the_timeout(books, name):
    with open_engine(name, timeout=0.01) as eng:
        with pytest.raises(EngineError, match=r"did not finish recalculating .* within 0.01 s"):
            eng.recalculate(books["gpt.pt", "cells"], [Block("Output", 0, 0, 1, 1)])


@pytest.mark.parametrize("name", OTHERS)
def test_a_missing_sheet_is_named(books, engines, name):
    with pytest.raises(EngineError, match="has no sheet 'Nope'"):
        engines[name].recalculate(books["sqrt_2x2.pt", "cells"], [Block("Nope", 0, 0, 1, 1)])


def test_missing_gnumeric_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EngineError, match=r"^Gnumeric \(ssconvert\) is not installed: "
                                          r"apt-get install gnumeric$"):
        open_engine("gnumeric").__enter__()


def test_missing_ironcalc_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ironcalc", None)  # import ironcalc now fails
    with pytest.raises(EngineError, match="IronCalc is not installed: pip install ironcalc"):
        open_engine("ironcalc").__enter__()


def test_cli_verify_all_prints_a_column_per_engine(books, examples):
    from click.testing import CliRunner
    from sheetnet.cli import main
    result = CliRunner().invoke(main, ["verify", str(books["sqrt_2x2.pt", "arrays"]),
                                       str(examples / "sqrt_2x2.pt"), "--engine", "all"])
    assert result.exit_code == 0, result.output
    header, *_, last = result.output.strip().splitlines()
    assert header.split()[-3:] == list(ENGINES)
    assert last.startswith("libreoffice all match; gnumeric all match; ironcalc all match")


def test_cli_unknown_engine_is_one_line(books):
    from click.testing import CliRunner
    from sheetnet.cli import main
    result = CliRunner().invoke(main, ["run", str(books["sqrt_2x2.pt", "cells"]),
                                       "--engine", "excel"])
    assert result.exit_code == 2 and "Invalid value for '--engine'" in result.output
