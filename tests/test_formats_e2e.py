"""Checkpoints from elsewhere, end to end: export -> LibreOffice recalculation -> every tensor
against PyTorch float64.  verify is not told the format again: the workbook remembers how the
export read the model."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from foreign import CHARS, hf_gpt2, random_gpt, write_meta_pkl, write_mingpt_workdir, write_nanogpt
from sheetnet.cli import main
from sheetnet.pipeline import export
from sheetnet.options import ExportOptions, TOLERANCE
from sheetnet.verifier import verify
from sheetnet.manifest import LoadSpec, read_manifest

TOKENS = [1, 2, 3]


def export_and_verify(path, book, engine, **opts):
    export(path, book, ExportOptions(tokens=TOKENS, **opts))
    report = verify(book, path, engine=engine)
    assert report.ok, report.table()
    assert report.max_abs_err <= TOLERANCE
    return report


def test_hf_gpt2_workbook(engine, tmp_path):
    hf = hf_gpt2(vocab_size=len(CHARS), n_positions=8)
    hf.save_pretrained(tmp_path / "hf")
    (tmp_path / "hf" / "vocab.json").write_text(json.dumps({ch: i for i, ch in enumerate(CHARS)}))
    export_and_verify(tmp_path / "hf", tmp_path / "hf.xlsx", engine, fmt="hf-gpt2")
    assert read_manifest(tmp_path / "hf.xlsx").load == LoadSpec(fmt="hf-gpt2")


def test_nanogpt_workbook(engine, tmp_path):
    path = write_nanogpt(tmp_path / "out", random_gpt(seed=7, bias=False), compiled=True)
    export_and_verify(path, tmp_path / "nano.xlsx", engine)   # detected, meta.pkl beside


def test_nanogpt_workbook_with_the_meta_sample_py_would_read(engine, tmp_path, monkeypatch):
    # exported from nanoGPT's root, where sample.py finds data/<dataset>/meta.pkl, and verified
    # from elsewhere: the workbook remembers which meta.pkl it read
    root = tmp_path / "nanoGPT"
    path = write_nanogpt(tmp_path / "runs" / "ckpt", random_gpt(seed=9), vocab=False)
    (root / "data" / "shakespeare_char").mkdir(parents=True)
    write_meta_pkl(root / "data" / "shakespeare_char" / "meta.pkl")
    monkeypatch.chdir(root)
    export(path, tmp_path / "nano.xlsx", ExportOptions(prompt="abc"))
    monkeypatch.chdir(tmp_path)
    report = verify(tmp_path / "nano.xlsx", path, engine=engine)
    assert report.ok and report.max_abs_err <= TOLERANCE, report.table()
    assert read_manifest(tmp_path / "nano.xlsx").run.vocab == tuple(CHARS)


def test_mingpt_workbook(engine, tmp_path):
    folder = write_mingpt_workdir(tmp_path / "chargpt", random_gpt(seed=8, gelu="tanh", tied=False))
    meta = write_meta_pkl(tmp_path / "elsewhere.pkl")
    export_and_verify(folder, tmp_path / "min.xlsx", engine, fmt="mingpt", meta=str(meta))


def test_sequential_state_dict_workbook(engine, tmp_path):
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(2, 5), nn.GELU(), nn.Linear(5, 3), nn.LeakyReLU(0.25),
                          nn.Linear(3, 1))
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    export(tmp_path / "sd.pt", tmp_path / "sd.xlsx", ExportOptions(activations="gelu,leaky_relu:0.25"))
    report = verify(tmp_path / "sd.xlsx", tmp_path / "sd.pt", engine=engine)
    assert report.ok, report.table()


def test_whole_sequential_through_the_cli(tmp_path):
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 4), nn.Sigmoid(), nn.Linear(4, 2))
    torch.save(model, tmp_path / "seq.pt")
    book = tmp_path / "seq.xlsx"
    run = CliRunner()
    res = run.invoke(main, ["export", str(tmp_path / "seq.pt"), str(book)])
    assert res.exit_code == 0, res.output
    res = run.invoke(main, ["verify", str(book), str(tmp_path / "seq.pt")])
    assert res.exit_code == 0 and "all match" in res.output, res.output
    res = run.invoke(main, ["run", str(book), "--input", "0.5,-1,2", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    with torch.no_grad():
        want = model.double()(torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)).numpy()
    assert out["inputs"] == [0.5, -1.0, 2.0]
    assert np.abs(np.array(out["outputs"]) - want).max() <= TOLERANCE


@pytest.mark.parametrize("fmt", ["mlp-module", "auto"])
def test_verify_refuses_another_model(engine, tmp_path, fmt):
    torch.manual_seed(5)
    a, b = (nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, n)) for n in (1, 2))
    torch.save(a, tmp_path / "a.pt")
    torch.save(b, tmp_path / "b.pt")
    export(tmp_path / "a.pt", tmp_path / "a.xlsx", ExportOptions(fmt=fmt))
    with pytest.raises(Exception, match="not exported from this model"):
        verify(tmp_path / "a.xlsx", tmp_path / "b.pt", engine=engine)
