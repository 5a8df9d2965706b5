"""Where ``--style auto`` switches from "cells" to "arrays": random GPTs of growing size, exported
in both styles, timed (a script, not a test).

    python benchmarks/bench_style.py [--sizes small,medium,...]

Prints, per model and style: formula cells, weight cells, export time, file size and LibreOffice
load + full recalculation time (soffice already started; best of 2).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from sheetnet.checkpoint import save_checkpoint  # noqa: E402
from sheetnet.engines.libreoffice import LibreOffice as Engine  # noqa: E402
from sheetnet.pipeline import export  # noqa: E402
from sheetnet.models.gpt import GPT, GPTConfig  # noqa: E402
from sheetnet.options import ExportOptions  # noqa: E402
from sheetnet.verifier import block  # noqa: E402
from sheetnet.manifest import read_manifest  # noqa: E402

# name -> (n_layer, n_embd, context, vocab_size): formula cells from ~15k to ~1.3M
SIZES = {
    "xs": (1, 16, 8, 64), "s": (2, 32, 16, 64), "m": (2, 64, 32, 96), "l": (4, 64, 32, 96),
    "xl": (4, 128, 32, 128), "xxl": (6, 128, 64, 128), "big-vocab": (1, 8, 4, 20_000),
}


def model_file(folder: Path, name: str) -> Path:
    n_layer, n_embd, context, vocab = SIZES[name]
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=vocab, block_size=context, n_layer=n_layer, n_head=2,
                          n_embd=n_embd))
    path = folder / f"{name}.pt"
    save_checkpoint(path, "gpt", model.config.to_dict(), model.state_dict(), {})
    return path


def bench(path: Path, style: str, engine: Engine, folder: Path) -> dict:
    book = folder / f"{path.stem}_{style}.xlsx"
    t0 = time.perf_counter()
    res = export(path, book, ExportOptions(style=style, tokens=[1, 2], force=True))
    export_s = time.perf_counter() - t0
    entry = read_manifest(book).nodes["next.id"]
    read = [block(entry)]
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        engine.recalculate(book, read)
        times.append(time.perf_counter() - t0)
    return {"formulas": res.formula_cells, "weights": res.weight_cells, "export_s": export_s,
            "mb": book.stat().st_size / 1e6, "recalc_s": min(times)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=",".join(SIZES))
    args = ap.parse_args(argv)
    print(f"{'model':<10} {'style':<7} {'formulas':>10} {'weights':>10} {'export s':>9} "
          f"{'MB':>7} {'recalc s':>9}")
    with tempfile.TemporaryDirectory() as tmp, Engine(timeout=1200) as engine:
        for name in args.sizes.split(","):
            path = model_file(Path(tmp), name)
            for style in ("cells", "arrays"):
                r = bench(path, style, engine, Path(tmp))
                print(f"{name:<10} {style:<7} {r['formulas']:>10,} {r['weights']:>10,} "
                      f"{r['export_s']:>9.2f} {r['mb']:>7.2f} {r['recalc_s']:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
