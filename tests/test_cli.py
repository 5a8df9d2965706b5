"""The command line through click's CliRunner, and every bad input the issue names."""
import json

import pytest
import torch
from torch import nn

from sheetnet.checkpoint import save_checkpoint
from sheetnet.loaders import load_checkpoint
from cli_helpers import invoke, one_line_error


def test_train_export_verify_run(tmp_path):
    model, book = tmp_path / "s.pt", tmp_path / "s.xlsx"
    res = invoke("train", "sqrt", model, "--hidden", "2,2", "--seed", "1", "--steps", "300")
    assert res.exit_code == 0, res.output
    assert load_checkpoint(model)["config"]["sizes"] == [1, 2, 2, 1]
    res = invoke("export", model, book)
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and book.is_file()
    res = invoke("verify", book, model)
    assert res.exit_code == 0, res.output
    assert "all match" in res.output and "L1.z" in res.output
    res = invoke("run", book, "--input", "2.0", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["inputs"] == [2.0] and len(out["outputs"]) == 1 and len(out["outputs"][0]) == 1


def test_training_is_seeded(tmp_path):
    for name in ("a.pt", "b.pt"):
        assert invoke("train", "sqrt", tmp_path / name, "--hidden", "3", "--steps", "50").exit_code == 0
    a, b = (load_checkpoint(tmp_path / n)["state_dict"] for n in ("a.pt", "b.pt"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_verify_fails_on_an_edited_weight(tmp_path, examples):
    import openpyxl
    from sheetnet.manifest import read_manifest
    book = tmp_path / "s.xlsx"
    assert invoke("export", examples / "sqrt_2x2.pt", book).exit_code == 0
    entry = read_manifest(book).nodes["L1.W"]
    wb = openpyxl.load_workbook(book)
    wb[entry.sheet].cell(entry.row + 1, entry.col + 1).value = 3.0
    wb.save(book)
    res = invoke("verify", book, examples / "sqrt_2x2.pt")
    assert res.exit_code == 1
    assert "MISMATCH" in res.output


def _save_mlp(path, model, meta=None):
    sizes = [model[0].in_features] + [m.out_features for m in model if isinstance(m, nn.Linear)]
    save_checkpoint(path, "mlp", {"sizes": sizes, "activation": "relu"}, model.state_dict(),
                    meta or {})


def test_missing_model(tmp_path):
    one_line_error(invoke("export", tmp_path / "nope.pt", tmp_path / "o.xlsx"), "does not exist")
    assert not (tmp_path / "o.xlsx").exists()


def test_corrupt_model(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage" * 50)
    one_line_error(invoke("export", bad, tmp_path / "o.xlsx"), "not a loadable PyTorch checkpoint")
    assert list(tmp_path.iterdir()) == [bad]


def test_foreign_checkpoint(tmp_path):
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.ones(3)}, foreign)
    one_line_error(invoke("export", foreign, tmp_path / "o.xlsx"), "cannot tell the format", "weights")
    one_line_error(invoke("export", foreign, tmp_path / "o.xlsx", "--format", "sheetnet"),
         "not a sheetnet checkpoint")


def test_pickle_that_runs_code_is_refused(tmp_path):
    import pickle
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as f:
        pickle.dump({"format": "sheetnet", "x": Evil()}, f)
    one_line_error(invoke("export", evil, tmp_path / "o.xlsx"), "not a loadable PyTorch checkpoint")
    assert not marker.exists()


def test_missing_output_folder(tmp_path, examples):
    one_line_error(invoke("export", examples / "sqrt_2x2.pt", tmp_path / "no" / "o.xlsx"), "does not exist")


def test_existing_output_needs_force(tmp_path, examples):
    out = tmp_path / "o.xlsx"
    out.write_text("keep me")
    one_line_error(invoke("export", examples / "sqrt_2x2.pt", out), "already exists", "--force")
    assert out.read_text() == "keep me"
    assert invoke("export", examples / "sqrt_2x2.pt", out, "--force").exit_code == 0
    assert out.read_bytes()[:2] == b"PK"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weights(tmp_path, bad):
    model = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        model[2].weight[0, 1] = bad
    path = tmp_path / "nan.pt"
    _save_mlp(path, model)
    one_line_error(invoke("export", path, tmp_path / "o.xlsx"), "2.weight", "NaN or infinite")
    assert not (tmp_path / "o.xlsx").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["nan.pt"]  # no temp file left either


def test_unsupported_layer_is_named(tmp_path):
    from sheetnet.capture.mlp import capture_mlp
    from sheetnet.errors import SheetnetError
    model = nn.Sequential(nn.Linear(2, 3), nn.Softsign(), nn.Linear(3, 1))
    with pytest.raises(SheetnetError, match=r"layer Softsign at 1 is not supported; supported: Linear"):
        capture_mlp(model, {})


def test_checkpoint_config_mismatch(tmp_path):
    model = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1))
    path = tmp_path / "m.pt"
    save_checkpoint(path, "mlp", {"sizes": [1, 3, 1]}, model.state_dict(), {})
    one_line_error(invoke("export", path, tmp_path / "o.xlsx"), "do not fit its config")


def test_unknown_architecture(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, "resnet", {}, {}, {})
    one_line_error(invoke("export", path, tmp_path / "o.xlsx"), "architecture 'resnet' is not supported")


def test_verify_and_run_reject_a_foreign_workbook(tmp_path, examples):
    import openpyxl
    book = tmp_path / "plain.xlsx"
    openpyxl.Workbook().save(book)
    one_line_error(invoke("verify", book, examples / "sqrt_2x2.pt"), "not written by sheetnet")
    one_line_error(invoke("run", book, "--input", "1"), "not written by sheetnet")
    junk = tmp_path / "junk.xlsx"
    junk.write_bytes(b"not a zip")
    one_line_error(invoke("run", junk), "not a readable .xlsx")


def test_verify_rejects_the_wrong_model(tmp_path, examples):
    book = tmp_path / "s.xlsx"
    assert invoke("export", examples / "sqrt_2x2.pt", book).exit_code == 0
    one_line_error(invoke("verify", book, examples / "sqrt_net.pt"), "was not exported from this model")


def test_run_rejects_the_wrong_number_of_inputs(tmp_path, examples):
    book = tmp_path / "s.xlsx"
    assert invoke("export", examples / "sqrt_2x2.pt", book).exit_code == 0
    one_line_error(invoke("run", book, "--input", "1,2"), "takes 1 value(s), got 2")
    one_line_error(invoke("run", book, "--input", "abc"), "comma-separated numbers")


def test_the_library_exports_with_the_clis_defaults():
    # export() called from Python must write what `sheetnet export` writes: a GPT-2-sized model
    # exported with the library's old default (--style cells) had 2.3M per-cell formulas
    from sheetnet.cli import main
    from sheetnet.options import ExportOptions
    params = {p.name: p.default for p in main.commands["export"].params}
    assert ExportOptions().style == params["style"] == "auto"
    assert ExportOptions().precision == params["precision"] == "auto"
