"""Training workbooks (export --train): how big and how slow to recalculate (a script, not a test).

    python benchmarks/bench_train.py [--quick] [--budget 60]

Prints, per case: steps K, formula cells (and per step), sheets, export time and LibreOffice's
load + full recalculation (soffice already started; best of 2), both styles:
  1. the sqrt net 1-16-16-1 on 41 points, 50 SGD steps (target <= 5 s);
  2. the text net, 20 Adam steps on examples/textnet_pairs.txt (target <= 5 s);
  3. how the time grows with K (sqrt net, SGD, K = 10 .. 200);
  4. the largest K x model under ``--budget`` seconds: K doubled until a recalculation passes
     it, for the sqrt net on 41 points and for a wider MLP (1-64-64-1) on 41 points.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from sheetnet.capture.train_data import TrainOptions  # noqa: E402
from sheetnet.engines.libreoffice import LibreOffice as Engine  # noqa: E402
from sheetnet.manifest import read_manifest  # noqa: E402
from sheetnet.options import ExportOptions  # noqa: E402
from sheetnet.pipeline import export  # noqa: E402
from sheetnet.verifier import block  # noqa: E402

EXAMPLES = ROOT / "examples"


def sqrt_csv(folder: Path, n: int = 41) -> Path:
    path = folder / "sqrt.csv"
    xs = np.linspace(0.0, 10.0, n)
    path.write_text("x,y\n" + "".join(f"{float(x)!r},{float(np.sqrt(x))!r}\n" for x in xs))
    return path


def wide_mlp(folder: Path, width: int) -> Path:
    torch.manual_seed(0)
    path = folder / f"mlp{width}.pt"
    torch.save(nn.Sequential(nn.Linear(1, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                             nn.Linear(width, 1)), path)
    return path


def bench(model: Path, data: Path, steps: int, optimizer: str, style: str, engine: Engine,
          folder: Path, repeats: int = 2) -> dict:
    book = folder / f"{model.stem}_{optimizer}_{steps}_{style}.xlsx"
    t0 = time.perf_counter()
    res = export(model, book, ExportOptions(style=style, force=True, max_recalc=None),
                 train=TrainOptions(data=str(data), steps=steps, optimizer=optimizer,
                                    lr=0.01 if optimizer != "adam" else 0.05))
    export_s = time.perf_counter() - t0
    read = [block(read_manifest(book).nodes["train.loss"])]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        engine.recalculate(book, read)
        times.append(time.perf_counter() - t0)
    book.unlink()
    return {"steps": steps, "formulas": res.formula_cells, "per_step": res.formula_cells // steps,
            "sheets": res.sheets, "export_s": export_s, "recalc_s": min(times)}


def line(name: str, style: str, r: dict) -> str:
    return (f"{name:<28} {style:<6} K={r['steps']:<4} {r['formulas']:>9,} cells "
            f"({r['per_step']:>6,}/step) {r['sheets']:>4} sheets  export {r['export_s']:6.2f} s  "
            f"recalc {r['recalc_s']:6.2f} s")


def largest_k(model, data, engine, folder, budget: float, style: str) -> tuple[int, float]:
    # K doubled until the recalculation passes the budget: the last K under it
    k, best = 25, (0, 0.0)
    while k <= 1000:
        r = bench(model, data, k, "sgd", style, engine, folder, repeats=1)
        print(line(f"  {model.stem} SGD", style, r), flush=True)
        if r["recalc_s"] > budget:
            break
        best, k = (k, r["recalc_s"]), k * 2
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip the largest-K search")
    ap.add_argument("--budget", type=float, default=60.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Engine(timeout=900) as engine:
        folder = Path(tmp)
        data = sqrt_csv(folder)
        engine.recalculate(bench_warmup(folder, data), [])
        print("1. sqrt net 1-16-16-1, 41 points, 50 SGD steps (target <= 5 s)")
        for style in ("cells", "arrays"):
            r = bench(EXAMPLES / "sqrt_net.pt", data, 50, "sgd", style, engine, folder)
            print(line("sqrt_net SGD", style, r), flush=True)
        print("2. text net, 20 Adam steps (target <= 5 s)")
        for style in ("cells", "arrays"):
            r = bench(EXAMPLES / "textnet.pt", EXAMPLES / "textnet_pairs.txt", 20, "adam",
                      style, engine, folder)
            print(line("textnet Adam", style, r), flush=True)
        print("3. time against K (sqrt net, SGD)")
        for k in (10, 25, 50, 100, 200):
            r = bench(EXAMPLES / "sqrt_net.pt", data, k, "sgd", "cells", engine, folder)
            print(line("sqrt_net SGD", "cells", r), flush=True)
        if args.quick:
            return
        print(f"4. the largest K under {args.budget:g} s (SGD, 41 points, K doubled from 25)")
        for model in (EXAMPLES / "sqrt_net.pt", wide_mlp(folder, 64)):
            for style in ("cells", "arrays"):
                k, s = largest_k(model, data, engine, folder, args.budget, style)
                print(f"  -> {model.stem} ({style}): K = {k} in {s:.1f} s", flush=True)


def bench_warmup(folder: Path, data: Path) -> Path:
    # first small books, so that neither soffice's start-up nor the first import of a model's
    # modules (seconds on a busy machine) is timed
    book = folder / "warm.xlsx"
    export(EXAMPLES / "textnet.pt", book, ExportOptions(force=True),
           train=TrainOptions(data=str(EXAMPLES / "textnet_pairs.txt"), steps=1))
    export(EXAMPLES / "sqrt_2x2.pt", book, ExportOptions(force=True),
           train=TrainOptions(data=str(data), steps=1))
    return book


if __name__ == "__main__":
    main()
