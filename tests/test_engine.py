"""sheetnet.engines.libreoffice against a real LibreOffice: no mocks on the happy paths, no skips.

If soffice or python3-uno is missing these tests fail (EngineError), on purpose.
"""
import math
import os
import re
import signal
import threading
import time
import zipfile

import numpy as np
import openpyxl
import pytest
from openpyxl.worksheet.formula import ArrayFormula

from sheetnet.engines import libreoffice as eng
from sheetnet.engines import uno_doc
from sheetnet.engines.base import Block, CellError, EngineError, FormulaError
from sheetnet.engines.libreoffice import LibreOffice as Engine
from sheetnet.engines.libreoffice import recalculate, soffice_path

TIMINGS = {}


@pytest.fixture(scope="module")
def lo():
    """One Engine shared by the module, as sheetnet uses it across many books."""
    t0 = time.perf_counter()
    with Engine(timeout=60) as engine:
        TIMINGS["start-up"] = time.perf_counter() - t0
        yield engine


def _book(path, sheets):
    """Write {sheet name: {cell: value or formula}} with openpyxl; return path."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, cells in sheets.items():
        ws = wb.create_sheet(name)
        for ref, value in cells.items():
            ws[ref] = value
    wb.save(path)
    return path


def _slow_book(path):
    """A tiny file whose one formula takes LibreOffice seconds: a 4000x4000 MMULT."""
    return _book(path, {"S": {"A1": "=SUM(MMULT(ROW(B1:B4000)*1,TRANSPOSE(ROW(B1:B4000))))"}})


def _live_group_members(pgid, wait=5.0):
    """Pids in process group pgid that are not zombies, after letting SIGKILLed ones exit."""
    deadline = time.monotonic() + wait
    while True:
        live = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] not in "ZX":
                live.append((int(pid), fields[0]))
        if not live or time.monotonic() > deadline:
            return live
        time.sleep(0.05)


def _assert_close(got, expected):
    assert type(got) is float
    assert got == expected or abs(got - expected) <= 1e-15 * max(1.0, abs(expected)), (got, expected)


def test_formulas_compute_in_full_float64(lo, tmp_path):
    w, x = [0.1, -0.7, 2.5], [0.3, 1.5, -0.2]
    a, b = [[1.5, -2.0], [0.25, 4.0]], [[0.1, 0.2], [-3.0, 0.7]]
    path = _book(tmp_path / "f.xlsx", {
        "Layer 1": {"A1": w[0], "B1": w[1], "C1": w[2], "A3": "label"},
        "In": {"A1": x[0], "B1": x[1], "C1": x[2], "A5": a[0][0], "B5": a[0][1], "A6": a[1][0],
               "B6": a[1][1], "D5": b[0][0], "E5": b[0][1], "D6": b[1][0], "E6": b[1][1]},
        "Out": {"A1": "=SUMPRODUCT('Layer 1'!A1:C1,In!A1:C1)", "B1": "=MAX('Layer 1'!A1:C1)",
                "C1": "=EXP(In!A1)", "D1": "=TANH(In!B1)", "E1": "=ERF(In!C1)", "G1": "=0.1+0.2",
                "A3": ArrayFormula("A3:B4", "=MMULT(In!A5:B6,In!D5:E6)")},
    })
    out, mm, text, empty = lo.recalculate(path, [Block("Out", 0, 0, 1, 7), Block("Out", 2, 0, 2, 2),
                                                 Block("Layer 1", 2, 0, 1, 2), Block("In", 0, 0, 0, 3)])
    _assert_close(out[0, 0], float(np.dot(w, x)))
    _assert_close(out[0, 1], 2.5)
    _assert_close(out[0, 2], math.exp(0.3))
    _assert_close(out[0, 3], math.tanh(1.5))
    _assert_close(out[0, 4], math.erf(-0.2))
    assert out[0, 5] is None
    assert out[0, 6] == 0.1 + 0.2  # 0.30000000000000004: all 17 digits, not LibreOffice's 15
    expected = np.array(a) @ np.array(b)
    for i in range(2):
        for j in range(2):
            _assert_close(mm[i, j], float(expected[i, j]))
    assert text.tolist() == [["label", None]]
    assert out.dtype == object and out.shape == (1, 7) and empty.shape == (0, 3)


def test_stale_cached_value_is_never_read(lo, tmp_path):
    path = _book(tmp_path / "stale.xlsx", {"S": {"A1": 21, "B1": "=A1*2"}})
    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    xml = parts["xl/worksheets/sheet1.xml"].decode()
    stale = re.sub(r"<f>A1\*2</f>\s*<v\s*(/>|>\s*</v>)", "<f>A1*2</f><v>999</v>", xml)
    assert stale != xml, xml
    parts["xl/worksheets/sheet1.xml"] = stale.encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in parts.items():
            z.writestr(name, data)
    assert openpyxl.load_workbook(path, data_only=True)["S"]["B1"].value == 999  # the lie is there
    (got,) = lo.recalculate(path, [Block("S", 0, 1, 1, 1)])
    assert got[0, 0] == 42.0


def test_number_edit_recomputes_dependents(lo, tmp_path):
    path = _book(tmp_path / "e.xlsx", {"S": {"A1": 3, "B1": "=A1*2"}, "T x": {"A1": "=S!B1+1"}})
    s, t = lo.recalculate(path, [Block("S", 0, 0, 1, 2), Block("T x", 0, 0, 1, 1)],
                          edits=[("S", 0, 0, 10.0)])
    assert s.tolist() == [[10.0, 20.0]] and t.tolist() == [[21.0]]
    (s,) = lo.recalculate(path, [Block("S", 0, 0, 1, 2)])  # the file itself is untouched
    assert s.tolist() == [[3.0, 6.0]]


def test_string_edit_is_literal_text(lo, tmp_path):
    path = _book(tmp_path / "s.xlsx", {"S": {"A1": 3, "B1": "=A1*2", "C1": "=ISTEXT(A1)"}})
    (s,) = lo.recalculate(path, [Block("S", 0, 0, 1, 3)], edits=[("S", 0, 0, "=1+1")],
                          check_errors=False)
    assert s.tolist() == [["=1+1", None, 1.0]]  # text * 2 is #VALUE!, read as None
    with pytest.raises(FormulaError) as info:
        lo.recalculate(path, [], edits=[("S", 0, 0, "=1+1")])
    assert info.value.errors == [CellError("S", "B1", "#VALUE!")]


def test_error_cells_raise_formula_error_naming_sheet_and_cell(lo, tmp_path, monkeypatch):
    path = _book(tmp_path / "err.xlsx", {
        "Layer 1": {"A1": 1, "B2": "=1/0", "C3": "=SQRT(-1)", "D4": "=NOSUCHFN(1)", "E5": "=NA()",
                    "F6": '="a"+1', "G7": "=EXP(1000)", "H8": "=B2+1"},
        "It's": {"A1": "=A2:A3 B5:B6", "C1": ArrayFormula("C1:D2", "=SQRT(-ROW(A1:B2))")},
    })
    with pytest.raises(FormulaError) as info:
        lo.recalculate(path, [Block("Layer 1", 0, 0, 1, 1)])
    err = info.value
    assert isinstance(err, EngineError)
    assert set(err.errors) == {
        CellError("Layer 1", "B2", "#DIV/0!"), CellError("Layer 1", "C3", "Err:502"),
        CellError("Layer 1", "D4", "#NAME?"), CellError("Layer 1", "E5", "#N/A"),
        CellError("Layer 1", "F6", "#VALUE!"), CellError("Layer 1", "G7", "#NUM!"),
        CellError("Layer 1", "H8", "#DIV/0!"), CellError("It's", "A1", "#REF!"),
        *(CellError("It's", c, "Err:502") for c in ("C1", "D1", "C2", "D2"))}
    assert err.total == 12
    assert str(err).startswith("12 formula cells compute to errors: 'Layer 1'!B2 #DIV/0!, ")
    assert str(err).endswith(", ...")
    fix_diagonal = [("Layer 1", i, i, 1.0) for i in range(1, 8)]
    with pytest.raises(FormulaError, match=r"^5 formula cells compute to errors: 'It''s'!"):
        lo.recalculate(path, [], edits=fix_diagonal)
    monkeypatch.setattr(uno_doc, "MAX_LISTED", 3)  # huge error regions are counted, not listed
    with pytest.raises(FormulaError) as info:
        lo.recalculate(path, [])
    assert len(info.value.errors) == 3 and info.value.total == 12
    (vals,) = lo.recalculate(path, [Block("Layer 1", 0, 0, 3, 3)], check_errors=False)
    assert vals.tolist() == [[1.0, None, None], [None, None, None], [None, None, None]]


def test_corrupt_or_missing_file_raises_engine_error(lo, tmp_path):
    bad = tmp_path / "random.xlsx"
    bad.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(EngineError, match="random.xlsx"):
        lo.recalculate(bad, [Block("S", 0, 0, 1, 1)])
    with pytest.raises(EngineError, match="nothere.xlsx"):
        lo.recalculate(tmp_path / "nothere.xlsx", [])
    good = _book(tmp_path / "g.xlsx", {"S": {"A1": 1}})
    with pytest.raises(EngineError, match="has no sheet 'No such'"):
        lo.recalculate(good, [Block("No such", 0, 0, 1, 1)])
    assert lo.recalculate(good, [Block("S", 0, 0, 1, 1)])[0].tolist() == [[1.0]]  # still usable


def test_missing_soffice_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(eng, "_FALLBACK_SOFFICE", str(tmp_path / "no-soffice"))
    hint = re.escape("LibreOffice (soffice) is not installed: apt-get install libreoffice-calc-nogui python3-uno")
    with pytest.raises(EngineError, match=hint):
        soffice_path()
    with pytest.raises(EngineError, match=hint):
        with Engine(timeout=5):
            pass


def test_hung_start_is_killed_quickly(monkeypatch, tmp_path):
    pidfile = tmp_path / "pid"
    monkeypatch.setattr(eng, "_soffice_command",
                        lambda profile, pipe: ["sh", "-c", f"echo $$ > {pidfile}; exec sleep 100"])
    t0 = time.perf_counter()
    with pytest.raises(EngineError, match=r"did not finish starting up within 0\.5 s"):
        Engine(timeout=0.5).start()
    assert time.perf_counter() - t0 < 5
    assert _live_group_members(int(pidfile.read_text())) == []


def test_hung_load_is_killed_and_next_call_restarts(tmp_path):
    slow, small = _slow_book(tmp_path / "slow.xlsx"), _book(tmp_path / "small.xlsx", {"S": {"A1": 7}})
    with Engine(timeout=60) as engine:
        engine.timeout = 0.5
        pgid = engine._proc.pid
        t0 = time.perf_counter()
        with pytest.raises(EngineError, match=r"did not finish recalculating slow\.xlsx within 0\.5 s"):
            engine.recalculate(slow, [Block("S", 0, 0, 1, 1)])
        assert time.perf_counter() - t0 < 5
        assert _live_group_members(pgid) == []
        engine.timeout = 60
        assert engine.recalculate(small, [Block("S", 0, 0, 1, 1)])[0].tolist() == [[7.0]]
        assert engine._proc.pid != pgid


def test_crash_mid_call_raises_and_engine_recovers(lo, tmp_path):
    slow, small = _slow_book(tmp_path / "slow.xlsx"), _book(tmp_path / "small.xlsx", {"S": {"A1": 7}})
    lo.start()
    pgid = lo._proc.pid
    killer = threading.Timer(0.3, os.killpg, (pgid, signal.SIGKILL))
    killer.start()
    with pytest.raises(EngineError, match=r"crashed while recalculating slow\.xlsx"):
        lo.recalculate(slow, [Block("S", 0, 0, 1, 1)])
    killer.join()
    assert _live_group_members(pgid) == []
    assert lo.recalculate(small, [Block("S", 0, 0, 1, 1)])[0].tolist() == [[7.0]]


def test_a_loaded_book_answers_from_an_edited_copy_when_soffice_dies_during_an_edit(lo, tmp_path):
    # LibreOffice 7.4 now and then crashes setting a cell of a loaded GPT book: a fresh soffice
    # answers that call from a copy with the edit written in, and the next call loads again
    slow = "=SUM(MMULT(ROW(B1:B4000)*C1,TRANSPOSE(ROW(B1:B4000))))"   # seconds, reads C1
    book = _book(tmp_path / "slow.xlsx", {"S": {"C1": 1, "A1": slow}})
    want = lambda c: c * sum(range(1, 4001)) ** 2  # noqa: E731
    with lo.loaded(book) as doc:
        pgid = lo._proc.pid
        killer = threading.Timer(0.3, os.killpg, (pgid, signal.SIGKILL))
        killer.start()
        (got,) = doc.recalculate(book, [Block("S", 0, 0, 1, 1)], edits=[("S", 0, 2, 2.0)])
        killer.join()
        assert got[0, 0] == want(2.0) and doc.crashes == 1 and doc.doc is None
        assert _live_group_members(pgid) == [] and lo._proc.pid != pgid
        # the next call loads the workbook again and edits it as saved (C1 = 1, not 2)
        (again,) = doc.recalculate(book, [Block("S", 0, 0, 1, 3)], edits=[("S", 0, 2, 3.0)])
        assert again[0].tolist() == [want(3.0), None, 3.0] and doc.doc is not None
        (saved,) = doc.recalculate(book, [Block("S", 0, 0, 1, 1)])
        assert saved[0, 0] == want(1.0) and doc.crashes == 1


def test_one_engine_reused_for_three_books(lo, tmp_path, capsys):
    lo.start()  # an earlier test may have killed it; keep restarts out of the timing
    times = []
    for k in range(3):
        path = _book(tmp_path / f"book {k} é.xlsx", {"S": {"A1": k, "A2": "=A1*10+1"}})
        t0 = time.perf_counter()
        (got,) = lo.recalculate(path, [Block("S", 0, 0, 2, 1)])
        times.append(time.perf_counter() - t0)
        assert got.tolist() == [[float(k)], [k * 10 + 1.0]]
    with capsys.disabled():
        print(f"\n[engine timing] start-up {TIMINGS.get('start-up', float('nan')):.2f} s; "
              f"per small book load+read {', '.join(f'{t:.3f}' for t in times)} s")


def test_one_shot_recalculate(tmp_path):
    path = _book(tmp_path / "one.xlsx", {"S": {"A1": 2, "B1": "=A1^10"}})
    (got,) = recalculate(path, [Block("S", 0, 0, 1, 2)], timeout=60)
    assert got.tolist() == [[2.0, 1024.0]]
