"""The GPT's body, shared by its two front ends (gpt.py's prompt cell, gpt_tokens.py's id cells).

Sheets after the front end's: Embedding (wte, wpe, x0), per block "B<i> Attention" and
"B<i> MLP", Output (final layer norm, logits, the prompt's next token by the sampling rule, top
5) and Sampling (generation.py: each position's draw, fed to the next position's input).  The
body composes blocks.py's generic blocks with nanoGPT's names (c_attn, c_proj, c_fc, ln_1 ...):
node names are the trace names of ``GPT.forward`` (``h0.attn.q1``, ``ln_f.var`` ...), so each
node's ``ref`` is its own name.  A vocabulary wider than a sheet (GPT-2's 50,257) puts the
logits and the next-token rows on the Output sheet transposed (layout.py decides; nothing here).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SheetnetError
from ..ir import graph as ir
from . import blocks, generation, logit_lens
from .blocks import Activation, Weights

SPACE = "\u2423"  # '␣': how a space is shown in labels (as data), visible where " " is not
PAD = 0         # the front end's id past the prompt; generation replaces it with the draws
TOP_K = 5       # candidates listed on the Output sheet
# The Prompt sheet's chart of those candidates, up to this many weights. LibreOffice reads a
# chart's data while it loads the file, before any recalculation, which computes the whole model
# on its slower on-demand path: GPT-2 shape, 4 layers, the file read in 47 s without the chart
# and 107-113 s with it; 12 layers, load and recalculation 189 s against 349-369 s. The Output
# sheet's table of the candidates stays.
CHART_MAX_WEIGHTS = 10_000_000
# positions computed without --context: every position of a model whose block size is at most
# this, else this many (or as many as the prompt or token ids fill).  Cells grow with T and the
# scores with T^2: GPT-2 small at its 1024 ran past 15 minutes and 2.2 GB and never finished.
DEFAULT_CONTEXT = 64


def char_label(ch: str) -> str:
    """How a vocabulary character is labelled on the sheets: 'a', '␣' for a space, \\n."""
    return {" ": SPACE, "\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch, ch)


def position_labels(ids: list, n: int, shown) -> list[str]:
    """Each position's row label as the graph's readers see it (Plan.label_at): "t3 ␣" for the
    prompt's n positions, "t3" for those a draw fills.  The sheets' label cells are formulas
    (``live_labels``) that read each position's token from the Prompt sheet, drawn ones too, so
    they follow an edit; no label is computed by running the model at export.

    Args:
        ids: the T ids (the prompt's n, then pads; a text is an unknown character's message);
            ``shown``: id -> its label.
    """
    return [f"t{i} {shown(j)}" if i < n and not isinstance(j, str) else f"t{i}"
            for i, j in enumerate(ids)]


def live_labels(node: str, pos) -> ir.CellLabels:
    """The positions' labels as formulas: "t3 " joined to cell 3 of ``node``, the (T, 1) token
    of each position as the Prompt sheet shows it (gen.label: '␣' for a space, \\n; or gen.id),
    so every label follows an edit of the prompt, Temperature or Seed.  ``pos``: the labels
    at export (position_labels)."""
    return ir.CellLabels(node, [f"t{i} " for i in range(len(pos))], pos)


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
    typed: str               # (T, 1) node, "" (blank) at each position after the prompt: there
    #                          generation feeds in the draw (a per-position cell: edits stay local)


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


def build_body(g: ir.Graph, model, front: Front, pos, lens: bool | None = None) -> None:
    """Embedding, the blocks, the Output sheet and the Logit lens, after a front end's sheets.

    Args:
        g: the graph holding the front end's nodes (``front`` names them).
        model: the GPT (a models.gpt.GPT).
        pos: the position labels at export, "t0 T".."t<T-1> ␣" (or "t0"..); the sheets' label
            cells read each position's token live (``live_labels``).
        lens: the Logit lens sheet; None: while it stays small (logit_lens.wanted).
    """
    front = generation.generated_ids(g, front, pos)  # the prompt's ids, then the draws
    pos = live_labels(front.shown, pos)  # "t3 "&<the Prompt sheet's token at position 3>
    x = _embedding(g, model, front, pos)
    for i, block in enumerate(model.transformer.h):
        x = _attention(g, block, i, x, model.config, front, pos)
        x = _mlp(g, block, i, x, model.config, front, pos)
    head = _output(g, model, front, x, pos)
    generation.steps(g, front, pos)
    cfg = model.config
    if lens is not None:  # asked for: verify rebuilds the book with the same choice
        g.meta.setdefault("capture_options", {})["lens"] = lens
    if logit_lens.wanted(lens, cfg.vocab_size, cfg.n_layer, len(pos)):
        logit_lens.build(g, front, pos, head, model.transformer.ln_f.eps, cfg.n_layer)


def _features(n_embd: int) -> list[str]:
    return [f"e{j}" for j in range(n_embd)]


def _characters(g: ir.Graph, name: str, sheet: str, front: Front, pos) -> None:
    # the characters (tokens, ids) of the positions, beside each sheet's first block
    g.add(f"{name}.char", ir.Copy(front.shown), (len(pos), 1), sheet, title="",
          col_labels=[front.shown_as], beside=True)


def _embedding(g: ir.Graph, model, front: Front, pos) -> str:
    sheet, tr, t, ids = "Embedding", model.transformer, len(pos), front.ids
    n_embd = model.config.n_embd
    feats = _features(n_embd)
    head = " (the LM head reads it too)" if model.config.tied else ""
    blocks.param(g, "wte", tr.wte.weight, sheet, source="transformer.wte.weight",
                 title=f"wte: token embedding table, one row per vocabulary id{head}",
                 row_labels=[f"{i} {s}" if front.exact else s
                             for i, s in enumerate(front.labels)],
                 col_labels=feats)
    # all block_size rows, though the sheets read the first T: every weight stays in the book
    blocks.param(g, "wpe", tr.wpe.weight, sheet, source="transformer.wpe.weight",
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


def _block_input(g: ir.Graph, name: str, sheet: str, x: str, front: Front, pos, feats,
                 what: str) -> str:
    # the sheet's input, repeated with the positions' characters so the sheet reads on its own
    g.add(f"{name}.x", ir.Copy(x), g.shape(x), sheet, row_labels=pos, col_labels=feats,
          title=f"x: {what}")
    _characters(g, name, sheet, front, pos)
    return f"{name}.x"


def _layer_norm(g: ir.Graph, ln, name: str, source: str, sheet: str, x: str, pos, feats,
                label: str) -> str:
    return blocks.layer_norm(g, name, x, sheet, gain=ln.weight, bias=ln.bias, eps=ln.eps,
                             source=source, pos=pos, feats=feats, label=label)


def _attention(g: ir.Graph, block, i: int, x: str, cfg, front: Front, pos) -> str:
    # sheet "B<i+1> Attention": x, ln_1, c_attn's heads, c_proj, res1
    h, src, sheet = f"h{i}", f"transformer.h.{i}", f"B{i + 1} Attention"
    feats = _features(cfg.n_embd)
    x_in = _block_input(g, f"{h}.attn", sheet, x, front, pos, feats,
                        "the residual stream entering this block")
    ln = _layer_norm(g, block.ln_1, f"{h}.ln_1", f"{src}.ln_1", sheet, x_in, pos, feats,
                     f"Block {i + 1} - LayerNorm 1 (ln_1)")
    name = f"{h}.attn"
    heads = blocks.fused_qkv(g, name, Weights.of(block.attn.c_attn, f"{name}.c_attn",
                                                 f"{src}.attn.c_attn", "c_attn"),
                             cfg.n_head, sheet, feats)
    proj = Weights.of(block.attn.c_proj, f"{name}.c_proj", f"{src}.attn.c_proj", "c_proj")
    return blocks.attention(g, name, ln, x_in, sheet, n_head=cfg.n_head, heads=heads, proj=proj,
                            residual=f"{h}.res1", pos=pos, feats=feats, reads="ln",
                            side_by_side=True)


def _mlp(g: ir.Graph, block, i: int, x: str, cfg, front: Front, pos) -> str:
    # sheet "B<i+1> MLP": x, ln_2, c_fc, GELU, c_proj, res2
    h, src, sheet = f"h{i}", f"transformer.h.{i}", f"B{i + 1} MLP"
    feats = _features(cfg.n_embd)
    x_in = _block_input(g, f"{h}.mlp", sheet, x, front, pos, feats,
                        "res1, from the attention sheet")
    ln = _layer_norm(g, block.ln_2, f"{h}.ln_2", f"{src}.ln_2", sheet, x_in, pos, feats,
                     f"Block {i + 1} - LayerNorm 2 (ln_2)")
    name, form = f"{h}.mlp", cfg.gelu
    gelu = Activation("gelu", "GELU", lambda z: ir.Gelu(z, form),
                      f"GELU(fc) ({'exact, with erf' if form == 'erf' else 'tanh approximation'})")
    return blocks.mlp(g, name, ln, x_in, sheet,
                      fc=Weights.of(block.mlp.c_fc, f"{name}.c_fc", f"{src}.mlp.c_fc", "c_fc"),
                      act=gelu, residual=f"{h}.res2", pos=pos, feats=feats, reads="ln",
                      proj=Weights.of(block.mlp.c_proj, f"{name}.c_proj", f"{src}.mlp.c_proj",
                                      "c_proj"))


def _output(g: ir.Graph, model, front: Front, x: str, pos) -> str:
    # returns the LM head's node (the Logit lens reads it)
    sheet, c, v, t = "Output", model.config.n_embd, len(front.labels), len(pos)
    feats, labels, unit = _features(c), front.labels, front.unit
    x_in = _block_input(g, "ln_f", sheet, x, front, pos, feats,
                        "the residual stream after the last block")
    ln = _layer_norm(g, model.transformer.ln_f, "ln_f", "transformer.ln_f", sheet, x_in, pos,
                     feats, "Final LayerNorm (ln_f)")
    if model.config.tied:
        head = "wte"  # tied: the LM head is the token embedding table, read from its sheet
    else:
        head = blocks.param(g, "lm_head.W", model.lm_head.weight, sheet, source="lm_head.weight",
                            title="LM head weights, one row per vocabulary id", row_labels=labels,
                            col_labels=feats)
    logits = g.add("logits", ir.Linear(ln, head), (t, v), sheet, ref="logits", role="output",
                   style="formula",
                   title=f"logits = ln_f · {'wte' if head == 'wte' else 'lm_head'}^T, one column "
                         f"per {unit}", row_labels=pos, col_labels=labels)
    # heatmaps on the logits (weights' blue-white-red) and on p (attention's white-red)
    g.meta.setdefault("heat", {}).update({"logits": "weights", "next.logits": "weights",
                                          "next.probs": "attention"})
    generation.sample(g, logits, front, pos)  # the Sampling sheet: each position's draw
    # the answer first (order=-1): the prompt's last position, its draw and the top candidates
    g.add("next.logits", ir.PickRow(logits, "prompt.n"), (1, v), sheet, ref="next.logits",
          title="logits at the prompt's last position", row_labels=["logits"], col_labels=labels)
    generation.next_probs(g, "next.logits", sheet, labels)  # p there, by the sampling rule
    g.add("next.id", ir.PickRow("sample.id", "prompt.n"), (1, 1), sheet, ref="next.id", order=-1,
          title=f"next {unit}: drawn by the sampling rule (Temperature 0: the largest logit)",
          row_labels=["id"], style="integer")
    answer = "next.id"
    if front.exact:
        answer = g.add(f"next.{front.key}", ir.Lookup(front.exact, "next.id"), (1, 1), sheet,
                       order=-1, title="", col_labels=[unit], beside=True, style="output")
    k = min(TOP_K, v)
    blocks.top_k(g, "next.probs", k, sheet, labels=front.label_table, key=front.key, unit=unit,
                 order=-1)
    g.add("prompt.next", ir.Copy(answer), (1, 1), "Prompt", style="output",
          title=f"the model's next {unit} (see Output)", row_labels=["next"])
    # on the Prompt sheet, where the reader types: the top candidates at a glance
    label = f"top.{front.key}" if front.label_table else "top.id"
    if sum(p.numel() for p in model.parameters()) <= CHART_MAX_WEIGHTS:
        g.meta.setdefault("charts", []).append(
            {"sheet": "Prompt", "title": f"The {k} most likely next {unit}s", "kind": "bar",
             "x": label, "series": ["top.prob"], "names": ["probability"], "x_title": unit})
    return head


def trace_ids(model, graph: ir.Graph, leaves: dict, ids: list[int], n: int) -> dict:
    """PyTorch float64 intermediates for the T ``ids`` the sheet shows, the prompt being the first
    n: the positions after it are generated by the sampling rule (generation.generate_ids) from
    the workbook's Temperature, Top-k and Seed cells, then ``GPT.forward`` records every
    intermediate of the T ids.  Added: the ids, each position's draw, and at the prompt's last
    position (the first when n is 0, as the sheet reads it) the logits, p, the id and the top
    probabilities.  ``leaves["sheet:gen.id"]``, when given, are the ids the workbook drew:
    where a u lies within generation.TIE of a cumulative p, the sheet's id is taken and
    ``trace["notes"]`` says so.
    """
    import torch
    rule = generation.rule_values(graph, leaves)
    sheet_ids = leaves.get("sheet:gen.id")
    if sheet_ids is not None:
        sheet_ids = [v for v in np.asarray(sheet_ids, dtype=object).flat]
    model = model.double()
    ids, notes = generation.generate_ids(model, ids, n, *rule, sheet_ids=sheet_ids)
    trace: dict = {}
    with torch.no_grad():
        logits = model(torch.tensor([ids]), trace=trace)[0]  # (T, V)
    block = graph.nodes["sample.block_p"].op.size if "sample.block_p" in graph.nodes else None
    trace.update(generation.trace_draws(model, logits, ids, n, rule, block))
    last = max(n, 1) - 1
    k = graph.shape("top.prob")[0]
    probs = trace["sample.probs"][last]
    trace.update({"tokens.id": np.array(ids[:n] + [PAD] * (len(ids) - n), dtype=np.float64)[:, None],
                  "next.logits": logits[last][None].numpy(), "next.probs": probs[None].copy(),
                  "next.id": trace["sample.id"][last:last + 1].copy(),
                  "top.prob": -np.sort(-probs)[:k, None]})
    if "lens.prob" in graph.nodes:
        trace.update(logit_lens.trace(model, trace, model.config.n_layer))
    trace["notes"] = notes
    return trace
