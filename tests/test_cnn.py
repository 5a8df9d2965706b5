"""Convolutional and image models through the torch.export front end (capture/conv.py): exported
with sheetnet.export, recalculated by LibreOffice and compared by sheetnet.verify with the
exported graph run in float64, every tensor within 1e-9; the feature-map layout; the refusals."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

import sheetnet
from sheetnet import layout
from sheetnet.capture.torch_export import capture_module
from sheetnet.errors import SheetnetError
from sheetnet.ir import graph as ir

TOL = 1e-9


# --- the models -----------------------------------------------------------------------------
class LeNet(nn.Module):
    """LeNet-5's shape with few channels (2 and 4) so the recalculation stays quick."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 5)
        self.conv2 = nn.Conv2d(2, 4, 5)
        self.fc1 = nn.Linear(4 * 4 * 4, 16)
        self.fc2 = nn.Linear(16, 10)

    def forward(self, x):                                      # (1, 1, 28, 28)
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)     # (1, 2, 12, 12)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)     # (1, 4, 4, 4)
        x = torch.flatten(x, 1)                                # (1, 64) in C, H, W order
        return self.fc2(torch.relu(self.fc1(x)))               # (1, 10)


def mnist_mlp() -> nn.Module:
    # 784-128-64-10 on an image: not a plain Sequential of Linears (Flatten), so torch.export
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64),
                         nn.ReLU(), nn.Linear(64, 10))


class Strided(nn.Module):
    """Padding, strides, a non-square kernel, average pooling, nn.Flatten of several channels."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=(1, 2))
        self.same = nn.Conv2d(3, 2, 3, padding="same", bias=False)
        self.pool = nn.AvgPool2d(2)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * 2 * 6, 3))

    def forward(self, x):                                      # (1, 2, 7, 9)
        x = self.same(torch.tanh(self.conv(x)))                # (1, 3, 4, 12) -> (1, 2, 4, 12)
        return self.head(self.pool(x))                         # (1, 2, 2, 6) -> ... (1, 3)


class Signal(nn.Module):
    """A 1-D signal: Conv1d with stride and padding, max and average pooling, a Linear."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 3, 3, stride=2, padding=1)
        self.head = nn.Linear(3 * 3, 2)

    def forward(self, x):                                      # (1, 2, 12)
        x = nn.functional.max_pool1d(torch.relu(self.conv(x)), 2)   # (1, 3, 6) -> (1, 3, 3)
        x = nn.functional.avg_pool1d(x, 1)
        return self.head(x.flatten(1))


CASES = {
    "lenet": (LeNet, (1, 1, 28, 28)),
    "mnist mlp": (mnist_mlp, (1, 1, 28, 28)),
    "strided": (Strided, (1, 2, 7, 9)),
    "signal": (Signal, (1, 2, 12)),
}


def _torch_float64(model, x):
    with torch.no_grad():
        return copy.deepcopy(model).double().eval()(x.double()).numpy()


@pytest.mark.parametrize("case", CASES)
def test_libreoffice_matches_torch_float64_in_every_tensor(engine, tmp_path, case):
    torch.manual_seed(0)
    make, shape = CASES[case]
    model, x = make(), torch.randn(*shape)
    book = tmp_path / "model.xlsx"
    sheetnet.export(model, book, example_inputs=(x,))
    report = sheetnet.verify(book, model, example_inputs=(x,), engine=engine, tol=TOL)
    assert report.ok, report.table()
    assert report.max_abs_err <= TOL
    # every map and layer is compared with the float64 run, not only with the IR's reference
    against = {r.name: r.against for r in report.rows}
    graph = capture_module(model, (x,)).graph
    computed = [n.name for n in graph.nodes.values()
                if isinstance(n.op, (ir.Conv2d, ir.MaxPool2d, ir.AvgPool2d, ir.Linear))]
    assert computed and all(against[n] == "torch" for n in computed), against
    # the exported graph's output is the module's own float64 forward
    cap = capture_module(model, (x,))
    traced = cap.trace(model, cap.graph, {n.name: n.op.default for n in cap.graph.inputs})
    np.testing.assert_allclose(traced[cap.graph.outputs[0].ref].ravel(),
                               _torch_float64(model, x).ravel(), rtol=1e-12, atol=1e-13)


# --- layout: pictures a reader can follow ----------------------------------------------------
@pytest.mark.parametrize("make, shape, node, block", [
    (mnist_mlp, (1, 1, 28, 28), "input", (28, 28)),       # the image as a 28 x 28 grid
    (LeNet, (1, 1, 28, 28), "conv1.conv2d", (2 * 24, 24)),  # 2 maps of 24 x 24, stacked
    (LeNet, (1, 1, 28, 28), "max_pool2d_1", (4 * 4, 4)),
    (LeNet, (1, 1, 28, 28), "conv2.weight", (4 * 2 * 5, 5)),  # one 5 x 5 kernel per (out, in)
    (Signal, (1, 2, 12), "conv.conv1d", (3, 6)),          # a 1-D map: one row per channel
])
def test_feature_maps_are_blocks_of_pictures(make, shape, node, block):
    g = capture_module(make(), (torch.randn(*shape),)).graph
    region = layout.plan(g).regions[node]
    assert (region.nrows, region.ncols) == block and not region.transposed


