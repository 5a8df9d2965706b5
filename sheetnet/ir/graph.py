"""The IR: a model as an ordered list of named 2-D tensors, each computed by one small op.

Every tensor is 2-D, (rows, cols), because that is what a sheet holds: activations are
(N, features) with one row per sample or position, weights keep PyTorch's (out, in) layout with
one row per neuron, and biases are (out, 1) columns that sit beside their weight rows.

A node is a tensor plus the op that computes it, where it lives (sheet) and how a reader should
see it (title, row and column labels).  The leaves (cells a user may edit) and View live here;
every op is one unit in ``sheetnet/ops`` (its node, reference, formulas and example), re-exported
here so ``ir.Relu`` names it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# the ops (Relu, Linear, ...) live in sheetnet/ops, one unit each; ir.Relu etc. still name them
from ..ops import *  # noqa: F401,F403
from ..ops import REGISTRY, Ref, inputs

Shape = tuple[int, int]


# --- leaves: cells that hold plain values a user may edit -------------------------------------
@dataclass(frozen=True)
class Bound:
    """The numbers an input cell takes: above ``low`` (or from it, ``low_inclusive``), up to
    ``high`` (inclusive), whole numbers only if ``whole``.  One rule, said three ways: the cell's
    data validation (emit/book.py), its words, and ``admits`` (run refuses what the cell would)."""
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = False
    whole: bool = False

    def __post_init__(self):
        if self.low is None and self.high is None:
            raise ValueError("a bound needs a low or a high end")
        if self.low is not None and self.high is not None:
            if not self.low_inclusive:  # "between" includes both ends: no such rule to write
                raise ValueError("a bound with a high end includes its low end")
            if self.low > self.high:
                raise ValueError(f"a bound from {self.low:g} to {self.high:g} admits nothing")

    def admits(self, v) -> bool:
        """``v`` is a number the rule takes."""
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v != v:  # nor is NaN
            return False
        if self.whole and not float(v).is_integer():
            return False
        if self.low is not None and not (v >= self.low if self.low_inclusive else v > self.low):
            return False
        return self.high is None or v <= self.high

    def words(self) -> str:
        """The rule in words: "a whole number from 1 to 2147483646", "a number greater than 0"."""
        what = "a whole number" if self.whole else "a number"
        low, high = self.ends()
        if low is not None and high is not None:
            return f"{what} from {low} to {high}"
        if low is not None:
            return f"{what} of {low} or more" if self.low_inclusive else f"{what} greater than {low}"
        return f"{what} of {high} or less"

    def short(self) -> str:
        """The rule in a one-line error: "> 0", "a whole number >= 0"."""
        if self.low is not None and self.high is not None:
            return self.words()
        op, end = ((">=" if self.low_inclusive else ">"), self.low) if self.low is not None \
            else ("<=", self.high)
        return f"{'a whole number ' if self.whole else ''}{op} {number_text(end)}"

    def ends(self) -> tuple[str | None, str | None]:
        """(low, high) as the rule's text writes them (None: no such end)."""
        return tuple(None if b is None else number_text(b) for b in (self.low, self.high))


def number_text(x: float) -> str:
    """``x`` exactly and short: 2147483646 (not 2.14748e+09), 0, 0.5, -1."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 2 ** 53 else repr(float(x))


def bound_of(above=None, at_least=None, at_most=None, whole=False) -> Bound | None:
    """The Bound of an input's fields (ir.Input's, a manifest entry's), None if it has none."""
    if above is not None and at_least is not None:
        raise ValueError("an input is bounded above a number or from one, not both")
    low = at_least if at_least is not None else above
    if low is None and at_most is None:
        if whole:
            raise ValueError("a whole-number input needs a low or a high end")
        return None
    return Bound(low, at_most, low_inclusive=at_least is not None, whole=bool(whole))


@dataclass(frozen=True)
class Input:
    """A value the user types: numbers (N, F) or, for text models, strings.  Its typed numbers
    may be bounded (a validation rule on its cells, checked by run): greater than ``above`` or
    at least ``at_least`` (not both), at most ``at_most``, whole numbers if ``whole``."""
    INPUTS = ()
    default: Any  # np.ndarray of the initial cell values
    above: float | None = None
    at_least: float | None = None
    at_most: float | None = None
    whole: bool = False
    pictures: int = 0   # an image: its block stacks this many channel pictures (a colour scale each)

    def __post_init__(self):
        self.bound  # a bound that cannot be written fails here, at capture

    def feature_maps(self, shape) -> int:
        """How many pictures the block stacks, as a feature map's op says (0: no colour scale)."""
        return self.pictures

    @property
    def bound(self) -> Bound | None:
        return bound_of(self.above, self.at_least, self.at_most, self.whole)


@dataclass(frozen=True)
class Param:
    """A weight tensor; ``source`` names the checkpoint entry it came from (for import/round trip)."""
    INPUTS = ()
    value: Any  # np.ndarray in the checkpoint's float32/float64: (out, in) weights, (out, 1) biases
    source: str = ""
    transposed: bool = False  # stored transposed relative to the checkpoint tensor (HF Conv1D)


