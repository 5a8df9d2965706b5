"""The pipeline, end to end: load -> capture -> layout -> emit -> write."""
from __future__ import annotations

import contextlib
import gc
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import layout, loaders
from .capture import Captured, capture, capture_in_memory
from .emit.arrays import ARRAY_FORMULAS
from .emit.book import build_book
from .errors import SheetnetError
from .files import check_output
from .ir import graph as ir
from .loaders.describe import architecture_lines
from .manifest import LoadSpec, build
from .options import (AUTO_ARRAYS_ABOVE, AUTO_FLOAT32_ABOVE, LOAD_S_PER_WEIGHT, RECALC_S_PER_CELL,
                      ExportOptions)
from .record import checkpoint_record
from .writer import write_book


@dataclass
class ExportResult:
    path: Path
    sheets: int
    formula_cells: int
    weight_cells: int
    seconds: float
    style: str = "cells"    # the style written ("auto" resolved)
    precision: str = "float64"  # the weights' text ("auto" resolved)
    notes: tuple[str, ...] = ()  # what the user should know about how the model was read
    positions: tuple[int, int] | None = None  # a GPT: positions computed, of its block size
    architecture: tuple[str, ...] = ()  # the model as read, one line per layer


def lower(model, options: ExportOptions, example_inputs=None) -> Captured:
    """Load a checkpoint (or take an in-memory module) and capture it as a graph, refusing
    non-finite weights; the graph's meta["architecture_lines"] is the model as read, one line
    per layer.

    Args:
        model: a checkpoint's path, or an nn.Module (capture.capture_in_memory).
        options: how to read and lower it.
        example_inputs: an in-memory module's example inputs (unused for a path).
    Raises:
        SheetnetError: bad options (ExportOptions.check, before the file is read), an unreadable
            model, or non-finite weights.
    """
    return _load_and_capture(model, options, example_inputs)[1]


def is_path(model: object) -> bool:
    """A model given as a file or folder (as on the command line), not as a module."""
    return isinstance(model, (str, os.PathLike))


def model_name(model: object) -> str:
    """What the Guide and the manifest call the model: its file's name, or its class."""
    return Path(model).name if is_path(model) else f"{type(model).__name__} (in memory)"


def _load_and_capture(model, options: ExportOptions, example_inputs=None) -> tuple[dict, Captured]:
    # the payload too: export records from it how it was loaded and the checkpoint record
    options.check()
    if is_path(model):
        payload = loaders.load(model, options.fmt, meta=options.meta,
                               activations=options.activations)
        captured = capture(payload, options)
    else:
        payload, captured = capture_in_memory(model, example_inputs, options)
    check_finite(captured.graph)
    meta = captured.graph.meta
    meta.setdefault("model_file", model_name(model))
    if "architecture_lines" not in meta:  # the torch.export front end describes its own model
        meta["architecture_lines"] = architecture_lines(payload)
    return payload, captured


def load_spec(payload: dict, options: ExportOptions) -> LoadSpec:
    """How the checkpoint was loaded (format, --meta, --activations), so that verify reads the
    same model without being told again."""
    vocab = (str(Path(options.meta).resolve()) if options.meta
             else payload["metadata"].get("vocab_file"))  # a meta.pkl the loader found, not beside
    return LoadSpec(payload["metadata"]["source_format"], vocab, options.activations)


def check_finite(graph: ir.Graph) -> None:
    """Raise SheetnetError naming the first weight that holds NaN or infinity."""
    for node in graph.of_type(ir.Param):
        bad = ~np.isfinite(node.op.value)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise SheetnetError(f"weight {node.op.source or node.name} holds "
                                f"{node.op.value[where]} at {list(where)}: cannot export "
                                "NaN or infinite weights")


def export(model, out_path, options: ExportOptions | None = None,
           progress=None, example_inputs=None, train=None) -> ExportResult:
    """Compile ``model`` into the workbook ``out_path``.

    Args:
        model: a checkpoint's path (see loaders), or an nn.Module in memory.
        out_path: the .xlsx to write; its folder must exist.
        options: style, force, format and initial inputs.
        progress: optional callable(done, total, sheet name) as each sheet is written.
        example_inputs: an in-memory module's example inputs (see capture.capture_in_memory).
        train: a capture.train_data.TrainOptions: write training unrolled (--train) instead
            of the model's own sheets.
    Returns:
        what was written, with counts and time.
    Raises:
        SheetnetError: any bad input, or a workbook LibreOffice would take longer than
            ``options.max_recalc`` seconds to recalculate; no file is left at ``out_path`` then.
    """
    options = options or ExportOptions()
    start = time.perf_counter()
    options.check()  # lower checks again; a bad option must not wait for the output's checks
    if train is not None:
        train.check()
    out_path = check_output(out_path, options.force)  # before any work; write_book checks again
    with _no_cyclic_gc():
        return _export(model, out_path, options, progress, start, example_inputs, train)


