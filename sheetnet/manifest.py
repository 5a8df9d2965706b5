"""A workbook read as untrusted data: its zip parts, its XML, its cells and sheetnet's manifest.

Every reader of an exported workbook (import, inspect, verify, run) comes through here, so a
workbook that was edited, damaged or built to hurt is refused in one line before anything acts on
it.  Three lines of defence:

- the zip: every part's declared size (``ZipInfo.file_size``, which zipfile enforces while
  inflating) and compression ratio are checked before any part is read;
- the XML: parts are streamed through expat a megabyte at a time, never held whole; a DOCTYPE
  (the door to entity expansion and external entities) is refused, a text longer than a cell may
  hold stops the read, and only the cells asked for (and the shared strings they name) are kept;
- the manifest: its structure and every value the readers use are checked (``check``), so that a
  tampered manifest is refused naming the value, not met later as a KeyError or a huge allocation.
"""
from __future__ import annotations

import json
import math
import os
import posixpath
import re
import zipfile
import zlib
from pathlib import Path
from xml.parsers import expat

from .errors import SheetnetError
from .layout import MAX_COLS, MAX_ROWS

MANIFEST_SHEET = "_sheetnet"
# A part may inflate to at most PART_MAX bytes.  GPT-2 small's biggest sheet holds wte, 38.6M
# weight cells; saved again by LibreOffice or Excel (~50 bytes a cell with its reference and
# style) that is ~1.9 GB of XML: 8 GB leaves 4x.  Parts are streamed, so this bounds time, not
# memory.
PART_MAX = 8 * 2**30
# Measured: sheetnet's parts inflate 2.5-8x, the same workbook saved by LibreOffice 1.6-10x.  A
# part above RATIO_FROM inflating more than RATIO_MAX times is a bomb, not a workbook: it also
# bounds what a small file may declare (a 10 MB file: at most 500 MB of XML, see read_cells).
RATIO_MAX, RATIO_FROM = 50, 4 * 2**20
CELL_CHARS = 32_767           # the most text one cell holds (Excel's and LibreOffice's limit)
MIN_CELL_BYTES = 15           # the shortest cell with a value: <c><v>0</v></c>
MANIFEST_CHARS = 64 * 2**20   # GPT-2 small's manifest (BPE vocabulary, tokenizer files): ~6 MB
# {} and [] in the manifest text, bounded before json.loads builds them (each costs ~64+ bytes;
# GPT-2 small's manifest has ~10k)
MANIFEST_CONTAINERS = 1_000_000
_CHUNK = 1 << 20
_REF = re.compile(r"([A-Z]{1,3})([0-9]{1,7})")


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
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
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
                if at["len"] > CELL_CHARS:
                    raise SheetnetError(f"{self.path}: a cell of sheet {sheet!r} holds more than "
                                        f"{CELL_CHARS:,} characters")
                at["text"].append(data)

        def end(tag):
            if tag in ("v", "t"):
                at["in"] = False
            elif tag == "c" and at["want"]:
                at["want"] = False
                text = None if at["text"] is None else "".join(at["text"])
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
                if at["len"] > CELL_CHARS:
                    raise SheetnetError(f"{self.path}: shared string {at['i']} holds more than "
                                        f"{CELL_CHARS:,} characters")
                at["text"].append(data)

        def end(tag):
            if tag == "si" and at["text"] is not None:
                found[at["i"]] = "".join(at["text"])
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


def read_manifest(path: str | os.PathLike) -> dict:
    """The manifest sheetnet wrote into a workbook, checked (see ``check``).

    Raises:
        SheetnetError: not an .xlsx, not written by sheetnet, a damaged or tampered manifest.
    """
    with Book(path) as book:
        if MANIFEST_SHEET not in book.sheets:
            raise SheetnetError(f"{book.path} was not written by sheetnet "
                                f"(no {MANIFEST_SHEET} sheet)")
        chunks: list[tuple[str, str | None]] = []
        size = [0]

        def cell(row, col, kind, text):
            size[0] += len(text or "")
            if size[0] > MANIFEST_CHARS:
                raise SheetnetError(f"{book.path}: the sheetnet manifest is longer than "
                                    f"{MANIFEST_CHARS:,} characters")
            chunks.append((kind, text))
        book.cells(MANIFEST_SHEET, (0, MAX_ROWS), (0, 1), cell)
        shared = book.strings({int(t) for k, t in chunks if k == "s" and (t or "").isdigit()})
        text = "".join(shared.get(int(t), "") if k == "s" and (t or "").isdigit() else (t or "")
                       for k, t in chunks)
    if text.count("{") + text.count("[") > MANIFEST_CONTAINERS:
        raise SheetnetError(f"{path}: the sheetnet manifest is damaged (too deeply built)")
    try:
        manifest = json.loads(text)
    except (ValueError, RecursionError):
        raise SheetnetError(f"{path}: the sheetnet manifest is damaged") from None
    check(manifest, path)
    return manifest


