"""The tiny text net end to end: export -> LibreOffice recalculation -> every word, layer,
probability and the generated chain against PyTorch float64; vocabularies a spreadsheet would
misread; the command line."""
import json
import zipfile

import numpy as np
import openpyxl
import pytest
import torch
from click.testing import CliRunner

from sheetnet.capture.textnet import GENERATE_STEPS, as_sequential
from sheetnet.loaders import load_checkpoint
from sheetnet.cli import main
from sheetnet.errors import SheetnetError
from sheetnet.pipeline import export
from sheetnet.ir import graph as ir
from sheetnet.ir.reference import evaluate
from sheetnet.models.textnet import (MINSTD_M, TextNet, greedy_chain, minstd_states, sample_chain,
                                     sample_pick, train_textnet_checkpoint)
from sheetnet.options import ExportOptions
from sheetnet.runner import input_edits, run, run_many
from sheetnet.verifier import read_nodes, verify
from sheetnet.manifest import read_manifest
from cli_helpers import invoke, one_line_error
from lo_helpers import validation_rule

NETS = ["textnet.pt", "textnet_wide.pt"]
TOL = 1e-9
# words a spreadsheet would take for formulas ("=1+1", "@SUM(A1)", "+x", "-"), wildcards (* ? ~),
# a number, a boolean, a quote prefix, quotes and markup; "Hello" and "hello" differ only in case
TRICKY_PAIRS = [("=1+1", "@SUM(A1)"), ("@SUM(A1)", "+x"), ("+x", "-"), ("-", "Hello"),
                ("Hello", "hello"), ("hello", "*"), ("*", "?"), ("?", "~"), ("~", "1"), ("1", "'x"),
                ("'x", 'say"hi"'), ('say"hi"', "a&b<c>"), ("a&b<c>", "TRUE"), ("TRUE", "=1+1")]


def _load(path):
    payload = load_checkpoint(path)
    return TextNet.from_checkpoint(payload).double(), payload["metadata"]["vocab"], payload


def _logits(model, ids) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor(ids))  # (N, V)


def _cells(engine, book, names, edits=()):
    return read_nodes(engine, book, read_manifest(book), names, edits=edits)


@pytest.fixture(scope="module")
def books(tmp_path_factory, examples):
    folder = tmp_path_factory.mktemp("textnet")
    out = {}
    for net in NETS:
        out[net] = folder / net.replace(".pt", ".xlsx")
        export(examples / net, out[net])
    return out


