"""Attention heads in the torch.export front end (rows of aten.TABLE).

A (1, H, T, D) tensor made by view/transpose of a (1, T, H*D) projection owns no cells: head h
is the column rectangle [h*D, (h+1)*D) of the projection (an ir.View).  Attention runs per head
on the GPT preset's units, and the heads come back side by side:

    sdpa(q, k, v)            per head: CausalScores (or ScaledScores) | row max | sum exp,
                             Softmax, y = MatMul(probs, v); then Concat(y_0 .. y_H-1) (T, H*D)
    q @ k.transpose(-2, -1)  per head scores; a following "* scale" and masked_fill(causal mask,
                             -inf) are folded into them (no extra (T, T) block per head)
    softmax / masked_fill / * scalar on per-head scores, probs @ v: per head
    q*cos + rotate_half(q)*sin   one Rotary op over the whole (T, H*D) projection
    mean(x ** 2, -1)         RowMeanSquare (RMSNorm written out by hand, as HF does)

GQA: a key/value head read by several query heads (enable_gqa, or k/v repeated by expand +
reshape / repeat_interleave) is the same rectangle for each of them: no copies either.
Every per-head node is compared with the float64 run (a ``derived`` ref from the run's tensors).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..ir import graph as ir
from .val import NOTHING, Val

NEG_INF = -math.inf


def _op(node) -> str:
    packet = getattr(node.target, "overloadpacket", None)
    return f"aten.{packet.__name__}" if packet is not None else str(node.target)


def _heads(shape) -> tuple[int, int, int]:
    # (n heads, rows, cols) of a (..., H, R, C) tensor, its leading dims flattened
    return math.prod(shape[:-2]), shape[-2], shape[-1]


def head(cx, arg, h: int, transpose: bool = False) -> str:
    """Head h of ``arg`` (..., H, R, C) as an (R, C) block (``transpose``: its (C, R))."""
    val = cx.value(arg)
    n, rows, cols = _heads(val.shape)
    if val.parts is not None:
        if transpose:
            cx.refuse("reads per-head results transposed")
        return val.parts[h % len(val.parts)]
    node, cells = cx.cells(arg)
    one = cells.reshape(n, rows, cols, 2)[h % n]   # a broadcast operand has one head
    return cx.block(node, one.transpose(1, 0, 2) if transpose else one)


def _is_rect(cells: np.ndarray) -> bool:
    rows, cols = cells.shape[:2]
    want = np.stack(np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij"), axis=-1)
    return cells.size == 0 or np.array_equal(cells - cells[0, 0], want)


def _pick(fx: str, h: int, n: int):
    # a derived ref: head h of node fx's tensor in the float64 run
    return lambda raw: raw[fx].reshape(n, *raw[fx].shape[-2:])[h]


def side_by_side(cx, ys: list[str], fx: str) -> None:
    """The heads y_h (R, C) as one (R, H*C) block (Concat), the fx node's (.., H, R, C) value."""
    shape = tuple(int(s) for s in cx.node.meta["val"].shape)
    n, rows, cols = _heads(shape)
    ref = cx.derive(f"{fx}.heads", lambda raw: raw[fx].reshape(n, rows, cols)
                    .permute(1, 0, 2).reshape(rows, n * cols))
    node = cx.g.add(f"{cx._base()}.y", ir.Concat(tuple(ys)), (rows, n * cols), cx.sheet, ref=ref,
                    title=f"{fx}: the {n} heads side by side, (T, H*D)")
    h, r, c = np.meshgrid(np.arange(n), np.arange(rows), np.arange(cols), indexing="ij")
    cells = np.stack([r, h * cols + c], axis=-1).reshape(*shape, 2)
    cx.env[cx.node.name] = Val(shape, node=node, cells=cells)


