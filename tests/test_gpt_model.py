"""The reference GPT: trace vs an independent NumPy float64 model, options, checkpoints, training."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sheetnet.checkpoint import save_checkpoint
from sheetnet.loaders import load_checkpoint
from sheetnet.errors import SheetnetError
from sheetnet.models.gpt import GPT, GPTConfig, generate, gpt_config_from_dict
from sheetnet.models.train_gpt import (
    char_vocab, decode, encode, evaluate_loss, generate_text, train_gpt, train_gpt_checkpoint,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_PT = ROOT / "examples" / "gpt.pt"
EXAMPLE_TEXT = ROOT / "examples" / "gpt_text.txt"
TOL = dict(rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- helpers
def random_model(seed=0, **cfg) -> GPT:
    """A float64 model with every parameter drawn at a scale that exercises all the terms."""
    base = dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8)
    base.update(cfg)
    torch.manual_seed(seed)
    model = GPT(GPTConfig(**base)).double().eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            scale = 0.3 if name.endswith("bias") else 0.6
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * scale)
            if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
                p.add_(1.0)
    return model


def np_gelu(x, form):
    if form == "erf":
        return np.vectorize(lambda v: 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))))(x)
    return np.vectorize(lambda v: 0.5 * v * (1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (v + 0.044715 * v ** 3))))(x)


def numpy_gpt(model: GPT, ids: list[int]) -> dict[str, np.ndarray]:
    """Independent float64 forward pass of one sequence, written against the state dict only."""
    cfg = model.config
    W = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    b = (lambda k: W[k]) if cfg.bias else (lambda k: 0.0)
    T, C, nh = len(ids), cfg.n_embd, cfg.n_head
    hs = C // nh
    out: dict[str, np.ndarray] = {}

    def ln(x, prefix, name):
        mean = x.sum(axis=1, keepdims=True) / C
        var = ((x - mean) ** 2).sum(axis=1, keepdims=True) / C
        norm = (x - mean) / np.sqrt(var + cfg.ln_eps)
        y = norm * W[f"{prefix}.weight"] + b(f"{prefix}.bias")
        out.update({f"{name}.mean": mean, f"{name}.var": var, f"{name}.norm": norm, name: y})
        return y

    out["tok_emb"] = W["transformer.wte.weight"][ids]
    out["pos_emb"] = W["transformer.wpe.weight"][:T]
    x = out["x0"] = out["tok_emb"] + out["pos_emb"]
    for i in range(cfg.n_layer):
        p, n = f"transformer.h.{i}", f"h{i}"
        a = ln(x, f"{p}.ln_1", f"{n}.ln_1")
        qkv = out[f"{n}.attn.qkv"] = a @ W[f"{p}.attn.c_attn.weight"].T + b(f"{p}.attn.c_attn.bias")
        ys = []
        for h in range(nh):
            q = out[f"{n}.attn.q{h}"] = qkv[:, h * hs:(h + 1) * hs]
            k = out[f"{n}.attn.k{h}"] = qkv[:, C + h * hs:C + (h + 1) * hs]
            v = out[f"{n}.attn.v{h}"] = qkv[:, 2 * C + h * hs:2 * C + (h + 1) * hs]
            s = q @ k.T / math.sqrt(hs)
            s[np.triu_indices(T, 1)] = -np.inf
            out[f"{n}.attn.scores{h}"] = s
            e = np.exp(s - s.max(axis=1, keepdims=True))
            pr = out[f"{n}.attn.probs{h}"] = e / e.sum(axis=1, keepdims=True)
            ys.append(pr @ v)
            out[f"{n}.attn.y{h}"] = ys[-1]
        y = out[f"{n}.attn.y"] = np.concatenate(ys, axis=1)
        o = out[f"{n}.attn.out"] = y @ W[f"{p}.attn.c_proj.weight"].T + b(f"{p}.attn.c_proj.bias")
        x = out[f"{n}.res1"] = x + o
        m = ln(x, f"{p}.ln_2", f"{n}.ln_2")
        fc = out[f"{n}.mlp.fc"] = m @ W[f"{p}.mlp.c_fc.weight"].T + b(f"{p}.mlp.c_fc.bias")
        g = out[f"{n}.mlp.gelu"] = np_gelu(fc, cfg.gelu)
        o = out[f"{n}.mlp.out"] = g @ W[f"{p}.mlp.c_proj.weight"].T + b(f"{p}.mlp.c_proj.bias")
        x = out[f"{n}.res2"] = x + o
    f = ln(x, "transformer.ln_f", "ln_f")
    head = W["transformer.wte.weight"] if cfg.tied else W["lm_head.weight"]
    out["logits"] = f @ head.T
    return out


def expected_names(n_layer, n_head):
    names = ["tok_emb", "pos_emb", "x0"]
    for i in range(n_layer):
        n = f"h{i}"
        names += [f"{n}.ln_1.mean", f"{n}.ln_1.var", f"{n}.ln_1.norm", f"{n}.ln_1", f"{n}.attn.qkv"]
        names += [f"{n}.attn.{part}{h}" for part in ("q", "k", "v", "scores", "probs", "y") for h in range(n_head)]
        names += [f"{n}.attn.y", f"{n}.attn.out", f"{n}.res1",
                  f"{n}.ln_2.mean", f"{n}.ln_2.var", f"{n}.ln_2.norm", f"{n}.ln_2",
                  f"{n}.mlp.fc", f"{n}.mlp.gelu", f"{n}.mlp.out", f"{n}.res2"]
    return set(names + ["ln_f.mean", "ln_f.var", "ln_f.norm", "ln_f", "logits"])


CONFIGS = [
    dict(),                                                       # nanoGPT: bias, erf, tied
    dict(bias=False, gelu="tanh", tied=False, n_head=4, ln_eps=1e-3),
    dict(n_layer=1, n_head=1, gelu="tanh"),
]


# ---------------------------------------------------------------- trace
@pytest.mark.parametrize("cfg", CONFIGS)
def test_trace_matches_numpy_reference(cfg):
    model = random_model(**cfg)
    idx = torch.tensor([[3, 1, 4, 1, 5, 9, 2], [6, 5, 3, 5, 8, 9, 7]])
    trace: dict = {}
    with torch.no_grad():
        logits = model(idx, trace=trace)
    c = model.config
    assert set(trace) == expected_names(c.n_layer, c.n_head)
    ref = numpy_gpt(model, idx[0].tolist())
    assert set(ref) == set(trace)
    for name, arr in trace.items():
        assert isinstance(arr, np.ndarray) and arr.dtype == np.float64 and arr.ndim == 2, name
        assert arr.shape == ref[name].shape, name
        np.testing.assert_allclose(arr, ref[name], err_msg=name, **TOL)   # -inf must match too
    # the trace's logits are exactly the forward output for batch element 0
    np.testing.assert_array_equal(trace["logits"], logits[0].numpy())
    # the second sequence is untouched by the trace but computed the same way
    np.testing.assert_allclose(logits[1].numpy(), numpy_gpt(model, idx[1].tolist())["logits"], **TOL)


def test_trace_is_internally_consistent():
    model = random_model(n_head=2, n_embd=8)
    idx = torch.tensor([[0, 10, 2, 2, 7, 1, 3, 4]])       # T == block_size
    tr: dict = {}
    with torch.no_grad():
        plain = model(idx)
        traced = model(idx, trace=tr)
    assert torch.equal(plain, traced)                    # tracing does not perturb the computation
    T, C, hs, eps = 8, 8, 4, model.config.ln_eps
    np.testing.assert_array_equal(tr["x0"], tr["tok_emb"] + tr["pos_emb"])
    for i in range(2):
        n = f"h{i}"
        x_in = tr["x0"] if i == 0 else tr[f"h{i - 1}.res2"]
        for ln_name, src in ((f"{n}.ln_1", x_in), (f"{n}.ln_2", tr[f"{n}.res1"])):
            assert tr[f"{ln_name}.mean"].shape == (T, 1) and tr[f"{ln_name}.var"].shape == (T, 1)
            np.testing.assert_allclose(tr[f"{ln_name}.mean"][:, 0], src.mean(axis=1), **TOL)
            np.testing.assert_allclose(tr[f"{ln_name}.var"][:, 0], src.var(axis=1), **TOL)   # biased
            np.testing.assert_allclose(tr[f"{ln_name}.norm"],
                                       (src - tr[f"{ln_name}.mean"]) / np.sqrt(tr[f"{ln_name}.var"] + eps), **TOL)
        qkv = tr[f"{n}.attn.qkv"]
        assert qkv.shape == (T, 3 * C)
        for h in range(2):
            np.testing.assert_array_equal(tr[f"{n}.attn.q{h}"], qkv[:, h * hs:(h + 1) * hs])
            np.testing.assert_array_equal(tr[f"{n}.attn.k{h}"], qkv[:, C + h * hs:C + (h + 1) * hs])
            np.testing.assert_array_equal(tr[f"{n}.attn.v{h}"], qkv[:, 2 * C + h * hs:2 * C + (h + 1) * hs])
            s, p = tr[f"{n}.attn.scores{h}"], tr[f"{n}.attn.probs{h}"]
            upper = np.triu(np.ones((T, T), bool), 1)
            assert np.all(np.isneginf(s[upper])) and np.all(np.isfinite(s[~upper]))
            assert np.all(p[upper] == 0.0) and np.all(p[~upper] > 0.0)
            np.testing.assert_allclose(p.sum(axis=1), 1.0, **TOL)
            np.testing.assert_allclose(tr[f"{n}.attn.y{h}"], p @ tr[f"{n}.attn.v{h}"], **TOL)
        np.testing.assert_array_equal(tr[f"{n}.attn.y"], np.concatenate([tr[f"{n}.attn.y0"], tr[f"{n}.attn.y1"]], 1))
        np.testing.assert_array_equal(tr[f"{n}.res1"], x_in + tr[f"{n}.attn.out"])
        np.testing.assert_array_equal(tr[f"{n}.res2"], tr[f"{n}.res1"] + tr[f"{n}.mlp.out"])
        assert tr[f"{n}.mlp.fc"].shape == (T, 4 * C)
    assert tr["logits"].shape == (T, 11)
    # causality: changing a later token leaves earlier logits unchanged
    with torch.no_grad():
        changed = model(torch.tensor([[0, 10, 2, 2, 7, 1, 3, 9]]))
    assert torch.equal(changed[0, :7], plain[0, :7]) and not torch.equal(changed[0, 7], plain[0, 7])


# ---------------------------------------------------------------- options
def test_bias_false_has_no_bias_anywhere():
    model = GPT(GPTConfig(vocab_size=7, bias=False))
    names = [n for n, _ in model.named_parameters()] + list(model.state_dict())
    assert not [n for n in names if "bias" in n]
    with_bias = GPT(GPTConfig(vocab_size=7))
    assert {n for n, _ in with_bias.named_parameters() if n.endswith(".bias")} >= {
        "transformer.h.0.ln_1.bias", "transformer.h.0.attn.c_attn.bias", "transformer.h.1.mlp.c_proj.bias",
        "transformer.ln_f.bias"}
    assert with_bias.lm_head.bias is None


def test_parameter_names_are_nanogpt_shaped():
    sd = GPT(GPTConfig(vocab_size=7, n_layer=1, n_embd=8, block_size=5)).state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == {
        "transformer.wte.weight": (7, 8), "transformer.wpe.weight": (5, 8),
        "transformer.h.0.ln_1.weight": (8,), "transformer.h.0.ln_1.bias": (8,),
        "transformer.h.0.attn.c_attn.weight": (24, 8), "transformer.h.0.attn.c_attn.bias": (24,),
        "transformer.h.0.attn.c_proj.weight": (8, 8), "transformer.h.0.attn.c_proj.bias": (8,),
        "transformer.h.0.ln_2.weight": (8,), "transformer.h.0.ln_2.bias": (8,),
        "transformer.h.0.mlp.c_fc.weight": (32, 8), "transformer.h.0.mlp.c_fc.bias": (32,),
        "transformer.h.0.mlp.c_proj.weight": (8, 32), "transformer.h.0.mlp.c_proj.bias": (8,),
        "transformer.ln_f.weight": (8,), "transformer.ln_f.bias": (8,), "lm_head.weight": (7, 8)}


def test_tied_shares_the_tensor_and_untied_does_not():
    tied = GPT(GPTConfig(vocab_size=7)).double()
    assert tied.lm_head.weight is tied.transformer.wte.weight
    assert tied.lm_head.weight.dtype == torch.float64
    assert len(list(tied.parameters())) == len(dict(tied.named_parameters()))
    assert "lm_head.weight" not in dict(tied.named_parameters())   # counted once, under wte
    untied = GPT(GPTConfig(vocab_size=7, tied=False))
    assert untied.lm_head.weight is not untied.transformer.wte.weight
    assert "lm_head.weight" in dict(untied.named_parameters())


def test_gelu_tanh_matches_torch_and_differs_from_erf():
    idx = torch.tensor([[1, 2, 3, 4, 5]])
    tr_t, tr_e = {}, {}
    with torch.no_grad():
        random_model(gelu="tanh")(idx, tr_t)
        random_model(gelu="erf")(idx, tr_e)
    for tr, approx in ((tr_t, "tanh"), (tr_e, "none")):
        fc = torch.from_numpy(tr["h0.mlp.fc"])
        np.testing.assert_allclose(tr["h0.mlp.gelu"], F.gelu(fc, approximate=approx).numpy(), **TOL)
    np.testing.assert_array_equal(tr_t["h0.mlp.fc"], tr_e["h0.mlp.fc"])
    assert np.abs(tr_t["h0.mlp.gelu"] - tr_e["h0.mlp.gelu"]).max() > 1e-6


def test_config_validation():
    with pytest.raises(SheetnetError):
        GPTConfig(vocab_size=5, n_embd=10, n_head=3)
    with pytest.raises(SheetnetError):
        GPTConfig(vocab_size=5, gelu="relu")
    with pytest.raises(SheetnetError):
        gpt_config_from_dict({"vocab_size": 5, "dropout": 0.1})
    assert gpt_config_from_dict({"vocab_size": 5}) == GPTConfig(vocab_size=5)
    with pytest.raises(SheetnetError):
        GPT(GPTConfig(vocab_size=5, block_size=4))(torch.zeros(1, 5, dtype=torch.long))


# ---------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("cfg", [dict(), dict(bias=False, tied=False, gelu="tanh")])
def test_checkpoint_round_trip(tmp_path, monkeypatch, cfg):
    model = random_model(**cfg).float()
    path = tmp_path / "m.pt"
    save_checkpoint(path, "gpt", model.config.to_dict(), model.state_dict(), {"vocab": list("abcdefghijk")})
    seen = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: (seen.append(k), real_load(*a, **k))[1])
    payload = load_checkpoint(path)
    assert seen and seen[0].get("weights_only") is True
    loaded = GPT.from_checkpoint(payload)
    assert not loaded.training and loaded.config == model.config
    assert (loaded.lm_head.weight is loaded.transformer.wte.weight) == model.config.tied
    idx = torch.tensor([[1, 0, 10, 4, 4, 2]])
    with torch.no_grad():
        assert torch.equal(loaded(idx), model(idx))
        assert torch.equal(loaded.double()(idx), model.double()(idx))


def test_from_checkpoint_tied_variants(tmp_path):
    model = random_model()                                 # float64, tied
    cfg = model.config.to_dict()
    sd = model.state_dict()
    idx = torch.tensor([[5, 4, 3]])
    with torch.no_grad():
        want = model(idx)
    no_head = {k: v for k, v in sd.items() if k != "lm_head.weight"}
    path = tmp_path / "nohead.pt"
    save_checkpoint(path, "gpt", cfg, no_head)
    loaded = GPT.from_checkpoint(load_checkpoint(path))
    assert loaded.transformer.wte.weight.dtype == torch.float64   # keeps the stored dtype
    assert loaded.lm_head.weight is loaded.transformer.wte.weight
    with torch.no_grad():
        assert torch.equal(loaded(idx), want)
    bad = dict(sd, **{"lm_head.weight": sd["lm_head.weight"] + 1})
    with pytest.raises(SheetnetError, match="tied"):
        GPT.from_checkpoint({"architecture": "gpt", "config": cfg, "state_dict": bad})
    with pytest.raises(SheetnetError, match="architecture"):
        GPT.from_checkpoint({"architecture": "mlp", "config": cfg, "state_dict": sd})
    missing = {k: v for k, v in sd.items() if k != "transformer.h.1.mlp.c_fc.bias"}
    with pytest.raises(SheetnetError):
        GPT.from_checkpoint({"architecture": "gpt", "config": cfg, "state_dict": missing})


# ---------------------------------------------------------------- training
TINY_TEXT = "The cat sat on the mat. 'x = 2', said Ada; \"y = 3\".\n" * 4
TINY = dict(n_layer=1, n_head=2, n_embd=16, block_size=16, steps=40, batch_size=8, lr=1e-2)


def test_vocab_helpers():
    stoi, itos = char_vocab("banana!")
    assert itos == ["!", "a", "b", "n"] and stoi == {"!": 0, "a": 1, "b": 2, "n": 3}
    assert decode(encode("nab!", stoi), itos) == "nab!"
    with pytest.raises(SheetnetError):
        encode("z", stoi)


def test_tiny_training_lowers_loss_and_is_reproducible(tmp_path):
    threads = torch.get_num_threads()
    r1 = train_gpt_checkpoint(tmp_path / "a.pt", TINY_TEXT, seed=3, **TINY)
    assert torch.get_num_threads() == threads                     # restored
    md = r1["metadata"]
    assert md["final_loss"] < md["initial_loss"] - 1.0
    assert md["trained_by"] == "sheetnet train gpt" and md["seed"] == 3 and md["steps"] == 40
    assert md["vocab"] == sorted(set(TINY_TEXT))
    train_gpt_checkpoint(tmp_path / "b.pt", TINY_TEXT, seed=3, **TINY)
    train_gpt_checkpoint(tmp_path / "c.pt", TINY_TEXT, seed=4, **TINY)
    a, b, c = (load_checkpoint(tmp_path / f"{n}.pt") for n in "abc")
    assert a["architecture"] == "gpt" and a["config"] == r1["config"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert a["metadata"]["final_loss"] == b["metadata"]["final_loss"]
    assert not torch.equal(a["state_dict"]["transformer.wpe.weight"], c["state_dict"]["transformer.wpe.weight"])
    # the stored lm_head copy equals wte, and the final loss is what the saved model scores
    assert torch.equal(a["state_dict"]["lm_head.weight"], a["state_dict"]["transformer.wte.weight"])
    model = GPT.from_checkpoint(a)
    stoi, _ = char_vocab(TINY_TEXT)
    data = torch.tensor(encode(TINY_TEXT, stoi))
    assert evaluate_loss(model, data) == pytest.approx(md["final_loss"], abs=1e-6)


def test_training_options_pass_through():
    model, info = train_gpt(TINY_TEXT, bias=False, gelu="tanh", tied=False, **dict(TINY, steps=2))
    assert model.config.bias is False and model.config.gelu == "tanh" and model.config.tied is False
    assert info["config"]["gelu"] == "tanh"
    with pytest.raises(SheetnetError):
        train_gpt("short", block_size=16, steps=1)


def test_generate_shapes_and_cropping():
    model = random_model(block_size=4)
    out1 = generate(model, torch.tensor([1, 2]), 6)
    out2 = generate(model, torch.tensor([[1, 2], [3, 4]]), 6)
    assert out1.shape == (8,) and out2.shape == (2, 8)
    assert torch.equal(out2[0], out1)                        # greedy is deterministic, rows independent
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    s1 = generate(model, torch.tensor([1]), 10, greedy=False, generator=g1)
    s2 = generate(model, torch.tensor([1]), 10, greedy=False, generator=g2)
    assert torch.equal(s1, s2)


# ---------------------------------------------------------------- the shipped example
def test_shipped_example_checkpoint():
    assert EXAMPLE_PT.stat().st_size < 300_000
    payload = load_checkpoint(EXAMPLE_PT)
    assert payload["architecture"] == "gpt"
    model = GPT.from_checkpoint(payload)
    c = model.config
    assert (c.n_layer, c.n_head, c.n_embd, c.block_size, c.bias, c.gelu, c.tied) == (2, 2, 32, 32, True, "erf", True)
    md = payload["metadata"]
    vocab = md["vocab"]
    text = EXAMPLE_TEXT.read_text(encoding="utf-8")
    assert vocab == sorted(set(text)) and len(vocab) == c.vocab_size
    assert all(isinstance(ch, str) and len(ch) == 1 for ch in vocab)
    chars = set(vocab)
    assert chars & set("ABCDEFGHIJKLMNOPQRSTUVWXYZ") and chars & set("abcdefghijklmnopqrstuvwxyz")
    assert chars & set("0123456789") and {"'", '"', "=", " ", "\n"} <= chars
    assert md["trained_by"] == "sheetnet train gpt" and md["final_loss"] < 1.0
    # the stored final loss is reproduced by the shipped weights on the shipped text
    stoi, _ = char_vocab(text)
    assert evaluate_loss(model, torch.tensor(encode(text, stoi))) == pytest.approx(md["final_loss"], abs=1e-5)
    out = generate_text(model, vocab, "Good morning", 40)
    assert out.startswith("Good morning") and len(out) == 52 and set(out) <= chars
    assert generate_text(model, vocab, "x = ", 1) == "x = 2"    # it has learned the story's sum
