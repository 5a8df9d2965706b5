"""sheetnet's manifest: what a workbook holds and how it runs, typed; one builder, one reader.

Export builds it once (``build``: every node's cells, the inputs and outputs, how the model was
loaded, the checkpoint record import needs, the run spec ``sheetnet run`` follows) and writes it as
JSON (``Manifest.to_json``) into the very hidden ``_sheetnet`` sheet.  Run, verify, inspect and
import read it back with ``read_manifest``: the workbook is streamed through ``xlsx_read`` (zip
and XML caps) and the JSON checked as untrusted data (``manifest_checks.check``) before it becomes
a ``Manifest``, so that a tampered manifest is refused naming the value, not met later as a
KeyError or a huge allocation.

The JSON (version 1): {"version", "meta": {...}, "nodes": {name: entry}, "inputs", "outputs",
"precision"}; each dataclass below is one of its objects, its fields the object's keys, and a
field left at its default is not written.
"""
from __future__ import annotations

import json
import os
from dataclasses import MISSING, dataclass, field, fields, is_dataclass

from .errors import SheetnetError
from .ir import graph as ir
from .layout import MAX_ROWS, Plan
from .manifest_checks import check
from .writer import MANIFEST_SHEET
from .xlsx_read import MIN_CELL_BYTES, Book

VERSION = 1                   # what this sheetnet writes and reads; another is refused by name
MANIFEST_CHARS = 64 * 2**20   # GPT-2 small's manifest (BPE vocabulary, tokenizer files): ~6 MB
# {} and [] in the manifest text, bounded before json.loads builds them (each costs ~64+ bytes;
# GPT-2 small's manifest has ~10k)
MANIFEST_CONTAINERS = 1_000_000


@dataclass(frozen=True)
class NodeEntry:
    """Where one tensor's cells are, and what they hold."""
    sheet: str
    row: int                        # of the top-left cell, from 0
    col: int
    shape: tuple[int, int]          # the tensor's (rows, cols)
    kind: str                       # input, weight, const, formula or output (the cells' style)
    op: str                         # the IR op's name: Param, Linear, View, ...
    layout: str | None = None       # "transposed": the tensor's rows lie along the sheet's columns
    ref: str | None = None          # the PyTorch intermediate it equals (verify compares)
    above: float | None = None      # an input's bound (run checks, see ir.Bound): greater than,
    at_least: float | None = None   # or at least (not both), this; at most ``at_most``;
    at_most: float | None = None    # whole numbers only if ``whole``.  Old manifests: "above"
    whole: bool = False             # alone, read as before
    source: str | None = None       # a weight's state-dict key
    transposed: bool | None = None  # a weight holds its state-dict tensor transposed

    @property
    def laid_transposed(self) -> bool:
        """The tensor's element (i, j) sits at the sheet's row j, column i (see layout.py)."""
        return self.layout == "transposed"

    @property
    def cells(self) -> tuple[int, int]:
        """(rows, cols) the tensor covers on its sheet."""
        return self.shape[::-1] if self.laid_transposed else self.shape

    @property
    def bound(self) -> ir.Bound | None:
        """The rule an input's typed numbers follow, None if none (checked when read)."""
        return ir.bound_of(self.above, self.at_least, self.at_most, self.whole)

    @property
    def size(self) -> int:
        """How many cells the tensor owns (a View owns none: it names another's cells)."""
        return self.shape[0] * self.shape[1]


@dataclass(frozen=True)
class Positions:
    """A GPT's outputs and per-position reports keep the rows its prompt filled."""
    count: str                      # the node holding how many positions the prompt filled
    keys: tuple[str, ...] = ()      # report keys cut to those positions


@dataclass(frozen=True)
class RunSpec:
    """How ``sheetnet run`` feeds and reads the workbook, as its capture declared it."""
    input: str | None = None        # the node --input fills; None: the first input
    inputs: dict[str, str] = field(default_factory=dict)   # named input -> node
    report: dict[str, str] = field(default_factory=dict)   # result key -> node
    errors: tuple[str, ...] = ()    # nodes whose text is the message when formulas fail
    blank_fill: tuple[str, ...] = ()  # named inputs whose cells past the values stay blank
    integers: tuple[str, ...] = ()  # result keys read back as whole numbers
    vocab: tuple[str, ...] | None = None  # spells token ids as a prompt (a text-input GPT)
    positions: Positions | None = None


@dataclass(frozen=True)
class LoadSpec:
    """How export loaded the checkpoint, so that verify loads it the same way untold."""
    fmt: str | None = None
    meta: str | None = None         # the vocabulary file (nanoGPT's meta.pkl)
    activations: str | None = None


