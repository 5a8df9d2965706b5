"""Gnumeric: ``ssconvert --recalc`` writes the recalculated workbook as .xlsx, read back here.

Gnumeric saves numbers with 17+ significant digits (exact float64, unlike LibreOffice's 15), and
error cells as such (t="e").  Edits go into a patched copy of the workbook first: ssconvert
takes no cell edits.  Each call is one ssconvert process, killed at the timeout.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from .base import DEFAULT_TIMEOUT, EngineError, book_path, check_timeout, errors_or_none, need_program
from .workbook import patched, read_values

INSTALL_HINT = "Gnumeric (ssconvert) is not installed: apt-get install gnumeric"


class Gnumeric:
    """ssconvert, one process per recalculation; ``timeout`` seconds each."""

    name = "gnumeric"

    def __init__(self, timeout: float = DEFAULT_TIMEOUT):
        self.timeout = check_timeout(timeout)
        self.timings: dict[str, float] = {}

    def __enter__(self) -> "Gnumeric":
        need_program("ssconvert", INSTALL_HINT)
        return self

    def __exit__(self, *exc_info) -> None:
        pass

    def recalculate(self, path, reads, edits=(), check_errors: bool = True):
        """Recalculate ``path`` in Gnumeric and read blocks, as LibreOffice.recalculate."""
        path = book_path(path)
        program = need_program("ssconvert", INSTALL_HINT)
        with tempfile.TemporaryDirectory(prefix="sheetnet-gnm-") as tmp:
            tmp = Path(tmp)
            source = patched(path, edits, tmp / "in.xlsx") if edits else path
            clock = time.perf_counter()
            _run([program, "--recalc", str(source), str(tmp / "out.xlsx")], self.timeout,
                 path.name, home=tmp)
            self.timings = {"recalc": time.perf_counter() - clock}
            clock = time.perf_counter()
            out, errors, total = read_values(tmp / "out.xlsx", reads, path.name)
            self.timings["read"] = time.perf_counter() - clock
        errors_or_none(errors, total, check_errors)
        return out


def _run(cmd: list[str], timeout: float, book: str, home: Path) -> None:
    # its own HOME: Gnumeric writes settings there; its own session: killed as a group
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, "HOME": str(home)},
                              start_new_session=True)
    except subprocess.TimeoutExpired:
        raise EngineError(f"Gnumeric did not finish recalculating {book} within {timeout:g} s") \
            from None
    out = Path(cmd[-1])
    if proc.returncode != 0 or not out.is_file():
        why = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise EngineError(f"Gnumeric could not recalculate {book}: {why}")


__all__ = ["Gnumeric", "INSTALL_HINT"]
