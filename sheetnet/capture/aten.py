"""The table from ATen ops (as torch.export writes them) to sheetnet's op units.

    TABLE["aten.linear"](cx, x, w, b)     adds Linear(x, w, b) through the walk ``cx``

A lowering reads its arguments through ``cx`` (torch_export._Lowering): ``cx.rows(arg)`` the node
with the last dim as columns, ``cx.param(arg, layout)`` a weight's Param, ``cx.emit(op)`` the
result, ``cx.alias(arg)`` a view that owns no cells, ``cx.refuse(why)`` the one-line error.
Adding an op: one function here and one row in TABLE (and an op unit in sheetnet/ops if new).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..ir import graph as ir
from . import heads
from .conv import TABLE as CONV_TABLE
from .views import TABLE as VIEW_TABLE


def op_name(node) -> str:
    """The ATen op of an fx node without its overload: "aten.linear", or the callable's name."""
    target = node.target
    packet = getattr(target, "overloadpacket", None)
    if packet is not None:
        return f"{target.namespace}.{packet.__name__}"
    return getattr(target, "__name__", str(target))


def _dim(cx, dim, rank: int) -> int:
    return dim + rank if dim < 0 else dim


def _last_dim_only(cx, dim, what: str) -> None:
    rank = len(cx.value(cx.node.args[0]).shape)
    if _dim(cx, dim, rank) != rank - 1:
        cx.refuse(f"{what} along dim {dim}: only the last dim (one row each) is supported")


# --- matrix products ---------------------------------------------------------------------------
def _weight_of(cx, arg):
    # a weight read through .t() (x @ w.t(), addmm's decomposition): Linear reads it in place
    val = cx.value(arg)
    return cx.param(_untransposed(arg), "matrix") if val.param and val.transposed else None


def _untransposed(arg):
    return arg.args[0]  # the t/permute/transpose node's input: the weight placeholder


def linear(cx, x, w, b=None):
    """x (..., in) @ w (out, in)^T + b: the existing Linear cells."""
    x, w = cx.rows(x), cx.param(w, "matrix")
    cx.emit(ir.Linear(x, w, cx.param(b, "col", beside=True) if b is not None else None))


def matmul(cx, a, b):
    """a (..., K) @ b (K, M); a transposed weight makes it a Linear; per head when both are
    (.., H, T, K) tensors (heads.matmul)."""
    if len(cx.value(b).shape) > 2 and len(cx.value(a).shape) > 2:
        return heads.matmul(cx, a, b)
    if len(cx.value(b).shape) != 2:
        cx.refuse(f"multiplies by a tensor of shape {cx.value(b).shape}: only by a matrix")
    w = _weight_of(cx, b)
    if w is not None:
        return cx.emit(ir.Linear(cx.rows(a), w))
    cx.emit(ir.MatMul(cx.rows(a), cx.param(b, "matrix")))


def addmm(cx, bias, a, b, beta=1, alpha=1):
    """bias + a @ b, as nn.Linear's decomposition writes it."""
    if beta != 1 or alpha != 1:
        cx.refuse(f"with beta={beta}, alpha={alpha}: only 1 and 1 are supported")
    w = _weight_of(cx, b)
    if w is None or cx.value(bias).param is None:
        cx.refuse("is supported only as bias + x @ weight.t()")
    cx.emit(ir.Linear(cx.rows(a), w, cx.param(bias, "col", beside=True)))


# --- elementwise arithmetic with broadcasting ---------------------------------------------------
def _operand(cx, arg, out: tuple) -> str:
    # a block that broadcasts in 2-D: the whole (R, F), a (1, F) row, an (R, 1) column, a cell
    if isinstance(arg, (int, float)):
        return cx.const(arg)
    shape = (1,) * (len(out) - len(cx.value(arg).shape)) + tuple(cx.value(arg).shape)
    whole = shape == out
    row = all(s == 1 for s in shape[:-1]) if shape else True
    col = bool(shape) and shape[-1] == 1 and shape[:-1] == out[:-1]
    if not (whole or row or col):
        cx.refuse(f"broadcasts {cx.value(arg).shape} to {out}: only a whole tensor, a row of "
                  "features, a column or a scalar is supported")
    return cx.rows(arg)


def _binary(cls, swap: bool = False) -> Callable:
    def lower(cx, a, b, alpha=1, rounding_mode=None):
        if cls in (ir.Times, ir.Over) and heads.on_parts(cx, a) and not swap:
            return heads.scale_parts(cx, a, b)   # per-head scores times a number
        if cls is ir.Times and heads.on_parts(cx, b):
            return heads.scale_parts(cx, b, a)
        if cls is ir.Times and heads.rotary(cx):
            return None                          # q*cos + rotate_half(q)*sin: one Rotary op
        if alpha != 1 or rounding_mode is not None:
            cx.refuse("with alpha or rounding_mode is not supported")
        out = tuple(cx.node.meta["val"].shape)
        left, right = (b, a) if swap else (a, b)
        cx.emit(cls(_operand(cx, left, out), _operand(cx, right, out)))
    return lower


