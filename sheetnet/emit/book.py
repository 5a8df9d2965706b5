"""Graph + Plan -> BookSpec: every node's cells (values or formulas), labels and guide.

The manifest is built apart (manifest.build) and given to the book by export."""
from __future__ import annotations

import json
import re

import numpy as np

from ..ir import graph as ir
from ..errors import SheetnetError
from ..layout import MAX_FORMULA_CHARS, Plan, Region
from ..spec import (TEMPLATES, ArraySpec, BookSpec, ChartSpec, Formula, Rule, SheetSpec,
                    TextRun, load_styles)
from .a1 import Refs, absolute, col_letter, defined_name, quote_sheet
from ..ops import ArrayText
from .arrays import position_nodes, row_formulas
from .formulas import cell_formula

GUIDE = "Guide"


def build_book(graph: ir.Graph, plan: Plan, guide: dict | None = None,
               array_ops: dict | None = None) -> BookSpec:
    """Turn a laid-out graph into sheets of cells.

    Args:
        graph: the captured model.
        plan: where each node sits.
        guide: placeholders for the Guide text ({summary}, {book}, {model}, ...).
        array_ops: op type -> fn(op, refs) returning one array formula for the whole node
            (``--style arrays``); ops not in it get one formula per cell.
    Returns:
        the BookSpec the writer writes.
    """
    sheets = {name: SheetSpec(name) for name in graph.sheets}
    for sheet in sheets.values():
        sheet.put(0, 0, sheet.name, "heading")
    names = {n: defined_name(n) for n in graph.nodes}  # views too: a head's slice of c_attn
    styles = load_styles()
    heat = styles.get("heatmaps", {})
    positions = position_nodes(graph) if array_ops else set()  # one array per row: arrays.py
    for node in graph.nodes.values():
        if not isinstance(node.op, ir.View):
            _emit_node(sheets[node.sheet], node, plan.regions, array_ops or {}, names,
                       positions)
            _add_heatmap(sheets[node.sheet], node, plan.regions[node.name], heat,
                         lambda n: graph.nodes[n].shape,
                         graph.meta.get("heat", {}).get(node.name))
            if node.name in graph.meta.get("shade", ()):  # on/off cells: a fill where 1
                _shade(sheets[node.sheet], plan.regions[node.name],
                       node.name in graph.meta.get("narrow", ()))
    for (sheet, r, c), text in plan.titles.items():
        sheets[sheet].put(r, c, text, "title")
    for line in plan.labels:  # a column's label sits right-aligned, over the numbers it names
        sheets[line.sheet].runs.append(TextRun(line.row, line.col,
                                               _label_cells(line.texts, plan.regions, line.sheet),
                                               line.down, "label" if line.down else "column_label"))
    for spec in sheets.values():
        spec.widths[0] = 16
        _fit_column_labels(spec)
        spec.freeze = (1, 1) if graph.sheet_flow.get(spec.name) != "right" else (4, 0)
        keep = graph.meta.get("freeze_columns", {}).get(spec.name)  # a node that stays on screen
        if keep:
            spec.freeze = (spec.freeze[0], plan.regions[keep].col + plan.regions[keep].ncols)
        head = graph.meta.get("print_head", {}).get(spec.name)  # prints down to this node only
        if head:
            spec.print_rows = plan.regions[head].row + plan.regions[head].nrows
    for chart in graph.meta.get("charts", []):
        _add_chart(sheets[chart["sheet"]], chart, plan.regions)
    for choice in graph.meta.get("lists", []):  # {"cell": input node, "source": node of choices}
        _add_list(sheets, choice, plan.regions)
    ordered = [_guide_sheet(graph, guide or {}, styles["legend"])] + [sheets[s] for s in graph.sheets]
    _contents(ordered[0], [s for s in ordered[1:] if s.state == "visible"], plan.titles)
    return BookSpec(ordered, names={names[n]: absolute(plan.regions[n]) for n in names})


def _label_cells(texts, regions: dict[str, Region], here: str):
    # ir.CellLabels: label k is a formula joining its prefix to the node's cell k ("t3 "&E10),
    # so it follows an edit; a joined cell stays text whatever it holds (a token "=1+1")
    if not isinstance(texts, ir.CellLabels):
        return texts
    refs = Refs(regions, here=here)
    return [Formula('"' + prefix.replace('"', '""') + '"&' + refs.cell(texts.node, k, 0))
            for k, prefix in enumerate(texts.prefixes)]


