"""Export options in one place, defaults commented."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ExportOptions:
    style: str = "cells"          # "cells": one readable formula per cell; "arrays": MMULT blocks
    force: bool = False           # overwrite an existing output file
    fmt: str | None = None        # checkpoint format (loaders.FORMATS); None = detect it ("auto")
    meta: str | None = None       # GPT formats: meta.pkl with the vocabulary (None = one beside)
    activations: str | None = None  # bare Sequential state dict: "relu,tanh" between the Linears
    input_value: float | None = None  # sqrt net: the x written into the input cell (default 2.0)
    prompt: str | None = None     # text models: the prompt / word written into the input cell
    tokens: list[int] | None = None   # GPT: token ids instead of a prompt
    context: int | None = None    # GPT: positions the sheets compute (None = block_size)


TOLERANCE = 1e-9  # verify: max |workbook - PyTorch float64| per cell
