"""The torch.export front end (capture/torch_export.py, capture/aten.py): everyday nn.Modules
captured, written to a workbook, recalculated by LibreOffice and compared cell by cell with the
exported graph run in float64 (every node with a ``ref``), the sheet's helpers (row max, mean,
variance ...) with the IR reference, weights with the state dict; and every refusal, one line
naming the op and the module path."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from sheetnet import layout
from sheetnet.capture.torch_export import capture_module
from sheetnet.emit.book import build_book
from sheetnet.engines.base import Block
from sheetnet.errors import SheetnetError
from sheetnet.ir import graph as ir
from sheetnet.ir.reference import evaluate
from sheetnet.writer import write_book

TOL = 1e-9


# --- the models -----------------------------------------------------------------------------
class Classifier(nn.Module):
    """fc1/fc2 with LayerNorm, BatchNorm1d, Dropout, Flatten, arithmetic and a final Softmax."""

    def __init__(self):
        super().__init__()
        self.flat = nn.Flatten()
        self.fc1 = nn.Linear(6, 5)
        self.ln = nn.LayerNorm(5)
        self.bn = nn.BatchNorm1d(5)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(5, 3)
        self.out = nn.Softmax(dim=-1)
        with torch.no_grad():  # running statistics that are not the identity
            self.bn.running_mean.uniform_(-1, 1)
            self.bn.running_var.uniform_(0.5, 2)
            self.bn.weight.uniform_(0.5, 1.5)
            self.bn.bias.uniform_(-0.5, 0.5)

    def forward(self, x):                          # (N, 2, 3)
        h = torch.relu(self.fc1(self.flat(x)))     # (N, 5)
        h = self.drop(self.bn(self.ln(h)))
        return self.out(self.fc2(h * 2 + 1))       # (N, 3)


class BagOfWords(nn.Module):
    """Embedding, mean-pooled over the words, a Linear and log-softmax."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.head = nn.Linear(4, 3)

    def forward(self, ids):                        # (1, T) integer ids
        pooled = self.emb(ids).mean(dim=1)         # (1, 4)
        return torch.log_softmax(self.head(pooled), dim=-1)


class Activations(nn.Module):
    """Every activation, and the broadcasting arithmetic between them."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 6)
        self.fc2 = nn.Linear(6, 6)
        self.fc3 = nn.Linear(6, 6, bias=False)
        self.shift = nn.Parameter(torch.linspace(-1, 1, 6))   # (6,): a row broadcast
        self.acts = nn.Sequential(nn.GELU(), nn.GELU(approximate="tanh"), nn.Tanh(),
                                  nn.Sigmoid(), nn.SiLU(), nn.LeakyReLU(0.2), nn.ELU(0.5),
                                  nn.Softplus(2.0, 5.0), nn.ReLU())

    def forward(self, x):                                     # (N, 3)
        h = self.fc1(x)
        for act in self.acts:
            h = act(self.fc2(h)) + self.shift                  # (N, 6) + (6,)
        h = 1 - h                                              # a scalar minus a tensor
        h = -h / (2 + torch.sigmoid(h).mean(dim=-1, keepdim=True))  # (N, 6) / (N, 1)
        h = h @ self.fc3.weight.t() - 0.5                      # a weight read through .t()
        return h.sum(dim=-1)                                   # (N,)


class Positions(nn.Module):
    """A batch of 1 of positions (1, T, F): one row per position; views that own no cells."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4, elementwise_affine=False)
        self.mix = nn.Parameter(torch.randn(4, 2))

    def forward(self, x):                                   # (1, T=3, 4)
        h = self.norm(self.proj(x))                         # (1, 3, 4)
        h = h.unsqueeze(0).squeeze(0) @ self.mix            # (1, 3, 2): a (4, 2) matrix
        g = h.squeeze(0).t()                                # (2, 3): Transpose cells
        return torch.softmax(g, dim=-1).sum(dim=0)          # (3,): summed down the rows


# --- capture, write, recalculate, compare --------------------------------------------------
def _recalculated(engine, tmp_path, model, inputs, edits=()):
    cap = capture_module(model, inputs)
    g, plan = cap.graph, layout.plan(cap.graph)
    book = tmp_path / "model.xlsx"
    write_book(build_book(g, plan), book)
    names = [n for n, node in g.nodes.items() if not isinstance(node.op, ir.View)]
    regions = [plan.regions[n] for n in names]
    assert not any(r.transposed for r in regions)
    got = engine.recalculate(book, [Block(r.sheet, r.row, r.col, r.nrows, r.ncols)
                                    for r in regions], edits=edits)
    return cap, dict(zip(names, (np.asarray(v, dtype=np.float64) for v in got)))


def _expected(cap, inputs) -> dict[str, np.ndarray]:
    # a node with a ref: the exported graph's own float64 run; a helper: the IR reference
    g = cap.graph
    leaves = {n.name: n.op.default for n in g.inputs}
    traced = cap.trace(cap.model, g, leaves)
    ref = evaluate(g)
    return {name: (traced[node.ref] if node.ref else ref[name]).reshape(node.shape)
            for name, node in g.nodes.items()}


def _torch_float64(model, inputs):
    model = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        return model(*(t.double() if t.is_floating_point() else t for t in inputs)).numpy()


