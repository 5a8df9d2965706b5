"""The two-level draw (issue 16, GPT-2-sized vocabularies): block masses, the block drawn, then the
id inside it, in place of the (T, V) tables of p and cumulative p.

A 300-id GPT is exported with the block path forced (generation.PER_ID_MAX = 0; blocks of 64
ids: five, the last of 44, and blocks of 8: 38, past the running sum's chains of 32), recalculated
by LibreOffice in both styles, and compared with sheetnet's PyTorch loop in float64 and with the
same model's per-id workbook: the same ids, greedy and sampled, with top-k; verify passes on it;
an edited prompt token still dirties only its position and later ones."""
from __future__ import annotations

import numpy as np
import openpyxl
import pytest
import torch

from foreign import random_gpt
from sheetnet.capture import generation
from sheetnet.capture.generation import MINSTD_M, block_draws, generate_ids
from sheetnet.checkpoint import save_checkpoint
from sheetnet.engines import ENGINES, open_engine
from sheetnet.manifest import read_manifest
from sheetnet.models.textnet import minstd_states, sample_pick
from sheetnet.options import ExportOptions
from sheetnet.pipeline import export
from sheetnet.runner import run
from sheetnet.verifier import verify
from test_edit_locality import DISPLAYS, dependents, dirty_from, position_rows
from test_formulas import EXCEL_2010, _functions
from test_generate_cells import margin

V, CONTEXT = 300, 12
PROMPT = [7, 299, 256, 64, 3]
# (temperature, top-k): greedy, sampled over every id, sampled among the top 20
RULES = [(0.0, 0), (0.8, 0), (1.3, 20)]
BLOCK_NODES = ("sample.block_p", "sample.block_cum", "sample.block", "sample.block_start",
               "sample.block_ids", "sample.block_probs", "sample.block_run", "sample.in_block")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    model = random_gpt(seed=6, vocab_size=V, block_size=CONTEXT, n_embd=8, n_layer=1, n_head=2)
    path = tmp_path_factory.mktemp("ckpt") / "gpt.pt"
    save_checkpoint(path, "gpt", model.config.to_dict(), model.state_dict(), {})
    return path, model.double().eval()


def export_book(path, out, style: str, block: int | None):
    """The book with the two-level draw in blocks of ``block`` ids, or the per-id one (None)."""
    with pytest.MonkeyPatch.context() as mp:
        if block is not None:
            mp.setattr(generation, "PER_ID_MAX", 0)
            mp.setattr(generation, "DRAW_BLOCK", block)
        export(path, out, ExportOptions(tokens=PROMPT, context=CONTEXT, style=style))
    return out


@pytest.fixture(scope="module")
def books(model_path, tmp_path_factory):
    path, _ = model_path
    folder = tmp_path_factory.mktemp("books")
    return {(style, block): export_book(path, folder / f"{style}-{block}.xlsx", style, block)
            for style in ("cells", "arrays") for block in (64, 8, None)}


def expected(model, temperature, top_k) -> tuple[int, list[int]]:
    """A seed whose every u lies at least 1e-6 from every cumulative p, and the loop's new ids."""
    seed = next(s for s in range(1, 100) if margin(model, PROMPT, temperature, top_k, s, CONTEXT) > 1e-6)
    n = len(PROMPT)
    out, _ = generate_ids(model, PROMPT + [0] * (CONTEXT - n), n, temperature, top_k, seed)
    return seed, out[n:]