# --- the manifest's structure: every value a reader uses, checked once -------------------------
DTYPES = ("float16", "bfloat16", "float32", "float64", "uint8", "int8", "int16", "int32",
          "int64", "bool")
PRECISIONS = ("float64", "float32")
# verify passes these to ExportOptions as keywords (fmt, meta, activations go separately)
CAPTURE_OPTIONS = {"context": int, "input_value": float, "prompt": str, "tokens": list}
# a causal-mask buffer is rebuilt as an n x n tensor: GPT-2's n is 1024; 4096 costs 64 MB
CAUSAL_MASK_MAX = 4096
# the files import writes itself into a Hugging Face folder; a kept file may not replace them
HF_WRITTEN = ("config.json", "model.safetensors")


class _Tampered(Exception):
    pass


def _fail(where: str, what: str):
    raise _Tampered(f"{where} {what}")


def _is_int(v) -> bool:
    return type(v) is int


def _is_num(v) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def _want(v, kind, where: str, *choices):
    # v is of ``kind`` (dict, list, str, bool, int, "num"), and one of ``choices`` if given
    ok = {"num": _is_num, int: _is_int}.get(kind, lambda x: type(x) is kind)(v)
    if not ok:
        name = {"num": "a number", int: "a whole number", dict: "an object", list: "a list",
                str: "text", bool: "true or false"}[kind]
        _fail(where, f"is {json.dumps(v)[:40]}, not {name}")
    if choices and v not in choices:
        _fail(where, f"is {json.dumps(v)[:40]}, not one of {', '.join(map(str, choices))}")
    return v


def _key(d: dict, key: str, kind, where: str, *choices):
    if key not in d:
        _fail(where, f"has no {key!r}")
    return _want(d[key], kind, f"{where}.{key}", *choices)


def _opt(d: dict, key: str, kind, where: str, *choices):
    return None if d.get(key) is None else _want(d[key], kind, f"{where}.{key}", *choices)


def check(manifest, path) -> None:
    """Check a manifest read from ``path`` as untrusted data: its keys, types and ranges, node
    regions inside the sheet limits, references between nodes, the checkpoint record.

    Raises:
        SheetnetError: "BOOK: tampered manifest: nodes['L1.W'].row is "abc", not a whole number".
    """
    try:
        _want(manifest, dict, "manifest")
        version = _key(manifest, "version", int, "version")
        if version != 1:
            raise SheetnetError(f"{path}: manifest version {version} is not one this sheetnet "
                                "reads (1): use the sheetnet that wrote it")
        nodes = _key(manifest, "nodes", dict, "manifest")
        if not nodes:
            _fail("nodes", "is empty")
        for name, entry in nodes.items():
            _check_node(entry, f"nodes[{name!r}]")
        for key in ("inputs", "outputs"):
            names = _key(manifest, key, list, "manifest")
            if not names:
                _fail(key, "is empty")
            for i, n in enumerate(names):
                _node_name(n, nodes, f"{key}[{i}]")
        _opt(manifest, "precision", str, "manifest", *PRECISIONS)
        _check_meta(_key(manifest, "meta", dict, "manifest"), nodes)
    except _Tampered as exc:
        raise SheetnetError(f"{path}: tampered manifest: {exc}") from None


def _node_name(n, nodes: dict, where: str) -> str:
    if _want(n, str, where) not in nodes:
        _fail(where, f"names node {n[:40]!r}, which the manifest does not have")
    return n


def _check_node(e, where: str) -> None:
    _want(e, dict, where)
    sheet = _key(e, "sheet", str, where)
    if not 0 < len(sheet) <= 31:
        _fail(f"{where}.sheet", "is not a sheet name")
    _key(e, "kind", str, where)
    op = _key(e, "op", str, where)
    row, col = _key(e, "row", int, where), _key(e, "col", int, where)
    shape = _key(e, "shape", list, where)
    if len(shape) != 2 or not all(_is_int(n) and n >= 0 for n in shape):
        _fail(f"{where}.shape", f"is {json.dumps(shape)[:40]}, not [rows, cols]")
    transposed = _opt(e, "layout", str, where, "transposed") is not None
    rows, cols = shape[::-1] if transposed else shape
    if not (0 <= row and row + rows <= MAX_ROWS and 0 <= col and col + cols <= MAX_COLS):
        _fail(where, f"covers {rows} x {cols} cells from row {row}, column {col}: past the "
                     f"sheet's {MAX_ROWS:,} rows x {MAX_COLS:,} columns")
    _opt(e, "ref", str, where)
    _opt(e, "above", "num", where)
    if op == "Param":
        _key(e, "source", str, where)
        _key(e, "transposed", bool, where)


