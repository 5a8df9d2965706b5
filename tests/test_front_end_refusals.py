"""Every refusal of the torch.export front end, one row each: through the Python API
(``sheetnet.export(model, out, example_inputs=...)``) and, where a file can carry the case, the
command line in a child process.  Each is one line naming what is refused (and, for an op, its
module path), a SheetnetError or a non-zero exit with no traceback, and no output file (nor a
temporary one) left behind.

Integer ids feeding an embedding: their cells carry a whole-number 0..V-1 validation rule
(ir.Bound), an example id out of range is refused at export, and ``run`` refuses one in a line.
"""
from __future__ import annotations

import copy
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import sheetnet
from hostile.helpers import files_in, no_temp_files, refused, run_cli
from lo_helpers import validation_rule
from sheetnet.errors import SheetnetError
from sheetnet.manifest import read_manifest


class Model(nn.Module):
    """The user's module: ``enc`` (a Sequential, so ops get a module path) then ``fn``."""

    def __init__(self, inner: nn.Module | None = None, fn=None, **modules):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(4, 4), inner or nn.Identity())
        self.fn = fn or (lambda m, h: h)
        for name, module in modules.items():
            setattr(self, name, module)

    def forward(self, x):
        return self.fn(self, self.enc(x))


class Call(nn.Module):
    """A weightless layer calling ``fn``: its ops belong to the module path "enc.1"."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class Bag(nn.Module):
    """Embedding (V = 10 rows), mean over the words, a Linear: ids (1, T) in."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.head = nn.Linear(4, 3)

    def forward(self, ids):
        return self.head(self.emb(ids).mean(dim=1))


def _nan_weights() -> nn.Module:
    model = Model(nn.Tanh())
    with torch.no_grad():
        model.enc[0].weight[2, 1] = float("nan")
    return model


def _batch_norm_training(m, h):
    # F.batch_norm with training=True: a batch's own statistics, which a sheet does not compute
    return F.batch_norm(h, m.bn.running_mean, m.bn.running_var, training=True)


def _x(*shape):
    return lambda: (torch.randn(*shape),)


# (id, model, example inputs, the message: a regex matched from its start)
REFUSED = [
    ("unsupported op", lambda: Model(Call(lambda x: torch.fft.rfft(x).abs())), _x(2, 4),
     r"aten\.fft_rfft at enc\.1 is not supported; supported: .*aten\.linear, .*aten\.tanh"),
    ("data-dependent shape", lambda: Model(Call(torch.nonzero)), _x(2, 4),
     r"aten\.nonzero at enc\.1 has a data-dependent shape \(u\d+, 2\); a sheet needs fixed "),
    ("batch norm in training", lambda: Model(fn=_batch_norm_training, bn=nn.BatchNorm1d(4)),
     _x(3, 4), r"aten\.batch_norm at Model\.forward in training mode is not supported: export "
               r"the model in eval\(\)$"),
    ("dropout in training", lambda: Model(Call(lambda x: F.dropout(x, 0.5, training=True))),
     _x(3, 4), r"aten\.dropout at enc\.1 in training mode is not supported: export the model "),
    ("broadcast along a middle dim", lambda: Model(
        fn=lambda m, h: h.reshape(2, 2, 2) + m.cube, cube=nn.Parameter(torch.ones(2, 1, 2))),
     _x(2, 4), r"aten\.add at Model\.forward broadcasts \(2, 1, 2\) to \(2, 2, 2\): only a "
               r"whole tensor, a row of features, a column or a scalar is supported$"),
    ("broadcast of a batch against a grid", lambda: Model(
        fn=lambda m, h: h[:, None, :] + m.grid, grid=nn.Parameter(torch.ones(3, 4))),
     _x(2, 4), r"aten\.add at Model\.forward broadcasts \(2, 1, 4\) to \(2, 3, 4\)"),
    ("mean over the batch dim", lambda: Model(Call(lambda x: x.mean(dim=0))), _x(2, 3, 4),
     r"aten\.mean at enc\.1 mean over dims \[0\] of \(2, 3, 4\): only the last dim"),
    ("sum over two dims", lambda: Model(Call(lambda x: x.sum(dim=(0, 1)))), _x(2, 3, 4),
     r"aten\.sum at enc\.1 sum over dims \[0, 1\] of \(2, 3, 4\)"),
    ("softmax over the batch dim", lambda: Model(nn.Softmax(dim=0)), _x(2, 4),
     r"aten\.softmax at enc\.1 softmax along dim 0: only the last dim"),
    ("NaN weights", _nan_weights, _x(2, 4),
     r"weight enc\.0\.weight holds nan at \[2, 1\]: cannot export NaN or infinite weights$"),
    ("too big for a sheet", lambda: Model(), _x(1_100_000, 4),
     r"tensor x \(1,100,000 x 4\) does not fit on sheet 'Input': .* a sheet holds 1,048,576 "
     r"rows x 16,384 columns$"),
    ("an id past the embedding", Bag, lambda: (torch.tensor([[1, 2, 10, 3]]),),
     r"example input ids holds id 10 at \[0, 2\]: the embedding at emb has 10 rows, ids 0 to "
     r"9$"),
    ("a negative id", Bag, lambda: (torch.tensor([[-1, 2]]),),
     r"example input ids holds id -1 at \[0, 0\]: the embedding at emb has 10 rows"),
    ("inputs not tensors", lambda: Model(), lambda: ([1.0, 2.0],),
     r"example_inputs must be a tuple of tensors$"),
]


