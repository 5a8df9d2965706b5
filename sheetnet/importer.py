"""Workbook -> checkpoint: the weights as the workbook holds them now, written back in the format
the model was exported from (``sheetnet import BOOK OUT``).

The export records in the manifest (``Manifest.checkpoint``, see ``record.checkpoint_record``)
what a checkpoint holds besides the weight cells: its format, architecture, config and metadata,
and every state-dict entry in order with its shape and dtype.  An entry is either shown (a Param
node whose ``source`` is its key: its cells, transposed back where the node says so), tied to
another entry (the GPT's lm_head is wte, written once in the workbook), a causal-mask buffer
(rebuilt), or a small tensor kept in the manifest as numbers; a Hugging Face folder's tokenizer
files are kept as text.  Import reads the weight cells as values (what Excel or LibreOffice
saved; formulas are not needed), refuses a cell that is not a number with one line naming it, and
only then writes, atomically.

Not carried: nanoGPT's optimizer state (not a weight, and as big as the model twice over), and
what a workbook does not hold (inputs typed in the sheets are not part of a checkpoint).
"""
from __future__ import annotations

import json
import math
import pickle
import re
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .a1 import col_letter, quote_sheet
from .errors import SheetnetError
from .files import atomic_dir, atomic_path, check_output, torch_save
from .loaders.source import payload
from .manifest import CheckpointRecord, Manifest, NodeEntry, read_manifest
from .manifest_checks import plain_file_name
from .record import VOCAB_IN_META
from .xlsx_read import Book


def import_book(book, out, force: bool = False, notes: Callable[[str], None] | None = None) -> Path:
    """Write the weights of ``book`` as a checkpoint in the format it was exported from.

    Args:
        book: a workbook sheetnet exported (perhaps edited and saved in Excel or LibreOffice).
        out: the checkpoint to write; a folder for Hugging Face and minGPT work-folder models.
        force: overwrite ``out`` if it exists.
        notes: optional callable(str), told what was written and what was not carried.
    Returns:
        ``out``.
    Raises:
        SheetnetError: not a sheetnet workbook, a weight cell that is not a number (named by
            sheet and cell), a missing sheet, or ``out`` exists; nothing is written then.
    """
    book, out, say = Path(book), Path(out), notes or (lambda text: None)
    manifest = read_manifest(book)
    rec = manifest.checkpoint
    if rec is None:
        raise SheetnetError(f"{book} was exported by an older sheetnet that did not record the "
                            "checkpoint: export it again")
    if rec.format not in WRITERS:
        raise SheetnetError(f"{book}: cannot write format {rec.format!r}; "
                            f"supported: {', '.join(WRITERS)}")
    if out.exists() and out.resolve() == book.resolve():
        raise SheetnetError(f"{out} is the workbook itself: write the checkpoint elsewhere")
    check_output(out, force)  # before reading the workbook; the writers check again
    cells = read_weights(book, manifest)
    state = rebuild_state(rec, manifest.nodes, cells, say)
    metadata = dict(rec.metadata)
    if metadata.get("vocab") == VOCAB_IN_META:
        metadata["vocab"] = list(manifest.vocab)
    WRITERS[rec.format](out, rec, state, metadata, force, say)
    shown = sum(v.size for v in cells.values())
    say(f"{rec.format} checkpoint: {len(state)} tensors, {shown:,} weights read from {book.name}")
    return out


def read_weights(book: Path, manifest: Manifest) -> dict[str, np.ndarray]:
    """Every Param node's cells as a float64 array of the node's shape.

    Raises:
        SheetnetError: "weight L1.W: 'Layer 1'!C5 holds text 'abc', not a number", or is empty,
            holds NaN or INF, a number its checkpoint dtype cannot hold, or its sheet is missing.
    """
    params = {n: e for n, e in manifest.nodes.items() if e.op == "Param"}
    dtypes = {t.key: t.dtype for t in (manifest.checkpoint.tensors if manifest.checkpoint else ())}
    out = {}
    with Book(book) as wb:
        for sheet in dict.fromkeys(e.sheet for e in params.values()):
            names = [n for n, e in params.items() if e.sheet == sheet]
            out.update(_read_sheet(wb, sheet, {n: params[n] for n in names}, dtypes))
    return {n: out[n].T if params[n].laid_transposed else out[n] for n in params}


