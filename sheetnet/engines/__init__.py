"""Spreadsheet engines that recalculate a workbook: one module per engine, one interface.

Every engine is a context manager with ``recalculate(path, reads, edits=(), check_errors=True)``
(see base.py), a ``timeout`` in seconds and ``timings`` of its last call.  ``open_engine(name)``
makes one by name; a missing engine is an EngineError that says how to install it.

    libreoffice  soffice headless over UNO (the default)
    gnumeric     ssconvert --recalc, read back from the xlsx it writes (full precision)
    ironcalc     the ironcalc wheel, in a child process (a Rust evaluation cannot be interrupted)
"""
from __future__ import annotations

import importlib

from ..errors import SheetnetError
from .base import DEFAULT_TIMEOUT, Block, CellError, EngineError, FormulaError

# name -> (module, class); imported on use, so a missing engine costs nothing until asked for
ENGINES = {"libreoffice": ("libreoffice", "LibreOffice"),
           "gnumeric": ("gnumeric", "Gnumeric"),
           "ironcalc": ("ironcalc", "IronCalc")}
DEFAULT = "libreoffice"

__all__ = ["ENGINES", "DEFAULT", "Block", "CellError", "EngineError", "FormulaError",
           "engine_class", "open_engine"]


def engine_class(name: str):
    """The engine class called ``name`` (libreoffice, gnumeric, ironcalc).

    Raises:
        SheetnetError: an unknown name.
    """
    if name not in ENGINES:
        raise SheetnetError(f"unknown engine {name!r}; engines: {', '.join(ENGINES)}")
    module, cls = ENGINES[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def open_engine(name: str = DEFAULT, timeout: float = DEFAULT_TIMEOUT):
    """A new engine called ``name``, not yet started: use it as a context manager.

    Args:
        name: libreoffice, gnumeric or ironcalc.
        timeout: seconds each recalculation may take (LibreOffice: start-up too).
    """
    return engine_class(name)(timeout=timeout)