@pytest.mark.filterwarnings("ignore::UserWarning")   # torch's own, before the refusal
@pytest.mark.parametrize("make, inputs, message", [r[1:] for r in REFUSED],
                         ids=[r[0] for r in REFUSED])
def test_the_api_refuses_in_one_line_and_writes_nothing(tmp_path, make, inputs, message):
    torch.manual_seed(0)
    out = tmp_path / "model.xlsx"
    with pytest.raises(SheetnetError) as info:
        sheetnet.export(make(), out, example_inputs=inputs())
    text = str(info.value)
    assert re.match(message, text) and "\n" not in text, text
    assert files_in(tmp_path) == set()   # neither the workbook nor a temporary file


def test_a_module_in_training_mode_is_exported_in_eval_and_left_as_it_was(tmp_path, engine):
    # not a refusal: nn.Dropout and nn.BatchNorm1d of a module in train() are exported as
    # eval() computes them, and the caller's module (perhaps mid-training) keeps its modes
    torch.manual_seed(1)
    model = Model(nn.Dropout(0.5), fn=lambda m, h: m.bn(h), bn=nn.BatchNorm1d(4)).train()
    model.enc.eval()   # a mix, as a notebook might leave it
    modes = {name: m.training for name, m in model.named_modules()}
    x = torch.randn(3, 4)
    book = sheetnet.export(model, tmp_path / "m.xlsx", example_inputs=(x,)).path
    assert {name: m.training for name, m in model.named_modules()} == modes
    report = sheetnet.verify(book, model, example_inputs=(x,), engine=engine, tol=1e-9)
    assert report.ok, report.table()
    with torch.no_grad():
        want = copy.deepcopy(model).double().eval()(x.double()).numpy()
    got = np.asarray(sheetnet.run(book, engine=engine)["outputs"])
    assert np.abs(got - want).max() <= 1e-9


# --- the command line: files a user hands over ---------------------------------------------------
def _pt2(folder):
    path = folder / "model.pt2"
    torch.export.save(torch.export.export(Model(), (torch.randn(2, 4),)), path)
    return path


def _nan_state_dict(folder):
    path = folder / "nan.pt"
    model = nn.Sequential(nn.Linear(3, 2))
    with torch.no_grad():
        model[0].bias[1] = float("inf")
    torch.save(model.state_dict(), path)
    return path


CLI_REFUSED = [
    ("a .pt2 program", _pt2, ("is a torch.export program", "torch.export.load can run code")),
    ("a .pt2 program renamed", lambda f: _pt2(f).rename(f / "model.pt") or f / "model.pt",
     ("is a torch.export program",)),
    ("infinite weights", _nan_state_dict, ("weight 0.bias holds inf at [1",
                                           "cannot export NaN or infinite weights")),
]


@pytest.mark.parametrize("make, words", [r[1:] for r in CLI_REFUSED],
                         ids=[r[0] for r in CLI_REFUSED])
def test_the_command_line_refuses_in_one_line_and_writes_nothing(tmp_path, make, words):
    source = make(tmp_path)
    before = files_in(tmp_path)
    refused(run_cli("export", source, tmp_path / "out.xlsx"), *words)
    assert files_in(tmp_path) == before
    no_temp_files(tmp_path)
    with pytest.raises(SheetnetError, match=re.escape(words[0])):   # the API says the same
        sheetnet.export(str(source), tmp_path / "out.xlsx")
    assert files_in(tmp_path) == before


# --- ids: a rule in their cells, and run refuses what the rule would ---------------------------
@pytest.fixture(scope="module")
def bag_book(tmp_path_factory):
    torch.manual_seed(2)
    model, ids = Bag(), torch.tensor([[1, 2, 7, 9]])
    book = tmp_path_factory.mktemp("bag") / "bag.xlsx"
    sheetnet.export(model, book, example_inputs=(ids,))
    return book, model, ids


def test_id_cells_carry_a_whole_number_rule_from_0_to_v_minus_1(engine, bag_book):
    book, _, _ = bag_book
    entry = read_manifest(book).nodes["ids"]
    assert entry.bound.words() == "a whole number from 0 to 9"
    for k in range(entry.shape[0]):   # LibreOffice reads the rule on every id cell
        assert validation_rule(engine, book, entry.sheet, entry.row + k, entry.col) == (
            "WHOLE", "BETWEEN", "0", True)


@pytest.mark.parametrize("ids, bad", [([1, 2, 10, 3], "10"), ([1, -1, 2, 3], "-1"),
                                      ([1, 2.5, 2, 3], "2.5")])
def test_run_refuses_an_id_out_of_range_in_one_line(tmp_path, bag_book, ids, bad):
    book, _, _ = bag_book
    with pytest.raises(SheetnetError, match=rf"^ids must be a whole number from 0 to 9 "
                                            rf"\(got {re.escape(bad)}(\.0)?\)$"):
        sheetnet.run(book, ids)
    out = run_cli("run", book, "--input", ",".join(str(v) for v in ids))
    refused(out, "ids must be a whole number from 0 to 9")


def test_ids_in_range_run_and_verify(engine, bag_book):
    book, model, ids = bag_book
    report = sheetnet.verify(book, model, example_inputs=(ids,), engine=engine, tol=1e-9)
    assert report.ok, report.table()
    new = [0, 9, 9, 4]
    got = sheetnet.run(book, new, engine=engine)["outputs"]
    with torch.no_grad():
        want = copy.deepcopy(model).double()(torch.tensor([new])).numpy()
    assert np.abs(np.asarray(got) - want).max() <= 1e-9
