"""The Logit lens sheet (issue 19): every block's residual stream read as if it were the last.

The stream after the embedding (x0) and after each block (h<i>.res2) goes through the model's own
final LayerNorm (ln_f's gain and bias on the Output sheet) and LM head (wte when tied): its
logits say which token the model "has in mind" at that depth.  The sheet opens with two tables,
rows = positions, columns = layers: the top token, and its probability softmax(logits)[top] =
1 / sum exp(logit - max), with a heatmap.  Below them, each layer's working: mean | variance,
the normalised stream, ln_f's output and the logits (T, V).  The last layer's lens is the
model's own logits, so its column agrees with the Output sheet.

Cost: each layer's logits are T x V cells and T x V x C multiply-adds, so for GPT-2's 50,257 ids
the lens would dwarf the book.  ``wanted`` turns it on by default only under LENS_BUDGET cells;
export's --lens / --no-lens decide otherwise.  ``trace`` is the same computation in PyTorch
float64 from the model's own intermediates, for verify.
"""
from __future__ import annotations

import numpy as np

from ..ir import graph as ir

SHEET = "Logit lens"
# the lens is on by default while its logits, V * (layers + 1) * T cells, stay under this:
# the example GPT (64 characters, 2 blocks, 32 positions) needs 6,144; GPT-2 small at 64
# positions 41.8 million
LENS_BUDGET = 200_000


def cells(vocab: int, layers: int, t: int) -> int:
    """The lens logits' cells: one (T, V) block per stream (the embedding and each block)."""
    return vocab * (layers + 1) * t


def wanted(asked: bool | None, vocab: int, layers: int, t: int) -> bool:
    """Whether the workbook gets a Logit lens sheet: as asked, else while under LENS_BUDGET."""
    return asked if asked is not None else cells(vocab, layers, t) <= LENS_BUDGET


def layer_names(layers: int) -> list[str]:
    """The lens tables' column labels: the embedding, then "block 1" ..."""
    return ["embedding"] + [f"block {i + 1}" for i in range(layers)]


def streams(layers: int) -> list[str]:
    """The residual stream nodes the lens reads (also PyTorch's trace names)."""
    return ["x0"] + [f"h{i}.res2" for i in range(layers)]


