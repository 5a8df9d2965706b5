"""The checkpoint record: what import needs besides the weight cells to write a checkpoint back
(its format, architecture, config and metadata, every state-dict entry in order), built by export
from the loaded payload and kept in the manifest (``meta["checkpoint"]``).

An entry is either shown (a Param node whose ``source`` is its key), tied to another entry (the
GPT's lm_head is wte, written once in the workbook), a causal-mask buffer (rebuilt), a small
tensor kept as numbers, or dropped; a Hugging Face folder's tokenizer files are kept as text.
"""
from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

import torch

from .ir import graph as ir
from .manifest import CheckpointRecord, TensorEntry
from .manifest_checks import plain_file_name

KEPT_NUMBERS = 4096          # a tensor the workbook does not show is kept up to this many numbers
VOCAB_IN_META = "meta.vocab"  # metadata "vocab" equal to the manifest's meta["vocab"]: kept once
FOLDER_FILE_CHARS = 4_000_000  # an HF folder's tokenizer files are kept in the manifest up to this


def checkpoint_record(payload: dict, graph: ir.Graph, model_path=None) -> CheckpointRecord:
    """What import needs besides the weight cells to write ``payload`` (read from ``model_path``)
    back: its format, architecture, config and metadata, and every state-dict entry in order."""
    state, meta = payload["state_dict"], dict(payload.get("metadata", {}))
    shown = {n.op.source for n in graph.of_type(ir.Param)}
    tensors = tuple(_tensor_entry(key, t, state, shown) for key, t in state.items())
    fmt = meta.pop("source_format", "sheetnet")
    if meta.get("vocab") is not None and list(meta["vocab"]) == graph.meta.get("vocab"):
        meta["vocab"] = VOCAB_IN_META
    files = files_left = None
    if fmt == "hf-gpt2" and model_path is not None:
        files, files_left = _folder_files(Path(model_path))
    return CheckpointRecord(fmt, payload["architecture"], payload["config"], meta, tensors,
                            files, files_left)


def _tensor_entry(key: str, t: torch.Tensor, state: dict, shown: set) -> TensorEntry:
    # shown in the workbook, or what it is instead: tied to a shown twin, a causal mask, small
    # numbers kept, or dropped
    entry = TensorEntry(key, tuple(t.shape), str(t.dtype).removeprefix("torch."))
    if key in shown:
        return entry
    twin = next((k for k in state if k in shown and state[k].dtype == t.dtype
                 and state[k].shape == t.shape and torch.equal(state[k], t)), None)
    if twin is not None:
        return replace(entry, same_as=twin)
    if _is_causal_mask(t):
        return replace(entry, causal_mask=True)
    if t.numel() <= KEPT_NUMBERS:
        return replace(entry, values=t.tolist())
    return replace(entry, dropped=True)


def _folder_files(path: Path) -> tuple[dict, tuple]:
    # the text files of an HF folder besides config.json and the weights (tokenizer, generation
    # config), kept as they are up to FOLDER_FILE_CHARS each; the names of those left out.  Only
    # regular files that live in the folder: a symlink (to /etc/passwd, say) is left out, named
    folder, files, left = (path if path.is_dir() else path.parent), {}, []
    for f in sorted(folder.iterdir()):
        if f.name == "config.json" or f.name.startswith(".") \
                or f.suffix in (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack") \
                or f.name.endswith(".index.json"):
            continue
        text = _own_text_file(f)
        if text is None:
            if not f.is_dir() or f.is_symlink():
                left.append(f.name)
        else:
            files[f.name] = text
    return files, tuple(left)


def _own_text_file(f: Path) -> str | None:
    # the text of a regular file, not a link, of at most FOLDER_FILE_CHARS bytes; else None
    try:
        if not stat.S_ISREG(os.lstat(f).st_mode) or not plain_file_name(f.name):
            return None
        fd = os.open(f, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return None
            data = fh.read(FOLDER_FILE_CHARS + 1)
        return data.decode("utf-8") if len(data) <= FOLDER_FILE_CHARS else None
    except (UnicodeDecodeError, OSError):
        return None


def _is_causal_mask(t: torch.Tensor) -> bool:
    n = t.shape[-1] if t.dim() >= 2 else 0
    return (n > 0 and t.shape[-2] == n and t.numel() == n * n
            and torch.equal(t.reshape(n, n).double(), torch.tril(torch.ones(n, n, dtype=torch.float64))))
