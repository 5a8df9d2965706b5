"""The generic front end against the GPT preset, and a tiny Llama's recalculation (a script).

    python benchmarks/bench_front_end_gpt.py [--positions 16] [--repeat 3]

Prints the formula cells of the workbook the torch.export front end writes for a nanoGPT-shaped
user class (tests/user_gpt.py; sdpa and manual attention) next to the GPT preset's workbook
for the same weights and token ids (target: generic <= 1.2x preset), and a tiny Llama's
(hidden 32, 2 layers, 4 query / 2 key-value heads) LibreOffice load + recalculation time,
soffice already started (target <= 5 s).
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
sys.path.insert(0, str(ROOT / "tests"))

import torch  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

from sheetnet.engines.libreoffice import LibreOffice as Engine  # noqa: E402
from sheetnet.loaders.source import payload  # noqa: E402
from sheetnet.manifest import read_manifest  # noqa: E402
from sheetnet.options import ExportOptions  # noqa: E402
from sheetnet.pipeline import export  # noqa: E402
from sheetnet.verifier import block, verify  # noqa: E402
from user_gpt import UserGPT  # noqa: E402

SIZE = dict(vocab_size=65, block_size=32, n_layer=2, n_head=4, n_embd=32)


def preset_checkpoint(model: UserGPT, path: Path) -> Path:
    # the same weights as a sheetnet "gpt" checkpoint: nanoGPT's names under "transformer."
    state = {(k if k.startswith("lm_head") else f"transformer.{k}"): v.detach().clone()
             for k, v in model.state_dict().items() if not k.endswith(".attn.bias")}  # the tril buffer
    cfg = {**SIZE, "bias": True, "gelu": "tanh", "tied": True, "ln_eps": 1e-5}
    torch.save(payload("gpt", cfg, state, {"source_format": "sheetnet"}), path)
    return path


def cells(folder: Path, positions: int) -> None:
    torch.manual_seed(0)
    ids = torch.randint(0, SIZE["vocab_size"], (1, positions))
    counts = {}
    for manual in (False, True):
        model = UserGPT(**SIZE, manual=manual).eval()
        if manual:   # the same weights as the sdpa model
            model.load_state_dict(sdpa_state, strict=False)
        else:
            sdpa_state = model.state_dict()
        res = export(model, folder / f"generic_{manual}.xlsx", ExportOptions(force=True),
                     example_inputs=(ids,))
        counts["generic, " + ("manual attention" if manual else "sdpa")] = res.formula_cells
    preset = preset_checkpoint(model, folder / "preset.pt")
    res = export(preset, folder / "preset.xlsx", ExportOptions(
        force=True, tokens=ids[0].tolist(), context=positions))
    counts["GPT preset"] = res.formula_cells
    print(f"nanoGPT-shaped model {SIZE}, {positions} positions: formula cells")
    for name, n in counts.items():
        print(f"  {name:<32} {n:>9,}  {n / counts['GPT preset']:.3f}x preset")
    print("  target: generic <= 1.2x preset")


def llama(folder: Path, engine: Engine, repeat: int, positions: int) -> None:
    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, vocab_size=64,
                      max_position_embeddings=128)
    LlamaForCausalLM(cfg).save_pretrained(folder / "llama")
    book = folder / "llama.xlsx"
    t0 = time.perf_counter()
    res = export(folder / "llama", book, ExportOptions(force=True, tokens=list(range(positions))))
    export_s = time.perf_counter() - t0
    read = [block(read_manifest(book).nodes["output"])]
    times = []
    for _ in range(repeat):   # load + recalculate everything (the profile recalculates on load)
        t0 = time.perf_counter()
        engine.recalculate(book, read)
        times.append(time.perf_counter() - t0)
    report = verify(book, folder / "llama", engine=engine)
    print(f"tiny Llama, {positions} positions: {res.formula_cells:,} formula cells, "
          f"{res.weight_cells:,} weight cells, {book.stat().st_size / 1e3:.0f} kB, "
          f"export {export_s:.2f} s")
    print(f"  LibreOffice load + recalculation: best {min(times):.2f} s, median "
          f"{statistics.median(times):.2f} s (target <= 5 s); verify max abs error "
          f"{report.max_abs_err:.2g} ({'all match' if report.ok else 'MISMATCH'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cells(folder, args.positions)
        with Engine() as engine:
            llama(folder, engine, args.repeat, args.positions)


if __name__ == "__main__":
    main()
