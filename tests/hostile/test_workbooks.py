"""Hostile workbooks: a tampered manifest, cells that are not numbers, bad XML, entity tricks and
zip bombs.  Each case builds its workbook in tmp_path from a freshly exported one and runs the
real command line: one "error: ..." line, exit 1, nothing written, no temporary file left.
"""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest

from cli_helpers import invoke, one_line_error
from hostile.helpers import MEMORY_BOUND_MB, ROOT, files_in, no_temp_files, refused, run_cli
from sheetnet.pipeline import export

EXAMPLES = ROOT / "examples"


# --- building hostile workbooks from an exported one --------------------------------------------
def parts_of(book: Path) -> dict[str, bytes]:
    """Every zip part of ``book``, in order."""
    with zipfile.ZipFile(book) as z:
        return {name: z.read(name) for name in z.namelist()}


def write_parts(path: Path, parts: dict[str, bytes]) -> Path:
    """A zip of ``parts`` (deflated), as an .xlsx."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    return path


def sheet_part(parts: dict[str, bytes], sheet: str) -> str:
    """The part name of the sheet called ``sheet`` (through workbook.xml and its rels)."""
    wb, rels = parts["xl/workbook.xml"].decode(), parts["xl/_rels/workbook.xml.rels"].decode()
    rid = re.search(rf'<sheet [^>]*name="{re.escape(sheet)}"[^>]*r:id="([^"]+)"', wb).group(1)
    target = re.search(rf'<Relationship [^>]*Id="{rid}"[^>]*Target="([^"]+)"', rels)
    target = target or re.search(rf'<Relationship [^>]*Target="([^"]+)"[^>]*Id="{rid}"', rels)
    return "xl/" + target.group(1).lstrip("/").removeprefix("xl/")


def manifest_of(book: Path) -> dict:
    """The manifest of ``book`` as its JSON object, to tamper with."""
    from sheetnet.manifest import read_manifest
    return read_manifest(book).to_json()


def with_manifest(book: Path, out: Path, manifest) -> Path:
    """``book`` with its manifest sheet replaced by ``manifest`` (any JSON value) as text."""
    parts = parts_of(book)
    text = json.dumps(manifest, separators=(",", ":"))
    rows = "".join(f'<row r="{k + 1}"><c r="A{k + 1}" t="inlineStr"><is><t>'
                   f'{_xml(text[i:i + 30000])}</t></is></c></row>'
                   for k, i in enumerate(range(0, max(len(text), 1), 30000)))
    parts[sheet_part(parts, "_sheetnet")] = (
        '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
        f'spreadsheetml/2006/main"><sheetData>{rows}</sheetData></worksheet>').encode()
    return write_parts(out, parts)


def with_shared_strings(parts: dict[str, bytes]) -> dict[str, bytes]:
    """``parts`` with [Content_Types].xml declaring xl/sharedStrings.xml (so readers load it)."""
    ct = parts["[Content_Types].xml"].decode()
    if "sharedStrings" not in ct:
        ct = ct.replace("</Types>", '<Override PartName="/xl/sharedStrings.xml" ContentType="'
                        'application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings'
                        '+xml"/></Types>')
    return {**parts, "[Content_Types].xml": ct.encode()}


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def with_cell(book: Path, out: Path, sheet: str, ref: str, cell_xml: str) -> Path:
    """``book`` with the cell at ``ref`` of ``sheet`` replaced by ``cell_xml``."""
    parts = parts_of(book)
    name = sheet_part(parts, sheet)
    xml, n = re.subn(rf'<c r="{ref}"[^>]*?(/>|>.*?</c>)', cell_xml, parts[name].decode(), count=1)
    assert n == 1, ref
    parts[name] = xml.encode()
    return write_parts(out, parts)


@pytest.fixture(scope="module")
def sqrt_book(tmp_path_factory) -> Path:
    book = tmp_path_factory.mktemp("base") / "sqrt.xlsx"
    export(EXAMPLES / "sqrt_2x2.pt", book)
    return book


def import_refused(tmp_path: Path, book: Path, *words: str, out_name: str = "out.pt") -> str:
    """``sheetnet import BOOK OUT`` refuses in one line holding ``words``; nothing is written."""
    before = files_in(tmp_path)
    line = one_line_error(invoke("import", book, tmp_path / out_name), *words)
    assert files_in(tmp_path) == before
    no_temp_files(tmp_path)
    return line


# --- a tampered manifest: one line naming the value, for every reader ---------------------------
def _set(path: str, value):
    # a function setting manifest[path] (dotted, [i] for list items, ['k'] for node names)
    def edit(m):
        keys = re.findall(r"\['([^']+)'\]|\[(\d+)\]|([^.\[\]]+)", path)
        *first, last = [k[0] or (int(k[1]) if k[1] else k[2]) for k in keys]
        target = m
        for k in first:
            target = target[k]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value
    return edit


_DELETE = object()
L1W = "nodes['L1.W']"
TENSOR0 = "meta.checkpoint.tensors[0]"


@pytest.mark.parametrize("edit, words", [
    (_set(f"{TENSOR0}.dtype", "object"), ["dtype", '"object"']),
    (_set(f"{TENSOR0}.dtype", "complex64"), ["dtype", "complex64"]),
    (_set(f"{L1W}.row", "4"), [f"{L1W}.row", '"4"', "not a whole number"]),
    (_set(f"{L1W}.row", -1), [L1W, "past the sheet"]),
    (_set(f"{L1W}.col", 16_384), [L1W, "past the sheet"]),
    (_set(f"{L1W}.shape", [2_000_000, 1]), [L1W, "past the sheet"]),
    (_set(f"{L1W}.shape", "2x1"), [f"{L1W}.shape"]),
    (_set(f"{L1W}.sheet", 7), [f"{L1W}.sheet", "not text"]),
    (_set(L1W, _DELETE), ["tensors[0] says neither where its cells are"]),
    (_set("nodes['L1.b'].source", _DELETE), ["nodes['L1.b']", "has no 'source'"]),
    (_set("meta", _DELETE), ["has no 'meta'"]),
    (_set("inputs", ["nowhere"]), ["inputs[0]", "nowhere"]),
    (_set("meta.capture_options", {"fmt": "nanogpt"}), ["capture_options", "'fmt'"]),
    (_set("meta.capture_options", {"context": "4"}), ["capture_options.context"]),
    (_set(f"{TENSOR0}.shape", [3, 1]), [f"{TENSOR0}.shape", "its cells are [2, 1]"]),
    (_set("meta.checkpoint.tensors[1]", {"key": "0.bias", "shape": [2], "dtype": "float32",
                                         "same_as": "nothing"}),
     ["tensors[1]", "shown in the workbook"]),
    (_set("meta.checkpoint.tensors", [{"key": "mask", "shape": [99999, 99999], "dtype": "float32",
                                       "causal_mask": True}]), ["causal mask"]),
    (_set("version", 99), ["manifest version 99"]),
])
def test_tampered_manifest_one_line_for_every_reader(sqrt_book, tmp_path, edit, words):
    manifest = manifest_of(sqrt_book)
    edit(manifest)
    book = with_manifest(sqrt_book, tmp_path / "bad.xlsx", manifest)
    line = import_refused(tmp_path, book, *words)
    assert one_line_error(invoke("inspect", book)) == line   # the same check, the same line


@pytest.mark.parametrize("manifest, words", [
    ([1, 2, 3], ["manifest is [1, 2, 3], not an object"]),
    ("[" * 30_000, ["manifest is damaged"]),           # json.loads' recursion limit
])
def test_manifest_not_even_an_object(sqrt_book, tmp_path, manifest, words):
    parts = parts_of(sqrt_book)
    book = with_manifest(sqrt_book, tmp_path / "bad.xlsx", None)
    if isinstance(manifest, str):   # raw text, not JSON
        parts = parts_of(book)
        name = sheet_part(parts, "_sheetnet")
        parts[name] = parts[name].replace(b"<t>null</t>", f"<t>{manifest}</t>".encode())
        write_parts(book, parts)
    else:
        with_manifest(sqrt_book, book, manifest)
    import_refused(tmp_path, book, *words)


# --- weight cells that are not (storable) numbers ------------------------------------------------
@pytest.mark.parametrize("cell, what", [
    ("<v>NaN</v>", "holds NaN, not a number"),
    ("<v>INF</v>", "holds INF, not a number"),
    ("<v>-INF</v>", "holds -INF, not a number"),
    ("<v>1e308</v>", "holds 1e+308, more than its checkpoint's float32 can hold"),
    ("<v>-1e308</v>", "holds -1e+308, more than its checkpoint's float32 can hold"),
])
def test_weight_cell_not_a_float32_number(sqrt_book, tmp_path, cell, what):
    book = with_cell(sqrt_book, tmp_path / "bad.xlsx", "Layer 2", "C5", f'<c r="C5">{cell}</c>')
    line = import_refused(tmp_path, book)
    assert line == f"error: weight L2.W: 'Layer 2'!C5 {what}"


# --- XML that is not a workbook's, or that asks for entities -------------------------------------
LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";" if i > 1 else "&lol;") * 10}">'
                    for i in range(1, 10))
          + ']><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
          '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row>'
          '</sheetData></worksheet>')


def _xxe(secret: Path) -> str:
    return ('<?xml version="1.0"?><!DOCTYPE w [<!ENTITY xxe SYSTEM "file://' + str(secret) + '">]>'
            '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&xxe;</t></is></c></row>'
            '</sheetData></worksheet>')


@pytest.mark.parametrize("sheet, xml, words", [
    ("_sheetnet", "<worksheet><sheetData><row>", ["part xl/worksheets/", "not well-formed XML"]),
    ("Layer 1", "MISMATCHED", ["not well-formed XML"]),
    ("_sheetnet", LAUGHS, ["declares a DOCTYPE"]),
    ("_sheetnet", "XXE", ["declares a DOCTYPE"]),
    ("Layer 1", "XXE", ["declares a DOCTYPE"]),
])
def test_bad_xml_and_entities_one_line(sqrt_book, tmp_path, sheet, xml, words):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-TEXT")
    parts = parts_of(sqrt_book)
    name = sheet_part(parts, sheet)
    parts[name] = (parts[name].replace(b"</c>", b"</x>", 1) if xml == "MISMATCHED" else
                   (_xxe(secret) if xml == "XXE" else xml).encode())
    book = write_parts(tmp_path / "bad.xlsx", parts)
    line = import_refused(tmp_path, book, *words)
    assert "TOP-SECRET" not in line and "lollol" not in line


# --- memory: declared sizes the file cannot back, parts that inflate like bombs ------------------
def test_declared_shape_the_file_cannot_back(sqrt_book, tmp_path):
    # issue 12: a 40 KB workbook whose manifest claims a 20000 x 20000 weight cost 3.4 GB
    manifest = manifest_of(sqrt_book)
    manifest["nodes"]["L1.W"]["shape"] = [20_000, 16_000]
    manifest["meta"]["checkpoint"]["tensors"][0]["shape"] = [20_000, 16_000]
    book = with_manifest(sqrt_book, tmp_path / "big.xlsx", manifest)
    assert book.stat().st_size < 100_000
    out = run_cli("import", book, tmp_path / "out.pt")
    refused(out, "cells on sheet 'Layer 1', more than its")
    assert out.peak_mb < MEMORY_BOUND_MB, out.peak_mb
    no_temp_files(tmp_path)


@pytest.mark.parametrize("part, size", [
    ("xl/sharedStrings.xml", 1_500_000_000),   # issue 12: one 1.5 GB shared string cost 5 GB
    ("xl/worksheets/sheet3.xml", 600_000_000),
])
def test_part_inflating_like_a_bomb(sqrt_book, tmp_path, part, size):
    parts = parts_of(sqrt_book)
    book = tmp_path / "bomb.xlsx"
    write_parts(book, {k: v for k, v in with_shared_strings(parts).items() if k != part})
    with zipfile.ZipFile(book, "a", zipfile.ZIP_DEFLATED) as z, z.open(part, "w", force_zip64=True) as f:
        f.write(b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>')
        block = b"A" * (1 << 20)
        for _ in range(size >> 20):
            f.write(block)
        f.write(b"</t></si></sst>")
    assert book.stat().st_size < 10_000_000
    out = run_cli("import", book, tmp_path / "out.pt")
    refused(out, part, "inflates", "zip bomb")
    assert out.peak_mb < MEMORY_BOUND_MB, out.peak_mb
    out = run_cli("inspect", book)
    refused(out, part, "zip bomb")
    assert out.peak_mb < MEMORY_BOUND_MB, out.peak_mb
    no_temp_files(tmp_path)


def test_long_shared_string_within_the_ratio_is_streamed(sqrt_book, tmp_path):
    # random text inflates ~1.3x: no ratio to refuse; it is streamed and never kept whole
    import random
    rng = random.Random(0)
    parts = parts_of(sqrt_book)
    name = sheet_part(parts, "Layer 1")
    junk = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(4_000_000))
    parts["xl/sharedStrings.xml"] = (
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f"<si><t>{junk}</t></si></sst>").encode()
    parts[name] = re.sub(rb'<c r="B5"[^>]*?(/>|>.*?</c>)', b'<c r="B5" t="s"><v>0</v></c>',
                         parts[name], count=1)
    book = write_parts(tmp_path / "long.xlsx", with_shared_strings(parts))
    out = run_cli("import", book, tmp_path / "out.pt")
    refused(out, "shared string 0 holds more than 32,767 characters")
    assert out.peak_mb < MEMORY_BOUND_MB, out.peak_mb


@pytest.mark.parametrize("command", ["run", "verify"])
def test_declared_formula_cells_the_file_cannot_back(sqrt_book, tmp_path, command):
    # verify and run read every node's cells through the engine: a formula node claiming a
    # sheet's worth of cells would be allocated there, so read_manifest refuses it first
    manifest = manifest_of(sqrt_book)
    manifest["nodes"]["L1.z"]["shape"] = [1_000_000, 16_000]
    book = with_manifest(sqrt_book, tmp_path / "big.xlsx", manifest)
    args = [book] if command == "run" else [book, EXAMPLES / "sqrt_2x2.pt"]
    out = run_cli(command, *args)
    refused(out, "cells on sheet 'Layer 1', more than its")
    assert out.peak_mb < MEMORY_BOUND_MB, out.peak_mb
