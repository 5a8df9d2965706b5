"""Convolution and pooling lowerings for the torch.export front end (rows of aten.TABLE).

A batch of one feature map (1, C, H, W) is already the (C*H, W) block every tensor gets
(torch_export.rows_block): each channel an H x W picture, channels stacked top to bottom, in
torch's own order, so nn.Flatten before a Linear is the row-major Reshape ``cx.rows`` adds.
A 1-D map (1, C, L) is (C, L): the same ops with H = 1 and kernels 1 cell tall.

    conv2d(x, w, b, stride, padding)   [Pad2d] -> Conv2d; w as (C_out*C_in*kh, kw), b as (C_out, 1)
    max_pool2d / avg_pool2d            MaxPool2d / AvgPool2d over the same block
"""
from __future__ import annotations

from typing import Callable

from ..ir import graph as ir


def _tuple(value, n: int) -> tuple[int, ...]:
    # torch writes a size as 2, [2] or [2, 2]; stride [] means "the kernel size" (pooling)
    value = [value] if isinstance(value, int) else list(value)
    return tuple(int(v) for v in (value * n if len(value) == 1 else value))


def _map(cx, arg, dims: int) -> tuple[str, int]:
    # (node holding the (C*H, W) block, C); only a batch of one: a sheet shows one sample's maps
    shape = cx.value(arg).shape
    if len(shape) != dims + 2 or shape[0] != 1:
        want = "(1, C, H, W)" if dims == 2 else "(1, C, L)"
        cx.refuse(f"on shape {tuple(shape)}: only a batch of one {want} is supported")
    return cx.rows(arg), int(shape[1])


def _as_2d(dims: int, fill: int, size: tuple[int, ...]) -> tuple[int, int]:
    # a 1-D size (k,) is (fill, k) over one row of the map: kernel and stride 1, padding 0
    return size if dims == 2 else (fill, *size)


def _labels(cx) -> dict:
    # each row of an output map says which channel and which picture row it is
    shape = tuple(cx.node.meta["val"].shape)
    if len(shape) != 4:
        return {}
    return {"row_labels": [f"ch{c} y{y}" for c in range(shape[1]) for y in range(shape[2])]}


def _block(shape) -> tuple[int, int]:
    return (shape[1] * (shape[2] if len(shape) == 4 else 1), shape[-1])


def _conv(dims: int) -> Callable:
    def lower(cx, x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
        if groups != 1:
            cx.refuse(f"with groups={groups}: only groups=1 is supported")
        if any(d != 1 for d in _tuple(dilation, dims)):
            cx.refuse(f"with dilation={list(_tuple(dilation, dims))}: only 1 is supported")
        node, channels = _map(cx, x, dims)
        kernel = tuple(int(k) for k in cx.value(w).shape[2:])
        pad = _as_2d(dims, 0, _padding(cx, padding, kernel, dims))
        kernel, stride = _as_2d(dims, 1, kernel), _as_2d(dims, 1, _tuple(stride, dims))
        if any(pad):  # zeros around each channel, so every window stays inside the block
            rows, cols = cx.g.shape(node)
            block = (rows + 2 * pad[0] * channels, cols + 2 * pad[1])
            node = cx.emit(ir.Pad2d(node, channels, pad), block, "padded", beside=False,
                           title=f"{x.name} inside a border of {pad} zeros (padding)")
        op = ir.Conv2d(node, cx.param(w, "blocks"), channels, kernel, stride,
                       cx.param(b, "col", beside=True) if b is not None else None)
        _check_geometry(cx, op, node, channels)
        cx.emit(op, **_labels(cx))
    return lower


def _padding(cx, padding, kernel: tuple[int, ...], dims: int) -> tuple[int, ...]:
    # torch's padding="same" (stride 1) pads (k - 1) / 2 a side: an even kernel pads unevenly
    if padding == "valid":
        return (0,) * dims
    if padding == "same":
        if any(k % 2 == 0 for k in kernel):
            cx.refuse(f"with padding='same' and kernel {list(kernel)}: only odd kernels")
        return tuple((k - 1) // 2 for k in kernel)
    return _tuple(padding, dims)


def convolution(cx, x, w, b, stride, padding, dilation, transposed, output_padding, groups):
    """aten.convolution, as a decomposed conv writes it: conv1d or conv2d by the weight's rank."""
    if transposed:
        cx.refuse("transposed (ConvTranspose) is not supported")
    dims = len(cx.value(w).shape) - 2
    if dims not in (1, 2):
        cx.refuse(f"in {dims} dimensions: only 1 and 2 are supported")
    _conv(dims)(cx, x, w, b, stride, padding, dilation, groups)


def _check_geometry(cx, op, node: str, channels: int) -> None:
    # the block the windows give must be torch's output (ceil_mode or the like would differ)
    height = cx.g.shape(node)[0] // channels
    rows = (height - op.kernel[0]) // op.stride[0] + 1
    cols = (cx.g.shape(node)[1] - op.kernel[1]) // op.stride[1] + 1
    shape = tuple(cx.node.meta["val"].shape)
    if (shape[1] * rows, cols) != _block(shape):
        cx.refuse(f"makes {shape}; its windows give {shape[1]} x {rows} x {cols}")


def max_pool(dims: int) -> Callable:
    def lower(cx, x, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
        if any(d != 1 for d in _tuple(dilation, dims)):
            cx.refuse(f"with dilation={list(_tuple(dilation, dims))}: only 1 is supported")
        _pool(cx, ir.MaxPool2d, dims, x, kernel_size, stride, padding)
    return lower


def avg_pool(dims: int) -> Callable:
    def lower(cx, x, kernel_size, stride=(), padding=0, ceil_mode=False,
              count_include_pad=True, divisor_override=None):
        if divisor_override is not None:
            cx.refuse(f"with divisor_override={divisor_override} is not supported")
        _pool(cx, ir.AvgPool2d, dims, x, kernel_size, stride, padding)
    return lower


def _pool(cx, cls, dims: int, x, kernel_size, stride, padding) -> None:
    if any(_tuple(padding, dims)):
        cx.refuse(f"with padding={list(_tuple(padding, dims))}: only 0 is supported")
    node, channels = _map(cx, x, dims)
    kernel = _tuple(kernel_size, dims)
    stride = _tuple(stride, dims) if stride else kernel
    kernel, stride = _as_2d(dims, 1, kernel), _as_2d(dims, 1, stride)
    op = cls(node, channels, kernel, stride)
    _check_geometry(cx, op, node, channels)
    cx.emit(op, **_labels(cx))


TABLE: dict[str, Callable] = {
    "aten.conv2d": _conv(2), "aten.conv1d": _conv(1), "aten.convolution": convolution,
    "aten.max_pool2d": max_pool(2), "aten.avg_pool2d": avg_pool(2),
    "aten.max_pool1d": max_pool(1), "aten.avg_pool1d": avg_pool(1),
}
