"""The round trip: export -> weight cells edited with openpyxl (as Excel or LibreOffice would save
them) -> ``sheetnet import`` -> a checkpoint in the format the model came from.

For every format: the imported checkpoint loads with sheetnet's loaders and with the format's own
conventions, PyTorch float64 on it equals LibreOffice's recalculation of the edited workbook (every
layer, through verify), and exporting it again gives the very same weight cells.  Damaged
workbooks stop import with one line naming the sheet and cell, and leave nothing behind.
"""
from __future__ import annotations

import json
import subprocess
from unittest import mock

import numpy as np
import openpyxl
import pytest
import torch
from click.testing import CliRunner
from openpyxl.compat import safe_string
from torch import nn

from transformers import GPT2LMHeadModel

from foreign import CHARS, functional_gpt, hf_gpt2, random_gpt, write_mingpt_workdir, write_nanogpt
from sheetnet import loaders
from sheetnet.cli import main
from sheetnet.engines.libreoffice import soffice_path
from sheetnet.errors import SheetnetError
from sheetnet.pipeline import export
from sheetnet.importer import import_book
from sheetnet.manifest import TensorEntry, read_manifest
from sheetnet.options import TOLERANCE, ExportOptions
from sheetnet.runner import run
from sheetnet.verifier import verify

TOKENS = [1, 2, 3]


def weight_cells(book) -> dict[str, np.ndarray]:
    """Every weight node's cells, read with openpyxl as they lie (independently of the importer)."""
    manifest = read_manifest(book)
    wb = openpyxl.load_workbook(book, read_only=True)
    out = {}
    for name, e in manifest.nodes.items():
        if e.op == "Param":
            rows, cols = e.shape
            out[name] = np.array([list(r) for r in wb[e.sheet].iter_rows(
                min_row=e.row + 1, max_row=e.row + rows, min_col=e.col + 1,
                max_col=e.col + cols, values_only=True)], dtype=np.float64)
    wb.close()
    return out


def edit(book, out, changes: dict, exact: bool = False) -> None:
    """Save ``book`` as ``out`` with cells set: {(node, i, j): value} (value None = empty).

    openpyxl writes numbers with 16 significant digits ("%.16g"), which float32 weights survive
    (they cast back bit for bit) but float64 ones need not; ``exact`` saves every number's shortest
    exact text, as Excel and LibreOffice do."""
    manifest = read_manifest(book)
    wb = openpyxl.load_workbook(book)
    for (name, i, j), value in changes.items():
        e = manifest.nodes[name]
        wb[e.sheet].cell(e.row + i + 1, e.col + j + 1).value = value
    exact_text = lambda v: repr(float(v)) if isinstance(v, float) else safe_string(v)  # noqa: E731
    with mock.patch("openpyxl.cell._writer.safe_string", exact_text if exact else safe_string):
        wb.save(out)


def round_trip(engine, tmp_path, model, out, nudge: dict, step=0.25, float32=True, **opts):
    """Export ``model``, move each cell of ``nudge`` ({node: (i, j)}) by ``step``, import, and check
    the round trip; returns (edited book, verify's report).  float32: the new values are float32
    numbers (a float32 checkpoint holds them exactly); else float64 ones, saved exactly."""
    book, edited = tmp_path / "book.xlsx", tmp_path / "edited.xlsx"
    export(model, book, ExportOptions(**opts))
    before = weight_cells(book)
    changes = {}
    for name, (i, j) in nudge.items():
        value = before[name][i, j] + step
        changes[(name, i, j)] = float(np.float32(value)) if float32 else value
    edit(book, edited, changes, exact=not float32)
    assert import_book(edited, out) == out
    report = verify(edited, out, engine=engine)   # LibreOffice on the edited book vs PyTorch on out
    assert report.ok and report.max_abs_err <= TOLERANCE, report.table()
    again = tmp_path / "again.xlsx"
    export(out, again, ExportOptions(**{k: v for k, v in opts.items() if k != "fmt"}))
    after = weight_cells(again)
    for (name, i, j), value in changes.items():
        assert value != before[name][i, j]
        before[name][i, j] = value
    assert before.keys() == after.keys()
    for name in before:   # bit for bit: the first export's cells, with the edits
        assert np.array_equal(before[name], after[name]), name
    return edited, report


