"""Generation in GPT workbooks (issue 16): one recalculation continues the prompt, each new token
drawn by the sampling rule; the sheet (LibreOffice, Gnumeric, IronCalc; both styles) against
sheetnet's PyTorch loop, greedy and sampled; greedy against nanoGPT's, minGPT's and Hugging
Face's own generate; the CLI and its refusals."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch

from cli_helpers import invoke
from foreign import CHARS, hf_gpt2, random_gpt, write_mingpt_workdir, write_nanogpt
from sheetnet.capture.generation import MINSTD_M, generate_ids
from sheetnet.checkpoint import save_checkpoint
from sheetnet.engines import ENGINES, open_engine
from sheetnet.loaders import load, load_checkpoint
from sheetnet.models.gpt import GPT
from sheetnet.models.textnet import minstd_states, sample_pick
from sheetnet.options import ExportOptions
from sheetnet.pipeline import export
from sheetnet.runner import run, run_many
from sheetnet.verifier import verify

STYLES = ["cells", "arrays"]
PROMPT = "The cell"


@pytest.fixture(scope="module")
def example(examples):
    payload = load_checkpoint(examples / "gpt.pt")
    return GPT.from_checkpoint(payload).double(), payload["metadata"]["vocab"]


@pytest.fixture(scope="module")
def books(examples, tmp_path_factory):
    out = {}
    for style in STYLES:
        out[style] = tmp_path_factory.mktemp(style) / "gpt.xlsx"
        export(examples / "gpt.pt", out[style], ExportOptions(style=style, prompt=PROMPT))
    return out


def torch_loop(model, ids: list[int], t: int, temperature: float, top_k: int, seed: int):
    """sheetnet's PyTorch loop (generation.generate_ids) on the prompt padded to t positions;
    returns the new ids, each step's p of its id, and the smallest |u - cumulative p| seen."""
    n = len(ids)
    out, _ = generate_ids(model, ids + [0] * (t - n), n, temperature, top_k, seed)
    states, probs, margin = minstd_states(seed, t), [], np.inf
    with torch.no_grad():
        logits = model(torch.tensor([out]))[0]
    for j, i in enumerate(range(n - 1, t - 1)):
        u = states[j] / MINSTD_M
        pick, p = sample_pick(logits[i], temperature, top_k, u)
        assert pick == out[i + 1]
        probs.append(float(p[pick]))
        margin = min(margin, float((p.cumsum(0) - u).abs().min()))
    return out[n:], probs, margin


def seed_away_from_boundaries(model, ids, t, temperature, top_k) -> int:
    # the first seed whose every u is at least 1e-6 from every cumulative p: no tie can flip it
    for seed in range(1, 100):
        if torch_loop(model, ids, t, temperature, top_k, seed)[2] > 1e-6:
            return seed
    raise AssertionError("no seed away from the boundaries")


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("temperature, top_k", [(0.0, 0), (0.8, 0), (1.3, 5)])
def test_sheet_draws_what_the_torch_loop_draws(engine, example, books, style, temperature,
                                               top_k):
    model, vocab = example
    ids = [vocab.index(c) for c in PROMPT]
    seed = seed_away_from_boundaries(model, ids, 32, temperature, top_k)
    new, probs, _ = torch_loop(model, ids, 32, temperature, top_k, seed)
    out = run(books[style], engine=engine, temperature=temperature, top_k=top_k, seed=seed)
    assert out["generated_ids"] == new and len(new) == 32 - len(PROMPT)
    assert out["generated"] == "".join(vocab[i] for i in new)
    assert out["text"] == PROMPT + out["generated"]
    np.testing.assert_allclose(out["step_probs"], probs, rtol=0, atol=1e-12)
    if temperature == 0:
        assert probs == [1.0] * len(new)
    else:  # sampling really samples: not the greedy chain
        greedy = torch_loop(model, ids, 32, 0.0, 0, 1)[0]
        assert new != greedy


