"""The registered lowerings: which capture function and which PyTorch trace each family uses."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..models.mlp import mlp_from_checkpoint
from . import Captured, register
from .gpt import lower_gpt
from .mlp import capture_mlp
from .sqrt import capture_sqrt


def hooked_run(model: nn.Module, x: np.ndarray, prefix: str = "") -> dict[str, np.ndarray]:
    """Run ``model`` in float64 on x and record every submodule's output as (N, F) arrays."""
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


def trace_mlp(model: nn.Module, graph, leaves: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """PyTorch intermediates for the main input and, for the sqrt net, the Walk grid."""
    out = hooked_run(model, leaves["x"])
    if "walk.x" in leaves:
        out.update(hooked_run(model, leaves["walk.x"], prefix="walk."))
    return out


@register("textnet")
def _textnet(payload: dict, options=None) -> Captured:
    from .textnet import lower_textnet  # imported here: it reads hooked_run from this module
    return lower_textnet(payload, options)


@register("mlp")
def _mlp(payload: dict, options=None) -> Captured:
    model = mlp_from_checkpoint(payload).double()
    meta = dict(payload.get("metadata", {}))
    if meta.get("task") == "y = sqrt(x)":
        x = getattr(options, "input_value", None)
        graph = capture_sqrt(model, meta, x=2.0 if x is None else x)
    else:
        graph = capture_mlp(model, meta)
    return Captured(model, graph, trace_mlp)


@register("gpt")
def _gpt(payload: dict, options=None) -> Captured:
    # a prompt cell for a character vocabulary, token-id cells otherwise (see gpt.lower_gpt)
    return lower_gpt(payload, options)
