"""Issue 12: limits the command line states and keeps.

Case 7 (part): a context below 1 (``--context 0`` meant the whole block size) and a prompt longer
than a cell holds (32,767 characters) are refused in one line, the prompt before the model is
read.  "Also": a GPT with a large block size exported without ``--context`` computes at most 64
positions and says so (the "wrote" line and the Guide sheet); a workbook LibreOffice would take
longer than ``--max-recalc`` seconds to recalculate (default 600, inspect's estimate) is refused
before anything is written; verify's and run's ``--timeout`` must be above 0.  (Case 4's export
into a full or read-only folder: test_import_output.py's test_output_folder_refuses_the_write.)
"""
from __future__ import annotations

import zipfile
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from hostile.helpers import files_in, refused, run_cli
from sheetnet.checkpoint import save_checkpoint
from sheetnet.models.gpt import GPT, GPTConfig

CHARS = list("abcdefghij ")


def _gpt(path: Path, block_size: int, n_layer: int = 1, n_head: int = 1, n_embd: int = 4) -> Path:
    cfg = GPTConfig(vocab_size=len(CHARS), block_size=block_size, n_layer=n_layer,
                    n_head=n_head, n_embd=n_embd)
    torch.manual_seed(0)
    save_checkpoint(path, "gpt", asdict(cfg), GPT(cfg).state_dict(), {"vocab": CHARS})
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A character-level GPT with 8 positions."""
    return _gpt(tmp_path_factory.mktemp("tiny") / "tiny.pt", block_size=8)


# (arguments after the command's; {model} and {book} are filled in, words the line must hold)
REFUSALS = {
    "context 0": (["export", "{model}", "{book}", "--context", "0"], ["context 0", "between 1"]),
    # checked before the model is read: the model given here does not even exist
    "112k-character prompt": (["export", "missing.pt", "{book}", "--prompt", "x" * 112_000],
                              ["prompt", "112,000", "32,767"]),
    "max-recalc 0": (["export", "{model}", "{book}", "--max-recalc", "0"], ["--max-recalc"]),
    "over max-recalc": (["export", "{model}", "{book}", "--max-recalc", "0.01"],
                        ["estimated", "--max-recalc 0.01"]),
    "verify timeout 0": (["verify", "{book}", "{model}", "--timeout", "0"], ["timeout", "0"]),
    "run timeout -1": (["run", "{book}", "--timeout", "-1"], ["timeout", "-1"]),
    "verify timeout nan": (["verify", "{book}", "{model}", "--timeout", "nan"], ["timeout"]),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_refused_in_one_line_and_nothing_written(tiny, tmp_path, case):
    args, words = REFUSALS[case]
    book = tmp_path / "out.xlsx"
    res = run_cli(*[a.format(model=tiny, book=book) for a in args], cwd=tmp_path)
    assert res.code == 1
    refused(res, *words)
    assert files_in(tmp_path) == set()


def _guide_text(book: Path) -> str:
    with zipfile.ZipFile(book) as z:
        return " ".join(z.read(n).decode() for n in z.namelist() if n.endswith(".xml"))


def test_large_block_size_computes_64_positions_and_says_so(tmp_path):
    model = _gpt(tmp_path / "wide.pt", block_size=1024, n_layer=2, n_head=4, n_embd=16)
    book = tmp_path / "out.xlsx"
    res = run_cli("export", model, book, cwd=tmp_path, timeout=120)
    assert res.code == 0, res.stderr
    said = "computes 64 of the model's 1024 positions"
    assert said in res.stdout.splitlines()[0]
    assert said in _guide_text(book)
    assert files_in(tmp_path) == {"wide.pt", "out.xlsx"}


def test_prompt_longer_than_64_sets_the_context(tiny, tmp_path):
    model = _gpt(tmp_path / "wide.pt", block_size=256)
    res = run_cli("export", model, tmp_path / "out.xlsx", "--prompt", "abc " * 25, cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert "computes 100 of the model's 256 positions" in res.stdout


def test_estimated_recalc_over_ten_minutes_refused_before_writing(tmp_path):
    # 1024 positions, 8 heads in 4 blocks, one formula per cell: ~70M formula cells, ~1000 s
    model = _gpt(tmp_path / "wide.pt", block_size=1024, n_layer=4, n_head=8, n_embd=16)
    res = run_cli("export", model, tmp_path / "out.xlsx", "--context", "1024", "--style", "cells",
                  cwd=tmp_path, timeout=120)
    line = refused(res, "estimated", "over --max-recalc 600", "--context")
    assert res.code == 1, line
    assert files_in(tmp_path) == {"wide.pt"}

