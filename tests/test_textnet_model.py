"""The tiny text net: shipped examples learn every pair, training is deterministic, traces are exact."""
from pathlib import Path

import numpy as np
import pytest
import torch

from sheetnet.loaders import load_checkpoint
from sheetnet.errors import SheetnetError
from sheetnet.models.textnet import (
    TextNet, build_vocab, greedy_chain, read_pairs, trace, train_textnet,
    train_textnet_checkpoint,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PAIRS_FILE = EXAMPLES / "textnet_pairs.txt"
SHIPPED = {"textnet.pt": (2, [2, 2]), "textnet_wide.pt": (4, [8, 8])}


def _load(name):
    payload = load_checkpoint(EXAMPLES / name)
    return TextNet.from_checkpoint(payload), payload["metadata"]["vocab"], payload


def _argmax_next(model, vocab, word):
    with torch.no_grad():
        logits = model(torch.tensor([vocab.index(word)]))
    assert logits.shape == (1, len(vocab))
    return vocab[int(logits.argmax())]


def test_default_pairs_keep_the_seed_pairs():
    pairs = read_pairs(PAIRS_FILE)
    for pair in [("hello", "world"), ("world", "!"), ("cat", "dog"), ("dog", "!"),
                 ("silly", "dog"), ("cute", "cat")]:
        assert pair in pairs
    assert dict(pairs)["!"] == "hello"
    assert build_vocab(pairs)[:3] == ["hello", "world", "!"]        # order of first appearance


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_example_learns_every_pair(name):
    model, vocab, payload = _load(name)
    embed, hidden = SHIPPED[name]
    assert payload["architecture"] == "textnet"
    assert payload["config"] == {"vocab_size": len(vocab), "embed": embed, "hidden": hidden}
    assert model.embed.weight.shape == (len(vocab), embed)
    assert [layer.out_features for layer in model.layers] == hidden
    meta = payload["metadata"]
    assert meta["trained_by"] == "sheetnet train textnet"
    assert [tuple(p) for p in meta["pairs"]] == read_pairs(PAIRS_FILE)
    assert meta["vocab"] == build_vocab(read_pairs(PAIRS_FILE))
    assert isinstance(meta["seed_used"], int) and meta["final_loss"] < 0.05
    for a, b in meta["pairs"]:
        assert _argmax_next(model, vocab, a) == b, f"{name}: {a} -> {_argmax_next(model, vocab, a)}, not {b}"


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_greedy_chain_follows_the_pairs(name):
    model, vocab, _ = _load(name)
    assert greedy_chain(model, vocab, "hello", 6) == ["hello", "world", "!", "hello", "world", "!", "hello"]
    assert greedy_chain(model, vocab, "cute", 4) == ["cute", "cat", "dog", "!", "hello"]
    assert greedy_chain(model, vocab, "silly", 2) == ["silly", "dog", "!"]      # no "dog -> dog" loop
    assert greedy_chain(model, vocab, "dog", 0) == ["dog"]
    with pytest.raises(ValueError, match="not in the vocabulary"):
        greedy_chain(model, vocab, "zebra", 1)


def test_same_seed_gives_identical_weights_and_training_is_robust():
    pairs = read_pairs(PAIRS_FILE)
    # seed 2 lands in a bad minimum with a 2x2 net, so this also exercises the deterministic retry
    m1, v1, loss1 = train_textnet(pairs, embed=2, hidden=(2, 2), seed=2)
    m2, v2, loss2 = train_textnet(pairs, embed=2, hidden=(2, 2), seed=2)
    assert v1 == v2 and loss1 == loss2 and m1.seed_used == m2.seed_used > 2
    s1, s2 = m1.state_dict(), m2.state_dict()
    assert s1.keys() == s2.keys()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    for a, b in pairs:                         # whichever seed was used, every pair is learned
        assert _argmax_next(m1, v1, a) == b
    with pytest.raises(SheetnetError, match=r"did not learn every pair with seeds 2\.\.2"):
        train_textnet(pairs, embed=2, hidden=(2, 2), seed=2, max_tries=1)


def test_read_pairs_comments_blank_lines_and_errors(tmp_path):
    good = tmp_path / "pairs.txt"
    good.write_text("# header comment\n\nhello world   # trailing comment\n  cat\tdog\nC# sharp\n",
                    encoding="utf-8")
    assert read_pairs(good) == [("hello", "world"), ("cat", "dog"), ("C#", "sharp")]
    bad = tmp_path / "bad.txt"
    bad.write_text("hello world\n# fine\ncat dog mouse\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 3"):
        read_pairs(bad)
    lonely = tmp_path / "lonely.txt"
    lonely.write_text("hello\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1"):
        read_pairs(lonely)
    with pytest.raises(ValueError, match="both"):
        build_vocab([("dog", "!"), ("dog", "cat")])


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_trace_matches_numpy_float64(name):
    model, vocab, payload = _load(name)
    sd = {k: v.detach().numpy().astype(np.float64) for k, v in payload["state_dict"].items()}
    n_layers = len(model.layers)
    for wid in range(len(vocab)):
        t = trace(model, wid)
        assert set(t) == {"embedding", "logits"} | {f"layer{i}.{s}" for i in range(1, n_layers + 1) for s in "za"}
        a = sd["embed.weight"][wid][None, :]
        np.testing.assert_allclose(t["embedding"], a, rtol=0, atol=1e-12)
        for i in range(n_layers):
            z = a @ sd[f"layers.{i}.weight"].T + sd[f"layers.{i}.bias"]
            a = np.maximum(z, 0.0)
            assert t[f"layer{i + 1}.z"].dtype == np.float64 and t[f"layer{i + 1}.z"].shape == z.shape
            np.testing.assert_allclose(t[f"layer{i + 1}.z"], z, rtol=0, atol=1e-12)
            np.testing.assert_allclose(t[f"layer{i + 1}.a"], a, rtol=0, atol=1e-12)
        logits = a @ sd["out.weight"].T + sd["out.bias"]
        np.testing.assert_allclose(t["logits"], logits, rtol=0, atol=1e-12)
        assert t["logits"].shape == (1, len(vocab))
        assert vocab[int(np.argmax(t["logits"]))] == dict(payload["metadata"]["pairs"])[vocab[wid]]


def test_formula_like_words_train_and_round_trip(tmp_path):
    pairs = [("=1+1", "@SUM(A1)"), ("@SUM(A1)", "'quoted"), ("'quoted", "\"dq\""),
             ("\"dq\"", "-2"), ("-2", "=1+1"), ("+A1", "=1+1"), ("Ünïcode", "-2")]
    out = tmp_path / "odd.pt"
    meta = train_textnet_checkpoint(out, pairs, embed=4, hidden=(8, 8), seed=0)
    payload = load_checkpoint(out)
    model, saved = TextNet.from_checkpoint(payload), payload["metadata"]
    vocab = saved["vocab"]
    assert vocab == build_vocab(pairs) == ["=1+1", "@SUM(A1)", "'quoted", "\"dq\"", "-2", "+A1", "Ünïcode"]
    assert saved["pairs"] == [list(p) for p in pairs]
    assert saved["seed_used"] == meta["seed_used"] and saved["final_loss"] == meta["final_loss"]
    for a, b in pairs:
        assert _argmax_next(model, vocab, a) == b
    assert greedy_chain(model, vocab, "=1+1", 5) == ["=1+1", "@SUM(A1)", "'quoted", "\"dq\"", "-2", "=1+1"]


def test_from_checkpoint_rejects_other_architectures():
    payload = dict(load_checkpoint(EXAMPLES / "textnet.pt"), architecture="mlp")
    with pytest.raises(SheetnetError, match="textnet"):
        TextNet.from_checkpoint(payload)
