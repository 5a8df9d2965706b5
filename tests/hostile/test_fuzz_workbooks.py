"""Property: whatever is done to an exported workbook (truncated, bytes flipped, zip parts dropped
or duplicated, a manifest value replaced by one of another type), ``import`` and ``inspect`` end
with exit 0 or exactly one "error: ..." line, never a traceback."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from cli_helpers import invoke
from hostile.helpers import ROOT
from hostile.test_workbooks import manifest_of, with_manifest
from sheetnet.pipeline import export
from sheetnet.options import ExportOptions

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats()
                    | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)


@pytest.fixture(scope="module")
def books(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("fuzz")
    out = []
    for name, options in (("sqrt_2x2", ExportOptions()), ("textnet", ExportOptions()),
                          ("gpt", ExportOptions(context=4))):
        export(ROOT / "examples" / f"{name}.pt", folder / f"{name}.xlsx", options)
        out.append(folder / f"{name}.xlsx")
    return out


def one_line_or_ok(*args) -> None:
    res = invoke(*args)
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    if res.exit_code != 0:
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), res.output


def check_both(book: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.pt"
    one_line_or_ok("import", book, out, "--force")
    one_line_or_ok("inspect", book)


@SETTINGS
@given(which=st.integers(0, 2), cut=st.floats(0, 1), flips=st.lists(
    st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=8))
def test_damaged_bytes(books, tmp_path, which, cut, flips):
    data = bytearray(books[which].read_bytes())
    for at, byte in flips:
        data[int(at * (len(data) - 1))] = byte
    data = data[:max(1, int(cut * len(data)))] if cut < 0.9 else data
    book = tmp_path / "bad.xlsx"
    book.write_bytes(bytes(data))
    check_both(book, tmp_path)


@SETTINGS
@given(which=st.integers(0, 2), drop=st.lists(st.integers(0, 40), max_size=3),
       dup=st.lists(st.integers(0, 40), max_size=3))
def test_parts_dropped_or_duplicated(books, tmp_path, which, drop, dup):
    with zipfile.ZipFile(books[which]) as z:
        parts = [(n, z.read(n)) for n in z.namelist()]
    keep = [p for i, p in enumerate(parts) if i % len(parts) not in {d % len(parts) for d in drop}]
    keep += [parts[d % len(parts)] for d in dup]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in keep:
            z.writestr(name, data)
    book = tmp_path / "bad.xlsx"
    book.write_bytes(buf.getvalue())
    check_both(book, tmp_path)


def _leaves(value, path=()):
    # every (path, leaf) of a JSON value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, path + (i,))
    else:
        yield path, value


@SETTINGS
@given(which=st.integers(0, 2), pick=st.floats(0, 1), value=JSON)
def test_manifest_leaf_replaced(books, tmp_path, which, pick, value):
    manifest = manifest_of(books[which])
    leaves = list(_leaves(manifest))
    path, old = leaves[int(pick * (len(leaves) - 1))]
    if type(value) is type(old):   # another type: wrap it, so the leaf's type changes
        value = [value]
    target = manifest
    for k in path[:-1]:
        target = target[k]
    target[path[-1]] = value
    book = with_manifest(books[which], tmp_path / "bad.xlsx", json.loads(json.dumps(manifest)))
    check_both(book, tmp_path)
