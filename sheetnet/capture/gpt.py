"""Lowering of the reference GPT (models/gpt.py) into the IR.

Two front ends feed one body.  A model whose vocabulary is exactly its vocab_size single
characters gets a prompt cell that the sheet splits into characters and ids (this module).  Any
other (no vocabulary, GPT-2's BPE strings, words) gets one token-id input cell per position
(gpt_tokens.py).  A front end hands the body a ``Front``: the ids node and how to label tokens.

Sheets, in reading order: Prompt (the prompt cell, its characters and token ids),
Vocab (id, character), Embedding (wte, wpe, x0), per block "B<i> Attention" and
"B<i> MLP", and Output (final layer norm, logits, temperature softmax, next character, top 5).
Node names are the trace names of ``GPT.forward`` (``h0.attn.q1``, ``ln_f.var`` ...), so each
node's ``ref`` is its own name.  A vocabulary wider than a sheet (GPT-2's 50,257) puts the
logits and the next-token rows on the Output sheet transposed (layout.py decides; nothing here).

The workbook computes T positions (``context``; by default the block size up to DEFAULT_CONTEXT,
or as many as the prompt fills; the Guide sheet says how many of the model's).  A shorter
prompt fills positions 0..n-1; the positions after it hold the pad id and compute on it like any
token, but causal attention keeps them from touching positions before them, and the next
character is read at position n-1.  A longer prompt: the sheet reads its last T characters
(as nanoGPT's ``generate`` crops the context) and says so.

What verify compares: PyTorch runs on exactly the T ids the sheet shows (the prompt, then pads), so
every position is compared, pads included; the prompt's positions equal PyTorch on the prompt
alone (tests check it).  Masked attention scores are -inf in PyTorch and blank in the sheet, and
count as equal; the probabilities there are 0 on both sides.  An unknown character stops
verify and run with its "not in vocab" message.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SheetnetError
from ..ir import graph as ir
from .trace import Captured

PAD = 0         # token id of the positions after the prompt (never seen by the prompt's positions)
TOP_K = 5       # candidates listed on the Output sheet
DEFAULT_PROMPT = "The cell"
# positions computed without --context: every position of a model whose block size is at most
# this, else this many (or as many as the prompt or token ids fill).  Cells grow with T and the
# scores with T^2: GPT-2 small at its 1024 ran past 15 minutes and 2.2 GB and never finished.
DEFAULT_CONTEXT = 64


def char_label(ch: str) -> str:
    """How a vocabulary character is labelled on the sheets: 'a', space, \\n."""
    return {" ": "space", "\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch, ch)


def decode_tokens(ids, vocab: list[str]) -> str:
    """Token ids -> the prompt text they spell.

    Raises:
        SheetnetError: an id outside the vocabulary.
    """
    bad = [i for i in ids if not 0 <= int(i) < len(vocab)]
    if bad:
        raise SheetnetError(f"token id {bad[0]} is outside the vocabulary (ids 0..{len(vocab) - 1})")
    return "".join(vocab[int(i)] for i in ids)


def tokenize(text: str, vocab: list[str], context: int, pad: int = PAD) -> list:
    """The sheet's tokenizer in Python: ids of the last ``context`` characters, then pads.

    An unknown character becomes the text "not in vocab: 'Ω'", as in the sheet.
    """
    from ..emit.formulas import UNKNOWN_CHAR
    stoi: dict[str, int] = {}
    for i, ch in enumerate(vocab):
        stoi.setdefault(ch, i)
    window = text[max(0, len(text) - context):]
    return [stoi.get(ch, UNKNOWN_CHAR.format(ch)) for ch in window] + [pad] * (context - len(window))


def is_char_vocab(vocab, size: int) -> bool:
    """Whether ``vocab`` lists ``size`` single characters (what the prompt cell needs)."""
    return len(vocab) == size and all(isinstance(s, str) and len(s) == 1 for s in vocab)


@dataclass(frozen=True)
class Front:
    """What a front end (the Prompt and Vocab sheets) hands the body of the workbook."""
    ids: str                 # (T, 1) node: the token id of each position
    shown: str               # (T, 1) node repeated beside each sheet's first block
    shown_as: str            # its column label: "character", "token" or "id"
    labels: list[str]        # one per vocabulary id: wte's rows, the logits' columns
    exact: str | None        # (V, 1) text node: each id's string (the next token); None: ids only
    label_table: str | None  # (V, 1) text node: each id's label (the top candidates)
    key: str                 # the next token's string is node "next.<key>"
    unit: str                # "character" or "token", for titles


def lower_gpt(payload: dict, options=None) -> Captured:
    """A "gpt" payload -> the Captured workbook graph, with the front end its vocabulary allows.

    Raises:
        SheetnetError: a prompt and token ids both given, or a prompt for a model without a
            character vocabulary.
    """
    from ..models.gpt import GPT
    model = GPT.from_checkpoint(payload)
    vocab, size = list(payload.get("metadata", {}).get("vocab", [])), model.config.vocab_size
    prompt, tokens, context = (getattr(options, k, None) for k in ("prompt", "tokens", "context"))
    if prompt is not None and tokens is not None:
        raise SheetnetError("give a prompt or token ids, not both")
    if is_char_vocab(vocab, size):
        prompt = decode_tokens(tokens, vocab) if tokens is not None else prompt
        graph = capture_gpt(model, vocab, DEFAULT_PROMPT if prompt is None else prompt, context)
        return Captured(model, graph, trace_gpt)
    if prompt is not None:
        has = (f"{len(vocab)} tokens such as {max(vocab, key=len)[:20]!r}" if vocab else "none")
        raise SheetnetError(f"a prompt needs a vocabulary of {size} single characters and this "
                            f"model has {has}: give token ids (--tokens) instead")
    from .gpt_tokens import DEFAULT_TOKENS, capture_gpt_tokens, trace_gpt_tokens
    graph = capture_gpt_tokens(model, DEFAULT_TOKENS if tokens is None else tokens,
                               vocab if len(vocab) == size else None, context)
    if vocab and len(vocab) != size:  # said on the Guide sheet and by the CLI, not just dropped
        note = (f"its vocabulary lists {len(vocab):,} tokens but the model has {size:,} ids, so "
                "the sheets show ids only")
        graph.meta["summary"] += f" ({note})"
        graph.meta.setdefault("notes", []).append(note)
    return Captured(model, graph, trace_gpt_tokens)


def check_context(model, context: int | None, needed: int = 1) -> int:
    """The positions T the sheets compute.

    Args:
        model: the GPT.
        context: the positions asked for, or None: the block size up to DEFAULT_CONTEXT, or
            ``needed`` if more (never past the block size).
        needed: positions the prompt or token ids fill.
    Returns:
        T, 1 <= T <= block_size.
    Raises:
        SheetnetError: ``context`` is given and outside 1..block_size.
    """
    block = model.config.block_size
    if context is None:
        return min(block, max(DEFAULT_CONTEXT, needed))
    if not 1 <= context <= block:
        raise SheetnetError(f"context {context} must be between 1 and the model's block_size "
                            f"{block}")
    return context


def positions_text(t: int, block: int) -> str:
    """How many of the model's positions the workbook computes, as export, inspect and the
    Guide sheet say it."""
    more = f" (--context up to {block} for more)" if t < block else ""
    return f"computes {t} of the model's {block} positions{more}"


def context_meta(t: int, block: int) -> tuple[dict, str]:
    """The graph's meta entries for T positions of ``block``, and the summary's words for them."""
    meta = {"context": t, "positions": [t, block], "capture_options": {"context": t}}
    return meta, f"context {t}" + (f": the workbook {positions_text(t, block)}" if t < block else "")


def capture_gpt(model, vocab: list[str], prompt: str = DEFAULT_PROMPT,
                context: int | None = None) -> ir.Graph:
    """Build the whole workbook's graph for ``model`` (a models.gpt.GPT).

    Args:
        model: the GPT (any dtype; weights are taken as float64).
        vocab: the characters in id order (checkpoint metadata "vocab").
        prompt: the text written into the prompt cell.
        context: positions T the sheets compute (default: see ``check_context``).
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
    pos = [f"t{i}" for i in range(t)]
    _prompt(g, vocab, prompt, t, pos)
    build_body(g, model, Front("tokens.id", "tokens.char", "character",
                               [char_label(ch) for ch in vocab], "vocab.char", "vocab.label",
                               "char", "character"), pos)
    g.meta["run"] = {
        "input": "prompt", "inputs": {"prompt": "prompt", "temperature": "temperature"},
        "report": {"tokens": "tokens.id", "next_token": "next.char", "top_ids": "top.id",
                   "top_chars": "top.char", "top_probs": "top.prob", "note": "prompt.note"},
        # outputs and "tokens" keep the prompt's positions only; text in tokens.id is an error
        "positions": {"count": "prompt.n", "keys": ["tokens"]},
        "errors": ["tokens.id"], "vocab": list(vocab)}
    return g


