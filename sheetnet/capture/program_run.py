"""The exported program run in PyTorch float64, and which of its nodes fold to constants.

    trace_program   every node's output on the workbook's inputs (verify's trace), as 2-D blocks
    run_program     every node's value on the export's own examples (the lowering reads shapes,
                    folded constants and the example ids from it)
    foldable        the nodes computed from buffers and literals only (rotary tables, masks)

The run is float64 throughout: a float32 cast inside the graph (HF's RMSNorm and rotary upcast for
half precision) would be a downcast here, so every floating dtype an op is given becomes float64.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.fx

from .val import rows_block


def origin(node) -> str:
    # the buffers a folded constant was computed from, or "literals"
    seen, todo, found = set(), [node], []
    while todo:
        n = todo.pop()
        if n.name in seen:
            continue
        seen.add(n.name)
        if n.op == "placeholder":
            found.append(n.name)
        todo.extend(n.all_input_nodes)
    return ", ".join(sorted(found)) or "literals"


def foldable(program) -> set[str]:
    # nodes whose inputs are only buffers, lifted constants and literals: no parameter, no
    # user input (a parameter stays a weight cell a user may edit)
    kinds = {spec.arg.name: spec.kind.name for spec in program.graph_signature.input_specs}
    folded: set[str] = {n for n, k in kinds.items() if k in ("BUFFER", "CONSTANT_TENSOR")}
    for node in program.graph.nodes:
        if node.op == "call_function" and all(a.name in folded for a in node.all_input_nodes):
            folded.add(node.name)
    return folded - set(kinds)


def trace_program(program, leaves: dict, example_inputs: tuple,
                  derived: dict | None = None) -> dict[str, np.ndarray]:
    """Run the exported graph in float64 on the workbook's inputs; every node's output.

    Args:
        program: the ExportedProgram.
        leaves: the input cells by node name (the user inputs' names), as 2-D blocks.
        example_inputs: the tensors it was exported with (their shapes and dtypes).
        derived: refs computed from the run's tensors (_Lowering.derive).
    Returns:
        {fx node name (or derived ref): its float64 output, 2-D with the last dim as columns}.
    """
    recorder = _run(program, example_inputs, leaves)
    seen = recorder.seen
    for ref, fn in (derived or {}).items():
        with torch.no_grad():
            value = np.asarray(fn(recorder.raw), dtype=np.float64)
        seen[ref] = value.reshape(rows_block(value.shape))
    return seen


def run_program(program, example_inputs: tuple) -> dict[str, Any]:
    """Every node's value (float64 tensors) in a run of the exported graph on its examples."""
    return _run(program, example_inputs, {}).raw


def _run(program, example_inputs: tuple, leaves: dict) -> "_Recorder":
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
    return recorder


class _Recorder(torch.fx.Interpreter):
    """An fx Interpreter that keeps every tensor a node computes, and the inputs themselves (a
    forward may return its input: the output cells then copy it)."""

    def __init__(self, module):
        super().__init__(module)
        self.seen: dict[str, np.ndarray] = {}
        self.raw: dict[str, Any] = {}   # every node's value as computed (tensors, lists)

    def call_function(self, target, args, kwargs):
        # a float64 run: casts to float32 (HF's RMSNorm and rotary upcast for half precision)
        # would be downcasts here, so every floating dtype an op is given becomes float64
        if target is torch.ops.aten._assert_tensor_metadata.default:
            return None
        return super().call_function(target, _float64(args), _float64(kwargs))

    def run_node(self, n):
        out = super().run_node(n)
        self.raw[n.name] = out
        if isinstance(out, torch.Tensor) and n.op in ("call_function", "placeholder"):
            self.seen[n.name] = out.detach().double().numpy().reshape(rows_block(out.shape))
        return out


def _float64(value):
    # floating dtypes in an op's arguments -> float64 (lists, tuples and dicts walked)
    if isinstance(value, torch.dtype):
        return torch.float64 if value.is_floating_point else value
    if isinstance(value, (list, tuple)):
        return type(value)(_float64(v) for v in value)
    if isinstance(value, dict):
        return {k: _float64(v) for k, v in value.items()}
    return value
