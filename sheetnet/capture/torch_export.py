"""The generic front end: an in-memory nn.Module -> torch.export's ATen graph -> sheetnet's IR.

    capture_module(model, example_inputs)
        torch.export.export(model.eval(), example_inputs)   the ATen graph, one node per op call
        walk its nodes through aten.TABLE                   each ATen op -> sheetnet op units
        trace = an fx Interpreter over that same graph      float64, every node's output recorded

Not decomposed to core ATen (run_decompositions): the exported graph keeps linear, layer_norm,
batch_norm, softmax and dropout as one node each, which map one to one onto sheetnet's units (and
onto the module that called them); core ATen would split them into permute + addmm, getitem of
native_layer_norm, clone ... and the table would have to put them back together.

Every tensor is a 2-D block holding its numbers in row-major order: a float tensor (..., F) is
(rows, F), one row per sample or position, so a batch of 1 is squeezed; integer ids are one
column (they feed Lookup).  Reshapes only relabel the block (``Val.shape`` changes, no cells);
an op that needs the last dim as columns gets a Reshape node (cells) only when they differ.
Parameters become Param leaves named by their state-dict key, created where first read.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import torch
import torch.fx
from torch import nn

from ..errors import SheetnetError
from ..ir import graph as ir
from .aten import TABLE, op_name
from .trace import Captured

INPUT_SHEET = "Input"
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)  # never a sheet of their own
_SHEET_BAD = re.compile(r"[\[\]:*?/\\']")  # characters a sheet name may not hold
_ID_VIEWS = {"aten.view", "aten.reshape", "aten._unsafe_view", "aten.flatten", "aten.unsqueeze",
             "aten.squeeze", "aten.clone", "aten.contiguous", "aten.alias", "aten.detach"}


@dataclass(frozen=True)
class Val:
    """A torch value during the walk: the IR node holding its cells (row-major) and its shape.

    A parameter is not placed until an op reads it (``param``: its state-dict key), because the
    op decides its layout; ``transposed``: the weight seen through .t() (read in place by Linear).
    """
    shape: tuple[int, ...]
    node: str | None = None
    param: str | None = None
    transposed: bool = False


def rows_block(shape) -> tuple[int, int]:
    """The 2-D block of a tensor shape with its last dim as columns: (..., F) -> (rows, F)."""
    if len(shape) == 0:
        return (1, 1)
    last = int(shape[-1])
    return (math.prod(int(s) for s in shape) // last if last else 0, last)


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
        program, leaves, example_inputs))


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

    # --- the walk ------------------------------------------------------------------------------
    def run(self, example_inputs: tuple) -> ir.Graph:
        sig = self.program.graph_signature
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
                lines.append(f"{self.path(node) or 'forward'}: {node.name} = {op_name(node)}")
            elif node.op == "output":
                self._outputs(node.args[0])
        self.g.meta["architecture_lines"] = lines
        return self.g

    def _input(self, name: str, example: torch.Tensor) -> None:
        values = example.detach().cpu().double().numpy()
        ids = not example.dtype.is_floating_point   # integer ids: one column, Lookup reads it
        block = (values.size, 1) if ids else rows_block(values.shape)
        rows = self.id_rows.get(name)   # an embedding's ids: whole numbers 0..rows-1 (ir.Bound)
        bound = {"at_least": 0, "at_most": rows - 1, "whole": True} if rows else {}
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
        self._check_static(node, name)
        lower = TABLE.get(name)
        if lower is None:
            raise SheetnetError(f"{name} at {self.where(node)} is not supported; supported: "
                                + ", ".join(sorted(TABLE)))
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
            if isinstance(module, CONTAINERS):
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
        want = rows_block(val.shape)
        if self.g.shape(val.node) == want:
            return val.node
        name = f"{val.node}.rows"
        if name not in self.g.nodes:
            self.g.add(name, ir.Reshape(val.node, want), want, self.sheet, title=f"{arg.name} "
                       f"{tuple(val.shape)}: one row per {want[1]} values")
        return name

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
        self.env[self.node.name] = Val(shape, val.node, val.param, changes.get(
            "transposed", val.transposed))

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


def _arg_text(arg, env) -> str:
    if isinstance(arg, torch.fx.Node):
        val = env.get(arg.name)
        return val.param if val is not None and val.param else arg.name
    if isinstance(arg, (list, tuple)):
        return "[" + ", ".join(_arg_text(a, env) for a in arg) + "]"
    return repr(arg)


def _sheet_name(path: str) -> str:
    return _SHEET_BAD.sub("_", path)[:31]


def trace_program(program, leaves: dict, example_inputs: tuple) -> dict[str, np.ndarray]:
    """Run the exported graph in float64 on the workbook's inputs; every node's output.

    Args:
        program: the ExportedProgram.
        leaves: the input cells by node name (the user inputs' names), as 2-D blocks.
        example_inputs: the tensors it was exported with (their shapes and dtypes).
    Returns:
        {fx node name: its float64 output, 2-D with the last dim as columns}.
    """
    user = iter(example_inputs)
    args = []
    for spec in program.graph_signature.input_specs:
        if spec.kind.name == "USER_INPUT":
            example = next(user)
            cells = np.asarray(leaves.get(spec.arg.name, example.detach().double().numpy()),
                               dtype=np.float64).reshape(tuple(example.shape))
            tensor = torch.as_tensor(cells)
            args.append(tensor if example.dtype.is_floating_point else tensor.round().long())
        else:
            state = program.state_dict.get(spec.target)
            state = program.constants[spec.target] if state is None else state
            args.append(state.detach().double() if state.dtype.is_floating_point else state)
    recorder = _Recorder(program.graph_module)
    with torch.no_grad():
        recorder.run(*args)
    return recorder.seen


class _Recorder(torch.fx.Interpreter):
    """An fx Interpreter that keeps every tensor a node computes, and the inputs themselves (a
    forward may return its input: the output cells then copy it)."""

    def __init__(self, module):
        super().__init__(module)
        self.seen: dict[str, np.ndarray] = {}

    def run_node(self, n):
        out = super().run_node(n)
        if isinstance(out, torch.Tensor) and n.op in ("call_function", "placeholder"):
            self.seen[n.name] = out.detach().double().numpy().reshape(rows_block(out.shape))
        return out
