"""Train the reference character-level GPT and save it as a sheetnet checkpoint.

The vocabulary is the sorted set of characters in the training text; it is stored in the
checkpoint's metadata as ``"vocab": [chars in id order]``.  Training is seeded end to end
(``torch.manual_seed`` for the initial weights, a ``torch.Generator`` for the batches) and runs
on a fixed thread count, so the same arguments give bit-identical weights on one machine.
"""
from __future__ import annotations

import hashlib
import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..checkpoint import save_checkpoint
from ..errors import SheetnetError
from .gpt import GPT, GPTConfig, generate

__all__ = ["char_vocab", "encode", "decode", "vocab_maps", "evaluate_loss", "train_gpt",
           "train_gpt_checkpoint", "generate", "generate_text", "TRAINED_BY"]

TRAINED_BY = "sheetnet train gpt"


# ---------------------------------------------------------------- vocabulary
def char_vocab(text: str) -> tuple[dict[str, int], list[str]]:
    """``(stoi, itos)`` for the sorted unique characters of ``text``."""
    itos = sorted(set(text))
    return {ch: i for i, ch in enumerate(itos)}, itos


def vocab_maps(vocab: list[str]) -> tuple[dict[str, int], list[str]]:
    """``(stoi, itos)`` from a stored vocabulary list (checkpoint metadata ``"vocab"``)."""
    itos = list(vocab)
    return {ch: i for i, ch in enumerate(itos)}, itos


def encode(s: str, stoi: dict[str, int]) -> list[int]:
    missing = sorted({ch for ch in s if ch not in stoi})
    if missing:
        raise SheetnetError(f"characters not in the model's vocabulary: {''.join(missing)!r}")
    return [stoi[ch] for ch in s]


def decode(ids, itos: list[str]) -> str:
    return "".join(itos[int(i)] for i in ids)


# ---------------------------------------------------------------- training
def _batch(data: torch.Tensor, block_size: int, batch_size: int, gen: torch.Generator):
    starts = torch.randint(0, len(data) - block_size, (batch_size,), generator=gen)
    offsets = torch.arange(block_size)
    x = data[starts[:, None] + offsets]
    y = data[starts[:, None] + offsets + 1]
    return x, y


@torch.no_grad()
def evaluate_loss(model: GPT, data: torch.Tensor, block_size: int | None = None) -> float:
    """Mean next-character cross-entropy over consecutive windows covering ``data`` (deterministic)."""
    bs = block_size or model.config.block_size
    was_training = model.training
    model.eval()
    starts = list(range(0, len(data) - bs, bs))
    if not starts:
        raise SheetnetError(f"text is too short: need more than {bs + 1} characters")
    total, count = 0.0, 0
    for i in range(0, len(starts), 64):
        s = torch.tensor(starts[i:i + 64])
        offsets = torch.arange(bs)
        x, y = data[s[:, None] + offsets], data[s[:, None] + offsets + 1]
        logits = model(x)
        total += F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum").item()
        count += y.numel()
    model.train(was_training)
    return total / count


