"""The manifest's structure, checked as untrusted data: every value a reader uses, once.

``manifest.read_manifest`` runs ``check`` on the JSON it reads before any of it becomes a typed
``Manifest``: a tampered manifest is refused with one line naming the value, not met later as a
KeyError or a huge allocation.
"""
from __future__ import annotations

import json
import math

from .errors import SheetnetError
from .layout import MAX_COLS, MAX_ROWS

DTYPES = ("float16", "bfloat16", "float32", "float64", "uint8", "int8", "int16", "int32",
          "int64", "bool")
PRECISIONS = ("float64", "float32")
# verify passes these to ExportOptions as keywords (fmt, meta, activations go separately)
CAPTURE_OPTIONS = {"context": int, "input_value": float, "prompt": str, "tokens": list,
                   "lens": bool}
# a causal-mask buffer is rebuilt as an n x n tensor: GPT-2's n is 1024; 4096 costs 64 MB
CAUSAL_MASK_MAX = 4096
# the files import writes itself into a Hugging Face folder; a kept file may not replace them
HF_WRITTEN = ("config.json", "model.safetensors")


class _Tampered(Exception):
    pass


def _fail(where: str, what: str):
    raise _Tampered(f"{where} {what}")


def _is_int(v) -> bool:
    return type(v) is int


def _is_num(v) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def _want(v, kind, where: str, *choices):
    # v is of ``kind`` (dict, list, str, bool, int, "num"), and one of ``choices`` if given
    ok = {"num": _is_num, int: _is_int}.get(kind, lambda x: type(x) is kind)(v)
    if not ok:
        name = {"num": "a number", int: "a whole number", dict: "an object", list: "a list",
                str: "text", bool: "true or false"}[kind]
        _fail(where, f"is {json.dumps(v)[:40]}, not {name}")
    if choices and v not in choices:
        _fail(where, f"is {json.dumps(v)[:40]}, not one of {', '.join(map(str, choices))}")
    return v


def _key(d: dict, key: str, kind, where: str, *choices):
    if key not in d:
        _fail(where, f"has no {key!r}")
    return _want(d[key], kind, f"{where}.{key}", *choices)


def _opt(d: dict, key: str, kind, where: str, *choices):
    return None if d.get(key) is None else _want(d[key], kind, f"{where}.{key}", *choices)


def check(manifest, path, version: int) -> None:
    """Check a manifest read from ``path`` as untrusted data: its version (``version``, the one
    this sheetnet reads), keys, types and ranges, node regions inside the sheet limits,
    references between nodes, the checkpoint record.

    Raises:
        SheetnetError: "BOOK: tampered manifest: nodes['L1.W'].row is "abc", not a whole number".
    """
    try:
        _want(manifest, dict, "manifest")
        written = _key(manifest, "version", int, "version")
        if written != version:
            raise SheetnetError(f"{path}: manifest version {written} is not one this sheetnet "
                                f"reads ({version}): use the sheetnet that wrote it")
        nodes = _key(manifest, "nodes", dict, "manifest")
        if not nodes:
            _fail("nodes", "is empty")
        for name, entry in nodes.items():
            _check_node(entry, f"nodes[{name!r}]")
        for key in ("inputs", "outputs"):
            names = _key(manifest, key, list, "manifest")
            if not names:
                _fail(key, "is empty")
            for i, n in enumerate(names):
                _node_name(n, nodes, f"{key}[{i}]")
        _opt(manifest, "precision", str, "manifest", *PRECISIONS)
        _check_meta(_key(manifest, "meta", dict, "manifest"), nodes)
    except _Tampered as exc:
        raise SheetnetError(f"{path}: tampered manifest: {exc}") from None


def _node_name(n, nodes: dict, where: str) -> str:
    if _want(n, str, where) not in nodes:
        _fail(where, f"names node {n[:40]!r}, which the manifest does not have")
    return n


def _check_node(e, where: str) -> None:
    _want(e, dict, where)
    sheet = _key(e, "sheet", str, where)
    if not 0 < len(sheet) <= 31:
        _fail(f"{where}.sheet", "is not a sheet name")
    _key(e, "kind", str, where)
    op = _key(e, "op", str, where)
    row, col = _key(e, "row", int, where), _key(e, "col", int, where)
    shape = _key(e, "shape", list, where)
    if len(shape) != 2 or not all(_is_int(n) and n >= 0 for n in shape):
        _fail(f"{where}.shape", f"is {json.dumps(shape)[:40]}, not [rows, cols]")
    transposed = _opt(e, "layout", str, where, "transposed") is not None
    rows, cols = shape[::-1] if transposed else shape
    if not (0 <= row and row + rows <= MAX_ROWS and 0 <= col and col + cols <= MAX_COLS):
        _fail(where, f"covers {rows} x {cols} cells from row {row}, column {col}: past the "
                     f"sheet's {MAX_ROWS:,} rows x {MAX_COLS:,} columns")
    _opt(e, "ref", str, where)
    _check_bound(e, where)
    if op == "Param":
        _key(e, "source", str, where)
        _key(e, "transposed", bool, where)


