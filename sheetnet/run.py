"""Set a workbook's input cells, let LibreOffice recalculate, and read the outputs."""
from __future__ import annotations

import numpy as np

from .engine import Engine
from .errors import SheetnetError
from .verify import numeric, read_nodes
from .writer import read_manifest


def input_edits(manifest: dict, name: str, values) -> list[tuple[str, int, int, object]]:
    """Edits that fill input node ``name`` row by row with ``values``.

    Raises:
        SheetnetError: the count of values differs from the node's cells.
    """
    entry = manifest["nodes"][name]
    rows, cols = entry["shape"]
    flat = list(values)
    if len(flat) != rows * cols:
        raise SheetnetError(f"input {name} takes {rows * cols} value(s), got {len(flat)}")
    return [(entry["sheet"], entry["row"] + k // cols, entry["col"] + k % cols, v)
            for k, v in enumerate(flat)]


def run(book, inputs: list[float] | None = None, engine: Engine | None = None,
        edits: list | None = None) -> dict:
    """Recalculate ``book`` with new input values and return its outputs.

    Args:
        book: an exported workbook.
        inputs: values for the (first) input node, row by row; None keeps the workbook's.
        engine: a running Engine to reuse; default a one-shot one.
        edits: further (sheet, row, col, value) edits, e.g. a temperature cell.
    Returns:
        {"inputs": [...], "outputs": [[...], ...]} as plain lists.
    """
    manifest = read_manifest(book)
    first = manifest["inputs"][0]
    all_edits = (input_edits(manifest, first, inputs) if inputs is not None else []) + list(edits or [])
    names = [first] + manifest["outputs"]
    if engine is None:
        with Engine() as eng:
            cells = read_nodes(eng, book, manifest, names, edits=all_edits)
    else:
        cells = read_nodes(engine, book, manifest, names, edits=all_edits)
    outputs = np.concatenate([numeric(cells[n]) for n in manifest["outputs"]], axis=1)
    return {"inputs": [_plain(v) for v in cells[first].flat], "outputs": outputs.tolist()}


def _plain(value):
    return value if isinstance(value, (str, type(None))) else float(value)
