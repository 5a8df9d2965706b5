"""sheetnet's own checkpoint format: a plain dict that loads with ``weights_only=True``.

    {"format": "sheetnet", "version": 1,
     "architecture": "mlp" | "textnet" | "gpt",
     "config": {...},          # plain ints/floats/strs/lists: enough to rebuild the module
     "state_dict": {...},      # name -> tensor
     "metadata": {...}}        # seed, loss, vocabulary, what trained it
"""
from __future__ import annotations

import os
from typing import Any

import torch

from .errors import SheetnetError
from .files import atomic_path, torch_save

FORMAT = "sheetnet"
VERSION = 1


def save_checkpoint(path: str | os.PathLike, architecture: str, config: dict, state_dict: dict,
                    metadata: dict | None = None) -> None:
    """Write a sheetnet checkpoint atomically (temp file in the same folder, then rename).

    Args:
        path: destination ``.pt`` file; its folder must exist.
        architecture: "mlp", "textnet" or "gpt".
        config: plain-typed constructor arguments of the model.
        state_dict: the module's ``state_dict()``; tensors are detached and moved to the CPU.
        metadata: plain-typed extras (seed, final loss, vocabulary ...).
    """
    payload = {
        "format": FORMAT, "version": VERSION, "architecture": architecture,
        "config": dict(config),
        "state_dict": _detached(state_dict),
        "metadata": dict(metadata or {}),
    }
    with atomic_path(path) as tmp:
        torch_save(payload, tmp)  # a full disk is one line, not torch's RuntimeError


def _detached(state_dict: dict) -> dict:
    # CPU copies that keep tied tensors tied (GPT's lm_head is wte): one copy is saved and loaded
    copies: dict[tuple, torch.Tensor] = {}
    out = {}
    for k, v in state_dict.items():
        key = (v.data_ptr(), v.dtype, tuple(v.shape), v.stride())
        if key not in copies:
            copies[key] = v.detach().cpu().clone()
        out[k] = copies[key]
    return out


def check_payload(payload: Any, path: str | os.PathLike) -> dict[str, Any]:
    """``payload`` (read from ``path``) if it is a sheetnet checkpoint, else a SheetnetError."""
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise SheetnetError(f"{path} is not a sheetnet checkpoint (no 'format': 'sheetnet' entry)")
    for key in ("architecture", "config", "state_dict"):
        if key not in payload:
            raise SheetnetError(f"{path} is a damaged sheetnet checkpoint: '{key}' is missing")
    for key in ("config", "state_dict", "metadata"):
        if key in payload and not isinstance(payload[key], dict):
            raise SheetnetError(f"{path} is a damaged sheetnet checkpoint: '{key}' is a "
                                f"{type(payload[key]).__name__}, not a dict")
    return payload