def _read_sheet(wb: Book, sheet: str, entries: dict[str, NodeEntry],
                dtypes: dict) -> dict[str, np.ndarray]:
    # one streamed pass over the rows the weights cover; arrays as the cells lie (NaN: not a
    # number yet), each row checked once the sheet is past it, in the order a reader would look
    boxes = {}
    for name, e in entries.items():
        boxes[name] = (e.row, e.col, *e.cells)
    # read_manifest checked that the sheet exists and its XML can back these cells
    arrays = {name: np.full((rows, cols), np.nan) for name, (_, _, rows, cols) in boxes.items()}
    top = min(r for r, _, _, _ in boxes.values())
    bottom = max(r + rows for r, _, rows, _ in boxes.values())
    left = min(c for _, c, _, _ in boxes.values())
    right = max(c + cols for _, c, _, cols in boxes.values())
    bad, done = {}, [top]

    def on_cell(r, c, kind, text):
        value = _number(kind, text)
        for name, (r0, c0, rows, cols) in boxes.items():
            if r0 <= r < r0 + rows and c0 <= c < c0 + cols:
                if value is None:
                    bad[(r, c)] = (kind, text)
                else:
                    arrays[name][r - r0, c - c0] = value

    def check_through(last):
        for r in range(done[0], last + 1):
            for name, (r0, c0, rows, cols) in boxes.items():
                if r0 <= r < r0 + rows:
                    _check_row(wb, name, sheet, r, c0, arrays[name][r - r0], bad,
                               dtypes.get(entries[name].source, "float64"))
            bad_keys = [k for k in bad if k[0] == r]
            for k in bad_keys:
                del bad[k]
        done[0] = max(done[0], last + 1)
    wb.cells(sheet, (top, bottom), (left, right), on_cell, check_through)
    check_through(bottom - 1)   # rows the sheet does not have at all
    return arrays


_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _number(kind: str, text: str | None) -> float | None:
    # a number cell's value; None for anything else (text, a boolean, an error, NaN, empty)
    if kind != "n" or text is None or not _NUMBER.fullmatch(text.strip()):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def _check_row(wb: Book, name: str, sheet: str, r: int, c0: int, values: np.ndarray, bad: dict,
               dtype: str) -> None:
    missing = np.flatnonzero(np.isnan(values))
    if missing.size:
        c = c0 + int(missing[0])
        kind, text = bad.get((r, c), ("n", None))
        raise _not_a_number(wb, name, sheet, r, c, kind, text)
    target = getattr(torch, dtype)
    if target.is_floating_point:   # a typed 1e308 is inf in float32: refused, not changed
        over = np.flatnonzero(torch.isinf(torch.from_numpy(values).to(target)).numpy())
    elif target == torch.bool:
        over = np.flatnonzero((values != 0) & (values != 1))
    else:
        info = torch.iinfo(target)
        over = np.flatnonzero((values < info.min) | (values > info.max))
    if over.size:
        c = c0 + int(over[0])
        raise SheetnetError(f"weight {name}: {quote_sheet(sheet)}!{col_letter(c)}{r + 1} holds "
                            f"{values[over[0]]:g}, more than its checkpoint's {dtype} can hold")


def _not_a_number(wb: Book, name: str, sheet: str, row: int, col: int, kind: str,
                  text: str | None) -> SheetnetError:
    if text is None:
        what = "is empty"
    elif kind == "e":
        what = f"holds the error {text}"
    elif kind == "b":
        what = f"holds {'TRUE' if text.strip() in ('1', 'true') else 'FALSE'}"
    elif kind == "n":   # a number cell whose text is no finite number: NaN, INF, -INF, junk
        word = text.strip()
        what = f"holds {_NON_FINITE.get(word.lower().lstrip('+'), repr(word[:40]))}"
    else:
        if kind == "s":
            text = wb.strings({int(text)}).get(int(text), "") if text.strip().isdigit() else ""
        what = f"holds text {text[:40] + '...' if len(text) > 40 else text!r}"
    return SheetnetError(f"weight {name}: {quote_sheet(sheet)}!{col_letter(col)}{row + 1} "
                         f"{what}, not a number")


