"""An .xlsx read as untrusted data, streamed: its zip parts, its XML, the cells asked for.

Two lines of defence, before anything acts on a workbook:
- the zip: every part's declared size (``ZipInfo.file_size``, which zipfile enforces while
  inflating) and compression ratio are checked before any part is read;
- the XML: parts are streamed through expat a megabyte at a time, never held whole; a DOCTYPE
  (the door to entity expansion and external entities) is refused, a text longer than a cell may
  hold stops the read, and only the cells asked for (and the shared strings they name) are kept.
"""
from __future__ import annotations

import os
import posixpath
import re
import zipfile
import zlib
from pathlib import Path
from xml.parsers import expat

from .errors import SheetnetError
from .a1 import MAX_CELL_CHARS, MAX_COLS, MAX_ROWS

# A part may inflate to at most PART_MAX bytes.  GPT-2 small's biggest sheet holds wte, 38.6M
# weight cells; saved again by LibreOffice or Excel (~50 bytes a cell with its reference and
# style) that is ~1.9 GB of XML: 8 GB leaves 4x.  Parts are streamed, so this bounds time, not
# memory.
PART_MAX = 8 * 2**30
# Measured: sheetnet's parts inflate 2.5-8x, the same workbook saved by LibreOffice 1.6-10x.  A
# part above RATIO_FROM inflating more than RATIO_MAX times is a bomb, not a workbook: it also
# bounds what a small file may declare (a 10 MB file: at most 500 MB of XML, see read_cells).
RATIO_MAX, RATIO_FROM = 50, 4 * 2**20
MIN_CELL_BYTES = 15           # the shortest cell with a value: <c><v>0</v></c>
_CHUNK = 1 << 20
_REF = re.compile(r"([A-Z]{1,3})([0-9]{1,7})")
_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")  # OOXML's escape of a character XML cannot hold


