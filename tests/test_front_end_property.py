"""Property: any small composition of the layers the torch.export front end supports, written as
the user's own nn.Module, exports through ``sheetnet.export(model, path, example_inputs=...)`` to
a workbook that LibreOffice recalculates to the model in float64: every tensor the verifier reads
(each node with cells) within 1e-9, and the output the workbook computes equals the module's own
float64 forward within 1e-9.

A drawn model is a recipe (a list of steps, each a layer the front end lowers: Linear, the
activations, LayerNorm, BatchNorm1d in eval, Dropout, Flatten, residual adds, products and
quotients by constants and by another branch, means and sums along the last dim, a final
Softmax / LogSoftmax or reduction; or Conv1d / Conv2d with padding and strides, pooling, then
Flatten and a Linear) built into ``Recipe``, a plain nn.Module subclass (so it never takes the
plain-Sequential path).  Each example is one workbook and one LibreOffice load (~0.2 s: the
session's engine is reused, so batching models into one workbook would save little).
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import sheetnet
from sheetnet.manifest import read_manifest

TOL = 1e-9
SETTINGS = settings(max_examples=12, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

ACTIVATIONS = {
    "relu": nn.ReLU, "gelu": nn.GELU, "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "silu": nn.SiLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2), "elu": lambda: nn.ELU(0.7),
    "softplus": lambda: nn.Softplus(2.0, 1.5),   # a low threshold: both of its branches show
}
CONSTANTS = (0.5, 2.0, -3.0)


# --- the model a recipe describes -----------------------------------------------------------
class Recipe(nn.Module):
    """The user's own module: ``steps`` [(kind, arg)] applied in order to one input.

    Layers with weights live in ``self.layers`` (sheets ``layers.0``, ``layers.1``...); a step
    refers to its layer by index, so forward reads like hand-written code."""

    def __init__(self, steps: list[tuple[str, object]], layers: list[nn.Module]):
        super().__init__()
        self.steps = steps
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        for kind, arg in self.steps:
            x = STEP[kind](self, x, arg)
        return x


def _layer(m, x, k):
    return m.layers[k](x)


def _residual(m, x, k):                 # x + act(W x): the same width out
    return x + m.layers[k + 1](m.layers[k](x))


def _const(m, x, how):
    op, c = how
    return {"mul": lambda: x * c, "div": lambda: x / c, "add": lambda: x + c,
            "rsub": lambda: c - x}[op]()


def _gate(m, x, how):                   # another branch of the same input, multiplied or divided
    k, op = how
    h = m.layers[k](x)
    return x * torch.sigmoid(h) if op == "mul" else x / (2 + torch.tanh(h))  # divisor in [1, 3]


def _centre(m, x, op):                  # a column (..., 1) broadcast back over the row
    if op == "mean":
        return x - x.mean(dim=-1, keepdim=True)
    return x * 0.25 + x.sum(dim=-1, keepdim=True)


STEP = {
    "layer": _layer, "residual": _residual, "const": _const, "gate": _gate, "centre": _centre,
    "softmax": lambda m, x, _: torch.softmax(x, dim=-1),
    "log_softmax": lambda m, x, _: nn.functional.log_softmax(x, dim=-1),
    "mean": lambda m, x, _: x.mean(dim=-1), "sum": lambda m, x, _: x.sum(dim=-1),
    "flatten": lambda m, x, _: torch.flatten(x, 1),
}


# --- strategies -------------------------------------------------------------------------------
class _Builder:
    """Steps and layers as they are drawn, with the shape of the value so far."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape, self.steps, self.layers = shape, [], []

    def layer(self, module: nn.Module, shape=None) -> int:
        self.layers.append(module)
        self.steps.append(("layer", len(self.layers) - 1))
        self.shape = shape or self.shape
        return len(self.layers) - 1

    def step(self, kind: str, arg=None, shape=None) -> None:
        self.steps.append((kind, arg))
        self.shape = shape or self.shape


