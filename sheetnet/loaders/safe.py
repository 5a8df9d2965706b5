"""Reading files that other programs wrote, without running code from them.

A pickle can name any Python callable and have the unpickler call it; ``torch.load`` with
``weights_only=True`` refuses every callable outside a small allow-list.  Here that list grows,
for one load only, by exactly the torch.nn layers a plain MLP is made of; everything else a file
asks for is refused with its name.  ``read_plain_pickle`` is the same idea for a bare pickle
(nanoGPT's meta.pkl): dicts, lists, strings and numbers only.
"""
from __future__ import annotations

import io
import json
import pickle
import warnings
from pathlib import Path

import torch
from torch import nn

from ..errors import SheetnetError
from ..models.mlp import LAYER_TYPES, SUPPORTED_LAYERS

# the only classes a whole saved module may be built from (import path -> class)
MODULE_CLASSES: dict[str, type] = {f"{cls.__module__}.{cls.__name__}": cls
                                   for cls in (nn.Sequential, *LAYER_TYPES)}


def torch_load(path: Path) -> object:
    """``torch.load(path, weights_only=True)``; a whole nn.Sequential of supported layers loads too.

    The file's globals are listed first (a static scan that runs nothing): torch.nn classes outside
    MODULE_CLASSES name the unsupported layer, anything else is refused as code.

    Raises:
        SheetnetError: missing file, not a torch file, an unsupported layer, or code in the pickle.
    """
    if not path.is_file():
        raise SheetnetError(f"model file {path} does not exist")
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception:  # not a zip checkpoint, or opcodes the scan does not know: the load decides
        found = []
    layers = sorted(g for g in found if g.startswith("torch.nn.modules."))
    others = sorted(set(found) - set(layers))
    if others:
        raise refused(path, others)
    unsupported = [g for g in layers if g not in MODULE_CLASSES]
    if unsupported:
        names = ", ".join(g.rsplit(".", 1)[1] for g in unsupported)
        raise SheetnetError(f"{path}: layer {names} is not supported; supported: {SUPPORTED_LAYERS}")
    try:
        with torch.serialization.safe_globals([MODULE_CLASSES[g] for g in layers]), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")   # e.g. "Detected pickle protocol 4": the errors say more
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        name = _global_named(str(exc))
        if name:
            raise refused(path, [name]) from None
        raise _unreadable(path, exc) from None
    except Exception as exc:  # torch raises many types for corrupt / foreign files
        raise _unreadable(path, exc) from None


def refused(path: Path, names: list[str]) -> SheetnetError:
    """The error for a file whose unpickling would call ``names``."""
    return SheetnetError(f"{path} asks to run code when loaded ({', '.join(names)}); sheetnet "
                         "loads weights only and refuses it")


def _global_named(message: str) -> str | None:
    # "... Unsupported global: GLOBAL posix.system was not an allowed global ..." -> posix.system
    for line in message.splitlines():
        if "GLOBAL " in line:
            return line.split("GLOBAL ", 1)[1].split()[0]
    return None


def _unreadable(path: Path, exc: Exception) -> SheetnetError:
    # the weights-only unpickler's own reason when it gives one, else the first line
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    marker = [i for i, ln in enumerate(lines) if ln.startswith("Please file an issue")]
    why = lines[marker[0] + 1] if marker and marker[0] + 1 < len(lines) else (lines or [type(exc).__name__])[0]
    return SheetnetError(f"{path} is not a loadable PyTorch checkpoint ({why[:200]})")


class _Named(pickle.UnpicklingError):
    """The pickle named a class or function (``args[0]``)."""


class _PlainUnpickler(pickle.Unpickler):
    # dicts, lists, tuples, strings, numbers, bools and None come from opcodes alone; any
    # class or function a pickle names is refused, so nothing in the file can run
    def find_class(self, module, name):
        raise _Named(f"{module}.{name}")

    def persistent_load(self, pid):
        raise _Named(f"persistent id {pid!r}")


def read_plain_pickle(path: Path) -> object:
    """Unpickle ``path`` allowing only plain data (no classes, no functions).

    Raises:
        SheetnetError: missing or damaged file, or a pickle that names code.
    """
    if not path.is_file():
        raise SheetnetError(f"{path} does not exist")
    try:
        return _PlainUnpickler(io.BytesIO(path.read_bytes())).load()
    except _Named as exc:
        raise refused(path, [exc.args[0]]) from None
    except Exception as exc:
        raise SheetnetError(f"{path} is not a readable pickle ({type(exc).__name__}: {exc})") from None


def read_json(path: Path) -> dict:
    """A JSON object from ``path``.

    Raises:
        SheetnetError: missing file, bad JSON, or not an object.
    """
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SheetnetError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SheetnetError(f"{path} is not readable JSON ({exc})") from None
    if not isinstance(value, dict):
        raise SheetnetError(f"{path} does not hold a JSON object")
    return value
