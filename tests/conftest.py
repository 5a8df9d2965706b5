"""Shared fixtures: one LibreOffice engine for the whole session, and the shipped examples.

No test skips when LibreOffice is missing: the engine fixture raises and every test that needs
it errors, loudly."""
from __future__ import annotations

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


def pytest_addoption(parser):
    parser.addoption("--regen-golden", action="store_true",
                     help="rewrite tests/golden/*.json from the current code (review the diff)")
