"""The ``sheetnet`` command: thin click commands over the public API.

Every SheetnetError becomes one line on stderr ("error: ...") and exit code 1.
"""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from .errors import SheetnetError
from .options import TOLERANCE, ExportOptions


def _one_line_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SheetnetError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
    return wrapper


def _ints(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise SheetnetError(f"expected comma-separated integers, got {text!r}") from None


def _floats(text: str) -> list[float]:
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise SheetnetError(f"expected comma-separated numbers, got {text!r}") from None


@click.group()
@click.version_option(package_name="sheetnet")
def main():
    """Compile trained PyTorch models into live, verifiable spreadsheets."""


@main.group()
def train():
    """Train an example model (seeded, seconds to a minute on a CPU)."""


@train.command("sqrt")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--hidden", default="16,16", show_default=True, help="hidden widths, e.g. 2,2")
@click.option("--seed", default=0, show_default=True)
@click.option("--steps", default=3000, show_default=True)
@_one_line_errors
def train_sqrt(out, hidden, seed, steps):
    """Train a ReLU MLP on y = sqrt(x), x in [0, 10]."""
    from .models.mlp import train_sqrt_checkpoint
    meta = train_sqrt_checkpoint(out, _ints(hidden), seed=seed, steps=steps)
    click.echo(f"wrote {out}: final MSE {meta['final_mse']:.3g} in {meta['seconds']} s")


@main.command()
@click.argument("model", type=click.Path(dir_okay=True))
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--style", type=click.Choice(["cells", "arrays"]), default="cells", show_default=True,
              help="cells: one readable formula per cell; arrays: one MMULT array per product")
@click.option("--force", is_flag=True, help="overwrite OUT if it exists")
@click.option("--input", "input_value", type=float, default=None, help="sqrt net: x to start with")
@click.option("--prompt", default=None, help="text models: the prompt written into the sheet")
@click.option("--tokens", default=None, help="GPT: comma-separated token ids instead of a prompt")
@_one_line_errors
def export(model, out, style, force, input_value, prompt, tokens):
    """Write MODEL as the workbook OUT."""
    from .export import export as do_export
    opts = ExportOptions(style=style, force=force, input_value=input_value, prompt=prompt,
                         tokens=_ints(tokens))
    res = do_export(model, out, opts)
    click.echo(f"wrote {res.path}: {res.sheets} sheets, {res.weight_cells} weight cells, "
               f"{res.formula_cells} formula cells in {res.seconds:.2f} s")


@main.command()
@click.argument("book", type=click.Path(dir_okay=False))
@click.argument("model", type=click.Path(dir_okay=True))
@click.option("--tol", default=TOLERANCE, show_default=True, help="max abs error per cell")
@_one_line_errors
def verify(book, model, tol):
    """Recalculate BOOK in LibreOffice and compare every layer with MODEL in PyTorch."""
    from .verify import verify as do_verify
    report = do_verify(book, model, tol=tol)
    click.echo(report.table())
    if not report.ok:
        sys.exit(1)


@main.command()
@click.argument("book", type=click.Path(dir_okay=False))
@click.option("--input", "inputs", default=None, help="comma-separated input values")
@click.option("--prompt", default=None, help="text models: the prompt (or word) to write")
@click.option("--tokens", default=None, help="GPT: comma-separated token ids")
@click.option("--temperature", type=float, default=None, help="softmax temperature cell")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@_one_line_errors
def run(book, inputs, prompt, tokens, temperature, as_json):
    """Set BOOK's inputs, recalculate in LibreOffice and print the outputs."""
    from .run import run as do_run
    result = do_run(book, inputs=_floats(inputs) if inputs is not None else None,
                    prompt=prompt, tokens=_ints(tokens), temperature=temperature)
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(f"inputs {result['inputs']} -> outputs {result['outputs']}")


if __name__ == "__main__":  # pragma: no cover
    main()