@dataclass(frozen=True)
class Const:
    """Fixed data written as plain cells, e.g. the Walk sheet's grid of x values."""
    INPUTS = ()
    value: Any


@dataclass(frozen=True)
class View:
    """A rectangle of another tensor; it owns no cells, formulas read the source's cells."""
    INPUTS = ("x",)
    x: Ref
    rows: tuple[int, int]
    cols: tuple[int, int]


LEAF_TYPES = (Input, Param, Const)
OP_TYPES = (*REGISTRY.values(), View)


def op_inputs(op) -> list[str]:
    """Names of the nodes an op reads: its declared ``INPUTS`` that are set (leaves read none)."""
    return inputs(op)


def later_inputs(op) -> list[str]:
    """The nodes an op reads that the graph computes after it (its ``LATER`` fields): a forward
    edge, as generation's each position reading the previous position's draw."""
    return [getattr(op, f) for f in getattr(op, "LATER", ())]


class CellLabels(Sequence):
    """Labels that read a (n, 1) node: label k is ``prefixes[k]`` joined to that node's cell k,
    a formula, so the labels follow an edit (a GPT's positions labelled by the tokens the
    Prompt sheet shows now, not the ones at export).  The cell's value is text or a number the
    formula only joins: a token "=1+1" stays text.  As a sequence it holds the labels as they
    read at export (``texts``), for readers of the graph that want strings (Plan.label_at).
    """

    def __init__(self, node: str, prefixes: Sequence[str], texts: Sequence[str]):
        if len(prefixes) != len(texts):
            raise ValueError("one prefix per label")
        self.node, self.prefixes, self.texts = node, list(prefixes), list(texts)

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, k):
        return self.texts[k]


@dataclass
class Node:
    """One tensor of the graph: its op, shape, sheet and labels."""
    name: str
    op: Any
    shape: Shape
    sheet: str
    title: str = ""
    row_labels: list[str] | None = None   # or CellLabels: formulas reading a node
    col_labels: list[str] | None = None
    ref: str | None = None      # key of the matching PyTorch intermediate (verify compares them)
    beside: bool = False        # layout: place to the right of the previous node (bias beside W)
    role: str = ""              # "output" marks the model's result; "" for everything else
    style: str = ""             # cell style override, e.g. "flag" for 1/0 cells ("" = by kind)
    order: int = 0              # layout: lower comes first on its sheet (stable: ties keep graph order)


@dataclass
class Graph:
    """Nodes in evaluation order, plus the sheets they live on and what the model is."""
    nodes: dict[str, Node] = field(default_factory=dict)
    sheets: list[str] = field(default_factory=list)
    sheet_flow: dict[str, str] = field(default_factory=dict)  # "down" (default) or "right"
    meta: dict = field(default_factory=dict)

    def add(self, name: str, op, shape: Shape, sheet: str, **kw) -> str:
        """Append a node; its inputs must already exist.  Returns ``name`` for chaining."""
        if name in self.nodes:
            raise ValueError(f"node {name!r} defined twice")
        later = later_inputs(op)  # computed after it (ops.NextInput's draws)
        for src in op_inputs(op):
            if src not in self.nodes and src not in later:
                raise ValueError(f"node {name!r} reads unknown node {src!r}")
        if sheet not in self.sheets:
            self.sheets.append(sheet)
        self.nodes[name] = Node(name, op, tuple(int(s) for s in shape), sheet, **kw)
        return name

    def shape(self, name: str) -> Shape:
        return self.nodes[name].shape

    def of_type(self, *types) -> list[Node]:
        return [n for n in self.nodes.values() if isinstance(n.op, types)]

    @property
    def inputs(self) -> list[Node]:
        return self.of_type(Input)

    @property
    def outputs(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.role == "output"]


def as_matrix(value) -> np.ndarray:
    """A 2-D float array of a tensor or array; vectors become one column (out, 1).

    float32 and float64 keep their dtype and share the tensor's memory (no copy: GPT-2's weights
    are ~0.5 GB); narrower floats widen to float32 exactly, anything else becomes float64.  Users
    that compute (ir.reference, verify) cast to float64 where they use the values.
    """
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        if value.dtype.is_floating_point and value.dtype.itemsize < 4:  # float16, bfloat16
            value = value.float()
        value = value.numpy()
    arr = np.asarray(value)
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"expected a vector or matrix, got shape {arr.shape}")
    return arr


_LEAF_KIND = {Input: "input", Param: "weight", Const: "const"}


def node_kind(node: Node) -> str:
    """The cell kind that styles a node (emit) and that the manifest records of it (verify reads
    weights, inputs and constants apart): input, weight, const, formula or output."""
    if type(node.op) in _LEAF_KIND:
        return _LEAF_KIND[type(node.op)]
    return "output" if node.role == "output" else "formula"
