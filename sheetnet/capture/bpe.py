"""The Tokenizer sheet: a prompt cell tokenized by formulas with a byte-level BPE (GPT-2's), from
its characters to its token ids, every step in cells (ops/bpe.py).

Sheets it adds:
    Tokenizer    characters (code point, class, word, UTF-8 length), bytes (value, GPT-2's
                 character for it, first symbol), then the merges, one per row: the word, the
                 pair and its rank, the merged token, and the symbols after it.
    BPE tables   the lookup tables, as constants: character classes by code point run, the
                 256 byte characters and their ids, the merges by rank, their sorted codes.

Limits (stated on the sheet): the prompt may have at most ``max_bytes`` UTF-8 bytes; every
word, byte per word and merge fits within that (a merge joins two symbols, so a prompt of B bytes
needs fewer than B merges: the merge table has B rows).  Past the limit, or with more tokens
than the workbook's positions, the status cell says so and no id is produced.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import SheetnetError
from ..ir import graph as ir
from ..loaders.bpe import Bpe, byte_chars, class_runs, read_bpe
from ..loaders.hf_gpt2 import byte_level_text
from ..ops.bpe import SUMMARY, BpeNote
from ..ops.pretokenize import LO_TAB
from . import generation
from .gpt_body import (PAD, Front, build_body, check_context, context_meta, position_labels,
                       trace_ids)
from .gpt_tokens import token_label

MAX_BYTES = 64   # the prompt's UTF-8 bytes the Tokenizer sheet holds
SHEET, TABLES = "Tokenizer", "BPE tables"


def scales(bpe: Bpe) -> tuple[int, int]:
    """(M, R): the powers of ten above the vocabulary and above the merge count, so that
    word * M + id and word * R + rank read as the word's digits then the id's or rank's."""
    return (10 ** math.ceil(math.log10(max(len(bpe.tokens), 2))),
            10 ** math.ceil(math.log10(len(bpe.merges) + 1)))


def add_tables(g: ir.Graph, bpe: Bpe, prefix: str = "bpe") -> None:
    """The BPE tables sheet's constants (shared by every Tokenizer sheet of the workbook)."""
    starts, classes = class_runs()
    v, (_, r) = len(bpe.tokens), scales(bpe)
    g.add(f"{prefix}.starts", ir.Const(np.array(starts, dtype=np.float64)[:, None]),
          (len(starts), 1), TABLES, col_labels=["first code point"],
          title="Character classes of GPT-2's pre-tokenizer, by runs of code points: "
                "L letter, N number, S whitespace, O other (Unicode categories, Python's data)")
    g.add(f"{prefix}.classes", ir.Const(np.array(classes, dtype=object)[:, None]),
          (len(classes), 1), TABLES, col_labels=["class"], beside=True)
    g.add(f"{prefix}.byte_chars", ir.Const(np.array(byte_chars(), dtype=object)[:, None]),
          (256, 1), TABLES, title="Bytes: GPT-2's character for each (every byte has one), "
                                  "and its token id", row_labels=[str(b) for b in range(256)],
          col_labels=["character"])
    g.add(f"{prefix}.byte_ids", ir.Const(np.array(bpe.byte_ids, dtype=np.float64)[:, None]),
          (256, 1), TABLES, col_labels=["id"], beside=True, style="integer")
    merges = np.array(bpe.merges, dtype=np.float64)            # (N, 3) left, right, merged
    g.add(f"{prefix}.merged", ir.Const(merges[:, 2:]), (len(merges), 1), TABLES,
          title="Merges by rank (merges.txt's order): the merged id, then the pair's ids",
          row_labels=[str(k) for k in range(len(merges))], col_labels=["merged id"],
          style="integer")
    g.add(f"{prefix}.pairs", ir.Const(merges[:, :2]), (len(merges), 2), TABLES,
          col_labels=["left id", "right id"], beside=True, style="integer")
    codes = sorted((a * v + b) * r + k for k, (a, b, _) in enumerate(bpe.merges) if a >= 0)
    g.add(f"{prefix}.codes", ir.Const(np.array([-1.0, *codes])[:, None]), (len(codes) + 1, 1),
          TABLES, col_labels=["code"], beside=True,
          title=f"Merge codes, sorted: (left id * {v} + right id) * {r} + rank (MATCH(..., 1) is "
                "a binary search on them; -1 first so every code finds a row)")