def unescape(text: str) -> str:
    """A cell's text as written: OOXML's _xHHHH_ escapes decoded (xlsx_parts.xml_text writes
    them for control characters, and _x005F_ for a "_" that starts such a pattern)."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


class Book:
    """An .xlsx opened for streaming reads: ``with Book(path) as book: book.sheetnames``.

    Raises:
        SheetnetError: not a zip, a part too big or inflating like a bomb, a part that is not
            well-formed XML or declares a DOCTYPE, the workbook's sheet list missing.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise SheetnetError(f"workbook {self.path} does not exist")
        try:
            self.zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError,
                NotImplementedError) as exc:   # a zip version zipfile lacks
            raise SheetnetError(f"{self.path} is not a readable .xlsx workbook "
                                f"({type(exc).__name__})") from None
        try:
            self._check_parts()
            self.sheets = self._sheet_parts()
        except BaseException:
            self.zip.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.zip.close()

    @property
    def sheetnames(self) -> list[str]:
        return list(self.sheets)

    def _check_parts(self) -> None:
        for info in self.zip.infolist():
            if info.file_size > PART_MAX:
                raise SheetnetError(f"{self.path}: part {info.filename} would inflate to "
                                    f"{info.file_size:,} bytes (at most {PART_MAX:,})")
            if info.file_size > RATIO_FROM and info.file_size > RATIO_MAX * info.compress_size:
                raise SheetnetError(f"{self.path}: part {info.filename} inflates "
                                    f"{info.file_size // max(info.compress_size, 1):,} times "
                                    f"(a zip bomb; workbooks inflate at most ~10 times)")

    def _sheet_parts(self) -> dict[str, str]:
        # sheet name -> its part, through the workbook's relationships
        root = _rels_targets(self, "_rels/.rels", "")
        wb_part = next((t for typ, t in root.values() if typ.endswith("/officeDocument")),
                       "xl/workbook.xml")
        rels = _rels_targets(self, posixpath.join(posixpath.dirname(wb_part), "_rels",
                                                  posixpath.basename(wb_part) + ".rels"),
                             posixpath.dirname(wb_part))
        sheets = {}

        def start(tag, attrs):
            if tag == "sheet":
                target = rels.get(_attr(attrs, "id"), ("", ""))[1]
                sheets[str(attrs.get("name", ""))] = target
        self.stream(wb_part, start)
        return sheets

    def part_size(self, sheet: str) -> int:
        """The uncompressed size of ``sheet``'s part (what its cells can be made of)."""
        return self._info(self.sheets[sheet]).file_size

    def _info(self, name: str) -> zipfile.ZipInfo:
        try:
            return self.zip.getinfo(name)
        except KeyError:
            raise SheetnetError(f"{self.path}: part {name or '(none)'} is missing") from None

    def stream(self, name: str, start, end=None, text=None) -> None:
        """Parse part ``name`` a megabyte at a time, calling start(tag, attrs), end(tag) and
        text(chars) with namespace-free tag names; a handler raising StopIteration ends early."""
        parser = expat.ParserCreate(namespace_separator=" ")
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

        def doctype(*args):
            raise SheetnetError(f"{self.path}: part {name} declares a DOCTYPE (entities are not "
                                "allowed in a workbook)")
        parser.StartDoctypeDeclHandler = doctype
        parser.EntityDeclHandler = doctype
        parser.StartElementHandler = lambda tag, attrs: start(tag.rpartition(" ")[2], attrs)
        if end:
            parser.EndElementHandler = lambda tag: end(tag.rpartition(" ")[2])
        if text:
            parser.CharacterDataHandler = text
        try:
            with self.zip.open(self._info(name)) as f:
                while chunk := f.read(_CHUNK):
                    parser.Parse(chunk, False)
                parser.Parse(b"", True)
        except StopIteration:
            pass
        except expat.ExpatError as exc:
            raise SheetnetError(f"{self.path}: part {name} is not well-formed XML "
                                f"({expat.ErrorString(exc.code)}, line {exc.lineno})") from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError) as exc:
            raise SheetnetError(f"{self.path}: part {name} is damaged ({exc})") from None

    def cells(self, sheet: str, rows: tuple[int, int], cols: tuple[int, int], on_cell,
              on_row=None) -> None:
        """Stream the cells of ``sheet`` in rows [r0, r1) x cols [c0, c1) (0-based).

        Calls on_cell(row, col, type, text) per cell present ("n", "s", "str", "inlineStr",
        "b", "e", ... as the file says; text None when it has no value) and on_row(row) after
        each row element in range.
        """
        (r0, r1), (c0, c1) = rows, cols
        at = {"row": -1, "col": -1, "want": False, "type": "n", "text": None, "len": 0,
              "in": False}

        def start(tag, attrs):
            if tag == "row":
                at["row"] = _index(attrs.get("r"), at["row"] + 1, MAX_ROWS, "row", self.path)
                at["col"] = -1
                if at["row"] >= r1:
                    raise StopIteration
            elif tag == "c":
                ref = attrs.get("r")
                if ref is not None:
                    m = _REF.fullmatch(ref)
                    if not m:
                        raise SheetnetError(f"{self.path}: sheet {sheet!r} has a cell at {ref!r}")
                    at["col"] = _col_index(m.group(1))
                    at["row"] = _index(m.group(2), 0, MAX_ROWS, "row", self.path)
                else:
                    at["col"] += 1
                if at["col"] >= MAX_COLS:
                    raise SheetnetError(f"{self.path}: sheet {sheet!r} has a cell past column "
                                        f"{MAX_COLS:,}")
                at["want"] = r0 <= at["row"] < r1 and c0 <= at["col"] < c1
                at["type"], at["text"] = attrs.get("t", "n"), None
            elif tag in ("v", "t") and at["want"]:
                at["in"] = True
                if at["text"] is None:
                    at["text"], at["len"] = [], 0

        def chars(data):
            if at["in"]:
                at["len"] += len(data)
                if at["len"] > MAX_CELL_CHARS:
                    raise SheetnetError(f"{self.path}: a cell of sheet {sheet!r} holds more than "
                                        f"{MAX_CELL_CHARS:,} characters")
                at["text"].append(data)

        def end(tag):
            if tag in ("v", "t"):
                at["in"] = False
            elif tag == "c" and at["want"]:
                at["want"] = False
                text = None if at["text"] is None else "".join(at["text"])
                if text is not None and at["type"] in ("inlineStr", "str"):
                    text = unescape(text)
                on_cell(at["row"], at["col"], at["type"], text)
            elif tag == "row" and on_row and r0 <= at["row"] < r1:
                on_row(at["row"])
        self.stream(self.sheets[sheet], start, end, chars)

    def strings(self, wanted: set[int]) -> dict[int, str]:
        """The shared strings at the ``wanted`` indices (the others are not kept)."""
        name = next((n for n in self.zip.namelist() if n.lower().endswith("sharedstrings.xml")),
                    None)
        found: dict[int, str] = {}
        if name is None or not wanted:
            return found
        at = {"i": -1, "text": None, "len": 0}

        def start(tag, attrs):
            if tag == "si":
                at["i"] += 1
                at["text"], at["len"] = ([], 0) if at["i"] in wanted else (None, 0)

        def chars(data):
            if at["text"] is not None:
                at["len"] += len(data)
                if at["len"] > MAX_CELL_CHARS:
                    raise SheetnetError(f"{self.path}: shared string {at['i']} holds more than "
                                        f"{MAX_CELL_CHARS:,} characters")
                at["text"].append(data)

        def end(tag):
            if tag == "si" and at["text"] is not None:
                found[at["i"]] = unescape("".join(at["text"]))
                at["text"] = None
                if len(found) == len(wanted):
                    raise StopIteration
        self.stream(name, start, end, chars)
        return found


def _rels_targets(book: Book, name: str, base: str) -> dict[str, tuple[str, str]]:
    # relationship id -> (type, part name) of a .rels part (absent: none)
    out = {}
    if name not in book.zip.namelist():
        return out

    def start(tag, attrs):
        if tag == "Relationship":
            target = str(attrs.get("Target", ""))
            part = target[1:] if target.startswith("/") else posixpath.join(base, target)
            out[str(attrs.get("Id", ""))] = (str(attrs.get("Type", "")), posixpath.normpath(part))
    book.stream(name, start)
    return out


def _attr(attrs: dict, local: str):
    # an attribute by its local name, whatever its namespace (r:id)
    return next((v for k, v in attrs.items() if k.rpartition(" ")[2] == local), None)


def _index(text, default: int, limit: int, what: str, path) -> int:
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= limit:
        raise SheetnetError(f"{path}: a worksheet names {what} {text[:20]!r} (1 to {limit:,})")
    return int(text) - 1


def _col_index(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1