def lo_logits(engine, book) -> tuple[list[int], np.ndarray]:
    res = run(book, engine=engine)
    return res["tokens"], np.array(res["outputs"])


# --- sheetnet's own checkpoints -------------------------------------------------------------
def test_sqrt_net(engine, examples, tmp_path):
    out = tmp_path / "sqrt.pt"
    # the output layer: the Walk sheet's ReLU breakpoints (from the hidden layers) stay as they are
    edited, _ = round_trip(engine, tmp_path, examples / "sqrt_net.pt", out,
                           {"out.W": (0, 3), "out.b": (0, 0)})
    a, b = (torch.load(p, weights_only=True) for p in (examples / "sqrt_net.pt", out))
    assert (b["format"], b["architecture"], b["config"], b["metadata"]) == \
        ("sheetnet", a["architecture"], a["config"], a["metadata"])
    assert list(a["state_dict"]) == list(b["state_dict"])
    assert all(v.dtype == torch.float32 for v in b["state_dict"].values())
    assert not torch.equal(a["state_dict"]["4.bias"], b["state_dict"]["4.bias"])
    assert torch.equal(a["state_dict"]["2.weight"], b["state_dict"]["2.weight"])


def test_text_net(engine, examples, tmp_path):
    out = tmp_path / "text.pt"
    round_trip(engine, tmp_path, examples / "textnet.pt", out,
               {"embed.W": (1, 0), "L1.W": (0, 1), "out.b": (2, 0)}, prompt="cat")
    a, b = (torch.load(p, weights_only=True) for p in (examples / "textnet.pt", out))
    assert b["metadata"] == a["metadata"] and b["config"] == a["config"]   # vocab, pairs, seed ...


def test_gpt_tied_weights_written_once(engine, examples, tmp_path):
    out = tmp_path / "gpt.pt"
    # wte is also the LM head: one edited cell moves both, and both come back tied
    edited, _ = round_trip(engine, tmp_path, examples / "gpt.pt", out,
                           {"wte": (2, 5), "h0.attn.c_attn.W": (3, 1), "ln_f.gain": (0, 4),
                            "h1.mlp.c_fc.b": (7, 0)}, tokens=TOKENS, context=8)
    b = torch.load(out, weights_only=True)
    sd = b["state_dict"]
    assert torch.equal(sd["lm_head.weight"], sd["transformer.wte.weight"])
    assert sd["transformer.ln_f.weight"].shape == (32,)
    assert b["metadata"]["vocab"] == torch.load(examples / "gpt.pt", weights_only=True)["metadata"]["vocab"]


