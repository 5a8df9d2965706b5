"""The sqrt nets end to end: export -> LibreOffice recalculation -> every layer against PyTorch."""
import numpy as np
import openpyxl
import pytest
import torch

from sheetnet.loaders import load_checkpoint
from sheetnet.emit.a1 import cell_name
from sheetnet.pipeline import export
from sheetnet.models.mlp import mlp_from_checkpoint
from sheetnet.options import ExportOptions
from sheetnet.runner import run
from sheetnet.verifier import verify
from sheetnet.manifest import read_manifest

NETS = ["sqrt_2x2.pt", "sqrt_net.pt"]


def _torch_y(model_path, x: float) -> float:
    model = mlp_from_checkpoint(load_checkpoint(model_path)).double()
    with torch.no_grad():
        return float(model(torch.tensor([[x]], dtype=torch.float64)))


@pytest.mark.parametrize("style", ["cells", "arrays"])
@pytest.mark.parametrize("net", NETS)
def test_every_layer_matches_torch(engine, examples, tmp_path, net, style):
    book = tmp_path / "sqrt.xlsx"
    export(examples / net, book, ExportOptions(style=style))
    report = verify(book, examples / net, engine=engine)
    assert report.ok, report.table()
    names = {r.name for r in report.rows}
    # every layer's z and a, the walk, and the weights were compared
    assert {"L1.z", "L1.a", "L2.z", "L2.a", "out.z", "y", "walk.out.z", "L1.W"} <= names
    assert sum(r.against == "torch" for r in report.rows) >= 10
    assert report.max_abs_err <= 1e-9


@pytest.mark.parametrize("net", NETS)
def test_random_inputs_every_layer(engine, examples, tmp_path, net):
    rng = np.random.default_rng(7)
    for k, x in enumerate(rng.uniform(0, 10, size=4)):
        book = tmp_path / f"sqrt{k}.xlsx"
        export(examples / net, book, ExportOptions(input_value=float(x)))
        report = verify(book, examples / net, engine=engine)
        assert report.ok, report.table()
        out = run(book, engine=engine)
        assert out["inputs"] == [float(x)]
        assert abs(out["outputs"][0][0] - _torch_y(examples / net, float(x))) <= 1e-9


def test_run_sets_the_input_cell(engine, examples, tmp_path):
    book = tmp_path / "sqrt.xlsx"
    export(examples / "sqrt_net.pt", book)
    for x in (0.0, 2.0, 7.31, 25.0):  # 25 lies outside the training range: still the same net
        out = run(book, inputs=[x], engine=engine)
        assert out["inputs"] == [x]
        assert abs(out["outputs"][0][0] - _torch_y(examples / "sqrt_net.pt", x)) <= 1e-9


def test_weights_are_written_bit_for_bit(examples, tmp_path):
    book = tmp_path / "sqrt.xlsx"
    export(examples / "sqrt_net.pt", book)
    manifest = read_manifest(book)
    state = load_checkpoint(examples / "sqrt_net.pt")["state_dict"]
    wb = openpyxl.load_workbook(book)
    checked = 0
    for name, entry in manifest.nodes.items():
        if entry.kind != "weight":
            continue
        ws = wb[entry.sheet]
        rows, cols = entry.shape
        got = np.array([[ws.cell(entry.row + i + 1, entry.col + j + 1).value
                         for j in range(cols)] for i in range(rows)], dtype=np.float64)
        original = state[entry.source].numpy()
        assert np.array_equal(got.astype(np.float32).reshape(original.shape), original), name
        # and the float64 text is the exact float64 of the float32 weight
        assert np.array_equal(got.reshape(original.shape), original.astype(np.float64))
        checked += 1
    assert checked == 6


def test_editing_a_weight_cell_moves_y_like_torch(engine, examples, tmp_path):
    net = examples / "sqrt_net.pt"
    book = tmp_path / "sqrt.xlsx"
    export(net, book, ExportOptions(input_value=3.0))
    entry = read_manifest(book).nodes["L2.W"]
    i, j, new = 4, 7, 0.75  # neuron 5 of layer 2, its weight from layer-1 neuron 8
    wb = openpyxl.load_workbook(book)
    wb[entry.sheet][cell_name(entry.row + i, entry.col + j)] = new
    edited = tmp_path / "edited.xlsx"
    wb.save(edited)

    payload = load_checkpoint(net)
    before = _torch_y(net, 3.0)
    payload["state_dict"]["2.weight"][i, j] = new
    model = mlp_from_checkpoint(payload).double()
    with torch.no_grad():
        expected = float(model(torch.tensor([[3.0]], dtype=torch.float64)))
    got = run(edited, engine=engine)["outputs"][0][0]
    assert abs(got - expected) <= 1e-9
    assert abs(got - before) > 1e-6  # the edit really moved y
