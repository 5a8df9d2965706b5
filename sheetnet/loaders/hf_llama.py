"""A Hugging Face Llama-family causal LM (model_type llama, qwen2 or mistral): the folder
``save_pretrained`` writes (config.json and model.safetensors).

config.json is untrusted data: only the keys below are read, each checked (whole numbers within
a sheet's limits, heads that divide, RoPE without scaling, SiLU/GELU MLPs); the rest are left
out of the model (a key that changed the computation would bring weights the model does not
have, which are refused).  The model is built with transformers' own classes from the checked
values (an optional extra, ``pip install sheetnet[hf]``; remote code is never trusted), on the
meta device here, only to know each weight's name and shape; capture/hf_llama.py builds it for
real and lowers it through the generic torch.export front end.  Weights are read as
loaders/hf_gpt2.py reads them (safetensors, no pickle), tied or untied lm_head.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import SheetnetError
from ..models.fit import check_tensors, config_choice, config_int, config_number
from .hf_gpt2 import _weights as read_weights
from .safe import read_json
from .source import Source, payload

ARCHITECTURE = "hf-llama"
# model_type -> (transformers config class, causal LM class)
FAMILIES = {"llama": ("LlamaConfig", "LlamaForCausalLM"),
            "qwen2": ("Qwen2Config", "Qwen2ForCausalLM"),
            "mistral": ("MistralConfig", "MistralForCausalLM")}
ACTIVATIONS = ("silu", "gelu", "gelu_pytorch_tanh", "relu")  # hidden_act the front end lowers
MAX_WEIGHTS = 200_000_000  # far past what a workbook holds; the model is built in memory first
SIZES = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
         "num_attention_heads", "max_position_embeddings")
FLAGS = {"llama": ("attention_bias", "mlp_bias"), "qwen2": ("use_sliding_window",),
         "mistral": ()}
ROTARY_BUFFERS = ("rotary_emb.inv_freq", "rotary_emb.original_inv_freq")  # not weights


def needs_transformers():
    """The transformers package, or one line saying how to get it."""
    try:
        import transformers
    except ImportError:
        raise SheetnetError("Llama-family folders (llama, qwen2, mistral) are built with "
                            "transformers: pip install 'sheetnet[hf]'") from None
    return transformers


def read_hf_llama(src: Source) -> dict:
    """A llama / qwen2 / mistral save_pretrained folder -> a sheetnet "hf-llama" payload."""
    folder = src.path if src.path.is_dir() else src.path.parent
    where = folder / "config.json"
    config = llama_config(read_json(where), where)
    expected = expected_weights(config)
    raw = read_weights(src.path, folder)
    check_tensors(raw, str(folder))
    state = {}
    for name, shape in expected.items():
        tensor = raw.get(name)
        if tensor is None and name == "lm_head.weight" and config["tie_word_embeddings"]:
            continue   # tied: the embedding is the head
        if tensor is None:
            raise SheetnetError(f"{folder}: weight {name} {tuple(shape)} is missing")
        if tuple(tensor.shape) != tuple(shape):
            raise SheetnetError(f"{folder}: weight {name} has shape {tuple(tensor.shape)}; "
                                f"config.json makes it {tuple(shape)}")
        state[name] = tensor.float()   # bfloat16 / float16 widen exactly
    extra = sorted(set(raw) - set(expected) - {"lm_head.weight"})
    if extra:
        raise SheetnetError(f"{folder}: weight {extra[0]} is not part of a {config['model_type']} "
                            f"model as config.json describes it ({len(extra)} such)")
    return payload(ARCHITECTURE, config, state, {"source_format": ARCHITECTURE})


def llama_config(cfg: dict, where: Path) -> dict:
    """The checked config values (config.json's names) a llama / qwen2 / mistral model needs."""
    kind = cfg.get("model_type")
    if kind not in FAMILIES:
        raise SheetnetError(f"{where}: model_type {str(kind)[:40]!r} is not supported; "
                            f"supported: gpt2, {', '.join(FAMILIES)}")
    out = {"model_type": kind}
    for key in SIZES:
        if key in cfg or key != "max_position_embeddings":
            out[key] = config_int(cfg.get(key), key, str(where))
    heads = out["num_attention_heads"]
    out["num_key_value_heads"] = config_int(cfg.get("num_key_value_heads", heads),
                                            "num_key_value_heads", str(where))
    if heads % out["num_key_value_heads"]:
        raise SheetnetError(f"{where}: num_key_value_heads {out['num_key_value_heads']} does not "
                            f"divide num_attention_heads {heads}")
    head_dim = cfg.get("head_dim") or out["hidden_size"] // heads
    out["head_dim"] = config_int(head_dim, "head_dim", str(where))
    if out["head_dim"] % 2:
        raise SheetnetError(f"{where}: head_dim {head_dim} is odd; rotary embedding pairs halves")
    eps = config_number(cfg.get("rms_norm_eps", 1e-6), "rms_norm_eps", str(where))
    if not eps > 0:
        raise SheetnetError(f"{where}: rms_norm_eps must be above 0, got {eps}")
    out["rms_norm_eps"] = eps
    out["hidden_act"] = config_choice(cfg.get("hidden_act", "silu"), "hidden_act", str(where),
                                      ACTIVATIONS)
    out["tie_word_embeddings"] = config_choice(cfg.get("tie_word_embeddings", False),
                                               "tie_word_embeddings", str(where), (True, False))
    for key in FLAGS[kind]:
        out[key] = config_choice(cfg.get(key, False), key, str(where), (True, False))
    out["rope_theta"] = _rope_theta(cfg, where)
    if cfg.get("pretraining_tp", 1) != 1:
        raise SheetnetError(f"{where}: pretraining_tp = {cfg.get('pretraining_tp')!r} is not "
                            "supported (only 1)")
    window = cfg.get("sliding_window")
    if window is not None and kind != "llama":
        out["sliding_window"] = config_int(window, "sliding_window", str(where))
    _check_size(out, where)
    return out


def _rope_theta(cfg: dict, where: Path) -> float:
    # plain RoPE only: rope_parameters {"rope_type": "default", "rope_theta": x} (transformers
    # 5) or rope_theta with no rope_scaling (older files)
    params = cfg.get("rope_parameters")
    if params is None:
        params = {"rope_type": "default", "rope_theta": cfg.get("rope_theta", 10000.0)}
        if cfg.get("rope_scaling") is not None:
            params["rope_type"] = "scaled"
    if not isinstance(params, dict):
        raise SheetnetError(f"{where}: rope_parameters must be an object")
    kind = params.get("rope_type", params.get("type", "default"))
    if kind != "default":
        raise SheetnetError(f"{where}: rope type {str(kind)[:40]!r} is not supported (only "
                            "plain rotary embedding, no scaling)")
    theta = config_number(params.get("rope_theta", 10000.0), "rope_theta", str(where))
    if not theta > 1:
        raise SheetnetError(f"{where}: rope_theta must be above 1, got {theta}")
    return theta


def _check_size(cfg: dict, where: Path) -> None:
    # a sane size before anything is allocated: embedding + per layer q, k, v, o, MLP
    c, layers = cfg["hidden_size"], cfg["num_hidden_layers"]
    q, kv = cfg["num_attention_heads"] * cfg["head_dim"], cfg["num_key_value_heads"] * cfg["head_dim"]
    per_layer = c * (2 * q + 2 * kv) + 3 * c * cfg["intermediate_size"]
    total = cfg["vocab_size"] * c * 2 + layers * per_layer
    if total > MAX_WEIGHTS:
        raise SheetnetError(f"{where}: about {total:,} weights; sheetnet builds at most "
                            f"{MAX_WEIGHTS:,} (a workbook holds far fewer)")


def hf_config(cfg: dict):
    """transformers' config object of the checked values (sdpa attention, no cache)."""
    transformers = needs_transformers()
    kind = cfg["model_type"]
    values = {k: v for k, v in cfg.items() if k != "model_type"}
    # transformers 5 reads rope_parameters, 4.x rope_theta: both say the same
    values["rope_parameters"] = {"rope_type": "default", "rope_theta": cfg["rope_theta"]}
    config = getattr(transformers, FAMILIES[kind][0])(**values)
    config._attn_implementation = "sdpa"
    config.use_cache = False
    return config


def build_model(cfg: dict, device: str = "cpu"):
    """The transformers causal LM for the checked config (random weights until loaded)."""
    transformers = needs_transformers()
    with torch.device(device):
        return getattr(transformers, FAMILIES[cfg["model_type"]][1])(hf_config(cfg))


def expected_weights(cfg: dict) -> dict[str, tuple[int, ...]]:
    """Each weight's name and shape in a model of this config (built on the meta device)."""
    model = build_model(cfg, device="meta")
    return {name: tuple(t.shape) for name, t in model.state_dict().items()
            if not name.endswith(ROTARY_BUFFERS)}


def is_llama_family(cfg: dict) -> bool:
    """config.json says llama, qwen2 or mistral."""
    return cfg.get("model_type") in FAMILIES

