"""Convolution and pooling over feature maps: a window of cells against a kernel of cells.

A feature map (C, H, W) is a (C*H, W) block: each channel an H x W picture, the channels stacked
top to bottom.  That is torch's own row-major order, so flattening (C, H, W) -> C*H*W before a
Linear is a plain row-major Reshape, and every channel still reads as a picture on the sheet.
A 1-D map (C, L) is the same with H = 1: one row per channel.

Weights keep their stored order the same way: (C_out, C_in, kh, kw) is a (C_out*C_in*kh, kw)
block, one kh x kw kernel per (out, in) pair, so a kernel is a plain range beside its window:

    out[co, y, x] = b[co] + sum over ci: SUMPRODUCT(window of channel ci at (y, x), kernel[co, ci])

Padding is a Pad2d node (the map with zeros around each channel) so a window never leaves it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .base import Example, Op, PerCellOnly, Ref, register

_RNG = np.random.default_rng(11)
# (C_in=2, H=5, W=6) as a (10, 6) block; (C_out=3, C_in=2, 3, 2) kernels as an (18, 2) block
MAP, KERNELS, BIAS = _RNG.normal(size=(10, 6)), _RNG.normal(size=(18, 2)), _RNG.normal(size=(3, 1))
_WINDOWS = PerCellOnly("each cell is its own window of the map (no whole-range form without "
                       "copying every window out first)")


def windows(block: np.ndarray, channels: int, kernel, stride) -> np.ndarray:
    """(C*H, W) block -> (C, OH, OW, kh, kw): every window the kernel sees, no padding."""
    maps = block.reshape(channels, -1, block.shape[1])                   # (C, H, W)
    every = sliding_window_view(maps, tuple(kernel), axis=(1, 2))   # (C, H-kh+1, W-kw+1, kh, kw)
    return every[:, ::stride[0], ::stride[1]]


def out_size(size: int, k: int, s: int) -> int:
    """Outputs along one side of a map: windows of k cells every s cells, none overhanging."""
    return (size - k) // s + 1


class _Grid:
    """The geometry the ops share (their fields x, channels, kernel, stride): x is a
    (channels*H, W) block read in kh x kw windows every stride cells."""

    def _window(self, r, c: int, y: int, x: int) -> str:
        # channel c's window under output cell (y, x), as one A1 range
        height = r.shape(self.x)[0] // self.channels
        top, left = c * height + y * self.stride[0], x * self.stride[1]
        return r.span(self.x, (top, top + self.kernel[0]), (left, left + self.kernel[1]))

    def _out_rows(self, r) -> int:
        return out_size(r.shape(self.x)[0] // self.channels, self.kernel[0], self.stride[0])

    def feature_maps(self, shape) -> int:
        """How many channel pictures the output block stacks (shape: node name -> its shape)."""
        return self.channels


@register
@dataclass(frozen=True)
class Conv2d(_Grid, Op):
    """(C_out*OH, OW) = the windows of x (C_in*H, W) against kernels w (C_out*C_in*kh, kw), plus
    the bias b (C_out, 1); no padding (a Pad2d before), dilation 1, groups 1."""
    INPUTS = ("x", "w", "b")
    x: Ref
    w: Ref
    channels: int                 # C_in
    kernel: tuple[int, int]       # (kh, kw)
    stride: tuple[int, int]
    b: Ref | None = None
    array = _WINDOWS

    def feature_maps(self, shape) -> int:
        # C_out: w stacks C_out * C_in kernels of kh rows each
        return shape(self.w)[0] // (self.channels * self.kernel[0])

    def reference(self, v):
        win = windows(v[self.x], self.channels, self.kernel, self.stride)   # (C, OH, OW, kh, kw)
        kernels = v[self.w].reshape(-1, self.channels, *self.kernel)       # (C_out, C, kh, kw)
        out = np.einsum("cyxij,ocij->oyx", win, kernels)                   # (C_out, OH, OW)
        out = out + v[self.b][:, :, None] if self.b else out
        return out.reshape(-1, out.shape[2])

    def formula(self, r, i, j):
        co, y = divmod(i, self._out_rows(r))
        kh, kw = self.kernel
        terms = []
        for c in range(self.channels):
            top = (co * self.channels + c) * kh               # kernel [co, c]'s first row
            kernel = r.span(self.w, (top, top + kh), (0, kw))
            window = self._window(r, c, y, j)
            terms.append(f"{window}*{kernel}" if kh * kw == 1 else
                         f"SUMPRODUCT({window},{kernel})")
        text = "+".join(terms)
        return f"{text}+{r.cell(self.b, co, 0)}" if self.b else text

    @staticmethod
    def example():
        # 2 channels of 5 x 6, 3 x 2 kernels, stride (2, 1): (3, 2, 5) -> a (6, 5) block
        return Example({"x": MAP, "w": KERNELS, "b": BIAS},
                       Conv2d("x", "w", 2, (3, 2), (2, 1), "b"),
                       lambda T, x, w, b: T.nn.functional.conv2d(
                           x.reshape(1, 2, 5, 6), w.reshape(3, 2, 3, 2), b[:, 0],
                           stride=(2, 1)).reshape(6, 5))


@dataclass(frozen=True)
class _Pool(_Grid):
    """Pooling: one number per window of x, the sheet's FUNCTION of its cells (REDUCE in NumPy)."""
    INPUTS = ("x",)
    x: Ref
    channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    array = _WINDOWS

    def reference(self, v):
        out = self.REDUCE(windows(v[self.x], self.channels, self.kernel, self.stride), axis=(3, 4))
        return out.reshape(-1, out.shape[2])

    def formula(self, r, i, j):
        c, y = divmod(i, self._out_rows(r))
        return f"{self.FUNCTION}({self._window(r, c, y, j)})"