def add_tokenizer(g: ir.Graph, bpe: Bpe, prompt: str, labels: str, context: int, pad: int,
                  max_bytes: int = MAX_BYTES, prefix: str = "bpe", sheet: str = SHEET,
                  tables: str = "bpe", outputs: dict | None = None) -> dict:
    """The Tokenizer sheet's nodes reading text node ``prompt`` (1, 1).

    Args:
        bpe: the tokenizer; its tables must be in ``g`` (``add_tables``, prefix ``tables``).
        labels: (V, 1) text node showing each id's token.
        context: T, the positions the ids fill (``pad`` after the prompt's tokens).
        max_bytes: the prompt's UTF-8 bytes the sheet holds (B): B character rows, B byte rows,
            B merge rows of B symbols.
        outputs: names for the "ids", "n" and "note" nodes, placed on the Prompt sheet (a GPT's
            tokens.id, prompt.n, prompt.note); default: "<prefix>.ids" ... on the Tokenizer sheet.
    Returns:
        {"ids": (T, 1) ids node, "n": (1, 1) token count, "note": (1, 1) status}.
    """
    b, (m, r), p, t = max_bytes, scales(bpe), prefix, tables
    chars = [f"c{k}" for k in range(b)]
    g.add(f"{p}.code", ir.CodePoints(prompt, b), (b, 2), sheet, row_labels=chars,
          title=f"Characters of the prompt (at most {b}: the sheet holds {b} bytes of UTF-8)",
          col_labels=["character", "code point"])
    g.add(f"{p}.class", ir.CharClasses(f"{p}.code", f"{t}.starts", f"{t}.classes"), (b, 1), sheet,
          col_labels=["class"], beside=True)
    g.add(f"{p}.words", ir.Pretokenize(f"{p}.code", f"{p}.class"), (b, 3), sheet, beside=True,
          col_labels=["word starts", "contraction letters left", "word"], style="integer")
    g.add(f"{p}.nbytes", ir.Utf8Length(f"{p}.code"), (b, 1), sheet, beside=True,
          col_labels=["UTF-8 bytes"], style="integer")
    g.add(f"{p}.keys", ir.ByteKeys(f"{p}.code", f"{p}.nbytes"), (b, 1), sheet, beside=True,
          col_labels=["first byte"])
    g.add(f"{p}.bytes", ir.Utf8Bytes(f"{p}.code", f"{p}.nbytes", f"{p}.keys", b), (b, 2), sheet,
          title="UTF-8 bytes of the prompt, each as GPT-2's character and as a first symbol: "
                f"word * {m} + the byte's token id", row_labels=[f"b{k}" for k in range(b)],
          col_labels=["byte", "of character"], style="integer")
    g.add(f"{p}.total", ir.ColSum(f"{p}.nbytes"), (1, 1), sheet, beside=True, style="integer",
          col_labels=["bytes"])
    g.add(f"{p}.bchar", ir.TokenText(f"{t}.byte_chars", f"{p}.bytes", f"{p}.total"), (b, 1), sheet,
          beside=True, col_labels=["GPT-2 character"])
    g.add(f"{p}.first", ir.FirstSymbols(f"{p}.bytes", f"{p}.words", f"{t}.byte_ids", m), (b, 1),
          sheet, beside=True, col_labels=["symbol"])
    steps = ir.MergeSteps(f"{p}.first", f"{t}.codes", f"{t}.merged", len(bpe.tokens), m, r, b - 1)
    cols = [*SUMMARY, *(f"s{k}" for k in range(b)), *(f"s{k}+s{k + 1}" for k in range(b - 1))]
    # laid out: the merge's tokens first, then the grid beside them (order: after the bytes)
    g.add(f"{p}.steps", steps, (b, 7 + 2 * b - 1), sheet, col_labels=cols, order=2, beside=True,
          title=(f"Symbols: word * {m} + token id.  Pair keys: word * {r} + rank where the pair "
                 "has a merge, blank where not; the row's smallest key is its merge"))
    g.add(f"{p}.step_tokens", ir.StepTokens(f"{p}.steps", labels), (b, 3), sheet, order=1,
          row_labels=[f"step {k}" for k in range(b)],
          col_labels=["left token", "right token", "merged token"],
          title=("Merges, one per row, per word the lowest rank first (rank: the line of "
                 "merges.txt).  A row whose key is 0 is final: its symbols are the tokens"))
    out = outputs or {k: f"{p}.{k}" for k in ("ids", "n", "note")}
    where = "Prompt" if outputs else sheet
    g.add(out["n"], ir.TokenCount(f"{p}.steps"), (1, 1), where, style="integer", order=3,
          title=f"tokens (at most {context}, the positions)", row_labels=["n"])
    g.add(out["note"], ir.BpeNote(prompt, f"{p}.nbytes", f"{p}.steps", out["n"], b, context),
          (1, 1), where, title="status", row_labels=["status"], order=3)
    g.add(out["ids"], ir.BpeIds(f"{p}.steps", out["note"], out["n"], m, context, pad),
          (context, 1), where, order=1 if outputs else 3,
          title=f"Tokens and ids (pad {pad} after the prompt)",
          row_labels=[f"t{k}" for k in range(context)], col_labels=["id"], style="integer",
          ref="tokens.id" if outputs else None)
    return out


