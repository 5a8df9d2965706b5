"""Numbers as cell text: the shortest text that reads back as the same float64, or as the same
float32 (8 significant digits, 9 where 8 would not round-trip), decided for a whole row at once;
and how a block of numbers shows: a fixed number of decimals that fits its column (the cell
keeps the exact value; a format changes only what is shown)."""
from __future__ import annotations

import math

import numpy as np

GAP = 2          # characters left blank between neighbouring numbers (General fills the column)
SIGNIFICANT = 4  # digits shown of a block's largest value, when the column has room


def block_format(values: np.ndarray, width: float) -> str | None:
    """A fixed-decimals format ("0.000") for a block of numbers shown in columns ``width``
    characters wide: every value's text leaves GAP characters blank; the smallest non-zero
    value keeps two significant digits (one if two do not fit), so 2.6e-05 never reads 0.0000;
    the largest shows SIGNIFICANT digits where there is room.

    Args:
        values: the block (any shape; non-finite values are ignored).
        width: the narrowest of the block's columns, in characters.
    Returns:
        the format code, or None where no fixed format fits, or the block is whole numbers
        or zeros (General shows those best, and shows an edit in full).
    """
    stats = _magnitudes(values)
    if stats is None:
        return None
    lo, hi, negative = stats
    room = width - GAP - (1 if negative else 0) - 1             # less the sign and the point
    big = SIGNIFICANT - 1 - math.floor(math.log10(hi))          # decimals for the largest
    for digits in (2, 1):                                       # of the smallest
        decimals = max(digits - 1 - math.floor(math.log10(lo)), big, 1)
        whole = len(f"{hi:.{decimals}f}".split(".")[0])         # after rounding: 9.99996 -> 10
        if whole + decimals <= room:
            return "0." + "0" * decimals
    return None


def _magnitudes(values) -> tuple[float, float, bool] | None:
    """(smallest and largest non-zero |value|, any negative?) over the finite values, or None
    when they are all whole numbers (zeros included).  Read a few rows at a time: a GPT-2
    weight block is 38M float32 values, whose float64 copy alone would be 300 MB."""
    arr = np.asarray(values)
    arr = arr.reshape(len(arr), -1) if arr.ndim > 1 else arr.reshape(1, -1)
    step = max(1, (1 << 16) // max(1, arr.shape[1]))
    lo, hi, negative, whole = np.inf, 0.0, False, True
    for k in range(0, len(arr), step):
        a = arr[k:k + step].astype(np.float64).ravel()
        a = a[np.isfinite(a) & (a != 0)]
        negative = negative or bool((a < 0).any())
        a = np.abs(a)
        if a.size:
            lo, hi = min(lo, float(a.min())), max(hi, float(a.max()))
            whole = whole and bool((a == np.round(a)).all())
    return None if whole else (lo, hi, negative)


def number_text(precision: str):
    """A function: list of floats -> their texts.

    "float64": the shortest text that reads back as exactly the same float64 (repr).
    "float32": the shortest text that reads back as the same float32 (8 significant digits, 9
    where 8 do not round-trip): 40% fewer zipped bytes for float32 weights, which cast back to
    float32 bit for bit; read as float64 they differ from the weights by < 6e-8 relative.
    """
    if precision == "float64":
        def shortest(values):
            return list(map(repr, values))
        shortest.precision = precision
        return shortest
    if precision != "float32":
        raise ValueError(f"precision must be float64 or float32, not {precision!r}")

    def short32(values):
        texts = ["%.8g" % v for v in values]
        exact = np.asarray(values, dtype=np.float32)
        for k in np.flatnonzero(np.array(texts, dtype=np.float32) != exact):
            texts[k] = "%.9g" % values[k]
        return texts
    short32.precision = precision  # float32 blocks take the faster _needs_nine route
    return short32


class NineDigits:
    """row k of a block -> its _needs_nine mask (float32 text of a float32 block) or None,
    computed a chunk of rows at a time (numpy's per-call cost on one row was 40% of the work)."""
    CELLS = 1 << 14  # per chunk: 128 KB float64 temporaries that stay in cache (1 MB: ~15% slower)

    def __init__(self, arr: np.ndarray, fmt):
        float32 = getattr(fmt, "precision", "") == "float32" and arr.dtype == np.float32
        self.arr = arr if float32 and arr.size else None
        self.rows = max(1, self.CELLS // max(1, arr.shape[1])) if arr.ndim == 2 else 1
        self.start, self.mask = -1, None

    def __call__(self, k: int):
        if self.arr is None:
            return None
        if self.mask is None or not self.start <= k < self.start + self.rows:
            self.start = k
            self.mask = _needs_nine(self.arr[k:k + self.rows])
        return self.mask[k - self.start]


def _patterns(nine: np.ndarray) -> list[str]:
    pats = ["%.8g"] * len(nine)
    for k in np.flatnonzero(nine):
        pats[k] = "%.9g"
    return pats


def _float32_patterns(values: np.ndarray) -> list[str]:
    """One printf pattern per float32 value: "%.8g" or "%.9g" (see _needs_nine)."""
    return _patterns(_needs_nine(values))


def _needs_nine(values: np.ndarray) -> np.ndarray:
    """True where a float32 value's text needs 9 significant digits: "%.8g" is used only where 8
    are known to read back as the same float32 (9 always do).

    Vectorised, so that a row is formatted with a single ``%`` (~2x faster than testing each
    text by parsing it back).  A value is "known" when, computed in float64, its 8-digit rounding
    m * 10**(e-7) is not near a decimal tie and lies within 0.49 of a float32 step of it: float64's
    own errors (~1e-16 relative) are far below both margins, so printf's digits are m and any
    correctly rounding reader gets back the same float32.  About 1.5% of random weights take 9.
    """
    x = np.abs(values.astype(np.float64))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        scale = 10.0 ** (7 - np.floor(np.log10(x)))
        scaled = x * scale
        m = np.rint(scaled)
        err = m / scale - x                               # the 8-digit text minus the value
        a32 = np.abs(values)
        up = np.spacing(a32).astype(np.float64)           # float32 step above the value
        down = (a32 - np.nextafter(a32, np.float32(0))).astype(np.float64)  # and below
        ok = ((m >= 1e7) & (m < 1e8) & (np.abs(scaled - np.floor(scaled) - 0.5) > 1e-6)
              & np.where(err >= 0, err < 0.49 * up, -err < 0.49 * down))
    return ~(ok | (x == 0))
