"""Generation in a GPT workbook (issue 16): the positions after the prompt continue it.

Position i's input id is the prompt's where its own typed cell is filled (the front's ``typed``
node), else the id drawn from position i - 1's logits (ops.NextInput), so one recalculation writes
T - n new tokens.  No position's cells read the prompt's length n: each reads its own typed cell
and the rows above, so an edit of one prompt token recomputes the positions from there on (the
rows before it keep their values); n feeds only the displays (the text so far, the steps table).  Each position's draw follows the
rule of ops/sample.py, the text net's: the MINSTD stream from the Seed cell gives u_j, step j
keeps the ids whose logit is at least the k-th largest (ties kept), p = softmax(logits / T) over
them, and the id is the smallest whose cumulative p in id order reaches u_j; T = 0 is greedy.
A prompt of n tokens draws step 1 at position max(n, 1) - 1.

Sheets: the Prompt sheet gets the Temperature, Top-k and Seed cells, each position's input id and
token beside the prompt's, the prompt and its continuation as one text, and the table of steps;
a Sampling sheet (after Output) each position's draw: threshold, max, kept sum, p, cumulative p,
u, the id and its p.  Above PER_ID_MAX ids the p and cumulative p tables give way to the same rule
in two levels (blocks of 64 ids, then the id inside the block drawn: ops/sample_blocks.py).
``generate_ids`` is the same loop in PyTorch float64, for verify and run.

A tokenizer sheet plugs in before this: it hands the body a Front whose ``ids`` node is the
tokenized prompt (T, 1) and a ``prompt.n`` count; nothing here reads how they were made.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import SheetnetError
from ..ir import graph as ir
from ..ops.sample_blocks import DRAW_BLOCK

MINSTD_M = 2147483647   # the stream's modulus (ops/minstd.py MODULUS): seeds 1 .. m - 1
CANDIDATES = 3          # top candidates listed per step
TIE = 1e-12             # a u this close to a cumulative p is a tie: either id is the rule's
# Up to PER_ID_MAX ids, each position's draw writes (T, V) tables of p and cumulative p, which a
# reader can follow id by id: 2 T V cells, at most 262k at the default context of 64 (a few
# seconds of LibreOffice).  Above it they outgrow the model they sample (GPT-2's 50,257 ids at
# 16 positions: 1.6M cells), so the draw goes in two levels, blocks of DRAW_BLOCK ids then the id
# inside one (ops/sample_blocks.py).  Measured on a 1-layer, 16-wide GPT of 50,257 ids (cells):
# LibreOffice load 36.9 s -> 21.8 s, 3.5 GB -> 1.0 GB, the edit of a prompt token 11 s -> 6.7 s.
PER_ID_MAX = 2048
# the rule's inputs after the logits, as SampleProbs, BlockMass and IdProbs read them
RULE_HELPERS = ("sample.kth", "sample.max", "sample.sum", "sample.argmax", "temperature")


def sample_inputs(g: ir.Graph, sheet: str = "Prompt") -> None:
    """The rule's three cells with their validation: T >= 0, top-k a whole number >= 0, the seed
    a whole number 1 .. 2^31 - 2.  T = 0 (greedy), top-k 0 (all) and seed 1 by default."""
    g.add("temperature", ir.Input(np.array([[0.0]]), at_least=0.0), (1, 1), sheet,
          title="Temperature T (0 or more): 0 = greedy, the largest logit; 1 = the model's own "
                "probabilities; lower = sharper", row_labels=["temperature"])
    g.add("top_k", ir.Input(np.array([[0.0]]), at_least=0.0, whole=True), (1, 1), sheet,
          title="Top-k: draw among the ids with the k largest logits (ties kept); 0 = all",
          row_labels=["top-k"], style="integer")
    g.add("seed", ir.Input(np.array([[1.0]]), at_least=1.0, at_most=MINSTD_M - 1.0, whole=True),
          (1, 1), sheet, title="Seed (a whole number 1 .. 2147483646): u comes from its MINSTD "
                               "stream, state * 48271 mod 2147483647", row_labels=["seed"],
          style="integer")


def generated_ids(g: ir.Graph, front, pos):
    """The ids every position computes on: the prompt's, then the draws (node "gen.id"), and
    their strings and labels beside the prompt's table.  Returns the Front the body reads."""
    sample_inputs(g)
    t = len(pos)
    ids = g.add("gen.id", ir.NextInput(front.ids, front.typed, "sample.id"), (t, 1), "Prompt",
                order=1, title="", col_labels=["input id"], beside=True, ref="gen.id",
                style="integer")
    shown = ids
    if front.label_table:
        shown = g.add("gen.label", ir.Lookup(front.label_table, ids), (t, 1), "Prompt", order=1,
                      title="", col_labels=["input " + front.unit], beside=True)
    text = ids
    if front.exact:
        text = g.add("gen.text", ir.Lookup(front.exact, ids), (t, 1), "Prompt", order=1,
                     title="", col_labels=["its text"], beside=True)
    # the texts so far, row by row (short formulas at any context), beside the table; the
    # last row of each is the whole text, shown at the top of the sheet
    sep = "" if front.exact else " "  # ids alone: joined by spaces
    for name, n, what in (("text", None, "prompt and continuation"),
                          ("generated", "prompt.n", "the continuation")):
        g.add(f"gen.{name}_so_far", ir.JoinText(text, n, sep), (t, 1), "Prompt", order=1,
              title="", col_labels=[f"{what} so far"], beside=True)
        g.add(f"gen.{name}_last", ir.View(f"gen.{name}_so_far", (t - 1, t), (0, 1)), (1, 1),
              "Prompt", order=1)  # laid out with its source
    g.add("prompt.text", ir.Copy("gen.text_last"), (1, 1), "Prompt", style="output",
          title=f"the prompt and its continuation ({t} {front.unit}s, one recalculation)",
          row_labels=["text"])
    g.add("generated", ir.Copy("gen.generated_last"), (1, 1), "Prompt",
          title="the continuation alone", row_labels=["generated"])
    return replace(front, ids=ids, shown=shown)


