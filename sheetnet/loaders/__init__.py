"""Checkpoint readers: one per format, each returning a sheetnet payload dict
({"format", "version", "architecture", "config", "state_dict", "metadata"}) that ``capture``
lowers.  ``metadata["source_format"]`` says which reader made it.

Nothing a file holds is run: torch files load with ``weights_only=True`` (a whole nn.Sequential
through a one-load allow-list of its layer classes), safetensors files with safetensors, meta.pkl
with an unpickler that knows no classes (see ``safe.py``).

Formats, and how ``auto`` tells them apart (first match):
    hf-gpt2         a folder whose config.json has "model_type": "gpt2" (or a weight file in one)
    hf-llama        the same with any other model_type: llama, qwen2, mistral (hf_llama.py)
    mingpt          a folder with config.json and model.pt; {"model", "config"}; a GPT state
                    dict with config.json beside it (see mingpt.py)
    sheetnet        a dict with "format": "sheetnet"
    nanogpt         a dict with "model_args" and "model"
    mlp-module      a whole saved nn.Sequential
    mlp-state-dict  a state dict with keys "0.weight", "0.bias", ... (needs --activations)
A torch.export program (.pt2) is refused whatever the format, before it is read (see pt2.py).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from torch import nn

from ..checkpoint import check_payload
from ..errors import SheetnetError
from ..a1 import MAX_CELL_CHARS
from .hf_gpt2 import WEIGHT_FILES, read_hf_gpt2
from .hf_llama import read_hf_llama
from .mingpt import looks_like_gpt, read_mingpt
from .nanogpt import read_nanogpt
from .safe import read_json, torch_load
from .sequential import looks_like_sequential, read_module, read_state_dict
from .source import Source
from .source import describe as describe_object  # "describe" is also the module describe.py

READERS: dict[str, Callable[[Source], dict]] = {
    "sheetnet": lambda src: check_payload(src.content(), src.path),
    "nanogpt": read_nanogpt,
    "hf-gpt2": read_hf_gpt2,
    "hf-llama": read_hf_llama,
    "mingpt": read_mingpt,
    "mlp-module": read_module,
    "mlp-state-dict": read_state_dict,
}
FORMATS = ("auto", *READERS)


def load(path: str | os.PathLike, fmt: str | None = None, meta: str | os.PathLike | None = None,
         activations: str | None = None) -> dict:
    """Read a model file or folder in format ``fmt`` (None or "auto": detect it).

    Args:
        path: the checkpoint file, or a folder (Hugging Face save_pretrained, minGPT work dir).
        fmt: one of FORMATS.
        meta: GPT formats: a nanoGPT-style meta.pkl with the vocabulary (default: one beside path).
        activations: a bare Sequential state dict: comma-separated activations between its
            Linear layers (relu, tanh, sigmoid, gelu, gelu_tanh, leaky_relu[:slope], silu,
            softplus[:beta], elu[:alpha], identity).
    Returns:
        the payload, its metadata["source_format"] set to the reader's format.
    Raises:
        SheetnetError: unknown format, an undetectable file, or one the reader cannot read.
    """
    fmt = fmt or "auto"
    if fmt not in FORMATS:
        raise SheetnetError(f"format {fmt!r} is not supported; supported: {', '.join(FORMATS)}")
    src = Source(Path(path), Path(meta) if meta is not None else None, activations)
    if fmt == "auto":
        fmt = detect(src)
    out = READERS[fmt](src)
    out.setdefault("metadata", {}).setdefault("source_format", fmt)
    check_vocab(out["metadata"].get("vocab"), src.path)
    return out


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a sheetnet checkpoint without executing code from it, through the one safe loader
    every format uses (``safe.torch_load``: weights only, zip records and shared references
    bounded by the file's size).

    Raises:
        SheetnetError: missing file, not a torch file, unsafe pickle, a file that expands far past
            its size, or not a sheetnet checkpoint.
    """
    return check_payload(torch_load(Path(path)), path)


def check_vocab(vocab: object, path: Path) -> None:
    """The vocabulary a reader found (None: none), checked once for every format: a list of
    strings, each short enough for the cell it is written to.

    Raises:
        SheetnetError: not a list of strings, or a string longer than MAX_CELL_CHARS (its id named).
    """
    if vocab is None:
        return
    if not isinstance(vocab, list):
        raise SheetnetError(f"{path}: the vocabulary must be a list of strings, found a "
                            f"{type(vocab).__name__}")
    for i, word in enumerate(vocab):
        if not isinstance(word, str):
            raise SheetnetError(f"{path}: vocabulary id {i} is a {type(word).__name__}, not a string")
        if len(word) > MAX_CELL_CHARS:
            raise SheetnetError(f"{path}: vocabulary id {i} is {len(word):,} characters long; a "
                                f"spreadsheet cell holds at most {MAX_CELL_CHARS:,}")


def detect(src: Source) -> str:
    """The format of ``src`` (see the module docstring).

    Raises:
        SheetnetError: nothing matched; the message says what was found.
    """
    path = src.path
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise SheetnetError(f"{path} is a folder without config.json (a Hugging Face "
                                "save_pretrained folder or a minGPT work folder has one)")
        if "model_type" in read_json(path / "config.json"):
            return _hf_format(read_json(path / "config.json"))
        if (path / "model.pt").is_file():
            return "mingpt"
        raise SheetnetError(f"{path}: config.json has no model_type (not Hugging Face) and there is "
                            "no model.pt beside it (not minGPT)")
    if path.name in WEIGHT_FILES and (path.parent / "config.json").is_file():
        if "model_type" in read_json(path.parent / "config.json"):
            return _hf_format(read_json(path.parent / "config.json"))
    obj = src.content()
    if isinstance(obj, nn.Module):
        return "mlp-module"
    if isinstance(obj, dict):
        if obj.get("format") == "sheetnet":
            return "sheetnet"
        if "model_args" in obj and "model" in obj:
            return "nanogpt"
        if "model" in obj and "config" in obj:
            return "mingpt"
        if looks_like_sequential(obj):
            return "mlp-state-dict"
        if looks_like_gpt(obj):
            return "mingpt"
    raise SheetnetError(f"cannot tell the format of {path}: it holds {describe_object(obj)}; "
                        f"give --format (one of {', '.join(READERS)})")


def _hf_format(cfg: dict) -> str:
    # GPT-2 has its own reader; every other model_type goes to the Llama-family reader, which
    # names the supported ones when it is none of them
    return "hf-gpt2" if cfg.get("model_type") == "gpt2" else "hf-llama"
