"""What an op unit is made of, and the registry of them.

An op is a frozen dataclass that holds, in one place:

- ``INPUTS``: the names of its fields that name input nodes (a field may hold one node name,
  ``None`` when the input is optional, or a tuple of names).  Declared, never guessed from
  annotations: ``Optional[Ref]`` once dropped an edge silently.
- ``reference(self, v)``: its NumPy float64 value, given the values of the nodes it reads.
- ``formula(self, r, i, j)``: the formula text (no "=") of output cell (i, j); ``r`` is the
  emitter's ``Refs`` (emit/a1.py), which turns a node's cells into A1 text.
- ``array``: its ``--style arrays`` form: a method ``array(self, r)`` returning one array formula
  for the whole node, ``ELEMENTWISE`` (the cell formula with whole ranges in place of cells), or
  ``PerCellOnly("why")``.
- ``derivative``: ``None`` until the training issue fills it (the op's backward, micrograd style).
- ``example()``: a tiny case (``Example``) the conformance test (tests/test_ops.py) runs through
  the reference, torch in float64 and LibreOffice.

Ops import nothing from the rest of sheetnet: ir and emit import them (the pipeline's direction).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

Ref = str  # a field naming an input node (listed in the op's INPUTS)


class ArrayText(str):
    """Formula text entered as a one-cell array formula ({=...}).

    Gnumeric evaluates ``EXACT(range, x)`` or ``EXP(range - x)`` inside a plain SUMPRODUCT cell
    at one cell of the range, not at each (wrong answers, no error); as an array formula every
    engine evaluates them cell by cell, and LibreOffice's and Excel's values do not change.
    """


def as_array_text(fn):
    """Decorate a formula function so its text is written as a one-cell array formula."""
    return lambda *args: ArrayText(fn(*args))


def number(value: float) -> str:
    """The shortest text that reads back as exactly this float64."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


class _Elementwise:
    def __repr__(self) -> str:
        return "ELEMENTWISE"


ELEMENTWISE = _Elementwise()  # array form: the cell formula applied to whole ranges


class PerCellOnly(str):
    """Why an op has no array formula (it is written one formula per cell in both styles)."""


@dataclass(frozen=True)
class Example:
    """A tiny case of one op.

    inputs: named arrays, each written as an Input leaf (numbers or text, 2-D).
    op: the op under test, reading those names.
    torch: fn(the torch module, *input tensors in ``inputs`` order) -> the value PyTorch
        computes in float64 (ops import no torch themselves), or None where torch has no
        such op (text ops).
    """
    inputs: dict[str, Any]
    op: Any
    torch: Callable | None = None


class Op:
    """Base of every op: the one part with a shared default (INPUTS each op declares itself).

    ``derivative`` is the slot for the op's backward (what the training issue fills): until then
    ``None``, meaning the op cannot be trained through.
    """
    derivative = None


REGISTRY: dict[str, type] = {}  # op class name -> op class, in registration order

_REQUIRED = ("INPUTS", "reference", "formula", "array", "derivative", "example")


def register(cls: type) -> type:
    """Class decorator: add an op to the registry once it has every part of a unit."""
    missing = [part for part in _REQUIRED if not hasattr(cls, part)]
    if missing:
        raise TypeError(f"op {cls.__name__} lacks {', '.join(missing)}")
    if cls.__name__ in REGISTRY:
        raise TypeError(f"op {cls.__name__} registered twice")
    REGISTRY[cls.__name__] = cls
    return cls


def inputs(op) -> list[str]:
    """Names of the nodes an op reads, from its declared INPUTS (unset optional ones skipped)."""
    names: list[str] = []
    for field_name in getattr(op, "INPUTS", ()):
        value = getattr(op, field_name)
        if isinstance(value, tuple):
            names.extend(value)
        elif value is not None:
            names.append(value)
    return names
