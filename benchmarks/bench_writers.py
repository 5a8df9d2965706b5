"""Weight-cell writers compared: plain openpyxl write_only, XlsxWriter constant_memory, ours.

Weights are most of a model's cells, so the figure that matters is number cells per second.
Prints one row per writer (and checks that ours reads back bit for bit).

    python benchmarks/bench_writers.py [ROWS COLS]      # default 1000 x 1000 = 1M cells

XlsxWriter comes with the "bench" extra (pip install -e '.[bench]'); without it, its row says
skipped.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sheetnet.spec import BookSpec, SheetSpec, load_styles  # noqa: E402
from sheetnet.xlsx import write_xlsx  # noqa: E402


def openpyxl_write_only(arr: np.ndarray, path: str) -> None:
    import openpyxl
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("W")
    for row in arr.tolist():
        ws.append(row)
    wb.save(path)


def xlsxwriter_constant_memory(arr: np.ndarray, path: str) -> None:
    import xlsxwriter
    wb = xlsxwriter.Workbook(path, {"constant_memory": True})
    ws = wb.add_worksheet("W")
    for i, row in enumerate(arr.tolist()):
        ws.write_row(i, 0, row)
    wb.close()


def sheetnet_stream(arr: np.ndarray, path: str, precision: str = "float64") -> None:
    sheet = SheetSpec("W")
    sheet.blocks.append((0, 0, arr, "weight"))
    write_xlsx(BookSpec([sheet], {}), path, load_styles(), precision=precision)


def measure(fn, arr, path) -> tuple[float, float, int]:
    tracemalloc.start()
    start = time.perf_counter()
    fn(arr, path)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak / 2**20, os.path.getsize(path)


def main() -> None:
    rows, cols = (int(a) for a in sys.argv[1:3]) if len(sys.argv) > 2 else (1000, 1000)
    arr = np.random.default_rng(0).normal(size=(rows, cols)).astype(np.float32).astype(np.float64)
    writers = [("openpyxl write_only", openpyxl_write_only),
               ("xlsxwriter constant_memory", xlsxwriter_constant_memory),
               ("sheetnet stream float64", sheetnet_stream),
               ("sheetnet stream float32", lambda a, p: sheetnet_stream(a, p, "float32"))]
    print(f"{rows * cols:,} number cells (float32 weights as float64)")
    print(f"{'writer':<28} {'seconds':>8} {'cells/s':>12} {'peak MB':>8} {'file MB':>8}")
    base = None
    with tempfile.TemporaryDirectory() as tmp:
        for name, fn in writers:
            try:
                s, peak, size = measure(fn, arr, os.path.join(tmp, name.replace(" ", "_") + ".xlsx"))
            except ImportError as exc:
                print(f"{name:<28} skipped: {exc}")
                continue
            rate = rows * cols / s
            base = base or rate
            print(f"{name:<28} {s:>8.2f} {rate:>12,.0f} {peak:>8.1f} {size / 2**20:>8.1f}"
                  f"   x{rate / base:.1f}")
        import openpyxl
        path = os.path.join(tmp, "sheetnet_stream_float64.xlsx")
        back = np.array(list(openpyxl.load_workbook(path, read_only=True)["W"].values), dtype=float)
        print("sheetnet float64 reads back bit for bit:", bool(np.array_equal(back, arr)))


if __name__ == "__main__":
    main()
