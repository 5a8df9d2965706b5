"""A cells-style token-id GPT with a 1,000-id vocabulary, edited and recalculated round after round
(issue 16).  LibreOffice 7.4 crashed on such an edit about half the time (exit 134, a SIGSEGV
under ScCellObj::setValue) while the Sampling sheet's cumulative p was a running chain of 1,000
cells per row; every round here must finish, and its draws must equal sheetnet's PyTorch loop."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from bpe_data import small
from sheetnet import layout
from sheetnet.emit.a1 import Refs
from sheetnet.capture.generation import MINSTD_M, generate_ids
from sheetnet.loaders import load
from sheetnet.models.gpt import GPT
from sheetnet.models.textnet import minstd_states, sample_pick
from sheetnet.ops.sample import CUM_BLOCK, CUM_SPAN, CumulativeSum, blocked_cumsum
from sheetnet.options import ExportOptions
from sheetnet.pipeline import export
from sheetnet.runner import run

CONTEXT = 16
# (prompt ids, temperature, top-k): greedy, sampled over all ids, sampled among the top 40
ROUNDS = [([9, 10, 11, 1], 0.0, 0), ([12, 13, 14, 2, 300], 0.9, 0), ([5, 6, 7, 8], 1.2, 40),
          ([20, 21], 0.7, 0)]


@pytest.mark.parametrize("v", [1, 31, 32, 33, 1000, 2100])
def test_no_cumulative_p_cell_waits_on_a_long_chain(v):
    # each cell's depth: 1 + the deepest of the cumulative cells its formula reads (its own
    # row's cells left of it); every chain stays within a block and a span's block starts
    regions = {"p": layout.Region("S", 0, 0, 1, v), "c": layout.Region("S", 2, 0, 1, v)}
    refs, depth = Refs(regions, here="S", node="c"), []
    op = CumulativeSum("p", running=True)
    for j in range(v):
        text = op.formula(refs, 0, j)
        read = [int(col) for col in _columns_in_row(text, 3)]
        assert all(c < j for c in read)   # only cells before it
        depth.append(1 + max((depth[c] for c in read), default=0))
    assert max(depth) <= CUM_BLOCK + CUM_SPAN // CUM_BLOCK
    p = np.random.default_rng(v).dirichlet(np.ones(v))[None, :]
    got = op.reference({"p": p})
    assert np.array_equal(got[0], blocked_cumsum(p[0]))   # the formulas' order
    assert np.abs(got - np.cumsum(p, axis=1)).max() <= 1e-15   # far inside verify's TIE


def _columns_in_row(text: str, row: int) -> list[int]:
    # the 0-based columns of the cells on sheet row ``row`` (1-based) that a formula reads;
    # a range A3:D3 reads every cell in it
    def col(letters):
        n = 0
        for ch in letters:
            n = n * 26 + ord(ch) - 64
        return n - 1
    out = []
    for a, b in re.findall(rf"([A-Z]+){row}(?::([A-Z]+){row})?(?![0-9])", text):
        out += range(col(a), col(b or a) + 1)
    return out


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    out = tmp_path_factory.mktemp("cells") / "gpt.xlsx"
    export(small(), out, ExportOptions(tokens=[5, 6, 7, 8], context=CONTEXT, style="cells"))
    model = GPT.from_checkpoint(load(small())).double().eval()
    return out, model


def margin(model, ids: list[int], temperature: float, top_k: int, seed: int,
           context: int = CONTEXT) -> float:
    # the smallest |u_j - cumulative p| over the loop's steps (a draw no rounding can flip)
    n = len(ids)
    out, _ = generate_ids(model, ids + [0] * (context - n), n, temperature, top_k, seed)
    with torch.no_grad():
        logits = model(torch.tensor([out]))[0]
    states = minstd_states(seed, context)
    return min(float((sample_pick(logits[i], temperature, top_k, states[j] / MINSTD_M)[1]
                      .cumsum(0) - states[j] / MINSTD_M).abs().min())
               for j, i in enumerate(range(n - 1, context - 1)))


def expected(model, ids, temperature, top_k) -> tuple[int, list[int]]:
    """A seed whose every u lies at least 1e-6 from every cumulative p, and the loop's new ids."""
    seed = next(s for s in range(1, 100) if margin(model, ids, temperature, top_k, s) > 1e-6)
    n = len(ids)
    out, _ = generate_ids(model, ids + [0] * (CONTEXT - n), n, temperature, top_k, seed)
    return seed, out[n:]


@pytest.mark.parametrize("ids, temperature, top_k", ROUNDS)
def test_a_fresh_libreoffice_per_edit_draws_the_torch_loops_ids(book, ids, temperature, top_k):
    # each run starts its own soffice, loads, types the ids and recalculates: the crash came on
    # the first edit after a load
    path, model = book
    seed, want = expected(model, ids, temperature, top_k)
    out = run(path, engine="libreoffice", timeout=600, tokens=ids, temperature=temperature,
              top_k=top_k, seed=seed)
    assert out["tokens"] == ids and out["generated_ids"] == want


def test_edits_in_one_loaded_document_draw_the_torch_loops_ids(engine, book):
    # a person typing: one load, then round after round of edits, each recalculating what it
    # reaches (LoadedBook puts each round's cells back before the next)
    path, model = book
    with engine.loaded(path) as doc:
        for ids, temperature, top_k in ROUNDS + ROUNDS[::-1]:
            seed, want = expected(model, ids, temperature, top_k)
            out = run(path, engine=doc, tokens=ids, temperature=temperature, top_k=top_k,
                      seed=seed)
            assert out["tokens"] == ids and out["generated_ids"] == want
            assert np.isfinite(out["step_probs"]).all()