@pytest.mark.parametrize("style", STYLES)
def test_sampled_workbook_verifies_every_step(engine, example, books, style, tmp_path):
    # the rule's cells typed into the workbook (as a person would), then verify against PyTorch
    import openpyxl
    from sheetnet.manifest import read_manifest
    manifest = read_manifest(books[style])
    wb = openpyxl.load_workbook(books[style])
    model, vocab = example
    seed = seed_away_from_boundaries(model, [vocab.index(c) for c in PROMPT], 32, 0.9, 8)
    for name, value in (("temperature", 0.9), ("top_k", 8), ("seed", seed)):
        e = manifest.nodes[name]
        wb[e.sheet].cell(e.row + 1, e.col + 1).value = value
    edited = tmp_path / "sampled.xlsx"
    wb.save(edited)
    report = verify(edited, _example_path(), engine=engine)
    assert report.ok, report.table()
    names = {r.name for r in report.rows}
    assert {"gen.id", "sample.probs", "sample.id", "sample.u", "sample.p"} <= names
    assert not report.notes


def _example_path():
    from pathlib import Path
    return Path(__file__).resolve().parent.parent / "examples" / "gpt.pt"


@pytest.mark.parametrize("name", [n for n in ENGINES if n != "libreoffice"])
@pytest.mark.parametrize("style", STYLES)
def test_other_engines_generate_the_same(engine, example, books, style, name):
    model, vocab = example
    ids = [vocab.index(c) for c in PROMPT]
    for temperature, top_k in ((0.0, 0), (0.7, 4)):
        seed = seed_away_from_boundaries(model, ids, 32, temperature, top_k)
        new, probs, _ = torch_loop(model, ids, 32, temperature, top_k, seed)
        with open_engine(name, timeout=600) as other:
            out = run(books[style], engine=other, temperature=temperature, top_k=top_k,
                      seed=seed)
        assert out["generated_ids"] == new, (name, temperature)
        np.testing.assert_allclose(out["step_probs"], probs, rtol=0, atol=1e-9)


# --- greedy generation equals each program's own generate ---------------------------------------
def nanogpt_generate(model: GPT, idx, max_new_tokens, temperature=1.0, top_k=None):
    # nanoGPT model.py's GPT.generate, line for line (its forward returns the last position's
    # logits at inference; ours returns every position's)
    for _ in range(max_new_tokens):
        idx_cond = idx if idx.size(1) <= model.config.block_size else idx[:, -model.config.block_size:]
        logits = model(idx_cond)[:, -1, :] / temperature
        if top_k is not None:
            v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
            logits[logits < v[:, [-1]]] = -float("Inf")
        probs = torch.nn.functional.softmax(logits, dim=-1)
        idx_next = torch.multinomial(probs, num_samples=1)
        idx = torch.cat((idx, idx_next), dim=1)
    return idx


def mingpt_generate(model: GPT, idx, max_new_tokens, temperature=1.0, do_sample=False):
    # minGPT model.py's GPT.generate with do_sample=False, line for line
    for _ in range(max_new_tokens):
        idx_cond = idx if idx.size(1) <= model.config.block_size else idx[:, -model.config.block_size:]
        logits = model(idx_cond)[:, -1, :] / temperature
        probs = torch.nn.functional.softmax(logits, dim=-1)
        _, idx_next = torch.topk(probs, k=1, dim=-1)
        idx = torch.cat((idx, idx_next), dim=1)
    return idx


