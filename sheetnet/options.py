"""Export options in one place, defaults commented."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ExportOptions:
    style: str = "auto"           # "cells": one readable formula per cell; "arrays": MMULT blocks;
                                  # "auto" (the CLI's too): arrays above AUTO_ARRAYS_ABOVE
    force: bool = False           # overwrite an existing output file
    fmt: str | None = None        # checkpoint format (loaders.FORMATS); None = detect it ("auto")
    meta: str | None = None       # GPT formats: meta.pkl with the vocabulary (None = one beside)
    activations: str | None = None  # bare Sequential state dict: "relu,tanh" between the Linears
    input_value: float | None = None  # sqrt net: the x written into the input cell (default 2.0)
    prompt: str | None = None     # text models: the prompt / word written into the input cell
    tokens: list[int] | None = None   # GPT: token ids instead of a prompt
    context: int | None = None    # GPT: positions the sheets compute (None = block_size)
    precision: str = "auto"       # weight text: "float64" (shortest exact), "float32" (shortest
                                  # text that reads back as the same float32), "auto" (below)


TOLERANCE = 1e-9  # verify: max |workbook - PyTorch float64| per cell
# verify, a workbook written with precision "float32": its weight cells read back as float64
# differ from the weights by < 6e-8 relative (their float32 cast is exact), which moves each
# tensor by about that fraction of its size, times what the layers amplify (GPT-2 small, random
# weights: logits 8.7e-8 off; a tiny GPT with weights ~0.6: 8e-6 on its logits).  So each tensor
# is compared at TOLERANCE_FLOAT32 x max(1, its largest |value|); 1e-9 would fail on that alone.
TOLERANCE_FLOAT32 = 1e-6

# --precision auto: "float32" when the model has more weight cells than this and every weight is
# float32 or narrower (its float32 text is then exact as float32), else "float64".  float64 text
# (repr) takes ~11.6 zipped bytes per random weight, float32 text ~7 and formats ~2x faster:
# GPT-2 small (124M weights) is ~1.4 GB vs ~0.85 GB.  Below 5M weights a float64 book is under
# ~60 MB and exports in ~5 s, so the smaller models keep verification at 1e-9.
AUTO_FLOAT32_ABOVE = 5_000_000
PRECISIONS = ("float64", "float32", "auto")

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
