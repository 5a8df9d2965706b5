"""A NumPy float64 interpreter of the IR: one small function per op.

It is the sheet's semantics written in NumPy: tests hold it against PyTorch (so the IR is a faithful
capture) and the formulas against it (so the sheet computes the IR).
"""
from __future__ import annotations

import math

import numpy as np

from . import graph as ir

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _linear(op, v):
    out = v[op.x] @ v[op.w].T  # (N, in) @ (in, out)
    return out + v[op.b][:, 0] if op.b else out


def _gelu(op, v):
    x = v[op.x]
    if op.form == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _view(op, v):
    (r0, r1), (c0, c1) = op.rows, op.cols
    return v[op.x][r0:r1, c0:c1]


REFERENCE = {
    ir.Input: lambda op, v: np.asarray(op.default),
    ir.Param: lambda op, v: np.asarray(op.value, dtype=np.float64),
    ir.Const: lambda op, v: np.asarray(op.value),
    ir.Linear: _linear,
    ir.Relu: lambda op, v: np.maximum(0.0, v[op.x]),
    ir.LeakyRelu: lambda op, v: np.where(v[op.x] > 0, v[op.x], op.slope * v[op.x]),
    ir.Tanh: lambda op, v: np.tanh(v[op.x]),
    ir.Sigmoid: lambda op, v: 1.0 / (1.0 + np.exp(-v[op.x])),
    ir.Gelu: _gelu,
    ir.Copy: lambda op, v: v[op.x].copy(),
    ir.Add: lambda op, v: v[op.a] + v[op.b],
    ir.Sub: lambda op, v: v[op.a] - v[op.b],
    ir.Sqrt: lambda op, v: np.sqrt(v[op.x]),
    ir.Step: lambda op, v: (v[op.x] > 0).astype(np.float64),
    ir.View: _view,
}


# --- text and transformer ops (the GPT) --------------------------------------------------------
def _text(cells) -> str:
    # a prompt cell read back from the workbook: an empty cell comes back as None
    value = np.asarray(cells, dtype=object).flat[0]
    return "" if value is None else str(value)


def _prompt_length(op, v):
    return np.array([[min(len(_text(v[op.text])), op.cap)]], dtype=np.float64)


def _chars(op, v):
    text, n = _text(v[op.text]), int(v[op.n][0, 0])
    window = text[len(text) - n:] if n else ""
    return np.array([[window[i] if i < n else ""] for i in range(op.count)], dtype=object)


def _token_id(op, v):
    first = {}
    for i, ch in enumerate(v[op.chars][:, 0]):
        first.setdefault(ch, i)  # a repeated character: its first row, as the sheet's MIN finds
    out = [[float(op.pad) if c in ("", None) else
            float(first[c]) if c in first else f"not in vocab: '{c}'"]
           for c in v[op.char][:, 0]]
    numbers = all(isinstance(row[0], float) for row in out)
    return np.array(out, dtype=np.float64 if numbers else object)


def _prompt_note(op, v):
    length, ids = len(_text(v[op.text])), v[op.ids]
    if any(isinstance(i, str) for i in ids.flat):
        note = "not in vocab: see the id column"
    elif length > op.cap:
        note = (f"the prompt has {length} characters; the context holds {op.cap}: "
                f"the sheet reads the last {op.cap}")
    else:
        note = "type a prompt" if length == 0 else "ok"
    return np.array([[note]], dtype=object)


def _lookup(op, v):
    return np.asarray(v[op.table])[np.asarray(v[op.ids], dtype=np.float64)[:, 0].astype(int)]


def _causal_scores(op, v):
    q, k = v[op.q], v[op.k]  # (T, hs) each
    scores = q @ k.T / math.sqrt(q.shape[1])
    scores[np.triu(np.ones(scores.shape, dtype=bool), k=1)] = -np.inf
    return scores


def _largest(op, v):
    return np.sort(v[op.x][0])[::-1][:op.k, None].copy()


def _largest_ids(op, v):
    # largest first, equal values in column order (as the sheet's formulas pick them)
    return np.argsort(-v[op.x][0], kind="stable")[:op.k, None].astype(np.float64)


def _pick_row(op, v):
    n = max(int(v[op.n][0, 0]), 1)
    return v[op.x][n - 1:n].copy()