def test_the_book_has_blocks_not_per_id_tables(books):
    for (style, block), book in books.items():
        nodes = read_manifest(book).nodes
        if block is None:
            assert nodes["sample.probs"].shape == (CONTEXT, V)
            assert not set(BLOCK_NODES) & set(nodes)
            continue
        nb = -(-V // block)
        assert "sample.probs" not in nodes and "sample.cum" not in nodes
        assert nodes["sample.block_p"].shape == nodes["sample.block_cum"].shape == (CONTEXT, nb)
        assert nodes["sample.block_run"].shape == (CONTEXT, block)
        assert nodes["next.probs"].shape == (1, V) and nodes["next.probs"].op == "SampleProbs"
        assert nodes["sample.id"].shape == nodes["sample.p"].shape == (CONTEXT, 1)


def test_the_blocks_use_only_functions_excel_2010_computes(books):
    for key, book in books.items():
        assert _functions(book) <= EXCEL_2010, key


@pytest.mark.parametrize("style", ["cells", "arrays"])
def test_blocks_draw_the_ids_the_torch_loop_and_the_per_id_book_draw(engine, model_path, books,
                                                                     style):
    _, model = model_path
    for temperature, top_k in RULES:
        seed, want = expected(model, temperature, top_k)
        got = {block: run(books[(style, block)], engine=engine, tokens=PROMPT,
                          temperature=temperature, top_k=top_k, seed=seed)
               for block in (64, 8, None)}
        for block, out in got.items():
            assert out["generated_ids"] == want, (block, temperature, top_k)
            np.testing.assert_allclose(out["step_probs"], got[None]["step_probs"], rtol=0,
                                       atol=1e-12)
        if temperature:  # sampling really samples: the ids are not the greedy ones
            assert want != expected(model, 0.0, 0)[1]
        else:
            assert got[64]["step_probs"] == [1.0] * len(want)


@pytest.mark.parametrize("name", [n for n in ENGINES if n != "libreoffice"])
@pytest.mark.parametrize("style", ["cells", "arrays"])
def test_other_engines_draw_the_same_through_the_blocks(model_path, books, style, name):
    # EXP over a block inside SUMPRODUCT, INDEX into the logits row by a computed id
    _, model = model_path
    with open_engine(name, timeout=600) as other:
        for temperature, top_k in RULES:
            seed, want = expected(model, temperature, top_k)
            out = run(books[(style, 8)], engine=other, tokens=PROMPT, temperature=temperature,
                      top_k=top_k, seed=seed)
            assert out["generated_ids"] == want, (name, temperature, top_k)


def _typed(book, out, values: dict):
    # the rule's cells typed into the workbook, as a person would
    manifest, wb = read_manifest(book), openpyxl.load_workbook(book)
    for name, value in values.items():
        e = manifest.nodes[name]
        wb[e.sheet].cell(e.row + 1, e.col + 1).value = value
    wb.save(out)
    return out


@pytest.mark.parametrize("style, block", [("cells", 8), ("arrays", 64)])
def test_sampled_block_book_verifies_every_node(engine, model_path, books, style, block,
                                                monkeypatch, tmp_path):
    # verify rebuilds the graph: with the same draw the book was exported with
    monkeypatch.setattr(generation, "PER_ID_MAX", 0)
    monkeypatch.setattr(generation, "DRAW_BLOCK", block)
    path, model = model_path
    seed, _ = expected(model, 1.3, 20)
    edited = _typed(books[(style, block)], tmp_path / "sampled.xlsx",
                    {"temperature": 1.3, "top_k": 20, "seed": seed})
    report = verify(edited, path, engine=engine)
    assert report.ok, report.table()
    against = {r.name: r.against for r in report.rows}
    for name in (*BLOCK_NODES, "sample.id", "sample.p", "sample.top_p", "next.probs"):
        assert against[name] == "torch", name
    assert not report.notes


@pytest.mark.parametrize("style", ["cells", "arrays"])
@pytest.mark.parametrize("edited", [len(PROMPT) - 1, 1])
def test_an_edited_prompt_token_dirties_only_its_position_and_later(books, style, edited):
    book = books[(style, 8)]
    m = read_manifest(book)
    prompt = m.nodes["prompt"]
    dirty = dirty_from(dependents(book), (prompt.sheet, prompt.row + 1 + edited, prompt.col + 1))
    early = {name: sorted(r for r in position_rows(e, dirty) if r < edited)
             for name, e in m.nodes.items() if e.shape[0] == CONTEXT
             and not name.startswith(DISPLAYS)}
    assert {name: rows for name, rows in early.items() if rows} == {}
    for name in ("sample.block_p", "sample.block_run", "sample.id", "gen.id"):
        assert position_rows(m.nodes[name], dirty) >= set(range(edited, CONTEXT)), name


# --- the PyTorch side's two-level draw against the rule, no engine -----------------------------
@pytest.mark.parametrize("v, size, temperature, top_k", [
    (300, 64, 0.8, 0), (300, 8, 1.0, 20), (64, 64, 0.5, 0), (65, 64, 2.0, 3), (300, 7, 0.0, 0),
    (1, 64, 1.0, 0)])
def test_block_draws_pick_the_rules_id(v, size, temperature, top_k):
    logits = torch.randn(8, v, generator=torch.Generator().manual_seed(v + size),
                         dtype=torch.float64)  # (8 positions, V)
    us = np.array(minstd_states(size, 8)) / MINSTD_M
    picks = [sample_pick(row, temperature, top_k, u) for row, u in zip(logits, us)]
    probs = torch.stack([p for _, p in picks]).numpy()
    out = block_draws(probs, us, size)
    ids = out["sample.block"][:, 0] * size + out["sample.in_block"][:, 0]
    assert ids.tolist() == [float(i) for i, _ in picks]
    # the block's running sum ends where the block cum does, and its id's p is the rule's
    ends = out["sample.block_cum"][np.arange(8), out["sample.block"][:, 0].astype(int)]
    np.testing.assert_allclose(out["sample.block_run"][:, -1], ends, rtol=0, atol=1e-15)
    place = out["sample.in_block"][:, 0].astype(int)
    assert np.array_equal(out["sample.block_probs"][np.arange(8), place],
                          probs[np.arange(8), ids.astype(int)])


def test_a_u_past_the_blocks_running_sum_stays_on_its_last_real_id():
    # u beyond the partial last block's running sum (rounding the per-id sums cannot make, so
    # forced here): the place is clamped to the last id below V, never a padding id
    probs = np.full((1, 10), 0.1)
    out = block_draws(probs, np.array([1.0 + 1e-9]), 4)
    assert out["sample.block"][0, 0] == 2 and out["sample.in_block"][0, 0] == 1   # id 9