def _lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    """Linear warm-up then cosine decay to lr / 10 (nanoGPT's schedule)."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr / 10 + 0.5 * (1 + math.cos(math.pi * progress)) * (lr - lr / 10)


def train_gpt(text: str, n_layer: int = 2, n_head: int = 2, n_embd: int = 32, block_size: int = 32,
              steps: int = 3000, seed: int = 0, lr: float = 5e-3, batch_size: int = 32,
              weight_decay: float = 0.01, num_threads: int = 1, **config_extra):
    """Train a GPT on ``text``; returns ``(model, info)`` (model in float32, eval mode).

    ``config_extra`` passes bias / gelu / tied / ln_eps to :class:`GPTConfig`.
    ``num_threads`` is set for the run and restored afterwards.  It defaults to 1: this model's
    ops are so small that a second intra-op thread buys nothing, and on a busy 2-core machine
    OpenMP's thread synchronisation made a 2-thread step 5-15x slower than a 1-thread step.
    ``info`` holds vocab, initial/final loss (full-text, deterministic), last batch loss, seconds.
    """
    if not isinstance(text, str) or len(text) <= block_size + 1:
        raise SheetnetError(f"training text is too short: need more than {block_size + 1} characters")
    if steps < 0 or batch_size < 1:
        raise SheetnetError("steps must be >= 0 and batch_size >= 1")
    stoi, itos = char_vocab(text)
    data = torch.tensor(encode(text, stoi), dtype=torch.long)
    config = GPTConfig(vocab_size=len(itos), block_size=block_size, n_layer=n_layer, n_head=n_head,
                       n_embd=n_embd, **config_extra)

    old_threads = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        torch.manual_seed(seed)
        model = GPT(config)
        gen = torch.Generator().manual_seed(seed)
        decay = [p for p in model.parameters() if p.dim() >= 2]
        no_decay = [p for p in model.parameters() if p.dim() < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}],
                                lr=lr, betas=(0.9, 0.99), foreach=True)
        initial_loss = evaluate_loss(model, data)
        t0 = time.perf_counter()
        model.train()
        batch_loss = float("nan")
        warmup = min(100, max(1, steps // 10))
        for step in range(steps):
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, steps, lr, warmup)
            x, y = _batch(data, block_size, batch_size, gen)
            logits = model(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            batch_loss = loss.item()
        seconds = time.perf_counter() - t0
        final_loss = evaluate_loss(model, data)
    finally:
        torch.set_num_threads(old_threads)
    model.eval()
    info = {"vocab": itos, "initial_loss": initial_loss, "final_loss": final_loss,
            "final_batch_loss": batch_loss, "seconds": seconds, "config": config.to_dict()}
    return model, info


def train_gpt_checkpoint(out_path, text: str, n_layer: int = 2, n_head: int = 2, n_embd: int = 32,
                         block_size: int = 32, steps: int = 3000, seed: int = 0, lr: float = 5e-3,
                         batch_size: int = 32, **kwargs) -> dict:
    """Train on ``text`` and save a sheetnet checkpoint (architecture "gpt") at ``out_path``.

    Returns ``{"path", "config", "metadata", "seconds"}``; metadata holds vocab, seed, steps,
    lr, batch_size, initial_loss, final_loss (mean cross-entropy over the whole text, nats/char),
    final_batch_loss, text_chars, text_sha256 and trained_by.
    """
    model, info = train_gpt(text, n_layer=n_layer, n_head=n_head, n_embd=n_embd, block_size=block_size,
                            steps=steps, seed=seed, lr=lr, batch_size=batch_size, **kwargs)
    metadata = {
        "vocab": info["vocab"], "seed": seed, "steps": steps, "lr": lr, "batch_size": batch_size,
        "initial_loss": info["initial_loss"], "final_loss": info["final_loss"],
        "final_batch_loss": info["final_batch_loss"],
        "text_chars": len(text), "text_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "trained_by": TRAINED_BY,
    }
    save_checkpoint(out_path, "gpt", info["config"], model.state_dict(), metadata)
    return {"path": str(out_path), "config": info["config"], "metadata": metadata, "seconds": info["seconds"]}


def generate_text(model: GPT, vocab: list[str], prompt: str, n: int, greedy: bool = True,
                  generator: torch.Generator | None = None) -> str:
    """Continue ``prompt`` by ``n`` characters; returns prompt + continuation."""
    stoi, itos = vocab_maps(vocab)
    idx = torch.tensor(encode(prompt, stoi), dtype=torch.long)
    return decode(generate(model, idx, n, greedy=greedy, generator=generator).tolist(), itos)


def main(argv=None) -> None:  # python -m sheetnet.models.train_gpt [text] [out]
    import sys
    args = sys.argv[1:] if argv is None else argv
    root = Path(__file__).resolve().parents[2]
    text_path = Path(args[0]) if args else root / "examples" / "gpt_text.txt"
    out_path = Path(args[1]) if len(args) > 1 else root / "examples" / "gpt.pt"
    result = train_gpt_checkpoint(out_path, text_path.read_text(encoding="utf-8"))
    md = result["metadata"]
    print(f"wrote {out_path} ({os.path.getsize(out_path)} bytes) in {result['seconds']:.1f}s: "
          f"loss {md['initial_loss']:.3f} -> {md['final_loss']:.3f} (last batch {md['final_batch_loss']:.3f})")


if __name__ == "__main__":
    main()
