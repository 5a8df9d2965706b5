"""The GPT preset: the reference GPT (models/gpt.py) with a prompt cell; the choice of front end.

Two front ends feed one body (gpt_body.py).  A model whose vocabulary is exactly its vocab_size
single characters gets a prompt cell that the sheet splits into characters and ids (this
module).  Any other (no vocabulary, GPT-2's BPE strings, words) gets one token-id input cell per
position (gpt_tokens.py).  A front end hands the body a ``Front``: the ids node and how to label
tokens.

Sheets, in reading order: Prompt (the prompt cell, its characters and token ids, the sampling
cells, the prompt and its continuation, the steps), Vocab (id, character), then the body's:
Embedding, per block "B<i> Attention" and "B<i> MLP", Output (next character, top 5) and
Sampling (each position's draw).

The workbook computes T positions (``context``; by default the block size up to
gpt_body.DEFAULT_CONTEXT, or as many as the prompt fills; the Guide sheet says how many of the
model's).  A shorter prompt fills positions 0..n-1; each position after it reads the character
drawn from the position before it (generation.py), so one recalculation continues the prompt,
and the next character is the draw at position n-1.  A longer prompt: the sheet reads its last
T characters (as nanoGPT's ``generate`` crops the context) and says so.

What verify compares: PyTorch runs the same loop (generation.generate_ids) from the prompt and the
workbook's Temperature, Top-k and Seed cells, then every intermediate of the T ids; the prompt's
positions equal PyTorch on the prompt alone (tests check it).  Masked attention scores are -inf
in PyTorch and blank in the sheet, and count as equal; the probabilities there are 0 on both
sides.  An unknown character stops verify and run with its "not in vocab" message.
"""
from __future__ import annotations

import numpy as np

from ..errors import SheetnetError
from ..ir import graph as ir
from ..ir.reference import evaluate
from . import generation
from .gpt_body import (PAD, Front, build_body, char_label, check_context, context_meta,
                       position_labels, trace_ids)
from .gpt_tokens import DEFAULT_TOKENS, capture_gpt_tokens, trace_gpt_tokens
from .trace import Captured

DEFAULT_PROMPT = "The cell"


def decode_tokens(ids, vocab: list[str]) -> str:
    """Token ids -> the prompt text they spell.

    Raises:
        SheetnetError: an id outside the vocabulary.
    """
    bad = [i for i in ids if not 0 <= int(i) < len(vocab)]
    if bad:
        raise SheetnetError(f"token id {bad[0]} is outside the vocabulary (ids 0..{len(vocab) - 1})")
    return "".join(vocab[int(i)] for i in ids)


def tokenize(text: str, vocab: list[str], context: int) -> list:
    """The sheet's tokenizer in Python: ids of the last ``context`` characters, then pads.

    An unknown character becomes the text "not in vocab: 'Ω'", as in the sheet.
    """
    return _read_prompt(np.array([[text]], dtype=object), vocab, context)[0]


def _read_prompt(cell, vocab: list[str], t: int) -> tuple[list, int]:
    # the Prompt sheet's own ops run by the reference interpreter, so Python tokenizes exactly
    # as the sheet does: (T ids, or an unknown character's message; n, the characters read)
    g = ir.Graph()
    _prompt(g, vocab, "", t, [f"t{i}" for i in range(t)])
    v = evaluate(g, {"prompt": np.asarray(cell, dtype=object).reshape(1, 1)})
    ids = [int(i) if isinstance(i, float) else i for i in v["tokens.id"][:, 0]]
    return ids, int(v["prompt.n"][0, 0])


def is_char_vocab(vocab, size: int) -> bool:
    """Whether ``vocab`` lists ``size`` single characters (what the prompt cell needs)."""
    return len(vocab) == size and all(isinstance(s, str) and len(s) == 1 for s in vocab)


def lower_gpt(payload: dict, options=None) -> Captured:
    """A "gpt" payload -> the Captured workbook graph, with the front end its vocabulary allows.

    Raises:
        SheetnetError: a prompt and token ids both given, or a prompt for a model without a
            character vocabulary.
    """
    from ..models.gpt import GPT
    model = GPT.from_checkpoint(payload)
    vocab, size = list(payload.get("metadata", {}).get("vocab", [])), model.config.vocab_size
    prompt, tokens, context, lens = (getattr(options, k, None)
                                     for k in ("prompt", "tokens", "context", "lens"))
    if prompt is not None and tokens is not None:
        raise SheetnetError("give a prompt or token ids, not both")
    if is_char_vocab(vocab, size):
        prompt = decode_tokens(tokens, vocab) if tokens is not None else prompt
        graph = capture_gpt(model, vocab, DEFAULT_PROMPT if prompt is None else prompt, context,
                            lens)
        return Captured(model, graph, trace_gpt)
    if prompt is not None and payload.get("tokenizer_folder") is not None:
        from .bpe import lower_gpt_bpe   # a byte-level BPE: the Tokenizer sheet (issue 18)
        return lower_gpt_bpe(model, payload["tokenizer_folder"], prompt, context)
    if prompt is not None:
        has = (f"{len(vocab)} tokens such as {max(vocab, key=len)[:20]!r}" if vocab else "none")
        raise SheetnetError(f"a prompt needs a vocabulary of {size} single characters and this "
                            f"model has {has}: give token ids (--tokens) instead")
    graph = capture_gpt_tokens(model, DEFAULT_TOKENS if tokens is None else tokens,
                               vocab if len(vocab) == size else None, context, lens)
    if vocab and len(vocab) != size:  # said on the Guide sheet and by the CLI, not just dropped
        note = (f"its vocabulary lists {len(vocab):,} tokens but the model has {size:,} ids, so "
                "the sheets show ids only")
        graph.meta["summary"] += f" ({note})"
        graph.meta.setdefault("notes", []).append(note)
    return Captured(model, graph, trace_gpt_tokens)