def _softmax(cx, scores: str, h: int, causal: bool, ref) -> str:
    # row max | sum exp beside the scores, then the probabilities (0 for the future)
    base, t = cx._base(), cx.g.shape(scores)[0]
    mx = cx.g.add(f"{base}.max{h}", ir.RowMax(scores, causal=causal), (t, 1), cx.sheet,
                  beside=True, col_labels=["row max"])
    total = cx.g.add(f"{base}.sum{h}", ir.RowSumExp(scores, mx, causal=causal), (t, 1),
                     cx.sheet, beside=True, col_labels=["sum exp"])
    return cx.g.add(f"{base}.probs{h}", ir.Softmax(scores, mx, total, causal=causal),
                    cx.g.shape(scores), cx.sheet, ref=ref,
                    title=f"head {h}: attention = exp(score - row max) / sum exp"
                          + (" (0 for the future)" if causal else ""))


def _scores(cx, q: str, k: str, h: int, scale: float, causal: bool, ref, note="") -> str:
    size = cx.g.shape(q)[1]
    exact = causal and math.isclose(scale, 1 / math.sqrt(size), rel_tol=1e-15)
    op = ir.CausalScores(q, k) if exact else ir.ScaledScores(q, k, float(scale), causal)
    t, s = cx.g.shape(q)[0], cx.g.shape(k)[0]
    return cx.g.add(f"{cx._base()}.scores{h}", op, (t, s), cx.sheet, ref=ref,
                    title=f"head {h}: scores = q · k^T * {scale:.6g}{note}"
                          + ("; the future is masked (blank)" if causal else ""))