# --- activations: same block as their input, one cell each -------------------------------------
def _unary(make: Callable) -> Callable:
    def lower(cx, x, *args, **kwargs):
        val = cx.value(x)
        plain = val.param is None and val.cells is None and val.parts is None and val.const is None
        node = val.node if plain else cx.rows(x)
        cx.emit(make(node, *args, **kwargs), block=cx.g.shape(node))
    return lower


def _gelu(x, approximate="none"):
    return ir.Gelu(x, "tanh" if approximate == "tanh" else "erf")


def elu(cx, x, alpha=1.0, scale=1.0, input_scale=1.0):
    """ELU; torch's SELU form (scale, input_scale) is not."""
    if scale != 1 or input_scale != 1:
        cx.refuse(f"with scale={scale}, input_scale={input_scale} is not supported")
    _unary(lambda node: ir.Elu(node, float(alpha)))(cx, x)


# --- rows: softmax, norms, reductions -----------------------------------------------------------
def _row_softmax(op, name: str):
    # softmax and log_softmax over the last dim: the row max and sum exp beside x, then ``op``
    def lower(cx, x, dim, half_to_float=False):
        if heads.on_parts(cx, x) and op is ir.Softmax:
            return heads.softmax(cx, x, dim)
        _last_dim_only(cx, dim, name)
        causal = cx.value(x).causal    # masked scores: blank future cells, p = 0 there
        if causal and op is not ir.Softmax:
            cx.refuse("of masked scores: only softmax reads blank (masked) cells")
        x = cx.rows(x)
        n = cx.g.shape(x)[0]
        mx = cx.emit(ir.RowMax(x, causal=causal), (n, 1), "max")
        total = cx.emit(ir.RowSumExp(x, mx, causal=causal), (n, 1), "sum", "sum exp")
        cx.emit(op(x, mx, total, causal=causal) if causal else op(x, mx, total))
    lower.__doc__ = f"{name} along the last dim: row max, sum exp, then {op.__name__} cells."
    return lower


softmax = _row_softmax(ir.Softmax, "softmax")            # exp(x - max) / sum exp
log_softmax = _row_softmax(ir.LogSoftmax, "log_softmax")  # x - max - ln(sum exp)


def layer_norm(cx, x, normalized_shape, weight=None, bias=None, eps=1e-5, cudnn=True):
    """Row mean | variance beside x, normalised, then * gain + bias (weights as (1, F) rows)."""
    if len(normalized_shape) != 1:
        cx.refuse(f"over {list(normalized_shape)}: only the last dim is supported")
    x = cx.rows(x)
    n, width = cx.g.shape(x)
    mean = cx.emit(ir.RowMean(x), (n, 1), "mean")
    var = cx.emit(ir.RowVar(x, mean), (n, 1), "variance")
    if weight is None and bias is None:
        return cx.emit(ir.Normalize(x, mean, var, float(eps)))
    norm = cx.emit(ir.Normalize(x, mean, var, float(eps)), (n, width), "normalised")
    gain = cx.param(weight, "row") if weight is not None else cx.const(1.0)
    cx.emit(ir.ScaleShift(norm, gain, cx.param(bias, "row") if bias is not None else None))


def batch_norm(cx, x, weight, bias, mean, var, training, momentum=0.1, eps=1e-5, cudnn=True):
    """Inference batch norm of (N, C): running mean and var, gain and bias as weight cells."""
    if training:
        cx.refuse("in training mode is not supported: export the model in eval()")
    if len(cx.value(x).shape) != 2:
        cx.refuse(f"on shape {cx.value(x).shape}: only (N, C) features are supported")
    cx.emit(ir.BatchNorm(cx.rows(x), cx.param(mean, "row"), cx.param(var, "row"),
                         cx.param(weight, "row") if weight is not None else None,
                         cx.param(bias, "row") if bias is not None else None, float(eps)))


def _reduce(row_op, col_op, what: str) -> Callable:
    def lower(cx, x, dims=None, keepdim=False, dtype=None):
        shape = cx.value(x).shape
        rank = len(shape)
        dims = sorted({_dim(cx, d, rank) for d in (dims if dims is not None else range(rank))})
        if dims == [rank - 1]:          # along each row: (R, F) -> (R, 1)
            node = cx.rows(x)
            return cx.emit(row_op(node), (cx.g.shape(node)[0], 1))
        others = [s for d, s in enumerate(shape[:-1]) if d not in dims]
        if len(dims) == 1 and dims[0] < rank - 1 and math.prod(others) == 1:
            return cx.emit(col_op(cx.rows(x)), (1, shape[-1]))  # down the rows: (1, F)
        cx.refuse(f"{what} over dims {dims} of {shape}: only the last dim, or the positions "
                  "of one sample, are supported")
    return lower


