"""A Llama-family Hugging Face folder through the generic front end (a thin preset).

    model = transformers' own class from the checked config (loaders/hf_llama.py), its weights
    logits = lm_head(model.model(ids))       exported by torch.export like any nn.Module
    the workbook's inputs are the token ids; the output is the logits (T, vocab)

verify compares every placed node with the float64 run of the exported graph, and the logits
with the HF model's own forward in float64.  HF's RMSNorm and rotary upcast to float32 (meant
for half precision); in a float64 run that would be a downcast, so both runs keep those casts
at float64 (``_Float64Casts``; program_run._Recorder does the same for the graph).
"""
from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..errors import SheetnetError
from ..ir import graph as ir
from ..loaders.hf_llama import build_model
from .torch_export import capture_module
from .trace import Captured

DEFAULT_TOKENS = [1, 2, 3, 4]   # the ids written into the input cells when export is given none
HF_LOGITS = "hf.logits"          # the output's ref: the HF model's own forward


class Logits(nn.Module):
    """The causal LM as a function of token ids (1, T) -> logits (1, T, vocab): no cache, no
    output object; its parts keep HF's names (model.layers.0..., lm_head), the state-dict keys."""

    def __init__(self, lm: nn.Module):
        super().__init__()
        self.model, self.lm_head = lm.model, lm.lm_head

    def forward(self, ids):
        return self.lm_head(self.model(input_ids=ids, use_cache=False).last_hidden_state)


def lower_hf_llama(payload: dict, options=None) -> Captured:
    """Build the model from a loaders.hf_llama payload and capture it for the token ids
    ``options.tokens`` (DEFAULT_TOKENS when none).

    Raises:
        SheetnetError: a token id outside the vocabulary, a prompt instead of ids, or anything
            the front end refuses.
    """
    cfg = payload["config"]
    if getattr(options, "prompt", None) is not None:
        raise SheetnetError("a Llama-family workbook takes token ids (--tokens), not a prompt")
    tokens = list(getattr(options, "tokens", None) or DEFAULT_TOKENS)
    bad = [t for t in tokens if not 0 <= t < cfg["vocab_size"]]
    if bad:
        raise SheetnetError(f"token id {bad[0]} is outside the vocabulary (0 to "
                            f"{cfg['vocab_size'] - 1})")
    lm = build_model(cfg)
    lm.load_state_dict(payload["state_dict"], strict=not cfg["tie_word_embeddings"])
    if cfg["tie_word_embeddings"]:
        lm.tie_weights()
    model = Logits(lm).eval()
    ids = torch.tensor([tokens], dtype=torch.long)
    captured = capture_module(model, (ids,), options)
    graph = captured.graph
    _tied_source(graph, payload["state_dict"])
    graph.meta.update(summary=f"{cfg['model_type']} causal LM ({cfg['num_hidden_layers']} "
                      f"layers, {cfg['num_attention_heads']} heads, {cfg['num_key_value_heads']} "
                      "key/value heads), captured by torch.export",
                      capture_options={"tokens": tokens})
    graph.outputs[0].ref = HF_LOGITS
    graph.outputs[0].title = "logits (T, vocab): the model's next-token scores at each position"

    def trace(_model, _graph, leaves):
        seen = captured.trace(model, graph, leaves)
        seen[HF_LOGITS] = hf_logits(lm, leaves["ids"])
        return seen
    return Captured(model, graph, trace)


def _tied_source(graph, state: dict) -> None:
    # torch.export names a tied weight once, maybe "lm_head.weight"; the folder holds it as the
    # embedding (a tied head is not saved), which import and the manifest's checks know it by
    for node in graph.of_type(ir.Param):
        if node.op.source not in state and node.op.source == "lm_head.weight":
            node.op = replace(node.op, source="model.embed_tokens.weight")


def hf_logits(lm: nn.Module, ids) -> np.ndarray:
    """The HF model's own forward in float64 on the ids (as the workbook holds them): (T, V)."""
    model = copy.deepcopy(lm).double().eval()
    ids = torch.as_tensor(np.asarray(ids, dtype=np.float64)).round().long().reshape(1, -1)
    with torch.no_grad(), _Float64Casts():
        out = model(input_ids=ids, use_cache=False).logits
    return out[0].numpy()


class _Float64Casts(TorchFunctionMode):
    # .float() and .to(torch.float32) become float64: HF upcasts for half precision
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func is torch.Tensor.float:
            return args[0].double()
        args = tuple(torch.float64 if a is torch.float32 else a for a in args)
        if kwargs.get("dtype") is torch.float32:
            kwargs["dtype"] = torch.float64
        return func(*args, **kwargs)
