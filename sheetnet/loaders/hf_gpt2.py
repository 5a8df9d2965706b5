"""A Hugging Face GPT-2: the folder ``save_pretrained`` writes (config.json and model.safetensors,
or pytorch_model.bin from older versions).

The module names are nanoGPT's, with two differences: GPT2LMHeadModel prefixes the body with
``transformer.`` (GPT2Model does not), and the four projections are Conv1D modules that store
their weight as (in, out) where nn.Linear stores (out, in), so they are transposed here.
``metadata`` records each tensor's HF name and which were transposed, so the layout can be
written back.  model.safetensors is read with the safetensors package (no pickle at all).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import SheetnetError
from ..models.fit import config_choice, config_int, config_number
from .safe import read_json, torch_load
from .source import Source, is_state_dict, payload

# HF activation_function -> sheetnet's GELU form
GELU_FORMS = {"gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu": "erf"}
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
BODY = ("wte.", "wpe.", "h.", "ln_f.")   # names GPT2Model writes without the "transformer." prefix
MASK_BUFFERS = (".attn.bias", ".attn.masked_bias")   # causal-mask buffers of older versions
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def read_hf_gpt2(src: Source) -> dict:
    """A GPT-2 save_pretrained folder (or a weight file inside one) -> a sheetnet "gpt" payload."""
    folder = src.path if src.path.is_dir() else src.path.parent
    cfg = read_json(folder / "config.json")
    config = gpt_config(cfg, folder / "config.json")
    raw = _weights(src.path, folder)
    state, sources, transposed = {}, {}, []
    for name, tensor in raw.items():
        if name.endswith(MASK_BUFFERS):
            continue
        ours = f"transformer.{name}" if name.startswith(BODY) else name
        if ours.endswith(CONV1D):   # Conv1D (in, out) -> Linear (out, in)
            tensor = tensor.t().contiguous()
            transposed.append(ours)
        state[ours] = tensor
        sources[ours] = name
    if not config["tied"] and "lm_head.weight" not in state:
        raise SheetnetError(f"{folder}: tie_word_embeddings is false but there is no lm_head.weight")
    metadata = {"source_format": "hf-gpt2", "sources": sources, "transposed": transposed,
                "hf_config": cfg}
    vocab = _vocab(folder / "vocab.json", config["vocab_size"])
    if vocab is not None:
        metadata["vocab"] = vocab
    out = payload("gpt", config, state, metadata)
    if any((folder / f).is_file() for f in ("merges.txt", "tokenizer.json")):
        # a byte-level BPE beside the model: read (loaders/bpe.py) only when --prompt asks for
        # the Tokenizer sheet, so a bad tokenizer file never stops an export with token ids
        out["tokenizer_folder"] = folder
    return out


def gpt_config(cfg: dict, where: Path) -> dict:
    """sheetnet's GPT config from a GPT-2 config.json; what it cannot compute is named."""
    if cfg.get("model_type") != "gpt2":
        raise SheetnetError(f"{where}: model_type {cfg.get('model_type')!r} is not supported; "
                            "supported: gpt2")
    act = cfg.get("activation_function", "gelu_new")
    if not isinstance(act, str) or act not in GELU_FORMS:
        raise SheetnetError(f"{where}: activation_function {act!r} is not supported; "
                            f"supported: {', '.join(GELU_FORMS)}")
    # each value checked under its config.json name (GPTConfig would name sheetnet's)
    sizes = {key: config_int(cfg.get(key, default), key, str(where))
             for key, default in (("vocab_size", 50257), ("n_positions", 1024), ("n_layer", 12),
                                  ("n_head", 12), ("n_embd", 768))}
    eps = config_number(cfg.get("layer_norm_epsilon", 1e-5), "layer_norm_epsilon", str(where))
    tied = config_choice(cfg.get("tie_word_embeddings", True), "tie_word_embeddings", str(where),
                         (True, False))
    n_embd = sizes["n_embd"]
    unsupported = {
        "n_inner": cfg.get("n_inner") not in (None, 4 * n_embd),
        "scale_attn_weights": cfg.get("scale_attn_weights", True) is not True,
        "scale_attn_by_inverse_layer_idx": bool(cfg.get("scale_attn_by_inverse_layer_idx", False)),
        "add_cross_attention": bool(cfg.get("add_cross_attention", False)),
    }
    bad = [k for k, is_bad in unsupported.items() if is_bad]
    if bad:
        raise SheetnetError(f"{where}: {bad[0]} = {cfg.get(bad[0])!r} is not supported (sheetnet's "
                            "GPT has a 4x MLP and attention scaled by 1/sqrt(head size))")
    return {"vocab_size": sizes["vocab_size"], "block_size": sizes["n_positions"],
            "n_layer": sizes["n_layer"], "n_head": sizes["n_head"], "n_embd": n_embd,
            "bias": True, "gelu": GELU_FORMS[act], "tied": tied, "ln_eps": eps}