@register
@dataclass(frozen=True)
class MaxPool2d(_Pool, Op):
    """(C*OH, OW): the largest cell of each window of x (C*H, W); no padding, dilation 1."""
    FUNCTION, REDUCE = "MAX", staticmethod(np.max)

    @staticmethod
    def example():
        # overlapping windows down (stride 1 < 2 rows), side by side across (stride = 3 cols)
        return Example({"x": MAP}, MaxPool2d("x", 2, (2, 3), (1, 3)),
                       lambda T, x: T.nn.functional.max_pool2d(
                           x.reshape(1, 2, 5, 6), (2, 3), (1, 3)).reshape(8, 2))


@register
@dataclass(frozen=True)
class AvgPool2d(_Pool, Op):
    """(C*OH, OW): the mean of each window of x (C*H, W); no padding (so no count_include_pad)."""
    FUNCTION, REDUCE = "AVERAGE", staticmethod(np.mean)

    @staticmethod
    def example():
        return Example({"x": MAP}, AvgPool2d("x", 2, (2, 2), (2, 2)),
                       lambda T, x: T.nn.functional.avg_pool2d(
                           x.reshape(1, 2, 5, 6), 2).reshape(4, 3))


@register
@dataclass(frozen=True)
class Pad2d(Op):
    """(C*(H+2ph), W+2pw): each channel of x (C*H, W) inside a border of zeros (conv padding)."""
    INPUTS = ("x",)
    x: Ref
    channels: int
    pad: tuple[int, int]
    array = PerCellOnly("each cell is a plain reference to one cell of x, or a zero")

    def feature_maps(self, shape) -> int:
        """How many channel pictures the output block stacks (shape: node name -> its shape)."""
        return self.channels

    def reference(self, v):
        maps = v[self.x].reshape(self.channels, -1, v[self.x].shape[1])   # (C, H, W)
        (ph, pw) = self.pad
        out = np.pad(maps, ((0, 0), (ph, ph), (pw, pw)))
        return out.reshape(-1, out.shape[2])

    def formula(self, r, i, j):
        height = r.shape(self.x)[0] // self.channels
        c, y = divmod(i, height + 2 * self.pad[0])
        y, x = y - self.pad[0], j - self.pad[1]
        inside = 0 <= y < height and 0 <= x < r.shape(self.x)[1]
        return r.cell(self.x, c * height + y, x) if inside else "0"

    @staticmethod
    def example():
        return Example({"x": MAP}, Pad2d("x", 2, (1, 2)),
                       lambda T, x: T.nn.functional.pad(
                           x.reshape(2, 5, 6), (2, 2, 1, 1)).reshape(14, 10))