def build_body(g: ir.Graph, model, front: Front, pos) -> None:
    """Embedding, the blocks and the Output sheet, after a front end's sheets."""
    x = _embedding(g, model, front, pos)
    for i, block in enumerate(model.transformer.h):
        x = _attention(g, block, f"h{i}", f"B{i + 1} Attention", x, model.config, front, pos)
        x = _mlp(g, block, f"h{i}", f"B{i + 1} MLP", x, model.config, front, pos)
    _output(g, model, front, x, pos)


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


def _param(g: ir.Graph, name: str, tensor, sheet: str, *, row: bool = False, **kw) -> str:
    # weights keep PyTorch's (out, in) layout; LayerNorm gains/biases are (1, F) rows here
    value = ir.as_matrix(tensor)
    value = value.T if row else value
    return g.add(name, ir.Param(value, source=kw.pop("source")), value.shape, sheet, **kw)


def _characters(g: ir.Graph, name: str, sheet: str, front: Front, pos) -> None:
    # the characters (tokens, ids) of the positions, beside each sheet's first block
    g.add(f"{name}.char", ir.Copy(front.shown), (len(pos), 1), sheet, title="",
          col_labels=[front.shown_as], beside=True)


def _embedding(g: ir.Graph, model, front: Front, pos) -> str:
    sheet, tr, t, ids = "Embedding", model.transformer, len(pos), front.ids
    n_embd = model.config.n_embd
    feats = [f"e{j}" for j in range(n_embd)]
    head = " (the LM head reads it too)" if model.config.tied else ""
    _param(g, "wte", tr.wte.weight, sheet, source="transformer.wte.weight",
           title=f"wte: token embedding table, one row per vocabulary id{head}",
           row_labels=[f"{i} {s}" if front.exact else s for i, s in enumerate(front.labels)],
           col_labels=feats)
    # all block_size rows, though the sheets read the first T: every weight stays in the book
    _param(g, "wpe", tr.wpe.weight, sheet, source="transformer.wpe.weight",
           title="wpe: position embedding table, one row per position",
           row_labels=[f"t{i}" for i in range(model.config.block_size)], col_labels=feats)
    g.add("tok_emb", ir.Lookup("wte", ids), (t, n_embd), sheet, ref="tok_emb",
          title="tok_emb = row id of wte", row_labels=pos, col_labels=feats)
    if front.shown != ids:
        _characters(g, "tok_emb", sheet, front, pos)
    g.add("tok_emb.id", ir.Copy(ids), (t, 1), sheet, title="", col_labels=["id"], beside=True,
          style="integer")
    g.add("pos_emb", ir.View("wpe", (0, t), (0, n_embd)), (t, n_embd), sheet)
    return g.add("x0", ir.Add("tok_emb", "pos_emb"), (t, n_embd), sheet, ref="x0",
                 title="x0 = tok_emb + pos_emb (row t of wpe)", row_labels=pos, col_labels=feats)