def _check_bound(e: dict, where: str) -> None:
    # an input's bound (ir.Bound): above or at_least (not both), at_most not below the low end,
    # whole true or false and only with an end
    above, at_least = _opt(e, "above", "num", where), _opt(e, "at_least", "num", where)
    at_most = _opt(e, "at_most", "num", where)
    whole = _opt(e, "whole", bool, where)
    if above is not None and at_least is not None:
        _fail(where, "holds both above and at_least: an input's bound has one low end")
    if above is not None and at_most is not None:
        _fail(where, "holds both above and at_most: a bound with a high end is from its low end")
    if at_least is not None and at_most is not None and at_least > at_most:
        _fail(where, f"bounds its input from {at_least} to {at_most}, which admits nothing")
    if whole and above is None and at_least is None and at_most is None:
        _fail(f"{where}.whole", "is true with no bound to go with it")


def _check_meta(meta: dict, nodes: dict) -> None:
    _opt(meta, "architecture", str, "meta")
    vocab = _opt(meta, "vocab", list, "meta")
    if vocab is not None and not all(type(v) is str for v in vocab):
        _fail("meta.vocab", "holds something that is not text")
    load = _opt(meta, "load", dict, "meta") or {}
    for key in ("fmt", "meta", "activations"):
        _opt(load, key, str, "meta.load")
    _check_capture_options(_opt(meta, "capture_options", dict, "meta") or {})
    _check_run(_opt(meta, "run", dict, "meta") or {}, nodes)
    record = _opt(meta, "checkpoint", dict, "meta")
    if record is not None:
        _check_record(record, nodes, vocab)


def _check_capture_options(options: dict) -> None:
    for key, value in options.items():
        if key not in CAPTURE_OPTIONS:
            _fail("meta.capture_options", f"has {key[:40]!r}, not one of "
                                          f"{', '.join(CAPTURE_OPTIONS)}")
        kind = CAPTURE_OPTIONS[key]
        where = f"meta.capture_options.{key}"
        if kind is float:
            _want(value, "num", where)
        elif kind is int:
            if not 1 <= _want(value, int, where) <= MAX_ROWS:
                _fail(where, f"is {value}, not 1 to {MAX_ROWS:,}")
        elif kind is list:
            if not all(_is_int(t) and t >= 0 for t in _want(value, list, where)):
                _fail(where, "holds something that is not a token id")
        else:
            _want(value, kind, where)


def _check_run(run: dict, nodes: dict) -> None:
    if run.get("input") is not None:
        _node_name(run["input"], nodes, "meta.run.input")
    for key in ("inputs", "report"):
        for k, n in (_opt(run, key, dict, "meta.run") or {}).items():
            _node_name(n, nodes, f"meta.run.{key}.{k}")
    for i, n in enumerate(_opt(run, "errors", list, "meta.run") or []):
        _node_name(n, nodes, f"meta.run.errors[{i}]")
    for key in ("blank_fill", "integers", "vocab"):
        if not all(type(v) is str for v in _opt(run, key, list, "meta.run") or []):
            _fail(f"meta.run.{key}", "holds something that is not text")
    positions = _opt(run, "positions", dict, "meta.run")
    if positions is not None:
        _node_name(positions.get("count"), nodes, "meta.run.positions.count")
        if not all(type(v) is str for v in _opt(positions, "keys", list, "meta.run.positions") or []):
            _fail("meta.run.positions.keys", "holds something that is not text")


def _check_record(rec: dict, nodes: dict, vocab) -> None:
    where = "meta.checkpoint"
    for key in ("format", "architecture"):
        _key(rec, key, str, where)
    _key(rec, "config", dict, where)
    metadata = _key(rec, "metadata", dict, where)
    tensors = _key(rec, "tensors", list, where)
    shown = {e["source"]: e for e in nodes.values() if e["op"] == "Param"}
    entries = {}
    for i, t in enumerate(tensors):
        w = f"{where}.tensors[{i}]"
        _want(t, dict, w)
        key = _key(t, "key", str, w)
        if key in entries:
            _fail(w, f"repeats key {key[:40]!r}")
        shape = _key(t, "shape", list, w)
        if not all(_is_int(n) and 0 <= n <= MAX_ROWS * MAX_COLS for n in shape):
            _fail(f"{w}.shape", f"is {json.dumps(shape)[:40]}, not a list of sizes")
        _key(t, "dtype", str, w, *DTYPES)
        entries[key] = t
        _check_tensor(t, shown.get(key), w)
    for i, t in enumerate(tensors):
        if "same_as" in t:
            twin = entries.get(_want(t["same_as"], str, f"{where}.tensors[{i}].same_as"))
            if twin is None or "same_as" in twin or twin["shape"] != t["shape"] \
                    or twin["dtype"] != t["dtype"]:
                _fail(f"{where}.tensors[{i}].same_as", "does not name a tensor of its shape")
    for name, e in nodes.items():
        if e["op"] == "Param" and e["source"] not in entries:
            _fail(f"nodes[{name!r}].source", f"names {e['source'][:40]!r}, not in the checkpoint")
    _check_metadata(metadata, rec["format"], rec["config"], vocab)
    _check_files(rec)


