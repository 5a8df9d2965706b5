"""Set a workbook's input cells, let an engine (LibreOffice by default) recalculate, and read the
outputs."""
from __future__ import annotations

import numpy as np

from .errors import SheetnetError
from .engines import DEFAULT_TIMEOUT
from .manifest import Manifest, Positions, RunSpec, read_manifest
from .verifier import numeric, read_nodes, with_engine


def input_edits(manifest: Manifest, name: str, values) -> list[tuple[str, int, int, object]]:
    """Edits that fill input node ``name`` row by row with ``values``.

    Raises:
        SheetnetError: the count of values differs from the node's cells, or a value breaks the
            input's bound (the rule its cells carry, e.g. temperature > 0, a seed a whole
            number from 1 to 2147483646: see ir.Bound).
    """
    entry = manifest.nodes[name]
    rows, cols = entry.shape
    flat = list(values)
    if len(flat) != rows * cols:
        raise SheetnetError(f"input {name} takes {rows * cols} value(s), got {len(flat)}")
    bound = entry.bound  # set through the engine, a value skips the cell's own rule
    bad = [v for v in flat if bound is not None and not bound.admits(v)]
    if bad:
        raise SheetnetError(f"{name} must be {bound.short()} (got {bad[0]})")
    down = entry.laid_transposed  # element (i, j) at sheet row j, column i
    return [(entry.sheet, entry.row + (k % cols if down else k // cols),
             entry.col + (k // cols if down else k % cols), v) for k, v in enumerate(flat)]


def run(book, inputs: list[float] | None = None, engine="libreoffice",
        edits: list | None = None, timeout: float = DEFAULT_TIMEOUT, **named) -> dict:
    """Recalculate ``book`` with new input values and return its outputs.

    Args:
        book: an exported workbook.
        inputs: values for the (first) input node, row by row; None keeps the workbook's.
        engine: an engine's name (libreoffice, gnumeric, ironcalc: one is started for this
            call), or a running engine to reuse.
        timeout: seconds the engine may take (when started here).
        edits: further (sheet, row, col, value) edits.
        named: values for the model's named inputs, as its capture declared them in the run
            spec's ``inputs`` (e.g. prompt="hello", temperature=0.7); None is skipped.
    Returns:
        {"inputs": [...], "outputs": [[...], ...]} plus the extra keys the capture declared in
        the run spec's ``report`` (e.g. "probs", "next_token").
    """
    manifest = read_manifest(book)
    spec = manifest.run
    first = spec.input or manifest.inputs[0]
    all_edits = (input_edits(manifest, first, inputs) if inputs is not None else []) + list(edits or [])
    declared = spec.inputs
    named = _tokens_as_prompt(spec, named)
    for key, value in named.items():
        if value is None:
            continue
        if key not in declared:
            raise SheetnetError(f"this workbook takes no {key} (it takes: "
                                f"{', '.join(declared) or 'only --input'})")
        values = value if isinstance(value, list) else [value]
        if key in spec.blank_fill:  # e.g. token ids: the positions after them stay blank
            values = _blank_filled(manifest, declared[key], key, values)
        all_edits += input_edits(manifest, declared[key], values)
    report = spec.report
    names = list(dict.fromkeys([first, *manifest.outputs, *report.values(),
                                *([spec.positions.count] if spec.positions else [])]))
    cells = with_engine(engine, timeout, read_nodes, book, manifest, names, edits=all_edits)
    outputs = np.concatenate([numeric(cells[n]) for n in manifest.outputs], axis=1)
    result = {"inputs": [_plain(v) for v in cells[first].flat], "outputs": outputs.tolist()}
    for key, name in report.items():
        values = [_plain(v) for v in cells[name].flat]
        result[key] = values[0] if len(values) == 1 else values
    if spec.positions:
        _keep_positions(result, spec.positions, cells, first)
    if "training" in manifest.info:  # --train: one loss per step, a list even for one step
        result["loss"] = result["loss"] if isinstance(result["loss"], list) else [result["loss"]]
    for key in spec.integers:  # ids read back as whole floats
        result[key] = _whole(result[key])
    return result


def _tokens_as_prompt(spec: RunSpec, named: dict) -> dict:
    # token ids for a workbook whose input is text: spell them with its vocabulary.  (A model
    # with id input cells declares inputs["tokens"] and takes them as they are.)
    if named.get("tokens") is None or "tokens" in spec.inputs or spec.vocab is None:
        return named
    if named.get("prompt") is not None:
        raise SheetnetError("give a prompt or token ids, not both")
    from .capture.gpt import decode_tokens
    named = dict(named)
    named["prompt"] = decode_tokens(named.pop("tokens"), spec.vocab)
    return named


def _keep_positions(result: dict, positions: Positions, cells: dict, first: str) -> None:
    # outputs and per-position reports keep the rows the input filled (the prompt's positions)
    n = int(numeric(cells[positions.count]).flat[0])
    if n < 1:
        raise SheetnetError(f"the {first} is empty")
    result["outputs"] = result["outputs"][:n]
    for key in positions.keys:
        values = result[key] if isinstance(result[key], list) else [result[key]]
        result[key] = [int(v) if isinstance(v, float) and v.is_integer() else v for v in values[:n]]


def _blank_filled(manifest: Manifest, name: str, key: str, values: list) -> list:
    # values for the first cells of input ``name``, "" (blank) for the rest
    rows, cols = manifest.nodes[name].shape
    if len(values) > rows * cols:
        raise SheetnetError(f"{len(values)} {key} given; the workbook holds {rows * cols} "
                            "(its context)")
    return list(values) + [""] * (rows * cols - len(values))


def _whole(value):
    if isinstance(value, list):
        return [_whole(v) for v in value]
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _plain(value):
    return value if isinstance(value, (str, type(None))) else float(value)
