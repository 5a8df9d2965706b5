"""IronCalc (pip ``ironcalc``, Rust): load, evaluate and read the workbook in a child process.

The evaluation is Rust code that Python cannot interrupt, so it runs in a forked child that is
killed at the timeout; the values come back through a pipe.  Every formula cell whose value is an
error (CellType.ErrorValue) is reported, on every sheet.
"""
from __future__ import annotations

import multiprocessing
import os
import time
import traceback

from ..a1 import cell_name, quote_sheet
from .base import (DEFAULT_TIMEOUT, MAX_LISTED, CellError, EngineError, book_path, check_timeout,
                   empty_blocks, errors_or_none, plain)

INSTALL_HINT = "IronCalc is not installed: pip install ironcalc (or pip install -e '.[test]')"


def _module():
    try:
        import ironcalc
    except ImportError:
        raise EngineError(INSTALL_HINT) from None
    return ironcalc


class IronCalc:
    """IronCalc in a child process per recalculation; ``timeout`` seconds each."""

    name = "ironcalc"

    def __init__(self, timeout: float = DEFAULT_TIMEOUT):
        self.timeout = check_timeout(timeout)
        self.timings: dict[str, float] = {}

    def __enter__(self) -> "IronCalc":
        _module()
        return self

    def __exit__(self, *exc_info) -> None:
        pass

    def recalculate(self, path, reads, edits=(), check_errors: bool = True):
        """Recalculate ``path`` in IronCalc and read blocks, as LibreOffice.recalculate."""
        path = book_path(path)
        _module()
        ctx = multiprocessing.get_context("fork")
        receive, send = ctx.Pipe(duplex=False)
        child = ctx.Process(target=_child, args=(send, str(path), list(reads), list(edits)),
                            daemon=True)
        child.start()
        send.close()
        try:
            if not receive.poll(self.timeout):
                raise EngineError(f"IronCalc did not finish recalculating {path.name} within "
                                  f"{self.timeout:g} s")
            try:
                status, result = receive.recv()
            except EOFError:
                raise EngineError(f"IronCalc crashed while recalculating {path.name}") from None
        finally:
            child.kill()
            child.join()
            receive.close()
        if status != "ok":
            raise EngineError(f"IronCalc could not recalculate {path.name}: {result}")
        out, errors, total, self.timings = result
        errors_or_none(errors, total, check_errors)
        return out


def _child(send, path: str, reads, edits) -> None:
    # IronCalc prints a line to stdout for each empty cell of an array formula's range: the
    # child's stdout is not the user's
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        send.send(("ok", _recalculate(path, reads, edits)))
    except BaseException as exc:  # handed to the parent as one line
        line = (str(exc).splitlines() or [type(exc).__name__])[0]
        if not isinstance(exc, EngineError):
            line = f"{type(exc).__name__}: {line}" + (
                "" if str(exc) else " " + traceback.format_exc(limit=1).splitlines()[-1])
        send.send(("error", line))
    finally:
        send.close()


def _recalculate(path: str, reads, edits):
    ic = _module()
    clock = time.perf_counter()
    model = ic.load_from_xlsx(path, "en", "UTC")
    timings = {"load": time.perf_counter() - clock}
    index = {p["name"]: k for k, p in enumerate(model.get_worksheets_properties())}
    book = path.rsplit("/", 1)[-1]

    def sheet(name: str) -> int:
        if name not in index:
            raise EngineError(f"{book} has no sheet {quote_sheet(name)}")
        return index[name]

    for name, row, col, value in edits:  # text stays text, even "=1+1"
        if isinstance(value, str):
            model.update_cell_with_text(sheet(name), row + 1, col + 1, value)
        else:
            model.update_cell_with_number(sheet(name), row + 1, col + 1, float(value))
    clock = time.perf_counter()
    model.evaluate()
    timings["recalc"] = time.perf_counter() - clock
    clock = time.perf_counter()
    error_type = ic.CellType.ErrorValue
    names = list(index)
    errors, total = [], 0
    for s, r, c in model.get_all_cells():
        if model.get_cell_type(s, r, c) == error_type:
            total += 1
            if len(errors) < MAX_LISTED:
                errors.append(CellError(names[s], cell_name(r - 1, c - 1),
                                        str(model.get_cell_value(s, r, c))))
    out = empty_blocks(reads)
    for k, b in enumerate(reads):
        s = sheet(b.sheet)
        for i in range(b.nrows):
            for j in range(b.ncols):
                r, c = b.row + i + 1, b.col + j + 1
                if model.get_cell_type(s, r, c) != error_type:
                    out[k][i, j] = plain(model.get_cell_value(s, r, c))
    timings["read"] = time.perf_counter() - clock
    return out, errors, total, timings