def build(g: ir.Graph, front, pos, head: str, eps: float, layers: int) -> None:
    """The Logit lens sheet, after the Output sheet (it reads ln_f's gain and bias and ``head``).

    Args:
        front: gpt_body.Front (``shown``: each position's character; ``label_table``: each id's).
        pos: the row labels of the positions.
        head: the (V, C) LM head node ("wte" when tied).
        eps: ln_f's epsilon; layers: the model's blocks.
    """
    t, v = len(pos), g.shape(head)[0]
    names, cols = streams(layers), layer_names(layers)
    shift = "ln_f.bias" if "ln_f.bias" in g.nodes else None
    g.add("lens.one", ir.Const(np.ones((1, 1))), (1, 1), SHEET, row_labels=["1"],
          title="exp(top logit - max) = 1: the top probability is 1 / sum exp")
    ids, probs, tokens = [], [], []
    for k, (stream, col) in enumerate(zip(names, cols)):
        p = f"lens{k}"
        g.add(f"{p}.mean", ir.RowMean(stream), (t, 1), SHEET, row_labels=pos, col_labels=["mean"],
              title=f"{col}: the residual stream through ln_f and the LM head")
        g.add(f"{p}.var", ir.RowVar(stream, f"{p}.mean"), (t, 1), SHEET, title="",
              col_labels=["variance"], beside=True)
        g.add(f"{p}.norm", ir.Normalize(stream, f"{p}.mean", f"{p}.var", eps), g.shape(stream),
              SHEET, title="", beside=True, col_labels=[f"norm e{j}" for j in
                                                        range(g.shape(stream)[1])])
        ln = g.add(f"{p}.ln", ir.ScaleShift(f"{p}.norm", "ln_f.gain", shift), g.shape(stream),
                   SHEET, title="", beside=True, ref=f"{p}.ln",
                   col_labels=[f"ln_f e{j}" for j in range(g.shape(stream)[1])])
        logits = g.add(f"{p}.logits", ir.Linear(ln, head), (t, v), SHEET, ref=f"{p}.logits",
                       title=f"{col}: logits = ln_f(stream) · {head}^T", row_labels=pos,
                       col_labels=front.labels)
        g.add(f"{p}.max", ir.RowMax(logits), (t, 1), SHEET, title="", col_labels=["max"],
              beside=True)
        g.add(f"{p}.sum", ir.RowSumExp(logits, f"{p}.max"), (t, 1), SHEET, title="",
              col_labels=["sum exp"], beside=True)
        ids.append(g.add(f"{p}.id", ir.RowArgmax(logits), (t, 1), SHEET, title="",
                         col_labels=["top id"], beside=True, style="integer", ref=f"{p}.id"))
        probs.append(g.add(f"{p}.p", ir.Over("lens.one", f"{p}.sum"), (t, 1), SHEET, title="",
                           col_labels=["top p"], beside=True, ref=f"{p}.p"))
        if front.label_table:
            tokens.append(g.add(f"{p}.token", ir.Lookup(front.label_table, ids[-1]), (t, 1),
                                SHEET, title="", col_labels=[f"top {front.unit}"], beside=True))
    # the two tables first on the sheet (order=-1), each with the positions' own tokens beside
    g.add("lens.char", ir.Copy(front.shown), (t, 1), SHEET, order=-1, row_labels=pos,
          col_labels=[f"input {front.unit}"],
          title=f"Logit lens: the top {front.unit} at each position (row) after each layer "
                "(column), reading that layer's stream through ln_f and the LM head")
    g.add("lens.top", ir.Concat(tuple(tokens or ids)), (t, len(cols)), SHEET, order=-1,
          title="", col_labels=cols, beside=True, ref=None if tokens else "lens.id",
          style="" if tokens else "integer")
    # seen on the rendered sheet: with a tied head the embedding column reads back each
    # position's own input at p near 1 (wte's row against itself), which the title says
    echo = "; with the head tied to wte the embedding column mostly reads back the input" \
        if head == "wte" else ""
    g.add("lens.char_p", ir.Copy(front.shown), (t, 1), SHEET, order=-1, row_labels=pos,
          col_labels=[f"input {front.unit}"],
          title=f"its probability, softmax(lens logits) at the top id (the heatmap){echo}")
    g.add("lens.prob", ir.Concat(tuple(probs)), (t, len(cols)), SHEET, order=-1, title="",
          col_labels=cols, beside=True, ref="lens.prob")
    g.meta.setdefault("heat", {})["lens.prob"] = "attention"


def trace(model, trace: dict, layers: int) -> dict:
    """The lens in PyTorch float64 from ``trace``'s streams (``GPT.forward``'s intermediates):
    each layer's ln_f output and logits, the top ids and their probabilities.

    Returns:
        {"lens<k>.ln", "lens<k>.logits", "lens<k>.id", "lens<k>.p" (T, 1), "lens.id" and
        "lens.prob" (T, layers + 1)}.
    """
    import torch
    out, ids, probs = {}, [], []
    with torch.no_grad():
        for k, stream in enumerate(streams(layers)):
            ln = model.transformer.ln_f(torch.tensor(trace[stream], dtype=torch.float64))
            logits = model.lm_head(ln)                              # (T, V)
            out[f"lens{k}.ln"], out[f"lens{k}.logits"] = ln.numpy(), logits.numpy()
            p = torch.softmax(logits, dim=-1)
            top = p.max(dim=-1)
            ids.append(top.indices.double().numpy())
            probs.append(top.values.numpy())
            out[f"lens{k}.id"], out[f"lens{k}.p"] = ids[-1][:, None], probs[-1][:, None]
    out["lens.id"], out["lens.prob"] = np.stack(ids, 1), np.stack(probs, 1)
    return out
