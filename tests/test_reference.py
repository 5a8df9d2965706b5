"""The IR's NumPy reference against PyTorch in float64, op by op and for whole captured MLPs."""
import numpy as np
import pytest
import torch
from torch import nn

from sheetnet.capture.families import hooked_run
from sheetnet.capture.mlp import capture_mlp
from sheetnet.capture.sqrt import breakpoints
from sheetnet.ir import graph as ir
from sheetnet.ir.reference import evaluate

RNG = np.random.default_rng(0)
X = RNG.normal(size=(4, 3)) * 3  # (N, F)

UNARY = [
    (ir.Relu, {}, lambda t: torch.relu(t)),
    (ir.Tanh, {}, torch.tanh),
    (ir.Sigmoid, {}, torch.sigmoid),
    (ir.Gelu, {"form": "erf"}, lambda t: nn.functional.gelu(t)),
    (ir.Gelu, {"form": "tanh"}, lambda t: nn.functional.gelu(t, approximate="tanh")),
    (ir.LeakyRelu, {"slope": 0.2}, lambda t: nn.functional.leaky_relu(t, 0.2)),
    (ir.Step, {}, lambda t: (t > 0).double()),
    (ir.Copy, {}, lambda t: t),
]


def _graph_with_input():
    g = ir.Graph()
    g.add("x", ir.Input(X), X.shape, "S")
    return g


@pytest.mark.parametrize("op, kw, torch_fn", UNARY, ids=lambda v: getattr(v, "__name__", ""))
def test_unary_ops_match_torch(op, kw, torch_fn):
    g = _graph_with_input()
    g.add("y", op("x", **kw), X.shape, "S")
    got = evaluate(g)["y"]
    np.testing.assert_allclose(got, torch_fn(torch.tensor(X)).numpy(), rtol=0, atol=1e-15)


def test_linear_matches_torch():
    lin = nn.Linear(3, 5).double()
    g = _graph_with_input()
    g.add("w", ir.Param(ir.as_matrix(lin.weight)), (5, 3), "S")
    g.add("b", ir.Param(ir.as_matrix(lin.bias)), (5, 1), "S")
    g.add("z", ir.Linear("x", "w", "b"), (4, 5), "S")
    expected = lin(torch.tensor(X)).detach().numpy()
    np.testing.assert_allclose(evaluate(g)["z"], expected, rtol=0, atol=1e-14)


def test_view_selects_a_rectangle():
    g = _graph_with_input()
    g.add("v", ir.View("x", rows=(1, 3), cols=(0, 2)), (2, 2), "S")
    np.testing.assert_array_equal(evaluate(g)["v"], X[1:3, 0:2])


@pytest.mark.parametrize("sizes, act", [([1, 2, 2, 1], nn.ReLU), ([3, 8, 4, 2], nn.Tanh),
                                        ([2, 5, 1], nn.Sigmoid), ([4, 6, 6, 3], nn.GELU)])
def test_captured_mlp_matches_torch_every_layer(sizes, act):
    torch.manual_seed(1)
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers += [nn.Linear(a, b)] + ([act()] if i < len(sizes) - 2 else [])
    model = nn.Sequential(*layers).double()
    x = RNG.normal(size=(3, sizes[0]))
    g = capture_mlp(model, {}, batch=x)
    ref = evaluate(g)
    traced = hooked_run(model, x)
    compared = 0
    for node in g.nodes.values():
        if node.ref:
            np.testing.assert_allclose(ref[node.name], traced[node.ref], rtol=0, atol=1e-13)
            compared += 1
    assert compared == 2 * (len(sizes) - 1) - 1  # every z and every activation
    np.testing.assert_allclose(ref["y"], model(torch.tensor(x)).detach().numpy(), atol=1e-13)


def test_breakpoints_are_where_the_relu_pattern_changes():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(1, 6), nn.ReLU(), nn.Linear(6, 5), nn.ReLU(),
                          nn.Linear(5, 1)).double()
    bps = [x for x, _ in breakpoints(model, 0.0, 10.0)]
    assert bps == sorted(bps) and len(bps) > 0
    # brute force: the on/off pattern over a dense grid changes exactly at those x
    xs = np.linspace(0, 10, 200_001)[:, None]
    seen = hooked_run(model, xs)
    pattern = np.hstack([seen["0"] > 0, seen["2"] > 0])
    changes = xs[1:, 0][np.any(pattern[1:] != pattern[:-1], axis=1)]
    assert len(changes) == len(set(np.round(bps, 9)))
    np.testing.assert_allclose(changes, sorted(set(np.round(bps, 9))), atol=1e-4)
