"""What a lowering hands verify: the Captured model, and the hooked float64 run most traces use.

Here, not in the package's __init__ or families.py, so that the presets (textnet.py, gpt.py) and
the table of lowerings (families.py) import it one way.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..ir.graph import Graph


@dataclass
class Captured:
    """A model ready to export: the torch module, its graph and how to trace it in PyTorch."""
    model: Any
    graph: Graph
    # torch_trace(model, graph, input_values) -> {ref: float64 array}; see verifier.py
    trace: Callable


def hooked_run(model: nn.Module, x: np.ndarray, prefix: str = "") -> dict[str, np.ndarray]:
    """Run ``model`` in float64 on x and record every submodule's output as (N, F) arrays.

    Args:
        model: the module (converted to float64 in place).
        x: its input, (N, ...).
        prefix: prepended to each submodule's name ("walk." for a second pass).
    Returns:
        {prefix + submodule name: its output reshaped to (N, F)}.
    """
    model = model.double()
    seen: dict[str, np.ndarray] = {}
    hooks = [mod.register_forward_hook(
        lambda m, i, o, key=f"{prefix}{name}": seen.__setitem__(
            key, o.detach().numpy().reshape(o.shape[0], -1).copy()))
        for name, mod in model.named_modules() if name]
    try:
        with torch.no_grad():
            model(torch.as_tensor(np.asarray(x, dtype=np.float64)))
    finally:
        for h in hooks:
            h.remove()
    return seen