def _layer_norm(g: ir.Graph, ln, name: str, sheet: str, x: str, pos, feats) -> str:
    """mean | var beside the input, then normalised, gain, bias and the output."""
    t, width = g.shape(x)
    g.add(f"{name}.mean", ir.RowMean(x), (t, 1), sheet, title="", col_labels=["mean"],
          beside=True, ref=f"{name}.mean")
    g.add(f"{name}.var", ir.RowVar(x, f"{name}.mean"), (t, 1), sheet, title="",
          col_labels=["variance"], beside=True, ref=f"{name}.var")
    g.add(f"{name}.norm", ir.Normalize(x, f"{name}.mean", f"{name}.var", ln.eps), (t, width),
          sheet, title=f"{name} normalised: (x - mean) / sqrt(variance + {ln.eps:g})",
          row_labels=pos, col_labels=feats, ref=f"{name}.norm")
    prefix = name.replace("h", "transformer.h.", 1) if name.startswith("h") else f"transformer.{name}"
    _param(g, f"{name}.gain", ln.weight, sheet, row=True, source=f"{prefix}.weight",
           title=f"{name} gain (weight)", row_labels=["gain"], col_labels=feats)
    bias = None
    if ln.bias is not None:
        bias = _param(g, f"{name}.bias", ln.bias, sheet, row=True, source=f"{prefix}.bias",
                      title=f"{name} bias", row_labels=["bias"], col_labels=feats)
    return g.add(name, ir.ScaleShift(f"{name}.norm", f"{name}.gain", bias), (t, width), sheet,
                 title=f"{name} = normalised * gain + bias", row_labels=pos, col_labels=feats,
                 ref=name)


