"""GPT workbooks from the example's size up to GPT-2 small: export and LibreOffice figures.

Seeded random weights (float32), exported with an 8-token context and --style auto.  Each export
and each recalculation runs in its own process so that its peak memory is its own.  Prints one row
per shape: export wall time, cells/s, peak memory (MiB, and "x f32": as a multiple of the model's
float32 size; the interpreter with torch imported is ~225 MiB of it), file size, LibreOffice load
+ recalc time and peak memory, and the max |logits - PyTorch float64|.  The baseline is plain
openpyxl write_only writing the same cells one by one, timed on the first BASELINE_CELLS cells of
each workbook (all of them for small shapes), so the speed-up is a ratio from the same run.

    python benchmarks/bench_scale.py [--shapes example,small,medium,gpt2-small]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# name -> (n_layer, n_head, n_embd, block_size, vocab_size)
SHAPES = {
    "example": (2, 2, 32, 32, 64),
    "small": (4, 4, 128, 256, 4096),
    "medium": (6, 6, 384, 512, 16384),
    "gpt2-small": (12, 12, 768, 1024, 50257),
}
CONTEXT = 8

def tokens_for(shape: str) -> list[int]:
    """CONTEXT seeded ids below the shape's vocabulary size."""
    return [(37 * k + 5) % SHAPES[shape][4] for k in range(CONTEXT)]
BASELINE_CELLS = 3_000_000
TIMEOUT = 1800  # seconds per step


def make_checkpoint(shape: str, path: Path) -> int:
    """Write the shape's seeded random GPT to ``path``; return its parameter count (tied once)."""
    import torch
    from sheetnet.checkpoint import save_checkpoint
    from sheetnet.models.gpt import GPT, GPTConfig
    n_layer, n_head, n_embd, block, vocab = SHAPES[shape]
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=vocab, block_size=block, n_layer=n_layer, n_head=n_head,
                    n_embd=n_embd)
    model = GPT(cfg)
    save_checkpoint(path, "gpt", cfg.to_dict(), model.state_dict(),
                    {"trained_by": "bench_scale (random weights, seed 0)"})
    return sum(t.numel() for t in model.parameters())


def _child(code: str) -> dict:
    """Run ``code`` in a fresh Python; it prints one JSON line; add its own peak RSS (MB)."""
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across exec, so a child spawned
    # by this (large, model-holding) process would report this process's size as its own peak
    wrapped = code + "\nRESULT['peak_mb'] = int([l for l in open('/proc/self/status') " \
                     "if l.startswith('VmHWM:')][0].split()[1]) / 1024\nprint(json.dumps(RESULT))"
    out = subprocess.run([sys.executable, "-c", "import json, sys; sys.path.insert(0, %r)\n"
                          % str(ROOT) + wrapped], capture_output=True, text=True, timeout=TIMEOUT)
    if out.returncode:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def export_step(ckpt: Path, book: Path, tokens: list[int]) -> dict:
    return _child(f"""
import time
from sheetnet.pipeline import export
from sheetnet.options import ExportOptions
start = time.perf_counter()
res = export({str(ckpt)!r}, {str(book)!r}, ExportOptions(style="auto", force=True,
             tokens={tokens!r}, context={CONTEXT}))
RESULT = {{"seconds": time.perf_counter() - start, "cells": res.weight_cells + res.formula_cells,
          "style": getattr(res, "style", "auto"), "precision": getattr(res, "precision", "")}}
""")


def recalc_step(ckpt: Path, book: Path, tokens: list[int]) -> dict:
    """Load + recalculate in LibreOffice, read the logits, compare with PyTorch float64."""
    return _child(f"""
import time, numpy as np, torch
from sheetnet.engines.libreoffice import LibreOffice as Engine
from sheetnet.loaders import load
from sheetnet.models.gpt import GPT
from sheetnet.verifier import numeric, read_nodes
from sheetnet.manifest import read_manifest
sys.path.insert(0, {str(ROOT / "benchmarks")!r})
from bench_scale import soffice_peak_mb
manifest = read_manifest({str(book)!r})
with Engine(timeout={TIMEOUT}) as eng:
    eng.start()
    start = time.perf_counter()
    got = numeric(read_nodes(eng, {str(book)!r}, manifest, ["logits"])["logits"])
    seconds = time.perf_counter() - start
    soffice_mb = soffice_peak_mb(eng)
    timings = eng.timings
model = GPT.from_checkpoint(load({str(ckpt)!r})).double()
with torch.no_grad():
    want = model(torch.tensor([{tokens!r}]))[0].numpy()
RESULT = {{"seconds": seconds, "soffice_mb": soffice_mb, "timings": timings,
          "max_err": float(np.max(np.abs(got[:len(want)] - want)))}}
""")


