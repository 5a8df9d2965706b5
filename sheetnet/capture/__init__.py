"""nn.Module -> ir.Graph.  One lowering per model family, chosen by the checkpoint's architecture.

A lowering builds the graph (nodes, their sheets and labels) and records in each node's ``ref``
which PyTorch intermediate it must equal; ``verify`` runs the model and compares them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..errors import SheetnetError
from ..ir.graph import Graph


@dataclass
class Captured:
    """A model ready to export: the torch module, its graph and how to trace it in PyTorch."""
    model: Any
    graph: Graph
    # torch_trace(model, graph, input_values) -> {ref: float64 array}; see verify.py
    trace: Callable


_LOWERINGS: dict[str, Callable[..., Captured]] = {}


def register(architecture: str):
    """Decorator: ``@register("gpt") def capture_gpt(payload, options) -> Captured``."""
    def deco(fn):
        _LOWERINGS[architecture] = fn
        return fn
    return deco


def capture(payload: dict, options=None) -> Captured:
    """Lower a loaded checkpoint (see loaders) into a Captured graph.

    Raises:
        SheetnetError: the architecture has no lowering.
    """
    from . import families  # noqa: F401  (registers the lowerings)
    arch = payload.get("architecture")
    if arch not in _LOWERINGS:
        raise SheetnetError(f"architecture {arch!r} is not supported; supported: "
                            + ", ".join(sorted(_LOWERINGS)))
    return _LOWERINGS[arch](payload, options)