def _check_meta(meta: dict, nodes: dict) -> None:
    vocab = _opt(meta, "vocab", list, "meta")
    if vocab is not None and not all(type(v) is str for v in vocab):
        _fail("meta.vocab", "holds something that is not text")
    load = _opt(meta, "load", dict, "meta") or {}
    for key in ("fmt", "meta", "activations"):
        _opt(load, key, str, "meta.load")
    _check_capture_options(_opt(meta, "capture_options", dict, "meta") or {})
    _check_run(_opt(meta, "run", dict, "meta") or {}, nodes)
    record = _opt(meta, "checkpoint", dict, "meta")
    if record is not None:
        _check_record(record, nodes, vocab)


def _check_capture_options(options: dict) -> None:
    for key, value in options.items():
        if key not in CAPTURE_OPTIONS:
            _fail("meta.capture_options", f"has {key[:40]!r}, not one of "
                                          f"{', '.join(CAPTURE_OPTIONS)}")
        kind = CAPTURE_OPTIONS[key]
        where = f"meta.capture_options.{key}"
        if kind is float:
            _want(value, "num", where)
        elif kind is int:
            if not 1 <= _want(value, int, where) <= MAX_ROWS:
                _fail(where, f"is {value}, not 1 to {MAX_ROWS:,}")
        elif kind is list:
            if not all(_is_int(t) and t >= 0 for t in _want(value, list, where)):
                _fail(where, "holds something that is not a token id")
        else:
            _want(value, kind, where)


def _check_run(run: dict, nodes: dict) -> None:
    if run.get("input") is not None:
        _node_name(run["input"], nodes, "meta.run.input")
    for key in ("inputs", "report"):
        for k, n in (_opt(run, key, dict, "meta.run") or {}).items():
            _node_name(n, nodes, f"meta.run.{key}.{k}")
    for i, n in enumerate(_opt(run, "errors", list, "meta.run") or []):
        _node_name(n, nodes, f"meta.run.errors[{i}]")
    for key in ("blank_fill", "integers", "vocab"):
        if not all(type(v) is str for v in _opt(run, key, list, "meta.run") or []):
            _fail(f"meta.run.{key}", "holds something that is not text")
    positions = _opt(run, "positions", dict, "meta.run")
    if positions is not None:
        _node_name(positions.get("count"), nodes, "meta.run.positions.count")
        if not all(type(v) is str for v in _opt(positions, "keys", list, "meta.run.positions") or []):
            _fail("meta.run.positions.keys", "holds something that is not text")


def _check_record(rec: dict, nodes: dict, vocab) -> None:
    where = "meta.checkpoint"
    for key in ("format", "architecture"):
        _key(rec, key, str, where)
    _key(rec, "config", dict, where)
    metadata = _key(rec, "metadata", dict, where)
    tensors = _key(rec, "tensors", list, where)
    shown = {e["source"]: e for e in nodes.values() if e["op"] == "Param"}
    entries = {}
    for i, t in enumerate(tensors):
        w = f"{where}.tensors[{i}]"
        _want(t, dict, w)
        key = _key(t, "key", str, w)
        if key in entries:
            _fail(w, f"repeats key {key[:40]!r}")
        shape = _key(t, "shape", list, w)
        if not all(_is_int(n) and 0 <= n <= MAX_ROWS * MAX_COLS for n in shape):
            _fail(f"{w}.shape", f"is {json.dumps(shape)[:40]}, not a list of sizes")
        _key(t, "dtype", str, w, *DTYPES)
        entries[key] = t
        _check_tensor(t, shown.get(key), w)
    for i, t in enumerate(tensors):
        if "same_as" in t:
            twin = entries.get(_want(t["same_as"], str, f"{where}.tensors[{i}].same_as"))
            if twin is None or "same_as" in twin or twin["shape"] != t["shape"] \
                    or twin["dtype"] != t["dtype"]:
                _fail(f"{where}.tensors[{i}].same_as", "does not name a tensor of its shape")
    for name, e in nodes.items():
        if e["op"] == "Param" and e["source"] not in entries:
            _fail(f"nodes[{name!r}].source", f"names {e['source'][:40]!r}, not in the checkpoint")
    _check_metadata(metadata, rec["format"], rec["config"], vocab)
    _check_files(rec)