_NON_FINITE = {"nan": "NaN", "inf": "INF", "-inf": "-INF", "infinity": "INF",
               "-infinity": "-INF"}


def rebuild_state(rec: CheckpointRecord, nodes: dict[str, NodeEntry], cells: dict,
                  say) -> dict[str, torch.Tensor]:
    """The state dict in the checkpoint's order, dtypes and shapes; tied entries re-tied."""
    by_source = {e.source: n for n, e in nodes.items() if e.op == "Param"}
    state, rounded = {}, 0
    for t in rec.tensors:
        dtype, key = getattr(torch, t.dtype), t.key
        if key in by_source:
            node = by_source[key]
            arr = cells[node].T if nodes[node].transposed else cells[node]
            if arr.size != int(np.prod(t.shape)):
                raise SheetnetError(f"weight {node} has {arr.size} cells; "
                                    f"{key} needs {list(t.shape)}")
            state[key] = torch.from_numpy(np.ascontiguousarray(arr)).reshape(t.shape).to(dtype)
            # beyond the 15 digits LibreOffice saves: an edit that is not a float32 number, say
            moved = np.abs(state[key].double().numpy().reshape(arr.shape) - arr) > 1e-14 * np.abs(arr)
            rounded += int(np.count_nonzero(moved))
        elif t.causal_mask:
            n = t.shape[-1]
            state[key] = torch.tril(torch.ones(n, n)).reshape(t.shape).to(dtype)
        elif t.values is not None:
            state[key] = torch.tensor(t.values, dtype=dtype).reshape(t.shape)
        elif t.dropped:
            say(f"not carried: {key} {list(t.shape)} (not shown in the workbook, too big to keep)")
        elif t.same_as is None:
            raise SheetnetError(f"{key}: the manifest says neither where its cells are nor what it is")
    for t in rec.tensors:   # tied entries are the very tensor they are tied to
        if t.same_as is not None:
            state[t.key] = state[t.same_as]
    if rounded:
        say(f"{rounded:,} weight value(s) rounded to the checkpoint's dtype "
            f"({', '.join(sorted({t.dtype for t in rec.tensors}))}; the cells hold float64)")
    return {t.key: state[t.key] for t in rec.tensors if t.key in state}


# --- writers: one per format, each writing what that format's own programs read -----------------
def _write_sheetnet(out, rec, state, metadata, force, say):
    with atomic_path(out, force=force) as tmp:
        torch_save(payload(rec.architecture, rec.config, state, metadata), tmp)


def _write_nanogpt(out, rec, state, metadata, force, say):
    # train.py's layout: {"model", "optimizer", "model_args", "iter_num", "best_val_loss", "config"}
    prefix = metadata.get("key_prefix", "")
    ck = {"model": {prefix + k: v for k, v in state.items()},
          "model_args": metadata.get("model_args") or {k: rec.config[k] for k in
                                                       ("n_layer", "n_head", "n_embd", "block_size",
                                                        "bias", "vocab_size")}}
    if "iter_num" in metadata:
        ck["iter_num"] = metadata["iter_num"]
    if "best_val_loss" in metadata:
        ck["best_val_loss"] = torch.tensor(metadata["best_val_loss"])
    ck["config"] = metadata.get("train_config", {})
    vocab_file = _vocab_file(out.parent, metadata, force)
    with atomic_path(out, force=force) as tmp:
        torch_save(ck, tmp)
    _write_vocab_file(vocab_file, metadata, say)
    say("not carried: the optimizer state (not a weight); sample.py reads this checkpoint, "
        "train.py's init_from='resume' needs a fresh optimizer")


