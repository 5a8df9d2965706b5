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


def pytest_addoption(parser):
    parser.addoption("--regen-golden", action="store_true",
                     help="rewrite tests/golden/*.json from the current code (review the diff)")
