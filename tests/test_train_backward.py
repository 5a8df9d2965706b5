"""Reverse-mode differentiation on the IR (capture/backward.py and every op's ``derivative``):
the gradients the added nodes compute (NumPy reference of the IR) equal torch.autograd's in
float64, op by op from each unit's example, and through LayerNorm's steps and small MLPs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from sheetnet.capture.backward import backward
from sheetnet.errors import SheetnetError
from sheetnet.ir import graph as ir
from sheetnet.ir.reference import evaluate
from sheetnet.ops import REGISTRY

# Normalize's and RowVar's examples hand torch the whole LayerNorm (their mean and var are not
# torch's inputs): they are checked together below, as LayerNorm's steps
TRAINABLE = [c for c in REGISTRY.values() if c.derivative is not None
             and c.__name__ not in ("Normalize", "RowVar")]
RNG = np.random.default_rng(5)


def _torch_grads(example, names):
    tensors = [torch.tensor(np.asarray(example.inputs[n], dtype=np.float64), requires_grad=True)
               for n in names]
    out = example.torch(torch, *tensors)
    seed = torch.tensor(RNG.normal(size=tuple(out.shape)))
    got = torch.autograd.grad(out, tensors, seed, allow_unused=True)
    return out, seed, {n: g for n, g in zip(names, got)}


def _graph_grads(op, inputs: dict, trainable: list[str], seed: np.ndarray):
    # the inputs as weights (trainable) or fixed cells, the op, d(loss)/d(out) = seed
    g = ir.Graph()
    for name, value in inputs.items():
        leaf = ir.Param(np.asarray(value, dtype=np.float64)) if name in trainable else \
            ir.Const(np.asarray(value, dtype=np.float64))
        g.add(name, leaf, np.shape(value), "S")
    out = op.reference({k: np.asarray(v, dtype=np.float64) for k, v in inputs.items()})
    g.add("out", op, out.shape, "S")
    g.add("seed", ir.Const(seed), seed.shape, "S")
    grads = backward(g, ["out"], ("out", "seed"), trainable, sheet="S", prefix="d.")
    values = evaluate(g)
    return {p: values[n] for p, n in grads.items()}


@pytest.mark.parametrize("cls", TRAINABLE, ids=[c.__name__ for c in TRAINABLE])
def test_each_derivative_matches_autograd(cls):
    example = cls.example()
    names = list(example.inputs)
    _, seed, want = _torch_grads(example, names)
    trainable = [n for n in names if want[n] is not None]  # ids do not carry a gradient
    assert trainable, "the example has an input to differentiate"
    got = _graph_grads(example.op, example.inputs, trainable, seed.numpy())
    for name in trainable:
        np.testing.assert_allclose(got[name], want[name].numpy(), rtol=1e-12, atol=1e-13,
                                   err_msg=f"d/d{name}")


def _layer_norm_graph(x, gain, bias):
    g = ir.Graph()
    for name, v in (("x", x), ("gain", gain), ("bias", bias)):
        g.add(name, ir.Param(v), v.shape, "S")
    n, f = x.shape
    g.add("mean", ir.RowMean("x"), (n, 1), "S")
    g.add("var", ir.RowVar("x", "mean"), (n, 1), "S")
    g.add("norm", ir.Normalize("x", "mean", "var", 1e-5), (n, f), "S")
    g.add("out", ir.ScaleShift("norm", "gain", "bias"), (n, f), "S")
    return g


def test_layer_norm_steps_add_up_to_torch_layer_norm():
    x, gain, bias = RNG.normal(size=(3, 5)), RNG.normal(size=(1, 5)), RNG.normal(size=(1, 5))
    seed = RNG.normal(size=(3, 5))
    g = _layer_norm_graph(x, gain, bias)
    g.add("seed", ir.Const(seed), seed.shape, "S")
    grads = backward(g, ["mean", "var", "norm", "out"], ("out", "seed"), ["x", "gain", "bias"],
                     sheet="S", prefix="d.")
    values = evaluate(g)
    t = [torch.tensor(v, requires_grad=True) for v in (x, gain, bias)]
    out = torch.nn.functional.layer_norm(t[0], (5,), t[1][0], t[2][0], 1e-5)
    want = torch.autograd.grad(out, t, torch.tensor(seed))
    for name, w in zip(("x", "gain", "bias"), want):
        np.testing.assert_allclose(values[grads[name]], w.numpy(), rtol=1e-10, atol=1e-12)


ACTS = {"relu": (ir.Relu, torch.relu), "tanh": (ir.Tanh, torch.tanh),
        "sigmoid": (ir.Sigmoid, torch.sigmoid),
        "gelu": (ir.Gelu, torch.nn.functional.gelu)}


@settings(max_examples=25, deadline=None)
@given(widths=st.lists(st.integers(1, 4), min_size=2, max_size=4),
       acts=st.lists(st.sampled_from(sorted(ACTS)), min_size=3, max_size=3),
       n=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_random_mlp_weight_gradients_match_autograd(widths, acts, n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, widths[0]))
    g = ir.Graph()
    g.add("x", ir.Const(x), x.shape, "S")
    ws = [(rng.normal(size=(o, i)), rng.normal(size=(o, 1))) for i, o in zip(widths, widths[1:])]
    h, nodes, params = "x", [], []
    for k, (w, b) in enumerate(ws):
        params += [g.add(f"W{k}", ir.Param(w), w.shape, "S"), g.add(f"b{k}", ir.Param(b), b.shape,
                                                                    "S")]
        h = g.add(f"z{k}", ir.Linear(h, f"W{k}", f"b{k}"), (n, w.shape[0]), "S")
        nodes.append(h)
        if k < len(ws) - 1:
            h = g.add(f"a{k}", ACTS[acts[k]][0](h), (n, w.shape[0]), "S")
            nodes.append(h)
    target = rng.normal(size=(n, widths[-1]))
    g.add("y", ir.Const(target), target.shape, "S")
    g.add("dpred", ir.MseGrad(h, "y"), target.shape, "S")
    grads = backward(g, nodes, (h, "dpred"), params, sheet="S", prefix="d.")
    values = evaluate(g)
    tw = [torch.tensor(v, requires_grad=True) for pair in ws for v in pair]
    a = torch.tensor(x)
    for k in range(len(ws)):
        a = a @ tw[2 * k].T + tw[2 * k + 1][:, 0]
        if k < len(ws) - 1:
            a = ACTS[acts[k]][1](a)
    loss = torch.nn.functional.mse_loss(a, torch.tensor(target))
    want = torch.autograd.grad(loss, tw)
    for p, w in zip(params, want):
        np.testing.assert_allclose(values[grads[p]], w.numpy(), rtol=1e-10, atol=1e-13)


def test_an_op_without_derivative_is_named():
    g = ir.Graph()
    g.add("w", ir.Param(np.ones((1, 3))), (1, 3), "S")
    g.add("out", ir.Sqrt("w"), (1, 3), "S")
    g.add("seed", ir.Const(np.ones((1, 3))), (1, 3), "S")
    with pytest.raises(SheetnetError, match="op Sqrt .* has no derivative yet"):
        backward(g, ["out"], ("out", "seed"), ["w"], sheet="S", prefix="d.")