def _weights(path: Path, folder: Path) -> dict:
    # the tensors by their HF names, from the file given or the first weight file in the folder
    if path.is_dir():
        found = [folder / f for f in WEIGHT_FILES if (folder / f).is_file()]
        if not found:
            raise SheetnetError(f"{folder} has config.json but no weights (looked for "
                                f"{', '.join(WEIGHT_FILES)})")
        path = found[0]
    if path.name.endswith(".index.json"):   # sharded: {"weight_map": {name: shard file}}
        shards = _shard_files(read_json(path).get("weight_map"), path)
        out = {}
        for shard in shards:
            out.update(_weights(folder / shard, folder))
        return out
    if path.suffix == ".safetensors":
        try:
            from safetensors import SafetensorError
            from safetensors.torch import load_file
        except ImportError:
            raise SheetnetError(f"reading {path.name} needs the safetensors package "
                                "(pip install safetensors)") from None
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise SheetnetError(f"{path} is not a readable safetensors file ({exc})") from None
    state = torch_load(path)
    if not is_state_dict(state):
        raise SheetnetError(f"{path} does not hold a state dict (name -> tensor)")
    return state


def _shard_files(weight_map: object, index: Path) -> list[str]:
    # the shard files an index names: plain file names of weight files beside it (an index naming
    # an index would recurse, a path would read outside the folder)
    if not isinstance(weight_map, dict) or not weight_map:
        raise SheetnetError(f"{index} has no weight_map (tensor name -> shard file)")
    shards = sorted({s for s in weight_map.values() if isinstance(s, str)})
    bad = [s for s in weight_map.values() if not isinstance(s, str) or Path(s).name != s
           or not s.endswith((".safetensors", ".bin"))]
    if bad:
        raise SheetnetError(f"{index}: shard {str(bad[0])[:80]!r} is not the name of a .safetensors "
                            "or .bin file beside it")
    return shards


def _vocab(path: Path, size: int) -> list[str] | None:
    # vocab.json ({token: id}) as strings in id order, when it names every id exactly once
    if not path.is_file():
        return None
    table = read_json(path)
    by_id = {v: k for k, v in table.items() if isinstance(v, int)}
    if sorted(by_id) != list(range(size)):
        return None
    strings = [by_id[i] for i in range(size)]
    # merges.txt beside it: GPT-2's byte-level BPE, whose vocab.json spells bytes as printable
    # characters ("Ġthe" is " the"); the sheets show the text
    return byte_level_text(strings) if (path.parent / "merges.txt").is_file() else strings


def _byte_chars() -> dict[str, int]:
    # GPT-2's bytes_to_unicode, inverted: printable bytes stand for themselves, the other 68
    # take the characters from U+0100 on, in byte order
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    others = [b for b in range(256) if b not in printable]
    table = {chr(b): b for b in printable}
    table.update({chr(0x100 + k): b for k, b in enumerate(others)})
    return table


def byte_level_text(strings: list[str]) -> list[str]:
    """Byte-level BPE token strings -> their text; a token holding part of a UTF-8 character
    shows the bytes it has ("\\xe2\\x80").  Strings with other characters are kept as they are."""
    table = _byte_chars()
    if not all(ch in table for s in strings for ch in s):
        return strings
    return [bytes(table[ch] for ch in s).decode("utf-8", errors="backslashreplace")
            for s in strings]