@pytest.mark.parametrize("kind", ["nanogpt", "mingpt"])
def test_greedy_equals_nanogpt_and_mingpt_generate(engine, tmp_path, kind):
    model = random_gpt(seed=4, block_size=8)
    if kind == "nanogpt":
        path = write_nanogpt(tmp_path / "out", model)  # one AdamW step moves the weights
    else:
        path = write_mingpt_workdir(tmp_path / "work", model)
    loaded = GPT.from_checkpoint(load(path)).double().eval()  # as export reads it
    prompt = [3, 1, 4]
    with torch.no_grad():
        if kind == "nanogpt":
            want = nanogpt_generate(loaded, torch.tensor([prompt]), 5, top_k=1)[0].tolist()
        else:
            want = mingpt_generate(loaded, torch.tensor([prompt]), 5)[0].tolist()
    book = tmp_path / "book.xlsx"
    if kind == "nanogpt":  # meta.pkl's characters: a prompt cell
        export(path, book, ExportOptions(prompt="".join(CHARS[i] for i in prompt)))
    else:                  # chargpt's work dir has no vocabulary: token id cells
        export(path, book, ExportOptions(tokens=prompt))
    out = run(book, engine=engine)
    assert [*out["tokens"], *out["generated_ids"]] == want
    assert out["generated"] == ("".join(CHARS[i] for i in want[3:]) if kind == "nanogpt" else
                                " ".join(str(i) for i in want[3:]))


@pytest.mark.parametrize("style", STYLES)
def test_greedy_equals_hugging_face_generate(engine, tmp_path, style):
    hf = hf_gpt2(seed=5, n_positions=8).double()
    hf.save_pretrained(tmp_path / "hf")
    prompt = [7, 2, 30]
    with torch.no_grad():
        want = hf.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=5,
                           min_new_tokens=5, pad_token_id=0)[0].tolist()
    book = tmp_path / "hf.xlsx"
    export(tmp_path / "hf", book, ExportOptions(tokens=prompt, style=style))
    out = run(book, engine=engine)
    assert [*out["tokens"], *out["generated_ids"]] == want
    assert out["generated"] == " ".join(str(i) for i in want[3:])  # ids only: no vocabulary


# --- the CLI --------------------------------------------------------------------------------------
def test_cli_prints_the_continuation_and_json(books, example):
    model, vocab = example
    ids = [vocab.index(c) for c in PROMPT]
    res = invoke("run", books["cells"], "--prompt", PROMPT, "--generate", "6")
    assert res.exit_code == 0, res.output
    greedy = torch_loop(model, ids, 32, 0.0, 0, 1)[0]
    # the plain summary: the next character, the top 5, the continuation (repr: \n shows)
    assert f"generated: {''.join(vocab[i] for i in greedy[:6])!r}\n" in res.output
    seed = seed_away_from_boundaries(model, ids, 32, 1.0, 3)
    res = invoke("run", books["arrays"], "--prompt", PROMPT, "--generate", "5", "--temperature",
                 "1", "--top-k", "3", "--seed", str(seed), "--json")
    out = json.loads(res.output)
    new, probs, _ = torch_loop(model, ids, 32, 1.0, 3, seed)
    assert out["generated_ids"] == new[:5] and out["generated"] == "".join(vocab[i] for i in new[:5])
    np.testing.assert_allclose(out["step_probs"], probs[:5], rtol=0, atol=1e-12)


def test_cli_inputs_file_one_result_per_line(books, example, tmp_path):
    model, vocab = example
    prompts = ["The cell", "Once, there", "a"]
    csv = tmp_path / "in.csv"
    csv.write_text('The cell\n"Once, there"\na\n')
    res = invoke("run", books["arrays"], "--inputs", csv, "--generate", "4", "--json")
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in res.output.splitlines()]
    assert [r["inputs"] for r in lines] == [[p] for p in prompts]
    for p, r in zip(prompts, lines):
        ids = [vocab.index(c) for c in p]
        assert r["generated_ids"] == torch_loop(model, ids, 32, 0.0, 0, 1)[0][:4]
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"prompt": "a", "temperature": 0.5, "seed": 3}\n"a"\n')
    res = invoke("run", books["cells"], "--inputs", jsonl, "--generate", "3", "--json")
    assert res.exit_code == 0, res.output
    got = [json.loads(line)["generated_ids"] for line in res.output.splitlines()]
    # one load, edited per line: each line as its own run (the second back at T = 0, seed 1)
    want = [run(books["cells"], prompt="a", temperature=0.5, seed=3, generate=3),
            run(books["cells"], prompt="a", generate=3)]
    assert got == [w["generated_ids"] for w in want] and got[1] == lines[2]["generated_ids"][:3]
    assert got[0] != got[1]
    assert [r["generated_ids"] for r in run_many(books["cells"], [{"prompt": "a"}] * 2,
                                                 generate=3)] == [got[1]] * 2


