"""nanoGPT's ``ckpt.pt``, as its train.py saves it, and its ``meta.pkl`` vocabulary.

    {"model": state_dict, "optimizer": ..., "model_args": {n_layer, n_head, n_embd, block_size,
     bias, vocab_size, dropout}, "iter_num": int, "best_val_loss": tensor, "config": {...}}

nanoGPT's module names are sheetnet's GPT's, so the state dict loads as is once torch.compile's
``_orig_mod.`` prefix is gone.  nanoGPT ties lm_head to wte and uses the exact (erf) GELU.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import SheetnetError
from ..models.fit import check_tensors
from .safe import read_plain_pickle
from .source import Source, describe, payload

MODEL_ARGS = ("n_layer", "n_head", "n_embd", "block_size", "bias", "vocab_size")
COMPILED_PREFIX = "_orig_mod."   # torch.compile wraps the module; its state dict keys carry this


def read_nanogpt(src: Source) -> dict:
    """A nanoGPT checkpoint -> a sheetnet "gpt" payload (vocabulary from meta.pkl when there is one)."""
    ck = src.content()
    if not (isinstance(ck, dict) and isinstance(ck.get("model_args"), dict)
            and isinstance(ck.get("model"), dict)):
        raise SheetnetError(f"{src.path} is not a nanoGPT checkpoint (no 'model' and 'model_args' "
                            f"entries; found {describe(ck)})")
    args = ck["model_args"]
    missing = [k for k in MODEL_ARGS if k not in args]
    if missing:
        raise SheetnetError(f"{src.path}: nanoGPT model_args lack {', '.join(missing)}")
    config = {k: args[k] for k in MODEL_ARGS}
    config.update(gelu="erf", tied=True, ln_eps=1e-5)
    check_tensors(ck["model"], f"{src.path}: model")
    state = {k[len(COMPILED_PREFIX):] if k.startswith(COMPILED_PREFIX) else k: v
             for k, v in ck["model"].items()}
    # what import needs to write the checkpoint back as train.py saved it (not the optimizer)
    metadata = {"source_format": "nanogpt", "model_args": dict(args)}
    if any(k.startswith(COMPILED_PREFIX) for k in ck["model"]):
        metadata["key_prefix"] = COMPILED_PREFIX
    if isinstance(ck.get("config"), dict):
        metadata["train_config"] = dict(ck["config"])
    if isinstance(ck.get("iter_num"), int):
        metadata["iter_num"] = ck["iter_num"]
    loss = ck.get("best_val_loss")
    if isinstance(loss, (int, float, torch.Tensor)) and torch.as_tensor(loss).numel() == 1:
        metadata["best_val_loss"] = float(loss)
    dataset = (ck.get("config") or {}).get("dataset") if isinstance(ck.get("config"), dict) else None
    if isinstance(dataset, str):
        metadata["dataset"] = dataset
    found = find_meta(src, metadata.get("dataset"))
    if found is not None:
        metadata["vocab"] = read_meta_vocab(found)
        if src.meta is None and found != _folder(src) / "meta.pkl":
            # found under data/<dataset>/, maybe from the working directory: recorded, so that
            # verify reads the same file from wherever it runs
            metadata["vocab_file"] = str(found.resolve())
    return payload("gpt", config, state, metadata)


def find_meta(src: Source, dataset: str | None) -> Path | None:
    """The meta.pkl to read: ``--meta PATH``, else one beside the checkpoint, else
    data/<dataset>/meta.pkl under the working directory (where nanoGPT's sample.py looks) or
    under the checkpoint folder's parent (nanoGPT's out-* folders sit beside data/); else None."""
    if src.meta is not None:
        return Path(src.meta)  # read_meta_vocab says so if it does not exist
    folder = _folder(src)
    places = [folder / "meta.pkl"]
    if dataset and Path(dataset).name == dataset:  # a plain name, as train.py's configs give
        places += [Path.cwd() / "data" / dataset / "meta.pkl",
                   folder.parent / "data" / dataset / "meta.pkl"]
    return next((p for p in places if p.is_file()), None)


def _folder(src: Source) -> Path:
    return src.path.parent if src.path.is_file() else src.path


def read_meta_vocab(path: Path) -> list[str]:
    """The strings of a nanoGPT meta.pkl (``{"itos": {id: str}, "stoi": ..., "vocab_size": n}``)
    in id order, read without running code (see ``safe.read_plain_pickle``).

    Raises:
        SheetnetError: not such a pickle, or ids that are not 0..n-1.
    """
    meta = read_plain_pickle(path)
    itos = meta.get("itos") if isinstance(meta, dict) else None
    if isinstance(itos, list):
        itos = dict(enumerate(itos))
    if not isinstance(itos, dict) or not itos:
        raise SheetnetError(f"{path} has no 'itos' table (id -> string) as nanoGPT's meta.pkl does")
    if sorted(itos) != list(range(len(itos))) or not all(isinstance(s, str) for s in itos.values()):
        raise SheetnetError(f"{path}: 'itos' must map the ids 0..{len(itos) - 1} to strings")
    return [itos[i] for i in range(len(itos))]
