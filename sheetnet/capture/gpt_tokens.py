"""Token-id input cells: the front end of a GPT whose vocabulary is not single characters.

GPT-2's byte-level BPE, a word-level meta.pkl, or no vocabulary at all (a bare nanoGPT, minGPT or
Hugging Face checkpoint): there is no text the sheet could split, so the Prompt sheet has one
yellow cell per position where the user types token ids.  The prompt is the filled cells from t0
on: its length n is their count and the next token is drawn at position n-1, as with a typed
prompt; the blank positions after it read the ids drawn before them (generation.py).  A
tokenizer sheet (a BPE prompt) would hand build_body a Front whose ids are its tokens.  Each id
is checked in the sheet, a whole number in 0..V-1; a bad one shows its message in the id column
and the numbers after it show errors; a blank before the last filled cell (a gap) is the status
cell's message; run and verify report either as one line.  Each position reads its own typed
cell only (not the prompt's length): an edit recomputes the positions from the edited one on.

Where the vocabulary gives every id's string, the Vocab sheet lists them as text cells, and the
prompt's tokens, the next token and the top 5 are looked up there; otherwise the sheets show ids.
"""
from __future__ import annotations

import numpy as np

from ..errors import SheetnetError
from ..ir import graph as ir
from ..ir.reference import checked_id
from . import generation
from .gpt_body import (PAD, Front, build_body, char_label, check_context, context_meta,
                       position_labels, trace_ids)

DEFAULT_TOKENS = [0]  # the prompt written into the cells when export is given none


def token_label(text: str) -> str:
    """How a token string is labelled: a one-character token as ``char_label``, otherwise the
    string with newlines and tabs made visible ("\\n")."""
    if len(text) == 1:
        return char_label(text)
    return text.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def capture_gpt_tokens(model, tokens: list[int], strings: list[str] | None = None,
                       context: int | None = None, lens: bool | None = None) -> ir.Graph:
    """Build the workbook's graph for ``model`` with token-id input cells.

    Args:
        model: the GPT (a models.gpt.GPT).
        tokens: the ids written into the input cells (at most ``context`` of them).
        strings: each id's token string, in id order, or None: the sheets show ids only.
        context: positions T the sheets compute (default: see gpt_body.check_context).
        lens: the Logit lens sheet (None: while it stays small, logit_lens.wanted).
    Returns:
        the graph, with ``meta["run"]`` declaring the tokens/temperature inputs and the report.
    Raises:
        SheetnetError: more ids than positions, or an id outside the vocabulary.
    """
    cfg = model.config
    tokens = [int(i) for i in tokens]
    t, v = check_context(model, context, len(tokens)), cfg.vocab_size
    if len(tokens) > t:
        raise SheetnetError(f"{len(tokens)} token ids given; the workbook holds {t} positions "
                            "(its context)")
    bad = [i for i in tokens if not 0 <= i < v]
    if bad:
        raise SheetnetError(ir.CheckedIds.OUTSIDE.format(bad[0], v - 1))
    named = "" if strings is None else " and their strings"
    positions, said = context_meta(t, cfg.block_size)
    g = ir.Graph(meta={
        "architecture": "gpt", "guide_text": "gpt-tokens", **positions,
        "summary": (f"a GPT: {cfg.n_layer} blocks, {cfg.n_head} heads, {cfg.n_embd}-wide, "
                    f"{v:,} token ids{named}, {said}"),
        "guide": {"context": t, "layers": cfg.n_layer, "last_sheet": f"B{cfg.n_layer} MLP",
                  "last_id": v - 1}})
    pos = [f"t{i}" for i in range(t)]  # the input cells' labels; the body's say the tokens too
    front = _token_inputs(g, tokens, strings, v, pos)
    shown = (lambda j: token_label(strings[j])) if strings else str
    ids = tokens + [PAD] * (t - len(tokens))
    build_body(g, model, front, position_labels(ids, len(tokens), shown), lens)
    report = {"tokens": "tokens.id", "next_token": "next.text" if strings else "next.id",
              "top_ids": "top.id", "top_probs": "top.prob", "note": "prompt.note"}
    if strings:
        report.update({"top_tokens": "top.text", "step_texts": "steps.text"})
    g.meta["run"] = {
        "input": "prompt", **generation.run_spec("tokens", report),
        "blank_fill": ["tokens"],   # fewer ids than positions: the rest are left blank
        "integers": ["next_token", "top_ids"],
        # outputs and "tokens" keep the prompt's positions only; text in tokens.id is an error
        "positions": {"count": "prompt.n", "keys": ["tokens"]}, "errors": ["tokens.id"]}
    return g


def _token_inputs(g: ir.Graph, tokens: list[int], strings, v: int, pos) -> Front:
    # Prompt: count | status (| next, added by the body) above the table ids | checked id | token
    sheet, t = "Prompt", len(pos)
    typed = np.array([[float(i)] for i in tokens] + [[None]] * (t - len(tokens)), dtype=object)
    g.add("prompt", ir.Input(typed), (t, 1), sheet, order=1,
          title=f"Prompt: type token ids (0..{v - 1}) in the yellow cells from t0 on; "
                "blank cells are past the prompt", row_labels=pos, col_labels=["token id"])
    g.add("prompt.n", ir.FilledCount("prompt"), (1, 1), sheet, style="integer",
          title=f"tokens typed (at most {t}, the context)", row_labels=["n"])
    if strings is not None:
        labels = [token_label(s) for s in strings]
        g.add("vocab.text", ir.Const(np.array([[s] for s in strings], dtype=object)), (v, 1),
              "Vocab", title="Vocabulary: id (row), token string, shown as",
              row_labels=[str(i) for i in range(v)], col_labels=["token"])
        g.add("vocab.label", ir.Const(np.array([[s] for s in labels], dtype=object)), (v, 1),
              "Vocab", title="", col_labels=["shown as"], beside=True)
    g.add("tokens.id", ir.CheckedIds("prompt", v, PAD), (t, 1), sheet, order=1,
          title="", col_labels=[f"id (pad {PAD} after the prompt)"], beside=True, ref="tokens.id",
          style="integer")
    if strings is not None:
        g.add("tokens.text", ir.TokenText("vocab.label", "tokens.id", "prompt.n"), (t, 1), sheet,
              order=1, title="", col_labels=["token"], beside=True)
    g.add("prompt.note", ir.IdsNote("tokens.id", "prompt"), (1, 1), sheet, title="status",
          row_labels=["status"])
    if strings is None:
        return Front("tokens.id", "tokens.id", "id", [str(i) for i in range(v)], None, None,
                     "text", "token", typed="prompt")
    return Front("tokens.id", "tokens.text", "token", labels, "vocab.text", "vocab.label",
                 "text", "token", typed="prompt")


def trace_gpt_tokens(model, graph: ir.Graph, leaves: dict) -> dict[str, np.ndarray]:
    """PyTorch float64 intermediates for the ids typed in the workbook (``leaves["prompt"]``),
    checked as the sheet checks them (see ``trace_ids``).

    Raises:
        SheetnetError: a typed id the sheet rejects, with the sheet's message.
    """
    cells = np.asarray(leaves["prompt"], dtype=object)[:, 0]
    n = sum(not (c is None or (isinstance(c, str) and c == "")) for c in cells)
    ids = [checked_id(c, i, n, model.config.vocab_size, PAD) for i, c in enumerate(cells)]
    bad = [i for i in ids if isinstance(i, str)]
    if bad:
        raise SheetnetError(bad[0])
    return trace_ids(model, graph, leaves, [int(i) for i in ids], n)
