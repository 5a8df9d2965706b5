"""Export options in one place, defaults commented."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ExportOptions:
    style: str = "cells"          # "cells": one readable formula per cell; "arrays": MMULT blocks;
                                  # "auto": arrays above AUTO_ARRAYS_ABOVE formula cells
    force: bool = False           # overwrite an existing output file
    fmt: str | None = None        # checkpoint format (loaders.FORMATS); None = detect it ("auto")
    meta: str | None = None       # GPT formats: meta.pkl with the vocabulary (None = one beside)
    activations: str | None = None  # bare Sequential state dict: "relu,tanh" between the Linears
    input_value: float | None = None  # sqrt net: the x written into the input cell (default 2.0)
    prompt: str | None = None     # text models: the prompt / word written into the input cell
    tokens: list[int] | None = None   # GPT: token ids instead of a prompt
    context: int | None = None    # GPT: positions the sheets compute (None = block_size)


TOLERANCE = 1e-9  # verify: max |workbook - PyTorch float64| per cell

# --style auto: "arrays" when the model has more formula cells than this, else "cells".
# Measured (benchmarks/bench_style.py, random GPTs, LibreOffice 7.4 on 2 cores): per formula cell
# "cells" costs ~15 us of load + recalculation and ~7 us of export, "arrays" ~6 us and ~1.5 us.
# At 220k formula cells that is 3.1 s vs 1.4 s to recalculate (1.8 s vs 0.5 s to export); at
# 1.3M, 20 s vs 8 s.  Below ~200k every workbook recalculates within ~3 s either way, so the
# readable per-cell formulas win; above it the wait grows past what readability is worth.
# Weight cells are not counted: they are the same in both styles, and a model with 1.6M weights
# but 27k formula cells recalculated faster as cells (1.8 s) than as arrays (2.4 s).
AUTO_ARRAYS_ABOVE = 200_000
STYLES = ("cells", "arrays", "auto")