def _linear_params(g: ir.Graph, lin, name: str, source: str, sheet: str, title: str,
                   rows, cols) -> tuple[str, str | None]:
    w = _param(g, f"{name}.W", lin.weight, sheet, source=f"{source}.weight", title=title,
               row_labels=rows, col_labels=cols)
    b = None
    if lin.bias is not None:
        b = _param(g, f"{name}.b", lin.bias, sheet, source=f"{source}.bias", title="",
                   col_labels=["bias"], beside=True)
    return w, b


def _block_input(g: ir.Graph, name: str, sheet: str, x: str, front: Front, pos, feats,
                 what: str) -> str:
    g.add(f"{name}.x", ir.Copy(x), g.shape(x), sheet, row_labels=pos, col_labels=feats,
          title=f"x: {what}")
    _characters(g, name, sheet, front, pos)
    return f"{name}.x"


def _attention(g: ir.Graph, block, h: str, sheet: str, x: str, cfg, front: Front, pos) -> str:
    t, c, nh = len(pos), cfg.n_embd, cfg.n_head
    hs = c // nh
    feats = [f"e{j}" for j in range(c)]
    src = f"transformer.{h.replace('h', 'h.', 1)}"
    x_in = _block_input(g, f"{h}.attn", sheet, x, front, pos, feats,
                        "the residual stream entering this block")
    ln = _layer_norm(g, block.ln_1, f"{h}.ln_1", sheet, x_in, pos, feats)
    qkv_rows = [f"{p}{k}.{d}" for p in "qkv" for k in range(nh) for d in range(hs)]
    w, b = _linear_params(g, block.attn.c_attn, f"{h}.attn.c_attn", f"{src}.attn.c_attn", sheet,
                          "attention weights c_attn: one row per q, k, v output (head.dim)",
                          qkv_rows, feats)
    heads = []
    for k in range(nh):
        heads.append(_head(g, h, k, sheet, ln, w, b, t, c, hs, pos))
    y = g.add(f"{h}.attn.y", ir.Concat(tuple(heads)), (t, c), sheet, ref=f"{h}.attn.y",
              title="y: the heads side by side", row_labels=pos,
              col_labels=[f"y{k}.{d}" for k in range(nh) for d in range(hs)])
    pw, pb = _linear_params(g, block.attn.c_proj, f"{h}.attn.c_proj", f"{src}.attn.c_proj",
                            sheet, "output projection c_proj", feats, g.nodes[y].col_labels)
    out = g.add(f"{h}.attn.out", ir.Linear(y, pw, pb), (t, c), sheet, ref=f"{h}.attn.out",
                title="attention output = y · c_proj^T + bias", row_labels=pos, col_labels=feats)
    return g.add(f"{h}.res1", ir.Add(x_in, out), (t, c), sheet, ref=f"{h}.res1",
                 title="res1 = x + attention output (the residual stream)", row_labels=pos,
                 col_labels=feats)


def _head(g: ir.Graph, h: str, k: int, sheet: str, ln: str, w: str, b: str | None,
          t: int, c: int, hs: int, pos) -> str:
    """q, k, v of head k, its masked scores, softmax and y = probs @ v."""
    name = f"{h}.attn"
    for part, offset in (("q", 0), ("k", c), ("v", 2 * c)):
        rows = (offset + k * hs, offset + (k + 1) * hs)
        wv = g.add(f"{name}.W{part}{k}", ir.View(w, rows, (0, c)), (hs, c), sheet)
        bv = g.add(f"{name}.b{part}{k}", ir.View(b, rows, (0, 1)), (hs, 1), sheet) if b else None
        g.add(f"{name}.{part}{k}", ir.Linear(ln, wv, bv), (t, hs), sheet, ref=f"{name}.{part}{k}",
              beside=part != "q", row_labels=pos if part == "q" else None,
              title=f"head {k}: {part} = ln · W{part}^T + b",
              col_labels=[f"{part}{k}.{d}" for d in range(hs)])
    scores = g.add(f"{name}.scores{k}", ir.CausalScores(f"{name}.q{k}", f"{name}.k{k}"), (t, t),
                   sheet, ref=f"{name}.scores{k}", row_labels=pos, col_labels=pos,
                   title=f"head {k}: scores = q · k^T / sqrt({hs}); row = query position, "
                         "column = key position; the future is masked (blank)")
    mx = g.add(f"{name}.max{k}", ir.RowMax(scores, causal=True), (t, 1), sheet, beside=True,
               title="", col_labels=["row max"])
    total = g.add(f"{name}.sum{k}", ir.RowSumExp(scores, mx, causal=True), (t, 1), sheet,
                  beside=True, title="", col_labels=["sum exp"])
    probs = g.add(f"{name}.probs{k}", ir.Softmax(scores, mx, total, causal=True), (t, t), sheet,
                  ref=f"{name}.probs{k}", row_labels=pos, col_labels=pos,
                  title=f"head {k}: attention = exp(score - row max) / sum exp (0 for the future)")
    return g.add(f"{name}.y{k}", ir.MatMul(probs, f"{name}.v{k}"), (t, hs), sheet, beside=True,
                 ref=f"{name}.y{k}", title=f"head {k}: y = attention · v",
                 col_labels=[f"y{k}.{d}" for d in range(hs)])


