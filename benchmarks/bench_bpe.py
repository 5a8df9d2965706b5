"""Tokenizer sheet figures of issue 18 (a script, not a test; figures printed, not asserted).

    python benchmarks/bench_bpe.py          # the Tokenizer sheet alone, 50,000 merges
    python benchmarks/bench_bpe.py --gpt    # also a GPT workbook with and without it (long)

A byte-level BPE of 50,257 ids and 50,000 merges is trained here (tests/bpe_data.py: the
`tokenizers` library on a few MB of installed and generated text).  A workbook holding the BPE
tables, the Vocab sheet a GPT workbook has anyway, and one Tokenizer sheet with a 64-byte prompt:
its size against the same workbook without the tables and the Tokenizer sheet (the growth), the
LibreOffice load + full recalculation, and the recalculation after typing a new 64-byte prompt
into the loaded document (what a person typing waits for); the same prompt's ids checked
against tokenizers.  Gnumeric and IronCalc load + recalculation beside them.

--gpt: a 1-block, 8-wide GPT-2 with that vocabulary exported with --tokens (id cells) and with
--prompt (the Tokenizer sheet), context 16: both sizes and their difference.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402

import bpe_data  # noqa: E402  (imports transformers before LibreOffice starts)
from sheetnet import layout  # noqa: E402
from sheetnet.capture import bpe as sheet  # noqa: E402
from sheetnet.emit.book import build_book  # noqa: E402
from sheetnet.engines import Block, open_engine  # noqa: E402
from sheetnet.ir import graph as ir  # noqa: E402
from sheetnet.loaders.bpe import read_bpe  # noqa: E402
from sheetnet.writer import write_book  # noqa: E402

PROMPT = "Mississippilessly, we'll see: 中文 😀 2024!!\n\tit's the end.."   # 64 bytes
EDITED = "The quick brown fox jumps over the lazy dog; it's 2024, isn't it"   # 64 bytes


def book(bpe, path: Path, tokenizer: bool) -> tuple[ir.Graph, layout.Plan, float]:
    """The Vocab sheet, and with ``tokenizer`` the BPE tables and one Tokenizer sheet; returns
    the graph, its plan and the seconds it took to write."""
    g = ir.Graph()
    labels = np.array(bpe.tokens, dtype=object)[:, None]
    g.add("vocab.label", ir.Const(labels), labels.shape, "Vocab")
    if tokenizer:
        sheet.add_tables(g, bpe)
        g.add("prompt", ir.Input(np.array([[PROMPT]], dtype=object)), (1, 1), "Prompt")
        sheet.add_tokenizer(g, bpe, "prompt", "vocab.label", 64, 0)
    plan = layout.plan(g)
    t0 = time.perf_counter()
    write_book(build_book(g, plan), path, force=True)
    return g, plan, time.perf_counter() - t0


def tokenizer_figures(folder: Path, bpe) -> None:
    base = folder / "vocab_only.xlsx"
    full = folder / "tokenizer.xlsx"
    book(bpe, base, tokenizer=False)
    g, plan, write_s = book(bpe, full, tokenizer=True)
    cells = sum(int(np.prod(n.shape)) for n in g.nodes.values() if n.sheet == "Tokenizer")
    grow = (full.stat().st_size - base.stat().st_size) / 1e6
    print(f"prompt {len(PROMPT.encode())} bytes; Tokenizer sheet {cells:,} cells; written in "
          f"{write_s:.1f} s")
    print(f"workbook growth: {grow:.1f} MB (tables + Tokenizer sheet; {full.stat().st_size / 1e6:.1f}"
          f" MB with the Vocab sheet, {base.stat().st_size / 1e6:.1f} MB without them)  "
          "[target <= 20 MB]")
    r = plan.regions
    reads = [Block(r[n].sheet, r[n].row, r[n].col, r[n].nrows, r[n].ncols)
             for n in ("bpe.ids", "bpe.n", "bpe.note")]
    cell = (r["prompt"].sheet, r["prompt"].row, r["prompt"].col)
    want = [bpe_data.reference_ids(bpe_data.gpt2_sized(), [t])[0] for t in (PROMPT, EDITED)]
    with open_engine("libreoffice", timeout=3600) as engine:
        t0 = time.perf_counter()
        with engine.loaded(full) as doc:
            load_s = time.perf_counter() - t0
            ids, n, note = doc.recalculate(full, reads, check_errors=False)
            t1 = time.perf_counter()
            ids2, n2, note2 = doc.recalculate(full, reads, edits=[(*cell, EDITED)],
                                              check_errors=False)
            edit_s = time.perf_counter() - t1
    got = [[int(i) for i in x[:int(k[0, 0]), 0]] for x, k in ((ids, n), (ids2, n2))]
    print(f"LibreOffice: load + full recalculation {load_s:.1f} s; a new 64-byte prompt typed in "
          f"the loaded document: {edit_s:.2f} s  [target <= 10 s]")
    print(f"  ids equal tokenizers': {got == want} ({len(got[0])} and {len(got[1])} tokens; "
          f"status {note[0, 0]!r}, {note2[0, 0]!r})")
    for name in ("gnumeric", "ironcalc"):
        with open_engine(name, timeout=3600) as other:
            t0 = time.perf_counter()
            ids, n, _ = other.recalculate(full, reads, check_errors=False)
            took = time.perf_counter() - t0
        same = [int(i) for i in ids[:int(n[0, 0]), 0]] == want[0]
        print(f"{name}: load + recalculation {took:.1f} s; ids equal tokenizers': {same}")


def gpt_figures(folder: Path, bpe) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from sheetnet.options import ExportOptions
    from sheetnet.pipeline import export
    model_dir = folder / "gpt"
    bpe_data.train(model_dir, bpe_data.GPT2_VOCAB, bpe_data.corpus())
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(bpe.tokens), n_positions=64, n_embd=8, n_layer=1,
                               n_head=2)).save_pretrained(model_dir)
    ids = read_bpe(model_dir).encode(PROMPT)
    sizes = {}
    for how, opts in (("--tokens", dict(tokens=ids)), ("--prompt", dict(prompt=PROMPT))):
        out = folder / f"gpt{how}.xlsx"
        t0 = time.perf_counter()
        export(model_dir, out, ExportOptions(context=16, force=True, **opts))
        sizes[how] = out.stat().st_size / 1e6
        print(f"GPT (50,257 ids, context 16) {how}: {sizes[how]:.1f} MB, exported in "
              f"{time.perf_counter() - t0:.0f} s")
    print(f"  growth with the Tokenizer sheet: {sizes['--prompt'] - sizes['--tokens']:.1f} MB")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpt", action="store_true", help="also a GPT workbook with and without it")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    bpe = read_bpe(bpe_data.gpt2_sized())
    print(f"tokenizer: {len(bpe.tokens):,} ids, {len(bpe.merges):,} merges, trained and read in "
          f"{time.perf_counter() - t0:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer_figures(Path(tmp), bpe)
        if args.gpt:
            gpt_figures(Path(tmp), bpe)


if __name__ == "__main__":
    main()
