"""Writing files so that a failure leaves nothing behind."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import SheetnetError


@contextmanager
def atomic_path(path: str | os.PathLike, force: bool = True):
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``.

    Raises:
        SheetnetError: the folder is missing, or ``path`` exists and ``force`` is False.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise SheetnetError(f"output folder {path.parent} does not exist")
    if path.exists() and not force:
        raise SheetnetError(f"{path} already exists (use --force to overwrite)")
    fd, tmp = tempfile.mkstemp(prefix=".sheetnet-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
