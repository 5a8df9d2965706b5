"""Writing the workbook (a BookSpec, see spec.py), with its manifest in a very hidden sheet.

Knows cells, styles and charts; nothing about the IR.  xlsx.py streams it to SpreadsheetML:
numbers with the shortest exact text (every weight reads back bit for bit), strings always as
text cells (even "=1+1").  The file is written to a temporary name beside the target and
renamed, so a failed export leaves nothing behind.  Reading back: manifest.py.
"""
from __future__ import annotations

import json
import os

from .files import atomic_path
from .spec import BookSpec, SheetSpec, load_styles
from .xlsx import write_xlsx


_CHUNK = 30_000  # characters of manifest JSON per cell (a cell holds at most 32,767)
MANIFEST_SHEET = "_sheetnet"  # very hidden: what verify, run and import read back (manifest.py)


def write_book(book: BookSpec, path: str | os.PathLike, force: bool = False,
               precision: str = "float64", progress=None) -> None:
    """Write ``book`` to ``path`` atomically, with the manifest in a very hidden sheet.

    Args:
        book: the sheets.
        path: the .xlsx to write.
        force: overwrite an existing file.
        precision: "float64" writes every number's shortest exact text; "float32" the
            shortest text that reads back as the same float32 (8 or 9 significant digits).
        progress: optional callable(sheet_spec) after each sheet is written.
    Raises:
        SheetnetError: the folder is missing, or the file exists and ``force`` is False.
    """
    with atomic_path(path, force=force) as tmp:
        write_xlsx(BookSpec(book.sheets + [_manifest_sheet(book.manifest)], book.manifest,
                            book.names), tmp, load_styles(), precision=precision,
                   progress=progress)


def _manifest_sheet(manifest: dict) -> SheetSpec:
    # what verify/run/import need to find every tensor again, kept in a sheet users don't see
    spec = SheetSpec(MANIFEST_SHEET, state="veryHidden")
    text = json.dumps(manifest, separators=(",", ":"))
    for k in range(0, max(len(text), 1), _CHUNK):
        spec.put(k // _CHUNK, 0, text[k:k + _CHUNK])
    return spec
