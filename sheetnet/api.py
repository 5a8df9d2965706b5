"""The Python API (``sheetnet.export``, ``verify``, ``run``, ``import_book``): a thin layer over
the pipeline's export.export, verify.verify, run.run and importer.import_book, for a model in a
notebook as much as for one in a file.

Importing this module is cheap (no torch, no NumPy): each function imports its stage when called,
so that ``import sheetnet`` stays instant.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable

from .errors import SheetnetError
from .options import ExportOptions


def export(model, out, example_inputs=None, *, progress: bool | Callable = False, train=None,
           **options):
    """Compile a model into an .xlsx workbook whose formulas compute it.

    Args:
        model: an nn.Module in memory, or a checkpoint's path (as on the command line).  A plain
            nn.Sequential of Linear layers and activations takes the same path as a saved one;
            any other module goes through torch.export.
        out: the .xlsx to write.
        example_inputs: a tuple of the tensors the model's forward takes (one tensor: a 1-tuple).
            Needed for any module but a plain Sequential, whose single example row (shape (in,)
            or (1, in)) is then written into the Input sheet instead of zeros.
        progress: True: one line per sheet written on stderr (a bar on a terminal); a callable:
            called (done, total, sheet name) per sheet; False: silent.
        train: write training unrolled instead (the CLI's --train): a dict of
            capture.train_data.TrainOptions' fields, e.g. {"data": "xy.csv", "steps": 20,
            "optimizer": "adam", "lr": 0.05, "batch": 8}, or a TrainOptions.
        options: ExportOptions' fields: style, force, precision, context, prompt, tokens, fmt,
            meta, activations, input_value, max_recalc.
    Returns:
        the ExportResult (path, sheets, formula_cells, weight_cells, seconds, style, precision,
        notes, positions, architecture).
    Raises:
        SheetnetError: an unknown option, a bad model, path or example input; no file is written.
    """
    from .pipeline import export as export_book
    opts = export_options(options)
    if isinstance(train, dict):
        train = _train_options(train)
    with _progress_callback(progress) as callback:
        return export_book(model, out, opts, progress=callback, example_inputs=example_inputs,
                           train=train)


def _train_options(given: dict):
    # train={...} -> TrainOptions, an unknown key refused in one line
    from .capture.train_data import TrainOptions
    known = [f.name for f in dataclasses.fields(TrainOptions)]
    unknown = [k for k in given if k not in known]
    if unknown:
        raise SheetnetError(f"train takes no option {unknown[0]!r}; options: {', '.join(known)}")
    return TrainOptions(**given)


def verify(book, model, example_inputs=None, engine="libreoffice", tol: float | None = None,
           timeout: float | None = None):
    """Recalculate ``book`` in a spreadsheet engine and compare every tensor with the model in
    PyTorch float64; prints nothing.

    Args:
        book: a workbook sheetnet exported.
        model: the nn.Module it was exported from, or the checkpoint's path.
        example_inputs: as given to export (a module that is not a plain Sequential needs them).
        engine: "libreoffice", "gnumeric" or "ironcalc" (or a running engine).
        tol: max abs error per cell (None: 1e-9, or the float32-precision tolerance).
        timeout: seconds the engine may take (None: the engines' default).
    Returns:
        the Report: ``.ok``, ``.max_abs_err``, ``.rows`` (one per tensor), ``.table()``.
    Raises:
        SheetnetError: an unreadable book, a bad model or timeout, a missing engine.
    """
    from .verifier import verify as verify_book
    return verify_book(book, model, tol=tol, engine=engine, timeout=_timeout(timeout),
                       example_inputs=example_inputs)


def run(book, inputs=None, *, prompt: str | None = None, tokens=None,
        temperature: float | None = None, top_k: int | None = None, seed: int | None = None,
        generate: int | None = None, engine="libreoffice", timeout: float | None = None):
    """Set a workbook's inputs, recalculate it in a spreadsheet engine and read the outputs.

    Args:
        book: a workbook sheetnet exported.
        inputs: values for the input cells, row by row (numbers, a list, an array or a tensor);
            None keeps the workbook's.
        prompt: text models: the prompt or word.
        tokens: GPT: token ids.
        temperature: the temperature cell, when the workbook has one (a GPT's: >= 0, 0 greedy).
        top_k, seed: a GPT's sampling cells (top-k 0 = all ids; seed 1 .. 2147483646).
        generate: a GPT: how many new tokens to report (None: all the context holds).
        engine: "libreoffice", "gnumeric" or "ironcalc" (or a running engine).
        timeout: seconds the engine may take (None: the engines' default).
    Returns:
        {"inputs": [...], "outputs": [[...], ...]} and what the model reports besides
        ("probs", "next_token", a GPT's "generated" and "generated_ids", ...), as
        ``sheetnet run --json`` prints it.
    Raises:
        SheetnetError: an input the workbook does not take, or of the wrong count.
    """
    from .runner import run as run_book
    return run_book(book, inputs=None if inputs is None else _floats(inputs), prompt=prompt,
                    tokens=None if tokens is None else _ints(tokens), temperature=temperature,
                    top_k=top_k, seed=seed, generate=generate, engine=engine,
                    timeout=_timeout(timeout))


@dataclass
class ImportResult:
    """What ``import_book`` wrote: the checkpoint's path, and what it said about it."""
    path: Path
    notes: list[str] = field(default_factory=list)


def import_book(book, out, force: bool = False) -> ImportResult:
    """Write a workbook's weight cells (as edited and saved) back as a checkpoint in the format
    it was exported from.

    Args:
        book: a workbook sheetnet exported.
        out: the checkpoint to write (a folder for Hugging Face and minGPT work folders).
        force: overwrite ``out`` if it exists.
    Returns:
        the ImportResult; its notes in the order import said them, the last one what was
        written (as ``sheetnet import`` prints it first).
    Raises:
        SheetnetError: a weight cell that is not a number, ``out`` exists, ...; nothing written.
    """
    from .importer import import_book as import_weights
    notes: list[str] = []
    path = import_weights(book, out, force=force, notes=notes.append)
    return ImportResult(Path(path), notes)


def export_options(options: dict) -> ExportOptions:
    """ExportOptions from keywords, refusing an unknown one in one line.

    Raises:
        SheetnetError: naming the keyword and the options there are.
    """
    known = [f.name for f in dataclasses.fields(ExportOptions)]
    unknown = [k for k in options if k not in known]
    if unknown:
        raise SheetnetError(f"export takes no option {unknown[0]!r}; options: {', '.join(known)}")
    return ExportOptions(**options)


class SheetProgress:
    """Export's progress callback: a bar over the sheets on a terminal; elsewhere (a notebook, a
    log) one line per sheet when ``lines``, else nothing (the CLI keeps its logs clean)."""

    def __init__(self, lines: bool = False, stream=None):
        self.lines, self.stream, self.bar = lines, stream or sys.stderr, None

    def __call__(self, done: int, total: int, name: str) -> None:
        if self.bar is None and _isatty(self.stream):
            import click
            self.bar = click.progressbar(length=total, label="writing sheets", file=self.stream,
                                         item_show_func=lambda n: n)
            self.bar.__enter__()
        if self.bar is not None:
            self.bar.update(1, name)
        elif self.lines:
            print(f"writing sheets: {done}/{total} {name}", file=self.stream, flush=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)


def _isatty(stream) -> bool:
    # a notebook's stderr may lack isatty altogether
    return bool(getattr(stream, "isatty", lambda: False)())


def _progress_callback(progress):
    # progress=True|False|callable -> a context manager yielding export's callback (or None)
    import contextlib
    if callable(progress) or progress in (False, None):
        return contextlib.nullcontext(progress or None)
    if progress is not True:
        raise SheetnetError(f"progress must be True, False or a callable, not {progress!r}")
    return SheetProgress(lines=True)


def _timeout(seconds: float | None) -> float:
    from .engines.base import DEFAULT_TIMEOUT, check_timeout
    return check_timeout(DEFAULT_TIMEOUT if seconds is None else seconds)


def _floats(values) -> list[float]:
    # numbers, nested lists, arrays or tensors -> a flat list of floats, row by row
    import numpy as np
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    try:
        return [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]
    except (TypeError, ValueError) as exc:
        raise SheetnetError(f"inputs must be numbers: {exc}".splitlines()[0]) from None


def _ints(values) -> list[int]:
    try:
        return [int(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise SheetnetError(f"tokens must be integers: {exc}".splitlines()[0]) from None
