"""The reference small GPT: nanoGPT's module layout, with an optional trace of every intermediate.

Parameter names are exactly nanoGPT's (``transformer.wte``, ``transformer.h.0.attn.c_attn`` ...),
so a nanoGPT state dict of the same shape loads as is.  Differences from nanoGPT, all on purpose:
no dropout, no flash attention (explicit causal masking, deterministic and traceable), the
causal mask is computed rather than stored as a buffer, and layer norm is written out as
mean / biased variance / normalise / gain / bias so each step can be recorded.

``GPT.forward(idx, trace)`` fills ``trace`` (when it is a dict) with float64 NumPy arrays of
batch element 0, named as listed in :meth:`GPT.forward`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import SheetnetError
from .fit import (MAX_LAYERS, build_on_meta, check_keys_early, check_tensors, config_choice,
                  config_int, config_number, load_fitted)

ARCHITECTURE = "gpt"
GELU_FORMS = ("erf", "tanh")


@dataclass
class GPTConfig:
    vocab_size: int
    block_size: int = 32
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 32
    bias: bool = True      # False: no bias tensors anywhere, LayerNorm without bias (nanoGPT's option)
    gelu: str = "erf"      # "erf" (exact, nanoGPT) or "tanh" (GPT-2's gelu_new / minGPT)
    tied: bool = True      # lm_head.weight is transformer.wte.weight (nanoGPT ties them)
    ln_eps: float = 1e-5

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            config_int(getattr(self, name), name, "gpt config")
        if self.n_layer > MAX_LAYERS:
            raise SheetnetError(f"gpt config: n_layer must be at most {MAX_LAYERS:,}, got {self.n_layer}")
        if self.n_embd % self.n_head:
            raise SheetnetError(f"gpt config: n_embd {self.n_embd} is not divisible by n_head {self.n_head}")
        config_choice(self.gelu, "gelu", "gpt config", GELU_FORMS)
        for name in ("bias", "tied"):
            config_choice(getattr(self, name), name, "gpt config", (True, False))
        self.ln_eps = config_number(self.ln_eps, "ln_eps", "gpt config")
        if not self.ln_eps > 0:
            raise SheetnetError(f"gpt config: ln_eps must be a positive number, got {self.ln_eps!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def gpt_config_from_dict(d: dict) -> GPTConfig:
    """Build a :class:`GPTConfig` from a checkpoint's plain config dict (missing keys take defaults)."""
    if not isinstance(d, dict):
        raise SheetnetError("gpt config must be a dict")
    known = {f.name for f in fields(GPTConfig)}
    unknown = sorted(str(k) for k in set(d) - known)
    if unknown:
        raise SheetnetError(f"gpt config has unknown keys: {', '.join(map(str, unknown))}")
    if "vocab_size" not in d:
        raise SheetnetError("gpt config is missing 'vocab_size'")
    return GPTConfig(**d)


def _record(trace: dict | None, name: str, t: torch.Tensor) -> None:
    """Store batch element 0 of ``t`` (B, T, ...) as a 2-D float64 array."""
    if trace is not None:
        trace[name] = t[0].detach().to(device="cpu", dtype=torch.float64).numpy().copy()


class LayerNorm(nn.Module):
    """LayerNorm over the last dim with a weight and an optional bias (as nanoGPT)."""

    def __init__(self, ndim: int, bias: bool, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None
        self.eps = eps

    def forward(self, x, trace=None, name=""):
        mean = x.mean(dim=-1, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)   # biased, as layer norm uses
        norm = (x - mean) / torch.sqrt(var + self.eps)
        out = norm * self.weight
        if self.bias is not None:
            out = out + self.bias
        if trace is not None:
            _record(trace, f"{name}.mean", mean)
            _record(trace, f"{name}.var", var)
            _record(trace, f"{name}.norm", norm)
            _record(trace, name, out)
        return out


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)

    def forward(self, x, trace=None, name=""):
        B, T, C = x.shape
        nh, hs = self.n_head, C // self.n_head
        qkv = self.c_attn(x)
        q, k, v = qkv.split(C, dim=2)
        q = q.view(B, T, nh, hs).transpose(1, 2)   # (B, nh, T, hs)
        k = k.view(B, T, nh, hs).transpose(1, 2)
        v = v.view(B, T, nh, hs).transpose(1, 2)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
        future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(diagonal=1)
        scores = scores.masked_fill(future, float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        y_heads = probs @ v                          # (B, nh, T, hs)
        y = y_heads.transpose(1, 2).contiguous().view(B, T, C)
        out = self.c_proj(y)
        if trace is not None:
            _record(trace, f"{name}.qkv", qkv)
            for part, t in (("q", q), ("k", k), ("v", v)):
                for h in range(nh):
                    _record(trace, f"{name}.{part}{h}", t[:, h])
            for h in range(nh):
                _record(trace, f"{name}.scores{h}", scores[:, h])
                _record(trace, f"{name}.probs{h}", probs[:, h])
                _record(trace, f"{name}.y{h}", y_heads[:, h])
            _record(trace, f"{name}.y", y)
            _record(trace, f"{name}.out", out)
        return out


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.approximate = "none" if config.gelu == "erf" else "tanh"

    def forward(self, x, trace=None, name=""):
        fc = self.c_fc(x)
        g = F.gelu(fc, approximate=self.approximate)
        out = self.c_proj(g)
        if trace is not None:
            _record(trace, f"{name}.fc", fc)
            _record(trace, f"{name}.gelu", g)
            _record(trace, f"{name}.out", out)
        return out


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, bias=config.bias, eps=config.ln_eps)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = LayerNorm(config.n_embd, bias=config.bias, eps=config.ln_eps)
        self.mlp = MLP(config)

    def forward(self, x, trace=None, name=""):
        x = x + self.attn(self.ln_1(x, trace, f"{name}.ln_1"), trace, f"{name}.attn")
        _record(trace, f"{name}.res1", x)
        x = x + self.mlp(self.ln_2(x, trace, f"{name}.ln_2"), trace, f"{name}.mlp")
        _record(trace, f"{name}.res2", x)
        return x