def sample(g: ir.Graph, logits: str, front, pos, per_id_max: int | None = None,
           block: int | None = None) -> None:
    """The Sampling sheet: each position's draw from its logits row (T, V), by the rule.  Every
    per-position cell reads its own row (and the rows above), never the prompt's length.

    Args:
        per_id_max: the largest V drawn with (T, V) tables of p and cumulative p, which a
            reader can follow id by id; above it, the two-level draw (``_block_draw``).  None:
            PER_ID_MAX.
        block: ids to a block of the two-level draw; None: DRAW_BLOCK.
    """
    sheet, (t, v) = "Sampling", g.shape(logits)
    labels = front.labels
    g.add("sample.max", ir.RowMax(logits), (t, 1), sheet, row_labels=pos, col_labels=["max"],
          title="Each position's draw: the row's max, top-k threshold, argmax and kept sum")
    g.add("sample.kth", ir.KthLargest(logits, "top_k"), (t, 1), sheet, title="",
          col_labels=["threshold"], beside=True)
    g.add("sample.argmax", ir.RowArgmax(logits), (t, 1), sheet, title="",
          col_labels=["argmax"], beside=True, style="integer")
    g.add("sample.sum", ir.KeptSumExp(logits, "sample.kth", "sample.max", "temperature"),
          (t, 1), sheet, title="", col_labels=["kept sum exp"], beside=True)
    g.add("sample.draw", ir.DrawIndex(front.typed), (t, 1), sheet, title="",
          col_labels=["step - 1"], beside=True, style="integer")
    # the stream does not depend on the positions: state_1 .. state_T from the seed
    g.add("sample.stream", ir.MinstdStream("seed", t), (t, 1), sheet, title="",
          col_labels=["state_j"], beside=True, style="integer")
    g.add("sample.stream_u", ir.Uniform("sample.stream"), (t, 1), sheet, title="",
          col_labels=["u_j"], beside=True)
    g.add("sample.u", ir.Lookup("sample.stream_u", "sample.draw"), (t, 1), sheet, title="",
          col_labels=["u used"], beside=True, ref="sample.u")
    per_id = v <= (PER_ID_MAX if per_id_max is None else per_id_max)
    if per_id:
        probs = _per_id_draw(g, logits, labels, pos)
    else:
        _block_draw(g, logits, pos, DRAW_BLOCK if block is None else block)
    g.add("sample.top", ir.RowTopIds(logits, CANDIDATES), (t, CANDIDATES), sheet, title="",
          col_labels=[f"#{k + 1} id" for k in range(CANDIDATES)], beside=True, style="integer")
    top_p = [f"#{k + 1} p" for k in range(CANDIDATES)]
    if per_id:
        g.add("sample.top_p", ir.RowLargest(probs, CANDIDATES), (t, CANDIDATES), sheet, title="",
              col_labels=top_p, beside=True)
    else:  # the rule's p at the top ids: the same numbers, without a (T, V) table of p
        g.add("sample.top_p", ir.IdProbs(logits, "sample.top", *RULE_HELPERS), (t, CANDIDATES),
              sheet, title="", col_labels=top_p, beside=True, ref="sample.top_p")
    # the model's own p of the candidates (T = 1, every id): at T = 0 the rule's p is one-hot
    g.add("sample.sum1", ir.RowSumExp(logits, "sample.max"), (t, 1), sheet, title="",
          col_labels=["sum exp (T = 1)"], beside=True)
    g.add("sample.top_model_p", ir.LargestSoftmax(logits, "sample.max", "sample.sum1", CANDIDATES),
          (t, CANDIDATES), sheet, title="",
          col_labels=[f"#{k + 1} model p" for k in range(CANDIDATES)], beside=True,
          ref="sample.top_model_p")
    if front.label_table:
        g.add("sample.top_label", ir.TableAt(front.label_table, "sample.top"), (t, CANDIDATES),
              sheet, title="", col_labels=[f"#{k + 1} {front.unit}" for k in range(CANDIDATES)],
              beside=True)