@dataclass(frozen=True)
class TensorEntry:
    """One state-dict entry: shown (a weight node's ``source``), or exactly one kept form."""
    key: str
    shape: tuple[int, ...]
    dtype: str                      # torch's name without "torch."
    same_as: str | None = None      # tied: the very tensor of another entry (lm_head is wte)
    causal_mask: bool | None = None  # a causal-mask buffer, rebuilt
    values: object = None           # a small tensor's numbers, nested lists (as tolist())
    dropped: bool | None = None     # not shown, too big to keep: not carried


@dataclass(frozen=True)
class CheckpointRecord:
    """What import needs besides the weight cells to write the checkpoint back (record.py)."""
    format: str
    architecture: str
    config: dict
    metadata: dict
    tensors: tuple[TensorEntry, ...]
    files: dict[str, str] | None = None     # a Hugging Face folder's text files, as they were
    files_left: tuple[str, ...] | None = None  # the folder's files not kept (binary, too big)


# meta's keys that readers use, typed; the rest of meta (Guide text, charts, notes, ...) is kept
# in Manifest.info as the capture wrote it
_TYPED_META = ("architecture", "vocab", "capture_options", "run", "load", "checkpoint")


@dataclass(frozen=True)
class Manifest:
    """A workbook's manifest: every node's cells, and what run, verify and import need."""
    nodes: dict[str, NodeEntry]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    precision: str = "float64"      # the weights' text; verify's tolerance follows it
    architecture: str | None = None
    vocab: tuple[str, ...] | None = None
    capture_options: dict = field(default_factory=dict)  # ExportOptions keywords verify repeats
    run: RunSpec = field(default_factory=RunSpec)
    load: LoadSpec = field(default_factory=LoadSpec)
    checkpoint: CheckpointRecord | None = None  # None: exported before import existed
    info: dict = field(default_factory=dict)  # the rest of meta (Guide text, charts, notes)
    version: int = VERSION

    def to_json(self) -> dict:
        """The manifest as the JSON object written into the workbook."""
        typed = {key: _json(getattr(self, key)) for key in _TYPED_META}
        meta = {**self.info, **{k: v for k, v in typed.items() if v not in (None, {})}}
        return {"version": self.version, "meta": meta,
                "nodes": {name: _json(e) for name, e in self.nodes.items()},
                "inputs": list(self.inputs), "outputs": list(self.outputs),
                "precision": self.precision}

    @classmethod
    def from_json(cls, raw, path: str | os.PathLike = "manifest") -> Manifest:
        """The manifest of the JSON object ``raw`` read from ``path``, checked first.

        Raises:
            SheetnetError: another version, or a value that is missing, of the wrong type or
                out of range (see ``manifest_checks.check``), naming it.
        """
        check(raw, path, VERSION)
        return _typed(raw)


def build(graph: ir.Graph, plan: Plan, load: LoadSpec | None = None,
          checkpoint: CheckpointRecord | None = None, precision: str = "float64") -> Manifest:
    """The manifest of a laid-out graph: the one place a manifest is made.

    Args:
        graph: the captured model; its ``meta`` (what the capture declared: run spec,
            vocabulary, capture options, Guide text) is kept.
        plan: where each node sits.
        load: how the checkpoint was loaded (export.load_spec).
        checkpoint: what import needs to write the checkpoint back (record.checkpoint_record).
        precision: the weights' text, "float64" or "float32".
    Returns:
        the Manifest export writes.
    """
    nodes = {name: _entry(node, plan) for name, node in graph.nodes.items()}
    meta = {**graph.meta, "load": load or LoadSpec(), "checkpoint": checkpoint}
    return _typed({"version": VERSION, "meta": _jsonable(meta), "nodes": nodes,
                   "inputs": [n.name for n in graph.inputs],
                   "outputs": [n.name for n in graph.outputs], "precision": precision})


def _entry(node: ir.Node, plan: Plan) -> dict:
    r = plan.regions[node.name]
    entry = {"sheet": r.sheet, "row": r.row, "col": r.col, "shape": list(r.shape),
             "kind": ir.node_kind(node), "op": type(node.op).__name__}
    if r.transposed:  # the tensor's rows are the sheet's columns (see layout.py)
        entry["layout"] = "transposed"
    if node.ref:
        entry["ref"] = node.ref
    if isinstance(node.op, ir.Input):  # run refuses what the cell's rule would
        for key in ("above", "at_least", "at_most"):
            if getattr(node.op, key) is not None:
                entry[key] = getattr(node.op, key)
        if node.op.whole:
            entry["whole"] = True
    if isinstance(node.op, ir.Param):
        entry["source"] = node.op.source
        entry["transposed"] = node.op.transposed
    return entry


