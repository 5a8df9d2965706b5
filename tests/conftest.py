"""Shared fixtures: one LibreOffice engine for the whole session, and the shipped examples.

No test skips when LibreOffice is missing: the engine fixture raises and every test that needs
it errors, loudly.

Under pytest-xdist (``-n auto``, the README's command) each worker is its own session, so each
starts its own soffice: LibreOffice() makes a fresh profile directory (mkdtemp) and a pipe named
by pid and a random suffix, so two workers never hand work to one another's soffice."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from sheetnet.engines.libreoffice import LibreOffice as Engine

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def engine():
    with Engine(timeout=600) as eng:
        yield eng


@pytest.fixture(scope="session")
def examples() -> Path:
    return EXAMPLES


# -n auto: one worker per core, at most two. Each worker holds torch and a soffice of its own
# (GBs with the GPT books), and CI's machines have two cores; PYTEST_XDIST_AUTO_NUM_WORKERS overrides
MAX_WORKERS = 2


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: no error where xdist is not installed
def pytest_xdist_auto_num_workers(config):
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own hook reads it
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0))))


# The files that take longest (--durations, summed per file), longest first. Under -n, loadscope
# hands a worker a whole file at a time in collection order: starting with these, the last files
# handed out are short ones and the two workers finish close together, instead of one running a
# 5-minute file alone at the end. The files not listed follow, in their usual order.
LONGEST_FIRST = ["test_ops.py", "test_gpt_tokens_e2e.py", "test_generate.py", "test_bpe_sheet.py",
                 "test_gpt_e2e.py", "test_engines.py", "hostile/test_checkpoints.py",
                 "test_bpe_gpt.py", "test_live_labels.py", "test_textnet_e2e.py", "test_import.py",
                 "test_llama.py", "hostile/test_signals.py", "test_logit_lens.py",
                 "hostile/test_cli_limits.py"]


def pytest_collection_modifyitems(config, items):
    if not hasattr(config, "workerinput"):  # a worker of -n; a plain run keeps the file order
        return
    rank = {(ROOT / "tests" / name): k for k, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path, len(rank)))  # stable: order within a file kept


def pytest_addoption(parser):
    parser.addoption("--regen-golden", action="store_true",
                     help="rewrite tests/golden/*.json from the current code (review the diff)")
