"""The architecture as sheetnet read it, one line per layer, for the CLI and the Guide sheet.

A bare state dict is read by guessing (an Embedding table saved as {"0.weight": (8, 8)} reads as
a Linear without bias); saying what was read, and what was assumed, lets the user catch it.
"""
from __future__ import annotations

from ..errors import SheetnetError
from ..models.fit import build_on_meta, config_int, config_ints
from ..models.gpt import gpt_config_from_dict
from ..models.mlp import build_mlp, build_sequential, layer_specs

# what each reader assumes beyond the file, said after the layers (source_format -> line)
ASSUMED = {
    "mlp-state-dict": "(a bare state dict: every weight read as a Linear layer, activations from "
                      "--activations {activations})",
    "nanogpt": "(a nanoGPT checkpoint: the head tied to the token embedding, exact (erf) GELU, "
               "LayerNorm eps 1e-5, as nanoGPT's model.py has them)",
    "mingpt": "(a minGPT checkpoint: sizes from the weights, n_head from its config; tanh GELU "
              "and its own head, as minGPT's model.py has them)",
    "hf-gpt2": "(a Hugging Face GPT-2: its Conv1D weights transposed to Linear's (out, in))",
}


def architecture_lines(payload: dict) -> list[str]:
    """The layers of a loaded payload (see ``loaders.load``), one line each, then what was assumed.

    Args:
        payload: a sheetnet payload ({"architecture", "config", "metadata", ...}).
    Returns:
        lines such as "0: Linear 8 -> 8, no bias", "1: ReLU", ... (mlp);
        "blocks 0-1: LayerNorm, attention 2 heads x 16, MLP 32 -> 128 -> 32 (GELU erf)" (gpt).
    Raises:
        SheetnetError: an architecture without a description, or a bad config value (named).
    """
    arch = payload.get("architecture")
    if arch not in _DESCRIBE:
        raise SheetnetError(f"architecture {arch!r} is not supported; supported: "
                            + ", ".join(_DESCRIBE))
    cfg = payload.get("config")
    if not isinstance(cfg, dict):
        raise SheetnetError(f"the {arch} config must be a dict")
    meta = payload.get("metadata") or {}
    lines = _DESCRIBE[arch](cfg)
    note = ASSUMED.get(meta.get("source_format"))
    if note:
        lines.append(note.format(activations=meta.get("activations") or "(none: one Linear)"))
    return lines


def _mlp_lines(cfg: dict) -> list[str]:
    # the Sequential's own layer specs, built on the meta device from the checked config
    if "layers" in cfg:
        model = build_on_meta(lambda: build_sequential(cfg["layers"]))
    else:
        model = build_on_meta(lambda: build_mlp(cfg.get("sizes"), cfg.get("activation", "relu")))
    return [f"{i}: {_layer_text(spec)}" for i, spec in enumerate(layer_specs(model))]


def _layer_text(spec: dict) -> str:
    kind = spec["type"]
    if kind == "linear":
        return f"Linear {spec['in']} -> {spec['out']}" + ("" if spec["bias"] else ", no bias")
    if kind == "gelu":
        return "GELU (tanh)" if spec["approximate"] == "tanh" else "GELU (erf)"
    if kind == "leaky_relu":
        return f"LeakyReLU {spec['slope']:g}"
    if kind == "softplus":
        return f"Softplus beta {spec['beta']:g}, threshold {spec['threshold']:g}"
    if kind == "elu":
        return f"ELU alpha {spec['alpha']:g}"
    return {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "silu": "SiLU",
            "identity": "Identity"}[kind]


def _textnet_lines(cfg: dict) -> list[str]:
    where = "textnet config"
    words = config_int(cfg.get("vocab_size"), "vocab_size", where, least=2)
    embed = config_int(cfg.get("embed"), "embed", where)
    hidden = config_ints(cfg.get("hidden"), "hidden", where)
    sizes = [embed, *hidden]
    return ([f"embedding: {words} words x {embed}"]
            + [f"layer {k}: Linear {a} -> {b}, ReLU"
               for k, (a, b) in enumerate(zip(sizes, sizes[1:]), start=1)]
            + [f"output: Linear {hidden[-1]} -> {words} (one logit per word)"])


def _gpt_lines(cfg: dict) -> list[str]:
    c = gpt_config_from_dict(dict(cfg))
    blocks = "block 0" if c.n_layer == 1 else f"blocks 0-{c.n_layer - 1}"
    bias = "" if c.bias else ", no biases"
    head = ("head: tied to the token embedding" if c.tied
            else f"head: Linear {c.n_embd} -> {c.vocab_size}, no bias")
    return [f"token embedding: {c.vocab_size} x {c.n_embd}",
            f"position embedding: {c.block_size} x {c.n_embd}",
            f"{blocks}: LayerNorm, attention {c.n_head} heads x {c.n_embd // c.n_head}, LayerNorm, "
            f"MLP {c.n_embd} -> {4 * c.n_embd} -> {c.n_embd} (GELU {c.gelu}){bias}",
            f"final LayerNorm (eps {c.ln_eps:g})", head]


_DESCRIBE = {"mlp": _mlp_lines, "textnet": _textnet_lines, "gpt": _gpt_lines}
