"""The sampling rule (issue 16) in formulas: the MINSTD stream exactly, and the pick of each step
against an independent NumPy statement of the rule, both recalculated in LibreOffice."""
from __future__ import annotations

import numpy as np
import pytest

from sheetnet import layout
from sheetnet.emit.book import build_book
from sheetnet.engines.base import Block
from sheetnet.ir import graph as ir
from sheetnet.ir.reference import evaluate
from sheetnet.writer import write_book

M = 2147483647
STEPS = 24
SEEDS = [1, 2, 42, 16807, 44487, 44488, 44489, 127773, 2**30, M - 2, M - 1,
         *np.random.default_rng(16).integers(1, M - 1, size=21).tolist()]


def _stream(seed: int, steps: int) -> list[int]:
    # the rule's definition, in Python's exact integers: state_j = state_(j-1) * 48271 mod m
    out, s = [], seed
    for _ in range(steps):
        s = s * 48271 % M
        out.append(s)
    return out


def _rule(logits: np.ndarray, t: float, k: int, u: float) -> tuple[int, np.ndarray]:
    # the rule as the issue states it, written apart from sheetnet/ops/sample.py
    x = logits.astype(np.float64)
    if t == 0:
        return int(np.flatnonzero(x == x.max())[0]), None
    kept = x >= (np.sort(x)[::-1][k - 1] if 0 < k < len(x) else -np.inf)
    p = np.where(kept, np.exp((x - x.max()) / t), 0.0)
    cum = np.cumsum(p / p.sum())
    return int(np.flatnonzero(cum >= u)[0]), cum


def _recalc(engine, tmp_path, g: ir.Graph, names: list[str]) -> list[np.ndarray]:
    plan = layout.plan(g)
    book = tmp_path / "sample.xlsx"
    write_book(build_book(g, plan), book)
    regions = [plan.regions[n] for n in names]
    assert not any(r.transposed for r in regions)
    return engine.recalculate(book, [Block(r.sheet, r.row, r.col, r.nrows, r.ncols)
                                     for r in regions])


def test_minstd_stream_is_exact_in_libreoffice(engine, tmp_path):
    g = ir.Graph(meta={"architecture": "ops"})
    state = g.add("seed", ir.Input(np.array(SEEDS, dtype=np.float64)[:, None]),
                  (len(SEEDS), 1), "S")
    names = []
    for j in range(1, STEPS + 1):
        state = g.add(f"s{j}", ir.MinstdNext(state), (len(SEEDS), 1), "S", beside=True)
        names.append(g.add(f"u{j}", ir.Uniform(state), (len(SEEDS), 1), "S", beside=True))
        names.append(state)
    got = dict(zip(names, _recalc(engine, tmp_path, g, names)))
    want = np.array([_stream(s, STEPS) for s in SEEDS], dtype=np.float64)  # (seeds, steps)
    ref = evaluate(g)
    for j in range(1, STEPS + 1):
        column = want[:, j - 1:j]
        np.testing.assert_array_equal(got[f"s{j}"].astype(np.float64), column)
        np.testing.assert_array_equal(ref[f"s{j}"], column)
        np.testing.assert_array_equal(got[f"u{j}"].astype(np.float64), column / M)


TEMPERATURES, TOP_KS, PICKS = (0.0, 0.5, 1.0, 2.0), (0, 1, 3), 4
_RNG = np.random.default_rng(7)
ROWS = [_RNG.normal(size=7) * 2, np.round(_RNG.normal(size=7) * 2) / 2]  # the second with ties


def _safe_seed(logits, t, k) -> int:
    # the first seed whose u_1..u_PICKS are each more than 1e-12 from every cumulative p:
    # rounding (LibreOffice's SUM vs NumPy's cumsum) cannot move a pick across a boundary
    for seed in range(1, 1000):
        cum = _rule(logits, t, k, 0.5)[1]
        us = np.array(_stream(seed, PICKS)) / M
        if cum is None or np.min(np.abs(us[:, None] - cum[None, :])) > 1e-12:
            return seed
    raise AssertionError("no safe seed")


CASES = [(row, t, k) for row in range(len(ROWS)) for t in TEMPERATURES for k in TOP_KS]


