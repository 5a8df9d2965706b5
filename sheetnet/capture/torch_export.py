"""The generic front end: an in-memory nn.Module -> torch.export's ATen graph -> sheetnet's IR.

    capture_module(model, example_inputs)
        torch.export.export(model.eval(), example_inputs)   the ATen graph, one node per op call
        walk its nodes through aten.TABLE                   each ATen op -> sheetnet op units
        trace = an fx Interpreter over that graph (program_run.py)   float64, every node's output

Not decomposed to core ATen (run_decompositions): the exported graph keeps linear, layer_norm,
batch_norm, softmax and dropout as one node each, which map one to one onto sheetnet's units (and
onto the module that called them); core ATen would split them into permute + addmm, getitem of
native_layer_norm, clone ... and the table would have to put them back together.

Every tensor is a 2-D block holding its numbers in row-major order: a float tensor (..., F) is
(rows, F), one row per sample or position, so a batch of 1 is squeezed; integer ids are one
column (they feed Lookup).  Reshapes only relabel the block (``Val.shape`` changes, no cells);
an op that needs the last dim as columns gets a Reshape node (cells) only when they differ.
Parameters become Param leaves named by their state-dict key, created where first read.

Views own no cells: a view's ``Val.cells`` maps each element to its cell in the block holding it,
so view/transpose/split/select/slice/expand only move that map (views.py); an op reading the
view gets the block itself, an ir.View rectangle of it, or (no rectangle) a Gather of its cells.
Attention heads (1, H, T, D) thus stay column rectangles of their (T, H*D) projection (heads.py).
A node computed from buffers and literals only (rotary tables, causal masks) is folded: torch
computes it once and an op that reads it gets Const cells.
"""
from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Callable

import numpy as np
import torch
import torch.fx
from torch import nn

from ..errors import SheetnetError
from ..ir import graph as ir
from .aten import TABLE, UNLISTED, op_name
from .program_run import foldable, origin, run_program, trace_program
from .val import NOTHING, Val, row_major, rows_block  # noqa: F401 (rows_block: the walk's)
from .trace import Captured

INPUT_SHEET = "Input"
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)  # never a sheet of their own
_SHEET_BAD = re.compile(r"[\[\]:*?/\\']")  # characters a sheet name may not hold
_ID_VIEWS = {"aten.view", "aten.reshape", "aten._unsafe_view", "aten.flatten", "aten.unsqueeze",
             "aten.squeeze", "aten.clone", "aten.contiguous", "aten.alias", "aten.detach"}


def capture_module(model: nn.Module, example_inputs: tuple, options=None) -> Captured:
    """Capture an in-memory module through torch.export.

    Args:
        model: the module (exported in eval mode; not modified otherwise).
        example_inputs: a tuple of example tensors, as torch.export.export takes them; their
            values become the workbook's input cells.
        options: ExportOptions or None (unused so far: the front end has no choices yet).
    Returns:
        the Captured model: its graph, and a trace that runs the exported graph in float64.
    Raises:
        SheetnetError: an unsupported op, a data-dependent shape or an input that is not a
            tensor, named with its module path.
    """
    if not isinstance(example_inputs, tuple) or not all(
            isinstance(t, torch.Tensor) for t in example_inputs):
        raise SheetnetError("example_inputs must be a tuple of tensors")
    program = _export(model, example_inputs)
    lowering = _Lowering(model, program)
    lowering.id_rows = lowering.check_ids(example_inputs)   # before any run of the graph
    graph = lowering.run(example_inputs)
    return Captured(model, graph, lambda _model, _graph, leaves: trace_program(
        program, leaves, example_inputs, lowering.derived))


def _export(model: nn.Module, example_inputs: tuple):
    # torch.export.export only: never torch.export.load (unpickling) here.  Exported in eval
    # mode; each submodule gets its own mode back (a notebook may go on training the model)
    modes = [(module, module.training) for module in model.modules()]
    try:
        return torch.export.export(model.eval(), example_inputs, strict=False)
    except Exception as exc:  # torch's own errors: data-dependent control flow, graph breaks
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SheetnetError(f"torch.export could not capture {type(model).__name__}: "
                            f"{first}") from exc
    finally:
        for module, training in modes:
            module.training = training


