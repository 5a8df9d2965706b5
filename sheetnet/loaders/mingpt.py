"""minGPT (karpathy/minGPT, mingpt/model.py): its state dict and its config.

Two layouts are read:
  - minGPT's own, as projects/chargpt writes it: a work folder with ``model.pt``
    (``torch.save(model.state_dict())``) and ``config.json`` (``config.to_dict()``: the model's
    settings under "model"); give the folder or model.pt;
  - one file, ``torch.save({"model": model.state_dict(), "config": {...}})``, the config being
    the model section (or the whole nested dict).

Module names are nanoGPT's (transformer.wte/wpe/h.N.ln_1/attn.c_attn/attn.c_proj/ln_2/mlp.c_fc/
mlp.c_proj/ln_f, lm_head).  Sizes come from the weights themselves (chargpt writes config.json
before it knows vocab_size and block_size); only n_head needs the config, directly or through
model_type's preset.  minGPT always has biases, uses the tanh GELU (NewGELU), nn.LayerNorm's eps
and an lm_head of its own (not tied).  A meta.pkl (``--meta``, or beside) gives the vocabulary.
"""
from __future__ import annotations

import re

from ..errors import SheetnetError
from ..models.fit import check_tensors
from .nanogpt import find_meta, read_meta_vocab
from .safe import read_json
from .source import Source, describe, is_state_dict, payload

# minGPT's model_type presets: (n_layer, n_head, n_embd)
PRESETS = {
    "openai-gpt": (12, 12, 768), "gpt2": (12, 12, 768), "gpt2-medium": (24, 16, 1024),
    "gpt2-large": (36, 20, 1280), "gpt2-xl": (48, 25, 1600), "gopher-44m": (8, 16, 512),
    "gpt-mini": (6, 6, 192), "gpt-micro": (4, 4, 128), "gpt-nano": (3, 3, 48),
}
_BLOCK = re.compile(r"^transformer\.h\.(\d+)\.")


def looks_like_gpt(state: object) -> bool:
    """A state dict in nanoGPT/minGPT naming (what minGPT's model.pt holds)."""
    return is_state_dict(state) and "transformer.wte.weight" in state


def read_mingpt(src: Source) -> dict:
    """A minGPT checkpoint (see the module docstring) -> a sheetnet "gpt" payload."""
    state, cfg = _state_and_config(src)
    model_cfg = cfg.get("model", cfg) if isinstance(cfg.get("model"), dict) else cfg
    check_tensors(state, f"{src.path}: the state dict")
    wte, wpe = state["transformer.wte.weight"], state.get("transformer.wpe.weight")
    if wpe is None or "lm_head.weight" not in state:
        raise SheetnetError(f"{src.path}: a minGPT state dict has transformer.wpe.weight and "
                            "lm_head.weight; this one lacks "
                            + ("transformer.wpe.weight" if wpe is None else "lm_head.weight"))
    flat = [k for k in ("transformer.wte.weight", "transformer.wpe.weight") if state[k].dim() != 2]
    if flat:
        raise SheetnetError(f"{src.path}: {flat[0]} is {tuple(state[flat[0]].shape)}, not a "
                            "2-D table")
    blocks = {int(m.group(1)) for k in state if (m := _BLOCK.match(k))}
    found = {"vocab_size": wte.shape[0], "n_embd": wte.shape[1], "block_size": wpe.shape[0],
             "n_layer": len(blocks)}
    preset = model_cfg.get("model_type")
    known = isinstance(preset, str) and preset in PRESETS
    given = dict(zip(("n_layer", "n_head", "n_embd"), PRESETS[preset])) if known else {}
    given.update({k: model_cfg[k] for k in ("n_layer", "n_head", "n_embd", "vocab_size", "block_size")
                  if model_cfg.get(k) is not None})
    if "n_head" not in given:
        raise SheetnetError(f"{src.path}: the minGPT config gives neither n_head nor a known "
                            f"model_type ({', '.join(PRESETS)}); the weights do not tell n_head")
    for key, value in found.items():
        if key in given and given[key] != value:
            raise SheetnetError(f"{src.path}: the config says {key} = {given[key]} but the weights "
                                f"have {value}")
    config = {**found, "n_head": given["n_head"], "bias": True, "gelu": "tanh",
              "tied": False, "ln_eps": 1e-5}
    # what import needs to write it back: the config as given, and which of the two layouts
    layout = "file" if src.path.is_file() and not looks_like_gpt(src.content()) else "folder"
    metadata = {"source_format": "mingpt", "mingpt_config": cfg, "layout": layout}
    if isinstance(preset, str):
        metadata["model_type"] = preset
    found = find_meta(src, None)  # chargpt keeps no dataset name: --meta or one beside
    if found is not None:
        metadata["vocab"] = read_meta_vocab(found)
    return payload("gpt", config, dict(state), metadata)


def _state_and_config(src: Source) -> tuple[dict, dict]:
    # (state dict, config dict) from either layout
    path = src.path
    if path.is_dir():
        path = path / "model.pt"
        src = Source(path, src.meta, src.activations)
    obj = src.content()
    if isinstance(obj, dict) and "model" in obj and "config" in obj and "model_args" not in obj:
        state, cfg = obj["model"], obj["config"]
        if not isinstance(cfg, dict):
            raise SheetnetError(f"{path}: 'config' must be a dict of minGPT settings")
    elif looks_like_gpt(obj):
        config_json = path.parent / "config.json"
        if not config_json.is_file():
            raise SheetnetError(f"{path} is a GPT state dict without its config: put minGPT's "
                                f"config.json beside it (n_head or model_type), or save "
                                "{'model': state_dict, 'config': {...}}")
        state, cfg = obj, read_json(config_json)
    else:
        raise SheetnetError(f"{path} is not a minGPT checkpoint (found {describe(obj)})")
    if not looks_like_gpt(state):
        raise SheetnetError(f"{path}: the minGPT state dict has no transformer.wte.weight")
    return state, cfg
