"""The everyday models of issue 15 (item 5), written as users write them, exported from Python
with ``sheetnet.export``, verified by ``sheetnet.verify`` in LibreOffice (every tensor within 1e-9
of the exported graph in float64) and run on new inputs with ``sheetnet.run`` (the outputs equal
the module's own float64 forward within 1e-9): a classifier with fc1/fc2, LayerNorm, BatchNorm1d,
Dropout, Flatten and a final Softmax; an Embedding bag of words; the 784-128-64-10 MNIST MLP and
a LeNet-style CNN on a 28 x 28 image, whose input sheet shows the image as a 28 x 28 grid with a
colour scale (type or paste a digit, see the classes move).

tests/test_cnn.py verifies LeNet's and the MNIST MLP's every tensor and the feature maps' colour
scales; here they are run on a new digit, and their input grid is checked.
"""
from __future__ import annotations

import copy
import re
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

import sheetnet
from sheetnet.emit.a1 import col_letter
from sheetnet.manifest import read_manifest
from test_cnn import LeNet, mnist_mlp

TOL = 1e-9


class Classifier(nn.Module):
    """A user's classifier: Flatten, fc1, LayerNorm, ReLU, BatchNorm1d, Dropout, fc2, Softmax."""

    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(12, 8)
        self.norm = nn.LayerNorm(8)
        self.bn = nn.BatchNorm1d(8)
        self.dropout = nn.Dropout(0.2)
        self.fc2 = nn.Linear(8, 4)
        self.softmax = nn.Softmax(dim=1)
        with torch.no_grad():  # statistics a trained model would have, not the identity
            self.bn.running_mean.uniform_(-1, 1)
            self.bn.running_var.uniform_(0.5, 2)

    def forward(self, x):                                   # (N, 3, 4)
        h = torch.relu(self.norm(self.fc1(self.flatten(x))))  # (N, 8)
        return self.softmax(self.fc2(self.dropout(self.bn(h))))  # (N, 4)


class BagOfWords(nn.Module):
    """Embedding, the mean over the words, a Linear: a sentence of ids in, class scores out."""

    def __init__(self, vocab: int = 20, dim: int = 6, classes: int = 3):
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim)
        self.fc = nn.Linear(dim, classes)

    def forward(self, ids):                                 # (1, T) ids
        return self.fc(self.embedding(ids).mean(dim=1))     # (1, classes)


def digit(kind: str) -> torch.Tensor:
    """A 28 x 28 hand-drawn-looking digit in [0, 1] (1, 1, 28, 28): "7" or "1"."""
    y, x = np.mgrid[0:28, 0:28].astype(float)
    if kind == "7":
        img = np.exp(-(y - 6) ** 2 / 1.5) * ((x > 6) & (x < 22))
        img = np.maximum(img, np.exp(-((x - 21) + 0.5 * (y - 6)) ** 2 / 1.5) * ((y > 5) & (y < 24)))
    else:
        img = np.exp(-(x - 14 - 0.15 * (14 - y)) ** 2 / 1.5) * ((y > 4) & (y < 24))
    img[img < 0.05] = 0.0   # a clean background, as a scanned digit has
    return torch.tensor(img, dtype=torch.float32).reshape(1, 1, 28, 28)


