"""A checkpoint's config checked against its tensors before anything is allocated.

Every family (mlp, textnet, gpt) rebuilds its module the same way: the config's values are
checked one by one (the key and the bad value named), the module is built on the meta device
(shapes only, no memory), each expected shape is checked against the sheet limits and the
state dict's tensors, and only then are the loaded tensors handed over (``assign=True``: no
random initialisation, no second copy).  A 2 KB file whose config asks for Linear(60000, 60000)
is refused here, not after allocating 14 GB.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from ..errors import SheetnetError
from ..a1 import MAX_COLS, MAX_ROWS

MAX_LAYERS = 1_000   # modules in one Sequential, blocks in one GPT: each is a sheet or more


def config_int(value: object, key: str, where: str, least: int = 1) -> int:
    """``value`` if it is an integer in [least, MAX_ROWS] (a width must fit a sheet's rows).

    Raises:
        SheetnetError: "<where>: <key> must be ..., got <value>" (bools and floats are refused).
    """
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= MAX_ROWS:
        raise SheetnetError(f"{where}: {key} must be an integer from {least} to {MAX_ROWS:,} (the "
                            f"rows of a sheet), got {_short(value)}")
    return value


def config_ints(value: object, key: str, where: str, shortest: int = 1) -> list[int]:
    """``value`` if it is a list of at least ``shortest`` (and at most MAX_LAYERS) widths."""
    if not isinstance(value, (list, tuple)) or not shortest <= len(value) <= MAX_LAYERS:
        raise SheetnetError(f"{where}: {key} must be a list of {shortest} to {MAX_LAYERS:,} "
                            f"positive integers, got {_short(value)}")
    return [config_int(v, f"{key}[{i}]", where) for i, v in enumerate(value)]


def config_number(value: object, key: str, where: str) -> float:
    """``value`` if it is a finite real number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SheetnetError(f"{where}: {key} must be a finite number, got {_short(value)}")
    return float(value)


def config_choice(value: object, key: str, where: str, choices) -> object:
    """``value`` if it is one of ``choices`` (compared by type too: True is not 1)."""
    if not any(type(value) is type(c) and value == c for c in choices):
        raise SheetnetError(f"{where}: {key} must be one of {', '.join(map(repr, choices))}, "
                            f"got {_short(value)}")
    return value


def _short(value: object) -> str:
    # a bad value as the message shows it: repr, cut (a hostile value may be huge)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_tensors(state_dict: object, where: str) -> dict:
    """``state_dict`` if it maps names to real-valued dense tensors.

    Complex numbers would lose their imaginary part and bools or quantized values their meaning
    when cast to the float weights a sheet holds, so they are refused rather than converted.

    Raises:
        SheetnetError: not a dict, a value that is not a tensor, or a tensor of another dtype.
    """
    if not isinstance(state_dict, dict):
        raise SheetnetError(f"{where}: the state dict must be a dict of name -> tensor")
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise SheetnetError(f"{where}: the state dict has a key {_short(key)}, not a name")
        if not isinstance(value, torch.Tensor):
            raise SheetnetError(f"{where}: {_short(key)} is a {type(value).__name__}, not a tensor")
        if value.device.type != "cpu":   # a meta tensor has a shape and no values
            raise SheetnetError(f"{where}: {_short(key)} holds no values (a {value.device.type} "
                                "tensor)")
        real = not (value.dtype.is_complex or value.dtype == torch.bool)
        if not real or value.is_quantized or value.layout != torch.strided:
            kind = "quantized " if value.is_quantized else (
                "sparse " if value.layout != torch.strided else "")
            raise SheetnetError(f"{where}: {_short(key)} holds {kind}{value.dtype} values; "
                                "sheetnet exports real numbers only (floating point or integer)")
    return state_dict


def build_on_meta(make: Callable[[], nn.Module]) -> nn.Module:
    """``make()`` built on the meta device: shapes and names, no memory for the weights."""
    with torch.device("meta"):
        return make()


def check_fit(model: nn.Module, state_dict: dict, where: str) -> None:
    """Compare ``state_dict`` with what ``model`` (built on the meta device) expects.

    Raises:
        SheetnetError: naming the first tensor that cannot fit a sheet, the first key whose shape
            differs (both shapes), a missing key or an unexpected key.
    """
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    for key, shape in expected.items():
        if len(shape) == 2 and min(shape) > MAX_COLS:
            raise SheetnetError(f"{where}: {key} would be {shape}; a sheet holds at most "
                                f"{MAX_COLS:,} columns by {MAX_ROWS:,} rows, either way round")
    problem = fit_problem(expected, {k: tuple(v.shape) for k, v in state_dict.items()})
    if problem:
        raise SheetnetError(f"{where}: the weights do not fit its config: {problem}")


def check_keys_early(expected: dict[str, tuple], state_dict: dict, where: str) -> None:
    """Compare a few keys' shapes, computed from the config, before building a big module (a
    GPT of 1,000 blocks takes seconds even on the meta device); same message as check_fit.

    Raises:
        SheetnetError: a listed key missing or of another shape.
    """
    found = {k: tuple(state_dict[k].shape) for k in expected if k in state_dict}
    problem = fit_problem(expected, found)
    if problem:
        raise SheetnetError(f"{where}: the weights do not fit its config: {problem}")


def fit_problem(expected: dict[str, tuple], found: dict[str, tuple]) -> str | None:
    """What is wrong between the shapes a config needs and those a checkpoint has, or None."""
    for key, shape in expected.items():
        if key in found and found[key] != shape:
            return f"{key} is {found[key]}; the config needs {shape}"
    missing = [k for k in expected if k not in found]
    extra = [k for k in found if k not in expected]
    more = len(missing) + len(extra) - 1
    tail = f" (and {more} more missing or unexpected)" if more > 0 else ""
    if missing:
        return f"{missing[0]} is missing (the config needs {expected[missing[0]]}){tail}"
    if extra:
        return f"{_short(extra[0])} is not a tensor the config has{tail}"
    return None


def load_fitted(model: nn.Module, state_dict: dict, where: str) -> nn.Module:
    """Hand ``state_dict`` to ``model`` (built on the meta device) after :func:`check_fit`.

    The tensors keep one floating dtype (the first floating tensor's; float64 weights stay
    float64), as a module has one.

    Returns:
        the model, in eval mode.
    Raises:
        SheetnetError: see :func:`check_tensors` and :func:`check_fit`.
    """
    check_fit(model, check_tensors(state_dict, where), where)
    dtype = next((v.dtype for v in state_dict.values() if v.is_floating_point()), torch.float32)
    model.load_state_dict({k: v.to(dtype) for k, v in state_dict.items()}, strict=True,
                          assign=True)
    return model.eval()
