"""Reading files that other programs wrote, without running code from them, and without letting
a small file cost far more memory than its size (``check_archive``, ``check_expansion``).

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
import pickletools
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from ..errors import SheetnetError
from ..models.mlp import LAYER_TYPES, SUPPORTED_LAYERS
from .pt2 import refuse_export_archive

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
    check_archive(path)
    check_pickle_objects(path)
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
            content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        name = _global_named(str(exc))
        if name:
            raise refused(path, [name]) from None
        raise _unreadable(path, exc) from None
    except Exception as exc:  # torch raises many types for corrupt / foreign files
        raise _unreadable(path, exc) from None
    check_expansion(content, path)
    return content


# A zip record may inflate to at most the file's own size plus this (torch.save stores its
# records uncompressed, so a real checkpoint's records add up to less than the file)
ZIP_SLACK = 64 << 20
ZIP_MAGIC = b"PK\x03\x04"   # what torch.load looks for to read a file as a zip archive


def check_archive(path: Path) -> None:
    """Refuse a zip archive whose records declare more bytes than the file could hold stored.

    A 4 MB file can deflate a 4 GB record, which torch.load would inflate into memory; its
    central directory says so (file_size) before anything is read.

    A torch.export (.pt2) archive is refused here too, by its records' names: reading one can run
    code from it (see pt2.py).

    Raises:
        SheetnetError: a damaged zip, a torch.export archive, or records inflating past the file's
            size + ZIP_SLACK.
    """
    with path.open("rb") as f:
        if f.read(4) != ZIP_MAGIC:
            return   # a legacy (pre-1.6) torch file: its storages are read as the file holds them
    try:
        with zipfile.ZipFile(path) as archive:
            records = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError,
            NotImplementedError) as exc:   # NotImplementedError: a zip version zipfile lacks
        raise SheetnetError(f"{path} is not a loadable PyTorch checkpoint (a damaged zip "
                            f"archive: {str(exc)[:100]})") from None
    refuse_export_archive(path, [r.filename for r in records])
    size = path.stat().st_size
    total = sum(r.file_size for r in records)
    if total > size + ZIP_SLACK:
        big = max(records, key=lambda r: r.file_size)
        how = "compressed" if big.compress_type != zipfile.ZIP_STORED else "stored"
        raise SheetnetError(f"{path}: its zip records inflate to {total:,} bytes from a "
                            f"{size:,}-byte file ({big.filename} alone: {big.file_size:,} bytes, "
                            f"{how} in {big.compress_size:,}); sheetnet refuses a file that "
                            "expands that much (torch.save stores records uncompressed)")


# objects a pickle may create; each costs up to ~250 bytes for one opcode byte (an empty dict),
# so a 5 MB pickle of them would take 1.2 GB.  A GPT-2 checkpoint's pickle creates ~2,000.
MAX_PICKLE_OBJECTS = 2_000_000
# opcodes that create nothing new: framing, the memo, marks, and adding to a container
_NO_NEW_OBJECT = frozenset({
    "PROTO", "FRAME", "STOP", "MARK", "POP", "POP_MARK", "DUP", "PUT", "BINPUT", "LONG_BINPUT",
    "MEMOIZE", "GET", "BINGET", "LONG_BINGET", "APPEND", "APPENDS", "SETITEM", "SETITEMS",
    "ADDITEMS", "NONE", "NEWTRUE", "NEWFALSE", "BININT1"})   # BININT1: 0..255, cached ints


def check_pickle_objects(path: Path, data: bytes | None = None) -> None:
    """Count the objects the pickle(s) of a torch file (or ``data``) would create, statically.

    Raises:
        SheetnetError: more than MAX_PICKLE_OBJECTS.  A malformed pickle passes: loading it
            then says what is wrong.
    """
    created = 0
    try:
        for stream, pickles in _pickle_streams(path, data):
            with stream:
                for _ in range(pickles):
                    for op, _, _ in pickletools.genops(stream):
                        created += op.name not in _NO_NEW_OBJECT
                        if created > MAX_PICKLE_OBJECTS:
                            raise SheetnetError(
                                f"{path} holds a pickle creating more than "
                                f"{MAX_PICKLE_OBJECTS:,} objects; sheetnet refuses a file that "
                                "expands that much")
    except SheetnetError:
        raise
    except Exception:   # not a pickle, or damaged: torch.load / the unpickler says so
        return


def _pickle_streams(path: Path, data: bytes | None):
    # (stream, how many pickles to scan in it): the zip's data.pkl, or a legacy file's magic
    # number, protocol, system info and main pickle in a row, or a plain pickle's bytes
    if data is not None:
        yield io.BytesIO(data), 1
        return
    with path.open("rb") as f:
        is_zip = f.read(4) == ZIP_MAGIC
    if not is_zip:
        yield path.open("rb"), 4
        return
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.endswith("data.pkl"):
                yield archive.open(name), 1


# what a loaded object may expand to, in elements (tensor values, string characters, container
# entries), counting shared references each time they are reached: per byte of file, plus this
EXPANSION_SLACK = 16_000_000


def check_expansion(content: object, path: Path) -> None:
    """Refuse loaded content that would cost far more memory than its file when used.

    A pickle shares objects by reference: a tensor can be a stride-0 view of one stored number
    that copying turns into gigabytes, and a list can hold the same big list twice, nested fifty
    times (2^50 entries once written out as JSON).  Both are measured here, each shared object
    counted every time it is reached (memoised, so measuring is linear in the file).

    Raises:
        SheetnetError: a tensor larger than the values stored for it, a reference cycle, or a
            total past twice the file's size (in elements) + EXPANSION_SLACK.
    """
    limit = 2 * path.stat().st_size + EXPANSION_SLACK
    if _expanded_size(content, path, limit) > limit:
        raise SheetnetError(f"{path} expands to more than {limit:,} values once its shared "
                            "references are followed; sheetnet refuses a file that expands that "
                            "much")


def _expanded_size(root: object, path: Path, limit: int) -> int:
    # iterative post-order over containers, sizes memoised by id; a cycle is refused
    sizes: dict[int, int] = {}
    keep = []   # objects whose id is in sizes stay alive, so no id is reused meanwhile
    stack: list[tuple[object, bool]] = [(root, False)]
    open_ids: set[int] = set()
    while stack:
        obj, done = stack.pop()
        if id(obj) in sizes:
            continue
        kids = _children(obj)
        if kids is None:
            sizes[id(obj)] = _leaf_size(obj, path)
        elif done:
            open_ids.discard(id(obj))
            sizes[id(obj)] = min(limit + 1, 1 + sum(sizes[id(k)] for k in kids))
        elif id(obj) in open_ids:
            raise SheetnetError(f"{path} holds a container that contains itself; sheetnet "
                                "refuses reference cycles")
        else:
            open_ids.add(id(obj))
            stack.append((obj, True))
            stack.extend((k, False) for k in kids if id(k) not in sizes)
            if any(id(k) in open_ids for k in kids):
                raise SheetnetError(f"{path} holds a container that contains itself; sheetnet "
                                    "refuses reference cycles")
        keep.append(obj)
    return sizes[id(root)]


def _children(obj: object) -> list | None:
    # the objects a container holds (dict keys are strings, numbers or tuples of them)
    if isinstance(obj, dict):
        return [*obj.keys(), *obj.values()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return list(obj)
    if isinstance(obj, nn.Module):
        return list(obj.state_dict(keep_vars=True).values())
    return None


def _leaf_size(obj: object, path: Path) -> int:
    if isinstance(obj, torch.Tensor):
        if obj.device.type == "meta":
            raise SheetnetError(f"{path} holds a {tuple(obj.shape)} meta tensor: a shape without "
                                "values")
        stored = obj.untyped_storage().nbytes()
        if obj.numel() * obj.element_size() > stored:
            raise SheetnetError(f"{path} holds a {tuple(obj.shape)} tensor backed by only "
                                f"{stored:,} stored bytes (a view repeating its values); sheetnet "
                                "refuses tensors larger than their data")
        return obj.numel()
    return len(obj) if isinstance(obj, (str, bytes)) else 1


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
        SheetnetError: missing or damaged file, a pickle that names code, or one that expands
            far past its size (see ``check_expansion``).
    """
    if not path.is_file():
        raise SheetnetError(f"{path} does not exist")
    data = path.read_bytes()
    check_pickle_objects(path, data)
    try:
        content = _PlainUnpickler(io.BytesIO(data)).load()
    except _Named as exc:
        raise refused(path, [exc.args[0]]) from None
    except Exception as exc:
        raise SheetnetError(f"{path} is not a readable pickle ({type(exc).__name__}: {exc})") from None
    check_expansion(content, path)   # a word shared by a million ids is a million cells of it
    return content


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
