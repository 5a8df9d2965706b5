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
    Generate   the chain unrolled, sampled by the rule of ops/sample.py (its own Temperature,
               Top-k and Seed cells; T = 0, the default, is greedy): step k's picked word is
               step k+1's word, looked up again

Every pass reads the one set of weight cells (no copies), so an edited weight moves them all.
The PyTorch trace's keys (the nodes' ``ref``): ``word.id``, ``embedding``, ``layer1``/``relu1``
(layer 1's z and a), ``logits``, ``probs``, ``next.id``, ``next.word``, prefixed ``all.`` for the
All words pass and ``gen<k>.`` for step k (with ``state``, ``u``, ``next.p``), and ``chain``.
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
    _walk(g, len(hidden), vocab, feats)
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


EXP_ROWS_MAX = 64   # the Walk shows exp(logit) as its own lines up to this many words
WEIGHTS_SHOWN_MAX = 16  # ... and each layer's W and b beside its z up to this many inputs


def _walk(g: ir.Graph, layers: int, vocab: list[str], feats: list[str]) -> None:
    """The seed's printout for the Input word, top to bottom, each line a live cell: embedding
    -> LAYER k z and a -> OUTPUT logits -> exp(logit - max) -> probabilities -> Predicted token.

    A vector is a column, as the weights' rows (one per neuron) multiply it: z's row n is W's row
    n times the column above, plus b's row n (W and b are shown beside z in a small model)."""
    sheet = "Walk"

    def column(name: str, src: str, title: str, labels: list[str], **kw) -> str:
        n = g.shape(src)[1]  # the (1, n) row as an (n, 1) column
        return g.add(name, ir.Transpose(src), (n, 1), sheet, title=title, row_labels=labels,
                     col_labels=[""], **kw)

    g.add("walk.word", ir.Copy("word"), (1, 1), sheet, row_labels=["Input token"],
          title="The walk through the net for the word on the Input sheet (the seed's printout)")
    g.add("walk.id", ir.Copy("word.id"), (1, 1), sheet, row_labels=["Token index"], title="",
          beside=True, style="integer")
    column("walk.embedding", "embedding", "Embedding vector: row 'Token index' of the embedding "
           "table (Vocab sheet)", feats)
    for k in range(1, layers + 2):
        z, last = (f"L{k}", False) if k <= layers else ("out", True)
        outs = list(vocab) if last else g.nodes[f"{z}.z"].col_labels
        a_in = "embedding" if k == 1 else f"a{k - 1}"
        title = (f"OUTPUT LAYER (logits = W . a{k - 1} + b: one per word)" if last else
                 f"LAYER {k} (z{k} = W{k} . {a_in} + b{k})")
        zk = "logits" if last else f"z{k}"
        if g.shape(f"{z}.W")[1] <= WEIGHTS_SHOWN_MAX:  # W and b beside z: multiply along rows
            ins = g.nodes[f"{z}.W"].col_labels
            where = "Output" if last else f"Layer {k}"
            g.add(f"walk.{z}.W", ir.Copy(f"{z}.W"), g.shape(f"{z}.W"), sheet,
                  title=f"{title}; W and b as on the {where} sheet (edit them there)",
                  row_labels=outs, col_labels=[f"W {c}" for c in ins])
            g.add(f"walk.{z}.b", ir.Copy(f"{z}.b"), g.shape(f"{z}.b"), sheet, title="",
                  col_labels=["b"], beside=True)
            column(f"walk.{z}.z", f"{z}.z", "", None, beside=True)
            g.nodes[f"walk.{z}.z"].col_labels = [zk]
        else:
            column(f"walk.{z}.z", f"{z}.z", title, outs)
        if not last:
            column(f"walk.{z}.a", f"{z}.a", f"LAYER {k} (a{k} = ReLU(z{k}))", outs)
    logits = "walk.out.z"
    if len(vocab) <= EXP_ROWS_MAX:  # the seed's softmax, p_i = exp(l_i) / sum_j exp(l_j)
        # less the largest logit first: the same ratios, each exp within 0..1 (a trained net's
        # exp(logit) reaches 1e6 and more, where engines' EXP differ in the 9th decimal)
        top = g.add("walk.max", ir.RowMax("out.z"), (1, 1), sheet, row_labels=["max"],
                    title="the largest logit")
        shifted = g.add("walk.shifted", ir.Sub(logits, top), (len(vocab), 1), sheet,
                        row_labels=list(vocab), title="logit - largest logit", col_labels=[""])
        e = g.add("walk.exp", ir.Exp(shifted), (len(vocab), 1), sheet, row_labels=list(vocab),
                  title="exp(logit - largest): exp(logit) / exp(largest), the same ratios as "
                        "exp(logit)", col_labels=[""])
        total = g.add("walk.sum", ir.ColSum(e), (1, 1), sheet, row_labels=["sum"],
                      title="their sum")
        g.add("walk.probs", ir.Over(e, total), (len(vocab), 1), sheet, row_labels=list(vocab),
              title="probabilities = exp / sum (softmax, temperature 1)", col_labels=[""])
    else:
        column("walk.probs", "probs", "probabilities (softmax of logits / T, Input's T)",
               list(vocab))
    g.add("walk.next", ir.Copy("next.word"), (1, 1), sheet, row_labels=["Predicted token"],
          title="the largest logit's word", style="output")
    g.sheets.remove(sheet)  # right after Input: the seed's printout comes first
    g.sheets.insert(g.sheets.index("Input") + 1, sheet)


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


def _sample_inputs(g: ir.Graph, sheet: str) -> None:
    # the sampling rule's three cells (issue 16), each with its rule (a validation rule on the
    # cell, checked by run): T >= 0, top-k a whole number >= 0, the seed a whole number 1 .. m - 1
    from ..models.textnet import MINSTD_M
    g.add("gen.temperature", ir.Input(np.array([[0.0]]), at_least=0.0), (1, 1), sheet, order=-2,
          title="Temperature T (0 or more): 0 = greedy, the largest logit; 1 = the model's own "
                "probabilities", row_labels=["T"])
    g.add("gen.top_k", ir.Input(np.array([[0.0]]), at_least=0.0, whole=True), (1, 1), sheet,
          order=-2,
          title="Top-k: sample among the words with the k largest logits (ties kept); 0 = all",
          row_labels=["top-k"], style="integer")
    seed = ir.Input(np.array([[1.0]]), at_least=1.0, at_most=MINSTD_M - 1.0, whole=True)
    g.add("gen.seed", seed, (1, 1), sheet, order=-2,
          title="Seed (a whole number 1 .. 2147483646): u comes from its MINSTD stream, "
                "state * 48271 mod 2147483647", row_labels=["seed"], style="integer")


def _sampled_word(g: ir.Graph, logits: str, state: str, prefix: str, sheet: str,
                  vocab: list[str]) -> tuple[str, str]:
    # the rule's step: next state and u, top-k mask, p, cumulative p, the pick, its word and p
    v = len(vocab)
    state = g.add(f"{prefix}state", ir.MinstdNext(state), (1, 1), sheet, ref=f"{prefix}state",
                  title="", col_labels=["state"], style="integer")
    u = g.add(f"{prefix}u", ir.Uniform(state), (1, 1), sheet, ref=f"{prefix}u", title="",
              col_labels=["u"])
    mask = g.add(f"{prefix}kept", ir.TopKMask(logits, "gen.top_k"), (1, v), sheet,
                 title="kept (top-k)", col_labels=vocab, style="integer")
    p = g.add(f"{prefix}probs", ir.MaskedSoftmax(logits, mask, "gen.temperature"), (1, v), sheet,
              ref=f"{prefix}probs", title="p over the kept words", col_labels=vocab)
    cum = g.add(f"{prefix}cum", ir.CumulativeSum(p), (1, v), sheet, title="cumulative p",
                col_labels=vocab)
    nid = g.add(f"{prefix}next.id", ir.PickId(cum, u), (1, 1), sheet, ref=f"{prefix}next.id",
                title="", col_labels=["next id"], style="integer")
    word = g.add(f"{prefix}next.word", ir.Lookup("vocab.word", nid), (1, 1), sheet, title="",
                 col_labels=["next word"], ref=f"{prefix}next.word")
    g.add(f"{prefix}next.p", ir.ValueAt(p, nid), (1, 1), sheet, title="", col_labels=["its p"],
          ref=f"{prefix}next.p")
    return word, state


def _generate(g: ir.Graph, seq, vocab: list[str], feats: list[str], steps: int) -> None:
    """One band of cells per step: word | id | embedding | layers | logits | state | u | kept |
    p | cumulative p | next id | next word | its p; the next step's word is this step's next
    word, looked up again by its text.  T = 0 (the default) is the greedy chain."""
    sheet, word, words, state = "Generate", "word", [], "gen.seed"
    _sample_inputs(g, sheet)
    for k in range(1, steps + 1):
        prefix = f"gen{k}."
        word = g.add(f"{prefix}word", ir.Copy(word), (1, 1), sheet, ref=f"{prefix}word",
                     title="step 1: the Input sheet's word" if k == 1 else
                     f"step {k}: the word step {k - 1} picked", row_labels=[f"step {k}"],
                     col_labels=["word"])
        first = len(g.nodes)
        emb = _lookup(g, word, prefix, sheet, feats, title="embedding")
        logits = lower_sequential(g, seq, emb, prefix=prefix, sheet=sheet, in_labels=feats,
                                  with_params=False, show_steps=False)
        _relabel_logits(g, logits, vocab, "logits")
        nxt, state = _sampled_word(g, logits, state, prefix, sheet, vocab)
        for name in list(g.nodes)[first:]:  # the step's cells in one band, left to right
            g.nodes[name].beside = True
        words.append(word)
        word = nxt
    g.add("chain", ir.Concat(tuple(words + [word])), (1, steps + 1), sheet, ref="chain", order=-1,
          title="The chain: each step's picked word is the next step's word (T = 0: greedy)",
          row_labels=["chain"], col_labels=["start"] + [str(k) for k in range(1, steps + 1)])


# --- PyTorch ------------------------------------------------------------------------------------
def trace_textnet(model, graph: ir.Graph, leaves: dict) -> dict[str, np.ndarray]:
    """PyTorch float64 values of every node with a ``ref``, for the word and temperature in the
    workbook (``leaves``): the word's pass, all words, and the chain step by step, sampled by the Generate sheet's rule cells."""
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
    for k, step in enumerate(_trace_samples(model, seq, vocab, graph, leaves, chain), 1):
        out.update(step)
        out[f"gen{k}.word"] = np.array([[chain[-2]]], dtype=object)
    # step 1's word is a copy of the Input cell, as it is: the number 1 stays a number there
    chain[0] = start
    if "gen1.word" in out:
        out["gen1.word"][0, 0] = start
    out["chain"] = np.array([chain], dtype=object)
    return out


def _leaf_number(leaves: dict, name: str) -> float:
    return float(np.asarray(leaves[name], dtype=np.float64).flat[0])


def _trace_samples(model, seq, vocab, graph: ir.Graph, leaves: dict, chain: list[str]):
    # the Generate sheet's steps by models.textnet's sampling rule, appending to chain; yields
    # each step's traced values
    from ..models.textnet import MINSTD_M, minstd_states, sample_pick
    index = {w: i for i, w in enumerate(vocab)}
    t, top_k = _leaf_number(leaves, "gen.temperature"), _leaf_number(leaves, "gen.top_k")
    seed = _leaf_number(leaves, "gen.seed")
    if not (seed.is_integer() and top_k.is_integer() and t >= 0):
        raise SheetnetError(f"the Generate sheet's seed and top-k must be whole numbers and T "
                            f">= 0 (got seed {seed:g}, top-k {top_k:g}, T {t:g})")
    for k, state in enumerate(minstd_states(int(seed), graph.meta["steps"]), 1):
        prefix = f"gen{k}."
        step = _trace_pass(model, seq, vocab, [index[chain[-1]]], prefix)
        nid, p = sample_pick(torch.as_tensor(step[f"{prefix}logits"][0]), t, int(top_k),
                             state / MINSTD_M)
        chain.append(vocab[nid])
        step.update({f"{prefix}state": np.array([[float(state)]]),
                     f"{prefix}u": np.array([[state / MINSTD_M]]),
                     f"{prefix}probs": p.numpy()[None, :].copy(),
                     f"{prefix}next.id": np.array([[float(nid)]]),
                     f"{prefix}next.word": np.array([[vocab[nid]]], dtype=object),
                     f"{prefix}next.p": p.numpy()[None, [nid]].copy()})
        yield step


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
