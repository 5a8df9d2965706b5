"""What lets a GPT-2-sized model export (issue 8), on tiny models: the weight precision and its
"auto" choice, verify's tolerance for float32 text and its skipping of weights too many to re-read,
and capture keeping weights as float32 views of the model's tensors (no float64 copies)."""
from __future__ import annotations

import numpy as np
import openpyxl
import pytest
import torch

from foreign import CHARS, random_gpt
from sheetnet import pipeline
from sheetnet import verifier
from sheetnet.checkpoint import save_checkpoint
from sheetnet.emit.book import build_book
from sheetnet.pipeline import choose_precision, export, lower
from sheetnet.ir import graph as ir
from sheetnet.layout import plan
from sheetnet.options import TOLERANCE, TOLERANCE_FLOAT32, ExportOptions
from sheetnet.verifier import Report, Row, verify
from sheetnet.manifest import read_manifest
from sheetnet.xlsx_numbers import _float32_patterns


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A float32 character GPT with every weight random (as trainers save them)."""
    model = random_gpt(seed=5)
    path = tmp_path_factory.mktemp("scale") / "gpt.pt"
    save_checkpoint(path, "gpt", model.config.to_dict(), model.state_dict(), {"vocab": CHARS})
    return path, model


def _graph(*arrays) -> ir.Graph:
    g = ir.Graph()
    for k, a in enumerate(arrays):
        g.add(f"w{k}", ir.Param(a), a.shape, "S")
    return g


@pytest.mark.parametrize("dtype, cells, asked, chosen", [
    (np.float32, 200, "auto", "float32"),     # above the threshold, float32 weights
    (np.float32, 50, "auto", "float64"),      # at or below it
    (np.float64, 200, "auto", "float64"),     # float64 weights are never rounded unasked
    (np.float64, 200, "float32", "float32"),  # asked for: done
    (np.float32, 200, "float64", "float64"),
])
def test_auto_precision_is_float32_only_above_the_threshold_for_float32_weights(
        monkeypatch, dtype, cells, asked, chosen):
    monkeypatch.setattr(pipeline, "AUTO_FLOAT32_ABOVE", 100)
    g = _graph(np.ones((cells // 2, 1), dtype), np.ones((cells // 2, 1), np.float32))
    assert choose_precision(g, asked) == chosen


def test_float32_patterns_read_back_as_the_same_float32():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    powers = np.float32(2.0) ** np.arange(-149, 128, dtype=np.float32)
    values = np.concatenate([bits[np.isfinite(bits)], powers, np.nextafter(powers, np.float32(0)),
                             (rng.normal(size=100_000) * 0.02).astype(np.float32),
                             np.float32([0, -0.0, 1e-45, 3.4028235e38, 0.1, 16777217])])
    patterns = _float32_patterns(values)
    texts = [p % v for p, v in zip(patterns, values.tolist())]
    back = np.array([float(t) for t in texts]).astype(np.float32)   # read as float64, as a sheet
    assert np.array_equal(back, values) and np.array_equal(np.signbit(back), np.signbit(values))
    assert 0.005 < patterns.count("%.9g") / len(values) < 0.05  # 9 digits only where needed


def test_float32_workbook_verifies_at_its_tolerance_and_its_weights_cast_back_exactly(
        engine, ckpt, tmp_path):
    path, model = ckpt
    book = tmp_path / "f32.xlsx"
    res = export(path, book, ExportOptions(precision="float32", prompt="abc"))
    assert res.precision == "float32" and read_manifest(book).precision == "float32"
    report = verify(book, path, engine=engine)
    assert report.tol == TOLERANCE_FLOAT32 and report.ok, report.table()
    weights = [r for r in report.rows if r.against == "f32 cast"]
    kinds = [e.kind for e in read_manifest(book).nodes.values()]
    assert len(weights) == kinds.count("weight") > 0
    assert all(r.max_abs_err == 0 for r in weights)                 # bit for bit as float32
    assert "tolerance 1e-06 x max(1, the tensor's largest |value|), precision float32" \
        in report.table()
    # every weight cell, read as a float64 by another reader, casts to the float32 weight
    manifest, wb = read_manifest(book), openpyxl.load_workbook(book, read_only=True)
    sd = model.state_dict()
    for name, e in manifest.nodes.items():
        if e.kind != "weight":
            continue
        r, c, (rows, cols) = e.row, e.col, e.shape
        cells = np.array([row for row in wb[e.sheet].iter_rows(
            min_row=r + 1, max_row=r + rows, min_col=c + 1, max_col=c + cols, values_only=True)],
            dtype=np.float64)
        want = sd[e.source].numpy().reshape(rows, cols)
        assert np.array_equal(cells.astype(np.float32), want), name
    wb.close()


def test_float64_books_keep_the_strict_tolerance(engine, ckpt, tmp_path):
    path, _ = ckpt
    book = tmp_path / "f64.xlsx"
    assert export(path, book, ExportOptions(prompt="abc")).precision == "float64"  # small: auto
    report = verify(book, path, engine=engine)
    assert report.tol == TOLERANCE and report.ok and report.max_abs_err <= TOLERANCE
    assert not any(r.against == "f32 cast" for r in report.rows)
    assert all(r.scale == 1.0 for r in report.rows)  # never loosened for a float64 book


def test_verify_skips_weights_above_the_threshold_and_does_not_count_them(
        engine, ckpt, tmp_path, monkeypatch):
    path, _ = ckpt
    book = tmp_path / "skip.xlsx"
    export(path, book, ExportOptions(prompt="abc"))
    monkeypatch.setattr(verifier, "WEIGHTS_REREAD_MAX", 10)
    read = []
    real = verifier.read_nodes
    monkeypatch.setattr(verifier, "read_nodes",
                        lambda eng, bk, man, names, **kw: read.extend(names) or
                        real(eng, bk, man, names, **kw))
    report = verify(book, path, engine=engine)
    kinds = {n: e.kind for n, e in read_manifest(book).nodes.items()}
    skipped = {r.name for r in report.skipped}
    assert skipped == {n for n, k in kinds.items() if k == "weight"} and skipped
    assert not skipped & set(read)                     # never read back
    assert not skipped & {r.name for r in report.compared}
    assert report.ok and all(r.against != "weights" for r in report.compared)
    table = report.table()
    assert "skipped: weights not re-read" in table and "weights not re-read (" in table
    assert f"all match: {len(report.compared)} tensors" in table


def test_a_skipped_row_is_neither_a_pass_nor_a_failure():
    report = Report([Row("logits", "Output", 4, 0.0, "torch"),
                     Row("wte", "Embedding", 8, np.nan, "weights", skipped=True)])
    assert report.ok and report.max_abs_err == 0.0 and [r.name for r in report.compared] == ["logits"]
    report.rows.append(Row("x0", "Embedding", 4, 1.0, "torch"))
    assert not report.ok


def test_capture_keeps_float32_weights_as_views_of_the_model(ckpt):
    path, _ = ckpt
    captured = lower(path, ExportOptions(prompt="abc"))
    tensors = {k: v.detach().numpy() for k, v in captured.model.state_dict().items()}
    params = captured.graph.of_type(ir.Param)
    assert params
    for node in params:
        value = node.op.value
        assert value.dtype == np.float32, node.name
        assert np.shares_memory(value, tensors[node.op.source]), node.name
    # nor does the book: its weight blocks are the same memory, formatted row by row
    book = build_book(captured.graph, plan(captured.graph))
    blocks = [a for s in book.sheets for _, _, a, kind in s.blocks if kind == "weight"]
    assert len(blocks) == len(params)
    assert all(a.dtype == np.float32 and any(np.shares_memory(a, t) for t in tensors.values())
               for a in blocks)


def test_labels_are_lines_over_the_nodes_own_lists_not_a_cell_each(ckpt):
    # a GPT-2 vocabulary labels four 50,257-row tensors: one dict entry per label cell, in the
    # plan and again in the book, held ~200 MB of an export's peak
    graph = lower(ckpt[0], ExportOptions(prompt="abc")).graph
    p = plan(graph)
    lists = [n.row_labels for n in graph.nodes.values() if n.row_labels] + \
        [n.col_labels for n in graph.nodes.values() if n.col_labels]
    assert lists and all(any(line.texts is texts for line in p.labels) for texts in lists)
    book = build_book(graph, p)
    assert not any(kind == "label" for s in book.sheets for _, kind in s.cells.values())
    assert sum(len(s.runs) for s in book.sheets) == len(p.labels)
    wte = p.regions["wte"]
    assert p.label_at(wte.sheet, wte.row + 3, wte.col - 1) == graph.nodes["wte"].row_labels[3]


def test_loading_shares_the_checkpoint_tensors(ckpt):
    from sheetnet.loaders import load
    from sheetnet.models.gpt import GPT
    path, _ = ckpt
    payload = load(path)
    model = GPT.from_checkpoint(payload)
    sd = model.state_dict()
    for key, t in payload["state_dict"].items():
        if key == "lm_head.weight" and model.config.tied:  # saved as a copy; tied to wte again
            assert sd[key].data_ptr() == payload["state_dict"]["transformer.wte.weight"].data_ptr()
            continue
        assert sd[key].data_ptr() == t.data_ptr(), key
    with torch.no_grad():
        assert torch.isfinite(model(torch.tensor([[1, 2, 3]]))).all()


def test_cli_export_takes_a_precision_and_records_it(ckpt, tmp_path):
    from click.testing import CliRunner
    from sheetnet.cli import main
    path, _ = ckpt
    book = tmp_path / "cli.xlsx"
    res = CliRunner().invoke(main, ["export", str(path), str(book), "--precision", "float32"])
    assert res.exit_code == 0 and "precision float32" in res.output, res.output
    assert read_manifest(book).precision == "float32"
    res = CliRunner().invoke(main, ["export", str(path), str(book), "--precision", "float16"])
    assert res.exit_code != 0 and "float16" in res.output


def test_tied_weights_are_saved_and_loaded_once(tmp_path):
    # a tied GPT head used to be saved as a second copy of wte: twice the memory when loaded
    import torch
    from sheetnet.checkpoint import save_checkpoint
    from sheetnet.loaders import load_checkpoint
    from sheetnet.models.gpt import GPT, GPTConfig
    model = GPT(GPTConfig(vocab_size=300, n_embd=16, n_layer=1, n_head=2, block_size=8))
    save_checkpoint(tmp_path / "g.pt", "gpt", {"vocab_size": 300, "n_embd": 16, "n_layer": 1,
                                               "n_head": 2, "block_size": 8},
                    model.state_dict(), {})
    sd = load_checkpoint(tmp_path / "g.pt")["state_dict"]
    assert sd["lm_head.weight"].data_ptr() == sd["transformer.wte.weight"].data_ptr()
    assert torch.equal(sd["lm_head.weight"], model.transformer.wte.weight)
    loaded = GPT.from_checkpoint(load_checkpoint(tmp_path / "g.pt"))
    idx = torch.tensor([[1, 2, 3]])
    assert torch.equal(loaded(idx), model.eval()(idx))


def test_the_example_gpt_holds_its_tied_head_once(examples):
    from sheetnet.loaders import load_checkpoint
    sd = load_checkpoint(examples / "gpt.pt")["state_dict"]
    assert sd["lm_head.weight"].data_ptr() == sd["transformer.wte.weight"].data_ptr()
