"""What a reader reads: the path the user gave, the hints given with it, and the payload it returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..checkpoint import FORMAT, VERSION
from .safe import torch_load

_UNREAD = object()


@dataclass
class Source:
    """A model file or folder, and the hints given with it."""
    path: Path
    meta: Path | None = None        # GPT formats: a meta.pkl with the vocabulary (default: beside)
    activations: str | None = None  # a bare Sequential state dict: activations between the Linears
    _content: object = field(default=_UNREAD, repr=False)

    def content(self) -> object:
        """The torch file's content, loaded once and safely (see ``safe.torch_load``)."""
        if self._content is _UNREAD:
            self._content = torch_load(self.path)
        return self._content


def payload(architecture: str, config: dict, state_dict: dict, metadata: dict) -> dict:
    """A sheetnet payload, as ``loaders.load_checkpoint`` returns one."""
    return {"format": FORMAT, "version": VERSION, "architecture": architecture, "config": config,
            "state_dict": state_dict, "metadata": metadata}


def is_state_dict(obj: object) -> bool:
    """A non-empty dict of name -> tensor."""
    return (isinstance(obj, dict) and bool(obj)
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()))


def describe(obj: object) -> str:
    """A short description of a loaded object, for "cannot tell the format" errors."""
    if isinstance(obj, dict):
        keys = [str(k) for k in list(obj)[:6]]
        more = f", ... ({len(obj)} keys)" if len(obj) > 6 else ""
        return f"a dict with keys {', '.join(keys) or '(none)'}{more}"
    return f"a {type(obj).__module__}.{type(obj).__name__}"