def _export(model, out_path: Path, options: ExportOptions, progress, start: float,
            example_inputs, train=None):
    payload, captured = _load_and_capture(model, options, example_inputs)
    if train is not None:  # the training steps unrolled from the captured forward pass
        from .capture.train import training_capture
        captured = training_capture(captured, train)
    graph = captured.graph
    plan = layout.plan(graph)
    guide = {"summary": graph.meta.get("summary", ""), "book": out_path.name,
             "model": model_name(model), "in_memory": not is_path(model),
             **graph.meta.get("guide", {})}
    style = choose_style(graph, options.style)
    check_recalc(graph, style, options.max_recalc)
    arrays = ARRAY_FORMULAS if style == "arrays" else None
    precision = choose_precision(graph, options.precision)  # verify's tolerance follows it
    manifest = build(graph, plan, load=load_spec(payload, options), precision=precision,
                     checkpoint=checkpoint_record(payload, graph,
                                                  model if is_path(model) else None))
    book = replace(build_book(graph, plan, guide=guide, array_ops=arrays),
                   manifest=manifest.to_json())
    counter = iter(range(1, len(book.sheets) + 2))  # + the manifest sheet
    write_book(book, out_path, force=options.force, precision=precision,
               progress=progress and (lambda spec: progress(next(counter), len(book.sheets) + 1,
                                                            spec.name)))
    return ExportResult(out_path, len(book.sheets), formula_cells(graph), weight_cells(graph),
                        time.perf_counter() - start, style, precision,
                        tuple(graph.meta.get("notes", ())),
                        tuple(graph.meta["positions"]) if "positions" in graph.meta else None,
                        tuple(graph.meta["architecture_lines"]))


@contextlib.contextmanager
def _no_cyclic_gc():
    # the graph, plan and book hold millions of small tuples (labels, cell keys); the cyclic
    # collector rescans them over and over: GPT-2 small lowers and builds in 1.7 s without it,
    # 6.8 s with it.  Nothing here makes reference cycles that need collecting meanwhile.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def weight_cells(graph: ir.Graph) -> int:
    """How many cells of the graph hold weights (Param nodes)."""
    return sum(n.shape[0] * n.shape[1] for n in graph.of_type(ir.Param))


def choose_precision(graph: ir.Graph, precision: str) -> str:
    """``precision``, with "auto" resolved: "float32" above AUTO_FLOAT32_ABOVE weight cells when
    every weight is float32 or narrower (see options.py), else "float64"."""
    if precision != "auto":
        return precision
    narrow = all(np.asarray(n.op.value).dtype.itemsize <= 4 for n in graph.of_type(ir.Param))
    return "float32" if narrow and weight_cells(graph) > AUTO_FLOAT32_ABOVE else "float64"


def formula_cells(graph: ir.Graph) -> int:
    """How many cells of the graph's nodes hold formulas (every op but leaves and views)."""
    ops = [n for n in graph.nodes.values() if not isinstance(n.op, (*ir.LEAF_TYPES, ir.View))]
    return sum(n.shape[0] * n.shape[1] for n in ops)


def estimated_recalc_s(graph: ir.Graph, style: str) -> float:
    """LibreOffice's load + recalculation of the workbook, estimated on this machine (see
    options.py for the measurements); inspect reports it, export refuses above max_recalc.

    Args:
        graph: the captured graph.
        style: "cells" or "arrays" (resolved).
    Returns:
        seconds.
    """
    return (weight_cells(graph) * LOAD_S_PER_WEIGHT
            + formula_cells(graph) * RECALC_S_PER_CELL[style])


def check_recalc(graph: ir.Graph, style: str, max_recalc: float | None) -> None:
    """Refuse a workbook whose estimated recalculation passes ``max_recalc`` seconds.

    Raises:
        SheetnetError: naming the estimate and the options that change it.
    """
    seconds = estimated_recalc_s(graph, style)
    if max_recalc is not None and seconds > max_recalc:
        fewer = " or fewer positions (--context)" if "positions" in graph.meta else ""
        about = f"{seconds:,.0f}" if seconds >= 1 else f"{seconds:.2g}"
        raise SheetnetError(f"LibreOffice would take about {about} s to recalculate this "
                            f"workbook (estimated, style {style}), over --max-recalc "
                            f"{max_recalc:g}: raise --max-recalc to write it anyway{fewer}")


def choose_style(graph: ir.Graph, style: str) -> str:
    """``style``, with "auto" resolved: "arrays" above AUTO_ARRAYS_ABOVE formula cells (see
    options.py for the measurements), else "cells"."""
    if style != "auto":
        return style
    return "arrays" if formula_cells(graph) > AUTO_ARRAYS_ABOVE else "cells"
