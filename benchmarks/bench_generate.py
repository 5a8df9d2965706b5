"""Generation figures of issue 16 (a script, not a test; figures printed, not asserted).

    python benchmarks/bench_generate.py              # the example GPT, both styles
    python benchmarks/bench_generate.py --gpt2       # also the GPT-2-small shape (long)
    python benchmarks/bench_generate.py --gpt2 --layers 1 --skip-example   # its profile shape

Example GPT (prompt "The cell", 24 characters generated into its 32 positions): export time,
LibreOffice load + full recalculation (the profile recalculates on load: the 24 characters come
out of that one recalculation), and the time for an edit of only the prompt's last character in
the loaded document (as a person typing would: set the cell, recalculate what it reaches, read
the next character).

GPT-2-small shape (12 layers, 768 wide, 12 heads, 50,257 ids, seeded random weights; context 16,
8 prompt token ids, 8 generated): export, file size, then in one loaded document (see ``typing``)
the load with its recalculation (soffice's peak resident memory beside it), a full
recalculation, and the edit of only the last prompt token: its new next token, then the rest of
the continuation.  --layers, --width and --vocab shrink it for profiles.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sheetnet.engines.base import Block  # noqa: E402
from sheetnet.engines.libreoffice import LibreOffice  # noqa: E402
from sheetnet.engines.uno_doc import apply_edits, doc_sheet, read_block  # noqa: E402
from sheetnet.manifest import read_manifest  # noqa: E402
from sheetnet.options import ExportOptions  # noqa: E402
from sheetnet.pipeline import export  # noqa: E402
from sheetnet.runner import input_edits  # noqa: E402
from sheetnet.verifier import block  # noqa: E402

GPT2 = dict(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)


def soffice_peak_mb(engine: LibreOffice) -> float:
    """soffice.bin's peak resident memory so far (VmHWM), MB: the largest among the started
    process (a launcher) and its descendants; nan when /proc does not say."""
    peak, todo, seen = float("nan"), [engine._proc.pid], []
    while todo:  # the started process and every descendant (soffice -> oosplash -> soffice.bin)
        pid = todo.pop()
        seen.append(pid)
        for task in Path(f"/proc/{pid}/task").glob("*"):  # any thread may have started one
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    for p in seen:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    mb = int(line.split()[1]) / 1024
                    peak = mb if peak != peak else max(peak, mb)
        except OSError:
            pass
    return peak


def measure(book: Path, engine: LibreOffice, edit_value) -> dict:
    """Load + recalculate (reading the generated ids), then one edit of the last prompt cell in
    the loaded document (reading the next token)."""
    m = read_manifest(book)
    steps, nxt = block(m.nodes["steps.id"]), block(m.nodes["next.id"])
    text = block(m.nodes["prompt.text"])
    t0 = time.perf_counter()
    with engine.loaded(book) as doc:
        load_s = time.perf_counter() - t0
        ids, before = doc.recalculate(book, [steps, text], check_errors=False)
        edit = edit_value(m)
        after = doc.recalculate(book, [nxt, text], edits=edit, check_errors=False)
        edit_s = doc.timings["recalc"]
    return {"load_s": load_s, "edit_s": edit_s, "text": before[0, 0], "edited": after[1][0, 0],
            "ids": [int(v) for v in ids[:, 0] if v is not None], "peak_mb": soffice_peak_mb(engine)}


def typing(book: Path, engine: LibreOffice, prompt: list[int], edited: list[int]) -> None:
    """The GPT-2 figures in one loaded document, as a person working in it would see them,
    printed as each comes (a phase can take minutes):

    load      open the workbook; the profile recalculates on load, so this is the parse and the
              first computation of every position (the 8 new tokens included)
    full      a full recalculation (calculateAll), everything computed again: 8 new tokens
    next      set the last prompt token, only that cell, as a person types it (setValue:
              LibreOffice marks what it reaches dirty; a value set over itself counts as a
              change, so setting the unchanged tokens too made every prompt position's rows
              dirty), then read that position's draw, the new next token: LibreOffice computes a
              dirty cell when it is read, so this is position n - 1's rows of every sheet and its
              draw
    rest      then calculate() the other dirty cells: the positions after it, i.e. the new
              continuation
    """
    m = read_manifest(book)
    n = len(prompt)
    steps = block(m.nodes["steps.id"])
    drawn = block(m.nodes["sample.id"])
    at = Block(drawn.sheet, drawn.row + (n - 1 if drawn.nrows > 1 else 0),
               drawn.col + (n - 1 if drawn.ncols > 1 else 0), 1, 1)  # position n - 1's draw
    t0 = time.perf_counter()
    with engine.loaded(book) as loaded:
        doc, name = loaded.doc, book.name
        load_s = time.perf_counter() - t0
        read = lambda b: read_block(doc_sheet(doc, b.sheet, name), b)  # noqa: E731
        ids = [int(v) for v in read(steps)[:, 0] if v is not None]
        say(f"  LibreOffice load + recalculation (8 new tokens): {load_s:.0f} s, soffice peak "
            f"{soffice_peak_mb(engine):.0f} MB; new ids {ids[:8]}")
        t0 = time.perf_counter()
        doc.calculateAll()
        say(f"  full recalculation (calculateAll), 8 new tokens: {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        apply_edits(doc, typed(m, prompt, edited), name)
        set_s = time.perf_counter() - t0
        next_id = int(read(at)[0, 0])
        say(f"  edit of only the last prompt token -> its new next token {next_id}: "
            f"{time.perf_counter() - t0:.1f} s (setValue {set_s:.1f} s)")
        t0 = time.perf_counter()
        doc.calculate()
        rest_s = time.perf_counter() - t0
        ids = [int(v) for v in read(steps)[:, 0] if v is not None]
        say(f"  the rest of the new continuation (calculate): {rest_s:.1f} s more; new ids "
            f"{ids[:8]}; soffice peak {soffice_peak_mb(engine):.0f} MB")


def typed(m, prompt: list[int], edited: list[int]) -> list:
    """The edits of the prompt cells whose token changed (a person types only those)."""
    cells = input_edits(m, "prompt", prompt + [""] * (len(prompt)))
    new = input_edits(m, "prompt", edited + [""] * (len(prompt)))
    return [e for e, was in zip(new, cells) if e != was]


def say(line: str) -> None:
    print(line, flush=True)


def example(folder: Path, engine: LibreOffice) -> None:
    model = ROOT / "examples" / "gpt.pt"
    print("example GPT: prompt 'The cell', 24 characters generated in one recalculation")
    print(f"{'style':<7} {'export s':>8} {'load+recalc s':>13} {'edit last char s':>16}  text")
    for style in ("cells", "arrays"):
        book = folder / f"gpt_{style}.xlsx"
        t0 = time.perf_counter()
        export(model, book, ExportOptions(style=style, prompt="The cell", force=True))
        export_s = time.perf_counter() - t0
        r = measure(book, engine, lambda m: input_edits(m, "prompt", ["The celk"]))
        print(f"{style:<7} {export_s:>8.2f} {r['load_s']:>13.2f} {r['edit_s']:>16.2f}  "
              f"{r['text']!r} -> after the edit {r['edited']!r}")


def gpt2(folder: Path, engine: LibreOffice, style: str, layers: int = 12, width: int = 768,
         vocab: int = 50257) -> None:
    import torch
    from sheetnet.checkpoint import save_checkpoint
    from sheetnet.models.gpt import GPT, GPTConfig
    torch.manual_seed(0)
    shape = {**GPT2, "n_layer": layers, "n_embd": width, "n_head": max(1, width // 64),
             "vocab_size": vocab}
    model = GPT(GPTConfig(**shape))  # nanoGPT's initialisation, seeded
    path = folder / "gpt2_shape.pt"
    save_checkpoint(path, "gpt", model.config.to_dict(), model.state_dict(), {})
    del model
    prompt = [i % vocab for i in (464, 2685, 318, 257, 1310, 286, 262, 995)]  # 8 token ids
    book = folder / f"gpt2_{style}.xlsx"
    t0 = time.perf_counter()
    res = export(path, book, ExportOptions(style=style, tokens=prompt, context=16, force=True))
    export_s = time.perf_counter() - t0
    say(f"GPT-2-small shape, {layers} layer(s), {width} wide, {vocab:,} ids ({style}): "
        f"export {export_s:.0f} s, {book.stat().st_size / 1e9:.2f} GB, "
        f"{res.formula_cells:,} formula cells; "
        f"python peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    edited = prompt[:-1] + [1000 % vocab]
    typing(book, engine, prompt, edited)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpt2", action="store_true", help="also the GPT-2-small shape")
    ap.add_argument("--gpt2-style", default="arrays", choices=["cells", "arrays"])
    ap.add_argument("--layers", type=int, default=12,
                    help="blocks of the GPT-2 shape (1 or 2 to profile; 12 is GPT-2 small)")
    ap.add_argument("--width", type=int, default=768, help="n_embd of the GPT-2 shape")
    ap.add_argument("--vocab", type=int, default=50257, help="vocabulary of the GPT-2 shape")
    ap.add_argument("--skip-example", action="store_true", help="only the GPT-2 shape")
    ap.add_argument("--keep", type=Path, help="write the workbooks here and keep them")
    ap.add_argument("--timeout", type=float, default=3600.0)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, LibreOffice(timeout=args.timeout) as engine:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if not args.skip_example:
            example(folder, engine)
        if args.gpt2:
            gpt2(folder, engine, args.gpt2_style, args.layers, args.width, args.vocab)


if __name__ == "__main__":
    main()
