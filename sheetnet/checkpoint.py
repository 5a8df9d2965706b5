"""sheetnet's own checkpoint format: a plain dict that loads with ``weights_only=True``.

    {"format": "sheetnet", "version": 1,
     "architecture": "mlp" | "textnet" | "gpt",
     "config": {...},          # plain ints/floats/strs/lists: enough to rebuild the module
     "state_dict": {...},      # name -> tensor
     "metadata": {...}}        # seed, loss, vocabulary, what trained it
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .errors import SheetnetError
from .files import atomic_path

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
        torch.save(payload, tmp)


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


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a sheetnet checkpoint without executing code from it.

    Raises:
        SheetnetError: missing file, not a torch file, unsafe pickle, or not a sheetnet checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise SheetnetError(f"model file {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt / foreign / unsafe files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SheetnetError(f"{path} is not a loadable PyTorch checkpoint ({first[:200]})") from None
    return check_payload(payload, path)


def check_payload(payload: Any, path: str | os.PathLike) -> dict[str, Any]:
    """``payload`` (read from ``path``) if it is a sheetnet checkpoint, else a SheetnetError."""
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise SheetnetError(f"{path} is not a sheetnet checkpoint (no 'format': 'sheetnet' entry)")
    for key in ("architecture", "config", "state_dict"):
        if key not in payload:
            raise SheetnetError(f"{path} is a damaged sheetnet checkpoint: '{key}' is missing")
    return payload

