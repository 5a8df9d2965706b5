"""LibreOffice headless, the default engine: sheetnet.engine.Engine under this package's name.

The implementation stays in sheetnet/engine.py until its owner's work there is done; then it
moves here (see the package docstring).
"""
from __future__ import annotations

from ..engine import Engine


class LibreOffice(Engine):
    """soffice over UNO with a recalculate-always profile (see sheetnet/engine.py)."""

    name = "libreoffice"
