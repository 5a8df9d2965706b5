"""Llama-family Hugging Face folders (llama, qwen2, mistral): tiny random configs built with
transformers (hidden 32, 2 layers, 4 query heads and 2 key/value heads, rotary, SwiGLU, RMSNorm;
tied and untied heads), saved with save_pretrained, exported with `sheetnet export FOLDER` and
verified with `sheetnet verify` in LibreOffice: every placed tensor against the float64 run of
the exported graph, the logits against the HF model's own float64 forward, within 1e-9.  Then
one test per refusal."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM)

import sheetnet
from cli_helpers import invoke, one_line_error
from sheetnet.capture.hf_llama import hf_logits
from sheetnet.errors import SheetnetError
from sheetnet.ir import graph as ir
from sheetnet.pipeline import lower
from sheetnet.options import ExportOptions

TOL = 1e-9
FAMILIES = {"llama": (LlamaConfig, LlamaForCausalLM), "qwen2": (Qwen2Config, Qwen2ForCausalLM),
            "mistral": (MistralConfig, MistralForCausalLM)}
TINY = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=40, max_position_embeddings=64, rms_norm_eps=1e-5)
TOKENS = [3, 17, 0, 39, 8, 8]


def save_tiny(folder, family: str, tied: bool, seed: int = 0, **changes):
    """A random tiny model of ``family`` saved with save_pretrained; its weights moved off
    HF's small init (std 0.02) so that every layer changes the logits visibly."""
    config_cls, model_cls = FAMILIES[family]
    torch.manual_seed(seed)
    model = model_cls(config_cls(**{**TINY, "tie_word_embeddings": tied, **changes})).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    model.save_pretrained(folder)
    return model


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
@pytest.mark.parametrize("family", FAMILIES)
def test_export_and_verify_match_hf_in_libreoffice(engine, tmp_path, family, tied):
    model = save_tiny(tmp_path / "hf", family, tied)
    book = tmp_path / "model.xlsx"
    res = invoke("export", tmp_path / "hf", book, "--tokens", ",".join(map(str, TOKENS)))
    assert res.exit_code == 0, res.output
    report = sheetnet.verify(book, tmp_path / "hf", engine=engine)
    assert report.ok and report.max_abs_err <= TOL, report.table()
    rows = {r.name: r for r in report.compared}
    assert rows["output"].against == "torch" and rows["output"].cells == len(TOKENS) * 40
    # every tensor with formulas was compared: the per-head scores, probabilities and heads too
    graph = lower(tmp_path / "hf", ExportOptions(tokens=TOKENS)).graph
    computed = [n.name for n in graph.nodes.values()
                if not isinstance(n.op, (*ir.LEAF_TYPES, ir.View))]
    assert set(computed) <= set(rows)
    assert sum(isinstance(graph.nodes[n].op, ir.CausalScores) for n in computed) == 2 * 4
    assert len(graph.of_type(ir.Rotary)) == 2 * 2          # q and k of each layer
    biases = [n for n in graph.of_type(ir.Param) if n.op.source.endswith("q_proj.bias")]
    assert len(biases) == (2 if family == "qwen2" else 0)
    assert ("lm_head.weight" in {n.op.source for n in graph.of_type(ir.Param)}) is not tied
    # the logits the workbook computed are HF's own float64 forward (not only the graph's run)
    want = hf_logits(model, np.array(TOKENS, dtype=float).reshape(-1, 1))
    with torch.no_grad():
        f32 = model(torch.tensor([TOKENS])).logits[0].numpy()
    assert np.abs(want - f32).max() < 1e-4 and np.abs(want - f32).max() > 0   # float64, really
    assert rows["output"].max_abs_err <= TOL


def test_array_formulas_verify_too(engine, tmp_path):
    # --style arrays: MMULT scores and elementwise ranges; rotary and gathers stay per cell
    save_tiny(tmp_path / "hf", "qwen2", tied=True, seed=2)
    book = tmp_path / "model.xlsx"
    res = invoke("export", tmp_path / "hf", book, "--tokens", "4,5,6", "--style", "arrays")
    assert res.exit_code == 0 and "style arrays" in res.output, res.output
    report = sheetnet.verify(book, tmp_path / "hf", engine=engine)
    assert report.ok and report.max_abs_err <= TOL, report.table()


def test_typed_token_ids_recompute_to_hf(engine, tmp_path):
    # the ids are the workbook's input cells: typed ids give HF's logits for those ids
    model = save_tiny(tmp_path / "hf", "llama", tied=False)
    book = tmp_path / "model.xlsx"
    sheetnet.export(tmp_path / "hf", book, tokens=TOKENS)
    typed = [5, 6, 7, 1, 2, 30]
    out = sheetnet.run(book, inputs=typed, engine=engine)
    got = np.asarray(out["outputs"], dtype=float)
    want = hf_logits(model, np.array(typed, dtype=float).reshape(-1, 1))
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=0, atol=TOL)
    before = hf_logits(model, np.array(TOKENS, dtype=float).reshape(-1, 1))
    assert np.abs(want - before).max() > 0.1   # the typed ids mattered


