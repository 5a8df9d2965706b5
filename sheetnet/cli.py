"""The ``sheetnet`` command: thin click commands over the public API.

Every SheetnetError becomes one line on stderr ("error: ...") and exit code 1; SIGINT (Ctrl-C),
SIGTERM and SIGHUP one line, "error: interrupted (SIGTERM)", and exit code 128 + the signal's number,
after the same clean-up as any error.
"""
from __future__ import annotations

import contextlib
import functools
import json
import signal
import sys
import threading
from pathlib import Path

import click

from .engines.base import DEFAULT_TIMEOUT
from .errors import SheetnetError
from .files import STOP_SIGNALS
from .options import MAX_RECALC_S, TOLERANCE, TOLERANCE_FLOAT32, ExportOptions


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


def _whole(option: str, text: str | None) -> int | None:
    # a whole-number option, refused in one line (click's own refusal is a usage block)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise SheetnetError(f"{option} must be a whole number (got {text!r})") from None


def _floats(text: str) -> list[float]:
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise SheetnetError(f"expected comma-separated numbers, got {text!r}") from None


def _load_options(fn):
    # how to read MODEL: the same three options on export and verify
    for opt in reversed([
        click.option("--format", "fmt", default="auto", show_default=True,
                     help="checkpoint format: auto, sheetnet, nanogpt, hf-gpt2, mingpt, "
                          "mlp-module, mlp-state-dict"),
        click.option("--meta", type=click.Path(dir_okay=False), default=None,
                     help="GPT: meta.pkl with the vocabulary (default: one beside MODEL; for "
                          "nanoGPT also data/<dataset>/meta.pkl, as its sample.py finds it)"),
        click.option("--activations", default=None,
                     help="bare Sequential state dict: activations between the Linear layers, "
                          "e.g. relu,tanh (relu tanh sigmoid gelu gelu_tanh leaky_relu[:slope] silu "
                          "softplus[:beta] elu[:alpha] identity)"),
    ]):
        fn = opt(fn)
    return fn


# the signals that end a command (files.STOP_SIGNALS); one ignored when we start (nohup's
# SIGHUP) stays ignored


class Interrupted(BaseException):
    """A stop signal, raised in the main thread wherever it is, so that every ``finally`` and
    ``with`` runs: the export's temporary file goes (files.atomic_path), soffice and its profile
    go (engine.Engine).  A BaseException, as KeyboardInterrupt is: ``except Exception`` lets it by.
    """

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    def __str__(self) -> str:
        return f"interrupted ({signal.Signals(self.signum).name})"


@contextlib.contextmanager
def _signals_raise():
    # without it SIGTERM and SIGHUP kill us at once (no finally runs) and Ctrl-C's
    # KeyboardInterrupt ends in click's "Aborted!"; handlers can only be set in the main thread
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        for s in STOP_SIGNALS:  # a second signal must not cut the clean-up short
            signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)

    before = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for s, handler in before.items():
        if handler is not signal.SIG_IGN:
            signal.signal(s, stop)
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(signal.SIGINT) from None
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


class _Main(click.Group):
    """The sheetnet group: any command a stop signal ends prints one line and exits 128 + signum."""

    def invoke(self, ctx):
        try:
            with _signals_raise():
                return super().invoke(ctx)
        except Interrupted as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(128 + exc.signum)


def _timeout_option(fn):
    # verify and run: how long LibreOffice may take (checked by engines.base.check_timeout before use)
    return click.option("--timeout", type=float, default=DEFAULT_TIMEOUT, show_default=True,
                        help="seconds LibreOffice may take to start and, separately, to "
                             "recalculate")(fn)


def _engine_option(all_too: bool):
    # verify and run: which spreadsheet recalculates (verify may ask every one)
    from .engines import DEFAULT, ENGINES
    names = list(ENGINES) + (["all"] if all_too else [])
    return click.option("--engine", type=click.Choice(names), default=DEFAULT, show_default=True,
                        help="the spreadsheet engine that recalculates BOOK"
                             + ("; all: each one, a column of max errors per engine"
                                if all_too else ""))


