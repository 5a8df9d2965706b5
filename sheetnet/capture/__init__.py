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

__all__ = ["Captured", "capture", "capture_in_memory"]

# the source format recorded for a module lowered by torch.export: there is no file to re-read,
# so verify must be handed the module itself
TORCH_EXPORT = "torch-export"


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


def capture_in_memory(model: object, example_inputs=None, options=None) -> tuple[dict, Captured]:
    """Lower an nn.Module handed over in memory (``sheetnet.export(model, ...)``).

    A plain nn.Sequential (loaders.sequential.is_plain_sequential) takes the path a saved one
    takes, through its "mlp" payload; any other module goes to the torch.export front end.

    Args:
        model: the module.
        example_inputs: a tuple of the tensors its forward takes (one tensor is taken as a
            1-tuple); optional for a plain Sequential, whose single row (shape (in,) or (1, in))
            is then written into the Input sheet instead of zeros.
        options: ExportOptions.
    Returns:
        (payload, captured); the payload's metadata["source_format"] says how verify re-reads
        the model ("mlp-module", or TORCH_EXPORT: from the module only).
    Raises:
        SheetnetError: not an nn.Module, example_inputs missing or of the wrong shape, or a
            module the front end cannot lower.
    """
    from torch import nn  # here: ``import sheetnet`` must not import torch
    from ..loaders.sequential import is_plain_sequential, payload_from_module
    from ..loaders.source import payload as make_payload
    if not isinstance(model, nn.Module):
        raise SheetnetError(f"model must be an nn.Module or the path of a checkpoint, not a "
                            f"{type(model).__module__}.{type(model).__name__}")
    inputs = None if example_inputs is None else _as_tuple(example_inputs)
    if is_plain_sequential(model):
        from .families import LOWERINGS
        payload = payload_from_module(model)
        width = next(spec["in"] for spec in payload["config"]["layers"] if spec["type"] == "linear")
        batch = None if inputs is None else _example_row(inputs, width)
        return payload, LOWERINGS["mlp"](payload, options, batch=batch)
    if inputs is None:
        raise SheetnetError(f"example_inputs are needed for a {type(model).__name__} (not a "
                            "plain nn.Sequential): a tuple of the tensors its forward takes")
    from .torch_export import capture_module
    captured = capture_module(model, inputs, options)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return make_payload(TORCH_EXPORT, {}, state, {"source_format": TORCH_EXPORT}), captured


def _as_tuple(example_inputs) -> tuple:
    # one tensor (the common case in a notebook) or a tuple / list of them
    return tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)


def _example_row(inputs: tuple, width: int):
    # a plain Sequential's example: one row of ``width`` finite numbers, as float64 (1, width)
    import numpy as np
    import torch
    try:
        x = [torch.as_tensor(v).detach().to(torch.float64).numpy() for v in inputs]
    except (TypeError, ValueError, RuntimeError) as exc:
        raise SheetnetError(f"example_inputs must be tensors: {exc}".splitlines()[0]) from None
    if len(x) != 1 or x[0].shape not in ((width,), (1, width)):
        shapes = ", ".join(str(tuple(v.shape)) for v in x)
        raise SheetnetError(f"example_inputs: this Sequential takes one input of shape ({width},) "
                            f"or (1, {width}), got {len(x)} of shape {shapes or '()'}")
    if not np.isfinite(x[0]).all():
        raise SheetnetError("example_inputs hold NaN or infinity")
    return x[0].reshape(1, width)