# --- checkpoints from elsewhere ---------------------------------------------------------------
def test_hf_gpt2_folder(engine, tmp_path):
    hf = hf_gpt2(vocab_size=len(CHARS), n_positions=8)
    hf.save_pretrained(tmp_path / "hf")
    # GPT-2's byte-level spelling ("Ġ" is a space, as merges.txt beside it says): the sheets show
    # the text, the folder gets vocab.json and merges.txt back as they were
    byte_level = {ch.replace(" ", "Ġ"): i for i, ch in enumerate(CHARS)}
    (tmp_path / "hf" / "vocab.json").write_text(json.dumps(byte_level, ensure_ascii=False))
    (tmp_path / "hf" / "merges.txt").write_text("#version: 0.2\n")
    out = tmp_path / "hf_out"
    # c_attn is a Conv1D, stored (in, out): the workbook shows it (out, in), import turns it back
    edited, _ = round_trip(engine, tmp_path, tmp_path / "hf", out,
                           {"h0.attn.c_attn.W": (5, 2), "wte": (1, 0), "h1.ln_2.bias": (0, 3)},
                           tokens=TOKENS, fmt="hf-gpt2")
    # the folder as save_pretrained wrote it: config, weights, and the other files as they were
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(p.name for p in (tmp_path / "hf").iterdir())
    assert {"config.json", "model.safetensors", "vocab.json", "merges.txt",
            "generation_config.json"} <= set(names)
    assert json.loads((out / "config.json").read_text()) == \
        json.loads((tmp_path / "hf" / "config.json").read_text())
    assert read_manifest(edited).vocab == tuple(CHARS)
    for name in ("vocab.json", "merges.txt", "generation_config.json"):
        assert (out / name).read_text() == (tmp_path / "hf" / name).read_text()
    assert loaders.load(out)["metadata"]["source_format"] == "hf-gpt2"
    native = GPT2LMHeadModel.from_pretrained(out, attn_implementation="eager").double().eval()
    ids, logits = lo_logits(engine, edited)
    with torch.no_grad():
        want = native(torch.tensor([ids])).logits[0].numpy()
    assert np.abs(want - logits).max() <= TOLERANCE
    old, new = hf.state_dict(), native.state_dict()
    assert new["transformer.h.0.attn.c_attn.weight"][2, 5] != old["transformer.h.0.attn.c_attn.weight"][2, 5]
    assert torch.equal(new["transformer.h.0.attn.c_attn.weight"][3], old["transformer.h.0.attn.c_attn.weight"][3].double())


def test_nanogpt_checkpoint(engine, tmp_path):
    original = write_nanogpt(tmp_path / "out", random_gpt(seed=7, bias=False), compiled=True,
                             buffers=True)
    out = tmp_path / "new" / "ckpt.pt"
    out.parent.mkdir()
    edited, _ = round_trip(engine, tmp_path, original, out,
                           {"wpe": (0, 1), "h1.mlp.c_proj.W": (2, 3)}, tokens=TOKENS)
    notes = []
    import_book(edited, out, force=True, notes=notes.append)
    assert any("optimizer" in n for n in notes)
    a, b = (torch.load(p, weights_only=True) for p in (original, out))
    assert list(b) == ["model", "model_args", "iter_num", "best_val_loss", "config"]   # no optimizer
    assert list(b["model"]) == list(a["model"])   # _orig_mod. prefix, causal-mask buffers
    assert all(k.startswith("_orig_mod.") for k in b["model"])
    assert (b["model_args"], b["iter_num"], b["config"]) == (a["model_args"], 250, a["config"])
    assert torch.equal(b["best_val_loss"], a["best_val_loss"])
    assert (out.parent / "meta.pkl").is_file()
    ids, logits = lo_logits(engine, edited)
    sd = {k.removeprefix("_orig_mod."): v for k, v in b["model"].items()}
    with torch.no_grad():
        want = functional_gpt(sd, b["model_args"]["n_head"], "erf", torch.tensor([ids]))[0].numpy()
    assert np.abs(want - logits).max() <= TOLERANCE


def test_mingpt_work_folder(engine, tmp_path):
    folder = write_mingpt_workdir(tmp_path / "chargpt", random_gpt(seed=8, gelu="tanh", tied=False))
    out = tmp_path / "chargpt_new"
    round_trip(engine, tmp_path, folder, out, {"lm_head.W": (4, 2), "h0.attn.c_proj.b": (1, 0)},
               tokens=TOKENS, fmt="mingpt")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.pt"]
    assert json.loads((out / "config.json").read_text()) == json.loads((folder / "config.json").read_text())
    a, b = (torch.load(p / "model.pt", weights_only=True) for p in (folder, out))
    assert list(a) == list(b) and torch.equal(a["transformer.h.1.attn.bias"], b["transformer.h.1.attn.bias"])
    assert not torch.equal(a["lm_head.weight"], b["lm_head.weight"])