@click.group(cls=_Main)
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


@train.command("textnet")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--embed", default=2, show_default=True, help="embedding width")
@click.option("--hidden", default="2,2", show_default=True, help="hidden widths, e.g. 8,8")
@click.option("--pairs", "pairs_path", type=click.Path(dir_okay=False), default=None,
              help="'word next' pairs, one a line (default: examples/textnet_pairs.txt)")
@click.option("--seed", default=0, show_default=True, help="first seed tried")
@_one_line_errors
def train_textnet(out, embed, hidden, pairs_path, seed):
    """Train the tiny text net until it predicts every pair's next word."""
    from .models.textnet import read_pairs, train_textnet_checkpoint
    default = Path(__file__).resolve().parent.parent / "examples" / "textnet_pairs.txt"
    pairs = read_pairs(pairs_path or default)
    meta = train_textnet_checkpoint(out, pairs, embed=embed, hidden=_ints(hidden), seed=seed)
    click.echo(f"wrote {out}: {len(meta['vocab'])} words, {len(pairs)} pairs learned, final loss "
               f"{meta['final_loss']:.3g} (seed {meta['seed_used']}) in {meta['train_seconds']} s")


@train.command("gpt")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--layers", default=2, show_default=True, help="transformer blocks")
@click.option("--heads", default=2, show_default=True, help="attention heads per block")
@click.option("--embd", default=32, show_default=True, help="embedding width (a multiple of --heads)")
@click.option("--context", default=32, show_default=True, help="block size: positions it reads")
@click.option("--steps", default=3000, show_default=True)
@click.option("--text", "text_path", type=click.Path(dir_okay=False), default=None,
              help="training text (default: examples/gpt_text.txt)")
@click.option("--seed", default=0, show_default=True)
@_one_line_errors
def train_gpt(out, layers, heads, embd, context, steps, text_path, seed):
    """Train a character-level GPT on a text file."""
    from .models.train_gpt import train_gpt_checkpoint
    default = Path(__file__).resolve().parent.parent / "examples" / "gpt_text.txt"
    path = Path(text_path) if text_path else default
    if not path.is_file():
        raise SheetnetError(f"training text {path} does not exist")
    res = train_gpt_checkpoint(out, path.read_text(encoding="utf-8"), n_layer=layers, n_head=heads,
                               n_embd=embd, block_size=context, steps=steps, seed=seed)
    md = res["metadata"]
    click.echo(f"wrote {out}: loss {md['initial_loss']:.3f} -> {md['final_loss']:.3f} "
               f"({len(md['vocab'])} characters) in {res['seconds']:.1f} s")


def _export_options(fn):
    # what export writes: the same options on export and inspect (which shows what export would)
    fn = _load_options(fn)
    for opt in reversed([
        click.option("--style", type=click.Choice(["cells", "arrays", "auto"]), default="auto",
                     show_default=True, help="cells: one readable formula per cell; arrays: "
                     "one MMULT array per product; auto: arrays above 200,000 formula cells, "
                     "else cells"),
        click.option("--input", "input_value", type=float, default=None,
                     help="sqrt net: x to start with"),
        click.option("--prompt", default=None,
                     help="text models: the prompt written into the sheet"),
        click.option("--tokens", default=None,
                     help="GPT: comma-separated token ids instead of a prompt"),
        click.option("--context", type=int, default=None,
                     help="GPT: positions to compute, 1 to the block size (default: the block "
                          "size up to 64, or as many as the prompt or --tokens fill)"),
        click.option("--lens/--no-lens", default=None,
                     help="GPT: the Logit lens sheet (default: on while vocabulary x (layers + 1) "
                          "x positions stays under 200,000 cells)"),
        click.option("--precision", type=click.Choice(["float64", "float32", "auto"]),
                     default="auto", show_default=True, help="weight cells: float64 (shortest "
                     "exact text); float32 (shortest text that reads back as the same float32: "
                     "~40% smaller; verify then allows 1e-6 of each tensor's size); auto: float32 "
                     "above 5M float32 weights, else float64"),
    ]):
        fn = opt(fn)
    return fn


