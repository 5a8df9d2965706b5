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

from ..ir import graph as ir
from .conv import TABLE as CONV_TABLE


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
    """a (..., K) @ b (K, M); a transposed weight makes it a Linear."""
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
        if alpha != 1 or rounding_mode is not None:
            cx.refuse("with alpha or rounding_mode is not supported")
        out = tuple(cx.node.meta["val"].shape)
        left, right = (b, a) if swap else (a, b)
        cx.emit(cls(_operand(cx, left, out), _operand(cx, right, out)))
    return lower


# --- activations: same block as their input, one cell each -------------------------------------
def _unary(make: Callable) -> Callable:
    def lower(cx, x, *args, **kwargs):
        node = cx.value(x).node if cx.value(x).param is None else cx.rows(x)
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
        _last_dim_only(cx, dim, name)
        x = cx.rows(x)
        n = cx.g.shape(x)[0]
        mx = cx.emit(ir.RowMax(x), (n, 1), "max")
        total = cx.emit(ir.RowSumExp(x, mx), (n, 1), "sum", "sum exp")
        cx.emit(op(x, mx, total))
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


# --- views: no cells of their own ---------------------------------------------------------------
def view(cx, x, *args, **kwargs):
    """reshape, flatten, (un)squeeze, dropout in eval, clone: the same cells relabelled."""
    cx.alias(x)


def dropout(cx, x, p=0.5, train=False):
    """A no-op in eval."""
    if train:
        cx.refuse("in training mode is not supported: export the model in eval()")
    cx.alias(x)


def transpose(cx, x, *dims):
    """t/transpose/permute: a weight's is read in place by the matmul after it; moving only
    dims of size 1 relabels; a computed matrix's gets Transpose cells."""
    val = cx.value(x)
    out = tuple(cx.node.meta["val"].shape)
    if val.param is not None and len(val.shape) == 2 and out == val.shape[::-1]:
        return cx.alias(x, transposed=not val.transposed)
    if [s for s in val.shape if s != 1] == [s for s in out if s != 1] and _keeps_order(cx):
        return cx.alias(x)
    if len(val.shape) == 2:
        return cx.emit(ir.Transpose(cx.rows(x)))
    cx.refuse(f"of shape {val.shape} is not supported: only of a matrix")


def _keeps_order(cx) -> bool:
    # the permutation (from the node's args) keeps the dims larger than 1 in order
    node, val = cx.node, cx.value(cx.node.args[0])
    rank = len(val.shape)
    if op_name(node) == "aten.permute":
        perm = [_dim(cx, d, rank) for d in node.args[1]]
    else:
        perm = list(range(rank))
        if len(node.args) == 3:
            a, b = (_dim(cx, d, rank) for d in node.args[1:3])
            perm[a], perm[b] = perm[b], perm[a]
        else:
            perm.reverse()
    big = [d for d in perm if val.shape[d] != 1]
    return big == sorted(big)


def embedding(cx, weight, ids, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    """Each id's row of the table (Lookup); ids are one column of integer cells."""
    val = cx.value(ids)
    node = val.node
    if cx.g.shape(node)[1] != 1:
        node = cx.rows(ids)
        node = cx.g.add(f"{node}.column", ir.Reshape(node, (math.prod(val.shape), 1)),
                        (math.prod(val.shape), 1), cx.sheet, title=f"{ids.name} as one column")
    cx.emit(ir.Lookup(cx.param(weight, "matrix"), node))


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
    "aten.detach": view, "aten.view": view, "aten.reshape": view, "aten._unsafe_view": view,
    "aten.flatten": view, "aten.unsqueeze": view, "aten.squeeze": view,
    "aten.t": transpose, "aten.transpose": transpose, "aten.permute": transpose,
    **CONV_TABLE,   # conv1d/2d, max and average pooling over (C*H, W) feature-map blocks
}
