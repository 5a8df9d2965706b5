"""The IR: a model as an ordered list of named 2-D tensors, each computed by one small op.

Every tensor is 2-D, (rows, cols), because that is what a sheet holds: activations are
(N, features) with one row per sample or position, weights keep PyTorch's (out, in) layout with
one row per neuron, and biases are (out, 1) columns that sit beside their weight rows.

A node is a tensor plus the op that computes it, where it lives (sheet) and how a reader should
see it (title, row and column labels).  Ops are frozen dataclasses whose ``str`` fields name their
input nodes; adding an op takes four things: the op here, its reference in ``reference.py``, its
formula in ``emit/formulas.py`` and a test.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

Shape = tuple[int, int]
Ref = str  # a field of this type names an input node; other str fields are attributes


# --- leaves: cells that hold plain values a user may edit -------------------------------------
@dataclass(frozen=True)
class Input:
    """A value the user types: numbers (N, F) or, for text models, strings."""
    default: Any  # np.ndarray of the initial cell values
    above: float | None = None  # typed numbers must be greater than this (a validation rule)


@dataclass(frozen=True)
class Param:
    """A weight tensor; ``source`` names the checkpoint entry it came from (for import/round trip)."""
    value: Any  # np.ndarray in the checkpoint's float32/float64: (out, in) weights, (out, 1) biases
    source: str = ""
    transposed: bool = False  # stored transposed relative to the checkpoint tensor (HF Conv1D)


@dataclass(frozen=True)
class Const:
    """Fixed data written as plain cells, e.g. the Walk sheet's grid of x values."""
    value: Any


# --- ops ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Linear:
    """(N, out) = x (N, in) @ w (out, in)^T + b (out, 1)."""
    x: Ref
    w: Ref
    b: Ref | None = None


@dataclass(frozen=True)
class Relu:
    x: Ref


@dataclass(frozen=True)
class LeakyRelu:
    x: Ref
    slope: float = 0.01


@dataclass(frozen=True)
class Tanh:
    x: Ref


@dataclass(frozen=True)
class Sigmoid:
    x: Ref


@dataclass(frozen=True)
class Gelu:
    """GELU exactly as the model defines it: "erf" (exact) or "tanh" (GPT-2's gelu_new)."""
    x: Ref
    form: str = "erf"


@dataclass(frozen=True)
class Copy:
    """The same values shown again, e.g. a layer's input repeated on its own sheet."""
    x: Ref


@dataclass(frozen=True)
class Add:
    a: Ref
    b: Ref


@dataclass(frozen=True)
class Sqrt:
    x: Ref


@dataclass(frozen=True)
class Sub:
    a: Ref
    b: Ref


@dataclass(frozen=True)
class Step:
    """1 where x > 0 else 0: which ReLUs are on."""
    x: Ref


@dataclass(frozen=True)
class View:
    """A rectangle of another tensor; it owns no cells, formulas read the source's cells."""
    x: Ref
    rows: tuple[int, int]
    cols: tuple[int, int]


OP_TYPES = (Linear, Relu, LeakyRelu, Tanh, Sigmoid, Gelu, Copy, Add, Sqrt, Sub, Step, View)
LEAF_TYPES = (Input, Param, Const)


# --- text and transformer ops (the GPT) --------------------------------------------------------
# A prompt becomes token ids in the sheet itself: text -> characters -> ids.
@dataclass(frozen=True)
class PromptLength:
    """(1, 1): how many characters of ``text`` the sheet reads, min(len(text), cap)."""
    text: Ref
    cap: int


@dataclass(frozen=True)
class Chars:
    """(count, 1): the last ``n`` characters of ``text``, one per row; "" past its end."""
    text: Ref
    n: Ref
    count: int


@dataclass(frozen=True)
class TokenId:
    """Token ids: the first row of the vocabulary's ``chars`` column holding exactly ``char``
    ('a' is not 'A'), 0-based.  An empty ``char`` (past the prompt) gets ``pad``; an unknown one
    the text "not in vocab: 'Ω'"."""
    char: Ref
    chars: Ref
    pad: int = 0


@dataclass(frozen=True)
class PromptNote:
    """(1, 1) text: "ok", or why the sheet reads something other than the whole prompt."""
    text: Ref
    ids: Ref
    cap: int


@dataclass(frozen=True)
class Lookup:
    """out[i, :] = table[ids[i], :]: an embedding lookup by 0-based id (also of text tables)."""
    table: Ref
    ids: Ref


@dataclass(frozen=True)
class RowMean:
    """(N, 1): the mean of each row."""
    x: Ref


@dataclass(frozen=True)
class RowVar:
    """(N, 1): the biased variance of each row about ``mean`` (divide by F, as LayerNorm does)."""
    x: Ref
    mean: Ref


@dataclass(frozen=True)
class Normalize:
    """(x - mean) / sqrt(var + eps), mean and var (N, 1) broadcast along each row."""
    x: Ref
    mean: Ref
    var: Ref
    eps: float = 1e-5


@dataclass(frozen=True)
class ScaleShift:
    """x * gain + bias with gain and bias (1, F) rows broadcast down the N rows (LayerNorm)."""
    x: Ref
    gain: Ref
    bias: Ref | None = None