def _options(tokens=None, **given) -> ExportOptions:
    return ExportOptions(tokens=_ints(tokens), **given)


@main.command()
@click.argument("model", type=click.Path(dir_okay=True))
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="overwrite OUT if it exists")
@click.option("--max-recalc", type=float, default=MAX_RECALC_S, show_default=True,
              help="refuse a workbook whose estimated LibreOffice recalculation (as inspect "
                   "reports it) takes longer, in seconds")
@_export_options
@click.option("--train", "train_path", type=click.Path(dir_okay=False), default=None,
              help="write training instead: a CSV (header, input columns then targets) or, "
                   "for text models, 'word next' pairs; backpropagation and the optimizer as "
                   "live formulas, one sheet per step")
@click.option("--steps", type=int, default=None, help="--train: steps unrolled [default: 10]")
@click.option("--lr", type=float, default=None, help="--train: learning rate [default: 0.01]")
@click.option("--optimizer", type=click.Choice(["sgd", "momentum", "adam"]), default=None,
              help="--train: torch.optim's SGD, SGD with momentum 0.9, or Adam [default: sgd]")
@click.option("--batch", default=None, help="--train: examples per step, all or N [default: all]")
@_one_line_errors
def export(model, out, force, train_path, steps, lr, optimizer, batch, **given):
    """Write MODEL (a file, or a Hugging Face / minGPT folder) as the workbook OUT."""
    from .capture.gpt_body import positions_text
    from .api import SheetProgress
    from .pipeline import export as do_export
    train = _train_options(train_path, steps=steps, lr=lr, optimizer=optimizer, batch=batch)
    with SheetProgress() as progress:
        res = do_export(model, out, _options(force=force, **given), progress=progress,
                        train=train)
    click.echo(f"wrote {res.path}: {res.sheets} sheets, {res.weight_cells} weight cells, "
               f"{res.formula_cells} formula cells (style {res.style}) in {res.seconds:.2f} s"
               + (f", precision {res.precision}" if res.precision != "float64" else "")
               + (f"; it {positions_text(*res.positions)}" if res.positions else ""))
    for line in res.architecture:
        click.echo(f"  {line}")
    for note in res.notes:
        click.echo(f"  note: {note}")


def _train_options(path, **given):
    # --train and its options (each None unless given) -> TrainOptions, or None without --train
    from .capture.train_data import TrainOptions, parse_batch
    if path is None:
        named = [k for k, v in given.items() if v is not None]
        if named:
            raise SheetnetError(f"--{named[0]} needs --train FILE")
        return None
    batch = given.pop("batch")
    return TrainOptions(data=path, batch=None if batch is None else parse_batch(batch),
                        **{k: v for k, v in given.items() if v is not None})


@main.command("inspect")
@click.argument("path", type=click.Path(dir_okay=True))
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@_export_options
@_one_line_errors
def inspect_cmd(path, as_json, **given):
    """Show what export would write for a model (or what a workbook holds), writing nothing.

    Takes export's options: a GPT's --context, for one, decides how many cells it needs."""
    from .inspect import describe, inspect
    info = inspect(path, _options(**given))
    click.echo(json.dumps(info) if as_json else describe(info))


@main.command()
@click.argument("book", type=click.Path(dir_okay=False))
@click.argument("model", type=click.Path(dir_okay=True))
@click.option("--tol", type=float, default=None, help=f"max abs error per cell [default: "
              f"{TOLERANCE:g}; for a workbook exported with precision float32, "
              f"{TOLERANCE_FLOAT32:g} x max(1, each tensor's largest |value|)]")
