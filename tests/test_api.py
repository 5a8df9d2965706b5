"""The Python API (sheetnet.export, verify, run, import_book): an in-memory model takes the path a
saved one takes, and is checked against PyTorch in float64 after LibreOffice recalculates it."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import sheetnet
from sheetnet import loaders

README = Path(__file__).resolve().parent.parent / "README.md"
TOL = 1e-9


def _mlp(dtype: torch.dtype) -> nn.Sequential:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 4), nn.ReLU(),
                         nn.Linear(4, 2)).to(dtype)


def _torch64(model: nn.Module, x) -> np.ndarray:
    # the model in float64, on a copy (the caller's module keeps its dtype)
    import copy
    with torch.no_grad():
        return copy.deepcopy(model).double()(torch.as_tensor(x, dtype=torch.float64)).numpy()


# (name, dtype, example_inputs as given): one tensor, a 1-tuple of a (1, in) tensor
CASES = [
    ("float32", torch.float32, torch.tensor([0.5, -1.25, 2.0])),
    ("float64", torch.float64, (torch.tensor([[1.5, 0.25, -3.0]], dtype=torch.float64),)),
]


@pytest.mark.parametrize("name,dtype,example", CASES, ids=[c[0] for c in CASES])
def test_in_memory_sequential_exports_verifies_and_runs(tmp_path, engine, name, dtype, example):
    model = _mlp(dtype)
    book = tmp_path / f"{name}.xlsx"
    res = sheetnet.export(model, book, example_inputs=example)
    assert res.path == book and book.is_file() and res.sheets == 5
    assert res.architecture[:2] == ("0: Linear 3 -> 5", "1: Tanh")
    assert next(model.parameters()).dtype == dtype  # the caller's module is left as it was

    report = sheetnet.verify(book, model, engine=engine, tol=TOL)
    assert report.ok and report.max_abs_err <= TOL, report.table()
    assert sum(r.against == "torch" for r in report.rows) == 5  # 3 Linear + 2 activations

    x = np.reshape(np.asarray(example[0] if isinstance(example, tuple) else example), (1, 3))
    kept = sheetnet.run(book, engine=engine)  # the example was written into the Input sheet
    assert kept["inputs"] == pytest.approx(x.ravel().tolist(), abs=0)
    assert np.abs(np.array(kept["outputs"]) - _torch64(model, x)).max() <= TOL
    new = torch.tensor([[-0.75, 4.0, 0.125]])
    out = sheetnet.run(book, inputs=new, engine=engine)
    assert np.abs(np.array(out["outputs"]) - _torch64(model, new)).max() <= TOL


def test_a_path_works_the_same(tmp_path, engine):
    model = _mlp(torch.float32)
    saved = tmp_path / "mlp.pt"
    torch.save(model, saved)
    from_path = sheetnet.export(str(saved), tmp_path / "path.xlsx")
    in_memory = sheetnet.export(model, tmp_path / "mem.xlsx")
    assert (from_path.sheets, from_path.weight_cells, from_path.formula_cells,
            from_path.architecture) == (in_memory.sheets, in_memory.weight_cells,
                                        in_memory.formula_cells, in_memory.architecture)
    # each book verifies against the model in either form: the same model, read the same way
    for book in (from_path.path, in_memory.path):
        for given in (saved, model):
            report = sheetnet.verify(book, given, engine=engine)
            assert report.ok and report.max_abs_err <= TOL, report.table()


def test_import_book_gives_the_model_back(tmp_path):
    model = _mlp(torch.float32)
    book = sheetnet.export(model, tmp_path / "m.xlsx").path
    res = sheetnet.import_book(book, tmp_path / "back.pt")
    assert res.path == tmp_path / "back.pt" and "mlp-module checkpoint" in res.notes[-1]
    back = loaders.load(res.path)["state_dict"]
    for key, value in model.state_dict().items():
        assert torch.equal(back[key], value), key


def test_progress_true_a_callable_and_false(tmp_path, capsys):
    model = _mlp(torch.float64)
    seen = []
    res = sheetnet.export(model, tmp_path / "a.xlsx", progress=lambda *a: seen.append(a))
    assert [s[:2] for s in seen] == [(k, res.sheets + 1) for k in range(1, res.sheets + 2)]
    assert seen[-1][2] == "_sheetnet"
    capsys.readouterr()
    sheetnet.export(model, tmp_path / "b.xlsx", progress=True)  # stderr is no terminal here
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"writing sheets: {k}/{res.sheets + 1} {s[2]}"
                     for k, s in enumerate(seen, start=1)]
    sheetnet.export(model, tmp_path / "c.xlsx", progress=False)
    assert capsys.readouterr().err == ""


class _Residual(nn.Module):
    # not a Sequential: the torch.export front end (capture/torch_export.py) lowers it
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 3), nn.Linear(3, 2)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x)) + x)


def test_any_other_module_goes_through_torch_export(tmp_path, engine):
    torch.manual_seed(5)
    model, x = _Residual(), torch.tensor([[0.5, -1.0, 2.0]])
    book = sheetnet.export(model, tmp_path / "res.xlsx", example_inputs=(x,)).path
    report = sheetnet.verify(book, model, example_inputs=(x,), engine=engine)
    assert report.ok and report.max_abs_err <= TOL, report.table()
    assert {"a.linear", "tanh", "add", "b.linear_1"} <= {r.name for r in report.rows}
    new = torch.tensor([[1.0, -2.0, 0.25]])
    out = sheetnet.run(book, inputs=new, engine=engine)
    assert np.abs(np.array(out["outputs"]) - _torch64(model, new)).max() <= TOL
    # no file to re-read the model from: verify says so, in one line
    with pytest.raises(sheetnet.SheetnetError, match="exported from an nn.Module in memory"):
        sheetnet.verify(book, tmp_path / "res.pt", engine=engine)
    with pytest.raises(sheetnet.SheetnetError, match="example_inputs are needed for a _Residual"):
        sheetnet.verify(book, model, engine=engine)


# (what is wrong, call, words of the one-line error); no file may be left behind
BAD = [
    ("example of the wrong width", lambda out: sheetnet.export(
        _mlp(torch.float32), out, example_inputs=(torch.zeros(2),)), ["shape (3,)", "(2,)"]),
    ("two example rows", lambda out: sheetnet.export(
        _mlp(torch.float32), out, example_inputs=torch.zeros(2, 3)), ["(1, 3)", "(2, 3)"]),
    ("two example tensors", lambda out: sheetnet.export(
        _mlp(torch.float32), out, example_inputs=(torch.zeros(3), torch.zeros(3))), ["got 2"]),
    ("a NaN example", lambda out: sheetnet.export(
        _mlp(torch.float32), out, example_inputs=torch.tensor([1.0, float("nan"), 0.0])),
     ["NaN"]),
    ("not a module", lambda out: sheetnet.export([1, 2], out), ["nn.Module", "builtins.list"]),
    ("a missing file", lambda out: sheetnet.export(out.parent / "missing.pt", out),
     ["missing.pt"]),
    ("a module without example_inputs", lambda out: sheetnet.export(_Residual(), out),
     ["example_inputs", "_Residual"]),
    ("an unknown option", lambda out: sheetnet.export(_mlp(torch.float32), out, colour="red"),
     ["colour", "style"]),
    ("a bad option value", lambda out: sheetnet.export(_mlp(torch.float32), out, style="pretty"),
     ["pretty"]),
    ("a bad progress", lambda out: sheetnet.export(_mlp(torch.float32), out, progress="yes"),
     ["progress"]),
    ("verify: a missing book", lambda out: sheetnet.verify(out, _mlp(torch.float32)),
     ["out.xlsx"]),
    ("verify: a bad timeout", lambda out: sheetnet.verify(out, _mlp(torch.float32), timeout=-1),
     ["timeout"]),
    ("run: a missing book", lambda out: sheetnet.run(out, inputs=[1.0]), ["out.xlsx"]),
    ("run: inputs that are not numbers", lambda out: sheetnet.run(out, inputs=["a"]),
     ["inputs must be numbers"]),
]


@pytest.mark.parametrize("what,call,words", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_one_sheetnet_error(tmp_path, what, call, words):
    out = tmp_path / "out.xlsx"
    with pytest.raises(sheetnet.SheetnetError) as info:
        call(out)
    message = str(info.value)
    assert len(message.splitlines()) == 1 and all(w in message for w in words), message
    assert list(tmp_path.iterdir()) == []


def test_import_sheetnet_imports_neither_torch_nor_numpy():
    code = ("import sys, sheetnet; assert sheetnet.__all__; "
            "print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_functions_stay_the_api_once_the_pipeline_is_imported():
    # no submodule is named export, verify or run, so importing the pipeline (which binds each
    # submodule as an attribute of the package) leaves the API functions in place
    from sheetnet import api
    import sheetnet.pipeline  # noqa: F401
    import sheetnet.runner  # noqa: F401
    import sheetnet.verifier  # noqa: F401
    for name in ("export", "verify", "run", "import_book"):
        assert getattr(sheetnet, name) is getattr(api, name)


def _readme_example() -> str:
    # the first indented block after the "From Python" heading, dedented
    text = README.read_text(encoding="utf-8").split("## From Python", 1)[1]
    block = re.search(r"^(    \S.*\n(?:    .*\n|\n)*)", text, re.M).group(1)
    return "\n".join(line[4:] for line in block.splitlines()).strip() + "\n"


def test_the_readme_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = _readme_example()
    assert "sheetnet.export(model" in code and "sheetnet.verify(" in code
    scope: dict = {}
    exec(compile(code, str(README), "exec"), scope)
    printed = capsys.readouterr().out
    outputs = eval(printed.splitlines()[-2])  # the run's outputs, as the example prints them
    assert abs(outputs[0][0] - _torch64(scope["model"], [[4.0]])[0, 0]) <= TOL
    assert abs(outputs[0][0] - 2.0) < 0.2  # and the net learned sqrt
    assert (tmp_path / "sqrt.xlsx").is_file() and (tmp_path / "back.pt").is_file()


def test_the_guide_of_a_module_from_python_reads_as_its_own(tmp_path):
    # the Guide names the capture and tells how to verify from Python (no file to re-read), while
    # a workbook from a checkpoint file keeps the command line
    import openpyxl
    torch.manual_seed(5)
    book = sheetnet.export(_Residual(), tmp_path / "res.xlsx",
                           example_inputs=(torch.tensor([[0.5, -1.0, 2.0]]),)).path
    guide = openpyxl.load_workbook(book)["Guide"]
    text = " ".join(str(c.value) for row in guide.iter_rows() for c in row if c.value)
    assert "captured by torch.export" in text and "multi-layer perceptron" not in text
    assert 'sheetnet.verify("res.xlsx", model, example_inputs=...)' in text
    assert "sheetnet verify res.xlsx" not in text