# --- the GPT front end: a prompt cell tokenized on the Tokenizer sheet ---------------------
def lower_gpt_bpe(model, folder, prompt: str, context: int | None = None):
    """capture.gpt.lower_gpt's branch for a model folder with a byte-level BPE and a prompt.

    Raises:
        SheetnetError: the folder's tokenizer is not one the sheet computes (loaders/bpe.py).
    """
    from pathlib import Path

    from .trace import Captured
    bpe = read_bpe(Path(folder))
    if bpe is None:
        raise SheetnetError(f"{folder} has no vocab.json + merges.txt or tokenizer.json")
    return Captured(model, capture_gpt_bpe(model, bpe, prompt, context), trace_gpt_bpe(bpe))


def capture_gpt_bpe(model, bpe: Bpe, prompt: str, context: int | None = None) -> ir.Graph:
    """Build the workbook's graph for ``model`` with a prompt cell that the Tokenizer sheet
    tokenizes with ``bpe``; its ids feed the body as typed ids would (gpt_tokens.py).

    Args:
        model: the GPT (a models.gpt.GPT) whose vocabulary ``bpe`` is.
        prompt: the text written into the prompt cell.
        context: positions T (default: gpt_body.check_context for the prompt's tokens).
    Returns:
        the graph, with ``meta["run"]`` declaring the prompt and the rule's inputs.
    Raises:
        SheetnetError: the tokenizer has ids the model lacks, or the prompt is past the sheet's
            limits (bytes, or tokens beyond the context).
    """
    cfg = model.config
    v = cfg.vocab_size
    if len(bpe.tokens) > v:
        raise SheetnetError(f"the tokenizer has {len(bpe.tokens):,} ids and the model {v:,}")
    size = len(prompt.encode("utf-8"))
    if size > MAX_BYTES:
        raise SheetnetError(f"the prompt is {size} bytes in UTF-8; the Tokenizer sheet holds "
                            f"{MAX_BYTES}")
    ids = bpe.encode(prompt)
    t = check_context(model, context, len(ids))
    if len(ids) > t:
        raise SheetnetError(BpeNote.TOKENS.format(len(ids), t))
    strings = byte_level_text(bpe.tokens + [""] * (v - len(bpe.tokens)))
    positions, said = context_meta(t, cfg.block_size)
    positions["capture_options"] = {**positions["capture_options"], "prompt": prompt}
    g = ir.Graph(meta={
        "architecture": "gpt", "guide_text": "gpt-bpe", **positions,
        "summary": (f"a GPT: {cfg.n_layer} blocks, {cfg.n_head} heads, {cfg.n_embd}-wide, "
                    f"{v:,} tokens of a byte-level BPE ({len(bpe.merges):,} merges), {said}"),
        "guide": {"context": t, "layers": cfg.n_layer, "last_sheet": f"B{cfg.n_layer} MLP",
                  "max_bytes": MAX_BYTES, "merges": len(bpe.merges)}})
    front = _bpe_inputs(g, bpe, strings, prompt, t)
    # the body's positions read their tokens live ("t3 "&the Prompt sheet's token): as gpt.py's
    pos = position_labels(ids + [PAD] * (t - len(ids)), len(ids), lambda j: token_label(strings[j]))
    build_body(g, model, front, pos)
    report = {"tokens": "tokens.id", "next_token": "next.text", "top_ids": "top.id",
              "top_probs": "top.prob", "top_tokens": "top.text", "note": "prompt.note",
              "step_texts": "steps.text"}
    g.meta["run"] = {
        "input": "prompt", **generation.run_spec("prompt", report),
        "integers": ["next_token", "top_ids"],
        # outputs and "tokens" keep the prompt's positions only; text in tokens.id is an error
        "positions": {"count": "prompt.n", "keys": ["tokens"]}, "errors": ["tokens.id"],
        "vocab": strings}   # run --tokens spells the ids with it (and checks the sheet's ids)
    return g