@pytest.mark.parametrize("node, pictures, height", [
    ("conv1.conv2d", 2, 24), ("max_pool2d", 2, 12), ("conv2.conv2d_1", 4, 8),
    ("max_pool2d_1", 4, 4)])
def test_each_channel_picture_gets_its_own_colour_scale(tmp_path, node, pictures, height):
    # a map's colours compare its own pixels, not the other channels' (a scale per picture)
    import re
    import zipfile
    torch.manual_seed(0)
    book = tmp_path / "lenet.xlsx"
    x = torch.randn(1, 1, 28, 28)
    sheetnet.export(LeNet(), book, example_inputs=(x,))
    region = layout.plan(capture_module(LeNet(), (x,)).graph).regions[node]
    sheets = re.findall(r'<sheet name="([^"]+)"', zipfile.ZipFile(book).read("xl/workbook.xml")
                        .decode())
    xml = zipfile.ZipFile(book).read(f"xl/worksheets/sheet{sheets.index(region.sheet) + 1}.xml")
    scales = set(re.findall(rb'<conditionalFormatting sqref="([A-Z]+)(\d+):([A-Z]+)(\d+)"', xml))
    rows = sorted(int(a) - 1 for _, a, _, b in scales
                  if region.row <= int(a) - 1 < region.row + region.nrows)
    assert rows == [region.row + k * height for k in range(pictures)]


def test_flatten_reads_the_maps_in_torch_order():
    # fc1's input row is the pooled maps in C, H, W order: channel 1's first cell is feature 16
    torch.manual_seed(0)
    model, x = LeNet(), torch.randn(1, 1, 28, 28)
    g = capture_module(model, (x,)).graph
    reshape = next(n for n in g.nodes.values() if isinstance(n.op, ir.Reshape))
    assert reshape.op.x == "max_pool2d_1" and reshape.shape == (1, 64)
    assert g.nodes["fc1.linear"].op.x == reshape.name
    maps = np.arange(64.0).reshape(16, 4)
    np.testing.assert_array_equal(reshape.op.reference({"max_pool2d_1": maps})[0],
                                  torch.arange(64.0).reshape(1, 4, 4, 4).flatten(1)[0].numpy())


def test_padding_is_a_map_with_a_border_of_zeros():
    torch.manual_seed(0)
    g = capture_module(Strided(), (torch.randn(1, 2, 7, 9),)).graph
    pads = {n.name: n for n in g.nodes.values() if isinstance(n.op, ir.Pad2d)}
    assert {p.op.pad for p in pads.values()} == {(1, 2), (1, 1)}
    assert g.shape("conv.conv2d.padded") == (2 * 9, 13)


# --- refusals: one line naming the op and the module path ----------------------------------
class _Wrap(nn.Module):
    def __init__(self, inner: nn.Module):
        super().__init__()
        self.enc = nn.Sequential(inner)

    def forward(self, x):
        return self.enc(x)


REFUSED = [
    (nn.Conv2d(2, 2, 3, groups=2), (1, 2, 6, 6),
     r"^aten\.conv2d at enc\.0 with groups=2: only groups=1 is supported$"),
    (nn.Conv2d(1, 2, 3, dilation=2), (1, 1, 6, 6),
     r"^aten\.conv2d at enc\.0 with dilation=\[2, 2\]: only 1 is supported$"),
    (nn.Conv2d(1, 2, 3), (2, 1, 6, 6),
     r"^aten\.conv2d at enc\.0 on shape \(2, 1, 6, 6\): only a batch of one \(1, C, H, W\)"),
    (nn.Conv2d(1, 2, 2, padding="same"), (1, 1, 6, 6),
     r"^aten\.conv2d at enc\.0 with padding='same' and kernel \[2, 2\]: only odd kernels$"),
    (nn.ConvTranspose2d(1, 2, 3), (1, 1, 6, 6), r"^aten\.conv_transpose2d at enc\.0 is not "),
    (nn.MaxPool2d(2, padding=1), (1, 1, 6, 6),
     r"^aten\.max_pool2d at enc\.0 with padding=\[1, 1\]: only 0 is supported$"),
    (nn.MaxPool2d(2, ceil_mode=True), (1, 1, 5, 5),
     r"^aten\.max_pool2d at enc\.0 makes \(1, 1, 3, 3\); its windows give 1 x 2 x 2$"),
    (nn.AvgPool2d(2, divisor_override=3), (1, 1, 4, 4),
     r"^aten\.avg_pool2d at enc\.0 with divisor_override=3 is not supported$"),
]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch's, before ours
@pytest.mark.parametrize("inner, shape, message", REFUSED, ids=[m for *_, m in REFUSED])
def test_refusals_name_the_op_and_the_module_path(inner, shape, message):
    with pytest.raises(SheetnetError, match=message) as info:
        capture_module(_Wrap(inner), (torch.randn(*shape),))
    assert "\n" not in str(info.value)
