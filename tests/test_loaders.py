"""Bring your own checkpoint: every format, written by its own conventions, loads into a payload
whose model computes what the original computes (float64); detection; and safety: nothing in a
file runs, unsupported layers and formats name themselves.  No LibreOffice here."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from foreign import (
    CHARS, Payload, functional_gpt, hf_gpt2, is_live, mask_buffers, random_gpt, write_meta_pkl,
    write_mingpt_workdir, write_nanogpt,
)
from sheetnet import loaders
from sheetnet.errors import SheetnetError
from sheetnet.pipeline import export, lower
from sheetnet.ir import reference
from sheetnet.loaders.describe import architecture_lines
from sheetnet.loaders.safe import MODULE_CLASSES
from sheetnet.models.gpt import GPT
from sheetnet.models.mlp import mlp_from_checkpoint
from sheetnet.options import ExportOptions
from cli_helpers import invoke, one_line_error

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
IDS = torch.tensor([[1, 4, 0, 9, 2, 7], [3, 3, 10, 5, 8, 1]])
TOL = 1e-10


def gpt_logits(payload: dict, idx=IDS) -> torch.Tensor:
    model = GPT.from_checkpoint(payload).double()
    with torch.no_grad():
        return model(idx)


def max_err(a, b) -> float:
    return float((torch.as_tensor(a) - torch.as_tensor(b)).abs().max())


# ---------------------------------------------------------------- Hugging Face GPT-2
def hf_logits(model, idx=IDS) -> torch.Tensor:
    with torch.no_grad():
        return model.double()(idx).logits


@pytest.mark.parametrize("act, eps", [("gelu_new", 1e-5), ("gelu", 1e-3), ("gelu_pytorch_tanh", 0.5)])
def test_hf_safetensors_matches_transformers(tmp_path, act, eps):
    hf = hf_gpt2(activation_function=act, layer_norm_epsilon=eps)
    hf.save_pretrained(tmp_path / "hf")
    assert (tmp_path / "hf" / "model.safetensors").is_file()
    payload = loaders.load(tmp_path / "hf")
    cfg = payload["config"]
    assert (cfg["gelu"], cfg["ln_eps"], cfg["tied"]) == ({"gelu": "erf"}.get(act, "tanh"), eps, True)
    assert (cfg["block_size"], cfg["vocab_size"], cfg["n_layer"], cfg["n_head"]) == (16, 50, 2, 2)
    md = payload["metadata"]
    assert md["source_format"] == "hf-gpt2"
    assert sorted(md["transposed"]) == sorted(f"transformer.h.{i}.{m}.weight" for i in range(2)
                                              for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"))
    assert md["sources"]["transformer.h.1.mlp.c_fc.weight"] == "transformer.h.1.mlp.c_fc.weight"
    assert max_err(gpt_logits(payload), hf_logits(hf)) <= TOL


def test_hf_pytorch_model_bin_gpt2model_layout(tmp_path):
    """pytorch_model.bin as older transformers wrote it: GPT2Model's keys (no "transformer."
    prefix, no lm_head) with the attn.bias / attn.masked_bias buffers."""
    hf = hf_gpt2(seed=3)
    folder = tmp_path / "old"
    folder.mkdir()
    hf.config.to_json_file(folder / "config.json")
    state = {k[len("transformer."):]: v for k, v in hf.state_dict().items() if k.startswith("transformer.")}
    for i in range(2):
        state[f"h.{i}.attn.bias"] = torch.tril(torch.ones(16, 16)).view(1, 1, 16, 16)
        state[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    torch.save(state, folder / "pytorch_model.bin")
    payload = loaders.load(folder / "pytorch_model.bin")   # the weight file itself also works
    assert payload["metadata"]["sources"]["transformer.wte.weight"] == "wte.weight"
    assert max_err(gpt_logits(payload), hf_logits(hf)) <= TOL


def test_hf_untied_lm_head(tmp_path):
    hf = hf_gpt2(seed=4, tie_word_embeddings=False)
    assert not torch.equal(hf.lm_head.weight, hf.transformer.wte.weight)
    hf.save_pretrained(tmp_path / "hf")
    payload = loaders.load(tmp_path / "hf", fmt="hf-gpt2")
    assert payload["config"]["tied"] is False
    assert max_err(gpt_logits(payload), hf_logits(hf)) <= TOL


def test_hf_vocab_json_names_the_ids(tmp_path):
    hf = hf_gpt2(vocab_size=len(CHARS))
    hf.save_pretrained(tmp_path / "hf")
    (tmp_path / "hf" / "vocab.json").write_text(json.dumps({ch: i for i, ch in enumerate(CHARS)}))
    assert loaders.load(tmp_path / "hf")["metadata"]["vocab"] == CHARS


@pytest.mark.parametrize("change, words", [
    ({"activation_function": "relu"}, ["activation_function 'relu'", "gelu_new"]),
    ({"n_inner": 20}, ["n_inner"]),
    ({"scale_attn_by_inverse_layer_idx": True}, ["scale_attn_by_inverse_layer_idx"]),
    ({"model_type": "llama"}, ["model_type 'llama'", "gpt2"]),
])
def test_hf_config_it_cannot_compute_is_named(tmp_path, change, words):
    hf_gpt2().save_pretrained(tmp_path / "hf")
    cfg = json.loads((tmp_path / "hf" / "config.json").read_text())
    (tmp_path / "hf" / "config.json").write_text(json.dumps({**cfg, **change}))
    with pytest.raises(SheetnetError) as err:
        loaders.load(tmp_path / "hf", fmt="hf-gpt2")
    for w in words:
        assert w in str(err.value)


# ---------------------------------------------------------------- nanoGPT
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("compiled", [False, True])
def test_nanogpt_ckpt_matches_functional_forward(tmp_path, bias, compiled):
    model = random_gpt(seed=1, bias=bias)
    path = write_nanogpt(tmp_path / "out", model, compiled=compiled, buffers=not bias)
    payload = loaders.load(path)
    assert payload["metadata"]["source_format"] == "nanogpt"
    assert payload["config"]["bias"] is bias and payload["config"]["gelu"] == "erf"
    assert payload["metadata"]["vocab"] == CHARS
    assert payload["metadata"]["iter_num"] == 250
    assert not any(k.startswith("_orig_mod.") for k in payload["state_dict"])
    expected = functional_gpt(model.state_dict(), 2, "erf", IDS)
    assert max_err(gpt_logits(payload), expected) <= TOL


def test_nanogpt_meta_from_elsewhere_and_none(tmp_path):
    path = write_nanogpt(tmp_path / "out", random_gpt(), vocab=False)
    assert "vocab" not in loaders.load(path)["metadata"]
    meta = write_meta_pkl(tmp_path / "data_meta.pkl", chars=list("ABCDEFGHIJK"))
    assert loaders.load(path, meta=meta)["metadata"]["vocab"] == list("ABCDEFGHIJK")
    with pytest.raises(SheetnetError, match="does not exist"):
        loaders.load(path, meta=tmp_path / "nope.pkl")


def test_nanogpt_meta_under_data_dataset_as_sample_py_finds_it(tmp_path, monkeypatch):
    # nanoGPT's layout: out-shakespeare-char/ckpt.pt beside data/shakespeare_char/meta.pkl
    root = tmp_path / "nanoGPT"
    path = write_nanogpt(root / "out-shakespeare-char", random_gpt(), vocab=False)
    (root / "data" / "shakespeare_char").mkdir(parents=True)
    meta = write_meta_pkl(root / "data" / "shakespeare_char" / "meta.pkl", chars=list("ABCDEFGHIJK"))
    monkeypatch.chdir(tmp_path)  # not nanoGPT's root: found beside the out- folder
    md = loaders.load(path)["metadata"]
    assert md["vocab"] == list("ABCDEFGHIJK") and md["vocab_file"] == str(meta.resolve())
    other = tmp_path / "elsewhere" / "data" / "shakespeare_char"
    other.mkdir(parents=True)
    write_meta_pkl(other / "meta.pkl", chars=list("abcdefghijk"))
    monkeypatch.chdir(tmp_path / "elsewhere")  # sample.py reads data/<dataset> under the cwd first
    assert loaders.load(path)["metadata"]["vocab"] == list("abcdefghijk")
    write_meta_pkl(path.parent / "meta.pkl")  # one beside the checkpoint wins, and is not recorded
    md = loaders.load(path)["metadata"]
    assert md["vocab"] == CHARS and "vocab_file" not in md


def test_nanogpt_explicit_format_on_another_file(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "x.pt")
    with pytest.raises(SheetnetError, match="not a nanoGPT checkpoint.*weights"):
        loaders.load(tmp_path / "x.pt", fmt="nanogpt")


# ---------------------------------------------------------------- minGPT
def test_mingpt_chargpt_workdir_matches_functional_forward(tmp_path):
    model = random_gpt(seed=2, gelu="tanh", tied=False)
    folder = write_mingpt_workdir(tmp_path / "chargpt", model)
    write_meta_pkl(folder / "meta.pkl")
    expected = functional_gpt(model.state_dict(), 2, "tanh", IDS)
    for where in (folder, folder / "model.pt"):   # the folder, or model.pt with config.json beside
        payload = loaders.load(where)
        assert payload["metadata"]["source_format"] == "mingpt"
        assert payload["config"] | {"gelu": "tanh", "tied": False, "bias": True} == payload["config"]
        assert payload["metadata"]["vocab"] == CHARS
        assert max_err(gpt_logits(payload), expected) <= TOL


def test_mingpt_model_type_preset_gives_n_head(tmp_path):
    model = random_gpt(seed=5, gelu="tanh", tied=False, n_layer=3, n_head=3, n_embd=48)
    payload = loaders.load(write_mingpt_workdir(tmp_path / "nano", model, model_type="gpt-nano"))
    assert (payload["config"]["n_head"], payload["metadata"]["model_type"]) == (3, "gpt-nano")
    assert max_err(gpt_logits(payload), functional_gpt(model.state_dict(), 3, "tanh", IDS)) <= TOL


def test_mingpt_single_file_convention(tmp_path):
    model = random_gpt(seed=6, gelu="tanh", tied=False)
    state = dict(model.state_dict(), **mask_buffers(model))
    torch.save({"model": state, "config": {"n_head": 2, "block_size": 8}}, tmp_path / "m.pt")
    payload = loaders.load(tmp_path / "m.pt")
    assert payload["metadata"]["source_format"] == "mingpt"
    assert max_err(gpt_logits(payload), functional_gpt(model.state_dict(), 2, "tanh", IDS)) <= TOL


def test_mingpt_needs_its_config(tmp_path):
    model = random_gpt(gelu="tanh", tied=False)
    torch.save(model.state_dict(), tmp_path / "model.pt")
    with pytest.raises(SheetnetError, match="config.json beside it"):
        loaders.load(tmp_path / "model.pt")
    torch.save({"model": model.state_dict(), "config": {"block_size": 8}}, tmp_path / "m.pt")
    with pytest.raises(SheetnetError, match="n_head"):
        loaders.load(tmp_path / "m.pt")
    torch.save({"model": model.state_dict(), "config": {"n_head": 2, "n_layer": 5}}, tmp_path / "m.pt")
    with pytest.raises(SheetnetError, match="n_layer = 5 but the weights have 2"):
        loaders.load(tmp_path / "m.pt")


# ---------------------------------------------------------------- plain Sequential MLPs
EVERY_LAYER = [nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 4), nn.LeakyReLU(0.2), nn.GELU("tanh"),
               nn.Linear(4, 4, bias=False), nn.Tanh(), nn.Identity(), nn.Linear(4, 4), nn.GELU(),
               nn.Linear(4, 2), nn.Sigmoid()]


def ir_matches_torch(path, model: nn.Sequential, **opts) -> float:
    """Export (no recalculation), then the IR reference on random inputs against torch float64."""
    export(path, path.parent / "book.xlsx", ExportOptions(force=True, **opts))
    graph = lower(path, ExportOptions(**opts)).graph
    x = np.random.default_rng(0).normal(size=graph.shape("x")) * 2
    got = reference.evaluate(graph, inputs={"x": x})["y"]
    with torch.no_grad():
        want = model.double()(torch.as_tensor(x)).numpy()
    return float(np.abs(got - want).max())


def test_whole_sequential_exports_and_matches_torch(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(*EVERY_LAYER)
    torch.save(model, tmp_path / "seq.pt")
    payload = loaders.load(tmp_path / "seq.pt")
    assert payload["architecture"] == "mlp" and payload["metadata"]["source_format"] == "mlp-module"
    rebuilt = mlp_from_checkpoint(payload)
    assert [type(m) for m in rebuilt] == [type(m) for m in model]
    assert (rebuilt[3].negative_slope, rebuilt[4].approximate) == (0.2, "tanh")
    assert ir_matches_torch(tmp_path / "seq.pt", model) <= 1e-12
    # the allow-list was for that load only: a plain weights-only load still refuses the module
    assert not set(MODULE_CLASSES.values()) & set(torch.serialization.get_safe_globals())
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / "seq.pt", weights_only=True)


def test_state_dict_with_activations(tmp_path):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 6), nn.LeakyReLU(0.1),
                          nn.Dropout(0.5), nn.Linear(6, 2), nn.Sigmoid()).eval()
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    with pytest.raises(SheetnetError, match="--activations"):
        loaders.load(tmp_path / "sd.pt")
    with pytest.raises(SheetnetError, match="names 1, expected 2"):
        loaders.load(tmp_path / "sd.pt", activations="relu")
    acts = "tanh,leaky_relu:0.1,sigmoid"
    payload = loaders.load(tmp_path / "sd.pt", activations=acts)
    assert payload["metadata"]["source_format"] == "mlp-state-dict"
    assert [m["type"] for m in payload["config"]["layers"]] == [
        "linear", "tanh", "linear", "leaky_relu", "identity", "linear", "sigmoid"]
    assert ir_matches_torch(tmp_path / "sd.pt", model, activations=acts) <= 1e-12


def test_unsupported_layer_names_itself(tmp_path):
    torch.save(nn.Sequential(nn.Linear(4, 4), nn.Conv2d(1, 1, 3)), tmp_path / "conv.pt")
    res = invoke("export", tmp_path / "conv.pt", tmp_path / "o.xlsx")
    one_line_error(res, "layer Conv2d is not supported", "supported: Linear, ReLU")
    assert not (tmp_path / "o.xlsx").exists()
    torch.save(nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU())), tmp_path / "nested.pt")
    with pytest.raises(SheetnetError, match="layer Sequential at 1 is not supported"):
        loaders.load(tmp_path / "nested.pt")


def test_sheetnet_own_checkpoint_is_detected(examples):
    auto = loaders.load(examples / "sqrt_2x2.pt")
    assert auto["metadata"]["source_format"] == "sheetnet"
    assert auto["config"] == loaders.load(examples / "sqrt_2x2.pt", fmt="sheetnet")["config"]


# ---------------------------------------------------------------- detection and bad input
def test_unknown_content_and_format_are_named(tmp_path):
    torch.save({"encoder": {"w": torch.zeros(2)}, "step": 3}, tmp_path / "x.pt")
    with pytest.raises(SheetnetError, match="cannot tell the format.*encoder, step.*--format"):
        loaders.load(tmp_path / "x.pt")
    one_line_error(invoke("export", tmp_path / "x.pt", tmp_path / "o.xlsx", "--format", "onnx"),
                   "format 'onnx' is not supported", "nanogpt", "hf-gpt2", "mingpt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SheetnetError, match="without config.json"):
        loaders.load(tmp_path / "empty")


def test_every_torch_load_is_weights_only(tmp_path, examples, monkeypatch):
    calls = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **kw: calls.append(kw) or real(*a, **kw))
    model = random_gpt()
    write_nanogpt(tmp_path / "nano", model)
    write_mingpt_workdir(tmp_path / "min", random_gpt(gelu="tanh", tied=False))
    torch.save(nn.Sequential(nn.Linear(2, 2)), tmp_path / "seq.pt")
    calls.clear()
    for path in (tmp_path / "nano" / "ckpt.pt", tmp_path / "min", tmp_path / "seq.pt",
                 examples / "sqrt_2x2.pt"):
        loaders.load(path)
    assert len(calls) == 4 and all(kw.get("weights_only") is True for kw in calls)


# ---------------------------------------------------------------- pickles that try to run code
@pytest.mark.parametrize("fmt", [None, "nanogpt", "sheetnet", "mlp-module", "mingpt"])
def test_malicious_checkpoint_never_runs(tmp_path, fmt):
    assert is_live(tmp_path / "armed")
    marker = tmp_path / "ran"
    torch.save({"model": Payload(marker), "model_args": {}}, tmp_path / "evil.pt")
    with pytest.raises(SheetnetError, match="asks to run code.*builtins.exec.*refuses"):
        loaders.load(tmp_path / "evil.pt", fmt=fmt)
    assert not marker.exists()


def test_malicious_plain_pickle_and_hf_bin_never_run(tmp_path):
    marker = tmp_path / "ran"
    with open(tmp_path / "raw.pt", "wb") as f:   # not a torch zip: the weights-only unpickler decides
        pickle.dump({"model": Payload(marker)}, f, protocol=2)
    with pytest.raises(SheetnetError, match=r"asks to run code.*\bexec\b"):
        loaders.load(tmp_path / "raw.pt")
    hf_gpt2().config.to_json_file(tmp_path / "config.json")
    torch.save({"wte.weight": Payload(marker)}, tmp_path / "pytorch_model.bin")
    with pytest.raises(SheetnetError, match="asks to run code"):
        loaders.load(tmp_path)
    assert not marker.exists()


def test_malicious_meta_pkl_never_runs(tmp_path):
    assert is_live(tmp_path / "armed")
    marker = tmp_path / "ran"
    path = write_nanogpt(tmp_path / "out", random_gpt(), vocab=False)
    with open(tmp_path / "out" / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": 11, "itos": Payload(marker)}, f)
    res = invoke("export", path, tmp_path / "o.xlsx")
    one_line_error(res, "meta.pkl asks to run code", "builtins.exec")
    assert not marker.exists() and not (tmp_path / "o.xlsx").exists()


# ---------------------------------------------------------------- the architecture, as read
def _arch_case(tmp_path, fmt: str):
    # (path, load kwargs) of a small model in format ``fmt``
    if fmt == "mlp-module":
        seq = nn.Sequential(nn.Linear(3, 4, bias=False), nn.GELU(approximate="tanh"),
                            nn.Linear(4, 2), nn.LeakyReLU(0.2))
        torch.save(seq, tmp_path / "m.pt")
        return tmp_path / "m.pt", {}
    if fmt == "mlp-state-dict":   # an Embedding(8, 8) table, saved bare: read as a Linear
        torch.save({"0.weight": nn.Embedding(8, 8).weight.detach()}, tmp_path / "m.pt")
        return tmp_path / "m.pt", {}
    if fmt == "mlp-state-dict activations":
        seq = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
        torch.save(seq.state_dict(), tmp_path / "m.pt")
        return tmp_path / "m.pt", {"activations": "tanh"}
    if fmt == "nanogpt":
        return write_nanogpt(tmp_path / "out", random_gpt(seed=1, bias=False)), {}
    if fmt == "mingpt":
        return write_mingpt_workdir(tmp_path / "w", random_gpt(seed=2, gelu="tanh", tied=False)), {}
    if fmt == "hf-gpt2":
        hf_gpt2(n_layer=1).save_pretrained(tmp_path / "hf")
        return tmp_path / "hf", {}
    return EXAMPLES / fmt, {}


ARCH_LINES = [
    ("sqrt_2x2.pt", ["0: Linear 1 -> 2", "1: ReLU", "2: Linear 2 -> 2", "3: ReLU",
                     "4: Linear 2 -> 1"]),
    ("textnet.pt", ["embedding: 7 words x 2", "layer 1: Linear 2 -> 2, ReLU",
                    "layer 2: Linear 2 -> 2, ReLU", "output: Linear 2 -> 7 (one logit per word)"]),
    ("gpt.pt", ["token embedding: 64 x 32", "position embedding: 32 x 32",
                "blocks 0-1: LayerNorm, attention 2 heads x 16, LayerNorm, MLP 32 -> 128 -> 32 "
                "(GELU erf)", "final LayerNorm (eps 1e-05)", "head: tied to the token embedding"]),
    ("mlp-module", ["0: Linear 3 -> 4, no bias", "1: GELU (tanh)", "2: Linear 4 -> 2",
                    "3: LeakyReLU 0.2"]),
    ("mlp-state-dict", ["0: Linear 8 -> 8, no bias",
                        "(a bare state dict: every weight read as a Linear layer, activations "
                        "from --activations (none: one Linear))"]),
    ("mlp-state-dict activations", ["0: Linear 2 -> 3", "1: Tanh", "2: Linear 3 -> 1",
                                    "(a bare state dict: every weight read as a Linear layer, "
                                    "activations from --activations tanh)"]),
    ("nanogpt", ["token embedding: 11 x 8", "position embedding: 8 x 8",
                 "blocks 0-1: LayerNorm, attention 2 heads x 4, LayerNorm, MLP 8 -> 32 -> 8 "
                 "(GELU erf), no biases", "final LayerNorm (eps 1e-05)",
                 "head: tied to the token embedding", loaders.describe.ASSUMED["nanogpt"]]),
    ("mingpt", ["token embedding: 11 x 8", "position embedding: 8 x 8",
                "blocks 0-1: LayerNorm, attention 2 heads x 4, LayerNorm, MLP 8 -> 32 -> 8 "
                "(GELU tanh)", "final LayerNorm (eps 1e-05)", "head: Linear 8 -> 11, no bias",
                loaders.describe.ASSUMED["mingpt"]]),
    ("hf-gpt2", ["token embedding: 50 x 16", "position embedding: 16 x 16",
                 "block 0: LayerNorm, attention 2 heads x 8, LayerNorm, MLP 16 -> 64 -> 16 "
                 "(GELU tanh)", "final LayerNorm (eps 1e-05)", "head: tied to the token embedding",
                 loaders.describe.ASSUMED["hf-gpt2"]]),
]


@pytest.mark.parametrize("fmt, lines", ARCH_LINES, ids=[c[0] for c in ARCH_LINES])
def test_architecture_lines_say_what_was_read(tmp_path, fmt, lines):
    path, kwargs = _arch_case(tmp_path, fmt)
    assert architecture_lines(loaders.load(path, **kwargs)) == lines


def test_architecture_lines_name_a_bad_config_value():
    with pytest.raises(SheetnetError, match="sizes must be .* got 'abc'"):
        architecture_lines({"architecture": "mlp", "config": {"sizes": "abc"}})
