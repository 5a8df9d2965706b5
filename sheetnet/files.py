"""Writing files so that a failure leaves nothing behind, and says why in one line."""
from __future__ import annotations

import os
import shutil
import secrets
import signal
from contextlib import contextmanager
from pathlib import Path

from .errors import SheetnetError

# a temp file always ends in a suffix: torch.save names its archive after the file's stem, and
# a hidden name without one (".sheetnet-x1y2") has none ("invalid file name")
TEMP_SUFFIX = ".tmp"


def check_output(path: str | os.PathLike, force: bool) -> Path:
    """The output's folder must exist, and an existing output is replaced only when asked.

    Raises:
        SheetnetError: otherwise, in one line.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise SheetnetError(f"output folder {path.parent} does not exist")
    if path.exists() and not force:
        raise SheetnetError(f"{path} already exists (use --force to overwrite)")
    return path


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # what ends a command (cli.py)


def _temp_name(folder: Path, suffix: str) -> Path:
    # The name is chosen, and handed to the caller's try, before anything exists under it: the
    # CLI turns a stop signal into an exception wherever the main thread is, and one landing
    # inside tempfile.mkstemp, after the file exists but before its name comes back, would
    # leave a file no finally knows about.
    return folder / f".sheetnet-{secrets.token_hex(6)}{suffix}"


def _create(make, folder: Path, suffix: str, names: list) -> Path:
    # make(path) creates it exclusively (a name already taken: draw another)
    for _ in range(100):
        names.append(_temp_name(folder, suffix))
        try:
            make(names[-1])
            return names[-1]
        except FileExistsError:
            names.pop()
    raise FileExistsError(f"no free temporary name in {folder}")


def cannot_write(path: Path, exc: OSError) -> SheetnetError:
    """The one line for an OSError met writing ``path`` (read-only, full, no permission...)."""
    return SheetnetError(f"cannot write {path}: {exc.strerror or exc}")


@contextmanager
def atomic_path(path: str | os.PathLike, force: bool = True):
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``.

    Raises:
        SheetnetError: the folder is missing, ``path`` exists and ``force`` is False, or the
            file system refuses (read-only, full, no permission): nothing is left behind.
    """
    path = check_output(path, force)
    names: list[Path] = []  # the temporary file's name, known before the file exists
    try:
        tmp = str(_create(lambda p: os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY,
                                                     0o600)),
                          path.parent, path.suffix or TEMP_SUFFIX, names))
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except OSError as exc:
        raise cannot_write(path, exc) from None
    finally:
        for tmp in names:
            if os.path.exists(tmp):
                os.unlink(tmp)


@contextmanager
def atomic_dir(path: str | os.PathLike, force: bool = False):
    """Yield a temporary folder beside ``path``; on success it takes the place of ``path``
    (a file or folder already there, with ``force``, is removed only then).

    Raises:
        SheetnetError: the folder is missing, ``path`` exists and ``force`` is False, or the
            file system refuses (read-only, full, no permission): nothing is left behind.
    """
    path = check_output(path, force)
    names: list[Path] = []  # the temporary folder's name, known before the folder exists
    old = None
    try:
        tmp = _create(lambda p: os.mkdir(p, 0o700), path.parent, "", names)
        old = path.parent / f"{tmp.name}.old"
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if path.exists():
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except OSError:
            if old.exists():   # put back what was there
                os.replace(old, path)
            raise
    except OSError as exc:
        raise cannot_write(path, exc) from None
    finally:
        for leftover in (*names, old):
            if leftover is None:
                continue
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            elif leftover.exists():
                leftover.unlink()


def torch_save(obj, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)``, but a write the file system refuses raises its OSError (torch
    reports a full disk as RuntimeError "unexpected pos"), which atomic_path turns into one line.

    Raises:
        OSError: the write failed.
    """
    import torch
    with open(path, "wb") as f:
        sink = _Sink(f)
        try:
            torch.save(obj, sink)
        except RuntimeError:
            if sink.error is not None:
                raise sink.error from None
            raise


class _Sink:
    # a file that remembers the OSError its write raised (torch's writer swallows it)
    def __init__(self, f):
        self.f, self.error = f, None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.f.flush()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