def test_a_loaded_book_has_its_charts_dropped_and_the_file_keeps_them(engine, books):
    # the Prompt sheet's chart raised LibreOffice's crash rate on edits over UNO (LoadedBook.open)
    with engine.loaded(books["cells"]) as doc:
        sheets = doc.doc.Sheets
        charts = [sheets.getByIndex(i).getCharts().getElementNames() for i in range(sheets.getCount())]
        assert not any(charts)
    with zipfile.ZipFile(books["cells"]) as z:
        assert any(n.startswith("xl/charts/chart") for n in z.namelist())


@pytest.mark.parametrize("args, message", [
    (["--temperature", "-0.5"], "temperature must be >= 0"),
    (["--top-k", "-1"], "--top-k must be 0 or more"),
    (["--seed", "0"], "seed must be a whole number from 1 to 2147483646"),
    (["--seed", "2147483647"], "seed must be a whole number from 1 to 2147483646"),
    (["--generate", "25"], "--generate 25 is past the context: this prompt leaves room for 24"),
    (["--top-k", "1.5"], "--top-k must be a whole number (got '1.5')"),
])
def test_cli_refuses_bad_rule_values_in_one_line(books, args, message):
    res = invoke("run", books["cells"], "--prompt", PROMPT, *args)
    assert res.exit_code == 1
    assert res.output.count("\n") == 1 and message in res.output, res.output


def test_cli_refuses_a_bad_inputs_line(books, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('"ok"\n{"prompt": "x", "colour": 1}\n')
    res = invoke("run", books["cells"], "--inputs", bad)
    assert res.exit_code == 1 and res.output.count("\n") == 1
    assert "bad.jsonl line 2: this workbook takes no colour" in res.output


def test_a_tie_is_reported_not_failed(monkeypatch):
    # u exactly on a cumulative p: the rule gives id 0 and, for a u' a hair above, id 1; the
    # sheet's 1 is taken and said; a sheet id outside the tie is not taken
    import sheetnet.models.textnet as textnet
    model = random_gpt(seed=2, block_size=3).double()

    def on_the_boundary(logits, temperature, top_k, u):
        p = torch.zeros_like(logits)
        p[0], p[1] = u, 1 - u
        return int((p.cumsum(0) < u).sum()), p
    monkeypatch.setattr(textnet, "sample_pick", on_the_boundary)
    ids, notes = generate_ids(model, [4, 0, 0], 1, 1.0, 0, 1, sheet_ids=[4, 1, 0])
    assert ids[1] == 1 and len(notes) == 1 and notes[0].startswith("tie at step 1")
    ids, notes = generate_ids(model, [4, 0, 0], 1, 1.0, 0, 1, sheet_ids=[4, 2, 0])
    assert ids[1] == 0 and notes == []


def test_the_python_api_takes_the_rule(engine, example, books):
    import sheetnet
    model, vocab = example
    ids = [vocab.index(c) for c in PROMPT]
    seed = seed_away_from_boundaries(model, ids, 32, 0.7, 0)
    out = sheetnet.run(books["arrays"], prompt=PROMPT, temperature=0.7, top_k=0, seed=seed,
                       generate=7, engine=engine)
    assert out["generated_ids"] == torch_loop(model, ids, 32, 0.7, 0, seed)[0][:7]
