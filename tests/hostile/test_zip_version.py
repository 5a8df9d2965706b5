"""A zip whose records say they need a newer zip version than Python's zipfile reads (found by
the checkpoint property test: one flipped byte made zipfile raise NotImplementedError, a
traceback).  Both doors that open zips, checkpoints and workbooks, answer in one line."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest

from cli_helpers import invoke, one_line_error
from hostile.helpers import ROOT, files_in
from sheetnet.pipeline import export


def _needs_version_6_4(src: Path, dst: Path) -> Path:
    # "version needed to extract" = 64 in the first local header and central directory entry
    data = bytearray(src.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 4), (b"PK\x01\x02", 6)):
        k = data.find(signature)
        data[k + offset:k + offset + 2] = struct.pack("<H", 64)
    dst.write_bytes(bytes(data))
    return dst


@pytest.mark.parametrize("door", ["checkpoint", "workbook"])
def test_a_zip_version_zipfile_lacks_is_one_line(tmp_path, door):
    if door == "checkpoint":
        bad = _needs_version_6_4(ROOT / "examples" / "sqrt_2x2.pt", tmp_path / "bad.pt")
        args, words = ("export", bad, tmp_path / "out.xlsx"), "not a loadable PyTorch checkpoint"
    else:
        book = tmp_path / "book.xlsx"
        export(ROOT / "examples" / "sqrt_2x2.pt", book)
        bad = _needs_version_6_4(book, tmp_path / "bad.xlsx")
        args, words = ("import", bad, tmp_path / "out.pt"), "not a readable .xlsx workbook"
    before = files_in(tmp_path)
    one_line_error(invoke(*args), words)
    assert files_in(tmp_path) == before