def _per_id_draw(g: ir.Graph, logits: str, labels, pos) -> str:
    # (T, V) tables of p and cumulative p, the id and its p; returns the p table's node
    sheet, (t, v) = "Sampling", g.shape(logits)
    probs = g.add("sample.probs", ir.SampleProbs(logits, *RULE_HELPERS), (t, v), sheet,
                  ref="sample.probs", row_labels=pos, col_labels=labels,
                  title="p = softmax(logits / T) over the kept ids (T = 0: 1 at the argmax)")
    g.add("sample.cum", ir.CumulativeSum(probs, running=True), (t, v), sheet,
          row_labels=pos, col_labels=labels, title="cumulative p, summed in id order")
    g.add("sample.id", ir.PickId("sample.cum", "sample.u"), (t, 1), sheet, ref="sample.id",
          title="the draw: the smallest id whose cumulative p reaches u", row_labels=pos,
          col_labels=["id"], style="integer")
    g.add("sample.p", ir.ValueAt(probs, "sample.id"), (t, 1), sheet, title="",
          col_labels=["its p"], beside=True, ref="sample.p")
    return probs


def _block_draw(g: ir.Graph, logits: str, pos, size: int) -> None:
    # the same rule in two levels (ops/sample_blocks.py): the block whose cumulative p reaches
    # u, then the id inside it; ~nb + 3 B cells a position instead of 2 V
    sheet, (t, v) = "Sampling", g.shape(logits)
    nb = -(-v // size)
    spans = [f"ids {b * size}-{min(v, (b + 1) * size) - 1}" for b in range(nb)]
    inside = [f"+{j}" for j in range(size)]
    g.add("sample.block_p", ir.BlockMass(logits, *RULE_HELPERS, size=size),
          (t, nb), sheet, ref="sample.block_p", row_labels=pos, col_labels=spans,
          title=f"p summed over each block of {size} ids (T = 0: 1 for the argmax's block)")
    g.add("sample.block_cum", ir.CumulativeSum("sample.block_p", running=True), (t, nb), sheet,
          ref="sample.block_cum", row_labels=pos, col_labels=spans,
          title="cumulative p at each block's end, summed in id order")
    g.add("sample.block", ir.PickId("sample.block_cum", "sample.u", clamp=True), (t, 1), sheet,
          ref="sample.block", row_labels=pos, col_labels=["block"], style="integer",
          title="the block drawn: the first whose cumulative p reaches u, and the p before it")
    g.add("sample.block_start", ir.BlockStart("sample.block_cum", "sample.block"), (t, 1),
          sheet, ref="sample.block_start", title="", col_labels=["cum before it"], beside=True)
    g.add("sample.block_ids", ir.BlockIds("sample.block", size), (t, size), sheet,
          ref="sample.block_ids", row_labels=pos, col_labels=inside, style="integer",
          title=f"the block's ids: block * {size} + j")
    g.add("sample.block_probs", ir.IdProbs(logits, "sample.block_ids", *RULE_HELPERS),
          (t, size), sheet, ref="sample.block_probs", row_labels=pos, col_labels=inside,
          title=f"their p by the rule (0 past id {v - 1})")
    g.add("sample.block_run", ir.RunningFrom("sample.block_probs", "sample.block_start"),
          (t, size), sheet, ref="sample.block_run", row_labels=pos, col_labels=inside,
          title="cumulative p: the p before the block, plus its ids' p in id order")
    g.add("sample.in_block", ir.PickInBlock("sample.block_run", "sample.u", "sample.block", v,
                                            size), (t, 1), sheet, ref="sample.in_block",
          row_labels=pos, col_labels=["place in block"], style="integer",
          title="the draw: the smallest id whose cumulative p reaches u")
    g.add("sample.id", ir.ValueAt("sample.block_ids", "sample.in_block"), (t, 1), sheet,
          title="", col_labels=["id"], beside=True, ref="sample.id", style="integer")
    g.add("sample.p", ir.ValueAt("sample.block_probs", "sample.in_block"), (t, 1), sheet,
          title="", col_labels=["its p"], beside=True, ref="sample.p")


def next_probs(g: ir.Graph, logits: str, sheet: str, labels) -> str:
    """The Output sheet's (1, V) p at the prompt's last position (the row ``logits`` of the
    logits): the Sampling sheet's row when it has a p table, else its own SampleProbs row, from
    the Sampling sheet's helper cells picked at that position."""
    v = g.shape(logits)[1]
    kw = dict(ref="next.probs", row_labels=["p"], col_labels=labels,
              title="p there, by the sampling rule (Temperature, Top-k on the Prompt sheet)")
    if "sample.probs" in g.nodes:
        return g.add("next.probs", ir.PickRow("sample.probs", "prompt.n"), (1, v), sheet, **kw)
    helpers = []
    for helper, label in zip(RULE_HELPERS, ("threshold", "max", "kept sum exp", "argmax")):
        helpers.append(g.add(helper.replace("sample.", "next."), ir.PickRow(helper, "prompt.n"),
                             (1, 1), sheet, col_labels=[label], beside=bool(helpers),
                             title="" if helpers else "the draw's row cells there"))
    return g.add("next.probs", ir.SampleProbs(logits, *helpers, "temperature"), (1, v), sheet,
                 **kw)


def steps(g: ir.Graph, front, pos) -> None:
    """The Prompt sheet's table of steps: row j is step j + 1, drawn at position n - 1 + j."""
    sheet, t = "Prompt", len(pos)
    if t < 2:  # one position: nothing is drawn into the context
        return
    rows = [str(j + 1) for j in range(t - 1)]
    g.add("positions", ir.Const(np.arange(t, dtype=np.float64)[:, None]), (t, 1), "Sampling",
          title="", col_labels=["position"], beside=True, style="integer")
    top = "sample.top_label" if front.label_table else "sample.top"
    columns = [("positions", "position", "integer"), ("sample.id", "chosen id", "integer"),
               ("sample.p", "its p", ""), ("sample.u", "u", ""),
               (top, f"top {front.unit}s" if front.label_table else "top ids",
                "" if front.label_table else "integer"),
               ("sample.top_model_p", "model p", "")]
    if front.label_table:
        columns.insert(2, ("sample.label", front.unit, ""))
        g.add("sample.label", ir.Lookup(front.label_table, "sample.id"), (t, 1), "Sampling",
              title="", col_labels=[front.unit], beside=True)
    if front.exact:  # each step's exact string (run joins the first N of them)
        columns.append(("sample.text", "text", ""))
        g.add("sample.text", ir.Lookup(front.exact, "sample.id"), (t, 1), "Sampling",
              title="", col_labels=["its text"], beside=True)
    first = True
    for node, label, style in columns:
        width = g.shape(node)[1]
        cols = [label] if width == 1 else [f"{label} #{k + 1}" for k in range(width)]
        g.add(f"steps.{node.split('.')[-1]}", ir.ShiftRows(node, "prompt.n"), (t - 1, width),
              sheet, order=2, beside=not first, style=style, col_labels=cols,
              **({"title": "Steps: step j is drawn at position n - 2 + j; its token is the "
                           "next position's input", "row_labels": rows} if first else
                 {"title": ""}))
        first = False


def run_spec(front_input: str, report: dict) -> dict:
    """The run spec entries generation adds: the rule's cells as named inputs, and the report
    keys "text" (prompt and continuation), "generated", "generated_ids", "step_probs"."""
    report = {**report, "text": "prompt.text", "generated": "generated",
              "generated_ids": "steps.id", "step_probs": "steps.p", "step_u": "steps.u"}
    return {"inputs": {front_input: "prompt", "temperature": "temperature", "top_k": "top_k",
                       "seed": "seed"}, "report": report}


# --- PyTorch ------------------------------------------------------------------------------------
def rule_values(graph: ir.Graph, leaves: dict) -> tuple[float, int, int]:
    """(T, top-k, seed) from the workbook's cells, checked as their validation rules check them.

    Raises:
        SheetnetError: a value the cell's rule refuses.
    """
    out = []
    for name in ("temperature", "top_k", "seed"):
        value = float(np.asarray(leaves[name], dtype=np.float64).flat[0])
        bound = graph.nodes[name].op.bound
        if not bound.admits(value):
            raise SheetnetError(f"{name} must be {bound.short()} (got {value:g})")
        out.append(value)
    return out[0], int(out[1]), int(out[2])


def generate_ids(model, ids: list[int], n: int, temperature: float, top_k: int, seed: int,
                 sheet_ids=None) -> tuple[list[int], list[str]]:
    """The sheet's loop in PyTorch float64: positions n .. T-1 of ``ids`` (T of them) become the
    ids drawn by the rule (models.textnet.sample_pick, the text net's own step).

    Args:
        sheet_ids: the ids the workbook drew, or None.  Where u_j lies within TIE of a cumulative
            p, the rule's answer is either id; the sheet's is taken if it is one of them.
    Returns:
        the T ids, and a note per tie found.
    """
    import torch
    from ..models.textnet import minstd_states, sample_pick
    ids, t, notes = list(ids), len(ids), []
    states = minstd_states(seed, t)
    model = model.double()
    with torch.no_grad():
        for i in range(max(n, 1) - 1, t - 1):
            logits = model(torch.tensor([ids[:i + 1]]))[0, -1]
            u = states[i + 1 - max(n, 1)] / MINSTD_M
            pick, p = sample_pick(logits, temperature, top_k, u)
            ids[i + 1] = pick
            other = None if sheet_ids is None else sheet_ids[i + 1]
            whole = isinstance(other, (int, float)) and float(other).is_integer()
            if whole and int(other) != pick:  # (text there is an error the read reports)
                # the ids the rule gives for any u' within TIE of u
                cum, other = p.cumsum(0), int(other)
                low, high = (int((cum < u + d).sum()) for d in (-TIE, TIE))
                if low <= other <= high:
                    notes.append(f"tie at step {i + 2 - max(n, 1)}: u = {u!r} is within {TIE:g} "
                                 f"of a cumulative p; the sheet drew {other}, PyTorch {pick}")
                    ids[i + 1] = other
    return ids, notes


def trace_draws(model, logits, ids: list[int], n: int, rule,
                block: int | None = None) -> dict[str, np.ndarray]:
    """Each position's draw from its (T, V) float64 logits, as the Sampling sheet computes it:
    "sample.probs" (T, V) always, and with ``block`` (ids to a block of the two-level draw) its
    nodes too (``block_draws``).  "sample.id" is the rule's id (models.textnet.sample_pick)."""
    import torch
    from ..models.textnet import minstd_states, sample_pick
    temperature, top_k, seed = rule
    t = len(ids)
    states = minstd_states(seed, t)
    us = [states[max(i + 1 - max(n, 1), 0)] / MINSTD_M for i in range(t)]
    draws = [sample_pick(logits[i], temperature, top_k, us[i]) for i in range(t)]
    probs = torch.stack([p for _, p in draws]).numpy()
    picks = np.array([[float(i)] for i, _ in draws])
    own = torch.softmax(torch.as_tensor(logits, dtype=torch.float64), dim=-1)  # (T, V), T = 1
    out = {"gen.id": np.array(ids, dtype=np.float64)[:, None], "sample.probs": probs,
           "sample.top_model_p": own.topk(CANDIDATES, dim=-1).values.numpy(),
           "sample.id": picks, "sample.u": np.array(us)[:, None],
           "sample.p": probs[np.arange(t), picks[:, 0].astype(int)][:, None],
           # the rule's p of the top ids: p falls as the logit does, so p's largest
           "sample.top_p": -np.sort(-probs, axis=1)[:, :CANDIDATES]}
    if block:
        out.update(block_draws(probs, np.array(us), block))
    return out


def block_draws(probs: np.ndarray, us: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """The two-level draw's nodes from the rule's p (T, V) and each position's u (T,), in
    float64 as the sheet adds them: block masses, their cumulative sums, the block drawn and the
    p before it, the block's ids, p and running sum from that start, the place of the id."""
    t, v = probs.shape
    nb = -(-v // size)
    padded = np.zeros((t, nb * size))
    padded[:, :v] = probs
    mass = padded.reshape(t, nb, size).sum(axis=2)                        # (T, nb)
    cum = np.cumsum(mass, axis=1)                                          # (T, nb)
    block = np.minimum((cum < us[:, None]).sum(axis=1), nb - 1)            # (T,)
    start = np.where(block > 0, cum[np.arange(t), block - 1], 0.0)         # (T,)
    ids = block[:, None] * size + np.arange(size)                          # (T, B)
    p = padded[np.arange(t)[:, None], ids]                                 # (T, B): 0 past V
    run = np.cumsum(np.hstack([start[:, None], p]), axis=1)[:, 1:]         # (T, B): from start
    last = np.minimum(size - 1, v - 1 - block * size)                      # the block's last id
    place = np.minimum((run < us[:, None]).sum(axis=1), last)              # (T,)
    col = lambda a: a.astype(np.float64)[:, None]  # noqa: E731
    return {"sample.block_p": mass, "sample.block_cum": cum, "sample.block": col(block),
            "sample.block_start": col(start), "sample.block_ids": ids.astype(np.float64),
            "sample.block_probs": p, "sample.block_run": run, "sample.in_block": col(place)}