@pytest.fixture(scope="module")
def tricky(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tricky")
    model, book = folder / "tricky.pt", folder / "tricky.xlsx"
    train_textnet_checkpoint(model, TRICKY_PAIRS, embed=4, hidden=(8, 8), seed=0)
    export(model, book, ExportOptions(prompt="=1+1"))
    return model, book


def test_the_sequential_view_is_the_model(examples):
    # the trace runs embed then as_sequential(model): it must be TextNet.forward, bit for bit
    for net in NETS:
        model, vocab, _ = _load(examples / net)
        ids = torch.arange(len(vocab))
        with torch.no_grad():
            assert torch.equal(as_sequential(model)[0](model.embed(ids)), model(ids))


@pytest.mark.parametrize("style", ["cells", "arrays"])
@pytest.mark.parametrize("net", NETS)
def test_every_tensor_matches_torch(engine, examples, tmp_path, net, style):
    book = tmp_path / "t.xlsx"
    export(examples / net, book, ExportOptions(style=style))
    report = verify(book, examples / net, engine=engine)
    assert report.ok, report.table()
    assert report.max_abs_err <= TOL
    rows = {r.name: r for r in report.rows}
    v = len(_load(examples / net)[1])
    last = f"gen{GENERATE_STEPS}"
    for name in ("word.id", "embedding", "L1.z", "L1.a", "L2.z", "L2.a", "out.z", "probs",
                 "next.word", "all.word.id", "all.embedding", "all.L1.z", "all.out.z",
                 "all.probs", "all.next.word", f"{last}.out.z", f"{last}.next.word", "chain"):
        assert rows[name].against == "torch", name
    assert rows["all.probs"].cells == v * v and rows["all.out.z"].cells == v * v
    assert rows["chain"].cells == GENERATE_STEPS + 1
    wb = openpyxl.load_workbook(book, read_only=True)
    assert wb.sheetnames[:-1] == ["Guide", "Input", "Walk", "Vocab", "Layer 1", "Layer 2",
                                  "Output", "All words", "Generate"]


@pytest.mark.parametrize("net", NETS)
def test_chain_for_every_start_word(engine, examples, books, net):
    model, vocab, _ = _load(examples / net)
    outs = run_many(books[net], [{"prompt": w} for w in vocab], engine=engine)  # one load
    for w, out in zip(vocab, outs, strict=True):
        chain = greedy_chain(model, vocab, w, GENERATE_STEPS)
        assert out["inputs"] == [w]
        assert out["chain"] == chain and out["next_token"] == chain[1]
        logits = _logits(model, [vocab.index(w)])
        np.testing.assert_allclose(out["outputs"], logits.numpy(), rtol=0, atol=TOL)
        np.testing.assert_allclose(out["probs"], torch.softmax(logits[0], -1).numpy(), rtol=0,
                                   atol=TOL)


def test_temperature_cell_is_torch_softmax_of_logits_over_t(engine, examples, books):
    net = "textnet_wide.pt"
    model, vocab, _ = _load(examples / net)
    book, manifest = books[net], read_manifest(books[net])
    logits = _logits(model, list(range(len(vocab))))  # (V, V): every word's logits
    word = vocab.index("hello")
    peaks = []
    with engine.loaded(book) as doc:  # one load, each temperature typed into it
        temperatures = (0.1, 0.5, 1.0, 2.0, 10.0)
        read = [_cells(doc, book, ["probs", "all.probs", "next.word"],
                       input_edits(manifest, "temperature", [t])) for t in temperatures]
    for t, cells in zip(temperatures, read):
        expected = torch.softmax(logits / t, dim=-1).numpy()
        np.testing.assert_allclose(cells["all.probs"].astype(float), expected, rtol=0, atol=TOL)
        np.testing.assert_allclose(cells["probs"].astype(float), expected[word:word + 1], rtol=0,
                                   atol=TOL)
        assert cells["next.word"][0, 0] == "world"  # the argmax does not depend on T
        peaks.append(float(cells["probs"].astype(float).max()))
    assert peaks == sorted(peaks, reverse=True) and peaks[0] > 0.999 and peaks[-1] < 0.9


def test_run_temperature_option(engine, examples, books):
    model, vocab, _ = _load(examples / "textnet.pt")
    out = run(books["textnet.pt"], prompt="cat", temperature=2.5, engine=engine)
    expected = torch.softmax(_logits(model, [vocab.index("cat")])[0] / 2.5, -1).numpy()
    np.testing.assert_allclose(out["probs"], expected, rtol=0, atol=TOL)
    assert out["next_token"] == "dog"


@pytest.mark.parametrize("t", ["0", "-1.5"])
def test_run_refuses_a_temperature_that_is_not_positive(books, t):
    # 0 would be a #DIV/0! cell, a negative one a softmax that silently favours the least likely
    res = invoke("run", books["textnet.pt"], "--prompt", "cat", "--temperature", t)
    one_line_error(res, f"temperature must be > 0 (got {float(t)})")


def test_an_edited_weight_changes_the_whole_chain(engine, examples, books):
    net = "textnet.pt"
    model, vocab, payload = _load(examples / net)
    entry = read_manifest(books[net]).nodes["out.b"]
    cat = vocab.index("cat")
    edit = [(entry.sheet, entry.row + cat, entry.col, 100.0)]  # "cat" always wins now
    cells = _cells(engine, books[net], ["chain", "all.next.word"], edit)
    payload["state_dict"]["out.bias"][cat] = 100.0
    edited = TextNet.from_checkpoint(payload).double()
    expected = greedy_chain(edited, vocab, "hello", GENERATE_STEPS)
    assert list(cells["chain"][0]) == expected == ["hello"] + ["cat"] * GENERATE_STEPS
    assert list(cells["all.next.word"][:, 0]) == ["cat"] * len(vocab)
    assert expected != greedy_chain(model, vocab, "hello", GENERATE_STEPS)


@pytest.mark.parametrize("bad, message", [
    ("HELLO", "not in the vocabulary: 'HELLO'"),   # MATCH would have taken it for "hello"
    ("h*", "not in the vocabulary: 'h*'"),         # ... and this, as a wildcard
    ("wor?d", "not in the vocabulary: 'wor?d'"),
    ("hello ", "not in the vocabulary: 'hello '"),
    ("", "pick a word from the list"),
])
def test_a_word_not_in_the_vocabulary_is_one_clear_error(engine, books, bad, message):
    with pytest.raises(SheetnetError) as err:
        run(books["textnet.pt"], prompt=bad, engine=engine)
    assert str(err.value) == message


def test_cli_bad_word_is_one_line(books):
    res = CliRunner().invoke(main, ["run", str(books["textnet.pt"]), "--prompt", "Hello", "--json"])
    assert res.exit_code == 1
    assert res.output.strip() == "error: not in the vocabulary: 'Hello'"


def test_export_refuses_a_start_word_not_in_the_vocabulary(tmp_path, examples):
    res = invoke("export", examples / "textnet.pt", tmp_path / "o.xlsx", "--prompt", "Hello")
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1
    assert "'Hello' is not in the vocabulary" in res.output
    assert not (tmp_path / "o.xlsx").exists()


# --- a vocabulary a spreadsheet would misread -------------------------------------------------
def test_tricky_words_are_text_cells(engine, tricky):
    model_path, book = tricky
    vocab = load_checkpoint(model_path)["metadata"]["vocab"]
    nodes = read_manifest(book).nodes
    wb = openpyxl.load_workbook(book)
    entry = nodes["vocab.word"]
    for i, w in enumerate(vocab):
        cell = wb["Vocab"].cell(entry.row + i + 1, entry.col + 1)
        assert (cell.value, cell.data_type) == (w, "s"), w
    word = nodes["word"]
    cell = wb["Input"].cell(word.row + 1, word.col + 1)
    assert (cell.value, cell.data_type) == ("=1+1", "s")
    # the logits' column labels are the words too, and text as well
    out = nodes["out.z"]
    labels = [wb["Output"].cell(out.row, out.col + j + 1) for j in range(len(vocab))]
    assert [(c.value, c.data_type) for c in labels] == [(w, "s") for w in vocab]
    with zipfile.ZipFile(book) as z:  # the Vocab sheet holds no formula at all
        vocab_xml = z.read(f"xl/worksheets/sheet{wb.sheetnames.index('Vocab') + 1}.xml").decode()
    assert "<f>" not in vocab_xml and "<f " not in vocab_xml
    # LibreOffice reads every word back as the same text, and finds each one's own id exactly
    cells = _cells(engine, book, ["vocab.word", "all.word", "all.word.id", "all.next.word", "word"])
    assert list(cells["vocab.word"][:, 0]) == vocab == list(cells["all.word"][:, 0])
    assert list(cells["all.word.id"][:, 0]) == [float(i) for i in range(len(vocab))]
    assert list(cells["all.next.word"][:, 0]) == [dict(TRICKY_PAIRS)[w] for w in vocab]
    assert cells["word"][0, 0] == "=1+1"


def test_tricky_dropdown_offers_the_vocabulary(engine, tricky):
    _, book = tricky
    nodes = read_manifest(book).nodes
    word, words = nodes["word"], nodes["vocab.word"]
    source = "'Vocab'!${c}${r0}:${c}${r1}".format(
        c=openpyxl.utils.get_column_letter(words.col + 1), r0=words.row + 1,
        r1=words.row + words.shape[0])
    ws = openpyxl.load_workbook(book)["Input"]
    (dv,) = [d for d in ws.data_validations.dataValidation if d.type == "list"]
    assert (dv.type, dv.formula1, str(dv.sqref)) == (
        "list", source, openpyxl.utils.get_column_letter(word.col + 1) + str(word.row + 1))
    # LibreOffice reads it as a list validation over the same cells
    kind, _, formula, _ = validation_rule(engine, book, "Input", word.row, word.col)
    assert kind == "LIST" and formula == source.replace("'Vocab'!", "$Vocab.")


def test_tricky_vocabulary_verifies_and_runs(engine, tricky):
    model_path, book = tricky
    report = verify(book, model_path, engine=engine)
    assert report.ok and report.max_abs_err <= TOL, report.table()
    model, vocab, _ = _load(model_path)
    outs = run_many(book, [{"prompt": a} for a, _ in TRICKY_PAIRS], engine=engine)  # one load
    for (a, b), out in zip(TRICKY_PAIRS, outs, strict=True):
        assert out["inputs"] == [a] and out["next_token"] == b
        assert out["chain"] == greedy_chain(model, vocab, a, GENERATE_STEPS)


# --- the IR reference of the new ops ----------------------------------------------------------
def test_word_id_reference_is_exact():
    words = ["Hello", "hello", "*", "1", "=1+1"]
    g = ir.Graph()
    g.add("ids", ir.Const(np.arange(5.0)[:, None]), (5, 1), "V")
    g.add("words", ir.Const(np.array([[w] for w in words], dtype=object)), (5, 1), "V")
    picked = np.array([["hello"], ["Hello"], ["*"], [1.0], ["=1+1"], ["HELLO"], ["h*"], [None]],
                      dtype=object)
    g.add("w", ir.Input(picked), picked.shape, "S")
    g.add("id", ir.WordId("w", "words", "ids"), (8, 1), "S")
    assert list(evaluate(g)["id"][:, 0]) == [
        1.0, 0.0, 2.0, 3.0, 4.0, "not in the vocabulary: 'HELLO'", "not in the vocabulary: 'h*'",
        "pick a word from the list"]


def test_row_argmax_reference_is_torch_argmax_with_ties():
    x = np.array([[1.0, 3.0, 3.0], [-2.0, -2.0, -5.0], [0.0, 0.0, 0.0], [1.0, 2.0, 9.0]])
    g = ir.Graph()
    g.add("x", ir.Input(x), x.shape, "S")
    g.add("i", ir.RowArgmax("x"), (4, 1), "S")
    assert list(evaluate(g)["i"][:, 0]) == torch.argmax(torch.tensor(x), dim=1).double().tolist()


# --- the command line -------------------------------------------------------------------------
def test_cli_train_export_verify_run(tmp_path):
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("".join(f"{a}\t{b}\n" for a, b in TRICKY_PAIRS), encoding="utf-8")
    model, book = tmp_path / "t.pt", tmp_path / "t.xlsx"
    res = invoke("train", "textnet", model, "--embed", "4", "--hidden", "8,8", "--pairs", pairs,
                 "--seed", "1")
    assert res.exit_code == 0, res.output
    assert "14 words" in res.output and load_checkpoint(model)["config"]["hidden"] == [8, 8]
    res = invoke("export", model, book, "--prompt", "Hello")
    assert res.exit_code == 0, res.output
    res = invoke("verify", book, model)
    assert res.exit_code == 0, res.output
    assert "all match" in res.output and "all.probs" in res.output and "chain" in res.output
    res = invoke("run", book, "--prompt", "hello", "--temperature", "0.5", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["inputs"] == ["hello"] and out["next_token"] == "*"
    net, vocab, _ = _load(model)
    logits = _logits(net, [vocab.index("hello")])
    np.testing.assert_allclose(out["outputs"], logits.numpy(), rtol=0, atol=TOL)
    expected = torch.softmax(logits[0] / 0.5, -1).numpy()
    np.testing.assert_allclose(out["probs"], expected, rtol=0, atol=TOL)


def test_cli_train_default_pairs(tmp_path, examples):
    model = tmp_path / "d.pt"
    res = invoke("train", "textnet", model, "--embed", "4", "--hidden", "8,8")
    assert res.exit_code == 0, res.output
    meta = load_checkpoint(model)["metadata"]
    assert meta["pairs"] == load_checkpoint(examples / "textnet.pt")["metadata"]["pairs"]


def test_cli_train_bad_pairs_is_one_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("hello world\ncat\n")
    res = invoke("train", "textnet", tmp_path / "x.pt", "--pairs", bad)
    assert res.exit_code == 1 and res.output.startswith("error: ")
    assert len(res.output.strip().splitlines()) == 1 and "line 2" in res.output
    res = invoke("train", "textnet", tmp_path / "x.pt", "--pairs", tmp_path / "missing.txt")
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1


# (T, top-k, seed): the example (these well-trained nets still pick their argmax at
# T = 0.7), and two rules hot enough that sampling moves chains off the greedy one
RULES = [(0.7, 3, 42), (5.0, 3, 42), (2.0, 0, 7)]


def _sample_edits(manifest, word: str, rule: dict) -> list:
    edits = input_edits(manifest, "word", [word])
    for name, value in rule.items():
        edits += input_edits(manifest, name, [value])
    return edits


def _sampled_steps(model, vocab, word, t, k, seed):
    # sample_chain's steps with their u, p and the distance of u from every cumulative p
    chain, steps = [word], []
    for state in minstd_states(seed, GENERATE_STEPS):
        logits = _logits(model, [vocab.index(chain[-1])])[0]
        nid, p = sample_pick(logits, t, k, state / MINSTD_M)
        gap = float((p.cumsum(0) - state / MINSTD_M).abs().min())
        chain.append(vocab[nid])
        steps.append((state / MINSTD_M, p.numpy(), nid, gap))
    return chain, steps


@pytest.mark.parametrize("rule", RULES, ids=[f"T{t:g}-k{k}-seed{s}" for t, k, s in RULES])
def test_generate_sheet_samples_by_the_rule(engine, examples, books, rule):
    net = "textnet.pt"
    model, vocab, _ = _load(examples / net)
    book, manifest = books[net], read_manifest(books[net])
    cells_of = dict(zip(("gen.temperature", "gen.top_k", "gen.seed"), rule))
    last = f"gen{GENERATE_STEPS}"
    names = ["chain", "gen1.u", f"{last}.u", "gen1.probs", f"{last}.probs", "gen1.next.p",
             f"{last}.next.p"]
    differs = False
    with engine.loaded(book) as doc:  # one load, each start word and rule typed into it
        read = [_cells(doc, book, names, _sample_edits(manifest, w, cells_of)) for w in vocab]
    for w, cells in zip(vocab, read):
        chain, steps = _sampled_steps(model, vocab, w, *rule)
        assert chain == sample_chain(model, vocab, w, GENERATE_STEPS, *rule)
        # a fair comparison: no u within 1e-12 of a cumulative p, where rounding could decide
        assert min(gap for *_, gap in steps) > 1e-12
        assert list(cells["chain"][0]) == chain, w
        for k, (u, p, nid, _) in ((1, steps[0]), (GENERATE_STEPS, steps[-1])):
            assert cells[f"gen{k}.u"][0, 0] == u  # exact: one division of an exact state
            np.testing.assert_allclose(cells[f"gen{k}.probs"][0].astype(float), p, rtol=0,
                                       atol=TOL)
            assert abs(cells[f"gen{k}.next.p"][0, 0] - p[nid]) <= TOL
            assert np.count_nonzero(p) == (rule[1] or len(vocab))  # no ties in these logits
        differs |= chain != greedy_chain(model, vocab, w, GENERATE_STEPS)
    assert differs == (rule[0] > 1), "a hot rule must move some chain off the greedy one"


@pytest.mark.parametrize("net", NETS)
def test_temperature_zero_is_the_greedy_chain(engine, examples, books, net):
    model, vocab, _ = _load(examples / net)
    book, manifest = books[net], read_manifest(books[net])
    rule = {"gen.temperature": 0, "gen.top_k": 2, "gen.seed": 12345}
    with engine.loaded(book) as doc:  # one load, each start word typed into it
        read = [_cells(doc, book, ["chain"], _sample_edits(manifest, w, rule)) for w in vocab[:3]]
    for w, cells in zip(vocab[:3], read):
        greedy = greedy_chain(model, vocab, w, GENERATE_STEPS)
        for seed in (1, 42, 2**31 - 2):
            assert sample_chain(model, vocab, w, GENERATE_STEPS, 0.0, 3, seed) == greedy
        assert list(cells["chain"][0]) == greedy


# the Generate sheet's rule cells: their bound, the dataValidation LibreOffice reads
# (type, operator, formula1), formula2, and the values run refuses and takes
GENERATE_BOUNDS = {
    "gen.temperature": (("DECIMAL", "GREATER_EQUAL", "0"), None, "Type a number of 0 or more",
                        [(-1.0, "gen.temperature must be >= 0 (got -1.0)")], [0.0, 2.5]),
    "gen.top_k": (("WHOLE", "GREATER_EQUAL", "0"), None, "Type a whole number of 0 or more",
                  [(1.5, "gen.top_k must be a whole number >= 0 (got 1.5)"),
                   (-1.0, "gen.top_k must be a whole number >= 0 (got -1.0)")], [0, 3.0]),
    "gen.seed": (("WHOLE", "BETWEEN", "1"), "2147483646",
                 "Type a whole number from 1 to 2147483646",
                 [(0, "gen.seed must be a whole number from 1 to 2147483646 (got 0)"),
                  (2147483647, "gen.seed must be a whole number from 1 to 2147483646 "
                               "(got 2147483647)"),
                  (2.5, "gen.seed must be a whole number from 1 to 2147483646 (got 2.5)")],
                 [1, 2147483646.0]),
}


@pytest.mark.parametrize("name", GENERATE_BOUNDS)
def test_generate_rule_cells_carry_their_bounds(engine, books, name):
    lo, high, error, _, _ = GENERATE_BOUNDS[name]
    book = books["textnet.pt"]
    e = read_manifest(book).nodes[name]
    dv, = [d for d in openpyxl.load_workbook(book)[e.sheet].data_validations.dataValidation
           if str(d.sqref) == openpyxl.utils.get_column_letter(e.col + 1) + str(e.row + 1)]
    assert (dv.formula2, dv.error, dv.showErrorMessage) == (high, error, True)
    assert validation_rule(engine, book, e.sheet, e.row, e.col) == (*lo, True)


@pytest.mark.parametrize("name", GENERATE_BOUNDS)
def test_run_refuses_what_a_generate_rule_cell_would(books, name):
    # run has no options for these cells: input_edits is what any caller setting them goes through
    *_, refused, taken = GENERATE_BOUNDS[name]
    manifest = read_manifest(books["textnet.pt"])
    e = manifest.nodes[name]
    for value, says in refused:
        with pytest.raises(SheetnetError) as err:
            input_edits(manifest, name, [value])
        assert str(err.value) == says
    for value in taken:
        assert input_edits(manifest, name, [value]) == [(e.sheet, e.row, e.col, value)]


def test_the_temperature_cell_keeps_its_rule(books):
    # the Input sheet's T (a divisor) stays > 0, written as before
    t = read_manifest(books["textnet.pt"]).nodes["temperature"]
    dv, = [d for d in openpyxl.load_workbook(books["textnet.pt"])[t.sheet]
           .data_validations.dataValidation if d.type == "decimal"]
    assert (dv.operator, dv.formula1, dv.error) == ("greaterThan", "0",
                                                    "Type a number greater than 0")
