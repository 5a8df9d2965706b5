"""Attention-era lowerings of the torch.export front end, and a nanoGPT-shaped model written as
the user's own class (tests/user_gpt.py) exported through sheetnet.export.

Every case is captured, written, recalculated by LibreOffice and compared cell by cell with the
exported graph's float64 run (nodes with a ref; per-head nodes through derived refs), helpers
with the IR reference, and the output with the module's own float64 forward."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import sheetnet
from sheetnet import layout
from sheetnet.capture.torch_export import capture_module
from sheetnet.emit.book import build_book
from sheetnet.engines.base import Block
from sheetnet.ir import graph as ir
from sheetnet.ir.reference import evaluate
from sheetnet.writer import write_book
from user_gpt import UserGPT

TOL = 1e-9


# --- small modules, one lowering (or pattern) each ------------------------------------------
class Fn(nn.Module):
    """forward(x) = fn(self, x), with a (F,) weight ``w`` and a (T, T) tril buffer at hand."""

    def __init__(self, fn, width=8, t=4):
        super().__init__()
        self.fn = fn
        self.w = nn.Parameter(torch.linspace(0.5, 1.5, width))
        self.proj = nn.Linear(width, 3 * width)
        self.register_buffer("tril", torch.tril(torch.ones(t, t)))
        self.register_buffer("causal", torch.tril(torch.ones(t, t)).bool())
        self.register_buffer("inv_freq", 1.0 / (100 ** (torch.arange(0, 4, 2).float() / 4)))

    def forward(self, x):
        return self.fn(self, x)


def _heads(m, x, n=2):
    # (1, T, 8) -> q, k, v (1, n, T, 8 // n) by split + view + transpose, as nanoGPT does
    t = x.shape[1]
    q, k, v = m.proj(x).split(8, dim=-1)
    return [y.view(1, t, n, 8 // n).transpose(1, 2) for y in (q, k, v)]


def _rope(m, x):
    # Llama's rotary embedding on 2 heads of 4: cos / sin computed from a buffer (folded)
    q, k, _ = _heads(m, x)
    t = torch.arange(x.shape[1]).float()
    freqs = torch.outer(t, m.inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]

    def rotate_half(y):
        return torch.cat((-y[..., 2:], y[..., :2]), dim=-1)
    q = q * cos + rotate_half(q) * sin
    return F.scaled_dot_product_attention(q, k * cos + rotate_half(k) * sin, q, is_causal=True)


def _gqa(m, x, repeat):
    # 4 query heads of 2, 2 key/value heads repeated: enable_gqa, expand+reshape, interleave
    t = x.shape[1]
    q = m.proj(x)[..., :8].view(1, t, 4, 2).transpose(1, 2)
    k, v = (m.proj(x)[..., a:a + 4].view(1, t, 2, 2).transpose(1, 2) for a in (8, 16))
    if repeat == "gqa":
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    if repeat == "expand":
        k, v = (y[:, :, None].expand(1, 2, 2, t, 2).reshape(1, 4, t, 2) for y in (k, v))
    else:
        k, v = (y.repeat_interleave(2, dim=1) for y in (k, v))
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


CASES = {
    "rms_norm": lambda m, x: F.rms_norm(x, (8,), m.w, eps=1e-5),
    "rms by hand": lambda m, x: m.w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)),
    "pow exp log sqrt": lambda m, x: (torch.log(torch.exp(x) + 1) + torch.sqrt(x * x + 1)
                                      + x.pow(3) * torch.rsqrt(x * x + 2)),
    "cat last and first": lambda m, x: torch.cat([torch.cat([x, -x], -1), m.proj(x)[..., :16]],
                                                 1),
    "split chunk slice select": lambda m, x: (x.chunk(2, -1)[1] + m.proj(x).split([4, 20], -1)[0]
                                              + x[:, 1:3, 2:6].sum(1, keepdim=True)
                                              + x.select(1, 0)[:, None, 2:6]),
    "unsqueeze expand": lambda m, x: x.unsqueeze(2).expand(1, x.shape[1], 2, 8)
        .reshape(1, x.shape[1], 16) * m.proj(x)[..., :16],
    "amax": lambda m, x: x - torch.amax(x, dim=-1, keepdim=True),
    "where finite": lambda m, x: torch.where(m.tril[:, :, None].expand(4, 4, 2)
                                             .reshape(4, 8).bool(), x, -2.5),
    "masked_fill causal": lambda m, x: torch.softmax((x @ x.transpose(-2, -1))
                                                     .masked_fill(m.tril == 0, -math.inf), -1),
    "sdpa causal": lambda m, x: F.scaled_dot_product_attention(*_heads(m, x), is_causal=True),
    "sdpa no mask, scale": lambda m, x: F.scaled_dot_product_attention(*_heads(m, x), scale=0.3),
    "sdpa bool mask": lambda m, x: F.scaled_dot_product_attention(
        *_heads(m, x), attn_mask=m.tril.bool()),
    "sdpa bool buffer mask": lambda m, x: F.scaled_dot_product_attention(
        *_heads(m, x), attn_mask=m.causal),
    "masked_fill by a buffer": lambda m, x: torch.softmax(
        (x[0] @ x[0].t()).masked_fill(~m.causal, -math.inf), -1),
    "sdpa additive mask": lambda m, x: F.scaled_dot_product_attention(
        *_heads(m, x), attn_mask=torch.zeros(4, 4).masked_fill(m.tril == 0, -math.inf)),
    "interleaved heads": lambda m, x: F.scaled_dot_product_attention(   # no rectangles:
        *[y.reshape(1, 4, 4, 2).permute(0, 3, 1, 2) for y in m.proj(x).split(8, -1)],  # gathers
        is_causal=True),
    "gqa enable_gqa": lambda m, x: _gqa(m, x, "gqa"),
    "gqa expand reshape": lambda m, x: _gqa(m, x, "expand"),
    "gqa repeat_interleave": lambda m, x: _gqa(m, x, "interleave"),
    "manual attention": lambda m, x: (lambda q, k, v: torch.softmax(
        (q @ k.transpose(-2, -1) / 3.0).masked_fill(m.tril == 0, -math.inf), -1) @ v)(
        *_heads(m, x)).transpose(1, 2).reshape(1, 4, 8),
    "manual unfused": lambda m, x: (lambda q, k, v: torch.softmax((torch.softmax(
        q @ k.transpose(-2, -1), -1) * 3).masked_fill(m.tril == 0, -math.inf), -1) @ v)(
        *_heads(m, x)),
    "rotary": _rope,
}


def _recalculated(engine, tmp_path, model, inputs):
    cap = capture_module(model, inputs)
    g, plan = cap.graph, layout.plan(cap.graph)
    book = tmp_path / "model.xlsx"
    write_book(build_book(g, plan), book)
    names = [n for n, node in g.nodes.items() if not isinstance(node.op, ir.View)]
    regions = [plan.regions[n] for n in names]
    got = engine.recalculate(book, [Block(r.sheet, r.row, r.col, r.nrows, r.ncols)
                                    for r in regions])
    return cap, dict(zip(names, got))


def _number(v) -> float:
    return -math.inf if v in ("", None) else float(v)   # a masked score is a blank cell


@pytest.mark.parametrize("case", CASES)
def test_lowering_matches_float64_in_libreoffice(engine, tmp_path, case):
    torch.manual_seed(0)
    model, x = Fn(CASES[case]).eval(), (torch.randn(1, 4, 8),)
    cap, got = _recalculated(engine, tmp_path, model, x)
    g = cap.graph
    traced = cap.trace(cap.model, g, {n.name: n.op.default for n in g.inputs})
    ref = evaluate(g)
    wrong = {}
    for name, cells in got.items():
        node = g.nodes[name]
        want = (traced[node.ref] if node.ref else ref[name]).reshape(node.shape)
        have = np.vectorize(_number, otypes=[float])(cells)
        with np.errstate(invalid="ignore"):   # -inf - -inf: a masked score on both sides
            err = np.where(np.isneginf(want) & np.isneginf(have), 0, np.abs(have - want))
        if not np.nanmax(np.where(np.isnan(err), np.inf, err), initial=0) <= TOL:
            wrong[name] = float(np.nanmax(err))
    assert not wrong, wrong
    with torch.no_grad():   # the trace is the module: its output is the module's float64 forward
        want = copy.deepcopy(model).double()(x[0].double())
    np.testing.assert_allclose(np.asarray(traced[g.outputs[0].ref]).ravel(),
                               want.numpy().ravel(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("case", ["sdpa causal", "gqa expand reshape", "gqa repeat_interleave",
                                  "manual attention", "rotary"])
def test_heads_are_rectangles_of_their_projection_not_copies(case):
    # view / transpose / split / repeat own no cells: each head reads its projection's columns,
    # and the heads side by side are (T, H*D) as a model's "y.transpose(1, 2).view(B, T, C)"
    def merged(m, x):
        y = CASES[case](m, x)
        return y if y.dim() == 3 else y.transpose(1, 2).reshape(1, 4, -1)
    g = capture_module(Fn(merged).eval(), (torch.randn(1, 4, 8),)).graph
    assert not g.of_type(ir.Gather, ir.Reshape), [n.name for n in g.of_type(ir.Gather)]
    assert g.of_type(ir.View)


def test_folded_constants_are_const_cells_that_say_so():
    g = capture_module(Fn(_rope).eval(), (torch.randn(1, 4, 8),)).graph
    tables = [n for n in g.of_type(ir.Const) if n.title.startswith("rotary")]
    assert len(tables) == 2 and all("constant, computed once with torch" in n.title
                                    for n in tables)
    assert len(g.of_type(ir.Rotary)) == 2 and not g.of_type(ir.Negate, ir.Times, ir.StackRows)


def test_scale_and_causal_mask_fold_into_the_scores():
    # q @ k^T * scale, masked_fill(tril == 0, -inf): no (T, T) block of its own per step
    g = capture_module(Fn(CASES["manual attention"]).eval(), (torch.randn(1, 4, 8),)).graph
    scores = g.of_type(ir.ScaledScores)
    assert len(scores) == 2 and all(n.op.causal and n.op.scale == 1 / 3 for n in scores)
    assert not g.of_type(ir.CausalMask, ir.Times, ir.Over)


# --- the user's own nanoGPT-shaped class ------------------------------------------------------
@pytest.mark.parametrize("manual", [False, True], ids=["sdpa", "manual attention"])
def test_user_gpt_exports_and_verifies_in_libreoffice(engine, tmp_path, manual):
    torch.manual_seed(3)
    model, ids = UserGPT(manual=manual).eval(), torch.tensor([[1, 5, 3, 7, 2, 19]])
    result = sheetnet.export(model, tmp_path / "gpt.xlsx", example_inputs=(ids,))
    report = sheetnet.verify(result.path, model, example_inputs=(ids,), engine=engine)
    assert report.ok, report.table()
    compared = {r.name for r in report.compared}
    assert "output" in compared and any(".probs1" in n for n in compared)
    assert report.max_abs_err <= TOL
    # the output verify compared is the module's own float64 forward
    with torch.no_grad():
        want = copy.deepcopy(model).double()(ids)[0].numpy()
    cap = capture_module(model, (ids,))
    traced = cap.trace(cap.model, cap.graph, {"idx": ids.reshape(-1, 1).double().numpy()})
    np.testing.assert_allclose(traced[cap.graph.outputs[0].ref], want, rtol=0, atol=1e-12)


def test_manual_attention_costs_no_more_cells_than_sdpa():
    torch.manual_seed(3)
    ids = torch.tensor([[1, 5, 3, 7, 2, 19]])
    counts = []
    for manual in (False, True):
        g = capture_module(UserGPT(manual=manual).eval(), (ids,)).graph
        counts.append(sum(math.prod(n.shape) for n in g.nodes.values()
                          if not isinstance(n.op, (*ir.LEAF_TYPES, ir.View))))
    assert counts[0] == counts[1]


# --- refusals of the attention-era lowerings: one line naming the op and the module ----------
def _attn(**kw):
    return lambda m, x: F.scaled_dot_product_attention(*_heads(m, x), **kw)


class Masked(Fn):
    """Fn with its mask buffers: ``band`` (a window of 2: not causal), ``minus_one`` (an
    additive mask that is neither 0 nor -inf)."""

    def __init__(self, fn):
        super().__init__(fn)
        self.register_buffer("band", (torch.tril(torch.ones(4, 4))
                                      - torch.tril(torch.ones(4, 4), -2)).bool())
        self.register_buffer("minus_one", torch.full((4, 4), -1.0))


REFUSED = [
    ("sdpa with dropout", _attn(dropout_p=0.5, is_causal=True), "with dropout_p=0.5"),
    ("sdpa with a mask from the input", lambda m, x: F.scaled_dot_product_attention(
        *_heads(m, x), attn_mask=x[0, :, :4]), "attention mask computed from the input"),
    ("sdpa with a banded mask", lambda m, x: F.scaled_dot_product_attention(
        *_heads(m, x), attn_mask=m.band), "attention mask that is not causal"),
    ("sdpa with an additive mask of other values", lambda m, x: F.scaled_dot_product_attention(
        *_heads(m, x), attn_mask=m.minus_one), "additive mask other than 0 / -inf"),
    ("sdpa on a batch of two", lambda m, x: F.scaled_dot_product_attention(
        *[y.expand(2, -1, -1, -1) for y in _heads(m, x)], is_causal=True), "batch of one"),
    ("masked scores scaled", lambda m, x: (lambda q, k, v: torch.softmax(torch.softmax(
        q @ k.transpose(-2, -1), -1).masked_fill(m.tril == 0, -math.inf) * 3, -1) @ v)(
        *_heads(m, x)), "scales masked scores"),
    ("-inf off the causal pattern, per head", lambda m, x: torch.softmax(
        (x @ x.transpose(-2, -1)).masked_fill(m.tril == 1, -math.inf), -1),
     "other than the future"),
    ("-inf off the causal pattern", lambda m, x: torch.softmax(
        (x[0] @ x[0].t()).masked_fill(m.band, -math.inf), -1), "outside the causal pattern"),
    ("a mask from the input", lambda m, x: x.masked_fill(x.to(torch.bool), 1.0),
     "casts to torch.bool"),
    ("a tensor power", lambda m, x: x.pow(m.proj(x)[..., :8]), "tensor power"),
    ("amax over two dims", lambda m, x: x.amax(dim=(1, 2)), "only the last dim"),
    ("rms_norm over two dims", lambda m, x: F.rms_norm(x, (4, 8)), "only the last dim"),
    ("cat along a middle dim", lambda m, x: torch.cat([x.view(1, 4, 2, 4)] * 2, 2),
     "along dim 2"),
    ("an integer cast of a computed tensor", lambda m, x: x.long().float() * x,
     "casts to torch.int64"),
]


@pytest.mark.parametrize("why, fn, words", REFUSED, ids=[r[0] for r in REFUSED])
def test_refusals_name_the_op_and_the_module(why, fn, words):
    model = nn.Sequential(nn.Identity(), Masked(fn))   # the module path: "1"
    with pytest.raises(sheetnet.SheetnetError) as info:
        capture_module(model.eval(), (torch.randn(1, 4, 8),))
    message = str(info.value)
    assert "\n" not in message and words in message, message
    assert message.startswith("aten.") and " at 1 " in message, message
