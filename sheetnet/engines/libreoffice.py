"""LibreOffice headless as sheetnet's recalculation engine.

A :class:`LibreOffice` engine owns one ``soffice`` process with a private profile that
forces a full recalculation of every .xlsx on load (LibreOffice's default keeps
whatever values the writer cached). Workbooks are driven over a UNO pipe:
load read-only and hidden, apply edits, scan for error cells, read blocks.

Every call into soffice runs under a watchdog: when the engine's timeout
passes, the whole soffice process group is killed, the blocked UNO call
returns with an exception, and the caller gets an :class:`EngineError`.
If soffice died (crash or watchdog), the next call starts a fresh one.
It is not thread-safe: use one per thread or process.  What is done with a loaded document
(edits, reads, error scan, a document kept open) is uno_doc.py's.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
import weakref
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np

from .base import (DEFAULT_TIMEOUT, Block, EngineError, FormulaError, book_path,
                   check_timeout)
from .uno_doc import (INSTALL_HINT, LoadedBook, apply_edits, doc_sheet, formula_errors,
                      read_block, uno_module)
from .workbook import patched

_FALLBACK_SOFFICE = "/usr/lib/libreoffice/program/soffice"
# OOXMLRecalcMode=0 means "always recalculate": cached <v> values are ignored.
_RECALC_ALWAYS = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry"
 xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode"
 oor:op="fuse"><value>0</value></prop></item>
</oor:items>
"""


def soffice_path() -> str:
    """Locate the soffice executable.

    Returns:
        Its path: ``soffice`` on PATH, else LibreOffice's Debian install location.
    Raises:
        EngineError: with the install command, when neither exists.
    """
    found = shutil.which("soffice")
    if found:
        return found
    if os.access(_FALLBACK_SOFFICE, os.X_OK):
        return _FALLBACK_SOFFICE
    raise EngineError(INSTALL_HINT)


def _soffice_command(profile: str, pipe: str) -> list[str]:
    """The soffice command line: private profile, no UI, UNO listener on ``pipe``."""
    return [soffice_path(), f"-env:UserInstallation={Path(profile).as_uri()}",
            "--headless", "--invisible", "--nologo", "--norestore", "--nodefault",
            "--nofirststartwizard", f"--accept=pipe,name={pipe};urp;StarOffice.ComponentContext"]


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL soffice's whole process group (oosplash + soffice.bin) and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _cleanup(proc: subprocess.Popen, profile: str, pipe: str) -> None:
    """Kill soffice and remove what it leaves behind; safe to call twice."""
    _kill_group(proc)
    shutil.rmtree(profile, ignore_errors=True)
    # A killed soffice leaves its pipes in /tmp (osl ignores TMPDIR): our UNO pipe and
    # its single-instance pipe, named by the unpadded-hex MD5 of the UTF-16 profile URL.
    digest = hashlib.md5(Path(profile).as_uri().encode("utf-16-le")).digest()
    for name in (pipe, "SingleOfficeIPC_" + "".join(f"{b:x}" for b in digest)):
        with contextlib.suppress(OSError):
            os.unlink(f"/tmp/OSL_PIPE_{os.getuid()}_{name}")