def capture_gpt(model, vocab: list[str], prompt: str = DEFAULT_PROMPT,
                context: int | None = None, lens: bool | None = None) -> ir.Graph:
    """Build the whole workbook's graph for ``model`` (a models.gpt.GPT).

    Args:
        model: the GPT (any dtype; weights are taken as float64).
        vocab: the characters in id order (checkpoint metadata "vocab").
        prompt: the text written into the prompt cell.
        context: positions T the sheets compute (default: see ``check_context``).
        lens: the Logit lens sheet (None: while it stays small, logit_lens.wanted).
    Returns:
        the graph, with ``meta["run"]`` declaring the prompt/temperature inputs and the report.
    """
    cfg = model.config
    t = check_context(model, context, len(prompt))
    if not is_char_vocab(vocab, cfg.vocab_size):
        raise SheetnetError(f"the gpt vocabulary must list {cfg.vocab_size} single characters "
                            "(checkpoint metadata 'vocab')")
    positions, said = context_meta(t, cfg.block_size)
    g = ir.Graph(meta={
        "architecture": "gpt", "vocab": list(vocab), **positions,
        "summary": (f"a character-level GPT: {cfg.n_layer} blocks, {cfg.n_head} heads, "
                    f"{cfg.n_embd}-wide, {len(vocab)} characters, {said}"),
        "guide": {"context": t, "layers": cfg.n_layer, "last_sheet": f"B{cfg.n_layer} MLP"}})
    pos = [f"t{i}" for i in range(t)]  # the Prompt sheet's table shows the characters live
    _prompt(g, vocab, prompt, t, pos)
    ids, n = _read_prompt(np.array([[prompt]], dtype=object), vocab, t)
    pos = position_labels(ids, n, lambda j: char_label(vocab[j]))  # "t3 ␣" on the body
    build_body(g, model, Front("tokens.id", "tokens.char", "character",
                               [char_label(ch) for ch in vocab], "vocab.char", "vocab.label",
                               "char", "character", typed="tokens.char"), pos, lens)
    spec = generation.run_spec("prompt", {
        "tokens": "tokens.id", "next_token": "next.char", "top_ids": "top.id",
        "top_chars": "top.char", "top_probs": "top.prob", "note": "prompt.note",
        "step_texts": "steps.text"})
    g.meta["run"] = {
        "input": "prompt", **spec,
        # outputs and "tokens" keep the prompt's positions only; text in tokens.id is an error
        "positions": {"count": "prompt.n", "keys": ["tokens"]},
        "errors": ["tokens.id"], "vocab": list(vocab)}
    return g


def _prompt(g: ir.Graph, vocab, prompt: str, t: int, pos) -> str:
    sheet = "Prompt"
    g.add("prompt", ir.Input(np.array([[prompt]], dtype=object)), (1, 1), sheet,
          title="Prompt: type text in the yellow cell", row_labels=["prompt"])
    g.add("prompt.n", ir.PromptLength("prompt", t), (1, 1), sheet, style="integer",
          title=f"characters read (at most {t}, the context)", row_labels=["n"])
    g.add("vocab.char", ir.Const(np.array([[ch] for ch in vocab], dtype=object)), (len(vocab), 1),
          "Vocab", title="Vocabulary: id (row) and character",
          row_labels=[str(i) for i in range(len(vocab))], col_labels=["character"])
    g.add("vocab.label", ir.Const(np.array([[char_label(ch)] for ch in vocab], dtype=object)),
          (len(vocab), 1), "Vocab", title="", col_labels=["shown as"], beside=True)
    # the tokens table sits below the prompt's summary cells (order=1), whatever is added later
    g.add("tokens.char", ir.Chars("prompt", "prompt.n", t), (t, 1), sheet, order=1,
          title=f"Tokens and ids (pad {PAD} after the prompt)",
          row_labels=pos, col_labels=["character"])
    g.add("tokens.id", ir.TokenId("tokens.char", "vocab.char", PAD), (t, 1), sheet,
          order=1, title="", col_labels=["id"], beside=True,
          ref="tokens.id", style="integer")
    g.add("prompt.note", ir.PromptNote("prompt", "tokens.id", t), (1, 1), sheet,
          title="status", row_labels=["status"])
    return "tokens.id"


def trace_gpt(model, graph: ir.Graph, leaves: dict) -> dict[str, np.ndarray]:
    """PyTorch float64 intermediates for the prompt in the workbook (``leaves["prompt"]``).

    The prompt is tokenized in Python exactly as the sheet does (last T characters, then pads);
    see ``trace_ids`` for what is recorded.
    """
    ids, n = _read_prompt(leaves["prompt"], graph.meta["vocab"], graph.meta["context"])
    unknown = [i for i in ids if isinstance(i, str)]
    if unknown:
        raise SheetnetError(f"the prompt cannot be traced: {unknown[0]}")
    return trace_ids(model, graph, leaves, ids, n)
