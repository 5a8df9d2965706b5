"""Checkpoint readers: one per format, each returning a sheetnet payload dict
({"architecture", "config", "state_dict", "metadata"}) that ``capture`` lowers.

Every reader loads without executing code from the file (``weights_only=True``)."""
from __future__ import annotations

import os
from typing import Callable

from ..checkpoint import load_checkpoint
from ..errors import SheetnetError

READERS: dict[str, Callable[[str], dict]] = {
    "sheetnet": load_checkpoint,
}


def load(path: str | os.PathLike, fmt: str | None = None) -> dict:
    """Read a model file in format ``fmt`` (default: sheetnet's own).

    Raises:
        SheetnetError: unknown format, or the file cannot be read as that format.
    """
    fmt = fmt or "sheetnet"
    if fmt not in READERS:
        raise SheetnetError(f"format {fmt!r} is not supported; supported: {', '.join(READERS)}")
    return READERS[fmt](str(path))
