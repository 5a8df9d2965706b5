"""Writing files so that a failure leaves nothing behind."""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import SheetnetError


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


@contextmanager
def atomic_path(path: str | os.PathLike, force: bool = True):
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``.

    Raises:
        SheetnetError: the folder is missing, or ``path`` exists and ``force`` is False.
    """
    path = check_output(path, force)
    fd, tmp = tempfile.mkstemp(prefix=".sheetnet-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def atomic_dir(path: str | os.PathLike, force: bool = False):
    """Yield a temporary folder beside ``path``; on success it takes the place of ``path``
    (a file or folder already there, with ``force``, is removed only then).

    Raises:
        SheetnetError: the folder is missing, or ``path`` exists and ``force`` is False.
    """
    path = check_output(path, force)
    tmp = Path(tempfile.mkdtemp(prefix=".sheetnet-", dir=path.parent))
    old = path.parent / f"{tmp.name}.old"
    try:
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
    finally:
        for leftover in (tmp, old):
            if leftover.is_dir():
                shutil.rmtree(leftover)
            elif leftover.exists():
                leftover.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