def _float64(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return copy.deepcopy(model).double().eval()(
            x.double() if x.is_floating_point() else x).numpy()


# (name, model, example input, another input run through the workbook)
CASES = {
    "classifier": (Classifier, lambda: torch.randn(5, 3, 4), lambda: torch.randn(5, 3, 4)),
    "bag of words": (BagOfWords, lambda: torch.tensor([[3, 1, 4, 1, 5, 9, 2]]),
                     lambda: torch.tensor([[19, 0, 0, 7, 7, 7, 12]])),
    "mnist mlp": (mnist_mlp, lambda: digit("7"), lambda: digit("1")),
    "lenet": (LeNet, lambda: digit("7"), lambda: digit("1")),
}


@pytest.fixture(scope="module")
def books(tmp_path_factory):
    # each model exported once, from Python, with its example input (its cells' start values)
    out = {}
    for name, (make, example, _) in CASES.items():
        torch.manual_seed(0)
        model, x = make(), example()
        book = tmp_path_factory.mktemp("everyday") / f"{name.replace(' ', '_')}.xlsx"
        result = sheetnet.export(model, book, example_inputs=(x,))
        out[name] = (model, x, book, result)
    return out


@pytest.mark.parametrize("name", [n for n in CASES if n not in ("mnist mlp", "lenet")])
def test_every_tensor_matches_the_float64_run(engine, books, name):
    # (the MNIST MLP and LeNet are verified tensor by tensor in test_cnn.py)
    model, x, book, _ = books[name]
    report = sheetnet.verify(book, model, example_inputs=(x,), engine=engine, tol=TOL)
    assert report.ok and report.max_abs_err <= TOL, report.table()
    against = {r.against for r in report.rows}
    assert {"torch", "weights"} <= against


@pytest.mark.parametrize("name", CASES)
def test_a_new_input_typed_in_gives_the_modules_output(engine, books, name):
    model, x, book, _ = books[name]
    new = CASES[name][2]()
    out = sheetnet.run(book, new, engine=engine)
    got = np.asarray(out["outputs"], dtype=np.float64)
    want = _float64(model, new)
    assert got.shape == want.reshape(got.shape).shape
    assert np.abs(got - want.reshape(got.shape)).max() <= TOL
    # the classes moved: the new input is not computed on the example's cells
    assert np.abs(want - _float64(model, x)).max() > 1e-6


def test_the_classifier_reads_like_its_code(books):
    model, _, book, result = books["classifier"]
    manifest = read_manifest(book)
    # one sheet per module with weights, named by its attribute; Dropout and Flatten own no cells
    assert [s for s in ("fc1", "norm", "bn", "fc2") if s in {e.sheet for e in
            manifest.nodes.values()}] == ["fc1", "norm", "bn", "fc2"]
    assert not any("dropout" in n or "flatten" in n for n in manifest.nodes)
    assert {"fc1.weight", "fc1.bias", "bn.running_mean", "bn.running_var", "fc2.weight"} <= set(
        manifest.nodes)
    assert result.architecture[0] == "flatten: flatten = aten.flatten"


def test_softmax_rows_sum_to_one(engine, books):
    _, _, book, _ = books["classifier"]
    probs = np.asarray(sheetnet.run(book, engine=engine)["outputs"])
    assert probs.shape == (5, 4) and np.abs(probs.sum(axis=1) - 1).max() <= 1e-12


def _colour_scales(book, sheet: str) -> set[tuple[str, int, str, int]]:
    # (first column, first row, last column, last row) of each colour scale on ``sheet``
    with zipfile.ZipFile(book) as z:
        names = re.findall(r'<sheet name="([^"]+)"', z.read("xl/workbook.xml").decode())
        xml = z.read(f"xl/worksheets/sheet{names.index(sheet) + 1}.xml").decode()
    return {(a, int(b), c, int(d)) for a, b, c, d in re.findall(
        r'<conditionalFormatting sqref="([A-Z]+)(\d+):([A-Z]+)(\d+)"><cfRule type="colorScale"',
        xml)}


@pytest.mark.parametrize("name", ["mnist mlp", "lenet"])
def test_the_input_sheet_shows_the_image_as_a_grid_with_a_colour_scale(books, name):
    _, x, book, _ = books[name]
    entry = next(e for e in read_manifest(book).nodes.values() if e.kind == "input")
    assert entry.shape == (28, 28) and not entry.laid_transposed   # the picture, as drawn
    grid = (col_letter(entry.col), entry.row + 1, col_letter(entry.col + 27), entry.row + 28)
    assert grid in _colour_scales(book, entry.sheet)


def test_each_channel_of_an_input_image_gets_its_own_scale(tmp_path):
    # an RGB-like (1, 3, H, W) input: three pictures stacked, a colour scale each; features
    # (N, F) get none (they are not pictures)
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 1, 3)

        def forward(self, x):
            return self.conv(x).flatten(1)

    book = sheetnet.export(Tiny(), tmp_path / "rgb.xlsx",
                           example_inputs=(torch.rand(1, 3, 5, 6),)).path
    entry = read_manifest(book).nodes["x"]
    scales = {s for s in _colour_scales(book, entry.sheet) if entry.row < s[1] <= entry.row + 15}
    assert scales == {(col_letter(entry.col), entry.row + 1 + 5 * k, col_letter(entry.col + 5),
                       entry.row + 5 * (k + 1)) for k in range(3)}
    classifier = sheetnet.export(Classifier(), tmp_path / "c.xlsx",
                                 example_inputs=(torch.randn(2, 3, 4),)).path
    assert _colour_scales(classifier, "Input") == set()
