"""The example workbooks, part by part and row by row, against digests recorded in
tests/golden/examples.json: a refactoring of the compiler (ops, presets, manifest) must leave
every cell a user sees as it was.

What is compared: every part of the .xlsx (sheets row by row, charts, styles, theme, workbook,
names), except the very hidden manifest sheet (sheetnet's own bookkeeping, which may change form
without the user seeing it).  A changed row is named by example, part and row number.

Regenerating the digests takes an explicit flag, and a diff in them is reviewed like code:
    .venv/bin/python -m pytest tests/test_golden.py --regen-golden
"""
from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path

import pytest

from sheetnet.pipeline import export
from sheetnet.options import ExportOptions

GOLDEN = Path(__file__).resolve().parent / "golden" / "examples.json"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# (example, style, export options): every example in both styles, as the README exports them
CASES = [(name, style, opts) for name, opts in [
    ("sqrt_2x2", {}), ("sqrt_net", {}), ("textnet", {"prompt": "cat"}),
    ("textnet_wide", {}), ("gpt", {"prompt": "The cell"})] for style in ("cells", "arrays")]
_ROW = re.compile(rb"<row [^>]*>.*?</row>", re.S)


def digests(book: Path) -> dict[str, list[str] | str]:
    """Part name -> a digest of each row (sheets) or of the whole part (the rest)."""
    out: dict[str, list[str] | str] = {}
    with zipfile.ZipFile(book) as zf:
        manifest = _manifest_part(zf)
        for name in sorted(zf.namelist()):
            if name == manifest:
                continue
            data = zf.read(name)
            rows = _ROW.findall(data) if name.startswith("xl/worksheets/sheet") else []
            out[name] = ([_digest(r) for r in rows] + [_digest(_ROW.sub(b"", data))]
                         if rows else _digest(data))
    return out


def _manifest_part(zf: zipfile.ZipFile) -> str:
    # the sheet part of the very hidden _sheetnet sheet, through workbook.xml and its rels
    workbook = zf.read("xl/workbook.xml").decode()
    rid = re.search(r'<sheet name="_sheetnet"[^>]*r:id="(rId\d+)"', workbook).group(1)
    rels = zf.read("xl/_rels/workbook.xml.rels").decode()
    target = re.search(rf'Id="{rid}"[^>]*Target="([^"]+)"', rels).group(1)
    return "xl/" + target


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _export(tmp_path: Path, name: str, style: str, opts: dict) -> Path:
    out = tmp_path / f"{name}-{style}.xlsx"   # the book's name shows on its Guide: keep it fixed
    export(EXAMPLES / f"{name}.pt", out, ExportOptions(style=style, force=True, **opts))
    return out


def test_examples_match_their_golden_digests(tmp_path, request):
    got = {f"{n}-{s}": digests(_export(tmp_path, n, s, o)) for n, s, o in CASES}
    if request.config.getoption("--regen-golden"):
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    want = json.loads(GOLDEN.read_text())
    assert sorted(got) == sorted(want)
    changed = []
    for book, parts in want.items():
        for part in sorted(set(parts) | set(got[book])):
            a, b = parts.get(part), got[book].get(part)
            if isinstance(a, list) and isinstance(b, list):
                rows = [k + 1 for k, (x, y) in enumerate(zip(a, b)) if x != y]
                if rows or len(a) != len(b):
                    changed.append(f"{book} {part}: rows {rows[:5]} differ"
                                   + (f", {len(a)} rows then {len(b)}" if len(a) != len(b) else ""))
            elif a != b:
                changed.append(f"{book} {part} differs")
    assert not changed, "\n".join(changed[:20])