def _mlp(g: ir.Graph, block, h: str, sheet: str, x: str, cfg, front: Front, pos) -> str:
    t, c = len(pos), cfg.n_embd
    feats, hidden = [f"e{j}" for j in range(c)], [f"n{j}" for j in range(4 * c)]
    src = f"transformer.{h.replace('h', 'h.', 1)}"
    x_in = _block_input(g, f"{h}.mlp", sheet, x, front, pos, feats,
                        "res1, from the attention sheet")
    ln = _layer_norm(g, block.ln_2, f"{h}.ln_2", sheet, x_in, pos, feats)
    w, b = _linear_params(g, block.mlp.c_fc, f"{h}.mlp.c_fc", f"{src}.mlp.c_fc", sheet,
                          "MLP weights c_fc: one row per hidden neuron", hidden, feats)
    fc = g.add(f"{h}.mlp.fc", ir.Linear(ln, w, b), (t, 4 * c), sheet, ref=f"{h}.mlp.fc",
               title="fc = ln · c_fc^T + bias", row_labels=pos, col_labels=hidden)
    form = cfg.gelu
    act = g.add(f"{h}.mlp.gelu", ir.Gelu(fc, form), (t, 4 * c), sheet, ref=f"{h}.mlp.gelu",
                title=f"GELU(fc) ({'exact, with erf' if form == 'erf' else 'tanh approximation'})",
                row_labels=pos, col_labels=hidden)
    pw, pb = _linear_params(g, block.mlp.c_proj, f"{h}.mlp.c_proj", f"{src}.mlp.c_proj", sheet,
                            "MLP weights c_proj: one row per output feature", feats, hidden)
    out = g.add(f"{h}.mlp.out", ir.Linear(act, pw, pb), (t, c), sheet, ref=f"{h}.mlp.out",
                title="MLP output = GELU · c_proj^T + bias", row_labels=pos, col_labels=feats)
    return g.add(f"{h}.res2", ir.Add(x_in, out), (t, c), sheet, ref=f"{h}.res2",
                 title="res2 = x + MLP output (the residual stream)", row_labels=pos,
                 col_labels=feats)