# --- no-ops: the same cells ---------------------------------------------------------------------
def view(cx, x, *args, **kwargs):
    """clone, contiguous, alias, detach, a cast to another float type: the same cells (the
    float64 run keeps every float cast at float64, program_run._Recorder)."""
    dtype = kwargs.get("dtype", next((a for a in args if isinstance(a, torch_dtype())), None))
    if dtype is not None and not dtype.is_floating_point and cx.value(x).const is None:
        cx.refuse(f"casts to {dtype}: only float casts of computed values are supported")
    cx.alias(x)


def torch_dtype():
    import torch
    return torch.dtype


def nothing(cx, *args, **kwargs):
    """A metadata check (_assert_tensor_metadata): no value, no cells."""
    cx.env[cx.node.name] = heads.NOTHING


def dropout(cx, x, p=0.5, train=False):
    """A no-op in eval."""
    if train:
        cx.refuse("in training mode is not supported: export the model in eval()")
    cx.alias(x)


def embedding(cx, weight, ids, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    """Each id's row of the table (Lookup); ids are one column of integer cells.  Constant ids
    0, 1, .. T-1 (positions from arange) read the table's first T rows in place (no cells)."""
    val = cx.value(ids)
    if val.const is not None:
        return _constant_ids(cx, weight, ids, np.asarray(val.const).ravel())
    node = val.node
    if cx.g.shape(node)[1] != 1:
        node = cx.rows(ids)
        node = cx.g.add(f"{node}.column", ir.Reshape(node, (math.prod(val.shape), 1)),
                        (math.prod(val.shape), 1), cx.sheet, title=f"{ids.name} as one column")
    cx.emit(ir.Lookup(cx.param(weight, "matrix"), node))


# bookkeeping entries left out of the "supported:" list an error prints
UNLISTED = ("aten._assert_tensor_metadata", "getitem")


def _constant_ids(cx, weight, ids, values) -> None:
    table = cx.param(weight, "matrix")
    start = int(values[0]) if values.size else 0
    if np.array_equal(values, np.arange(start, start + values.size)):
        block = cx.block(table, np.stack(np.meshgrid(
            start + np.arange(values.size), np.arange(cx.g.shape(table)[1]), indexing="ij"), -1))
        cx.env[cx.node.name] = heads.Val(tuple(cx.node.meta["val"].shape), node=block)
        return None
    cx.emit(ir.Lookup(table, cx.constant(ids)))


# --- math, masks, joins -------------------------------------------------------------------------
def power(cx, x, exponent):
    """x ** number; mean(x ** 2, -1) as RMSNorm writes it is one RowMeanSquare (heads.py)."""
    if not isinstance(exponent, (int, float)):
        cx.refuse("raises to a tensor power: only to a number")
    if heads.mean_square(cx):
        return None
    _unary(lambda node: ir.Power(node, float(exponent)))(cx, x)


def amax(cx, x, dim=(), keepdim=False):
    """The max along the last dim (RowMax), one cell per row."""
    dims = list(dim) if isinstance(dim, (list, tuple)) else [dim]
    if len(dims) != 1:
        cx.refuse(f"over dims {dims}: only the last dim is supported")
    _last_dim_only(cx, dims[0], "amax")
    node = cx.rows(x)
    cx.emit(ir.RowMax(node), (cx.g.shape(node)[0], 1))


def rms_norm(cx, x, normalized_shape, weight=None, eps=None):
    """x / sqrt(mean(x ** 2) + eps) * weight along the last dim: mean square beside x."""
    if len(normalized_shape) != 1:
        cx.refuse(f"over {list(normalized_shape)}: only the last dim is supported")
    eps = float(np.finfo(np.float64).eps) if eps is None else float(eps)  # torch's default
    x = cx.rows(x)
    n, width = cx.g.shape(x)
    ms = cx.emit(ir.RowMeanSquare(x), (n, 1), "mean_square", "mean x²")
    if weight is None:
        return cx.emit(ir.RmsNormalize(x, ms, eps))
    norm = cx.emit(ir.RmsNormalize(x, ms, eps), (n, width), "normalised")
    cx.emit(ir.ScaleShift(norm, cx.param(weight, "row")))


def cat(cx, tensors, dim=0):
    """Side by side along the last dim (Concat), stacked along a leading dim that only ones
    precede (StackRows)."""
    shape = tuple(cx.node.meta["val"].shape)
    d = _dim(cx, dim, len(shape))
    parts = tuple(cx.rows(t) for t in tensors)
    if d == len(shape) - 1:
        return cx.emit(ir.Concat(parts))
    if math.prod(shape[:d]) == 1:
        return cx.emit(ir.StackRows(parts))
    cx.refuse(f"along dim {dim} of {shape}: only the last dim or a leading one is supported")


def masked_fill(cx, x, mask, value):
    """x where the (constant) mask is False, else value: -inf above the diagonal of (T, T)
    scores is CausalMask (blank cells); a finite value is a Where over 0/1 constant cells."""
    if heads.on_parts(cx, x):
        return heads.mask_parts(cx, x, mask, value)
    if cx.const_of(mask) is None:
        cx.refuse("with a mask computed from the input: only a constant mask is supported")
    if value == -math.inf:
        return _mask_future(cx, x, heads.is_future(cx, cx.const_of(mask)))
    out = tuple(cx.node.meta["val"].shape)
    cx.emit(ir.Where(_operand(cx, mask, out), cx.const(value), _operand(cx, x, out)))


def where(cx, cond, a, b):
    """a where the (constant) condition holds, else b; -inf in place of the future of
    (T, T) scores is a causal mask (masked_fill's)."""
    if cx.const_of(cond) is None:
        cx.refuse("with a condition computed from the input: only a constant one")
    if b == -math.inf and hasattr(a, "name"):
        keep = np.asarray(cx.const_of(cond), dtype=bool)
        return _mask_future(cx, a, heads.is_future(cx, ~keep))
    out = tuple(cx.node.meta["val"].shape)
    cx.emit(ir.Where(_operand(cx, cond, out), _operand(cx, a, out), _operand(cx, b, out)))


def _mask_future(cx, x, future: bool) -> None:
    # -inf only where a key comes after its query, on a single (T, T) block
    if not future or math.prod(cx.value(x).shape[:-2]) != 1:
        cx.refuse("with -inf outside the causal pattern: only the future of (T, T) scores "
                  "can be masked")
    node = cx.emit(ir.CausalMask(cx.rows(x)))
    cx.env[cx.node.name] = heads.Val(cx.env[cx.node.name].shape, node=node, causal=True)


TABLE: dict[str, Callable] = {
    "aten.linear": linear, "aten.addmm": addmm, "aten.mm": matmul, "aten.matmul": matmul,
    "aten.add": _binary(ir.Add), "aten.sub": _binary(ir.Sub), "aten.mul": _binary(ir.Times),
    "aten.div": _binary(ir.Over), "aten.rsub": _binary(ir.Sub, swap=True),
    "aten.neg": _unary(ir.Negate),
    "aten.relu": _unary(ir.Relu), "aten.tanh": _unary(ir.Tanh), "aten.sigmoid": _unary(ir.Sigmoid),
    "aten.silu": _unary(ir.Silu), "aten.gelu": _unary(_gelu),
    "aten.leaky_relu": _unary(lambda x, slope=0.01: ir.LeakyRelu(x, float(slope))),
    "aten.elu": elu,
    "aten.softplus": _unary(lambda x, beta=1, threshold=20: ir.Softplus(x, float(beta),
                                                                         float(threshold))),
    "aten.softmax": softmax, "aten._softmax": softmax,
    "aten.log_softmax": log_softmax, "aten._log_softmax": log_softmax,
    "aten.layer_norm": layer_norm, "aten.batch_norm": batch_norm,
    "aten.mean": _reduce(ir.RowMean, ir.ColMean, "mean"),
    "aten.sum": _reduce(ir.RowSum, ir.ColSum, "sum"),
    "aten.embedding": embedding,
    "aten.dropout": dropout, "aten.clone": view, "aten.contiguous": view, "aten.alias": view,
    "aten.detach": view, "aten.to": view, "aten._to_copy": view, "aten.type_as": view,
    "aten._assert_tensor_metadata": nothing,
    "aten.exp": _unary(ir.Exp), "aten.log": _unary(ir.Log), "aten.sqrt": _unary(ir.Sqrt),
    "aten.rsqrt": _unary(ir.Rsqrt), "aten.cos": _unary(ir.Cos), "aten.sin": _unary(ir.Sin),
    "aten.pow": power, "aten.amax": amax, "aten.rms_norm": rms_norm, "aten.cat": cat,
    "aten.masked_fill": masked_fill, "aten.where": where,
    "aten.scaled_dot_product_attention": heads.sdpa, "aten.bmm": matmul,
    **VIEW_TABLE,  # view, reshape, transpose, select, slice, split, expand ...: no cells
    **CONV_TABLE,   # conv1d/2d, max and average pooling over (C*H, W) feature-map blocks
}