@st.composite
def dense_recipes(draw):
    """Features (N, F), positions (1, T, F) or small images (N, a, b) that a Flatten opens."""
    rank = draw(st.sampled_from(["rows", "positions", "image"]))
    n, width = draw(st.integers(1, 4)), draw(st.integers(1, 6))
    shape = {"rows": (n, width), "positions": (1, n + 1, width),
             "image": (n, 2, width)}[rank]
    b = _Builder(shape)
    if rank == "image":
        b.layer(nn.Flatten(), (n, 2 * width))
    for _ in range(draw(st.integers(1, 6))):
        _dense_step(draw, b)
    end = draw(st.sampled_from([None, "softmax", "log_softmax", "mean", "sum"]))
    if end:
        b.step(end, shape=b.shape[:-1] if end in ("mean", "sum") else None)
    return b.steps, b.layers, shape


def _dense_step(draw, b: _Builder) -> None:
    width = b.shape[-1]
    kind = draw(st.sampled_from(["linear", "act", "layernorm", "batchnorm", "dropout",
                                 "residual", "const", "gate", "centre"]))
    act = ACTIVATIONS[draw(st.sampled_from(sorted(ACTIVATIONS)))]
    if kind == "linear":
        out = draw(st.integers(1, 6))
        b.layer(nn.Linear(width, out, bias=draw(st.booleans())), (*b.shape[:-1], out))
    elif kind == "act":
        b.layer(act())
    elif kind == "layernorm":
        b.layer(nn.LayerNorm(width, elementwise_affine=draw(st.booleans())))
    elif kind == "batchnorm" and len(b.shape) == 2:   # BatchNorm1d over (N, C) features
        b.layer(nn.BatchNorm1d(width))
    elif kind == "dropout":
        b.layer(nn.Dropout(draw(st.sampled_from([0.1, 0.5]))))
    elif kind == "residual":
        b.layers += [nn.Linear(width, width), act()]
        b.step("residual", len(b.layers) - 2)
    elif kind == "const":
        b.step("const", (draw(st.sampled_from(["mul", "div", "add", "rsub"])),
                         draw(st.sampled_from(CONSTANTS))))
    elif kind == "gate":
        b.layers.append(nn.Linear(width, width))
        b.step("gate", (len(b.layers) - 1, draw(st.sampled_from(["mul", "div"]))))
    elif kind == "centre":
        b.step("centre", draw(st.sampled_from(["mean", "sum"])))


def _randomise(model: nn.Module) -> None:
    # fresh weights from the seeded generator; norms get gains, shifts and running statistics
    # that are not the identity, so a wrong formula cannot hide behind a 1 or a 0
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
                m.reset_parameters()
            if isinstance(m, (nn.LayerNorm, nn.BatchNorm1d)) and m.weight is not None:
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)


@st.composite
def conv_recipes(draw):
    """A batch of one image (1, C, H, W) or signal (1, C, L): convolutions, activations and
    pooling while the map is big enough, then Flatten, a Linear and perhaps a softmax."""
    dims = draw(st.sampled_from([1, 2]))
    channels = draw(st.integers(1, 3))
    size = tuple(draw(st.integers(3, 8)) for _ in range(dims))
    b = _Builder((1, channels, *size))
    for _ in range(draw(st.integers(1, 4))):
        _conv_step(draw, b, dims)
    features = int(np.prod(b.shape[1:]))
    b.layer(nn.Flatten(), (1, features))
    out = draw(st.integers(1, 4))
    b.layer(nn.Linear(features, out), (1, out))
    if draw(st.booleans()):
        b.step(draw(st.sampled_from(["softmax", "log_softmax"])))
    return b.steps, b.layers, (1, channels, *size)


