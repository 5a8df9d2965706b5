"""The sqrt net's piecewise-linear view (issue 19), recalculated in LibreOffice: x's region and its
line y = a*x + b against PyTorch's gradient and intercept (float64), the Regions table against the
regions numpy finds from the weights, both again after an edited weight, and the Walk grid."""
import numpy as np
import openpyxl
import pytest
import torch

from sheetnet.capture.sqrt import breakpoints
from sheetnet.loaders import load_checkpoint
from sheetnet.manifest import read_manifest
from sheetnet.models.mlp import mlp_from_checkpoint
from sheetnet.options import ExportOptions
from sheetnet.pipeline import export
from sheetnet.runner import input_edits
from sheetnet.verifier import numeric, read_nodes

NETS = ["sqrt_2x2.pt", "sqrt_net.pt"]
TOL = 1e-12
EDIT = ("L1.W", 1, 0, 0.25)  # layer 1's neuron 2: its weight becomes 0.25 (its switch moves)


def _model(path, edit=None):
    payload = load_checkpoint(path)
    if edit:
        name, i, j, value = edit
        key = {"L1.W": "0.weight", "L2.W": "2.weight"}[name]
        payload["state_dict"][key][i, j] = value
    return mlp_from_checkpoint(payload).double()


def _line_at(model, x: float) -> tuple[float, float]:
    # PyTorch's dy/dx at x and the intercept y - x dy/dx, float64
    t = torch.tensor([[x]], dtype=torch.float64, requires_grad=True)
    y = model(t)
    (a,) = torch.autograd.grad(y.sum(), t)
    return float(a), float((y - t * a).detach())


def _weight_edit(manifest, edit):
    name, i, j, value = edit
    e = manifest.nodes[name]
    return [(e.sheet, e.row + i, e.col + j, value)]


def _x_values(model):
    # one x inside each region numpy finds, plus the ends of the range
    cuts = [0.0] + [b for b, _ in breakpoints(model, 0.0, 10.0)] + [10.0]
    return [(a + b) / 2 for a, b in zip(cuts, cuts[1:])] + [0.0, 10.0]


@pytest.fixture(scope="module", params=NETS)
def book(request, examples, tmp_path_factory):
    out = tmp_path_factory.mktemp("sqrt") / "sqrt.xlsx"
    export(examples / request.param, out, ExportOptions())
    return examples / request.param, out


@pytest.mark.parametrize("edit", [None, EDIT], ids=["as trained", "edited weight"])
def test_line_at_x_is_torch_gradient_and_intercept(engine, book, edit):
    path, out = book
    manifest = read_manifest(out)
    model = _model(path, edit)
    extra = _weight_edit(manifest, edit) if edit else []
    names = ["region.a", "region.b", "region.y", "y", "region.from", "region.to"]
    cuts = np.array([0.0] + [b for b, _ in breakpoints(model, 0.0, 10.0)] + [10.0])
    for x in _x_values(model):
        got = {k: float(numeric(v)[0, 0]) for k, v in read_nodes(
            engine, out, manifest, names,
            edits=input_edits(manifest, "x", [x]) + extra).items()}
        a, b = _line_at(model, x)
        assert abs(got["region.a"] - a) <= TOL and abs(got["region.b"] - b) <= TOL, x
        assert abs(got["region.y"] - got["y"]) <= TOL
        # x's region: the breakpoints numpy finds on either side of it
        k = max(int(np.searchsorted(cuts, x)), 1)  # cuts[k - 1] < x <= cuts[k]; x = lo: first
        assert abs(got["region.from"] - cuts[k - 1]) <= 1e-9
        assert abs(got["region.to"] - cuts[k]) <= 1e-9


@pytest.mark.parametrize("edit", [None, EDIT], ids=["as trained", "edited weight"])
def test_regions_table_is_numpy_regions(engine, book, edit):
    path, out = book
    manifest = read_manifest(out)
    model = _model(path, edit)
    names = ["bp.count", "regions.from", "regions.to", "regions.slope.shown",
             "regions.intercept.shown", "regions.L1.shown", "regions.L2.shown"]
    cells = read_nodes(engine, out, manifest, names,
                       edits=_weight_edit(manifest, edit) if edit else ())
    cuts = [0.0] + [b for b, _ in breakpoints(model, 0.0, 10.0)] + [10.0]
    n = len(cuts) - 1
    got = {k: numeric(v[:n] if k != "bp.count" else v) for k, v in cells.items()}
    assert int(got["bp.count"][0, 0]) == n
    assert len(got["regions.from"]) >= n
    np.testing.assert_allclose(got["regions.from"][:n, 0], cuts[:-1], atol=1e-9, rtol=0)
    np.testing.assert_allclose(got["regions.to"][:n, 0], cuts[1:], atol=1e-9, rtol=0)
    for k in range(n):
        mid = (cuts[k] + cuts[k + 1]) / 2
        a, b = _line_at(model, mid)
        assert abs(got["regions.slope.shown"][k, 0] - a) <= TOL
        assert abs(got["regions.intercept.shown"][k, 0] - b) <= TOL
        lins = [m for m in model if isinstance(m, torch.nn.Linear)]
        z1 = lins[0](torch.tensor([[mid]], dtype=torch.float64))
        z2 = lins[1](torch.relu(z1))
        on = [(z > 0).double().detach().numpy()[0] for z in (z1, z2)]
        np.testing.assert_array_equal(got["regions.L1.shown"][k], on[0])
        np.testing.assert_array_equal(got["regions.L2.shown"][k], on[1])
    # the spare rows read "-" in every column (live formulas: the edit's extra region fills one)
    assert len(cells["regions.from"]) > n, "no spare row to check"
    for name in names[1:]:
        spare = cells[name][n:]
        assert spare.size and all(v == "-" for v in spare.flat), (name, spare)


def test_walk_shows_every_region_and_keeps_x_on_screen(engine, book):
    path, out = book
    manifest = read_manifest(out)
    model = _model(path)
    got = {k: numeric(v) for k, v in read_nodes(
        engine, out, manifest, ["walk.x", "walk.out.z"]).items()}
    x = got["walk.x"][:, 0]
    assert (np.diff(x) > 0).all() and x[0] == 0.0 and x[-1] == 10.0  # no x twice (spare rows)
    cuts = [0.0] + [b for b, _ in breakpoints(model, 0.0, 10.0)] + [10.0]
    for lo, hi in zip(cuts, cuts[1:]):  # every region holds a Walk row strictly inside it
        assert ((x > lo) & (x < hi)).any(), (lo, hi)
    with torch.no_grad():
        y = model(torch.as_tensor(x[:, None])).numpy()
    np.testing.assert_allclose(got["walk.out.z"], y, atol=TOL, rtol=0)
    wb = openpyxl.load_workbook(out)
    walk = wb["Walk"]
    x_col = manifest.nodes["walk.x"].col
    letters = openpyxl.utils.cell.coordinate_from_string(walk.freeze_panes)[0]
    assert openpyxl.utils.column_index_from_string(letters) > x_col + 1  # x left of the split
    assert len(wb["Regions"]._charts) == 1
    # the on/off cells are shaded by a plain rule (cellIs = 1), one digit wide on the Walk
    rules = [r for rng in walk.conditional_formatting for r in rng.rules]
    assert rules and all(r.type == "cellIs" and r.formula == ["1"] for r in rules)
    on = manifest.nodes["walk.L1.on"]
    assert walk.column_dimensions[openpyxl.utils.get_column_letter(on.col + 1)].width < 5