# --- refusals: one line, nothing written ------------------------------------------------------
def _edit_config(folder, **changes):
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(changes)
    (folder / "config.json").write_text(json.dumps(cfg))


def _edit_weights(folder, drop=None, add=None, reshape=None):
    state = load_file(folder / "model.safetensors")
    if drop:
        del state[drop]
    if add:
        state[add] = torch.zeros(3)
    if reshape:
        state[reshape] = state[reshape][:-1].contiguous()
    save_file(state, folder / "model.safetensors")


REFUSALS = [
    ("unsupported model_type", lambda f: _edit_config(f, model_type="phi"),
     ["model_type 'phi' is not supported", "llama", "qwen2", "mistral"]),
    ("heads that do not divide", lambda f: _edit_config(f, num_key_value_heads=3),
     ["num_key_value_heads 3 does not divide num_attention_heads 4"]),
    ("a size that is not a whole number", lambda f: _edit_config(f, hidden_size=32.5),
     ["hidden_size must be an integer"]),
    ("scaled rope", lambda f: _edit_config(f, rope_parameters={"rope_type": "yarn",
                                                               "rope_theta": 1e4}),
     ["rope type 'yarn' is not supported"]),
    ("an activation the front end has not", lambda f: _edit_config(f, hidden_act="swish_x"),
     ["hidden_act must be one of"]),
    ("a huge model", lambda f: _edit_config(f, vocab_size=900_000, hidden_size=4096),
     ["weights; sheetnet builds at most"]),
    ("a missing weight", lambda f: _edit_weights(f, drop="model.layers.1.mlp.up_proj.weight"),
     ["weight model.layers.1.mlp.up_proj.weight (64, 32) is missing"]),
    ("an unexpected weight", lambda f: _edit_weights(f, add="model.layers.0.self_attn.q_norm"),
     ["weight model.layers.0.self_attn.q_norm is not part of a llama model"]),
    ("a misshapen weight", lambda f: _edit_weights(f, reshape="model.norm.weight"),
     ["weight model.norm.weight has shape (31,); config.json makes it (32,)"]),
]


@pytest.mark.parametrize("why, damage, words", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_are_one_line_and_write_nothing(tmp_path, why, damage, words):
    save_tiny(tmp_path / "hf", "llama", tied=False)
    damage(tmp_path / "hf")
    res = invoke("export", tmp_path / "hf", tmp_path / "out.xlsx", "--tokens", "1,2")
    one_line_error(res, *words)
    assert not (tmp_path / "out.xlsx").exists()


def test_a_token_outside_the_vocabulary_is_refused(tmp_path):
    save_tiny(tmp_path / "hf", "qwen2", tied=True)
    res = invoke("export", tmp_path / "hf", tmp_path / "out.xlsx", "--tokens", "1,40")
    one_line_error(res, "token id 40 is outside the vocabulary (0 to 39)")
    assert not (tmp_path / "out.xlsx").exists()


def test_a_sliding_window_shorter_than_the_positions_is_refused(tmp_path):
    # Mistral's banded mask is no causal mask: named in one line, at the attention's module
    save_tiny(tmp_path / "hf", "mistral", tied=False, sliding_window=2)
    res = invoke("export", tmp_path / "hf", tmp_path / "out.xlsx", "--tokens", "1,2,3,4")
    one_line_error(res, "aten.scaled_dot_product_attention at model.layers.0.self_attn",
                   "not causal")
    assert not (tmp_path / "out.xlsx").exists()


def test_without_transformers_one_line_says_how_to_get_it(tmp_path, monkeypatch):
    save_tiny(tmp_path / "hf", "mistral", tied=False)
    monkeypatch.setitem(sys.modules, "transformers", None)   # import transformers fails
    with pytest.raises(SheetnetError, match=r"^Llama-family folders .* pip install "
                                            r"'sheetnet\[hf\]'$"):
        sheetnet.export(tmp_path / "hf", tmp_path / "out.xlsx", tokens=[1])
    res = invoke("export", tmp_path / "hf", tmp_path / "out.xlsx", "--tokens", "1")
    one_line_error(res, "pip install 'sheetnet[hf]'")
    assert not (tmp_path / "out.xlsx").exists()


def test_remote_code_is_never_run(tmp_path):
    # an auto_map naming code in the folder is ignored: transformers' own class is built
    save_tiny(tmp_path / "hf", "llama", tied=False)
    (tmp_path / "hf" / "modeling_evil.py").write_text(
        f"open({str(tmp_path / 'ran')!r}, 'w').write('ran')\n")
    _edit_config(tmp_path / "hf", auto_map={"AutoModelForCausalLM": "modeling_evil.Evil"},
                 trust_remote_code=True)
    sheetnet.export(tmp_path / "hf", tmp_path / "out.xlsx", tokens=[1, 2])
    assert (tmp_path / "out.xlsx").exists() and not (tmp_path / "ran").exists()
