"""Reading and editing .xlsx files directly, for engines that work on files (Gnumeric).

``patched`` writes a copy of a workbook with some cells set (an engine run from the command
line cannot be told to edit); ``read_values`` reads the values an engine saved into an .xlsx,
with every formula error found on the way.
"""
from __future__ import annotations

import posixpath
import re
import zipfile
from collections import defaultdict
from pathlib import Path
from xml.etree.ElementTree import iterparse

import numpy as np

from ..a1 import cell_name, quote_sheet
from ..xlsx_parts import xml_text
from .base import MAX_LISTED, CellError, EngineError, empty_blocks, plain

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_REF = re.compile(r"([A-Z]+)([0-9]+)")


def sheet_parts(zf: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name -> its part in the zip ("xl/worksheets/sheet3.xml"), in workbook order."""
    rels = {}
    with zf.open("xl/_rels/workbook.xml.rels") as f:
        for _, el in iterparse(f):
            if el.tag.endswith("Relationship"):
                target = el.get("Target")
                rels[el.get("Id")] = (target.lstrip("/") if target.startswith("/")
                                      else posixpath.normpath(posixpath.join("xl", target)))
    parts = {}
    with zf.open("xl/workbook.xml") as f:
        for _, el in iterparse(f):
            if el.tag == _MAIN + "sheet":
                parts[el.get("name")] = rels[el.get(_REL_ID)]
    return parts


def _cell_xml(ref: str, head: str, value) -> str:
    style = re.search(r' s="[0-9]+"', head)
    s = style.group(0) if style else ""
    if isinstance(value, str):
        return (f'<c r="{ref}"{s} t="inlineStr"><is><t xml:space="preserve">{xml_text(value)}'
                "</t></is></c>")
    return f'<c r="{ref}"{s}><v>{float(value)!r}</v></c>'


def patched(path: Path, edits, out: Path) -> Path:
    """Write ``path`` to ``out`` with the cells of ``edits`` ((sheet, row, col, value), 0-based)
    set: a number as a number, a str always as text.  Returns ``out``.

    Raises:
        EngineError: a sheet or a cell is not in the workbook (only cells sheetnet wrote, with
            their reference, can be set: its input cells always are).
    """
    by_sheet = defaultdict(dict)
    for sheet, row, col, value in edits:
        by_sheet[sheet][cell_name(row, col)] = value
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED,
                                                       compresslevel=1) as dst:
        parts = sheet_parts(src)
        changed = {}
        for sheet, cells in by_sheet.items():
            if sheet not in parts:
                raise EngineError(f"{path.name} has no sheet {quote_sheet(sheet)}")
            xml = src.read(parts[sheet]).decode()
            for ref, value in cells.items():
                pattern = re.compile(rf'<c r="{ref}"(?=[ />])([^>]*?)(?:/>|>.*?</c>)', re.S)
                xml, n = pattern.subn(lambda m: _cell_xml(ref, m.group(1), value), xml, count=1)
                if not n:
                    raise EngineError(f"cannot set {quote_sheet(sheet)}!{ref}: the workbook has "
                                      "no such cell")
            changed[parts[sheet]] = xml.encode()
        for info in src.infolist():
            dst.writestr(info, changed.get(info.filename) or src.read(info.filename))
    return out


def _shared_strings(zf: zipfile.ZipFile) -> list[str]:
    if "xl/sharedStrings.xml" not in zf.namelist():
        return []
    out = []
    with zf.open("xl/sharedStrings.xml") as f:
        for _, el in iterparse(f):
            if el.tag == _MAIN + "si":
                out.append("".join(t.text or "" for t in el.iter(_MAIN + "t")))
                el.clear()
    return out


def read_values(path: Path, reads, book: str) -> tuple[list[np.ndarray], list[CellError], int]:
    """The saved values of the ``reads`` blocks of an .xlsx, and its error cells.

    Returns:
        (one object array per Block: float, str or None; the first MAX_LISTED error cells;
        the count of error cells on every sheet).
    Raises:
        EngineError: a block's sheet is not in the workbook.
    """
    out = empty_blocks(reads)
    errors, total = [], 0
    with zipfile.ZipFile(path) as zf:
        parts, strings = sheet_parts(zf), _shared_strings(zf)
        for b in reads:
            if b.sheet not in parts:
                raise EngineError(f"{book} has no sheet {quote_sheet(b.sheet)}")
        for sheet, part in parts.items():
            rows = defaultdict(list)  # sheet row -> (block index, block) covering it
            for k, b in enumerate(reads):
                if b.sheet == sheet:
                    for r in range(b.row, b.row + b.nrows):
                        rows[r].append((k, b))
            with zf.open(part) as f:
                for _, el in iterparse(f):
                    if el.tag != _MAIN + "c":
                        continue
                    kind, v = el.get("t"), el.find(_MAIN + "v")
                    m = _REF.fullmatch(el.get("r"))
                    col, row = _column(m.group(1)), int(m.group(2)) - 1
                    if kind == "e":
                        total += 1
                        if len(errors) < MAX_LISTED:
                            errors.append(CellError(sheet, el.get("r"), v.text if v is not None
                                                    else "#VALUE!"))
                    elif row in rows:
                        value = _value(el, kind, v, strings)
                        for k, b in rows[row]:
                            if b.col <= col < b.col + b.ncols:
                                out[k][row - b.row, col - b.col] = value
                    el.clear()
    return out, errors, total


def _value(el, kind, v, strings):
    if kind == "inlineStr":
        return plain("".join(t.text or "" for t in el.iter(_MAIN + "t")))
    if v is None or v.text is None:
        return None
    if kind == "s":
        return plain(strings[int(v.text)])
    if kind in ("str", "inlineStr"):
        return plain(v.text)
    if kind == "b":
        return float(v.text == "1")
    return float(v.text)


def _column(letters: str) -> int:
    col = 0
    for ch in letters:
        col = col * 26 + ord(ch) - 64
    return col - 1