HEATMAP_MAX_CELLS = 250_000  # a colour scale over more cells slows every repaint in LibreOffice


def _add_heatmap(sheet: SheetSpec, node: ir.Node, region: Region, colours: dict,
                 shape, named: str | None = None) -> None:
    # weight matrices, attention probabilities and feature maps get a colour scale: patterns
    # show at a glance; a feature map block stacks channel pictures, each scaled on its own;
    # ``named``: a preset's choice for this node (graph.meta["heat"]: GPT logits, the lens)
    if region.nrows * region.ncols > HEATMAP_MAX_CELLS:
        return
    pictures = 1
    if named:
        scale = colours.get(named)
    elif isinstance(node.op, ir.Param) and min(region.nrows, region.ncols) > 1:
        scale = colours.get("weights")
    elif isinstance(node.op, ir.Softmax) and getattr(node.op, "causal", False):
        scale = colours.get("attention")
    elif hasattr(node.op, "feature_maps") and not region.transposed:
        scale, pictures = colours.get("feature_maps"), node.op.feature_maps(shape)
    else:
        return
    height = region.nrows // max(pictures, 1)
    for k in range(pictures if scale else 0):
        top = region.row + k * height
        first = f"{col_letter(region.col)}{top + 1}"
        last = f"{col_letter(region.col + region.ncols - 1)}{top + height}"
        sheet.scales.append((f"{first}:{last}", *scale))


LABEL_WIDTH_MAX = 40  # a column widens to its label up to this many characters


def _fit_column_labels(sheet: SheetSpec) -> None:
    # each column at least as wide as its column label (seen on the rendered GPT Prompt page:
    # "input id", "its text" and "prompt and continuation so far" ran into one another); a
    # column made narrow on purpose (NARROW on/off digits) keeps its width
    for run in sheet.runs:
        if run.down:
            continue
        for j, text in enumerate(run.texts):
            c = run.col + j
            width = sheet.widths.get(c, sheet.default_width)
            if isinstance(text, str) and len(text) + 1 > width >= sheet.default_width:
                sheet.widths[c] = min(len(text) + 1, LABEL_WIDTH_MAX)


NARROW = 3.6  # width of a shaded on/off column (one digit)


def _shade(sheet: SheetSpec, region: Region, narrow: bool) -> None:
    # a cellIs rule (every engine draws it) over the block; narrow: its columns one digit wide
    first = f"{col_letter(region.col)}{region.row + 1}"
    last = f"{col_letter(region.col + region.ncols - 1)}{region.row + region.nrows}"
    sheet.shades.append(f"{first}:{last}")
    for c in range(region.col, region.col + region.ncols) if narrow else ():
        sheet.widths[c] = NARROW


def _emit_node(sheet: SheetSpec, node: ir.Node, regions: dict[str, Region], array_ops,
               names: dict | None = None, positions: frozenset | set = frozenset()) -> None:
    region, kind = regions[node.name], node.style or ir.node_kind(node)
    if kind == "integer" and isinstance(node.op, ir.Input):
        kind = "input_integer"  # typed whole numbers (top-k, seed, ids) still look like inputs
    if type(node.op) in ir.LEAF_TYPES:
        value = node.op.default if isinstance(node.op, ir.Input) else node.op.value
        if isinstance(node.op, ir.Input) and node.op.bound is not None:
            _add_bound(sheet, region, node.op.bound)
        arr = np.asarray(value)
        if arr.dtype.kind in "fiu":
            # weights stay in their dtype and memory (a float32 view of the model's tensor): the
            # writer formats them row by row; integers become float64 (small: ids, code points)
            arr = arr if arr.dtype.kind == "f" else arr.astype(np.float64)
            sheet.blocks.append((region.row, region.col, arr.T if region.transposed else arr, kind))
        else:  # text leaves (words, prompts) are cells of text; a float or None (blank) stays so
            for (i, j), v in np.ndenumerate(arr):
                sheet.put(*region.at(i, j), v if v is None or isinstance(v, float) else str(v), kind)
        return
    refs = Refs(regions, here=node.sheet, names=names, node=node.name)
    # an op with a row form of its own (ops.CausalMatMul) has it though it has no whole-node array
    row_form = type(node.op) in array_ops or hasattr(node.op, "row_array")
    rows = (row_formulas(node.op, refs, region.shape[0], positions)
            if node.name in positions and array_ops and row_form else None)
    if rows is not None:
        _row_arrays(sheet, node, region, rows, kind)
        return
    if type(node.op) in array_ops and node.name not in positions:
        text = _checked(node, array_ops[type(node.op)](node.op, refs))
        text = transposed(text) if region.transposed else text  # computed as the tensor lies
        sheet.arrays.append(ArraySpec(region.row, region.col, region.nrows, region.ncols, text,
                                      kind))
        return
    for i in range(region.shape[0]):
        for j in range(region.shape[1]):
            text = _checked(node, cell_formula(node.op, refs, i, j))
            if isinstance(text, ArrayText):  # {=...}: see ops.ArrayText
                sheet.arrays.append(ArraySpec(*region.at(i, j), 1, 1, text, kind))
            else:
                sheet.put(*region.at(i, j), Formula(text), kind)


