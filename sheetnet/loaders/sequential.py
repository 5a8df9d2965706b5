"""Plain PyTorch MLPs: an nn.Sequential saved whole (``torch.save(model)``), or its bare state dict
(``torch.save(model.state_dict())``: keys "0.weight", "0.bias", "2.weight", ...) with the
activations named by the user (``--activations relu,tanh``).

Both become an "mlp" payload whose config lists every layer (models/mlp.py), so the Sequential
rebuilds with its own indices and the sheets name the layers as the user's model does.
"""
from __future__ import annotations

import re

from torch import nn

from ..errors import SheetnetError
from ..models.fit import MAX_LAYERS
from ..models.mlp import LAYER_TYPES, activation_spec, layer_specs
from .source import Source, describe, is_state_dict, payload

_KEY = re.compile(r"^(\d+)\.(weight|bias)$")


def looks_like_sequential(obj: object) -> bool:
    """A state dict whose every key is "<index>.weight" or "<index>.bias"."""
    return is_state_dict(obj) and all(_KEY.match(k) for k in obj)


def read_module(src: Source) -> dict:
    """A whole saved nn.Sequential (of supported layers; see ``safe.MODULE_CLASSES``)."""
    model = src.content()
    if not isinstance(model, nn.Module):
        raise SheetnetError(f"{src.path} does not hold a saved nn.Sequential (found {describe(model)})")
    return payload_from_module(model)


def payload_from_module(model: nn.Module) -> dict:
    """The "mlp" payload of an nn.Sequential of supported layers (or one such layer), whether
    loaded from a file or handed over in memory (``sheetnet.export(model, ...)``): both then
    take the same path.  The weights are copied: the caller's module is left as it is.

    Args:
        model: the Sequential, or a single supported layer (a one-layer Sequential).
    Returns:
        the payload, its metadata's source_format "mlp-module" (what a saved module reads as).
    Raises:
        SheetnetError: a layer that is not supported, named with its path.
    """
    if isinstance(model, LAYER_TYPES):
        model = nn.Sequential(model)
    layers = layer_specs(model)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return payload("mlp", {"layers": layers}, state, {"source_format": "mlp-module"})


def is_plain_sequential(model: object) -> bool:
    """An nn.Sequential (or a single layer) of supported layers whose first layer with weights is
    a Linear: what the "mlp" payload holds, its input width known without an example."""
    if isinstance(model, LAYER_TYPES):
        model = nn.Sequential(model)
    if type(model) is not nn.Sequential or not all(type(m) in LAYER_TYPES for m in model):
        return False
    first = next((m for m in model if not isinstance(m, nn.Identity)), None)
    return isinstance(first, nn.Linear)


def read_state_dict(src: Source) -> dict:
    """A Sequential's bare state dict plus ``src.activations`` (one per gap between Linear
    layers, and optionally one more after the last)."""
    state = src.content()
    if not looks_like_sequential(state):
        raise SheetnetError(f"{src.path} is not the state dict of an nn.Sequential (keys like "
                            f"'0.weight', '0.bias', '2.weight'; found {describe(state)})")
    single = len({k.split(".")[0] for k in state}) == 1   # one Linear: nothing lies between
    if not src.activations and not single:
        raise SheetnetError(f"{src.path} is a bare state dict of an nn.Sequential: say what lies "
                            "between its Linear layers with --activations (e.g. relu,tanh)")
    acts = [activation_spec(a) for a in (src.activations or "").split(",") if a.strip()]
    return payload("mlp", {"layers": sequential_layers(state, acts, src)}, dict(state),
                   {"source_format": "mlp-state-dict", "activations": src.activations or ""})


def sequential_layers(state: dict, acts: list[dict], src: Source) -> list[dict]:
    """Layer specs placing Linear layers at their state-dict indices and ``acts`` between them.

    Indices without weights that are not an activation's (a Dropout, say) become Identity: the
    activation takes the first free index of its gap, and elementwise layers commute with the
    identity (Dropout is the identity at inference).
    """
    index = sorted({int(_KEY.match(k).group(1)) for k in state})
    if index[-1] >= MAX_LAYERS:   # the gaps before it become Identity layers, one each
        raise SheetnetError(f"{src.path}: layer index {index[-1]} is past the {MAX_LAYERS:,} "
                            "layers sheetnet builds")
    width = None
    for i in index:
        w = state.get(f"{i}.weight")
        if w is None or w.dim() != 2:
            raise SheetnetError(f"{src.path}: layer {i} is not a Linear layer (expected a 2-D {i}.weight)")
        if width is not None and w.shape[1] != width:
            raise SheetnetError(f"{src.path}: layer {i} takes {w.shape[1]} inputs but the layer "
                                f"before it gives {width}")
        width = w.shape[0]
    if len(acts) not in (len(index) - 1, len(index)):
        raise SheetnetError(f"{src.path} has {len(index)} Linear layers: --activations names "
                            f"{len(acts)}, expected {len(index) - 1} (one between each two) or "
                            f"{len(index)} (one more after the last)")
    identity = {"type": "identity"}
    layers = [identity] * index[0]
    for k, i in enumerate(index):
        w = state[f"{i}.weight"]
        layers.append({"type": "linear", "in": int(w.shape[1]), "out": int(w.shape[0]),
                       "bias": f"{i}.bias" in state})
        room = index[k + 1] - i - 1 if k + 1 < len(index) else int(k < len(acts))
        gap = [acts[k]] if k < len(acts) else []
        if len(gap) > room:
            if gap[0]["type"] != "identity":
                raise SheetnetError(f"{src.path}: Linear layers {i} and {index[k + 1]} are adjacent; "
                                    f"there is no layer between them for {gap[0]['type']}")
            gap = []
        layers += gap + [identity] * (room - len(gap))
    return layers
