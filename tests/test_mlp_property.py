"""Property: any small nn.Sequential of supported layers, saved whole or as a state dict, exports
to a workbook that LibreOffice recalculates to PyTorch float64 within the tolerance, on a random
input row."""
from __future__ import annotations

import numpy as np
import openpyxl
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from sheetnet.pipeline import export
from sheetnet.options import TOLERANCE, ExportOptions
from sheetnet.runner import run
from sheetnet.verifier import verify
from sheetnet.manifest import read_manifest

# (--activations name, module) for every supported activation
ACTIVATIONS = {
    "relu": lambda s: nn.ReLU(), "tanh": lambda s: nn.Tanh(), "sigmoid": lambda s: nn.Sigmoid(),
    "gelu": lambda s: nn.GELU(), "gelu_tanh": lambda s: nn.GELU(approximate="tanh"),
    "leaky_relu": lambda s: nn.LeakyReLU(s), "identity": lambda s: nn.Identity(),
    "silu": lambda s: nn.SiLU(), "softplus": lambda s: nn.Softplus(), "elu": lambda s: nn.ELU(),
}


@st.composite
def mlps(draw):
    n = draw(st.integers(1, 4))
    widths = draw(st.lists(st.integers(1, 16), min_size=n + 1, max_size=n + 1))
    names = draw(st.lists(st.sampled_from(sorted(ACTIVATIONS)), min_size=n - 1, max_size=n - 1))
    slope = draw(st.sampled_from([0.01, 0.2, 0.5]))
    x = draw(st.lists(st.floats(-3, 3, allow_nan=False, allow_subnormal=False),
                      min_size=widths[0], max_size=widths[0]))
    return widths, names, slope, x, draw(st.booleans()), draw(st.integers(0, 2 ** 16))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=mlps())
def test_random_mlp_workbook_matches_torch(engine, tmp_path_factory, case):
    widths, names, slope, x, whole, seed = case
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(nn.Linear(a, b))
        if k < len(names):
            layers.append(ACTIVATIONS[names[k]](slope))
    model = nn.Sequential(*layers)
    folder = tmp_path_factory.mktemp("mlp")
    path, book = folder / "m.pt", folder / "m.xlsx"
    acts = ",".join(f"{n}:{slope}" if n == "leaky_relu" else n for n in names)
    if whole:
        torch.save(model, path)
        export(path, book, ExportOptions())
    else:
        torch.save(model.state_dict(), path)
        export(path, book, ExportOptions(activations=acts or None))
    _type_inputs(book, x)
    report = verify(book, path, engine=engine)
    assert report.ok and report.max_abs_err <= TOLERANCE, report.table()
    out = run(book, engine=engine)   # the typed row (openpyxl writes 16 digits) is what it computed on
    assert np.allclose(out["inputs"], x, rtol=1e-15, atol=0)
    with torch.no_grad():
        want = model.double()(torch.tensor([out["inputs"]], dtype=torch.float64)).numpy()
    assert abs(np.array(out["outputs"]) - want).max() <= TOLERANCE


def _type_inputs(book, x):
    # what a user does: type the input row into the Input sheet's cells
    entry = read_manifest(book).nodes["x"]
    wb = openpyxl.load_workbook(book)
    for j, v in enumerate(x):
        wb[entry.sheet].cell(entry.row + 1, entry.col + j + 1).value = v
    wb.save(book)


# SiLU, Softplus and ELU, added through the op library (sheetnet/ops/elementwise.py) and the layer
# specs (models/mlp.py): a user's Sequential saved whole exports and verifies in either style
NEW_ACTIVATIONS = [nn.SiLU(), nn.Softplus(beta=2.0, threshold=1.0), nn.ELU(alpha=0.7)]


@pytest.mark.parametrize("style", ["cells", "arrays"])
def test_sequential_of_silu_softplus_elu_verifies(engine, tmp_path, style):
    from sheetnet import loaders
    from sheetnet.loaders.describe import architecture_lines
    torch.manual_seed(5)
    layers = [nn.Linear(3, 6)]
    for act in NEW_ACTIVATIONS:
        layers += [act, nn.Linear(6, 6) if len(layers) < 5 else nn.Linear(6, 2)]
    model = nn.Sequential(*layers)   # Linear, SiLU, Linear, Softplus, Linear, ELU, Linear
    path, book = tmp_path / "m.pt", tmp_path / "m.xlsx"
    torch.save(model, path)
    assert architecture_lines(loaders.load(path))[1::2] == [
        "1: SiLU", "3: Softplus beta 2, threshold 1", "5: ELU alpha 0.7"]
    export(path, book, ExportOptions(style=style))
    report = verify(book, path, engine=engine, tol=1e-9)
    assert report.ok and report.max_abs_err <= 1e-9, report.table()
    assert len(report.rows) >= 7   # every Linear and activation compared
