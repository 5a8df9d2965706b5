"""nn.Module -> ir.Graph.  One lowering per model family, chosen by the checkpoint's architecture.

A lowering builds the graph (nodes, their sheets and labels) and records in each node's ``ref``
which PyTorch intermediate it must equal; ``verify`` runs the model and compares them.

    families.py    the table: architecture -> lowering
    sqrt.py, textnet.py, gpt.py, gpt_tokens.py
                   presets: a family's sheets (Walk, All words, Generate, Prompt ...) composed
                   from the blocks
    mlp.py         an nn.Sequential of Linear and activations, one sheet per layer
    gpt_body.py    the GPT's Embedding, blocks and Output sheets, shared by its two front ends
    blocks.py      generic building blocks (linear, layer norm, attention, MLP, softmax head)
    trace.py       Captured, and the hooked float64 PyTorch run
"""
from __future__ import annotations

from ..errors import SheetnetError
from .trace import Captured

__all__ = ["Captured", "capture"]


def capture(payload: dict, options=None) -> Captured:
    """Lower a loaded checkpoint (see loaders) into a Captured graph.

    Raises:
        SheetnetError: the architecture has no lowering.
    """
    from .families import LOWERINGS  # here: it imports torch and every preset
    arch = payload.get("architecture")
    if arch not in LOWERINGS:
        raise SheetnetError(f"architecture {arch!r} is not supported; supported: "
                            + ", ".join(sorted(LOWERINGS)))
    return LOWERINGS[arch](payload, options)
