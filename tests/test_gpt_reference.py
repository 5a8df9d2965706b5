"""The GPT's IR ops against PyTorch in float64, op by op, and the whole captured GPT against
``GPT.forward``'s trace for random models and prompts (no LibreOffice here)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sheetnet.capture.gpt import capture_gpt, decode_tokens, tokenize, trace_gpt
from sheetnet.errors import SheetnetError
from sheetnet.ir import graph as ir
from sheetnet.ir.reference import evaluate
from sheetnet.models.gpt import GPT, GPTConfig
from sheetnet.models.train_gpt import encode

RNG = np.random.default_rng(5)
T, F_ = 6, 4
X = RNG.normal(size=(T, F_)) * 2  # (T, F)
TOL = dict(rtol=0, atol=1e-13)


def _graph(**tensors) -> ir.Graph:
    g = ir.Graph()
    for name, value in tensors.items():
        value = np.asarray(value)
        g.add(name, ir.Input(value), value.shape, "S")
    return g


def _run(g: ir.Graph, name: str, op, shape) -> np.ndarray:
    g.add(name, op, shape, "S")
    return evaluate(g)[name]


def test_layer_norm_parts_match_torch():
    gain, bias = RNG.normal(size=(1, F_)), RNG.normal(size=(1, F_))
    g = _graph(x=X, gain=gain, bias=bias)
    g.add("mean", ir.RowMean("x"), (T, 1), "S")
    g.add("var", ir.RowVar("x", "mean"), (T, 1), "S")
    g.add("norm", ir.Normalize("x", "mean", "var", 1e-5), (T, F_), "S")
    g.add("out", ir.ScaleShift("norm", "gain", "bias"), (T, F_), "S")
    v = evaluate(g)
    x = torch.tensor(X)
    np.testing.assert_allclose(v["mean"], x.mean(dim=1, keepdim=True).numpy(), **TOL)
    np.testing.assert_allclose(v["var"], x.var(dim=1, unbiased=False, keepdim=True).numpy(), **TOL)
    expected = F.layer_norm(x, (F_,), torch.tensor(gain[0]), torch.tensor(bias[0]), 1e-5)
    np.testing.assert_allclose(v["out"], expected.numpy(), **TOL)


def test_causal_attention_matches_torch():
    q, k, vv = (RNG.normal(size=(T, 3)) for _ in range(3))
    g = _graph(q=q, k=k, v=vv)
    g.add("s", ir.CausalScores("q", "k"), (T, T), "S")
    g.add("m", ir.RowMax("s", causal=True), (T, 1), "S")
    g.add("z", ir.RowSumExp("s", "m", causal=True), (T, 1), "S")
    g.add("p", ir.Softmax("s", "m", "z", causal=True), (T, T), "S")
    g.add("y", ir.MatMul("p", "v"), (T, 3), "S")
    out = evaluate(g)
    tq, tk, tv = (torch.tensor(a) for a in (q, k, vv))
    scores = (tq @ tk.T) / math.sqrt(3)
    scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    np.testing.assert_array_equal(np.isneginf(out["s"]), np.isneginf(scores.numpy()))
    finite = np.isfinite(out["s"])
    np.testing.assert_allclose(out["s"][finite], scores.numpy()[finite], **TOL)
    np.testing.assert_allclose(out["p"], torch.softmax(scores, dim=-1).numpy(), **TOL)
    expected = F.scaled_dot_product_attention(tq[None], tk[None], tv[None], is_causal=True)[0]
    np.testing.assert_allclose(out["y"], expected.numpy(), **TOL)


def test_lookup_concat_pick_divide_and_top_k_match_torch():
    table = RNG.normal(size=(7, 3))
    ids = np.array([[3.0], [0.0], [6.0], [3.0]])
    g = _graph(table=table, ids=ids, x=X, n=np.array([[4.0]]), t=np.array([[0.7]]))
    emb = _run(g, "emb", ir.Lookup("table", "ids"), (4, 3))
    np.testing.assert_array_equal(emb, F.embedding(torch.tensor(ids[:, 0].astype(int)),
                                                   torch.tensor(table)).numpy())
    both = _run(g, "cat", ir.Concat(("x", "x")), (T, 2 * F_))
    np.testing.assert_array_equal(both, torch.cat([torch.tensor(X)] * 2, dim=1).numpy())
    row = _run(g, "row", ir.PickRow("x", "n"), (1, F_))
    np.testing.assert_array_equal(row, X[3:4])
    scaled = _run(g, "scaled", ir.Divide("row", "t"), (1, F_))
    np.testing.assert_allclose(scaled, (torch.tensor(X[3]) / 0.7)[None].numpy(), **TOL)
    top = torch.topk(torch.tensor(X[3]), 3)
    np.testing.assert_array_equal(_run(g, "top", ir.Largest("row", 3), (3, 1))[:, 0], top.values)
    np.testing.assert_array_equal(_run(g, "top_ids", ir.LargestIds("row", 3), (3, 1))[:, 0], top.indices)


def test_largest_ids_list_each_column_once_equal_values_in_column_order():
    g = _graph(x=np.array([[1.0, 5.0, 2.0, 5.0, 0.0, 0.0]]))
    assert _run(g, "ids", ir.LargestIds("x", 5), (5, 1))[:, 0].tolist() == [1, 3, 2, 0, 4]


VOCAB = list("\n !'.AHTaceghlot")


@pytest.mark.parametrize("text", ["T", "The cat", "the cat", "Hello there. A cat!", ""])
def test_tokenizer_ops_match_the_python_encoder(text):
    t = 8
    g = _graph(prompt=np.array([[text]], dtype=object))
    g.add("chars", ir.Const(np.array([[c] for c in VOCAB], dtype=object)), (len(VOCAB), 1), "S")
    g.add("n", ir.PromptLength("prompt", t), (1, 1), "S")
    g.add("ch", ir.Chars("prompt", "n", t), (t, 1), "S")
    g.add("id", ir.TokenId("ch", "chars", 0), (t, 1), "S")
    g.add("note", ir.PromptNote("prompt", "id", t), (1, 1), "S")
    v = evaluate(g)
    window = text[-t:] if text else ""
    stoi = {c: i for i, c in enumerate(VOCAB)}
    assert v["n"][0, 0] == len(window)
    assert "".join(v["ch"][:, 0]) == window
    assert v["id"][:, 0].tolist() == encode(window, stoi) + [0] * (t - len(window))
    assert v["id"][:, 0].tolist() == tokenize(text, VOCAB, t)
    assert v["note"][0, 0] == ("type a prompt" if not text else
                               "ok" if len(text) <= t else
                               f"the prompt has {len(text)} characters; the context holds {t}: "
                               f"the sheet reads the last {t}")


def test_unknown_character_is_a_message_not_an_id():
    g = _graph(prompt=np.array([["TΩe"]], dtype=object))
    g.add("chars", ir.Const(np.array([[c] for c in VOCAB], dtype=object)), (len(VOCAB), 1), "S")
    g.add("n", ir.PromptLength("prompt", 4), (1, 1), "S")
    g.add("ch", ir.Chars("prompt", "n", 4), (4, 1), "S")
    g.add("id", ir.TokenId("ch", "chars", 0), (4, 1), "S")
    g.add("note", ir.PromptNote("prompt", "id", 4), (1, 1), "S")
    v = evaluate(g)
    assert v["id"][:, 0].tolist() == [7.0, "not in vocab: 'Ω'", 10.0, 0.0]
    assert v["note"][0, 0] == "not in vocab: see the id column"


def _random_gpt(seed: int, **cfg) -> GPT:
    base = dict(vocab_size=len(VOCAB), block_size=8, n_layer=2, n_head=2, n_embd=8)
    base.update(cfg)
    torch.manual_seed(seed)
    model = GPT(GPTConfig(**base)).double().eval()
    with torch.no_grad():  # weights large enough that every term matters
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, dtype=torch.float64) * (0.3 if "bias" in name else 0.6)
                    + (1.0 if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") else 0))
    return model


@pytest.mark.parametrize("cfg", [{}, {"bias": False}, {"gelu": "tanh", "n_head": 4},
                                 {"tied": False, "n_layer": 1}])
@pytest.mark.parametrize("prompt", ["T", "The cat ", "Hello there. A cat!"])
def test_captured_gpt_matches_its_trace_every_node(cfg, prompt):
    model = _random_gpt(1, **cfg)
    g = capture_gpt(model, VOCAB, prompt)
    values = evaluate(g)
    leaves = {n.name: values[n.name] for n in g.nodes.values() if isinstance(n.op, (ir.Input, ir.Const))}
    traced = trace_gpt(model, g, leaves)
    compared = 0
    for node in g.nodes.values():
        if node.ref:
            expected, got = np.asarray(traced[node.ref], dtype=np.float64), values[node.name]
            assert got.shape == expected.shape, node.name
            np.testing.assert_array_equal(np.isneginf(got), np.isneginf(expected), err_msg=node.name)
            ok = np.isfinite(expected)
            np.testing.assert_allclose(got[ok], expected[ok], rtol=0, atol=1e-12, err_msg=node.name)
            compared += 1
    # per block: 2 layer norms (4 each), q k v scores probs y per head, y, out, res1, fc, gelu,
    # out, res2; then the ids, tok_emb, x0, ln_f (4), logits and 4 at the last position; and
    # generation's: the input ids, each position's u, p, drawn id and its p, and the top
    # candidates' own p (T = 1); the Logit lens's ln_f output, logits, top id and p per stream
    # (the embedding and each block), and its table
    per_block = 8 + 6 * model.config.n_head + 7
    lens = 4 * (model.config.n_layer + 1) + 1
    assert compared == model.config.n_layer * per_block + 12 + 6 + lens


def test_prompt_positions_do_not_see_the_pads():
    # causal attention: the prompt's rows equal PyTorch run on the prompt alone
    model = _random_gpt(2)
    prompt = "cat"
    values = evaluate(capture_gpt(model, VOCAB, prompt))
    ids = torch.tensor([[VOCAB.index(c) for c in prompt]])
    with torch.no_grad():
        alone = model(ids)[0].numpy()
    np.testing.assert_allclose(values["logits"][:3], alone, rtol=0, atol=1e-12)
    np.testing.assert_allclose(values["next.logits"][0], alone[-1], rtol=0, atol=1e-12)


def test_decode_tokens_and_bad_options():
    assert decode_tokens([7, 8, 9], VOCAB) == "Tac"
    with pytest.raises(SheetnetError, match="token id 99 is outside the vocabulary"):
        decode_tokens([1, 99], VOCAB)
    with pytest.raises(SheetnetError, match="context 9 must be between 1"):
        capture_gpt(_random_gpt(0), VOCAB, "a", context=9)
    with pytest.raises(SheetnetError, match="single characters"):
        capture_gpt(_random_gpt(0), VOCAB[:-1] + ["ab"], "a")
