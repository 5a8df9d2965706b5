"""Export and recalculation figures for the example GPT, per style (a script, not a test).

    python benchmarks/bench_gpt.py [model.pt] [--repeat 3]

Prints, for --style cells and --style arrays: export time, file size, formula cells, LibreOffice
load + full recalculation time (best and median of --repeat runs, soffice already started) and
the max abs error of verify against PyTorch float64.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sheetnet.engines.libreoffice import LibreOffice as Engine  # noqa: E402
from sheetnet.pipeline import export  # noqa: E402
from sheetnet.options import ExportOptions  # noqa: E402
from sheetnet.verifier import block, verify  # noqa: E402
from sheetnet.manifest import read_manifest  # noqa: E402


def bench(model: Path, style: str, engine: Engine, repeat: int, folder: Path) -> dict:
    book = folder / f"gpt_{style}.xlsx"
    t0 = time.perf_counter()
    res = export(model, book, ExportOptions(style=style, prompt="The cell", force=True))
    export_s = time.perf_counter() - t0
    logits = read_manifest(book).nodes["logits"]
    read = [block(logits)]
    times = []
    for _ in range(repeat):  # load + recalculate everything (the profile recalculates on load)
        t0 = time.perf_counter()
        engine.recalculate(book, read)
        times.append(time.perf_counter() - t0)
    report = verify(book, model, engine=engine)
    return {"style": style, "export_s": export_s, "mb": book.stat().st_size / 1e6,
            "formulas": res.formula_cells, "best_s": min(times), "median_s": statistics.median(times),
            "max_err": report.max_abs_err, "ok": report.ok}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default=str(ROOT / "examples" / "gpt.pt"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, Engine(timeout=600) as engine:
        print(f"{'style':<7} {'export s':>8} {'size MB':>8} {'formula cells':>13} "
              f"{'recalc best s':>13} {'median s':>8} {'max abs err':>11}  verify")
        for style in ("cells", "arrays"):
            r = bench(Path(args.model), style, engine, args.repeat, Path(tmp))
            print(f"{r['style']:<7} {r['export_s']:>8.2f} {r['mb']:>8.2f} {r['formulas']:>13,} "
                  f"{r['best_s']:>13.2f} {r['median_s']:>8.2f} {r['max_err']:>11.2g}  "
                  f"{'ok' if r['ok'] else 'MISMATCH'}")


if __name__ == "__main__":
    main()
