"""What the torch.export walk holds for each torch value (``Val``), and the block arithmetic
every lowering shares: a tensor's 2-D block, and where each element sits in a row-major block."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Val:
    """A torch value during the walk: the IR node holding its cells (row-major) and its shape.

    A parameter is not placed until an op reads it (``param``: its state-dict key), because the
    op decides its layout; ``transposed``: the weight seen through .t() (read in place by Linear).
    """
    shape: tuple[int, ...]
    node: str | None = None
    param: str | None = None
    transposed: bool = False
    cells: Any = None       # (*shape, 2) ints: each element's (row, col) in node's block; None:
                            # the block holds the tensor in row-major order
    parts: tuple[str, ...] | None = None  # per-head results (.., H, R, C): one (R, C) node each
    const: Any = None       # a folded constant's value (float64, bool or int array)
    causal: bool = False    # (T, T) scores whose future cells are blank (-inf in torch)


NOTHING = Val(())  # what a node that makes no tensor (a metadata assert, a fused step) holds


def rows_block(shape) -> tuple[int, int]:
    """The 2-D block of a tensor shape with its last dim as columns: (..., F) -> (rows, F)."""
    if len(shape) == 0:
        return (1, 1)
    last = int(shape[-1])
    return (math.prod(int(s) for s in shape) // last if last else 0, last)



def row_major(shape, block) -> np.ndarray:
    """Where each element of a tensor of ``shape`` sits in a block holding it row-major:
    (*shape, 2) ints, (row, col)."""
    k = np.arange(math.prod(int(s) for s in shape))
    width = max(int(block[1]), 1)
    return np.stack([k // width, k % width], axis=-1).reshape(*shape, 2)