@_load_options
@_timeout_option
@_engine_option(all_too=True)
@_one_line_errors
def verify(book, model, tol, fmt, meta, activations, timeout, engine):
    """Recalculate BOOK in a spreadsheet engine (LibreOffice unless --engine says otherwise) and
    compare every layer with MODEL in PyTorch.

    MODEL is read as the export read it unless --format, --meta or --activations say otherwise."""
    from .engines import ENGINES
    from .engines.base import check_timeout
    from .verifier import engines_table
    from .verifier import verify as do_verify
    reports = {name: do_verify(book, model, tol=tol, fmt=None if fmt == "auto" else fmt,
                               meta=meta, activations=activations, engine=name,
                               timeout=check_timeout(timeout))
               for name in (ENGINES if engine == "all" else [engine])}
    click.echo(engines_table(reports) if engine == "all" else reports[engine].table())
    if not all(r.ok for r in reports.values()):
        sys.exit(1)


@main.command()
@click.argument("book", type=click.Path(dir_okay=False))
@click.option("--input", "inputs", default=None, help="comma-separated input values")
@click.option("--prompt", default=None, help="text models: the prompt (or word) to write")
@click.option("--tokens", default=None, help="GPT: comma-separated token ids")
@click.option("--temperature", type=float, default=None,
              help="temperature cell (a GPT: >= 0, 0 = greedy)")
@click.option("--top-k", "top_k", default=None, help="GPT: top-k cell (0 = all ids)")
@click.option("--seed", default=None, help="GPT: seed cell (1 .. 2147483646)")
@click.option("--generate", default=None,
              help="GPT: new tokens to report (default: all the context holds)")
@click.option("--inputs", "batch", type=click.Path(dir_okay=False), default=None,
              help="one prompt or input row per line (CSV, or JSONL for a .jsonl file): one "
                   "result per line, one engine load")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@_timeout_option
@_engine_option(all_too=False)
@_one_line_errors
def run(book, inputs, prompt, tokens, temperature, top_k, seed, generate, batch, as_json,
        timeout, engine):
    """Set BOOK's inputs, recalculate (in LibreOffice unless --engine says otherwise) and print
    a short summary: the output rounded, the next word or character and the top 5 with their
    probabilities, a GPT's continuation of the prompt, a training book's loss per step (--json:
    every number)."""
    from .engines.base import check_timeout
    from .manifest import read_manifest
    from .runner import read_input_rows, run_many, summary
    top_k, seed, generate = (_whole(name, v) for name, v in
                             (("--top-k", top_k), ("--seed", seed), ("--generate", generate)))
    if top_k is not None and top_k < 0:  # said before the engine starts
        raise SheetnetError(f"--top-k must be 0 or more (got {top_k})")
    common = {"temperature": temperature, "top_k": top_k, "seed": seed, "generate": generate}
    row = {"inputs": _floats(inputs) if inputs is not None else None, "prompt": prompt,
           "tokens": _ints(tokens)}
    rows = [row] if batch is None else [{**row, **r} for r in read_input_rows(batch, book)]
    vocab = ()  # the text net's words (its probabilities are one per word), read once
    for result in run_many(book, rows, engine=engine, timeout=check_timeout(timeout), **common):
        if as_json:
            click.echo(json.dumps(result))
        elif "generated" in result and batch is not None:  # one line per input, \n shown
            click.echo(result["generated"].replace("\n", "\\n"))
        else:  # a few rounded lines; --json keeps every number
            vocab = read_manifest(book).vocab if vocab == () else vocab
            lines = summary(result, vocab)
            click.echo("\n".join(lines) if batch is None else "; ".join(lines))


@main.command("import")
@click.argument("book", type=click.Path(dir_okay=False))
@click.argument("out", type=click.Path())
@click.option("--force", is_flag=True, help="overwrite OUT if it exists")
@_one_line_errors
def import_cmd(book, out, force):
    """Write the weights of BOOK (as edited and saved in Excel or LibreOffice) as a checkpoint OUT
    in the format BOOK was exported from (a Hugging Face model or minGPT work folder: OUT is a
    folder)."""
    from .importer import import_book
    notes = []
    path = import_book(book, out, force=force, notes=notes.append)
    click.echo(f"wrote {path}: {notes.pop()}")
    for note in notes:
        click.echo(f"  {note}")


if __name__ == "__main__":  # pragma: no cover
    main()
