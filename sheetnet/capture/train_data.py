"""What ``--train`` reads, and how: the options of a training workbook and its data file.

A CSV has a header and one row per example, the input columns first and then the targets
(``x,y`` for the sqrt net, ``x1,x2,x3,y1,y2`` for a 3-in, 2-out MLP); a text model takes word
pairs, "word next" a line (as examples/textnet_pairs.txt).  Every refusal is one line naming
what is wrong.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SheetnetError

OPTIMIZERS = ("sgd", "momentum", "adam")
MAX_STEPS = 1000     # the unrolled steps a workbook holds (each a sheet)
MAX_ROWS = 100_000   # data rows read


@dataclass(frozen=True)
class TrainOptions:
    """How to unroll training into the workbook (the CLI's --train, --steps, --lr, ...)."""
    data: str | None = None     # the CSV or word-pairs file (None: placeholder rows, for verify)
    steps: int = 10             # K: training steps unrolled, one sheet each
    lr: float = 0.01            # learning rate (an editable cell)
    optimizer: str = "sgd"      # sgd | momentum | adam (torch.optim's defaults otherwise)
    batch: int | None = None    # rows per step; None: all ("--batch all")
    momentum: float = 0.9       # SGD momentum's mu (an editable cell)
    beta1: float = 0.9          # Adam's betas and eps (editable cells)
    beta2: float = 0.999
    eps: float = 1e-8

    def check(self) -> None:
        """Refuse options no model could train with.

        Raises:
            SheetnetError: one line naming the option.
        """
        if not isinstance(self.steps, int) or not 1 <= self.steps <= MAX_STEPS:
            raise SheetnetError(f"--steps must be a whole number from 1 to {MAX_STEPS}, "
                                f"not {self.steps}")
        if self.optimizer not in OPTIMIZERS:
            raise SheetnetError(f"--optimizer {self.optimizer!r} is not one of: "
                                f"{', '.join(OPTIMIZERS)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise SheetnetError(f"--lr must be a number above 0, not {self.lr:g}")
        if self.batch is not None and not (isinstance(self.batch, int) and self.batch >= 1):
            raise SheetnetError(f"--batch must be 'all' or a whole number of 1 or more, "
                                f"not {self.batch}")


def parse_batch(text: str) -> int | None:
    """--batch's text: "all" -> None, "8" -> 8.

    Raises:
        SheetnetError: anything else.
    """
    if text.strip().lower() == "all":
        return None
    try:
        n = int(text)
    except ValueError:
        raise SheetnetError(f"--batch must be 'all' or a whole number, not {text!r}") from None
    if n < 1:
        raise SheetnetError(f"--batch must be 'all' or a whole number of 1 or more, not {n}")
    return n


@dataclass(frozen=True)
class TrainData:
    """The examples: x (D, in) numbers or (D, 1) words, y (D, out) numbers or (D, 1) words."""
    x: np.ndarray
    y: np.ndarray
    x_labels: list[str]
    y_labels: list[str]

    @property
    def rows(self) -> int:
        return self.x.shape[0]


def read_csv(path, n_in: int, n_out: int) -> TrainData:
    """The examples of a CSV for a model of ``n_in`` inputs and ``n_out`` outputs.

    Raises:
        SheetnetError: unreadable, a header or row with missing or extra columns, a cell that is
            not a finite number, no rows.
    """
    path = Path(path)
    want = n_in + n_out
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(_limited(csv.reader(f), path))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SheetnetError(f"cannot read {path} ({type(exc).__name__})") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise SheetnetError(f"{path} is empty: it needs a header and rows")
    header, body = [c.strip() for c in rows[0]], rows[1:]
    if len(header) != want:
        raise SheetnetError(f"{path}: the header has {len(header)} column(s); this model takes "
                            f"{n_in} input(s) then {n_out} target(s): {want} columns")
    if not body:
        raise SheetnetError(f"{path} has a header but no rows")
    values = np.empty((len(body), want))
    for n, row in enumerate(body, start=2):
        if len(row) != want:
            raise SheetnetError(f"{path}, line {n}: {len(row)} column(s), the header has {want}")
        for j, cell in enumerate(row):
            values[n - 2, j] = _number(cell, path, n, header[j])
    return TrainData(values[:, :n_in], values[:, n_in:], header[:n_in], header[n_in:])


def _limited(reader, path):
    for k, row in enumerate(reader):
        if k > MAX_ROWS:
            raise SheetnetError(f"{path} has more than {MAX_ROWS:,} rows")
        yield row


def _number(cell: str, path, line: int, column: str) -> float:
    try:
        v = float(cell)
    except ValueError:
        raise SheetnetError(f"{path}, line {line}, column {column}: {cell.strip()[:40]!r} is not "
                            "a number") from None
    if not math.isfinite(v):
        raise SheetnetError(f"{path}, line {line}, column {column}: {cell.strip()} is not a "
                            "finite number")
    return v


def read_word_pairs(path, vocab: list[str]) -> TrainData:
    """The "word next" pairs of a text model, every word in its vocabulary.

    Raises:
        SheetnetError: unreadable, a line without exactly two words, no pairs, or a word not in
            the vocabulary (named).
    """
    from ..models.textnet import TextNetError, read_pairs
    try:
        pairs = read_pairs(path)
    except TextNetError as exc:
        raise SheetnetError(str(exc)) from None
    if len(pairs) > MAX_ROWS:
        raise SheetnetError(f"{path} has more than {MAX_ROWS:,} pairs")
    known = set(vocab)
    for n, pair in enumerate(pairs, start=1):
        for word in pair:
            if word not in known:
                raise SheetnetError(f"{path}, pair {n}: '{word}' is not in the model's "
                                    f"vocabulary ({len(vocab)} words)")
    words = np.array([[a] for a, _ in pairs], dtype=object)
    nexts = np.array([[b] for _, b in pairs], dtype=object)
    return TrainData(words, nexts, ["word"], ["next"])


def placeholder(rows: int, n_in: int, n_out: int, text_word: str | None) -> TrainData:
    """Data of the recorded shape, for rebuilding a workbook's graph (verify reads the values
    from the workbook itself)."""
    if text_word is not None:
        words = np.array([[text_word]] * rows, dtype=object)
        return TrainData(words, words.copy(), ["word"], ["next"])
    return TrainData(np.zeros((rows, n_in)), np.zeros((rows, n_out)),
                     [f"x{i + 1}" for i in range(n_in)], [f"y{i + 1}" for i in range(n_out)])
