"""The tiny text net: word -> embedding -> Linear/ReLU stack -> logits over the vocabulary.

It memorises "next word" pairs (hello -> world, cat -> dog, dog -> ! ...). A 2-d embedding with
2x2 ReLU layers can settle in a bad minimum (the "dog -> dog" loop), so training tries seeds
seed, seed+1, ... deterministically until every pair is predicted by argmax with a margin.
"""
from __future__ import annotations

import copy
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import save_checkpoint
from ..errors import SheetnetError
from .fit import build_on_meta, config_int, config_ints, load_fitted

ARCHITECTURE = "textnet"
MIN_MARGIN = 0.5      # logit gap between the target and the runner-up for a pair to count as learned
MAX_SEED_TRIES = 50
NUM_THREADS = 2
HIDDEN_BIAS_INIT = 1.0
CHECK_EVERY, STALL_WINDOW, TARGET_LOSS = 50, 4, 0.002   # early stop: checks every 50 epochs


class TextNetError(SheetnetError, ValueError):
    """Bad pairs / vocabulary / checkpoint for the text net (a ValueError the CLI can print)."""


class TextNet(nn.Module):
    def __init__(self, vocab_size: int, embed: int = 2, hidden: tuple[int, ...] = (2, 2)):
        super().__init__()
        hidden = tuple(int(h) for h in hidden)
        if vocab_size < 2 or embed < 1 or not hidden or min(hidden) < 1:
            raise TextNetError(f"bad textnet shape: vocab_size={vocab_size} embed={embed} hidden={hidden}")
        self.vocab_size, self.embed_dim, self.hidden = int(vocab_size), int(embed), hidden
        self.embed = nn.Embedding(vocab_size, embed)
        sizes = (embed,) + hidden
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out = nn.Linear(hidden[-1], vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        a = self.embed(ids)
        for layer in self.layers:
            a = torch.relu(layer(a))
        return self.out(a)

    def config(self) -> dict:
        return {"vocab_size": self.vocab_size, "embed": self.embed_dim, "hidden": list(self.hidden)}

    @classmethod
    def from_checkpoint(cls, payload: dict) -> "TextNet":
        """Rebuild a text net from its payload: the config checked, the module built on the meta
        device and handed the stored tensors (see models/fit.py), in eval mode.

        Raises:
            TextNetError: another architecture, a bad config value, weights that do not fit the
                config, or a vocabulary of another size.
        """
        if payload.get("architecture") != ARCHITECTURE:
            raise TextNetError(f"checkpoint architecture is {payload.get('architecture')!r}, not 'textnet'")
        cfg = payload["config"]
        if not isinstance(cfg, dict):
            raise TextNetError("textnet config must be a dict (vocab_size, embed, hidden)")
        where = "textnet config"
        size = config_int(cfg.get("vocab_size"), "vocab_size", where, least=2)
        embed = config_int(cfg.get("embed"), "embed", where)
        hidden = config_ints(cfg.get("hidden"), "hidden", where)
        try:
            model = load_fitted(build_on_meta(lambda: cls(size, embed, tuple(hidden))),
                                payload["state_dict"], "textnet checkpoint")
        except SheetnetError as exc:
            raise TextNetError(str(exc)) from None
        vocab = payload.get("metadata", {}).get("vocab")
        if vocab is not None and len(vocab) != model.vocab_size:
            raise TextNetError(f"textnet checkpoint has {len(vocab)} words but vocab_size {model.vocab_size}")
        return model


def read_pairs(path: str | os.PathLike) -> list[tuple[str, str]]:
    """Read "word next" pairs: two whitespace-separated words a line; a token starting with '#'
    begins a comment; blank lines are ignored. Raises TextNetError (a ValueError) naming a bad line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise TextNetError(f"cannot read pairs file {path} ({type(exc).__name__})") from None
    pairs = []
    for n, line in enumerate(lines, 1):
        parts = line.split()
        for k, tok in enumerate(parts):   # a token starting with '#' begins a comment ("C#" is a word)
            if tok.startswith("#"):
                parts = parts[:k]
                break
        if not parts:
            continue
        if len(parts) != 2:
            raise TextNetError(f"{path}, line {n}: expected two words 'word next', got {line.strip()!r}")
        pairs.append((parts[0], parts[1]))
    if not pairs:
        raise TextNetError(f"{path} contains no pairs")
    return pairs


def build_vocab(pairs) -> list[str]:
    """Words in order of first appearance in the pairs; rejects empty words and contradictory pairs."""
    vocab, seen, target = [], set(), {}
    for a, b in pairs:
        for w in (a, b):
            if not isinstance(w, str) or not w:
                raise TextNetError(f"pair ({a!r}, {b!r}): words must be non-empty strings")
            if w not in seen:
                seen.add(w)
                vocab.append(w)
        if target.setdefault(a, b) != b:
            raise TextNetError(f"'{a}' is paired with both '{target[a]}' and '{b}': a word needs one next word")
    if len(vocab) < 2:
        raise TextNetError("the pairs need at least two distinct words")
    return vocab


def _float64(model: TextNet) -> TextNet:
    return copy.deepcopy(model).double().eval()


def _margins(logits: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    best = logits.gather(1, tgt[:, None])[:, 0]
    return best - logits.scatter(1, tgt[:, None], float("-inf")).max(dim=1).values


def margins(model: TextNet, vocab: list[str], pairs) -> list[float]:
    """For each pair: target logit minus the best other logit (float64); > 0 means learned."""
    index = {w: i for i, w in enumerate(vocab)}
    with torch.no_grad():
        logits = _float64(model)(torch.tensor([index[a] for a, _ in pairs]))
    return _margins(logits, torch.tensor([index[b] for _, b in pairs])).tolist()


def _train_once(ids, tgt, vocab_size, embed, hidden, seed, epochs, lr, batch_size):
    """One seeded run. Every CHECK_EVERY epochs: stop when learned with loss <= TARGET_LOSS, or give
    up when not learned and the loss fell by < 2% over the last STALL_WINDOW checks (a stuck minimum)."""
    torch.manual_seed(seed)
    model = TextNet(vocab_size, embed, hidden)
    with torch.no_grad():      # positive hidden biases start every ReLU alive (fewer dead-unit minima)
        for layer in model.layers:
            layer.bias.fill_(HIDDEN_BIAS_INIT)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(len(ids), generator=gen)
        for start in range(0, len(ids), batch_size):
            batch = perm[start:start + batch_size]
            loss = F.cross_entropy(model(ids[batch]), tgt[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if epoch % CHECK_EVERY == 0:
            with torch.no_grad():
                logits = model(ids)
            full, learned = float(F.cross_entropy(logits, tgt)), float(_margins(logits, tgt).min()) >= MIN_MARGIN
            if learned and full <= TARGET_LOSS:
                break
            if not learned and len(history) >= STALL_WINDOW and full > 0.98 * history[-STALL_WINDOW]:
                break
            history.append(full)
    with torch.no_grad():
        final = float(F.cross_entropy(model(ids), tgt))
    return model.eval(), final


def train_textnet(pairs, embed: int = 2, hidden=(2, 2), seed: int = 0, epochs: int = 2000,
                  lr: float = 0.02, batch_size: int = 8, max_tries: int = MAX_SEED_TRIES):
    """Train until every pair is learned. Returns (model, vocab, final_loss); model.seed_used is set."""
    pairs = [(str(a), str(b)) for a, b in pairs]
    vocab = build_vocab(pairs)
    index = {w: i for i, w in enumerate(vocab)}
    ids = torch.tensor([index[a] for a, _ in pairs])
    tgt = torch.tensor([index[b] for _, b in pairs])
    threads = torch.get_num_threads()
    torch.set_num_threads(NUM_THREADS)
    try:
        worst = None
        for s in range(seed, seed + max_tries):
            model, final = _train_once(ids, tgt, len(vocab), embed, tuple(hidden), s, epochs, lr, batch_size)
            m = margins(model, vocab, pairs)
            if min(m) >= MIN_MARGIN:
                model.seed_used = s
                return model, vocab, final
            a, b = pairs[int(np.argmin(m))]
            worst = f"seed {s}: '{a}' -> '{predict(model, vocab, a)}' instead of '{b}'"
    finally:
        torch.set_num_threads(threads)
    raise SheetnetError(f"textnet (embed {embed}, hidden {list(hidden)}) did not learn every pair with seeds "
                        f"{seed}..{seed + max_tries - 1} ({worst}); try a wider net or another seed")


def train_textnet_checkpoint(out_path, pairs, embed: int = 2, hidden=(2, 2), seed: int = 0, **kw) -> dict:
    """Train and save a sheetnet checkpoint; returns the metadata written plus "train_seconds"."""
    t0 = time.perf_counter()
    model, vocab, final = train_textnet(pairs, embed=embed, hidden=hidden, seed=seed, **kw)
    metadata = {"vocab": list(vocab), "pairs": [[str(a), str(b)] for a, b in pairs], "seed": int(seed),
                "seed_used": int(model.seed_used), "final_loss": final, "trained_by": "sheetnet train textnet"}
    save_checkpoint(out_path, ARCHITECTURE, model.config(), model.state_dict(), metadata)
    return {**metadata, "train_seconds": round(time.perf_counter() - t0, 3)}


def predict(model: TextNet, vocab: list[str], word: str) -> str:
    """The argmax next word for `word`, computed in float64."""
    return greedy_chain(model, vocab, word, 1)[1]


def greedy_chain(model: TextNet, vocab: list[str], start: str, steps: int) -> list[str]:
    """start followed by `steps` argmax predictions (float64), each fed back as the next input."""
    index = {w: i for i, w in enumerate(vocab)}
    if start not in index:
        raise TextNetError(f"'{start}' is not in the vocabulary {vocab}")
    m, chain = _float64(model), [start]
    with torch.no_grad():
        for _ in range(steps):
            chain.append(vocab[int(m(torch.tensor([index[chain[-1]]])).argmax(dim=1))])
    return chain


MINSTD_M, MINSTD_A = 2147483647, 48271  # the sampling rule's uniform stream (issue 16)


def minstd_states(seed: int, steps: int) -> list[int]:
    """state_1..state_steps of the MINSTD stream from ``seed`` (1 .. 2^31 - 2), in exact
    integers: state_j = state_(j-1) * 48271 mod 2147483647; u_j = state_j / 2147483647."""
    if not (isinstance(seed, int) and 1 <= seed <= MINSTD_M - 1):
        raise TextNetError(f"the seed must be a whole number 1 .. {MINSTD_M - 1} (got {seed})")
    out, state = [], seed
    for _ in range(steps):
        state = state * MINSTD_A % MINSTD_M
        out.append(state)
    return out


def sample_pick(logits: torch.Tensor, temperature: float, top_k: int,
                u: float) -> tuple[int, torch.Tensor]:
    """One step of the sampling rule on a (V,) float64 logits row.

    Returns:
        (the picked id, p (V,)): p = softmax(logits / T) over the ids whose logit is at least
        the k-th largest (ties kept; k = 0 keeps all), 0 elsewhere; the id is the smallest whose
        cumulative p (in id order) reaches u.  T = 0: p is 1 at the first argmax (greedy).
    """
    if temperature == 0:
        p = torch.zeros_like(logits)
        p[int(logits.argmax())] = 1.0  # torch.argmax: the first of equal maxima
    else:
        keep = torch.ones_like(logits, dtype=torch.bool)
        if 0 < top_k < logits.numel():
            keep = logits >= logits.topk(top_k).values[-1]
        p = torch.softmax((logits / temperature).masked_fill(~keep, -torch.inf), dim=0)
    return int((p.cumsum(0) < u).sum()), p


def sample_chain(model: TextNet, vocab: list[str], start: str, steps: int, temperature: float,
                 top_k: int, seed: int) -> list[str]:
    """start followed by `steps` words sampled by the rule (float64), each fed back as the next
    input; temperature 0 is greedy_chain."""
    index = {w: i for i, w in enumerate(vocab)}
    if start not in index:
        raise TextNetError(f"'{start}' is not in the vocabulary {vocab}")
    m, chain = _float64(model), [start]
    with torch.no_grad():
        for state in minstd_states(seed, steps):
            logits = m(torch.tensor([index[chain[-1]]]))[0]
            chain.append(vocab[sample_pick(logits, temperature, top_k, state / MINSTD_M)[0]])
    return chain


def trace(model: TextNet, word_id: int) -> dict[str, np.ndarray]:
    """Float64 intermediates for one input id: embedding, layer{i}.z / layer{i}.a (1-based), logits."""
    m = _float64(model)
    if not 0 <= int(word_id) < m.vocab_size:
        raise TextNetError(f"word id {word_id} is outside 0..{m.vocab_size - 1}")
    out = {}
    with torch.no_grad():
        a = m.embed(torch.tensor([int(word_id)]))
        out["embedding"] = a.numpy().copy()
        for i, layer in enumerate(m.layers, 1):
            z = layer(a)
            a = torch.relu(z)
            out[f"layer{i}.z"], out[f"layer{i}.a"] = z.numpy().copy(), a.numpy().copy()
        out["logits"] = m.out(a).numpy().copy()
    return out