def _bpe_inputs(g: ir.Graph, bpe: Bpe, strings: list[str], prompt: str, t: int) -> Front:
    # Prompt: the prompt cell, token count, status, then the ids and tokens; the Vocab sheet;
    # the Tokenizer and BPE tables sheets between them
    v = len(strings)
    g.add("prompt", ir.Input(np.array([[prompt]], dtype=object)), (1, 1), "Prompt",
          title=f"Prompt: type text in the yellow cell (at most {MAX_BYTES} bytes of UTF-8); the "
                "Tokenizer sheet splits it into tokens", row_labels=["prompt"])
    labels = [token_label(s) for s in strings]
    g.add("vocab.text", ir.Const(np.array([[s] for s in strings], dtype=object)), (v, 1), "Vocab",
          title="Vocabulary: id (row), token string (its bytes as UTF-8), shown as",
          row_labels=[str(i) for i in range(v)], col_labels=["token"])
    g.add("vocab.label", ir.Const(np.array([[s] for s in labels], dtype=object)), (v, 1), "Vocab",
          title="", col_labels=["shown as"], beside=True)
    add_tables(g, bpe)
    add_tokenizer(g, bpe, "prompt", "vocab.label", t, PAD,
                  outputs={"n": "prompt.n", "note": "prompt.note", "ids": "tokens.id"})
    g.add("tokens.text", ir.TokenText("vocab.label", "tokens.id", "prompt.n"), (t, 1), "Prompt",
          order=1, title="", col_labels=["token"], beside=True)
    return Front("tokens.id", "tokens.text", "token", labels, "vocab.text", "vocab.label",
                 "text", "token", typed="tokens.text")


def trace_gpt_bpe(bpe: Bpe):
    """The trace function of a BPE workbook: the prompt cell (``leaves["prompt"]``) encoded by
    the tokenizer's own encoder (loaders/bpe.py), not the sheet's, so verify compares the sheet's
    ids with it; then as ``gpt_body.trace_ids``.

    Raises (from the function):
        SheetnetError: the prompt past the sheet's limits, with the sheet's message.
    """
    def trace(model, graph: ir.Graph, leaves: dict) -> dict:
        cell = np.asarray(leaves["prompt"], dtype=object).flat[0]
        text = "" if cell is None else str(cell).replace(LO_TAB, "\t")  # see ops.CodePoints
        t = graph.shape("tokens.id")[0]
        ids = bpe.encode(text)
        note = (BpeNote.EMPTY if not text else
                BpeNote.BYTES.format(MAX_BYTES) if len(text.encode("utf-8")) > MAX_BYTES else
                BpeNote.TOKENS.format(len(ids), t) if len(ids) > t else None)
        if note:
            raise SheetnetError(f"the prompt cannot be traced: {note}")
        return trace_ids(model, graph, leaves, ids + [PAD] * (t - len(ids)), len(ids))
    return trace