def _row_arrays(sheet: SheetSpec, node: ir.Node, region: Region, rows: list[str], kind) -> None:
    # row i of the tensor as one (1, F) array formula; a transposed region holds it down a column
    width = region.shape[1]
    for i, text in enumerate(rows):
        text = _checked(node, text)
        top, left = region.at(i, 0)
        if region.transposed:
            sheet.arrays.append(ArraySpec(top, left, width, 1, transposed(text), kind))
        else:
            sheet.arrays.append(ArraySpec(top, left, 1, width, text, kind))


def transposed(text: str) -> str:
    """TRANSPOSE(text), or text's own argument when text is one whole TRANSPOSE(...): a Linear's
    position row is computed as a column and turned into a row (ops.Linear.array), so a
    transposed region (the LM head's logits, one column per position) takes the column as it is
    instead of turning 50,257 numbers over twice."""
    head = "TRANSPOSE("
    if text.startswith(head) and text.endswith(")"):
        depth, quoted = 0, False
        for k, ch in enumerate(text[len(head) - 1:], len(head) - 1):
            quoted ^= ch == '"'  # a text literal's parentheses are not the formula's
            depth += 0 if quoted else {"(": 1, ")": -1}.get(ch, 0)
            if depth == 0:  # the parenthesis that closes the head's
                if k == len(text) - 1:
                    return text[len(head):-1]
                break
    return f"TRANSPOSE({text})"


def _checked(node: ir.Node, text: str) -> str:
    if len(text) + 1 > MAX_FORMULA_CHARS:
        raise SheetnetError(f"a formula of {node.name} on sheet {node.sheet!r} is {len(text) + 1:,} "
                            f"characters; spreadsheets take at most {MAX_FORMULA_CHARS:,}")
    return text


def _add_chart(sheet: SheetSpec, chart: dict, regions: dict[str, Region]) -> None:
    """chart: {"title", "x": node of x values or labels, "series": [nodes], "names": [...],
    "kind": "scatter" | "bar", "below": node (anchor under it) | "beside": node (right of it);
    neither: at the top right of the sheet's cells}."""
    x = regions[chart["x"]]
    series = [(name, absolute(regions[s])) for name, s in zip(chart["names"], chart["series"])]
    if "below" in chart:  # under the block it names, at the sheet's left edge
        under = regions[chart["below"]]
        anchor = (under.row + under.nrows + 1, 0)
    elif "beside" in chart:
        by = regions[chart["beside"]]
        anchor = (by.row, by.col + by.ncols + 1)
    else:  # top right of everything on the sheet
        anchor = (2, max(r.col + r.ncols for r in regions.values() if r.sheet == sheet.name) + 1)
    sheet.charts.append(ChartSpec(chart["title"], absolute(x), series, anchor=anchor,
                                  kind=chart.get("kind", "scatter"),
                                  x_title=chart.get("x_title", "x")))


def _add_list(sheets: dict[str, SheetSpec], choice: dict, regions: dict[str, Region]) -> None:
    # a drop-down on every cell of choice["cell"] offering the cells of choice["source"]; absolute,
    # since a list formula's relative references move with the cell they validate
    cell, src = regions[choice["cell"]], regions[choice["source"]]
    source = (f"{quote_sheet(src.sheet)}!${col_letter(src.col)}${src.row + 1}:"
              f"${col_letter(src.col + src.ncols - 1)}${src.row + src.nrows}")
    _add_rules(sheets[cell.sheet], cell, "list", source, "Pick one from the list")