def _write_mingpt(out, rec, state, metadata, force, say):
    cfg = metadata.get("mingpt_config") or {"n_head": rec.config["n_head"]}
    if metadata.get("layout") == "file":
        vocab_file = _vocab_file(out.parent, metadata, force)
        with atomic_path(out, force=force) as tmp:
            torch_save({"model": state, "config": cfg}, tmp)
        _write_vocab_file(vocab_file, metadata, say)
        return
    with atomic_dir(out, force=force) as tmp:   # chargpt's work folder
        torch_save(state, tmp / "model.pt")
        (tmp / "config.json").write_text(json.dumps(cfg, indent=4), encoding="utf-8")
        _write_vocab_file(_vocab_file(tmp, metadata, force), metadata, None)


def _write_hf_gpt2(out, rec, state, metadata, force, say):
    from safetensors.torch import save_file
    flip = set(metadata.get("transposed", []))
    sources = metadata.get("sources", {})
    tensors = {sources.get(k, k): (v.t() if k in flip else v).contiguous().clone()
               for k, v in state.items()}   # Linear (out, in) -> Conv1D (in, out) again
    with atomic_dir(out, force=force) as tmp:
        (tmp / "config.json").write_text(json.dumps(metadata["hf_config"], indent=2,
                                                    sort_keys=True) + "\n", encoding="utf-8")
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        for name, text in (rec.files or {}).items():   # tokenizer files, as they were
            if not plain_file_name(name):   # read_manifest refused it already; never write it
                raise SheetnetError(f"{name!r} is not a plain file name")
            with open(tmp / name, "x", encoding="utf-8") as f:   # "x": never through a link
                f.write(text)
    say("written: " + ", ".join(["config.json", "model.safetensors", *(rec.files or {})]))
    if rec.files_left:
        say(f"not carried (binary or too big to keep): {', '.join(rec.files_left)}")


def _write_mlp_module(out, rec, state, metadata, force, say):
    from .models.mlp import build_sequential
    model = build_sequential(rec.config.get("layers")).to(next(iter(state.values())).dtype)
    try:
        model.load_state_dict(state)
    except RuntimeError:
        raise SheetnetError("the manifest's layers do not match its tensors (mlp config)") from None
    with atomic_path(out, force=force) as tmp:
        torch_save(model, tmp)


def _write_mlp_state_dict(out, rec, state, metadata, force, say):
    with atomic_path(out, force=force) as tmp:
        torch_save(state, tmp)
    if metadata.get("activations"):
        say(f"a bare state dict: export it with --activations {metadata['activations']}")


def _vocab_file(folder: Path, metadata: dict, force: bool) -> Path | None:
    # nanoGPT's meta.pkl where the loaders look for the vocabulary (beside the checkpoint), unless
    # one with the same vocabulary is there; checked before anything is written
    from .loaders.nanogpt import read_meta_vocab
    path = folder / "meta.pkl"
    if not metadata.get("vocab") or not path.exists():
        return path if metadata.get("vocab") else None
    try:
        if read_meta_vocab(path) == list(metadata["vocab"]):
            return None
    except SheetnetError:
        pass
    if not force:
        raise SheetnetError(f"{path} holds another vocabulary (use --force to overwrite)")
    return path


def _write_vocab_file(path: Path | None, metadata: dict, say) -> None:
    if path is None:
        return
    vocab = list(metadata["vocab"])
    with atomic_path(path, force=True) as tmp:
        with open(tmp, "wb") as f:
            pickle.dump({"vocab_size": len(vocab), "itos": dict(enumerate(vocab)),
                         "stoi": {ch: i for i, ch in enumerate(vocab)}}, f)
    if say:
        say(f"wrote {path} (the vocabulary, as nanoGPT's meta.pkl)")


WRITERS = {"sheetnet": _write_sheetnet, "nanogpt": _write_nanogpt, "mingpt": _write_mingpt,
           "hf-gpt2": _write_hf_gpt2, "mlp-module": _write_mlp_module,
           "mlp-state-dict": _write_mlp_state_dict}