class _Lowering:
    """One walk over the exported graph, building the IR; aten.TABLE's lowerings call back."""

    def __init__(self, model: nn.Module, program):
        self.model, self.program = model, program
        self.g = ir.Graph(meta={"architecture": "torch.export",
                                "summary": f"{type(model).__name__}, captured by torch.export"})
        self.env: dict[str, Val] = {}
        self.params: dict[tuple[str, str], str] = {}   # (state-dict key, layout) -> node
        self.sheet = INPUT_SHEET
        self.node = None                               # the fx node being lowered
        self.consts = 0
        self.id_rows: dict[str, int] = {}              # ids input -> its embedding's rows
        self.views: dict[tuple, str] = {}              # (node, rows, cols) -> its ir.View
        # refs computed from the float64 run rather than read off one node (a head's scores,
        # a (1, H, T, D) tensor laid out as (T, H*D)): ref -> fn(every node's tensor) -> array
        self.derived: dict[str, Callable[[dict], Any]] = {}
        self.values: dict[str, Any] = {}               # every node's tensor, float64, at capture
        self.folded: set[str] = set()                  # nodes computed from constants only
        self.buffers: set[str] = set()                 # buffer and lifted-constant inputs

    # --- the walk ------------------------------------------------------------------------------
    def run(self, example_inputs: tuple) -> ir.Graph:
        sig = self.program.graph_signature
        self.values = run_program(self.program, example_inputs)
        self.folded = foldable(self.program)
        self.buffers = {spec.arg.name for spec in sig.input_specs
                        if spec.kind.name in ("BUFFER", "CONSTANT_TENSOR")}
        user = iter(example_inputs)
        for spec in sig.input_specs:
            if spec.kind.name == "USER_INPUT":
                self._input(spec.arg.name, next(user))
            else:  # parameters, buffers, lifted constants: placed when an op reads them
                shape = tuple(self._state(spec.target).shape)
                self.env[spec.arg.name] = Val(shape, param=spec.target)
        lines = []
        for node in self.program.graph.nodes:
            if node.op == "call_function":
                self._lower(node)
                made = self.env.get(node.name)
                if made is not NOTHING and not (isinstance(made, Val) and made.const is not None):
                    lines.append(f"{self.path(node) or 'forward'}: {node.name} = {op_name(node)}")
            elif node.op == "output":
                self._outputs(node.args[0])
        self.g.meta["architecture_lines"] = lines
        self.values = {}   # the capture-time run: verify runs the graph again on the book's ids
        return self.g

    def _input(self, name: str, example: torch.Tensor) -> None:
        values = example.detach().cpu().double().numpy()
        ids = not example.dtype.is_floating_point   # integer ids: one column, Lookup reads it
        block = (values.size, 1) if ids else rows_block(values.shape)
        rows = self.id_rows.get(name)   # an embedding's ids: whole numbers 0..rows-1 (ir.Bound)
        bound = {"at_least": 0, "at_most": rows - 1, "whole": True} if rows else {}
        if not ids and example.dim() == 4 and example.shape[0] == 1:  # an image (1, C, H, W):
            bound["pictures"] = int(example.shape[1])   # C pictures, each its own colour scale
        self.g.add(name, ir.Input(values.reshape(block), **bound), block, INPUT_SHEET,
                   title=f"{name}: type {'ids' if ids else 'values'} here "
                         f"(shape {tuple(example.shape)})", style="integer" if ids else "")
        self.env[name] = Val(tuple(example.shape), node=name)

    def check_ids(self, example_inputs: tuple) -> dict[str, int]:
        """{user input: the rows of the embedding table its ids index} (the least, if several).

        Raises:
            SheetnetError: an example id outside 0..rows-1 (torch would raise IndexError).
        """
        names = [spec.arg.name for spec in self.program.graph_signature.input_specs
                 if spec.kind.name == "USER_INPUT"]
        examples = dict(zip(names, example_inputs))
        found: dict[str, int] = {}
        for node in self.program.graph.nodes:
            if node.op != "call_function" or op_name(node) != "aten.embedding":
                continue
            ids = node.args[1]
            while ids.op == "call_function" and op_name(ids) in _ID_VIEWS:
                ids = ids.args[0]
            if ids.op != "placeholder" or ids.name not in examples:
                continue
            rows = int(node.args[0].meta["val"].shape[0])
            found[ids.name] = min(rows, found.get(ids.name, rows))
            values = examples[ids.name]
            bad = ((values < 0) | (values >= rows)).nonzero()
            if len(bad):
                at = [int(i) for i in bad[0]]
                raise SheetnetError(f"example input {ids.name} holds id {int(values[tuple(at)])} "
                                    f"at {at}: the embedding at {self.where(node)} has {rows} "
                                    f"rows, ids 0 to {rows - 1}")
        return found

    def _lower(self, node: torch.fx.Node) -> None:
        self.node = node
        name = op_name(node)
        if node.name in self.env:   # made (or made unneeded) by a pattern lowered before it
            return
        if node.name in self.folded:
            value = self.values.get(node.name)
            self.env[node.name] = NOTHING if not isinstance(value, torch.Tensor) else Val(
                tuple(value.shape), const=value.numpy())
            return
        self._check_static(node, name)
        lower = TABLE.get(name)
        if lower is None:
            raise SheetnetError(f"{name} at {self.where(node)} is not supported; supported: "
                                + ", ".join(sorted(set(TABLE) - set(UNLISTED))))
        self.sheet = self._sheet_of(node)
        lower(self, *node.args, **node.kwargs)
        if node.name not in self.env:
            raise SheetnetError(f"{name} at {self.where(node)} made no value")  # a table bug

    def _check_static(self, node, name: str) -> None:
        val = node.meta.get("val")
        shapes = [v.shape for v in (val if isinstance(val, (tuple, list)) else [val])
                  if isinstance(v, torch.Tensor)]
        if any(not isinstance(d, int) for s in shapes for d in s):
            raise SheetnetError(f"{name} at {self.where(node)} has a data-dependent shape "
                                f"{tuple(shapes[0])}; a sheet needs fixed shapes")

    def _outputs(self, results) -> None:
        results = results if isinstance(results, (tuple, list)) else (results,)
        for k, arg in enumerate(results):
            name = "output" if len(results) == 1 else f"output{k + 1}"
            src = self.rows(arg)
            self.g.add(name, ir.Copy(src), self.g.shape(src), INPUT_SHEET, role="output",
                       title=f"{name}: the model's result", ref=arg.name)

    # --- where a node goes and what it is called -----------------------------------------------
    def path(self, node) -> str:
        """The module path that made ``node`` ("encoder.0.fc"), "" for the top-level forward."""
        stack = node.meta.get("nn_module_stack") or {}
        paths = [p for p, _ in stack.values() if p]
        return paths[-1] if paths else ""

    def where(self, node) -> str:
        return self.path(node) or f"{type(self.model).__name__}.forward"

    def _sheet_of(self, node) -> str:
        # the outermost module that is not a container and owns weights; ops of weightless
        # modules (activations, dropout) and of forward itself stay on the sheet before them
        stack = node.meta.get("nn_module_stack") or {}
        for path, _ in stack.values():
            if not path:
                continue
            try:
                module = self.model.get_submodule(path)
            except AttributeError:
                return _sheet_name(path)
            if isinstance(module, CONTAINERS) or _holds_blocks(module):
                continue
            owns = any(True for _ in module.parameters()) or any(True for _ in module.buffers())
            return _sheet_name(path) if owns else self.sheet
        return self.sheet

    def _base(self) -> str:
        path = self.path(self.node)
        return f"{path}.{self.node.name}" if path else self.node.name

    # --- what the table's lowerings call --------------------------------------------------------
    def value(self, arg) -> Val:
        """The Val of an fx node argument."""
        if not isinstance(arg, torch.fx.Node):
            self.refuse(f"takes {arg!r} where a tensor was expected")
        return self.env[arg.name]

    def rows(self, arg) -> str:
        """The node holding ``arg`` with its last dim as columns (a Reshape only if needed)."""
        val = self.value(arg)
        if val.param is not None:
            if len(val.shape) > 2 or val.transposed:
                self.refuse(f"reads {val.param} {val.shape} as a plain tensor")
            return self.param(arg, "matrix" if len(val.shape) == 2 else "row")
        if val.const is not None:
            return self.constant(arg)
        want = rows_block(val.shape)
        if val.parts is not None:   # per-head blocks stacked in (head, row) order
            return self.g.add(f"{arg.name}.rows", ir.StackRows(val.parts), want, self.sheet,
                              ref=arg.name, title=f"{arg.name} {tuple(val.shape)}: the heads "
                              "stacked")
        if val.cells is not None:
            return self.block(val.node, val.cells.reshape(*want, 2), arg.name)
        if self.g.shape(val.node) == want:
            return val.node
        name = f"{val.node}.rows"
        if name not in self.g.nodes:
            self.g.add(name, ir.Reshape(val.node, want), want, self.sheet, title=f"{arg.name} "
                       f"{tuple(val.shape)}: one row per {want[1]} values")
        return name

    def block(self, node: str, cells, ref: str | None = None, title: str = "") -> str:
        """The (R, C) tensor whose element (i, j) sits at ``cells[i, j]`` of node's block: the
        node itself, an ir.View rectangle of it (no cells), or else a Gather (a copy)."""
        cells = np.asarray(cells)
        rows, cols = cells.shape[:2]
        r0, c0 = (int(v) for v in cells[0, 0]) if cells.size else (0, 0)
        want = np.stack(np.meshgrid(r0 + np.arange(rows), c0 + np.arange(cols), indexing="ij"),
                        axis=-1)
        if not np.array_equal(cells, want):   # the same cells gathered once, whoever reads them
            op = ir.Gather(node, (rows, cols), tuple(int(r) for r in cells[..., 0].ravel()),
                           tuple(int(c) for c in cells[..., 1].ravel()))
            key = ("gather", node, op.shape, op.rows, op.cols)
            if key not in self.views:
                self.views[key] = self.g.add(
                    f"{self._base()}.{ref or node}.gather{len(self.views)}", op, (rows, cols),
                    self.sheet, ref=ref, title=title or f"{ref or node}: its cells gathered "
                    f"from {node}")
            return self.views[key]
        if (r0, c0, rows, cols) == (0, 0, *self.g.shape(node)):
            return node
        key = (node, (r0, r0 + rows), (c0, c0 + cols))
        if key not in self.views:
            self.views[key] = self.g.add(f"{node}[{r0}:{r0 + rows},{c0}:{c0 + cols}]",
                                         ir.View(node, key[1], key[2]), (rows, cols), self.sheet)
        return self.views[key]

    def cells(self, arg) -> tuple[str, np.ndarray]:
        """(node, where each element of ``arg`` sits in its block: (*shape, 2) ints); a weight
        is placed as its row-major block first."""
        val = self.value(arg)
        if val.parts is not None or val.const is not None or val.transposed:
            node = self.rows(arg) if not val.transposed else self.refuse(
                f"views {val.param} transposed: only a matrix product after .t() can")
            return node, row_major(val.shape, self.g.shape(node))
        if val.param is not None:
            node = self.param(arg, "blocks")
            return node, row_major(val.shape, self.g.shape(node))
        if val.cells is not None:
            return val.node, val.cells
        return val.node, row_major(val.shape, self.g.shape(val.node))

    def const_of(self, arg):
        """The value (numpy) of a folded constant, lowered yet or not, or of a buffer or lifted
        constant read as it is (a mask); None for anything else."""
        if not isinstance(arg, torch.fx.Node) or arg.name not in self.folded | self.buffers:
            return None
        value = self.values.get(arg.name)
        return value.numpy() if isinstance(value, torch.Tensor) else None

    def constant(self, arg) -> str:
        """Const cells of a folded constant (computed once with torch from buffers and
        literals), as its row-major block; placed where first read."""
        val = self.value(arg)
        key = (f"const:{arg.name}", "rows")
        if key not in self.params:
            value = np.asarray(val.const, dtype=np.float64)
            block = rows_block(value.shape)
            self.params[key] = self.g.add(
                f"{self.path(arg)}.{arg.name}".lstrip("."), ir.Const(value.reshape(block)),
                block, self.sheet, title=f"{arg.name} {tuple(value.shape)}: constant, computed "
                f"once with torch from buffers and literals ({origin(arg)})")
        return self.params[key]

    def derive(self, ref: str, fn: Callable[[dict], Any]) -> str:
        """A ref whose float64 value ``fn`` computes from every node's tensor in the run."""
        self.derived[ref] = fn
        return ref

    def param(self, arg, layout: str, beside: bool = False) -> str:
        """The Param node of a weight argument: "matrix" (as stored, (out, in)), "row" (1, F)
        or "col" (F, 1) for a vector, "blocks" (any rank, as its (rows, last dim) block: conv
        kernels); a computed tensor is accepted for "row" and "matrix".
        ``beside``: placed right of the node before it (a bias beside its weight rows)."""
        val = self.value(arg)
        if val.param is None:
            if layout == "col":
                self.refuse(f"needs {arg.name} to be a weight")
            return self.rows(arg)
        if val.transposed:
            self.refuse(f"reads {val.param} transposed: only a matrix product after .t() can")
        key = (val.param, layout)
        if key not in self.params:
            value = self._state(val.param).detach().cpu().double().numpy()
            value = value.reshape(1, -1) if layout == "row" and value.ndim < 2 else value
            value = value.reshape(-1, 1) if layout == "col" else value
            value = value.reshape(rows_block(value.shape)) if layout == "blocks" else value
            if value.ndim != 2:
                self.refuse(f"reads {val.param} of shape {value.shape}")
            name = val.param if not any(k[0] == val.param for k in self.params) \
                else f"{val.param}.{layout}"
            self.params[key] = self.g.add(name, ir.Param(value, source=val.param), value.shape,
                                          self.sheet, beside=beside,
                                          title="" if beside else f"{val.param} "
                                          f"{tuple(val.shape)}", col_labels=[
                                              val.param.rsplit(".", 1)[-1]] if beside else None)
        return self.params[key]

    def const(self, number: float) -> str:
        """A (1, 1) Const cell holding a number the code wrote (x * 2: the 2)."""
        self.consts += 1
        return self.g.add(f"{self._base()}.c{self.consts}", ir.Const(np.array([[float(number)]])),
                          (1, 1), self.sheet, title=f"{self.node.name}: constant")

    def emit(self, op, block=None, suffix: str | None = None, label: str = "", **kw) -> str:
        """Add an IR node for the fx node being lowered.

        Args:
            op: the op unit.
            block: its 2-D shape; default: the output's shape with the last dim as columns.
            suffix: a helper node ("<name>.<suffix>", beside the one before, not compared with
                torch but with the IR reference); None: the node's own result (``ref`` = its fx
                name, so verify compares it with the float64 run).
            label: a helper column's heading (default: its suffix).
            kw: Node fields (a helper's ``beside=False`` and ``title``, ``row_labels``).
        """
        shape = tuple(self.node.meta["val"].shape)
        block = block or rows_block(shape)
        if suffix is not None:
            kw = {"title": "", "beside": True, **kw}
            return self.g.add(f"{self._base()}.{suffix}", op, block, self.sheet,
                              col_labels=[label or suffix] if block[1] == 1 else None, **kw)
        name = self.g.add(self._base(), op, block, self.sheet, ref=self.node.name,
                          title=self._title(), **kw)
        self.env[self.node.name] = Val(shape, node=name)
        return name

    def alias(self, arg, **changes) -> None:
        """The fx node is ``arg`` relabelled (a view): same cells, the node's own shape."""
        val = self.value(arg)
        shape = tuple(self.node.meta["val"].shape)
        transposed = changes.get("transposed", val.transposed)
        if shape == tuple(val.shape):   # dropout, clone, a cast: everything else kept
            self.env[self.node.name] = replace(val, transposed=transposed)
        elif val.cells is None and val.parts is None and val.const is None:
            self.env[self.node.name] = Val(shape, val.node, val.param, transposed)
        else:
            self.refuse(f"relabels {tuple(val.shape)} as {shape} in place of a view")

    def refuse(self, why: str):
        """Raise the one-line error for the node being lowered."""
        raise SheetnetError(f"{op_name(self.node)} at {self.where(self.node)} {why}")

    def _title(self) -> str:
        args = ", ".join(_arg_text(a, self.env) for a in self.node.args)
        path = self.path(self.node)
        return f"{path + ': ' if path else ''}{self.node.name} = {op_name(self.node)}({args})"

    def _state(self, key: str) -> torch.Tensor:
        program = self.program
        return program.state_dict[key] if key in program.state_dict else program.constants[key]


def _holds_blocks(module: nn.Module) -> bool:
    # a model body holding a list of blocks with weights (LlamaModel.layers): each block gets
    # its own sheet rather than the whole body one
    return any(isinstance(child, CONTAINERS) and any(True for _ in child.parameters())
               for child in module.children())


def _arg_text(arg, env) -> str:
    if isinstance(arg, torch.fx.Node):
        val = env.get(arg.name)
        return val.param if val is not None and val.param else arg.name
    if isinstance(arg, (list, tuple)):
        return "[" + ", ".join(_arg_text(a, env) for a in arg) + "]"
    return repr(arg)


def _sheet_name(path: str) -> str:
    return _SHEET_BAD.sub("_", path)[:31]