def _check_tensor(t: dict, node, w: str) -> None:
    # what the entry is: shown (a Param's cells), or exactly one of the kept forms
    size = math.prod(t["shape"])
    forms = [k for k in ("same_as", "causal_mask", "values", "dropped") if k in t]
    if node is not None:
        if forms:
            _fail(w, "is shown in the workbook and also " + forms[0])
        if size != node["shape"][0] * node["shape"][1]:
            _fail(f"{w}.shape", f"is {t['shape']}, but its cells are {node['shape']}")
        return
    if len(forms) != 1:
        _fail(w, "says neither where its cells are nor what it is" if not forms
              else f"is both {forms[0]} and {forms[1]}")
    if forms[0] in ("causal_mask", "dropped"):
        _want(t[forms[0]], bool, f"{w}.{forms[0]}", True)
    if forms[0] == "causal_mask":
        n = t["shape"][-1] if t["shape"] else 0
        if not 1 <= n <= CAUSAL_MASK_MAX or size != n * n:
            _fail(f"{w}.shape", f"is {t['shape']}, not a causal mask of at most "
                                f"{CAUSAL_MASK_MAX} x {CAUSAL_MASK_MAX}")
    if forms[0] == "values":
        flat = _flat(t["values"], t["shape"], f"{w}.values")
        if not all(_is_num(v) or type(v) is bool for v in flat):
            _fail(f"{w}.values", "holds something that is not a finite number")


def _flat(values, shape: list, where: str) -> list:
    # the numbers of a nested list of exactly ``shape`` (what torch.tensor(values) would build)
    if not shape:
        return [values]
    if type(values) is not list or len(values) != shape[0]:
        _fail(where, f"is not a list of shape {shape}")
    return [x for v in values for x in _flat(v, shape[1:], where)]


def _check_metadata(m: dict, fmt: str, config: dict, vocab) -> None:
    w = "meta.checkpoint.metadata"
    kinds = {"key_prefix": str, "model_args": dict, "iter_num": int, "best_val_loss": "num",
             "train_config": dict, "mingpt_config": dict, "layout": str, "transposed": list,
             "sources": dict, "hf_config": dict, "activations": str}
    for key, kind in kinds.items():
        _opt(m, key, kind, w)
    if not all(type(v) is str for v in m.get("transposed") or []):
        _fail(f"{w}.transposed", "holds something that is not text")
    if not all(type(v) is str for v in (m.get("sources") or {}).values()):
        _fail(f"{w}.sources", "holds something that is not text")
    if m.get("vocab") is not None:
        if m["vocab"] == "meta.vocab":
            if vocab is None:
                _fail(f"{w}.vocab", "refers to meta.vocab, which the manifest does not have")
        elif type(m["vocab"]) is not list or not all(type(v) is str for v in m["vocab"]):
            _fail(f"{w}.vocab", "is not a list of texts")
    if fmt == "hf-gpt2":
        _key(m, "hf_config", dict, w)
    if fmt == "nanogpt" and m.get("model_args") is None:
        for key in ("n_layer", "n_head", "n_embd", "block_size", "bias", "vocab_size"):
            if key not in config:
                _fail("meta.checkpoint.config", f"has no {key!r}")
    if fmt == "mingpt" and m.get("mingpt_config") is None:
        _key(config, "n_head", int, "meta.checkpoint.config")


def _check_files(rec: dict) -> None:
    # an HF folder's kept text files: plain names only, written into the new folder as they are
    for i, name in enumerate(_opt(rec, "files_left", list, "meta.checkpoint") or []):
        _want(name, str, f"meta.checkpoint.files_left[{i}]")
    for name, text in (_opt(rec, "files", dict, "meta.checkpoint") or {}).items():
        if not plain_file_name(name) or name in HF_WRITTEN:
            _fail("meta.checkpoint.files", f"names {name[:60]!r}, not a plain file name "
                                           "(import writes only into its own folder)")
        _want(text, str, f"meta.checkpoint.files[{name[:40]!r}]")


def plain_file_name(name) -> bool:
    """A name that can only mean a file in the folder it is written to: no path separator, not
    . or .., not hidden, no control character, at most 255 bytes."""
    return (type(name) is str and 0 < len(name.encode("utf-8", "surrogatepass")) <= 255
            and not name.startswith(".") and not any(c in name for c in "/\\:")
            and all(ord(c) >= 32 and ord(c) != 127 for c in name))
