"""Running the command line in tests, and what a bad input's answer must look like."""
from click.testing import CliRunner

from sheetnet.cli import main


def invoke(*args):
    """``sheetnet ARGS...`` through click's CliRunner (arguments may be paths)."""
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(res, *words) -> str:
    """Assert a non-zero exit with exactly one "error: ..." line holding every word; return it."""
    assert res.exit_code != 0
    line = res.output.strip()
    assert line.startswith("error: ") and len(line.splitlines()) == 1, line
    for w in words:
        assert w in line, line
    return line