def test_mlp_module_saved_whole(engine, tmp_path):
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 4), nn.LeakyReLU(0.2),
                          nn.Linear(4, 2))
    torch.save(model, tmp_path / "seq.pt")
    out = tmp_path / "seq_new.pt"
    edited, _ = round_trip(engine, tmp_path, tmp_path / "seq.pt", out, {"L1.W": (2, 1), "out.b": (1, 0)})
    native = torch.load(out, weights_only=False)
    assert type(native) is nn.Sequential and [type(m) for m in native] == [type(m) for m in model]
    x = [0.5, -1.0, 2.0]
    got = np.array(run(edited, inputs=x, engine=engine)["outputs"])
    with torch.no_grad():
        want = native.double()(torch.tensor([x], dtype=torch.float64)).numpy()
    assert np.abs(got - want).max() <= TOLERANCE


def test_mlp_state_dict_float64(engine, tmp_path):
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(2, 5), nn.GELU(), nn.Dropout(0.1), nn.Linear(5, 1)).double()
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    out = tmp_path / "sd_new.pt"
    # float64 weights keep any float64 the cell holds, not only float32 ones
    edited, _ = round_trip(engine, tmp_path, tmp_path / "sd.pt", out, {"L1.W": (4, 1)}, step=0.1,
                           float32=False, activations="gelu")
    sd = torch.load(out, weights_only=True)
    assert list(sd) == list(model.state_dict()) and all(v.dtype == torch.float64 for v in sd.values())
    model.load_state_dict(sd)
    got = np.array(run(edited, inputs=[0.3, -2.0], engine=engine)["outputs"])
    with torch.no_grad():
        want = model.eval()(torch.tensor([[0.3, -2.0]], dtype=torch.float64)).numpy()
    assert np.abs(got - want).max() <= TOLERANCE


def test_manifest_records_what_import_needs(tmp_path):
    original = write_nanogpt(tmp_path / "out", random_gpt(seed=7), buffers=True)
    export(original, tmp_path / "n.xlsx", ExportOptions(tokens=TOKENS, context=4))
    rec = read_manifest(tmp_path / "n.xlsx").checkpoint
    assert (rec.format, rec.architecture, rec.config["n_head"]) == ("nanogpt", "gpt", 2)
    md = rec.metadata
    assert md["iter_num"] == 250 and md["train_config"]["dataset"] == "shakespeare_char"
    assert md["model_args"]["dropout"] == 0.0 and md["vocab"] == "meta.vocab"   # kept once
    kinds = {t.key: t for t in rec.tensors}
    assert kinds["lm_head.weight"].same_as == "transformer.wte.weight"
    assert kinds["transformer.h.0.attn.bias"].causal_mask is True
    assert kinds["transformer.h.0.ln_1.weight"] == TensorEntry("transformer.h.0.ln_1.weight",
                                                               (8,), "float32")


