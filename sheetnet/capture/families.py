"""The table of lowerings: which capture function (and so which PyTorch trace) each family uses."""
from __future__ import annotations

from typing import Callable

import numpy as np
from torch import nn

from ..models.mlp import mlp_from_checkpoint
from .gpt import lower_gpt
from .hf_llama import lower_hf_llama
from .mlp import capture_mlp
from .sqrt import capture_sqrt, trace_sqrt
from .textnet import lower_textnet
from .trace import Captured, hooked_run


def trace_mlp(model: nn.Module, graph, leaves: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """PyTorch intermediates for the main input and, for the sqrt net, the Walk grid."""
    out = hooked_run(model, leaves["x"])
    if "walk.x" in leaves:
        out.update(hooked_run(model, leaves["walk.x"], prefix="walk."))
    return out


def _mlp(payload: dict, options=None, batch: np.ndarray | None = None) -> Captured:
    # batch: the input row written into the Input sheet (an in-memory module's example input)
    model = mlp_from_checkpoint(payload).double()
    meta = dict(payload.get("metadata", {}))
    if meta.get("task") == "y = sqrt(x)":
        x = getattr(options, "input_value", None)
        graph = capture_sqrt(model, meta, x=2.0 if x is None else x)
        return Captured(model, graph, trace_sqrt)  # its region's slope and a computed Walk grid
    graph = capture_mlp(model, meta, batch)
    return Captured(model, graph, trace_mlp)


# architecture (the loaders' payload["architecture"]) -> lowering(payload, options) -> Captured;
# "gpt" picks a prompt cell for a character vocabulary, token-id cells otherwise (gpt.lower_gpt)
LOWERINGS: dict[str, Callable[..., Captured]] = {
    "textnet": lower_textnet,
    "mlp": _mlp,
    "gpt": lower_gpt,
    "hf-llama": lower_hf_llama,  # a Llama-family HF folder, through the torch.export front end
}