def soffice_peak_mb(engine) -> float:
    """Peak resident memory (VmHWM) of the engine's soffice.bin, read from /proc."""
    pgid = os.getpgid(engine._proc.pid)
    peak = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.getpgid(int(pid)) != pgid:
                continue
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except (OSError, ValueError):
            continue
    return peak


def writer_rates(ckpt: Path, tmp: Path, tokens: list[int]) -> dict:
    """Cells/s of our writer and of plain openpyxl write_only (cell by cell, the first
    BASELINE_CELLS cells), writing the same BookSpec."""
    return _child(f"""
import time, openpyxl
from sheetnet import layout
from sheetnet.emit.book import build_book
from sheetnet.emit.arrays import ARRAY_FORMULAS
from sheetnet.pipeline import lower
from sheetnet.options import ExportOptions
opts = ExportOptions(style="arrays", tokens={tokens!r}, context={CONTEXT})
graph = lower({str(ckpt)!r}, opts).graph
book = build_book(graph, layout.plan(graph), array_ops=ARRAY_FORMULAS)
from sheetnet.writer import write_book
total = sum(a.size for s in book.sheets for _, _, a, _ in s.blocks) + \
    sum(len(s.cells) + sum(x.nrows * x.ncols for x in s.arrays) + sum(len(t.texts) for t in s.runs)
        for s in book.sheets)
start = time.perf_counter()
write_book(book, {str(tmp / "ours.xlsx")!r}, force=True, precision="float32")
ours = total / (time.perf_counter() - start)
wb = openpyxl.Workbook(write_only=True)
done, start = 0, time.perf_counter()
for spec in book.sheets:
    ws = wb.create_sheet(spec.name)
    for r0, c0, arr, kind in spec.blocks:
        for row in arr.tolist():
            ws.append([None] * c0 + row)
            done += len(row)
            if done >= {BASELINE_CELLS}:
                break
        if done >= {BASELINE_CELLS}:
            break
    for (r, c), (value, kind) in spec.cells.items():
        ws.append([None] * c + [value if not hasattr(value, "text") else "=" + value.text])
        done += 1
    for run in spec.runs:  # label lines: a cell each, as openpyxl takes them
        for text in run.texts:
            ws.append([None] * run.col + [text])
        done += len(run.texts)
    if done >= {BASELINE_CELLS}:
        break
wb.save({str(tmp / "baseline.xlsx")!r})
RESULT = {{"openpyxl": done / (time.perf_counter() - start), "ours": ours}}
""")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default=",".join(SHAPES))
    shapes = ap.parse_args().shapes.split(",")
    head = (f"{'shape':<11} {'params':>11} {'export s':>8} {'cells/s':>10} {'writer/s':>10} "
            f"{'openpyxl/s':>10} {'ratio':>6} "
            f"{'peak MB':>8} {'x f32':>5} {'file MB':>8} {'LO s':>7} {'LO MB':>7} {'max err':>9}")
    print(head)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for shape in shapes:
            ckpt, book = tmp / f"{shape}.pt", tmp / f"{shape}.xlsx"
            params = make_checkpoint(shape, ckpt)
            tokens = tokens_for(shape)
            ex = export_step(ckpt, book, tokens)
            rate = ex["cells"] / ex["seconds"]
            writers = writer_rates(ckpt, tmp, tokens)
            rc = recalc_step(ckpt, book, tokens)
            print(f"{shape:<11} {params:>11,} {ex['seconds']:>8.1f} {rate:>10,.0f} "
                  f"{writers['ours']:>10,.0f} {writers['openpyxl']:>10,.0f} "
                  f"{writers['ours'] / writers['openpyxl']:>6.1f} {ex['peak_mb']:>8.0f} "
                  f"{ex['peak_mb'] / (params * 4 / 2**20):>5.2f} "
                  f"{book.stat().st_size / 2**20:>8.1f} {rc['seconds']:>7.1f} "
                  f"{rc['soffice_mb']:>7.0f} {rc['max_err']:>9.2g}", flush=True)
            t = rc.get("timings", {})
            print(f"{'':<11} style {ex['style']}, precision {ex.get('precision', '')}; "
                  "LibreOffice " + ", ".join(f"{k} {v:.1f} s" for k, v in t.items()), flush=True)
            book.unlink()


if __name__ == "__main__":
    main()