def _add_bound(sheet: SheetSpec, region: Region, bound: ir.Bound) -> None:
    # one end: greaterThan / greaterThanOrEqual / lessThanOrEqual it; both: between (inclusive)
    low, high = bound.ends()
    if low is not None and high is not None:
        operator, formula, formula2 = "between", low, high
    elif low is not None:
        operator, formula, formula2 = ("greaterThanOrEqual" if bound.low_inclusive
                                       else "greaterThan"), low, None
    else:
        operator, formula, formula2 = "lessThanOrEqual", high, None
    _add_rules(sheet, region, "whole" if bound.whole else "decimal", formula,
               f"Type {bound.words()}", operator, formula2)


def _add_rules(sheet: SheetSpec, region: Region, kind: str, formula: str, error: str,
               operator: str | None = None, formula2: str | None = None) -> None:
    for i in range(region.nrows):
        for j in range(region.ncols):
            sheet.rules.append(Rule(region.row + i, region.col + j, kind, formula, error,
                                    operator, formula2))


def _guide_sheet(graph: ir.Graph, values: dict, legend: list) -> SheetSpec:
    texts = json.loads((TEMPLATES / "guide.json").read_text())
    arch = graph.meta.get("guide_text", graph.meta.get("architecture", "mlp"))
    values = {**guide_defaults(graph), **{k: v for k, v in values.items() if v not in ("", None)}}
    spec = SheetSpec(GUIDE)
    spec.put(0, 0, "sheetnet", "heading")
    row = 2
    for line in texts.get(arch, texts["mlp"]):
        spec.put(row, 0, _fill(line, values), "text")
        row += 1
    layers = graph.meta.get("architecture_lines") or []
    if layers:  # what export read from the file (see loaders/describe.py)
        row += 1
        spec.put(row, 0, texts["architecture_heading"], "title")
        for line in layers:
            row += 1
            spec.put(row, 0, "    " + str(line), "text")
        row += 1
    # a module exported from Python has no file for the command line to re-read: verify from Python
    for line in texts["common_tail_in_memory" if values.get("in_memory") else "common_tail"]:
        spec.put(row, 0, _fill(line, values), "text")
        row += 1
    row += 1
    spec.put(row, 0, "Legend", "title")
    for kind, text in legend:
        row += 1
        spec.put(row, 0, "", kind)
        spec.put(row, 1, text, "text")
    spec.widths[0] = 12
    return spec


def _contents(guide: SheetSpec, sheets: list[SheetSpec], titles: dict) -> None:
    # below the legend: each sheet, then each block's title on it, each a link to its cell
    # ($A$1, not A1: LibreOffice reads a link to R3 or C5 as an R1C1 reference and leaves it dead)
    row = max(r for r, _ in guide.cells) + 2
    heading = json.loads((TEMPLATES / "guide.json").read_text())["contents_heading"]
    guide.put(row, 0, heading, "title")
    blocks: dict[str, list] = {}
    for (sheet, r, c), text in sorted(titles.items(), key=lambda t: (t[0][1], t[0][2])):
        blocks.setdefault(sheet, []).append((r, c, text))
    for sheet in sheets:
        row += 1
        guide.put(row, 0, sheet.name, "link")
        guide.links.append((row, 0, f"{quote_sheet(sheet.name)}!$A$1"))
        for r, c, text in blocks.get(sheet.name, []):
            row += 1
            guide.put(row, 1, text, "link")
            guide.links.append((row, 1, f"{quote_sheet(sheet.name)}!${col_letter(c)}${r + 1}"))


def guide_defaults(graph: ir.Graph) -> dict:
    """The Guide's placeholders that the graph itself can fill: a summary of the layers (the
    MLP captures write none) and the sqrt net's training interval."""
    out = {"summary": graph.meta.get("summary") or _widths_summary(graph)}
    x_range = graph.meta.get("x_range")
    if isinstance(x_range, (list, tuple)) and len(x_range) == 2:
        out["x_lo"], out["x_hi"] = (f"{float(v):g}" for v in x_range)
    return out


def _widths_summary(graph: ir.Graph) -> str:
    # "an MLP 1 -> 16 -> 16 -> 1": the widths of the Linear layers, in order
    weights = [graph.nodes[n.op.w].shape for n in graph.of_type(ir.Linear)
               if not n.name.startswith("walk.")]
    if not weights:
        return "as described below"
    widths = [weights[0][1], *(w[0] for w in weights)]
    return f"an MLP {' -> '.join(map(str, widths))} ({len(weights)} Linear layers)"


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _fill(line: str, values: dict) -> str:
    # a placeholder without a value says so rather than showing its {name}
    return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), "(not recorded)")), line)