def _pick_graph() -> tuple[ir.Graph, list[tuple[str, list[int], str]]]:
    # one sheet per case: logits, k, T and seed as inputs, the stream, then the step's pick
    g, checks = ir.Graph(meta={"architecture": "ops"}), []
    for n, (row, t, k) in enumerate(CASES):
        sheet, logits = f"C{n}", ROWS[row]
        seed = _safe_seed(logits, t, k)
        x = g.add(f"{sheet}.x", ir.Input(logits[None, :]), (1, len(logits)), sheet)
        kc = g.add(f"{sheet}.k", ir.Input(np.array([[float(k)]])), (1, 1), sheet)
        tc = g.add(f"{sheet}.t", ir.Input(np.array([[t]])), (1, 1), sheet)
        state = g.add(f"{sheet}.seed", ir.Input(np.array([[float(seed)]])), (1, 1), sheet)
        mask = g.add(f"{sheet}.mask", ir.TopKMask(x, kc), (1, len(logits)), sheet)
        p = g.add(f"{sheet}.p", ir.MaskedSoftmax(x, mask, tc), (1, len(logits)), sheet)
        cum = g.add(f"{sheet}.cum", ir.CumulativeSum(p), (1, len(logits)), sheet)
        for j in range(1, PICKS + 1):
            state = g.add(f"{sheet}.s{j}", ir.MinstdNext(state), (1, 1), sheet)
            u = g.add(f"{sheet}.u{j}", ir.Uniform(state), (1, 1), sheet)
            pick = g.add(f"{sheet}.id{j}", ir.PickId(cum, u), (1, 1), sheet)
            g.add(f"{sheet}.p{j}", ir.ValueAt(p, pick), (1, 1), sheet)
        want = [_rule(logits, t, k, s / M)[0] for s in _stream(seed, PICKS)]
        checks.append((sheet, want, p))
    return g, checks


def test_the_pick_follows_the_rule_in_libreoffice(engine, tmp_path):
    g, checks = _pick_graph()
    names = [f"{sheet}.id{j}" for sheet, _, _ in checks for j in range(1, PICKS + 1)]
    names += [f"{sheet}.p{j}" for sheet, _, _ in checks for j in range(1, PICKS + 1)]
    names += [p for _, _, p in checks]
    got = dict(zip(names, _recalc(engine, tmp_path, g, names)))
    ref = evaluate(g)
    picked = set()
    for (sheet, want, p), (row, t, k) in zip(checks, CASES):
        ids = [int(got[f"{sheet}.id{j}"][0, 0]) for j in range(1, PICKS + 1)]
        assert ids == want, (sheet, t, k)
        assert [int(ref[f"{sheet}.id{j}"][0, 0]) for j in range(1, PICKS + 1)] == want
        np.testing.assert_allclose(got[p].astype(np.float64), ref[p], rtol=1e-12, atol=1e-15)
        for j, i in enumerate(want, start=1):
            assert got[f"{sheet}.p{j}"][0, 0] == pytest.approx(ref[p][0, i], rel=1e-12)
            assert ref[p][0, i] > 0, "a picked id is always a kept one"
        if t == 0:
            assert set(ids) == {int(np.argmax(ROWS[row]))}
        if k == 1:
            assert int(ref[f"{sheet}.mask"].sum()) == np.sum(ROWS[row] == ROWS[row].max())
        picked.add((t, len(set(ids))))
    # the test must see sampling vary: some case with T > 0 and k != 1 picks more than one id
    assert any(t > 0 and n > 1 for t, n in picked)


def test_top_k_keeps_every_tie_at_the_kth_largest():
    x = np.array([[1.0, 3.0, 2.0, 2.0, 2.0, 0.0]])
    v = {"x": x, "k": np.array([[2.0]])}
    np.testing.assert_array_equal(ir.TopKMask("x", "k").reference(v), [[0, 1, 1, 1, 1, 0]])
    v["k"] = np.array([[0.0]])
    np.testing.assert_array_equal(ir.TopKMask("x", "k").reference(v), np.ones((1, 6)))


def test_greedy_is_the_first_argmax_whatever_u():
    x = np.array([[0.0, 5.0, 1.0, 5.0]])
    v = {"x": x, "mask": np.ones((1, 4)), "t": np.array([[0.0]])}
    cum = np.cumsum(ir.MaskedSoftmax("x", "mask", "t").reference(v), axis=1)
    for u in (1e-9, 0.5, (M - 1) / M):
        assert ir.PickId("c", "u").reference({"c": cum, "u": np.array([[u]])})[0, 0] == 1
