"""Conformance of every op in the registry (sheetnet/ops): a whole unit, inputs declared exactly,
its reference equal to torch in float64, and its formulas recalculated by LibreOffice equal to
its reference, in both styles.  Generated from the registry: registering an op tests it."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from sheetnet import layout
from sheetnet.emit.a1 import Refs
from sheetnet.emit.arrays import ARRAY_FORMULAS
from sheetnet.emit.book import build_book
from sheetnet.engines.base import Block
from sheetnet.ir import graph as ir
from sheetnet.ir.reference import evaluate
from sheetnet.ops import ELEMENTWISE, REGISTRY, Example, PerCellOnly, inputs
from sheetnet.writer import write_book

OPS = list(REGISTRY.values())
TOL = 1e-9  # workbook vs reference (the sheet's EXP, ERF, ... may differ in the last bits)


def _by_name(ids):
    return [cls.__name__ for cls in ids]


@pytest.mark.parametrize("cls", OPS, ids=_by_name(OPS))
def test_every_op_is_a_whole_unit(cls):
    assert callable(cls.reference) and callable(cls.formula)
    form = cls.array
    reason = isinstance(form, PerCellOnly) and len(form) > 10
    assert form is ELEMENTWISE or callable(form) or reason
    assert cls.derivative is None or callable(cls.derivative)  # the training issue's slot
    assert {f.name for f in dataclasses.fields(cls)} >= set(cls.INPUTS)
    example = cls.example()
    assert isinstance(example, Example) and type(example.op) is cls
    assert set(inputs(example.op)) == set(example.inputs), "the example feeds every input, no more"


class _Reads(dict):
    """Node values that remember which names were read."""

    def __init__(self, values):
        super().__init__(values)
        self.read = set()

    def __getitem__(self, name):
        self.read.add(name)
        return super().__getitem__(name)


def _regions(values: dict) -> dict:
    # each tensor on sheet S below the one before it, one blank row between
    regions, row = {}, 0
    for name, value in values.items():
        regions[name] = layout.Region("S", row, 1, *np.shape(value))
        row += np.shape(value)[0] + 1
    return regions


@pytest.mark.parametrize("cls", OPS, ids=_by_name(OPS))
def test_declared_inputs_are_exactly_the_nodes_it_reads(cls):
    # the reference and every formula read exactly the declared inputs: no edge dropped
    example = cls.example()
    op, declared = example.op, set(inputs(example.op))
    values = _Reads({k: np.asarray(v) for k, v in example.inputs.items()})
    out = op.reference(values)
    assert values.read == declared
    # Refs find every node's cells through it; "out", the op's own cells (a running sum reads
    # the cell before it), is not an input
    regions = _Reads({**_regions(example.inputs), "out": layout.Region("S", 999, 1, *out.shape)})
    for i, j in np.ndindex(out.shape):
        op.formula(Refs(regions, here="S", node="out"), i, j)
    assert regions.read - {"out"} == declared
    if type(op) in ARRAY_FORMULAS:
        regions.read.clear()
        ARRAY_FORMULAS[type(op)](op, Refs(regions, here="S"))
        assert regions.read == declared


WITH_TORCH = [cls for cls in OPS if cls.example().torch is not None]


@pytest.mark.parametrize("cls", WITH_TORCH, ids=_by_name(WITH_TORCH))
def test_reference_matches_torch_float64(cls):
    example = cls.example()
    values = {k: np.asarray(v, dtype=np.float64) for k, v in example.inputs.items()}
    expected = example.torch(torch, *(torch.tensor(v) for v in values.values())).numpy()
    got = example.op.reference(values)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-14)  # -inf equals -inf


def test_ops_without_torch_are_text_ops():
    # an op PyTorch has must be compared with it; only text and typed-id ops may go without
    assert {cls.__name__ for cls in OPS} - set(_by_name(WITH_TORCH)) == {
        "PromptLength", "Chars", "TokenId", "PromptNote", "WordId", "FilledCount", "CheckedIds",
        "TokenText", "IdsNote",
        # a number or "-" (a table's spare row): its number is Where's, compared with torch there
        "ShownIf",
        # generation's: which positions are typed (blank cells) decides them; the loop itself is
        # compared with PyTorch's by verify and tests/test_generate.py
        "NextInput", "DrawIndex", "TableAt",
        # the Tokenizer sheet's (ops/bpe.py): text and integer steps, checked against tokenizers
        "CodePoints", "CharClasses", "Pretokenize", "Utf8Length", "ByteKeys", "Utf8Bytes",
        "FirstSymbols", "MergeSteps", "StepTokens", "TokenCount", "BpeNote", "BpeIds", "JoinText"}


def _all_examples() -> ir.Graph:
    # one sheet per op: its example's inputs as Input cells, then the op reading them
    g = ir.Graph(meta={"architecture": "ops"})
    for cls in OPS:
        example, sheet = cls.example(), cls.__name__
        for name, value in example.inputs.items():
            g.add(f"{sheet}.{name}", ir.Input(np.asarray(value)), np.shape(value), sheet)
        renamed = {f: _renamed(sheet, getattr(example.op, f)) for f in cls.INPUTS}
        op = dataclasses.replace(example.op, **renamed)
        out = op.reference({f"{sheet}.{k}": np.asarray(v) for k, v in example.inputs.items()})
        g.add(f"{sheet}.out", op, out.shape, sheet)
    return g


def _renamed(sheet: str, value):
    if isinstance(value, tuple):
        return tuple(f"{sheet}.{v}" for v in value)
    return None if value is None else f"{sheet}.{value}"


def _same(got, want) -> bool:
    if isinstance(want, str) or want is None:
        return (got or "") == (want or "")
    if np.isneginf(want):   # a masked attention score: a blank cell in the sheet
        return got in ("", None)
    return isinstance(got, float) and abs(got - want) <= TOL * max(1.0, abs(want))


@pytest.mark.parametrize("style", ["cells", "arrays"])
def test_workbook_recalculated_in_libreoffice_matches_reference(engine, tmp_path, style):
    g = _all_examples()
    plan = layout.plan(g)
    book = tmp_path / f"ops-{style}.xlsx"
    write_book(build_book(g, plan, array_ops=ARRAY_FORMULAS if style == "arrays" else None), book)
    outs = [f"{cls.__name__}.out" for cls in OPS]
    regions = [plan.regions[n] for n in outs]
    assert not any(r.transposed for r in regions)
    blocks = [Block(r.sheet, r.row, r.col, r.nrows, r.ncols) for r in regions]
    got = engine.recalculate(book, blocks)
    want = evaluate(g)
    wrong = [(name, i, j, cells[i, j], want[name][i, j])
             for name, cells in zip(outs, got) for i, j in np.ndindex(cells.shape)
             if not _same(cells[i, j], want[name][i, j])]
    assert not wrong, wrong[:10]


@pytest.mark.parametrize("op, reads", [
    (ir.Linear("x", "w", "b"), ["x", "w", "b"]), (ir.Linear("x", "w"), ["x", "w"]),
    (ir.ScaleShift("x", "g", "b"), ["x", "g", "b"]), (ir.Concat(("x", "w")), ["x", "w"]),
    (ir.View("x", (0, 1), (0, 1)), ["x"]), (ir.Param(np.zeros((1, 1))), []),
])
def test_an_optional_input_is_an_edge(op, reads):
    # ``Ref | None`` once hid the bias from the graph: a bias that is not there is refused now
    assert ir.op_inputs(op) == reads
    g = ir.Graph()
    with pytest.raises(ValueError, match="reads unknown node") if reads else _nothing():
        g.add("y", op, (1, 1), "S")


def _nothing():
    import contextlib
    return contextlib.nullcontext()
