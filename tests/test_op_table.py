"""The README's "Supported PyTorch ops" table is the one scripts/op_table.py derives from
capture/aten.py's TABLE (regenerate: python scripts/op_table.py --write), it lists every ATen op
of TABLE once, and what it says a lowering adds is read correctly off the lowering's code."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from sheetnet.capture.aten import TABLE
from sheetnet.ir import graph as ir
from sheetnet.ops import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("op_table", ROOT / "scripts" / "op_table.py")
op_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(op_table)


def test_the_readme_table_is_the_generated_one():
    readme = (ROOT / "README.md").read_text()
    assert op_table.section(readme) == op_table.table(), \
        "README's op table is stale: python scripts/op_table.py --write"


def test_every_aten_op_of_the_table_has_one_row():
    listed = [a for aten, _ in op_table.rows() for a in aten]
    assert sorted(listed) == sorted(TABLE)


@pytest.mark.parametrize("aten, ops", [
    ("aten.linear", ["Linear"]),                     # ir.Linear(...) in its body
    ("aten.relu", ["Relu"]),                         # the class held in _unary's closure
    ("aten.leaky_relu", ["LeakyRelu"]),              # a lambda in the closure
    ("aten.layer_norm", ["RowMean", "RowVar", "Normalize", "ScaleShift"]),
    ("aten.conv2d", ["Pad2d", "Conv2d"]),            # conv.py's closure over _conv(2)
    ("aten.max_pool2d", ["MaxPool2d"]),              # passed on to a helper (_pool)
    ("aten.view", []),                               # a view: no cells
])
def test_what_a_lowering_adds_is_read_off_its_code(aten, ops):
    assert op_table.ops_of(TABLE[aten], REGISTRY) == ops


def _made(x):
    return ir.Relu(x)


def _tests_only(cls):
    def lower(x):
        if cls is ir.Times or cls in (ir.Over, ir.Add):   # tests of a class add nothing
            return None
        return cls(x) if x else ir.Tanh(x, "a" == x)      # a call whose arguments compare
    return lower


@pytest.mark.parametrize("fn, ops", [
    (_made, ["Relu"]),
    (_tests_only(ir.Sigmoid), ["Tanh", "Sigmoid"]),
    (lambda x: ir.Negate(x), ["Negate"]),
    (ir.Exp, ["Exp"]),
    (int, []),                                        # not an op class
])
def test_the_reader_counts_made_ops_not_tested_ones(fn, ops):
    assert op_table.ops_of(fn, REGISTRY) == ops