# --- scaled_dot_product_attention ----------------------------------------------------------
def sdpa(cx, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
         enable_gqa=False):
    """Per head: scores, causal softmax, probs @ v; the heads side by side."""
    qs, ks, vs = (tuple(cx.value(a).shape) for a in (q, k, v))
    if len(qs) < 3 or math.prod(qs[:-3]) != 1:
        cx.refuse(f"on q of shape {qs}: only a batch of one (1, H, T, D) is supported")
    if dropout_p:
        cx.refuse(f"with dropout_p={dropout_p}: export the model in eval()")
    n, t, d = qs[-3:]
    nk = ks[-3]
    if n % nk or vs[-3] != nk:
        cx.refuse(f"with {n} query heads and {nk} key/value heads")
    causal = bool(is_causal)
    if attn_mask is not None:
        if is_causal:
            cx.refuse("with both is_causal and attn_mask")
        causal = _mask_kind(cx, attn_mask, t, ks[-2])
    scale = 1 / math.sqrt(d) if scale is None else float(scale)
    fx, group = cx.node.name, n // nk
    raw_q, raw_k = q.name, k.name
    ys = []
    for h in range(n):
        qh, kh, vh = head(cx, q, h), head(cx, k, h // group), head(cx, v, h // group)

        def scores_of(raw, h=h):
            s = raw[raw_q].reshape(n, t, d)[h] @ raw[raw_k].reshape(nk, -1, d)[h // group].T
            s = s * scale
            return s.masked_fill(torch.ones_like(s).triu(1).bool(), NEG_INF) if causal else s
        scores = _scores(cx, qh, kh, h, scale, causal, cx.derive(f"{fx}.scores{h}", scores_of))
        probs = _softmax(cx, scores, h, causal, cx.derive(
            f"{fx}.probs{h}", lambda raw, f=scores_of: torch.softmax(f(raw), -1)))
        ys.append(cx.g.add(f"{cx._base()}.y{h}", ir.MatMul(probs, vh), (t, vs[-1]), cx.sheet,
                           beside=True, ref=cx.derive(f"{fx}.y{h}", _pick(fx, h, n)),
                           title=f"head {h}: y = attention · v"))
    side_by_side(cx, ys, fx)


def _mask_kind(cx, mask, t: int, s: int) -> bool:
    # True: a causal mask (bool tril, or additive 0 / -inf); False: one that masks nothing
    value = cx.const_of(mask)
    if value is None:
        cx.refuse("with an attention mask computed from the input: only a causal mask "
                  "(or none) is supported")
    m = np.broadcast_to(np.asarray(value), (*value.shape[:-2], t, s)).reshape(-1, t, s)
    allowed = m if m.dtype == bool else (m == 0)
    if m.dtype != bool and not np.all((m == 0) | np.isneginf(m)):
        cx.refuse("with an additive mask other than 0 / -inf")
    tril = np.tril(np.ones((t, s), dtype=bool))
    if all(np.array_equal(a, tril) for a in allowed):
        return True
    if allowed.all():
        return False
    cx.refuse("with an attention mask that is not causal: only a causal mask is supported")


# --- attention written out: q @ k^T, * scale, masked_fill, softmax, @ v ---------------------
def matmul(cx, a, b):
    """A batched product of (.., H, T, K) tensors, per head: scores when b is a transposed
    rectangle (q @ k.transpose(-2, -1)), else probs @ v (then the heads side by side)."""
    out = tuple(int(s) for s in cx.node.meta["val"].shape)
    n = _heads(out)[0]
    vb = cx.value(b)
    _, cells = cx.cells(b) if vb.parts is None else (None, None)
    nb = _heads(vb.shape)[0]
    heads_b = None if cells is None else cells.reshape(nb, *vb.shape[-2:], 2)
    if heads_b is not None and all(_is_rect(c.transpose(1, 0, 2)) for c in heads_b):
        return _scores_per_head(cx, a, b, n)
    fx, ys = cx.node.name, []
    for h in range(n):
        ah, bh = head(cx, a, h), head(cx, b, h)
        ys.append(cx.g.add(f"{cx._base()}.y{h}", ir.MatMul(ah, bh), out[-2:], cx.sheet,
                           ref=cx.derive(f"{fx}.y{h}", _pick(fx, h, n)),
                           title=f"head {h}: {a.name} · {b.name}"))
    side_by_side(cx, ys, fx)


def _scores_per_head(cx, a, b, n: int) -> None:
    scale, causal, chain = _score_chain(cx, cx.node)
    end = chain[-1] if chain else cx.node
    note = f" (the * scale{' and causal mask' if causal else ''} after it folded in)" \
        if chain else ""
    parts = []
    for h in range(n):
        ref = cx.derive(f"{end.name}.h{h}", _pick(end.name, h, n))
        parts.append(_scores(cx, head(cx, a, h), head(cx, b, h, transpose=True), h, scale,
                             causal, ref, note))
    val = Val(tuple(int(s) for s in end.meta["val"].shape), parts=tuple(parts), causal=causal)
    for node in (cx.node, *chain):
        cx.env[node.name] = val if node is end else NOTHING


def _score_chain(cx, node):
    # the "* scale" (or "/ d") and masked_fill(future, -inf) that only the scores feed
    scale, causal, chain, end = 1.0, False, [], node
    while len(end.users) == 1 and not causal:
        user = next(iter(end.users))
        name, args = _op(user), user.args
        if name in ("aten.mul", "aten.div") and len(args) == 2 and args[0] is end \
                and isinstance(args[1], (int, float)) and not user.kwargs:
            scale = scale * args[1] if name == "aten.mul" else scale / args[1]
        elif name == "aten.masked_fill" and args[0] is end and args[2] == NEG_INF \
                and _is_future(cx, args[1]):
            causal = True
        else:
            break
        chain.append(user)
        end = user
    return scale, causal, chain


def _is_future(cx, mask) -> bool:
    # a node after the scores (the mask is sliced from its buffer later): its folded value
    value = cx.const_of(mask)
    return value is not None and is_future(cx, value)


def is_future(cx, mask) -> bool:
    """A constant mask True exactly above the diagonal (a key after its query) of every (T, S)
    block of the node being lowered."""
    mask = np.asarray(mask)
    if mask.ndim < 2:
        return False
    t, s = (int(v) for v in cx.node.meta["val"].shape[-2:])
    m = np.broadcast_to(mask, (*mask.shape[:-2], t, s)).reshape(-1, t, s)
    return all(np.array_equal(x != 0, np.triu(np.ones((t, s), dtype=bool), 1)) for x in m)


def on_parts(cx, x) -> bool:
    """``x`` is held as per-head blocks (scores, probabilities)."""
    return hasattr(x, "name") and cx.value(x).parts is not None


def softmax(cx, x, dim, half_to_float=False):
    """Softmax of per-head scores along the last dim, per head."""
    val = cx.value(x)
    if dim not in (-1, len(val.shape) - 1):
        cx.refuse(f"softmax along dim {dim}: only the last dim (one row each) is supported")
    fx, n = cx.node.name, len(val.parts)
    probs = tuple(_softmax(cx, p, h, val.causal, cx.derive(f"{fx}.h{h}", _pick(fx, h, n)))
                  for h, p in enumerate(val.parts))
    cx.env[fx] = Val(val.shape, parts=probs)


def scale_parts(cx, x, by):
    """Per-head blocks times (or over) a number."""
    if not isinstance(by, (int, float)):
        cx.refuse("multiplies per-head results by a tensor: only by a number")
    val, fx = cx.value(x), cx.node.name
    if val.causal:   # blank (masked) cells times a number would be #VALUE!
        cx.refuse("scales masked scores: scale them before masked_fill")
    number = cx.const(by)
    make = ir.Times if _op(cx.node) == "aten.mul" else ir.Over
    parts = tuple(cx.g.add(f"{cx._base()}.h{h}", make(p, number), cx.g.shape(p), cx.sheet,
                           ref=cx.derive(f"{fx}.h{h}", _pick(fx, h, len(val.parts))),
                           title=f"head {h}: {fx}") for h, p in enumerate(val.parts))
    cx.env[fx] = Val(val.shape, parts=parts, causal=val.causal)


def mask_parts(cx, x, mask, value):
    """masked_fill(future, -inf) on per-head scores: CausalMask per head."""
    if value != NEG_INF or not _is_future(cx, mask):
        cx.refuse("masks per-head scores other than the future with -inf")
    val, fx = cx.value(x), cx.node.name
    parts = tuple(cx.g.add(f"{cx._base()}.h{h}", ir.CausalMask(p), cx.g.shape(p), cx.sheet,
                           ref=cx.derive(f"{fx}.h{h}", _pick(fx, h, len(val.parts))),
                           title=f"head {h}: the future masked (blank)")
                  for h, p in enumerate(val.parts))
    cx.env[fx] = Val(val.shape, parts=parts, causal=True)


# --- rotary: q*cos + rotate_half(q)*sin ------------------------------------------------------
def rotary(cx) -> bool:
    """At a mul node: if it starts Llama's rotary pattern, lower the whole of it as one Rotary
    op over the (T, H*D) projection and return True."""
    m = _rotary_match(cx, cx.node)
    if m is None:
        return False
    x, cos, sin, add, inner = m
    val = cx.value(x)
    n, t, d = _heads(val.shape)
    node, cells = cx.cells(x)
    # (1, H, T, D) -> (T, H*D): heads side by side, as the projection holds them
    flat = cells.reshape(n, t, d, 2).transpose(1, 0, 2, 3).reshape(t, n * d, 2)
    src = cx.block(node, flat)
    tables = [_table(cx, arg, t, d, what) for arg, what in ((cos, "cos"), (sin, "sin"))]
    fx, shape = add.name, tuple(int(s) for s in add.meta["val"].shape)
    ref = cx.derive(f"{fx}.heads", lambda raw: raw[fx].reshape(n, t, d).permute(1, 0, 2)
                    .reshape(t, n * d))
    out = cx.g.add(f"{cx._base()}.rotary", ir.Rotary(src, *tables, d), (t, n * d), cx.sheet,
                   ref=ref, title=f"{fx} = {x.name} * cos + rotate_half({x.name}) * sin, each "
                   f"of {n} heads (rotary position embedding)")
    h, r, c = np.meshgrid(np.arange(n), np.arange(t), np.arange(d), indexing="ij")
    out_cells = np.stack([r, h * d + c], axis=-1).reshape(*shape, 2)
    for node_ in inner:
        cx.env[node_.name] = NOTHING
    cx.env[fx] = Val(shape, node=out, cells=out_cells)
    return True


def _table(cx, arg, t: int, d: int, what: str) -> str:
    # a (T, D) cos or sin table shared by every head: Const cells, placed once
    key = (f"rotary:{arg.name}", "rows")
    if key not in cx.params:
        value = np.asarray(cx.const_of(arg), dtype=np.float64).reshape(-1, t, d)[0]
        cx.params[key] = cx.g.add(f"{cx._base()}.{what}", ir.Const(np.ascontiguousarray(value)),
                                  (t, d), cx.sheet, title=f"rotary {what} table (T, D): constant, "
                                  "computed once with torch from the inv_freq buffer and the "
                                  "positions")
    return cx.params[key]


def _rotary_match(cx, mul):
    # mul(x, cos) + mul(cat(-x[..., D/2:], x[..., :D/2]), sin), cos / sin constants shared by
    # every head; returns (x, cos, sin, the add, every node of the pattern) or None
    if len(mul.users) != 1:
        return None
    add = next(iter(mul.users))
    if _op(add) != "aten.add" or len(add.args) != 2 or add.kwargs:
        return None
    other = add.args[1] if add.args[0] is mul else add.args[0]
    x, cos = _split_const(cx, mul)
    rot, sin = _split_const(cx, other) if hasattr(other, "op") and \
        _op(other) == "aten.mul" else (None, None)
    if x is None or rot is None or _op(rot) != "aten.cat" or len(other.users) != 1:
        return None
    shape = tuple(cx.value(x).shape)
    d = shape[-1]
    if len(shape) < 3 or d % 2 or any(_shared_shape(cx, c, shape) is False for c in (cos, sin)):
        return None
    parts, dim = rot.args[0], rot.args[1] if len(rot.args) > 1 else 0
    if len(parts) != 2 or dim not in (-1, len(shape) - 1) or _op(parts[0]) != "aten.neg":
        return None
    hi, lo = parts[0].args[0], parts[1]
    if not (_is_half(hi, x, d, second=True) and _is_half(lo, x, d, second=False)):
        return None
    inner = [mul, other, rot, parts[0], hi, lo]
    names = {n.name for n in inner} | {add.name}
    if any(u.name not in names for n in inner[1:] for u in n.users):
        return None
    return x, cos, sin, add, inner


def _split_const(cx, mul):
    # (the tensor, the constant) of a mul of the two, else (None, None)
    if len(mul.args) != 2 or not all(hasattr(a, "name") for a in mul.args):
        return None, None
    a, b = mul.args
    if cx.const_of(b) is not None and cx.const_of(a) is None:
        return a, b
    if cx.const_of(a) is not None and cx.const_of(b) is None:
        return b, a
    return None, None


def _shared_shape(cx, const, shape) -> bool:
    # the table is one (T, D) block for every head: shape (.., 1, T, D)
    cs = tuple(const.meta["val"].shape)
    return len(cs) >= 2 and cs[-2:] == shape[-2:] and math.prod(cs[:-2]) == 1


def _is_half(node, x, d: int, second: bool) -> bool:
    # node = x[..., D/2:] (second) or x[..., :D/2] (first), a slice along the last dim
    if not hasattr(node, "op") or _op(node) != "aten.slice" or node.args[0] is not x:
        return False
    args = list(node.args) + [None] * (5 - len(node.args))
    _, dim, start, end, step = args
    start, end = start or 0, d if end is None or end >= d else end
    return dim in (-1, len(x.meta["val"].shape) - 1) and (step or 1) == 1 and \
        (start, end) == ((d // 2, d) if second else (0, d // 2))


# --- RMSNorm written out: mean(x ** 2, -1, keepdim) ------------------------------------------
def mean_square(cx) -> bool:
    """At pow(x, 2): if only mean(-1, keepdim) reads it, lower both as RowMeanSquare (no block
    of squares) and return True."""
    node = cx.node
    if len(node.args) != 2 or node.args[1] != 2 or len(node.users) != 1:
        return False
    mean = next(iter(node.users))
    rank = len(node.meta["val"].shape)
    if _op(mean) != "aten.mean" or list(mean.args[1:2]) not in ([[-1]], [[rank - 1]]):
        return False
    x = cx.rows(node.args[0])
    shape = tuple(int(s) for s in mean.meta["val"].shape)
    out = cx.g.add(f"{cx._base()}.mean_square", ir.RowMeanSquare(x), (cx.g.shape(x)[0], 1),
                   cx.sheet, ref=mean.name, beside=True, col_labels=["mean x²"],
                   title=f"{mean.name} = mean({node.args[0].name} ** 2) along each row")
    cx.env[node.name] = NOTHING
    cx.env[mean.name] = Val(shape, node=out)
    return True
