"""View lowerings of the torch.export front end (rows of aten.TABLE): no cells of their own.

A view moves the map ``Val.cells`` (each element's (row, col) in the block holding it) the way
torch moves strides: reshape reshapes it, transpose / permute transpose it, select / slice /
split index it, unsqueeze / expand broadcast it.  Any view is then exact, whatever it does; an
op that reads one gets the block, an ir.View rectangle of it or a Gather (torch_export.block).
A weight keeps being read in place where it can (reshape, .t() before a matrix product).
"""
from __future__ import annotations

import numpy as np

from .val import Val

_END = 2 ** 62  # torch writes slice(x, d, a) to the end as a huge int


def _out_shape(cx) -> tuple[int, ...]:
    return tuple(int(s) for s in cx.node.meta["val"].shape)


def _name(cx) -> str:
    return cx.node.target.overloadpacket.__name__   # "permute", "chunk"


def _dim(d: int, rank: int) -> int:
    return d + rank if d < 0 else d


def _moved(cx, x, fn) -> None:
    # the fx node is x's cells moved by ``fn`` (cells (*shape, 2) -> cells (*out shape, 2))
    node, cells = cx.cells(x)
    cells = np.ascontiguousarray(fn(cells))
    shape = _out_shape(cx)
    if cells.shape[:-1] != shape:
        cx.refuse(f"moved {tuple(cx.value(x).shape)} to {cells.shape[:-1]}, torch says {shape}")
    cx.env[cx.node.name] = Val(shape, node=node, cells=cells)


def reshape(cx, x, *args, **kwargs):
    """view / reshape / flatten / (un)squeeze: a weight stays a weight (read as a matrix
    later), a computed tensor relabels its cells in row-major order."""
    val = cx.value(x)
    if val.param is not None or (val.cells is None and val.parts is None and val.const is None):
        return cx.alias(x)
    shape = _out_shape(cx)
    _moved(cx, x, lambda c: c.reshape(*shape, 2))


def unsqueeze(cx, x, dim):
    """A new dim of size 1 anywhere (no cells)."""
    reshape(cx, x)


def permute(cx, x, *dims):
    """transpose(a, b), permute(dims), t(): a weight's .t() is read in place by the matrix
    product after it; any other tensor's cells are transposed (no cells of its own)."""
    val, out = cx.value(x), _out_shape(cx)
    rank = len(val.shape)
    if val.param is not None and rank == 2 and out == tuple(val.shape)[::-1]:
        return cx.alias(x, transposed=not val.transposed)
    if _name(cx) == "permute":
        perm = [_dim(d, rank) for d in dims[0]]
    elif len(dims) == 2:
        perm = list(range(rank))
        a, b = _dim(dims[0], rank), _dim(dims[1], rank)
        perm[a], perm[b] = perm[b], perm[a]
    else:
        perm = list(range(rank))[::-1]
    _moved(cx, x, lambda c: c.transpose(*perm, rank))


def select(cx, x, dim, index):
    """x[..., index, ...] along ``dim``."""
    rank = len(cx.value(x).shape)
    d = _dim(dim, rank)
    _moved(cx, x, lambda c: np.take(c, index, axis=d))


def slice_(cx, x, dim=0, start=None, end=None, step=1):
    """x[..., start:end:step, ...] along ``dim``."""
    rank = len(cx.value(x).shape)
    d = _dim(dim, rank)
    end = None if end is not None and end >= _END else end
    _moved(cx, x, lambda c: c[(slice(None),) * d + (slice(start, end, step),)])


def expand(cx, x, sizes, implicit=False):
    """A dim of size 1 repeated (GQA's key/value heads): each copy reads the same cells."""
    shape = _out_shape(cx)
    _moved(cx, x, lambda c: np.broadcast_to(c, (*shape, 2)))


def repeat_interleave(cx, x, repeats, dim=None, output_size=None):
    """Each index of ``dim`` repeated ``repeats`` times (GQA's repeat_kv written this way)."""
    if not isinstance(repeats, int) or dim is None:
        cx.refuse("is supported only with a whole number of repeats along one dim")
    d = _dim(dim, len(cx.value(x).shape))
    _moved(cx, x, lambda c: np.repeat(c, repeats, axis=d))


def split(cx, x, sizes, dim=0):
    """split / split_with_sizes / chunk: a list of views; getitem picks one."""
    val = cx.value(x)
    rank = len(val.shape)
    d = _dim(dim, rank)
    total = val.shape[d]
    if isinstance(sizes, int):
        if _name(cx) == "chunk":   # chunk(n): pieces of ceil(total / n)
            sizes = -(-total // sizes)
        sizes = [sizes] * (total // sizes) + ([total % sizes] if total % sizes else [])
    node, cells = cx.cells(x)
    pieces, start = [], 0
    for size in sizes:
        part = np.ascontiguousarray(cells[(slice(None),) * d + (slice(start, start + size),)])
        pieces.append(Val(part.shape[:-1], node=node, cells=part))
        start += size
    cx.env[cx.node.name] = tuple(pieces)


def getitem(cx, pieces, k):
    """One piece of a split."""
    got = cx.env[pieces.name]
    if not isinstance(got, tuple):
        cx.refuse(f"indexes {pieces.name}, which is not a list of tensors")
    cx.env[cx.node.name] = got[k]


TABLE = {
    "aten.view": reshape, "aten.reshape": reshape, "aten._unsafe_view": reshape,
    "aten.flatten": reshape, "aten.squeeze": reshape, "aten.unsqueeze": unsqueeze,
    "aten.t": permute, "aten.transpose": permute, "aten.permute": permute,
    "aten.select": select, "aten.slice": slice_, "aten.expand": expand,
    "aten.repeat_interleave": repeat_interleave,
    "aten.split": split, "aten.split_with_sizes": split, "aten.chunk": split,
    "getitem": getitem,
}
