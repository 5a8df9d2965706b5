"""Export options in one place, defaults commented."""
from __future__ import annotations

from dataclasses import dataclass

from .a1 import MAX_CELL_CHARS
from .errors import SheetnetError

# export refuses a workbook whose estimated LibreOffice load + recalculation (pipeline.py's
# estimated_recalc_s, which inspect reports too) passes this, unless --max-recalc says more
MAX_RECALC_S = 600.0


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
    context: int | None = None    # GPT: positions the sheets compute (None = the block size up
                                  # to capture/gpt_body.py's DEFAULT_CONTEXT, more if the prompt needs)
    lens: bool | None = None      # GPT: the Logit lens sheet (None = on while its logits stay under
                                  # capture/logit_lens.py's LENS_BUDGET cells)
    precision: str = "auto"       # weight text: "float64" (shortest exact), "float32" (shortest
                                  # text that reads back as the same float32), "auto" (below)
    max_recalc: float | None = MAX_RECALC_S  # export: refuse a workbook LibreOffice would take
                                  # longer to recalculate (seconds, estimated); None = no limit

    def check(self) -> None:
        """Refuse what no model could take, before any file is read.

        Raises:
            SheetnetError: an unknown style or precision, a prompt longer than a cell holds, or
                a max_recalc that is not above 0.
        """
        if self.style not in STYLES:
            raise SheetnetError(f"style {self.style!r} is not one of: {', '.join(STYLES)}")
        if self.precision not in PRECISIONS:
            raise SheetnetError(f"precision {self.precision!r} is not one of: "
                                f"{', '.join(PRECISIONS)}")
        if self.prompt is not None and len(self.prompt) > MAX_CELL_CHARS:
            raise SheetnetError(f"the prompt is {len(self.prompt):,} characters long; a cell "
                                f"holds at most {MAX_CELL_CHARS:,} (Excel's limit)")
        if self.max_recalc is not None and not self.max_recalc > 0:
            raise SheetnetError(f"--max-recalc must be above 0 seconds, not {self.max_recalc:g}")


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

# Estimated LibreOffice load + recalculation (export.estimated_recalc_s): loading weight cells
# dominates big models (bench_scale.py: GPT-2 small's 124M weights, 124 s; 17M, 16 s), formula
# cells small ones (bench_style.py: ~15 us per cell formula, ~5 us per cell of an array formula).
# Within ~25% for the measured shapes from 1M weights up; small books take a fixed ~0.3 s more.
LOAD_S_PER_WEIGHT = 1.0e-6
RECALC_S_PER_CELL = {"cells": 15e-6, "arrays": 5e-6}