class LibreOffice:
    """One soffice process with its own private profile directory.

    Use as a context manager; leaving it kills soffice and removes the
    profile. ``timeout`` (seconds) bounds start-up and, separately, each
    :meth:`recalculate` call; it may be changed between calls.
    """

    name = "libreoffice"

    def __init__(self, timeout: float = DEFAULT_TIMEOUT):
        self.timeout = check_timeout(timeout)
        self._proc: subprocess.Popen | None = None
        self._desktop = None
        self._finalizer = None
        self._profile = ""  # the running soffice's profile directory (its tmp/ holds edited copies)
        self.timed_out = False  # the last watched call ran out of time (its soffice was killed)
        self.timings: dict[str, float] = {}  # seconds of the last recalculate: load, scan, read

    def __enter__(self) -> LibreOffice:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def alive(self) -> bool:
        """True while our soffice process runs."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start soffice and connect to it, unless it already runs.

        Raises:
            EngineError: soffice is missing, exits, or is not connectable within the timeout.
        """
        if self.alive():
            return
        self.close()
        profile = tempfile.mkdtemp(prefix="sheetnet-lo-")
        pipe = f"sheetnet_{os.getpid()}_{uuid.uuid4().hex[:12]}"
        # from here any exception (a signal turned into one, too) must take the profile and a
        # started soffice with it: __exit__ never runs when __enter__ raises
        try:
            os.makedirs(f"{profile}/user")
            os.makedirs(f"{profile}/tmp")  # soffice's scratch files die with the profile
            Path(f"{profile}/user/registrymodifications.xcu").write_text(_RECALC_ALWAYS)
            cmd = _soffice_command(profile, pipe)
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env={**os.environ, "TMPDIR": f"{profile}/tmp"}, start_new_session=True)
            self._proc, self._profile = proc, profile
            self._finalizer = weakref.finalize(self, _cleanup, proc, profile, pipe)
            with self._watchdog("starting up"):
                self._desktop = self._connect(pipe, time.monotonic() + self.timeout)
        except BaseException:
            if self._finalizer is None and self._proc is not None:
                _cleanup(self._proc, profile, pipe)  # started, not yet registered
            self.close()
            shutil.rmtree(profile, ignore_errors=True)
            raise

    def _connect(self, pipe: str, deadline: float):
        """Poll-connect to soffice's pipe (it appears ~1-3 s after launch); return its Desktop."""
        uno = uno_module()
        no_connect = uno.getClass("com.sun.star.connection.NoConnectException")
        local = uno.getComponentContext()
        resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
        while True:
            if self._proc.poll() is not None:
                raise EngineError(f"LibreOffice exited during start-up with code {self._proc.returncode}")
            try:
                ctx = resolver.resolve(f"uno:pipe,name={pipe};urp;StarOffice.ComponentContext")
                return ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
            except no_connect:
                if time.monotonic() > deadline:
                    raise EngineError(f"LibreOffice did not finish starting up within {self.timeout:g} s")
                time.sleep(0.05)

    def close(self) -> None:
        """Kill soffice and remove its profile directory (idempotent)."""
        if self._finalizer is not None:
            self._finalizer()  # runs _cleanup once
        self._proc = self._desktop = self._finalizer = None

    @contextlib.contextmanager
    def _watchdog(self, doing: str):
        """Bound the enclosed soffice calls by ``self.timeout`` and turn failures into EngineError.

        A UNO call into a hung soffice never returns on its own; killing the
        process group from a timer thread makes it raise, so we can report.
        """
        uno_exception = uno_module().getClass("com.sun.star.uno.Exception")
        fired = threading.Event()
        proc = self._proc  # close() may clear self._proc while the timer fires

        def bite():
            fired.set()
            self.timed_out = True
            _kill_group(proc)

        self.timed_out = False

        timer = threading.Timer(self.timeout, bite)
        timer.daemon = True
        timer.start()
        try:
            yield
        except Exception as exc:
            if fired.is_set():
                raise EngineError(f"LibreOffice did not finish {doing} within {self.timeout:g} s") from None
            if isinstance(exc, FormulaError):
                raise
            # pyuno names the class in full (com.sun.star.lang.DisposedException): the bridge
            # is gone while soffice may not have exited yet
            if not self.alive() or type(exc).__name__.endswith("DisposedException"):
                code = self._proc.poll()
                _kill_group(self._proc)  # a half-dead group must not linger
                raise EngineError(f"LibreOffice crashed while {doing}"
                                  + (f" (exit code {code})" if code is not None else "")) from None
            if isinstance(exc, uno_exception):
                msg = (str(exc).splitlines() or [""])[0]
                raise EngineError(f"LibreOffice failed while {doing}: {type(exc).__name__} {msg}") from None
            raise
        finally:
            timer.cancel()

    def recalculate(self, path: str | os.PathLike, reads: Sequence[Block],
                    edits: Sequence[tuple[str, int, int, float | str]] = (),
                    check_errors: bool = True) -> list[np.ndarray]:
        """Recalculate a workbook in LibreOffice and read blocks of computed values.

        Args:
            path: the .xlsx file; it is opened read-only and never modified.
            reads: rectangles to read after recalculation.
            edits: (sheet, row, col, value) set after loading, 0-based; a number is
                set as a number, a str always as literal text (even "=1+1").
            check_errors: scan every sheet for formula cells whose result is an error.
        Returns:
            One object array of shape (nrows, ncols) per Block; elements are float
            (full float64), str, or None for an empty (or, unchecked, error) cell.
        Raises:
            FormulaError: check_errors and some formula computed to an error.
            EngineError: the file is missing or unreadable, a sheet is missing,
                or soffice crashed or exceeded the timeout.
        """
        path = book_path(path)
        self.start()  # restarts soffice if it died since the last call
        with self._watchdog(f"recalculating {path.name}"):
            clock = time.perf_counter()
            edited = self._edited_copy(path, edits)
            try:
                doc = self._load(edited or path)
            finally:
                if edited:
                    edited.unlink(missing_ok=True)
            self.timings = {"load": time.perf_counter() - clock}
            try:
                if edits and not edited:
                    apply_edits(doc, edits, path.name)
                    # Auto-calc already updated dependents; calculateAll makes it certain.
                    doc.calculateAll()
                clock = time.perf_counter()
                if check_errors:
                    errors, total = formula_errors(doc)
                    if total:
                        raise FormulaError(errors, total)
                self.timings["scan"] = time.perf_counter() - clock
                clock = time.perf_counter()
                out = [read_block(doc_sheet(doc, b.sheet, path.name), b) for b in reads]
                self.timings["read"] = time.perf_counter() - clock
                return out
            finally:
                with contextlib.suppress(Exception):  # dead soffice: the real error is already raised
                    doc.close(True)

    def _edited_copy(self, path: Path, edits) -> Path | None:
        """A copy of ``path`` with the edits written into its cells (loading it recalculates
        everything), or None when there are no edits or a cell is not in the file.

        LibreOffice 7.4 crashes now and then inside setValue on a loaded GPT workbook (exit 134,
        a SIGSEGV under ScCellObj::setValue, autocalc on or off, threaded calculation on or
        off): an edit made in the file before the load never calls it, and costs one
        recalculation instead of the load's plus calculateAll's.
        """
        if not edits:
            return None
        out = Path(self._profile, "tmp", f"edited-{uuid.uuid4().hex[:8]}{path.suffix}")
        try:
            return patched(path, edits, out)
        except (EngineError, OSError, ValueError, KeyError, zipfile.BadZipFile):
            # a cell the writer left out, or not an .xlsx: set after loading, as before (the
            # load then says what is wrong with the file)
            out.unlink(missing_ok=True)
            return None

    @contextlib.contextmanager
    def loaded(self, path: str | os.PathLike):
        """The workbook loaded once (``sheetnet run --inputs``, a person typing into an open
        document): yields a LoadedBook whose ``recalculate`` edits it, recalculates what the
        edits touch and reads, then puts the edited cells back."""
        path = book_path(path)
        self.start()
        book = LoadedBook(self, path)
        book.open()
        try:
            yield book
        finally:
            book.close()  # the document of the last load, if there was one

    def _load(self, path: Path):
        """Open ``path`` hidden and read-only (no lock file); the profile makes this recalculate."""
        props = tuple(uno_module().createUnoStruct("com.sun.star.beans.PropertyValue", name, 0, True, 0)
                      for name in ("Hidden", "ReadOnly"))
        doc = self._desktop.loadComponentFromURL(path.as_uri(), "_blank", 0, props)
        if doc is None:
            raise EngineError(f"LibreOffice could not read {path} (corrupt or not a workbook)")
        if not doc.supportsService("com.sun.star.sheet.SpreadsheetDocument"):
            doc.close(True)
            raise EngineError(f"LibreOffice did not open {path} as a spreadsheet")
        return doc



def recalculate(path: str | os.PathLike, reads: Sequence[Block],
                edits: Sequence[tuple[str, int, int, float | str]] = (),
                timeout: float = DEFAULT_TIMEOUT, check_errors: bool = True) -> list[np.ndarray]:
    """One-shot :meth:`LibreOffice.recalculate` with a soffice started and stopped for this call.

    Args:
        path, reads, edits, check_errors: as for LibreOffice.recalculate.
        timeout: seconds for start-up and, separately, for the recalculation.
    Returns:
        One object array per Block.
    """
    with LibreOffice(timeout) as engine:
        return engine.recalculate(path, reads, edits, check_errors=check_errors)