def _conv_step(draw, b: _Builder, dims: int) -> None:
    channels, size = b.shape[1], b.shape[2:]
    kind = draw(st.sampled_from(["conv", "conv", "act", "maxpool", "avgpool"]))
    if kind == "conv":
        k = draw(st.integers(1, min(3, *size)))
        stride = draw(st.sampled_from([1, 1, 2]))
        padding = draw(st.sampled_from([0, 1, "same"] if k % 2 and stride == 1 else [0, 1]))
        out = draw(st.integers(1, 3))
        conv = (nn.Conv1d if dims == 1 else nn.Conv2d)(channels, out, k, stride=stride,
                                                       padding=padding,
                                                       bias=draw(st.booleans()))
        pad = (k - 1) // 2 if padding == "same" else padding
        b.layer(conv, (1, out, *((s + 2 * pad - k) // stride + 1 for s in size)))
    elif kind == "act":
        b.layer(ACTIVATIONS[draw(st.sampled_from(sorted(ACTIVATIONS)))]())
    elif min(size) >= 2:
        k = 2
        stride = draw(st.sampled_from([1, 2]))
        pool = {("maxpool", 1): nn.MaxPool1d, ("maxpool", 2): nn.MaxPool2d,
                ("avgpool", 1): nn.AvgPool1d, ("avgpool", 2): nn.AvgPool2d}[kind, dims]
        b.layer(pool(k, stride=stride), (1, channels, *((s - k) // stride + 1 for s in size)))


# --- export, recalculate, compare --------------------------------------------------------------
def _check(engine, tmp_path_factory, recipe, seed: int) -> None:
    steps, layers, shape = recipe
    torch.manual_seed(seed)
    model = Recipe(steps, [copy.deepcopy(m) for m in layers])  # hypothesis may replay a draw
    _randomise(model)
    x = torch.randn(*shape)
    book = tmp_path_factory.mktemp("recipe") / "model.xlsx"
    sheetnet.export(model, book, example_inputs=(x,))

    report = sheetnet.verify(book, model, example_inputs=(x,), engine=engine, tol=TOL)
    assert report.ok and report.max_abs_err <= TOL, f"{steps}\n{report.table()}"
    # every node with cells of its own was read back and compared (a view has none)
    placed = {n for n, e in read_manifest(book).nodes.items()
              if e.kind not in ("input", "const") and e.op != "View"}
    assert {r.name for r in report.rows} == placed
    assert any(r.against == "torch" for r in report.rows)

    # and the workbook's output is the module's own float64 forward, not only the graph's
    out = sheetnet.run(book, engine=engine)
    with torch.no_grad():
        want = copy.deepcopy(model).double().eval()(x.double()).numpy()
    got = np.asarray(out["outputs"], dtype=np.float64)
    assert got.size == want.size and np.abs(got.ravel() - want.ravel()).max() <= TOL, steps


@SETTINGS
@given(recipe=dense_recipes(), seed=st.integers(0, 2 ** 16))
def test_random_dense_composition_matches_torch(engine, tmp_path_factory, recipe, seed):
    _check(engine, tmp_path_factory, recipe, seed)


@settings(SETTINGS, max_examples=8)
@given(recipe=conv_recipes(), seed=st.integers(0, 2 ** 16))
def test_random_conv_stack_matches_torch(engine, tmp_path_factory, recipe, seed):
    _check(engine, tmp_path_factory, recipe, seed)


# --- what the properties found, kept as fixed cases --------------------------------------------
REGRESSIONS = {
    # a forward that returns its input: the output cells copy the Input's, and the float64 run
    # recorded no value for an input (verify raised KeyError: 'x')
    "returns its input (N, F)": ([], [], (2, 3)),
    "returns its input (1, T, 1)": ([], [], (1, 2, 1)),
}


@pytest.mark.parametrize("case", REGRESSIONS)
def test_cases_the_properties_found(engine, tmp_path_factory, case):
    _check(engine, tmp_path_factory, REGRESSIONS[case], seed=0)
