"""``sheetnet export --train``, ``verify`` and ``run --json`` on a training workbook, and every
refusal as one line with no file written."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from sheetnet.capture.train_data import TrainOptions
from sheetnet.errors import SheetnetError
from sheetnet.options import ExportOptions
from sheetnet.pipeline import export

from cli_helpers import invoke, one_line_error

SQRT_CSV = "x,y\n0,0\n1,1\n4,2\n9,3\n"


def test_export_verify_run(examples, tmp_path):
    (tmp_path / "d.csv").write_text(SQRT_CSV)
    book = tmp_path / "learn.xlsx"
    res = invoke("export", examples / "sqrt_net.pt", book, "--train", tmp_path / "d.csv",
                 "--steps", 4, "--lr", 0.01, "--optimizer", "momentum", "--batch", 2)
    assert res.exit_code == 0, res.output
    assert "Step 4" in _sheets(book) and "Step 5" not in _sheets(book)
    res = invoke("verify", book, examples / "sqrt_net.pt")
    assert res.exit_code == 0, res.output
    assert "all match" in res.output and "s4.new.L1.W" in res.output
    res = invoke("run", book, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert len(out["loss"]) == 4 and all(isinstance(v, float) for v in out["loss"])
    assert len(out["outputs"]) == 4  # the trained net on every example


def test_one_step_reports_a_list(examples, tmp_path):
    (tmp_path / "d.csv").write_text(SQRT_CSV)
    book = tmp_path / "learn.xlsx"
    assert invoke("export", examples / "sqrt_2x2.pt", book, "--train", tmp_path / "d.csv",
                  "--steps", 1).exit_code == 0
    assert len(json.loads(invoke("run", book, "--json").output)["loss"]) == 1


def _sheets(book):
    from sheetnet.xlsx_read import Book
    with Book(book) as b:
        return list(b.sheets)


# (what the data file holds or the options say, words the one-line error must hold)
BAD = [
    ("sqrt_net.pt", "x\n1\n2\n", [], ["1 column(s)", "1 input(s) then 1 target(s)"]),
    ("sqrt_net.pt", "x,y,z\n1,2,3\n", [], ["3 column(s)", "2 columns"]),
    ("sqrt_net.pt", "x,y\n1,2\n3\n", [], ["line 3", "1 column(s)"]),
    ("sqrt_net.pt", "x,y\n1,nan\n", [], ["line 2", "column y", "not a finite number"]),
    ("sqrt_net.pt", "x,y\n1,two\n", [], ["line 2", "'two' is not a number"]),
    ("sqrt_net.pt", "x,y\n", [], ["no rows"]),
    ("sqrt_net.pt", SQRT_CSV, ["--steps", 0], ["--steps", "1 to"]),
    ("sqrt_net.pt", SQRT_CSV, ["--batch", "some"], ["--batch", "'some'"]),
    ("sqrt_net.pt", SQRT_CSV, ["--batch", 9], ["--batch 9", "4 examples"]),
    ("sqrt_net.pt", SQRT_CSV, ["--lr", -1], ["--lr", "above 0"]),
    ("textnet.pt", "hello world\ncat zebra\n", [], ["pair 2", "'zebra' is not in"]),
    ("textnet.pt", "hello world extra\n", [], ["line 1", "two words"]),
    ("gpt.pt", "a b\n", [], ["not supported", "GPT"]),
]


@pytest.mark.parametrize("model, data, extra, words", BAD)
def test_bad_input_is_one_line(examples, tmp_path, model, data, extra, words):
    path = examples / model
    (tmp_path / "d.txt").write_text(data)
    book = tmp_path / "learn.xlsx"
    one_line_error(invoke("export", path, book, "--train", tmp_path / "d.txt", *extra), *words)
    assert not book.exists()


def test_train_options_need_train(examples, tmp_path):
    one_line_error(invoke("export", examples / "sqrt_net.pt", tmp_path / "b.xlsx", "--steps", 3),
                   "--steps needs --train")
    assert not (tmp_path / "b.xlsx").exists()


def test_missing_data_file(examples, tmp_path):
    one_line_error(invoke("export", examples / "sqrt_net.pt", tmp_path / "b.xlsx", "--train",
                          tmp_path / "nope.csv"), "cannot read", "nope.csv")


def test_an_op_without_derivative_is_refused_by_name(tmp_path):
    # every activation a Sequential holds has a derivative; a module through the torch.export
    # front end may hold an op that has none yet (batch norm)
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 1)).eval()
    (tmp_path / "d.csv").write_text("x1,x2,y\n1,2,3\n")
    with pytest.raises(SheetnetError, match=r"^op BatchNorm \(node .*\) has no derivative yet"):
        export(model, tmp_path / "b.xlsx", ExportOptions(), example_inputs=(torch.ones(1, 2),),
               train=TrainOptions(data=str(tmp_path / "d.csv")))
    assert not (tmp_path / "b.xlsx").exists()