REFERENCE.update({
    ir.PromptLength: _prompt_length,
    ir.Chars: _chars,
    ir.TokenId: _token_id,
    ir.PromptNote: _prompt_note,
    ir.Lookup: _lookup,
    ir.RowMean: lambda op, v: v[op.x].mean(axis=1, keepdims=True),
    ir.RowVar: lambda op, v: ((v[op.x] - v[op.mean]) ** 2).mean(axis=1, keepdims=True),
    ir.Normalize: lambda op, v: (v[op.x] - v[op.mean]) / np.sqrt(v[op.var] + op.eps),
    ir.ScaleShift: lambda op, v: v[op.x] * v[op.gain] + (v[op.bias] if op.bias else 0.0),
    ir.CausalScores: _causal_scores,
    # exp(-inf - max) = 0: the masked cells drop out of the max and the sum by themselves
    ir.RowMax: lambda op, v: v[op.x].max(axis=1, keepdims=True),
    ir.RowSumExp: lambda op, v: np.exp(v[op.x] - v[op.max]).sum(axis=1, keepdims=True),
    ir.Softmax: lambda op, v: np.exp(v[op.x] - v[op.max]) / v[op.sum],
    ir.MatMul: lambda op, v: v[op.a] @ v[op.b],
    ir.Concat: lambda op, v: np.hstack([v[p] for p in op.parts]),
    ir.PickRow: _pick_row,
    ir.Divide: lambda op, v: v[op.x] / v[op.by][0, 0],
    ir.Largest: _largest,
    ir.LargestIds: _largest_ids,
})


# --- the tiny text net: whole words ------------------------------------------------------------
def cell_text(value) -> str:
    """A cell as EXACT reads it: blank -> "", a whole number without ".0", text as it is."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _word_id(op, v):
    words = [cell_text(w) for w in np.asarray(v[op.words], dtype=object)[:, 0]]
    ids = np.asarray(v[op.ids], dtype=np.float64)[:, 0]
    out = []
    for value in np.asarray(v[op.word], dtype=object)[:, 0]:
        word = cell_text(value)
        hits = [i for i, w in enumerate(words) if w == word]
        out.append(float(ids[hits[0]]) if len(hits) == 1 else
                   op.TWICE.format(word) if hits else
                   op.BLANK if word == "" else op.MISSING.format(word))
    numbers = all(isinstance(i, float) for i in out)
    return np.array(out, dtype=np.float64 if numbers else object)[:, None]


REFERENCE.update({
    ir.WordId: _word_id,
    ir.RowArgmax: lambda op, v: np.argmax(v[op.x], axis=1).astype(np.float64)[:, None],
})


# --- token ids typed into cells ----------------------------------------------------------------
def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and value == "")


def checked_id(value, i: int, n: int, size: int, pad: int):
    """One typed id cell as the sheet checks it: a float id, or the message text."""
    if _blank(value):
        return ir.CheckedIds.GAP.format(i) if i < n else float(pad)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if number and 0 <= value < size and float(value).is_integer():
        return float(value)
    return ir.CheckedIds.OUTSIDE.format(cell_text(value), size - 1)


def _checked_ids(op, v):
    n = int(v[op.n][0, 0])
    out = [checked_id(c, i, n, op.size, op.pad) for i, c in enumerate(v[op.x][:, 0])]
    numbers = all(isinstance(i, float) for i in out)
    return np.array(out, dtype=np.float64 if numbers else object)[:, None]


def _token_text(op, v):
    n, table = int(v[op.n][0, 0]), np.asarray(v[op.table], dtype=object)
    return np.array([[table[int(k), 0] if i < n else ""] for i, k in enumerate(v[op.ids][:, 0])],
                    dtype=object)


def _ids_note(op, v):
    if any(isinstance(i, str) for i in v[op.ids].flat):
        return np.array([[op.BAD]], dtype=object)
    return np.array([[op.EMPTY if int(v[op.n][0, 0]) == 0 else "ok"]], dtype=object)


REFERENCE.update({
    ir.FilledCount: lambda op, v: np.array([[float(sum(not _blank(c) for c in v[op.x].flat))]]),
    ir.CheckedIds: _checked_ids,
    ir.TokenText: _token_text,
    ir.IdsNote: _ids_note,
})


def evaluate(graph: ir.Graph, inputs: dict | None = None) -> dict[str, np.ndarray]:
    """Run the graph.

    Args:
        graph: the captured model.
        inputs: optional values for Input nodes by name (default: each Input's default).
    Returns:
        every node's value by name, each of the node's 2-D shape.
    """
    values: dict[str, np.ndarray] = {}
    for node in graph.nodes.values():
        if inputs and node.name in inputs:
            values[node.name] = np.asarray(inputs[node.name]).reshape(node.shape)
            continue
        try:
            fn = REFERENCE[type(node.op)]
        except KeyError:
            raise NotImplementedError(f"no reference for op {type(node.op).__name__}") from None
        out = fn(node.op, values)
        if out.shape != node.shape:
            raise ValueError(f"{node.name}: computed shape {out.shape}, declared {node.shape}")
        values[node.name] = out
    return values
