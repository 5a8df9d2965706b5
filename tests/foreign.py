"""Checkpoints as other programs write them (nanoGPT's train.py, minGPT's chargpt, Hugging Face's
save_pretrained), an independent functional GPT forward to check them against, and a malicious
pickle.  Shared by test_loaders.py and test_formats_e2e.py."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch
import torch.nn.functional as F
# imported now, at collection: once the LibreOffice engine has started, pyuno's import hook turns
# the ModuleNotFoundError that torch.distributed (imported by transformers) expects into an
# ImportError, and a first import of transformers' GPT-2 then fails
from transformers import GPT2Config, GPT2LMHeadModel

from sheetnet.models.gpt import GPT, GPTConfig

CHARS = list("abcdefghij ")   # an 11-character vocabulary, in id order


def random_gpt(seed: int = 0, **cfg) -> GPT:
    """A float32 GPT (as trainers save them) with every parameter random, biases and gains too."""
    base = dict(vocab_size=len(CHARS), block_size=8, n_layer=2, n_head=2, n_embd=8)
    base.update(cfg)
    torch.manual_seed(seed)
    model = GPT(GPTConfig(**base)).eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.3 if name.endswith("bias") else 0.6))
            if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
                p.add_(1.0)
    return model


def functional_gpt(sd: dict, n_head: int, gelu: str, idx: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Logits (B, T, V) in float64 from a nanoGPT/minGPT-named state dict, written with
    torch.nn.functional only (nothing of sheetnet's GPT): the reference the loaders must match."""
    W = {k: v.double() for k, v in sd.items()}
    b = W.get
    n_layer = len({k.split(".")[2] for k in W if k.startswith("transformer.h.")})
    B, T = idx.shape
    C = W["transformer.wte.weight"].shape[1]
    x = W["transformer.wte.weight"][idx] + W["transformer.wpe.weight"][:T]
    for i in range(n_layer):
        p = f"transformer.h.{i}."
        h = F.layer_norm(x, (C,), W[p + "ln_1.weight"], b(p + "ln_1.bias"), eps)
        q, k, v = F.linear(h, W[p + "attn.c_attn.weight"], b(p + "attn.c_attn.bias")).split(C, dim=2)
        q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
        x = x + F.linear(y, W[p + "attn.c_proj.weight"], b(p + "attn.c_proj.bias"))
        h = F.layer_norm(x, (C,), W[p + "ln_2.weight"], b(p + "ln_2.bias"), eps)
        h = F.gelu(F.linear(h, W[p + "mlp.c_fc.weight"], b(p + "mlp.c_fc.bias")),
                   approximate="none" if gelu == "erf" else "tanh")
        x = x + F.linear(h, W[p + "mlp.c_proj.weight"], b(p + "mlp.c_proj.bias"))
    x = F.layer_norm(x, (C,), W["transformer.ln_f.weight"], b("transformer.ln_f.bias"), eps)
    return F.linear(x, W.get("lm_head.weight", W["transformer.wte.weight"]))


def mask_buffers(model: GPT) -> dict:
    """The causal-mask buffers minGPT (and nanoGPT without flash attention) keep in the state dict."""
    bs = model.config.block_size
    mask = torch.tril(torch.ones(bs, bs)).view(1, 1, bs, bs)
    return {f"transformer.h.{i}.attn.bias": mask.clone() for i in range(model.config.n_layer)}


def write_meta_pkl(path: Path, chars=CHARS) -> Path:
    """nanoGPT's data/<dataset>/meta.pkl, as its prepare.py writes it."""
    stoi = {ch: i for i, ch in enumerate(chars)}
    itos = {i: ch for i, ch in enumerate(chars)}
    with open(path, "wb") as f:
        pickle.dump({"vocab_size": len(chars), "itos": itos, "stoi": stoi}, f)
    return path


def write_nanogpt(folder: Path, model: GPT, compiled: bool = False, buffers: bool = False,
                  vocab: bool = True) -> Path:
    """out/ckpt.pt as nanoGPT's train.py saves it (after one AdamW step), and meta.pkl beside."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg = model.config
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.95), weight_decay=0.1)
    model(torch.zeros(1, 3, dtype=torch.long)).sum().backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    state = dict(model.state_dict(), **(mask_buffers(model) if buffers else {}))
    if compiled:   # torch.compile's wrapper: every key under _orig_mod.
        state = {f"_orig_mod.{k}": v for k, v in state.items()}
    model_args = dict(n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd,
                      block_size=cfg.block_size, bias=cfg.bias, vocab_size=cfg.vocab_size, dropout=0.0)
    config = {"out_dir": "out-shakespeare-char", "eval_interval": 250, "dataset": "shakespeare_char",
              "gradient_accumulation_steps": 1, "batch_size": 64, "learning_rate": 1e-3,
              "decay_lr": True, "dtype": "float32", "compile": compiled, "wandb_log": False,
              "beta2": 0.99, "device": "cpu", "init_from": "scratch"}
    path = folder / "ckpt.pt"
    torch.save({"model": state, "optimizer": opt.state_dict(), "model_args": model_args,
                "iter_num": 250, "best_val_loss": torch.tensor(1.4697), "config": config}, path)
    if vocab:
        write_meta_pkl(folder / "meta.pkl")
    return path


def write_mingpt_workdir(folder: Path, model: GPT, model_type: str | None = None) -> Path:
    """minGPT's chargpt work dir: model.pt (the state dict) and config.json (config.to_dict(),
    written before vocab_size and block_size are known, so those are null)."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg = model.config
    given = (dict(n_layer=None, n_head=None, n_embd=None) if model_type else
             dict(n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd))
    config = {"system": {"seed": 3407, "work_dir": str(folder)},
              "data": {"block_size": cfg.block_size},
              "model": {"model_type": model_type, **given, "vocab_size": None, "block_size": None,
                        "embd_pdrop": 0.1, "resid_pdrop": 0.1, "attn_pdrop": 0.1},
              "trainer": {"device": "auto", "num_workers": 4, "max_iters": None, "batch_size": 64,
                          "learning_rate": 5e-4, "betas": [0.9, 0.95], "weight_decay": 0.1,
                          "grad_norm_clip": 1.0}}
    (folder / "config.json").write_text(json.dumps(config, indent=4))
    torch.save(dict(model.state_dict(), **mask_buffers(model)), folder / "model.pt")
    return folder


def hf_gpt2(seed: int = 0, **cfg):
    """A tiny random transformers GPT2LMHeadModel in eval mode, every parameter random."""
    base = dict(n_layer=2, n_head=2, n_embd=16, n_positions=16, vocab_size=50, bos_token_id=0,
                eos_token_id=0)
    base.update(cfg)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(**base, attn_implementation="eager")).eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.3 if "bias" in name else 0.6))
            if ".ln_" in name and name.endswith("weight"):
                p.add_(1.0)
    return model


class Payload:
    """A pickle payload that, when unpickled by a plain pickle.load, creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def is_live(marker: Path) -> bool:
    """Unpickling the payload with the standard unpickler does create the marker (so a loader
    that refuses it has really stopped code from running)."""
    pickle.loads(pickle.dumps(Payload(marker)))
    return marker.exists()