class GPT(nn.Module):
    def __init__(self, config: GPTConfig, init: bool = True):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=LayerNorm(config.n_embd, bias=config.bias, eps=config.ln_eps),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tied:
            self.lm_head.weight = self.transformer.wte.weight
        if not init:  # weights about to be loaded (from_checkpoint)
            return
        # nanoGPT's initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2 n_layer)
        self.apply(self._init_weights)
        for pn, p in self.named_parameters():
            if pn.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
        """Logits (B, T, V) for token ids ``idx`` (B, T).

        When ``trace`` is a dict it receives float64 arrays of batch element 0:
        tok_emb, pos_emb, x0; per block i: h{i}.ln_1.{mean,var,norm}, h{i}.ln_1, h{i}.attn.qkv,
        h{i}.attn.{q,k,v,scores,probs,y}{h}, h{i}.attn.y, h{i}.attn.out, h{i}.res1,
        h{i}.ln_2.{mean,var,norm}, h{i}.ln_2, h{i}.mlp.{fc,gelu,out}, h{i}.res2;
        then ln_f.{mean,var,norm}, ln_f, logits.
        """
        if idx.dim() != 2:
            raise SheetnetError(f"gpt input must be (batch, time) token ids, got shape {tuple(idx.shape)}")
        B, T = idx.shape
        if T > self.config.block_size:
            raise SheetnetError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
        pos = torch.arange(T, dtype=torch.long, device=idx.device)
        tok_emb = self.transformer.wte(idx)
        pos_emb = self.transformer.wpe(pos).unsqueeze(0)
        x = tok_emb + pos_emb
        if trace is not None:
            _record(trace, "tok_emb", tok_emb)
            _record(trace, "pos_emb", pos_emb)
            _record(trace, "x0", x)
        for i, block in enumerate(self.transformer.h):
            x = block(x, trace, f"h{i}")
        x = self.transformer.ln_f(x, trace, "ln_f")
        logits = self.lm_head(x)
        _record(trace, "logits", logits)
        return logits

    @classmethod
    def from_checkpoint(cls, payload: dict) -> "GPT":
        """Rebuild a model from ``load_checkpoint``'s payload (architecture "gpt"), in eval mode.

        The model takes the dtype of the stored weights.  With ``tied`` the lm_head is re-tied to
        ``transformer.wte.weight``; a stored ``lm_head.weight`` may be absent (or must equal wte).
        nanoGPT's causal-mask buffers (``attn.bias`` / ``attn.masked_bias``) are ignored.
        """
        if payload.get("architecture") != ARCHITECTURE:
            raise SheetnetError(f"checkpoint architecture is {payload.get('architecture')!r}, not 'gpt'")
        if not isinstance(payload["config"], dict):
            raise SheetnetError("gpt config must be a dict")
        config = gpt_config_from_dict(dict(payload["config"]))
        where = "gpt checkpoint"
        sd = {k: v for k, v in check_tensors(payload["state_dict"], where).items()
              if not (k.endswith(".attn.bias") or k.endswith(".attn.masked_bias"))}
        wte = sd.get("transformer.wte.weight")
        if wte is None:
            raise SheetnetError("gpt checkpoint has no transformer.wte.weight")
        if config.tied:
            lm = sd.pop("lm_head.weight", None)
            if lm is not None and (lm.shape != wte.shape or not torch.equal(lm.to(wte.dtype), wte)):
                raise SheetnetError("gpt checkpoint says tied but lm_head.weight differs from transformer.wte.weight")
            sd["lm_head.weight"] = wte
        # built on the meta device and handed the loaded tensors (assign): no random init and
        # no second copy of the weights (GPT-2 small: ~2 s and 0.5 GB saved); the config's
        # shapes are checked against the tensors first (models/fit.py)
        sd = {"transformer.wte.weight": wte, **sd}   # its dtype is the model's
        check_keys_early({"transformer.wte.weight": (config.vocab_size, config.n_embd),
                          f"transformer.h.{config.n_layer - 1}.ln_1.weight": (config.n_embd,)},
                         sd, where)
        model = load_fitted(build_on_meta(lambda: cls(config, init=False)), sd, where)
        if config.tied:
            model.lm_head.weight = model.transformer.wte.weight
        return model.eval()


@torch.no_grad()
def generate(model: GPT, idx: torch.Tensor, n: int, greedy: bool = True,
             generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
    """Append ``n`` tokens to ``idx`` (T,) or (B, T); the context is cropped to block_size.

    Greedy takes the argmax (ties: lowest id); otherwise samples from softmax(logits / temperature).
    Returns the same rank as ``idx``.
    """
    was_training = model.training
    model.eval()
    squeeze = idx.dim() == 1
    out = idx.unsqueeze(0) if squeeze else idx
    if out.shape[1] == 0:
        raise SheetnetError("generation needs a prompt of at least one token")
    try:
        for _ in range(n):
            logits = model(out[:, -model.config.block_size:])[:, -1, :]
            if greedy:
                nxt = logits.argmax(dim=-1, keepdim=True)
            else:
                probs = torch.softmax(logits.double() / temperature, dim=-1)
                nxt = torch.multinomial(probs, 1, generator=generator)
            out = torch.cat([out, nxt], dim=1)
    finally:
        model.train(was_training)
    return out[0] if squeeze else out