def _jsonable(value):
    # numpy values as lists, dataclasses as their JSON, anything else as its text
    return json.loads(json.dumps(value, default=lambda v: _json(v) if is_dataclass(v) else
                                 v.tolist() if hasattr(v, "tolist") else str(v)))


def _json(value):
    # a dataclass as its JSON object (fields at their default left out), tuples as lists
    if is_dataclass(value):
        return {f.name: _json(v) for f in fields(value)
                if (v := getattr(value, f.name)) != _default(f)}
    if isinstance(value, (tuple, list)):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return value


def _default(f):
    return f.default_factory() if f.default_factory is not MISSING else \
        None if f.default is MISSING else f.default


def _known(cls, raw: dict, **typed) -> dict:
    # the keys of ``raw`` that are fields of ``cls`` (a newer writer's extras are left), with
    # ``typed`` replacing the values that need converting
    return {**{f.name: raw[f.name] for f in fields(cls) if f.name in raw}, **typed}


def _tuple(values):
    return None if values is None else tuple(values)


def _typed(raw: dict) -> Manifest:
    # checked JSON (or build's own) -> Manifest
    meta = raw["meta"]
    return Manifest(
        nodes={name: NodeEntry(**_known(NodeEntry, e, shape=tuple(e["shape"])))
               for name, e in raw["nodes"].items()},
        inputs=tuple(raw["inputs"]), outputs=tuple(raw["outputs"]),
        precision=raw.get("precision") or "float64",
        architecture=meta.get("architecture"), vocab=_tuple(meta.get("vocab")),
        capture_options=dict(meta.get("capture_options") or {}),
        run=_run(meta.get("run") or {}),
        load=LoadSpec(**_known(LoadSpec, meta.get("load") or {})),
        checkpoint=_record(meta["checkpoint"]) if meta.get("checkpoint") else None,
        info={k: v for k, v in meta.items() if k not in _TYPED_META},
        version=raw["version"])


def _run(raw: dict) -> RunSpec:
    given = {k: v for k, v in raw.items() if v is not None}  # null: as if not written
    lists = {k: tuple(given[k]) for k in ("errors", "blank_fill", "integers", "vocab")
             if k in given}
    pos = given.get("positions")
    return RunSpec(**_known(RunSpec, given, **lists, positions=pos and Positions(
        pos["count"], tuple(pos.get("keys") or ()))))


def _record(raw: dict) -> CheckpointRecord:
    tensors = tuple(TensorEntry(**_known(TensorEntry, t, shape=tuple(t["shape"])))
                    for t in raw["tensors"])
    return CheckpointRecord(**_known(CheckpointRecord, raw, tensors=tensors,
                                     files_left=_tuple(raw.get("files_left"))))


def read_manifest(path: str | os.PathLike) -> Manifest:
    """The manifest sheetnet wrote into a workbook, checked (``Manifest.from_json``), every
    node's cells backed by its sheet's real size (see ``_check_backed``).

    Raises:
        SheetnetError: not an .xlsx, not written by sheetnet, a damaged or tampered manifest.
    """
    with Book(path) as book:
        manifest = Manifest.from_json(_parse(_manifest_text(book), path), path)
        _check_backed(book, manifest)
    return manifest


def _manifest_text(book: Book) -> str:
    if MANIFEST_SHEET not in book.sheets:
        raise SheetnetError(f"{book.path} was not written by sheetnet (no {MANIFEST_SHEET} sheet)")
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
    return "".join(shared.get(int(t), "") if k == "s" and (t or "").isdigit() else (t or "")
                   for k, t in chunks)


def _parse(text: str, path) -> object:
    if text.count("{") + text.count("[") > MANIFEST_CONTAINERS:
        raise SheetnetError(f"{path}: the sheetnet manifest is damaged (too deeply built)")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise SheetnetError(f"{path}: the sheetnet manifest is damaged") from None


def _check_backed(book: Book, manifest: Manifest) -> None:
    # Readers allocate a node's cells (import: the weights; verify and run: what the engine
    # reads), so a node may claim only as many cells as its sheet's XML can hold: each cell is
    # at least MIN_CELL_BYTES.  Views own no cells.
    cells: dict[str, int] = {}
    first: dict[str, str] = {}
    for name, e in manifest.nodes.items():
        if e.op != "View":
            cells[e.sheet] = cells.get(e.sheet, 0) + e.size
            first.setdefault(e.sheet, name)
    for sheet, n in cells.items():
        if sheet not in book.sheets:
            raise SheetnetError(f"{first[sheet]}: sheet {sheet!r} is missing from "
                                f"{book.path.name}")
        if n * MIN_CELL_BYTES > book.part_size(sheet):
            raise SheetnetError(f"{book.path.name}: the manifest places {n:,} cells on sheet "
                                f"{sheet!r}, more than its {book.part_size(sheet):,} bytes hold")
