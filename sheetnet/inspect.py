"""`sheetnet inspect`: the plan of a workbook (sheets, cells, formulas, size, limits) without
writing one — from a model file (what export would write) or from an exported workbook."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from . import layout
from .capture.gpt_body import positions_text
from .errors import SheetnetError
from .ir import graph as ir
from .layout import MAX_COLS, MAX_FORMULA_CHARS, MAX_ROWS
from .manifest import read_manifest
from .options import ExportOptions

# Measured on these machines (benchmarks/bench_writers.py, ../shared/notes/libreoffice.md):
BYTES_PER_NUMBER = 14.5     # a float64 weight cell in the zipped file
BYTES_PER_FLOAT32 = 7.1     # a weight cell written with precision float32 (GPT-2 small, random)
BYTES_PER_FORMULA = 12.0    # a formula cell, zipped (they repeat, so they compress well)
# LibreOffice's load + recalculation: export.estimated_recalc_s, the estimate export refuses on


def inspect_model(model_path, options: ExportOptions) -> dict:
    """What ``export`` would write for this model, per sheet, plus estimates and limits."""
    from .pipeline import choose_precision, choose_style, estimated_recalc_s, lower
    graph = lower(model_path, options).graph
    plan = layout.plan(graph)
    style = choose_style(graph, options.style)
    precision = choose_precision(graph, options.precision)
    per_sheet: dict[str, Counter] = {s: Counter() for s in graph.sheets}
    for node in graph.nodes.values():
        if isinstance(node.op, ir.View):
            continue
        kind = "weights" if isinstance(node.op, ir.Param) else \
            "data" if isinstance(node.op, ir.LEAF_TYPES) else "formulas"
        per_sheet[node.sheet][kind] += node.shape[0] * node.shape[1]
        region = plan.regions[node.name]
        per_sheet[node.sheet]["rows"] = max(per_sheet[node.sheet]["rows"], region.row + region.nrows)
        per_sheet[node.sheet]["cols"] = max(per_sheet[node.sheet]["cols"], region.col + region.ncols)
    totals = sum(per_sheet.values(), Counter())
    return {
        "model": str(model_path), "architecture": graph.meta.get("architecture"),
        "architecture_lines": graph.meta.get("architecture_lines", []),
        "positions": graph.meta.get("positions"),
        "style": style, "precision": precision,
        "sheets": {s: dict(c) for s, c in per_sheet.items()},
        "weights": totals["weights"], "formulas": totals["formulas"], "data": totals["data"],
        "estimated_mb": round((totals["weights"] * (BYTES_PER_FLOAT32 if precision == "float32"
                                                    else BYTES_PER_NUMBER)
                               + totals["formulas"] * BYTES_PER_FORMULA) / 2**20, 2),
        "estimated_recalc_s": round(estimated_recalc_s(graph, style), 1),
        "limits": {"rows": MAX_ROWS, "cols": MAX_COLS, "formula_chars": MAX_FORMULA_CHARS},
    }


def inspect_book(book) -> dict:
    """The sheets and tensors an exported workbook holds, from its manifest."""
    manifest = read_manifest(book)
    per_sheet: dict[str, Counter] = {}
    for entry in manifest.nodes.values():
        if entry.op == "View":
            continue
        kind = {"weight": "weights", "input": "data", "const": "data"}.get(entry.kind, "formulas")
        per_sheet.setdefault(entry.sheet, Counter())[kind] += entry.size
    totals = sum(per_sheet.values(), Counter())
    return {"book": str(book), "architecture": manifest.architecture,
            "sheets": {s: dict(c) for s, c in per_sheet.items()},
            "weights": totals["weights"], "formulas": totals["formulas"], "data": totals["data"],
            "inputs": list(manifest.inputs), "outputs": list(manifest.outputs),
            "precision": manifest.precision,
            "file_mb": round(Path(book).stat().st_size / 2**20, 2)}


def inspect(path, options: ExportOptions | None = None) -> dict:
    """Inspect a model file or an exported .xlsx (chosen by the file's first bytes)."""
    path = Path(path)
    if not path.exists():
        raise SheetnetError(f"{path} does not exist")
    if path.is_file() and path.suffix.lower() == ".xlsx":
        return inspect_book(path)
    return inspect_model(path, options or ExportOptions())


def describe(info: dict) -> str:
    """The report as lines of text for the terminal."""
    lines = [f"{info.get('model') or info.get('book')}: {info.get('architecture')}"]
    lines += [f"  {line}" for line in info.get("architecture_lines") or ()]
    if info.get("positions"):
        lines.append(f"the workbook {positions_text(*info['positions'])}")
    lines.append(f"{'sheet':<20} {'weights':>10} {'formulas':>10} {'data':>8}")
    for sheet, c in info["sheets"].items():
        lines.append(f"{sheet[:20]:<20} {c.get('weights', 0):>10,} {c.get('formulas', 0):>10,} "
                     f"{c.get('data', 0):>8,}")
    lines.append(f"{'total':<20} {info['weights']:>10,} {info['formulas']:>10,} {info['data']:>8,}")
    if "estimated_mb" in info:
        lines.append(f"estimated file {info['estimated_mb']} MB (weights as "
                     f"{info['precision']}); LibreOffice load + recalc about "
                     f"{info['estimated_recalc_s']} s in style {info['style']}")
        lim = info["limits"]
        lines.append(f"limits: {lim['rows']:,} rows x {lim['cols']:,} columns per sheet, "
                     f"{lim['formula_chars']:,} characters per formula (all tensors fit)")
    else:
        lines.append(f"file {info['file_mb']} MB; inputs {', '.join(info['inputs'])}; "
                     f"outputs {', '.join(info['outputs'])}")
    return "\n".join(lines)