def test_a_book_saved_by_libreoffice(examples, tmp_path):
    """LibreOffice recalculates the edited book and saves it, numbers with 15 significant digits:
    float32 weights still come back bit for bit."""
    book, edited = tmp_path / "sqrt.xlsx", tmp_path / "edited.xlsx"
    export(examples / "sqrt_2x2.pt", book)
    edit(book, edited, {("L2.W", 1, 0): 0.375})
    subprocess.run([soffice_path(), f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}",
                    "--headless", "--convert-to", "xlsx:Calc MS Excel 2007 XML", "--outdir",
                    str(tmp_path / "lo"), str(edited)], check=True, timeout=180, capture_output=True)
    notes = []
    import_book(tmp_path / "lo" / "edited.xlsx", tmp_path / "lo.pt", notes=notes.append)
    want = torch.load(examples / "sqrt_2x2.pt", weights_only=True)["state_dict"]
    want["2.weight"][1, 0] = 0.375
    got = torch.load(tmp_path / "lo.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(got[k], want[k]) for k in want)
    assert not any("rounded" in n for n in notes), notes


# --- damaged workbooks ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_book(examples, tmp_path_factory):
    book = tmp_path_factory.mktemp("small") / "sqrt.xlsx"
    export(examples / "sqrt_2x2.pt", book)
    return book


def _damaged(small_book, tmp_path, damage) -> str:
    wb = openpyxl.load_workbook(small_book)
    damage(wb)
    wb.save(tmp_path / "bad.xlsx")
    before = set(tmp_path.iterdir())
    res = CliRunner().invoke(main, ["import", str(tmp_path / "bad.xlsx"), str(tmp_path / "out.pt")])
    assert res.exit_code == 1, res.output
    assert set(tmp_path.iterdir()) == before   # no checkpoint, no temporary file
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    return lines[0].removeprefix("error: ")


def _set(sheet, ref, value):
    def damage(wb):
        wb[sheet][ref] = value
    return damage


@pytest.mark.parametrize("damage, message", [
    (_set("Layer 1", "B5", "abc"), "weight L1.W: 'Layer 1'!B5 holds text 'abc', not a number"),
    (_set("Layer 2", "C6", None), "weight L2.W: 'Layer 2'!C6 is empty, not a number"),
    (_set("Output", "D5", "#DIV/0!"), "weight out.b: 'Output'!D5 holds the error #DIV/0!, not a number"),
    (_set("Layer 2", "D5", True), "weight L2.b: 'Layer 2'!D5 holds TRUE, not a number"),
    # a row deleted inside the weights: the last weight row is now the blank line below them
    (lambda wb: wb["Layer 2"].delete_rows(6), "weight L2.W: 'Layer 2'!B6 is empty, not a number"),
    # a row deleted above them: the block moved up, its last row is the blank line below it
    (lambda wb: wb["Layer 1"].delete_rows(2), "weight L1.W: 'Layer 1'!B6 is empty, not a number"),
    # a row inserted above them: the first weight row is now the line of column labels
    (lambda wb: wb["Layer 1"].insert_rows(3), "weight L1.W: 'Layer 1'!B5 holds text 'x', not a number"),
    # a weight column deleted: the bias column moved into the weights, its own cells are empty
    (lambda wb: wb["Layer 2"].delete_cols(3), "weight L2.b: 'Layer 2'!D5 is empty, not a number"),
    (lambda wb: wb.remove(wb["Layer 2"]), "L2.W: sheet 'Layer 2' is missing from bad.xlsx"),
])
def test_damaged_workbook_one_line_naming_the_cell(small_book, tmp_path, damage, message):
    assert _damaged(small_book, tmp_path, damage) == message


def test_not_a_sheetnet_workbook(tmp_path):
    wb = openpyxl.Workbook()
    wb.active["A1"] = 1.5
    wb.save(tmp_path / "plain.xlsx")
    (tmp_path / "junk.xlsx").write_bytes(b"not a zip")
    for name, says in (("plain.xlsx", "was not written by sheetnet"), ("junk.xlsx", "not a readable")):
        with pytest.raises(SheetnetError, match=says):
            import_book(tmp_path / name, tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()


def test_a_value_float32_cannot_hold_is_rounded_and_said(small_book, tmp_path):
    edit(small_book, tmp_path / "e.xlsx", {("L1.b", 1, 0): 0.1}, exact=True)
    res = CliRunner().invoke(main, ["import", str(tmp_path / "e.xlsx"), str(tmp_path / "e.pt")])
    assert res.exit_code == 0, res.output
    assert "1 weight value(s) rounded to the checkpoint's dtype (float32" in res.output
    assert torch.load(tmp_path / "e.pt", weights_only=True)["state_dict"]["0.bias"][1] == \
        torch.tensor(0.1, dtype=torch.float32)


def test_existing_out_needs_force(small_book, tmp_path):
    out = tmp_path / "out.pt"
    out.write_text("keep me")
    run_ = CliRunner()
    res = run_.invoke(main, ["import", str(small_book), str(out)])
    assert res.exit_code == 1 and "already exists (use --force" in res.output
    assert out.read_text() == "keep me"
    res = run_.invoke(main, ["import", str(small_book), str(out), "--force"])
    assert res.exit_code == 0 and res.output.startswith(f"wrote {out}: sheetnet checkpoint"), res.output
    assert torch.load(out, weights_only=True)["architecture"] == "mlp"