CASES = {
    "classifier": (Classifier, lambda: (torch.randn(3, 2, 3),)),
    "bag of words": (BagOfWords, lambda: (torch.tensor([[1, 2, 7, 2, 9]]),)),
    "activations": (Activations, lambda: (torch.randn(4, 3),)),
    "positions": (Positions, lambda: (torch.randn(1, 3, 4),)),
}


@pytest.mark.parametrize("case", CASES)
def test_libreoffice_matches_the_float64_run_in_every_cell(engine, tmp_path, case):
    torch.manual_seed(0)
    make, inputs = CASES[case]
    model, x = make(), inputs()
    cap, got = _recalculated(engine, tmp_path, model, x)
    want = _expected(cap, x)
    wrong = {n: float(np.max(np.abs(got[n] - want[n]))) for n in got
             if not np.max(np.abs(got[n] - want[n]), initial=0.0) <= TOL}
    assert not wrong, wrong
    out = cap.graph.outputs[0]
    # the trace is the model itself: its output is the module's own float64 forward
    np.testing.assert_allclose(want[out.name].ravel(), _torch_float64(model, x).ravel(),
                               rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("case", CASES)
def test_every_computed_tensor_is_compared_with_torch(case):
    # only the sheet's helpers (beside a node), reshaped copies and constants go without a ref
    torch.manual_seed(0)
    make, inputs = CASES[case]
    g = capture_module(make(), inputs()).graph
    for node in g.nodes.values():
        if isinstance(node.op, (ir.Input, ir.Param, ir.Const, ir.Reshape)):
            continue
        assert node.ref or node.beside, node.name


def test_sheets_are_the_modules_and_weights_their_state_dict_keys():
    model = Classifier()
    g = capture_module(model, (torch.randn(2, 2, 3),)).graph
    assert g.sheets == ["Input", "fc1", "ln", "bn", "fc2"]
    params = {n.op.source: n for n in g.of_type(ir.Param)}
    assert set(params) == {k for k in model.state_dict() if "num_batches" not in k}
    for key, tensor in model.state_dict().items():
        if key in params:   # same numbers; Linear's (out, in) and (out, 1) as the Linear op reads
            np.testing.assert_array_equal(params[key].op.value.ravel(), tensor.numpy().ravel())
    assert params["fc1.weight"].shape == (5, 6) and params["fc1.bias"].shape == (5, 1)
    assert isinstance(g.nodes["fc1.linear"].op, ir.Linear)
    assert not any("dropout" in n for n in g.nodes)   # a no-op in eval: no cells


def test_an_edited_running_mean_recomputes(engine, tmp_path):
    # batch norm keeps its running statistics as weight cells: a typed value flows through
    torch.manual_seed(1)
    model, x = Classifier(), (torch.randn(2, 2, 3),)
    g = capture_module(model, x).graph
    region = layout.plan(g).regions["bn.running_mean"]
    cap, got = _recalculated(engine, tmp_path, model, x,
                             edits=[(region.sheet, region.row, region.col, 3.0)])
    model.bn.running_mean[0] = 3.0
    want = _torch_float64(model, x)
    np.testing.assert_allclose(got["output"].ravel(), want.ravel(), rtol=0, atol=TOL)
    assert np.abs(want - _torch_float64(Classifier(), x)).max() > 1e-3  # the edit mattered


# --- refusals: one line naming the op and the module path ----------------------------------
class _Rfft(nn.Module):
    def forward(self, x):
        return torch.fft.rfft(x).abs()


class _Wrap(nn.Module):
    def __init__(self, inner: nn.Module):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(4, 4), inner)

    def forward(self, x):
        return self.enc(x)


class _Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class _AddCube(nn.Module):
    def __init__(self):
        super().__init__()
        self.cube = nn.Parameter(torch.ones(2, 1, 2))   # broadcasts along a middle dim

    def forward(self, x):
        return x.reshape(2, 2, 2) + self.cube


REFUSED = [
    (_Wrap(_Rfft()), (torch.randn(2, 4),), r"^aten\.fft_rfft at enc\.1 is not supported; "
                                           r"supported: aten\._log_softmax, "),
    (_Wrap(_Fn(torch.nonzero)), (torch.randn(2, 4),),
     r"^aten\.nonzero at enc\.1 has a data-dependent shape"),
    (_Wrap(nn.Softmax(dim=0)), (torch.randn(2, 4),),
     r"^aten\.softmax at enc\.1 softmax along dim 0: only the last dim"),
    (_Wrap(nn.BatchNorm1d(3)), (torch.randn(2, 3, 4),),
     r"^aten\.batch_norm at enc\.1 on shape \(2, 3, 4\): only \(N, C\)"),
    (_Wrap(_AddCube()), (torch.randn(2, 4),),
     r"^aten\.add at enc\.1 broadcasts \(2, 1, 2\) to \(2, 2, 2\): only a whole tensor"),
    (_Wrap(_Fn(lambda x: x.mean(dim=0))), (torch.randn(2, 3, 4),),
     r"^aten\.mean at enc\.1 mean over dims \[0\] of \(2, 3, 4\)"),
    (_Fn(lambda x: x), ([1.0],), r"^example_inputs must be a tuple of tensors$"),
]


@pytest.mark.parametrize("model, inputs, message", REFUSED,
                         ids=[m for *_, m in REFUSED])
def test_refusals_name_the_op_and_the_module_path(model, inputs, message):
    with pytest.raises(SheetnetError, match=message) as info:
        capture_module(model, inputs)
    assert "\n" not in str(info.value)
