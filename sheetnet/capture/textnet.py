"""The tiny text net (the seed's tiny_text_net) as a workbook: a word, its id, its embedding, the
Linear/ReLU layers, the logits, a softmax with a temperature and the next word.

Sheets, in reading order:
    Input      the word (a drop-down over the vocabulary), its id, its embedding, the temperature,
               the next word and the probabilities
    Vocab      id | word | embedding table (the weights the lookup reads)
    Layer k    as for any MLP (capture/mlp.py's lower_sequential): weights, input, z, ReLU, on/off
    Output     the output layer's weights, the logits, logits / T, max, sum, probabilities, argmax
    All words  every vocabulary word through the same weight cells at once (V rows), so verify
               checks every word, not only the one in the Input cell
    Generate   the greedy chain unrolled: step k's predicted word is step k+1's word, looked up
               again

Every pass reads the one set of weight cells (no copies), so an edited weight moves them all.
The PyTorch trace's keys (the nodes' ``ref``): ``word.id``, ``embedding``, ``layer1``/``relu1``
(layer 1's z and a), ``logits``, ``probs``, ``next.id``, ``next.word``, prefixed ``all.`` for the
All words pass and ``gen<k>.`` for step k, and ``chain``.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from ..errors import SheetnetError
from ..ir import graph as ir
from ..ir.reference import cell_text
from . import blocks
from .trace import Captured
from .trace import hooked_run
from .mlp import lower_sequential

GENERATE_STEPS = 8  # words the Generate sheet predicts after the start word


def lower_textnet(payload: dict, options=None) -> Captured:
    """The registered lowering: checkpoint -> Captured; the start word is --prompt or the word
    of one --tokens id."""
    from ..models.textnet import TextNet
    model = TextNet.from_checkpoint(payload).double()
    vocab = list(payload.get("metadata", {}).get("vocab") or [])
    word, tokens = getattr(options, "prompt", None), getattr(options, "tokens", None)
    if tokens is not None:
        if word is not None or len(tokens) != 1 or not 0 <= tokens[0] < len(vocab):
            raise SheetnetError(f"the text net takes one word: give --prompt or one token id "
                                f"between 0 and {len(vocab) - 1}")
        word = vocab[tokens[0]]
    return Captured(model, capture_textnet(model, vocab, word), trace_textnet)


def as_sequential(model) -> tuple[nn.Sequential, dict[str, str]]:
    """The TextNet's layers as an nn.Sequential of its own modules (weights shared), plus the
    checkpoint name of each Linear: forward is embed, then exactly this."""
    parts: OrderedDict[str, nn.Module] = OrderedDict()
    names = {}
    for i, layer in enumerate(model.layers, start=1):
        parts[f"layer{i}"], parts[f"relu{i}"] = layer, nn.ReLU()
        names[f"layer{i}"] = f"layers.{i - 1}"
    parts["logits"], names["logits"] = model.out, "out"
    return nn.Sequential(parts), names


def capture_textnet(model, vocab: list[str], word: str | None = None,
                    steps: int = GENERATE_STEPS) -> ir.Graph:
    """Build the workbook's graph.

    Args:
        model: a models.textnet.TextNet.
        vocab: its words in id order (checkpoint metadata "vocab").
        word: the word written into the Input cell (default: the first word).
        steps: words the Generate sheet predicts.
    Returns:
        the graph; ``meta["run"]`` declares the word and temperature inputs and the report.
    """
    _check_vocab(vocab, model.vocab_size)
    word = vocab[0] if word is None else word
    if word not in vocab:
        raise SheetnetError(f"'{word}' is not in the vocabulary ({len(vocab)} words: "
                            + ", ".join(vocab[:10]) + (", ..." if len(vocab) > 10 else "") + ")")
    seq, names = as_sequential(model)
    hidden = list(model.hidden)
    g = ir.Graph(meta={
        "architecture": "textnet", "vocab": list(vocab), "steps": steps,
        "summary": (f"the tiny text net: {len(vocab)} words, a {model.embed_dim}-wide embedding, "
                    f"hidden layers {hidden} with ReLU, one logit per word"),
        "guide": {"words": len(vocab), "steps": steps, "layers": len(hidden)},
        "run": {"input": "word", "inputs": {"prompt": "word", "temperature": "temperature"},
                "report": {"probs": "probs", "next_token": "next.word", "chain": "chain"},
                "errors": ["word.id"]},
        "lists": [{"cell": "word", "source": "vocab.word"}]})
    feats = [f"e{j + 1}" for j in range(model.embed_dim)]
    g.add("word", ir.Input(np.array([[word]], dtype=object)), (1, 1), "Input",
          title="Word: pick one from the list in the yellow cell", row_labels=["word"])
    _vocab(g, model, vocab, feats)
    _main(g, seq, names, vocab, feats)
    _all_words(g, seq, vocab, feats)
    _generate(g, seq, vocab, feats, steps)
    return g


def _check_vocab(vocab: list[str], size: int) -> None:
    if len(vocab) != size or not all(isinstance(w, str) and w for w in vocab):
        raise SheetnetError(f"the textnet vocabulary must list {size} non-empty words "
                            "(checkpoint metadata 'vocab')")
    if len(set(vocab)) != len(vocab):
        twice = next(w for w in vocab if vocab.count(w) > 1)
        raise SheetnetError(f"the textnet vocabulary lists '{twice}' twice")


def _vocab(g: ir.Graph, model, vocab: list[str], feats: list[str]) -> None:
    v = len(vocab)
    g.add("vocab.id", ir.Const(np.arange(v, dtype=np.float64)[:, None]), (v, 1), "Vocab",
          title="Vocabulary", row_labels=[""] * v, col_labels=["id"], style="integer")
    g.add("vocab.word", ir.Const(np.array([[w] for w in vocab], dtype=object)), (v, 1), "Vocab",
          title="", col_labels=["word"], beside=True)
    g.add("embed.W", ir.Param(ir.as_matrix(model.embed.weight), source="embed.weight"),
          (v, len(feats)), "Vocab", title="embedding table (weights): one row per word, read by id",
          col_labels=feats, beside=True)


def _lookup(g: ir.Graph, word: str, prefix: str, sheet: str, feats: list[str], **kw) -> str:
    # word (N, 1) -> id (N, 1), exactly -> embedding (N, E) = row id of the Vocab table
    n = g.shape(word)[0]
    ids = g.add(f"{prefix}word.id", ir.WordId(word, "vocab.word", "vocab.id"), (n, 1), sheet,
                title="", col_labels=["id"], beside=True, ref=f"{prefix}word.id", style="integer")
    return g.add(f"{prefix}embedding", ir.Lookup("embed.W", ids), (n, len(feats)), sheet,
                 col_labels=feats, ref=f"{prefix}embedding", **kw)


def _softmax(g: ir.Graph, logits: str, prefix: str, sheet: str, vocab: list[str], **kw) -> str:
    # p = softmax(logits / T), as torch's softmax(logits / T); kw: row labels of both rows
    return blocks.temperature_softmax(
        g, logits, prefix, sheet, "temperature",
        scaled={"title": "logits / T", "col_labels": vocab, **kw},
        probs={"title": "probabilities p = exp(logits/T - max) / sum exp", "col_labels": vocab,
               **kw})


def _next_word(g: ir.Graph, logits: str, prefix: str, sheet: str, **kw) -> str:
    # argmax of the logits (the first on ties, as torch.argmax), then that id's word
    n = g.shape(logits)[0]
    nid = g.add(f"{prefix}next.id", ir.RowArgmax(logits), (n, 1), sheet, ref=f"{prefix}next.id",
                col_labels=["next id"], style="integer", **kw)
    return g.add(f"{prefix}next.word", ir.Lookup("vocab.word", nid), (n, 1), sheet, title="",
                 col_labels=["next word"], beside=True, ref=f"{prefix}next.word")


def _relabel_logits(g: ir.Graph, logits: str, vocab: list[str], title: str) -> None:
    g.nodes[logits].col_labels, g.nodes[logits].title = list(vocab), title


def _main(g: ir.Graph, seq, names, vocab: list[str], feats: list[str]) -> None:
    """Input sheet, one sheet per layer, Output sheet; the answer copied back to Input."""
    emb = _lookup(g, "word", "", "Input", feats, row_labels=["embedding"],
                  title="its embedding: row id of the table on the Vocab sheet")
    g.add("temperature", ir.Input(np.array([[1.0]]), above=0.0), (1, 1), "Input",
          title="Temperature T (> 0): 1 = the model's own probabilities, lower = sharper",
          row_labels=["T"])
    logits = lower_sequential(g, seq, emb, in_labels=feats, param_names=names)
    g.nodes[logits].role = "output"
    g.nodes["out.W"].row_labels = list(vocab)
    _relabel_logits(g, logits, vocab, "logits: z = x · W^T + b, one per word")
    _softmax(g, logits, "", "Output", vocab, row_labels=["p"])
    _next_word(g, logits, "", "Output", title="the next word: the largest logit",
               row_labels=["argmax"])
    g.add("input.next", ir.Copy("next.word"), (1, 1), "Input", row_labels=["next word"],
          style="output",          title="the next word (the largest logit, from the Output sheet)")
    g.add("input.probs", ir.Copy("probs"), (1, len(vocab)), "Input", row_labels=["p"],
          title="probabilities of each next word at temperature T", col_labels=list(vocab))
    g.meta.setdefault("charts", []).append(
        {"sheet": "Input", "title": "Next-word probabilities", "kind": "bar", "x": "vocab.word",
         "series": ["input.probs"], "names": ["p"], "x_title": "next word", "below": "input.probs"})


def _all_words(g: ir.Graph, seq, vocab: list[str], feats: list[str]) -> None:
    """Every word as one row of a batch through the same weight cells: word | id | next word |
    embedding | layers | logits | probabilities."""
    sheet, v = "All words", len(vocab)
    g.sheet_flow[sheet] = "right"
    word = g.add("all.word", ir.Copy("vocab.word"), (v, 1), sheet, title="word",
                 col_labels=["word"], ref="all.word")
    first = len(g.nodes)
    emb = _lookup(g, word, "all.", sheet, feats, title="embedding")
    logits = lower_sequential(g, seq, emb, prefix="all.", sheet=sheet, in_labels=feats,
                              with_params=False)
    _relabel_logits(g, logits, vocab, "logits")
    _softmax(g, logits, "all.", sheet, vocab)
    _next_word(g, logits, "all.", sheet, title="next")
    for name in list(g.nodes)[first:]:  # the answer beside the word, the details after it
        g.nodes[name].order = 1 if name in ("all.word.id", "all.next.id", "all.next.word") else 2


def _generate(g: ir.Graph, seq, vocab: list[str], feats: list[str], steps: int) -> None:
    """One band of cells per step: word | id | embedding | layers | logits | next id | next word;
    the next step's word is this step's next word, looked up again by its text."""
    sheet, word, words = "Generate", "word", []
    for k in range(1, steps + 1):
        prefix = f"gen{k}."
        word = g.add(f"{prefix}word", ir.Copy(word), (1, 1), sheet, ref=f"{prefix}word",
                     title="step 1: the Input sheet's word" if k == 1 else
                     f"step {k}: the word step {k - 1} predicted", row_labels=[f"step {k}"],
                     col_labels=["word"])
        first = len(g.nodes)
        emb = _lookup(g, word, prefix, sheet, feats, title="embedding")
        logits = lower_sequential(g, seq, emb, prefix=prefix, sheet=sheet, in_labels=feats,
                                  with_params=False, show_steps=False)
        _relabel_logits(g, logits, vocab, "logits")
        nxt = _next_word(g, logits, prefix, sheet, title="")
        for name in list(g.nodes)[first:]:  # the step's cells in one band, left to right
            g.nodes[name].beside = True
        words.append(word)
        word = nxt
    g.add("chain", ir.Concat(tuple(words + [word])), (1, steps + 1), sheet, ref="chain", order=-1,
          title="The greedy chain: each step's next word is the next step's word",
          row_labels=["chain"], col_labels=["start"] + [str(k) for k in range(1, steps + 1)])


# --- PyTorch ------------------------------------------------------------------------------------
def trace_textnet(model, graph: ir.Graph, leaves: dict) -> dict[str, np.ndarray]:
    """PyTorch float64 values of every node with a ``ref``, for the word and temperature in the
    workbook (``leaves``): the word's pass, all words, and the greedy chain step by step."""
    vocab = graph.meta["vocab"]
    index = {w: i for i, w in enumerate(vocab)}
    start = np.asarray(leaves["word"], dtype=object).flat[0]  # text, or a number someone typed
    word = cell_text(start)
    if word not in index:
        raise SheetnetError(f"'{word}' is not in the vocabulary: cannot trace it")
    temperature = float(np.asarray(leaves["temperature"], dtype=np.float64).flat[0])
    seq, _ = as_sequential(model.double())
    out = _trace_pass(model, seq, vocab, [index[word]], "", temperature)
    out.update(_trace_pass(model, seq, vocab, list(range(len(vocab))), "all.", temperature))
    out["all.word"] = np.array([[w] for w in vocab], dtype=object)
    chain = [word]
    for k in range(1, graph.meta["steps"] + 1):
        step = _trace_pass(model, seq, vocab, [index[chain[-1]]], f"gen{k}.")
        out.update(step)
        out[f"gen{k}.word"] = np.array([[chain[-1]]], dtype=object)
        chain.append(step[f"gen{k}.next.word"][0, 0])
    # step 1's word is a copy of the Input cell, as it is: the number 1 stays a number there
    chain[0] = start
    if "gen1.word" in out:
        out["gen1.word"][0, 0] = start
    out["chain"] = np.array([chain], dtype=object)
    return out


def _trace_pass(model, seq, vocab, ids: list[int], prefix: str,
                temperature: float | None = None) -> dict[str, np.ndarray]:
    # TextNet.forward is embed then seq; the hooks record layer<i> (z), relu<i> (a), logits
    with torch.no_grad():
        emb = model.embed(torch.tensor(ids))  # (N, E)
    out = hooked_run(seq, emb.numpy(), prefix=prefix)
    logits = torch.as_tensor(out[f"{prefix}logits"])  # (N, V)
    best = logits.argmax(dim=1)
    out.update({f"{prefix}word.id": np.array(ids, dtype=np.float64)[:, None],
                f"{prefix}embedding": emb.numpy().copy(),
                f"{prefix}next.id": best.double()[:, None].numpy(),
                f"{prefix}next.word": np.array([[vocab[int(i)]] for i in best], dtype=object)})
    if temperature is not None:
        out[f"{prefix}probs"] = torch.softmax(logits / temperature, dim=-1).numpy()
    return out