def _check_tensor(t: dict, node, w: str) -> None:
    # what the entry is: shown (a Param's cells), or exactly one of the kept forms
    size = math.prod(t["shape"])
    forms = [k for k in ("same_as", "causal_mask", "values", "dropped") if k in t]
    if node is not None:
        if forms:
            _fail(w, "is shown in the workbook and also " + forms[0])
        if size != node["shape"][0] * node["shape"][1]:
            _fail(f"{w}.shape", f"is {t['shape']}, but its cells are {node['shape']}")
        return
    if len(forms) != 1:
        _fail(w, "says neither where its cells are nor what it is" if not forms
              else f"is both {forms[0]} and {forms[1]}")
    if forms[0] in ("causal_mask", "dropped"):
        _want(t[forms[0]], bool, f"{w}.{forms[0]}", True)
    if forms[0] == "causal_mask":
        n = t["shape"][-1] if t["shape"] else 0
        if not 1 <= n <= CAUSAL_MASK_MAX or size != n * n:
            _fail(f"{w}.shape", f"is {t['shape']}, not a causal mask of at most "
                                f"{CAUSAL_MASK_MAX} x {CAUSAL_MASK_MAX}")
    if forms[0] == "values":
        flat = _flat(t["values"], t["shape"], f"{w}.values")
        if not all(_is_num(v) or type(v) is bool for v in flat):
            _fail(f"{w}.values", "holds something that is not a finite number")


def _flat(values, shape: list, where: str) -> list:
    # the numbers of a nested list of exactly ``shape`` (what torch.tensor(values) would build)
    if not shape:
        return [values]
    if type(values) is not list or len(values) != shape[0]:
        _fail(where, f"is not a list of shape {shape}")
    return [x for v in values for x in _flat(v, shape[1:], where)]


def _check_metadata(m: dict, fmt: str, config: dict, vocab) -> None:
    w = "meta.checkpoint.metadata"
    kinds = {"key_prefix": str, "model_args": dict, "iter_num": int, "best_val_loss": "num",
             "train_config": dict, "mingpt_config": dict, "layout": str, "transposed": list,
             "sources": dict, "hf_config": dict, "activations": str}
    for key, kind in kinds.items():
        _opt(m, key, kind, w)
    if not all(type(v) is str for v in m.get("transposed") or []):
        _fail(f"{w}.transposed", "holds something that is not text")
    if not all(type(v) is str for v in (m.get("sources") or {}).values()):
        _fail(f"{w}.sources", "holds something that is not text")
    if m.get("vocab") is not None:
        if m["vocab"] == "meta.vocab":
            if vocab is None:
                _fail(f"{w}.vocab", "refers to meta.vocab, which the manifest does not have")
        elif type(m["vocab"]) is not list or not all(type(v) is str for v in m["vocab"]):
            _fail(f"{w}.vocab", "is not a list of texts")
    if fmt == "hf-gpt2":
        _key(m, "hf_config", dict, w)
    if fmt == "nanogpt" and m.get("model_args") is None:
        for key in ("n_layer", "n_head", "n_embd", "block_size", "bias", "vocab_size"):
            if key not in config:
                _fail("meta.checkpoint.config", f"has no {key!r}")
    if fmt == "mingpt" and m.get("mingpt_config") is None:
        _key(config, "n_head", int, "meta.checkpoint.config")


def _check_files(rec: dict) -> None:
    # an HF folder's kept text files: plain names only, written into the new folder as they are
    for i, name in enumerate(_opt(rec, "files_left", list, "meta.checkpoint") or []):
        _want(name, str, f"meta.checkpoint.files_left[{i}]")
    for name, text in (_opt(rec, "files", dict, "meta.checkpoint") or {}).items():
        if not plain_file_name(name) or name in HF_WRITTEN:
            _fail("meta.checkpoint.files", f"names {name[:60]!r}, not a plain file name "
                                           "(import writes only into its own folder)")
        _want(text, str, f"meta.checkpoint.files[{name[:40]!r}]")


def plain_file_name(name) -> bool:
    """A name that can only mean a file in the folder it is written to: no path separator, not
    . or .., not hidden, no control character, at most 255 bytes."""
    return (type(name) is str and 0 < len(name.encode("utf-8", "surrogatepass")) <= 255
            and not name.startswith(".") and not any(c in name for c in "/\\:")
            and all(ord(c) >= 32 and ord(c) != 127 for c in name))