@dataclass(frozen=True)
class CausalScores:
    """(T, T) = q kᵀ / sqrt(head size); future cells (column > row) are masked: -inf in PyTorch
    and the reference, blank cells in the sheet (verify counts a blank against -inf as equal)."""
    q: Ref
    k: Ref


@dataclass(frozen=True)
class RowMax:
    """(N, 1): the max of each row; ``causal``: of row i's first i+1 cells only."""
    x: Ref
    causal: bool = False


@dataclass(frozen=True)
class RowSumExp:
    """(N, 1): sum of exp(x - max) along each row (``causal``: the first i+1 cells)."""
    x: Ref
    max: Ref
    causal: bool = False


@dataclass(frozen=True)
class Softmax:
    """exp(x - max) / sum per row, the row max subtracted so exp never overflows; ``causal``:
    0 for the masked cells above the diagonal."""
    x: Ref
    max: Ref
    sum: Ref
    causal: bool = False


@dataclass(frozen=True)
class MatMul:
    """(N, M) = a (N, K) @ b (K, M), e.g. attention probabilities @ values."""
    a: Ref
    b: Ref


@dataclass(frozen=True)
class Concat:
    """Tensors with the same rows side by side (attention heads -> one (T, n_embd) block)."""
    parts: tuple[Ref, ...]


@dataclass(frozen=True)
class PickRow:
    """(1, F): row n - 1 of x, n counting from 1 (the prompt's last position); n < 1 reads row 0."""
    x: Ref
    n: Ref


@dataclass(frozen=True)
class Divide:
    """x / by, ``by`` one cell (the softmax temperature)."""
    x: Ref
    by: Ref


@dataclass(frozen=True)
class Largest:
    """(k, 1): the k largest values of a (1, F) row, largest first."""
    x: Ref
    k: int


@dataclass(frozen=True)
class LargestIds:
    """(k, 1): the 0-based columns of the k largest values, each column once (equal values in
    column order)."""
    x: Ref
    k: int


OP_TYPES += (PromptLength, Chars, TokenId, PromptNote, Lookup, RowMean, RowVar,
             Normalize, ScaleShift, CausalScores, RowMax, RowSumExp, Softmax, MatMul, Concat,
             PickRow, Divide, Largest, LargestIds)


# --- the tiny text net: whole words ------------------------------------------------------------
@dataclass(frozen=True)
class WordId:
    """(N, 1): the id beside each word's exact (case-sensitive, no wildcards) match in ``words``.

    MATCH and VLOOKUP ignore case and read * ? ~ as wildcards, so the sheet compares with EXACT.
    A word not in the vocabulary (or blank) gets a message text instead of an id.
    """
    MISSING = "not in the vocabulary: '{}'"   # messages shown in the id cell (not fields)
    TWICE = "in the vocabulary more than once: '{}'"
    BLANK = "pick a word from the list"
    word: Ref
    words: Ref
    ids: Ref


@dataclass(frozen=True)
class RowArgmax:
    """(N, 1): the 0-based column of each row's largest value (the first one on ties, as torch)."""
    x: Ref


OP_TYPES += (WordId, RowArgmax)


# --- token ids typed into cells (a GPT without a character vocabulary) ------------------------
@dataclass(frozen=True)
class FilledCount:
    """(1, 1): how many cells of x are not blank (the prompt's length in typed token ids)."""
    x: Ref


@dataclass(frozen=True)
class CheckedIds:
    """(T, 1): the ids typed in x (T, 1), each a whole number in 0..size-1 or a message.

    A blank cell at position i is a pad (``pad``) when i >= n, the count of filled cells: the
    prompt is positions 0..n-1.  A blank before that is a gap in the prompt: a message.
    """
    OUTSIDE = "token id {} is outside the vocabulary (ids 0..{})"   # messages (not fields)
    GAP = "t{} is blank: type the ids from t0 on, without gaps"
    x: Ref
    n: Ref
    size: int
    pad: int = 0


@dataclass(frozen=True)
class TokenText:
    """(T, 1): the (V, 1) text ``table``'s row ``ids[i]`` at the prompt's n positions, "" after."""
    table: Ref
    ids: Ref
    n: Ref


@dataclass(frozen=True)
class IdsNote:
    """(1, 1) text: "ok", or what to fix in the typed ids."""
    BAD = "a token id is not valid: see the id column"
    EMPTY = "type token ids in the yellow cells, from t0 on"
    ids: Ref
    n: Ref


OP_TYPES += (FilledCount, CheckedIds, TokenText, IdsNote)


def op_inputs(op) -> list[str]:
    """Names of the nodes an op reads (its ``Ref``-typed fields that are set, and tuples of them)."""
    if isinstance(op, LEAF_TYPES):
        return []
    names: list[str] = []
    for f in fields(op):
        value = getattr(op, f.name)
        if f.type in ("Ref", "Ref | None") and value is not None:
            names.append(value)
        elif f.type == "tuple[Ref, ...]":
            names.extend(value)
    return names


@dataclass
class Node:
    """One tensor of the graph: its op, shape, sheet and labels."""
    name: str
    op: Any
    shape: Shape
    sheet: str
    title: str = ""
    row_labels: list[str] | None = None
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
        for src in op_inputs(op):
            if src not in self.nodes:
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
