"""Running sheetnet as a user would, in a child process, and what a refusal must look like.

Every hostile case runs the real command line (``python -m sheetnet``) in a fresh interpreter, so
that its exit code, its stderr, the files it leaves and its peak memory are the child's own: the
peak is the child's VmHWM, read from /proc/self/status as it exits (getrusage's ru_maxrss would
carry over the forked test process's size).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MEMORY_BOUND_MB = 1024   # issue 12: any input under 10 MB is refused or exported within 1 GB

# the CLI in this interpreter, writing its VmHWM to a file when it exits (sys.exit included)
_WRAPPER = """
import atexit, sys
def _peak(path=sys.argv[1]):
    with open('/proc/self/status') as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith('VmHWM:'))
    with open(path, 'w') as out:
        out.write(str(kb))
atexit.register(_peak)
from sheetnet.cli import main
sys.argv = ['sheetnet', *sys.argv[2:]]
main()
"""


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    peak_mb: float


def run_cli(*args, cwd: Path | None = None, timeout: float = 300, env: dict | None = None
            ) -> Outcome:
    """``sheetnet ARGS...`` in a child Python; returns its exit code, output and peak memory."""
    # in the temp dir, not the checkout: a run killed mid-test must not leave a file in the tree
    peak_file = Path(tempfile.gettempdir()) / f"sheetnet-peak-{os.getpid()}-{id(args)}"
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    try:
        proc = subprocess.run([sys.executable, "-c", _WRAPPER, str(peak_file), *map(str, args)],
                              cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env=full_env)
        peak = int(peak_file.read_text()) / 1024 if peak_file.exists() else float("nan")
    finally:
        peak_file.unlink(missing_ok=True)
    return Outcome(proc.returncode, proc.stdout, proc.stderr, peak)


def refused(out: Outcome, *words: str) -> str:
    """Assert a non-zero exit and exactly one stderr line, "error: ...", holding every word
    (no traceback); return the line."""
    lines = out.stderr.strip().splitlines()
    assert out.code != 0, (out.code, out.stdout, out.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def files_in(folder: Path) -> set[str]:
    """Every path under ``folder``, relative (to assert that nothing was added or left)."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def no_temp_files(folder: Path) -> None:
    """No hidden ``.sheetnet-*`` temporary file or folder is left in ``folder``."""
    left = [p.name for p in folder.iterdir() if p.name.startswith(".sheetnet-")]
    assert not left, left
