"""Recalculate a workbook in a spreadsheet engine (LibreOffice by default; Gnumeric, IronCalc)
and compare every tensor with PyTorch in float64.

Expected values come from the model itself: nodes with a ``ref`` are compared with the PyTorch
intermediate of that name; the rest (the sheet's own helpers: sqrt(x), on/off patterns) with the
NumPy reference of the IR.  Inputs are read back from the recalculated workbook, so a user who
typed a new x verifies that x.

Tolerance: 1e-9 per cell.  A workbook exported with precision "float32" holds its weights with
8-9 significant digits (< 6e-8 relative off as float64; see options.py), which moves every tensor
by a small fraction of its own size: its tensors are compared at 1e-6 x max(1, the tensor's
largest |value|), and its weight cells after a cast to float32, where they must equal the
weights exactly.  A workbook with more
than WEIGHTS_REREAD_MAX weight cells (GPT-2 small: 124M) does not have them read back through UNO
(minutes and gigabytes): its weight rows say "skipped" and count neither as passed nor failed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .capture import TORCH_EXPORT, Captured
from .engines import DEFAULT_TIMEOUT, Block, FormulaError, open_engine
from .errors import SheetnetError
from .pipeline import is_path, lower
from .ir import graph as ir, reference
from .manifest import Manifest, NodeEntry, read_manifest
from .options import TOLERANCE, TOLERANCE_FLOAT32, ExportOptions


WEIGHTS_REREAD_MAX = 2_000_000  # weight cells read back and compared; above, none are


@dataclass
class Row:
    name: str
    sheet: str
    cells: int
    max_abs_err: float
    against: str  # "torch", "reference", "weights" or "f32 cast" (weights of a float32 book)
    skipped: bool = False  # not read back (weights above WEIGHTS_REREAD_MAX): neither ok nor not
    scale: float = 1.0     # the tolerance is tol x scale (> 1 only for a float32-precision book)

    def ok(self, tol: float) -> bool:
        return bool(np.isfinite(self.max_abs_err) and self.max_abs_err <= tol * self.scale)


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    tol: float = TOLERANCE
    precision: str = "float64"  # how the workbook's weights were written
    notes: list[str] = field(default_factory=list)  # e.g. a sampling tie (not a failure)

    @property
    def compared(self) -> list[Row]:
        return [r for r in self.rows if not r.skipped]

    @property
    def skipped(self) -> list[Row]:
        return [r for r in self.rows if r.skipped]

    @property
    def ok(self) -> bool:
        return all(r.ok(self.tol) for r in self.compared)

    @property
    def max_abs_err(self) -> float:
        return max((r.max_abs_err for r in self.compared), default=0.0)

    def table(self) -> str:
        """The per-layer table the CLI prints."""
        width = max([len(r.name) for r in self.rows] + [5])
        lines = [f"{'layer':<{width}}  {'sheet':<14} {'cells':>7}  {'max abs err':>11}  "
                 f"{'against':<9} status"]
        for r in self.rows:
            if r.skipped:
                lines.append(f"{r.name:<{width}}  {r.sheet[:14]:<14} {r.cells:>7}  "
                             f"{'-':>11}  {'-':<9} skipped: weights not re-read")
                continue
            lines.append(f"{r.name:<{width}}  {r.sheet[:14]:<14} {r.cells:>7}  "
                         f"{r.max_abs_err:>11.3g}  {r.against:<9} "
                         f"{'ok' if r.ok(self.tol) else 'MISMATCH'}")
        verdict = "all match" if self.ok else "MISMATCH"
        why = (" x max(1, the tensor's largest |value|), precision float32"
               if self.precision == "float32" else "")
        lines += self.notes
        lines.append(f"{verdict}: {len(self.compared)} tensors, max abs error "
                     f"{self.max_abs_err:.3g} (tolerance {self.tol:g}{why})")
        if self.skipped:
            cells = sum(r.cells for r in self.skipped)
            lines.append(f"weights not re-read ({cells:,} cells in {len(self.skipped)} tensors, "
                         f"above {WEIGHTS_REREAD_MAX:,}): skipped, not compared")
        return "\n".join(lines)


def engines_table(reports: dict[str, Report]) -> str:
    """One row per tensor, one column of max abs errors per engine (``verify --engine all``)."""
    names = list(reports)
    first = reports[names[0]]
    width = max([len(r.name) for r in first.rows] + [5])
    cols = max(12, *(len(n) for n in names))
    lines = [f"{'layer':<{width}}  {'sheet':<14} {'cells':>7}  "
             + "  ".join(f"{n:>{cols}}" for n in names)]
    for k, row in enumerate(first.rows):
        errs = [reports[n].rows[k] for n in names]
        cells = ["-" if e.skipped else f"{e.max_abs_err:.3g}" + ("" if e.ok(reports[n].tol)
                                                                 else " !")
                 for n, e in zip(names, errs)]
        lines.append(f"{row.name:<{width}}  {row.sheet[:14]:<14} {row.cells:>7}  "
                     + "  ".join(f"{c:>{cols}}" for c in cells))
    lines.append(f"{'max':<{width}}  {'':<14} {'':>7}  "
                 + "  ".join(f"{reports[n].max_abs_err:>{cols}.3g}" for n in names))
    verdicts = [f"{n} {'all match' if reports[n].ok else 'MISMATCH'}" for n in names]
    lines.append(f"{'; '.join(verdicts)} (tolerance {first.tol:g}; ! marks a mismatch)")
    return "\n".join(lines)


def numeric(values: np.ndarray) -> np.ndarray:
    """Object array from the engine -> float64; text or empty cells become NaN (a mismatch)."""
    out = np.full(values.shape, np.nan)
    for idx, v in np.ndenumerate(values):
        if isinstance(v, float) or isinstance(v, int):
            out[idx] = v
    return out


def block(entry: NodeEntry) -> Block:
    """The cells of a manifest entry; a node laid out transposed covers its shape swapped."""
    return Block(entry.sheet, entry.row, entry.col, *entry.cells)


def read_nodes(engine, book, manifest: Manifest, names: list[str], edits=()) -> dict:
    """Recalculate ``book`` (after ``edits``) and return the named nodes' cells (object arrays).

    Raises:
        SheetnetError: formula cells compute to errors; when the model declares message cells
            (the run spec's ``errors``, e.g. "not in vocab: 'Ω'"), their text is the message.
    """
    entries = [manifest.nodes[n] for n in names]
    try:
        values = engine.recalculate(book, [block(e) for e in entries], edits=edits)
    except FormulaError as exc:
        messages = _messages(engine, book, manifest, edits)
        if messages:
            raise SheetnetError("; ".join(messages)) from exc
        raise
    return {n: v.T if e.laid_transposed else v for n, e, v in zip(names, entries, values)}


def _messages(engine, book, manifest: Manifest, edits) -> list[str]:
    # the distinct texts in the cells the model declares as messages, in sheet order
    names = manifest.run.errors
    if not names:
        return []
    values = engine.recalculate(book, [block(manifest.nodes[n]) for n in names], edits=edits,
                                check_errors=False)
    texts = [v for cells in values for v in cells.flat if isinstance(v, str)]
    return list(dict.fromkeys(texts))


def check_matches(captured: Captured, manifest: Manifest, book) -> None:
    """The workbook must have been exported from this model: same nodes, same shapes."""
    for node in captured.graph.nodes.values():
        entry = manifest.nodes.get(node.name)
        if entry is None or entry.shape != tuple(node.shape):
            raise SheetnetError(f"{book} was not exported from this model "
                                f"(tensor {node.name} {'missing' if entry is None else 'differs'})")


def verify(book, model, tol: float | None = None, fmt: str | None = None,
           engine="libreoffice", meta: str | None = None,
           activations: str | None = None, timeout: float = DEFAULT_TIMEOUT,
           example_inputs=None) -> Report:
    """Compare every computed tensor of ``book``, recalculated by an engine, with the model.

    Args:
        book: an exported workbook.
        model: the checkpoint it came from, or the nn.Module (a book exported from a module
            through torch.export can only be verified with the module).
        tol: max abs error allowed per cell; None: TOLERANCE, or TOLERANCE_FLOAT32 for a
            workbook exported with precision "float32" (recorded in its manifest).
        fmt, meta, activations: how to load the checkpoint (loaders.load); each None takes what
            the export recorded in the workbook.
        engine: an engine's name (libreoffice, gnumeric, ironcalc: one is started for this
            call), or a running engine to reuse (tests).
        timeout: seconds the engine may take (when started here).
        example_inputs: a module's example inputs, as export was given them (only their shapes
            matter: the input values are the workbook's).
    Returns:
        the Report; ``report.ok`` is False on any mismatch.
    Raises:
        SheetnetError: an unreadable book or model, or a model the book was not exported from.
    """
    manifest = read_manifest(book)
    how = manifest.load
    if how.fmt == TORCH_EXPORT and is_path(model) and fmt is None:
        raise SheetnetError(f"{book} was exported from an nn.Module in memory (torch.export): "
                            "verify it with that module and its example_inputs, not a file")
    captured = lower(model, ExportOptions(
        fmt=fmt or how.fmt, meta=meta or how.meta, activations=activations or how.activations,
        **manifest.capture_options), example_inputs)
    if "training" in manifest.info:  # --train: the steps rebuilt as export built them
        from .capture.train import rebuild_training
        captured = rebuild_training(captured, manifest.info["training"])
    check_matches(captured, manifest, book)
    graph = captured.graph
    precision = manifest.precision
    default_tol = tol is None
    if tol is None:
        tol = TOLERANCE_FLOAT32 if precision == "float32" else TOLERANCE
    weights = [n for n, e in manifest.nodes.items() if e.kind == "weight"]
    skip = set(weights) if _cells(manifest, weights) > WEIGHTS_REREAD_MAX else set()
    names = [n for n, e in manifest.nodes.items() if e.op != "View" and n not in skip]
    cells = with_engine(engine, timeout, read_nodes, book, manifest, names)
    leaves = {n.name: _leaf_values(cells[n.name]) for n in graph.nodes.values()
              if manifest.nodes[n.name].kind in ("input", "const")}
    if default_tol and "training" in manifest.info:  # Adam's division by sqrt(v) + eps
        from .capture.train import tolerance_scale
        tol *= tolerance_scale(graph, leaves)
    # generated ids (ops.NextInput): the trace follows the sheet's where the rule allows either
    # id (a tie), and the reference computes on the sheet's ids; trace["notes"] says where
    drawn = {n.name: cells[n.name] for n in graph.nodes.values() if ir.later_inputs(n.op)}
    torch_values = captured.trace(captured.model, graph,
                                  {**leaves, **{f"sheet:{n}": v for n, v in drawn.items()}})
    ref_values = reference.evaluate(graph, inputs={**leaves, **drawn})
    report = Report(tol=tol, precision=precision, notes=list(torch_values.get("notes", [])))
    for node in graph.nodes.values():
        entry = manifest.nodes[node.name]
        if entry.kind in ("input", "const") or entry.op == "View":
            continue
        if node.name in skip:
            report.rows.append(Row(node.name, node.sheet, _cells(manifest, [node.name]), np.nan,
                                   "weights", skipped=True))
            continue
        if entry.kind == "weight" and precision == "float32":
            # float32 text: the cells cast to float32 must be the weights bit for bit
            got = numeric(cells[node.name]).astype(np.float32).astype(np.float64)
            want = np.asarray(node.op.value, dtype=np.float32).astype(np.float64)
            report.rows.append(Row(node.name, node.sheet, want.size,
                                   _max_abs_err(got, want.reshape(got.shape)), "f32 cast"))
            continue
        against = "torch" if node.ref else "reference"
        expected = torch_values[node.ref] if node.ref else ref_values[node.name]
        expected = np.asarray(expected)
        if expected.dtype.kind in "fiub":
            got = numeric(cells[node.name])
            err = _max_abs_err(got, expected.astype(np.float64).reshape(got.shape))
        else:  # text cells (characters, messages), perhaps mixed with numbers
            err = _mixed_err(cells[node.name], expected.reshape(cells[node.name].shape))
        report.rows.append(Row(node.name, node.sheet, expected.size, err,
                               "weights" if entry.kind == "weight" else against,
                               scale=_scale(expected) if precision == "float32" else 1.0))
    return report


def with_engine(engine, timeout: float, fn, *args, **kwargs):
    """fn(engine, *args, **kwargs), with ``engine`` started here when it is a name.

    Raises:
        SheetnetError: an unknown engine name, or the engine is not installed.
    """
    if not isinstance(engine, str):
        return fn(engine, *args, **kwargs)
    with open_engine(engine, timeout=timeout) as eng:
        return fn(eng, *args, **kwargs)


def _scale(expected: np.ndarray) -> float:
    # max(1, largest finite |value|) of a tensor; text cells count as 1
    if expected.dtype.kind not in "fiub":
        return 1.0
    values = np.abs(expected[np.isfinite(expected)].astype(np.float64))
    return float(max(1.0, values.max(initial=0.0)))


def _cells(manifest: Manifest, names) -> int:
    return sum(manifest.nodes[n].size for n in names)


def _leaf_values(cells: np.ndarray) -> np.ndarray:
    # numbers stay numbers; text inputs (words, prompts) stay text
    if all(isinstance(v, (float, int)) for v in cells.flat):
        return cells.astype(np.float64)
    return cells


def _max_abs_err(got: np.ndarray, expected: np.ndarray) -> float:
    both_inf = np.isinf(got) & np.isinf(expected) & (np.sign(got) == np.sign(expected))
    # a masked attention score is -inf in PyTorch and a blank cell in the sheet: equal
    masked = np.isneginf(expected) & np.isnan(got)
    diff = np.where(both_inf | masked, 0.0, np.abs(got - expected))
    return float(np.nanmax(np.where(np.isnan(diff), np.inf, diff))) if diff.size else 0.0


def _mixed_err(got: np.ndarray, expected: np.ndarray) -> float:
    # numbers by their difference, text by equality (a blank cell reads back as None, i.e. "")
    worst = 0.0
    for g, e in zip(got.flat, expected.flat):
        if isinstance(e, (float, int)) and not isinstance(e, bool):
            err = abs(g - e) if isinstance(g, (float, int)) else np.inf
        else:
            err = 0.0 if ("" if g is None else str(g)) == ("" if e is None else str(e)) else np.inf
        worst = max(worst, float(err))
    return worst