def _output(g: ir.Graph, model, front: Front, x: str, pos) -> None:
    sheet, c, v, t = "Output", model.config.n_embd, len(front.labels), len(pos)
    feats, labels, unit = [f"e{j}" for j in range(c)], front.labels, front.unit
    # the answer first (order=-1): temperature, next token and the top candidates
    g.add("temperature", ir.Input(np.array([[1.0]]), above=0.0), (1, 1), sheet, order=-1,
          title="Temperature (> 0; lower = sharper)", row_labels=["temperature"])
    x_in = _block_input(g, "ln_f", sheet, x, front, pos, feats,
                        "the residual stream after the last block")
    ln = _layer_norm(g, model.transformer.ln_f, "ln_f", sheet, x_in, pos, feats)
    if model.config.tied:
        head = "wte"  # tied: the LM head is the token embedding table, read from its sheet
    else:
        head = _param(g, "lm_head.W", model.lm_head.weight, sheet, source="lm_head.weight",
                      title="LM head weights, one row per vocabulary id", row_labels=labels,
                      col_labels=feats)
    logits = g.add("logits", ir.Linear(ln, head), (t, v), sheet, ref="logits", role="output",
                   style="formula",
                   title=f"logits = ln_f · {'wte' if head == 'wte' else 'lm_head'}^T, one column "
                         f"per {unit}", row_labels=pos, col_labels=labels)
    last = g.add("next.logits", ir.PickRow(logits, "prompt.n"), (1, v), sheet, ref="next.logits",
                 title="logits at the prompt's last position", row_labels=["logits"],
                 col_labels=labels)
    scaled = g.add("next.scaled", ir.Divide(last, "temperature"), (1, v), sheet,
                   title="", row_labels=["/ temperature"])
    mx = g.add("next.max", ir.RowMax(scaled), (1, 1), sheet, title="", col_labels=["max"],
               beside=True)
    total = g.add("next.sum", ir.RowSumExp(scaled, mx), (1, 1), sheet, title="",
                  col_labels=["sum exp"], beside=True)
    g.add("next.probs", ir.Softmax(scaled, mx, total), (1, v), sheet, ref="next.probs",
          title="probabilities = softmax(logits / temperature)", row_labels=["p"],
          col_labels=labels)
    g.add("next.id", ir.LargestIds(last, 1), (1, 1), sheet, ref="next.id", order=-1,
          title=f"next {unit}: the most likely one (argmax of the logits)", row_labels=["id"],
          style="integer")
    answer = "next.id"
    if front.exact:
        answer = g.add(f"next.{front.key}", ir.Lookup(front.exact, "next.id"), (1, 1), sheet,
                       order=-1, title="", col_labels=[unit], beside=True, style="output")
    ranks = [f"#{r + 1}" for r in range(min(TOP_K, v))]
    k = len(ranks)
    g.add("top.id", ir.LargestIds("next.probs", k), (k, 1), sheet, order=-1,
          title=f"top {k} candidates", row_labels=ranks, col_labels=["id"], style="integer")
    if front.label_table:
        g.add(f"top.{front.key}", ir.Lookup(front.label_table, "top.id"), (k, 1), sheet,
              order=-1, title="", col_labels=[unit], beside=True)
    g.add("top.prob", ir.Largest("next.probs", k), (k, 1), sheet, order=-1, title="",
          col_labels=["probability"], beside=True, ref="top.prob")
    g.add("prompt.next", ir.Copy(answer), (1, 1), "Prompt", style="output",
          title=f"the model's next {unit} (see Output)", row_labels=["next"])
    # on the Prompt sheet, where the reader types: the top candidates at a glance
    label = f"top.{front.key}" if front.label_table else "top.id"
    g.meta.setdefault("charts", []).append(
        {"sheet": "Prompt", "title": f"The {k} most likely next {unit}s", "kind": "bar",
         "x": label, "series": ["top.prob"], "names": ["probability"], "x_title": unit})


def trace_gpt(model, graph: ir.Graph, leaves: dict) -> dict[str, np.ndarray]:
    """PyTorch float64 intermediates for the prompt in the workbook (``leaves["prompt"]``).

    The prompt is tokenized in Python exactly as the sheet does (last T characters, then pads);
    see ``trace_ids`` for what is recorded.
    """
    from ..ir.reference import _text
    t, vocab = graph.meta["context"], graph.meta["vocab"]
    text = _text(leaves["prompt"])
    ids = tokenize(text, vocab, t)
    unknown = [i for i in ids if isinstance(i, str)]
    if unknown:
        raise SheetnetError(f"the prompt cannot be traced: {unknown[0]}")
    return trace_ids(model, graph, leaves, ids, min(len(text), t))


def trace_ids(model, graph: ir.Graph, leaves: dict, ids: list[int], n: int) -> dict:
    """PyTorch float64 intermediates for the T ``ids`` the sheet shows, the prompt being the first n.

    ``GPT.forward`` records every intermediate; added here: the ids, and at the prompt's last
    position (the first when n is 0, as the sheet reads it) the logits, the temperature softmax,
    the argmax and the top probabilities.
    """
    import torch
    model = model.double()
    trace: dict[str, np.ndarray] = {}
    with torch.no_grad():
        logits = model(torch.tensor([ids]), trace=trace)[0]  # (T, V)
        last = logits[max(n, 1) - 1]
        temperature = float(np.asarray(leaves["temperature"], dtype=np.float64)[0, 0])
        probs = torch.softmax(last / temperature, dim=-1)
    k = graph.shape("top.prob")[0]
    trace.update({"tokens.id": np.array(ids, dtype=np.float64)[:, None],
                  "next.logits": last[None].numpy(), "next.probs": probs[None].numpy(),
                  "next.id": np.array([[float(last.argmax())]]),
                  "top.prob": torch.topk(probs, k).values[:, None].numpy()})
    return trace
