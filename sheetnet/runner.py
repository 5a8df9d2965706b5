"""Set a workbook's input cells, let an engine (LibreOffice by default) recalculate, and read the
outputs."""
from __future__ import annotations

import numpy as np

from .errors import SheetnetError
from .engines import DEFAULT_TIMEOUT
from .manifest import Manifest, Positions, RunSpec, read_manifest
from .ops.text import blank
from .ops.tokens import CheckedIds
from .verifier import numeric, read_nodes, with_engine


def input_edits(manifest: Manifest, name: str, values) -> list[tuple[str, int, int, object]]:
    """Edits that fill input node ``name`` row by row with ``values``.

    Raises:
        SheetnetError: the count of values differs from the node's cells, or a value breaks the
            input's bound (the rule its cells carry, e.g. temperature > 0, a seed a whole
            number from 1 to 2147483646: see ir.Bound).
    """
    entry = manifest.nodes[name]
    rows, cols = entry.shape
    flat = list(values)
    if len(flat) != rows * cols:
        raise SheetnetError(f"input {name} takes {rows * cols} value(s), got {len(flat)}")
    bound = entry.bound  # set through the engine, a value skips the cell's own rule
    bad = [v for v in flat if bound is not None and not bound.admits(v)]
    if bad:
        raise SheetnetError(f"{name} must be {bound.short()} (got {bad[0]})")
    down = entry.laid_transposed  # element (i, j) at sheet row j, column i
    return [(entry.sheet, entry.row + (k % cols if down else k // cols),
             entry.col + (k // cols if down else k % cols), v) for k, v in enumerate(flat)]


def run(book, inputs: list[float] | None = None, engine="libreoffice",
        edits: list | None = None, timeout: float = DEFAULT_TIMEOUT,
        generate: int | None = None, **named) -> dict:
    """Recalculate ``book`` with new input values and return its outputs.

    Args:
        book: an exported workbook.
        inputs: values for the (first) input node, row by row; None keeps the workbook's.
        engine: an engine's name (libreoffice, gnumeric, ironcalc: one is started for this
            call), or a running engine to reuse.
        timeout: seconds the engine may take (when started here).
        edits: further (sheet, row, col, value) edits.
        generate: a GPT: how many of the tokens the workbook generated to report (at most its
            context minus the prompt); None: all of them.
        named: values for the model's named inputs, as its capture declared them in the run
            spec's ``inputs`` (e.g. prompt="hello", temperature=0.7, top_k=5, seed=42); None
            is skipped.
    Returns:
        {"inputs": [...], "outputs": [[...], ...]} plus the extra keys the capture declared in
        the run spec's ``report`` (e.g. "probs", "next_token").
    """
    manifest = read_manifest(book)
    spec = manifest.run
    first = spec.input or manifest.inputs[0]
    all_edits = (input_edits(manifest, first, inputs) if inputs is not None else []) + list(edits or [])
    declared = spec.inputs
    given = named.get("tokens")
    named = _tokens_as_prompt(spec, named)
    spelled = given if given is not None and "tokens" not in named else None
    for key, value in named.items():
        if value is None:
            continue
        if key not in declared:
            raise SheetnetError(f"this workbook takes no {key} (it takes: "
                                f"{', '.join(declared) or 'only --input'})")
        values = value if isinstance(value, list) else [value]
        if key in spec.blank_fill:  # e.g. token ids: the positions after them stay blank
            values = _blank_filled(manifest, declared[key], key, values)
        all_edits += input_edits(manifest, declared[key], values)
    report = spec.report
    names = list(dict.fromkeys([first, *manifest.outputs, *report.values(),
                                *([spec.positions.count] if spec.positions else [])]))
    cells = with_engine(engine, timeout, read_nodes, book, manifest, names, edits=all_edits)
    outputs = np.concatenate([numeric(cells[n]) for n in manifest.outputs], axis=1)
    result = {"inputs": [_plain(v) for v in cells[first].flat], "outputs": outputs.tolist()}
    for key, name in report.items():
        values = [_plain(v) for v in cells[name].flat]
        result[key] = values[0] if len(values) == 1 else values
    if spec.positions:
        _keep_positions(result, spec.positions, cells, first)
    got = result.get("tokens")
    if spelled is not None and isinstance(got, list) and list(spelled)[-len(got):] != got:
        # a tokenizer sheet (BPE) reads the spelled text as other ids than the ones given
        raise SheetnetError(f"token ids {list(spelled)} spell {named['prompt']!r}, which the "
                            f"workbook tokenizes as {got}: give the text, or these ids")
    if "training" in manifest.info:  # --train: one loss per step, a list even for one step
        result["loss"] = result["loss"] if isinstance(result["loss"], list) else [result["loss"]]
    if "generated_ids" in result:
        _keep_generated(result, generate)
    elif generate is not None:
        raise SheetnetError("this workbook generates no tokens (--generate is for GPT workbooks)")
    for key in spec.integers:  # ids read back as whole floats
        result[key] = _whole(result[key])
    return result


def run_many(book, rows: list[dict], engine="libreoffice", timeout: float = DEFAULT_TIMEOUT,
             **common) -> list[dict]:
    """``run`` once per row of named inputs, in one engine; LibreOffice loads the workbook once
    and each row edits it (the rows after it start from the workbook as saved).

    Args:
        rows: each a dict of ``run``'s keyword arguments (prompt, tokens, inputs, ...).
        common: arguments every row shares (a row's own value wins).
    Returns:
        one result per row, in order.
    """
    read_manifest(book)  # a file sheetnet did not write is refused before any engine reads it

    def each(eng):
        # Gnumeric, IronCalc: a load per input.  One row: LibreOffice loads a copy with the
        # edits written in (engine.recalculate), never setting cells in a loaded document
        # (LibreOffice 7.4 now and then crashes there: see LibreOffice._edited_copy)
        if not hasattr(eng, "loaded") or len(rows) == 1:
            return [run(book, engine=eng, **{**common, **row}) for row in rows]
        with eng.loaded(book) as doc:  # LibreOffice: one load, then edits
            return [run(book, engine=doc, **{**common, **row}) for row in rows]
    return with_engine(engine, timeout, each)


def _keep_generated(result: dict, generate: int | None) -> None:
    # the steps that fill positions n .. T-1 (the last position's draw has no position), then
    # the first ``generate`` of them; "generated" is their text as the sheet joins it
    ids = result["generated_ids"]
    ids = ids if isinstance(ids, list) else [ids]
    n = len(result.get("tokens") or [])
    room = len(ids) + 1 - n  # the steps table has T - 1 rows
    if generate is not None and not 0 <= generate <= room:
        raise SheetnetError(f"--generate {generate} is past the context: this prompt leaves "
                            f"room for {room} new tokens (export with a larger --context)")
    count = room if generate is None else generate
    texts = result.pop("step_texts", None)
    result["generated_ids"] = [int(i) for i in ids[:count]]
    for key in ("step_probs", "step_u"):
        values = result[key] if isinstance(result[key], list) else [result[key]]
        result[key] = values[:count]
    if texts is not None:
        texts = texts if isinstance(texts, list) else [texts]
        result["generated"] = "".join("" if t is None else str(t) for t in texts[:count])
    else:  # ids only: joined by spaces, as the sheet joins them
        result["generated"] = " ".join(str(i) for i in result["generated_ids"])


def _tokens_as_prompt(spec: RunSpec, named: dict) -> dict:
    # token ids for a workbook whose input is text: spell them with its vocabulary.  (A model
    # with id input cells declares inputs["tokens"] and takes them as they are.)
    if named.get("tokens") is None or "tokens" in spec.inputs or spec.vocab is None:
        return named
    if named.get("prompt") is not None:
        raise SheetnetError("give a prompt or token ids, not both")
    from .capture.gpt import decode_tokens
    named = dict(named)
    named["prompt"] = decode_tokens(named.pop("tokens"), spec.vocab)
    return named


def _keep_positions(result: dict, positions: Positions, cells: dict, first: str) -> None:
    # outputs and per-position reports keep the rows the input filled (the prompt's positions)
    n = int(numeric(cells[positions.count]).flat[0])
    if n < 1:
        raise SheetnetError(f"the {first} is empty")
    result["outputs"] = result["outputs"][:n]
    for key in positions.keys:
        values = result[key] if isinstance(result[key], list) else [result[key]]
        result[key] = [int(v) if isinstance(v, float) and v.is_integer() else v for v in values[:n]]


def _blank_filled(manifest: Manifest, name: str, key: str, values: list) -> list:
    # values for the first cells of input ``name``, "" (blank) for the rest
    rows, cols = manifest.nodes[name].shape
    if len(values) > rows * cols:
        raise SheetnetError(f"{len(values)} {key} given; the workbook holds {rows * cols} "
                            "(its context)")
    filled = [i for i, v in enumerate(values) if not blank(v)]
    gaps = [i for i in range(filled[-1] if filled else 0) if i not in filled]
    if gaps:  # the sheet would fill it with a draw; a prompt has no holes (CheckedIds.GAP)
        raise SheetnetError(CheckedIds.GAP.format(gaps[0]))
    return list(values) + [""] * (rows * cols - len(values))


def _whole(value):
    if isinstance(value, list):
        return [_whole(v) for v in value]
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _plain(value):
    return value if isinstance(value, (str, type(None))) else float(value)


def read_input_rows(path, book) -> list[dict]:
    """``run --inputs FILE``: one prompt or input row per line, as ``run_many``'s rows.

    A .jsonl file holds one JSON value per line: a string (the prompt), a list (token ids, or the
    input row of a workbook without token cells) or an object of run's named inputs
    ({"prompt": "The", "seed": 7}).  Any other file is CSV: one field, the prompt, or a row of
    numbers (token ids, or the input values).

    Raises:
        SheetnetError: an unreadable file, or a line that is none of these (named by number).
    """
    import csv
    import json
    from pathlib import Path
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SheetnetError(f"cannot read {path}: {exc}") from None
    takes = read_manifest(book).run.inputs
    jsonl = str(path).lower().endswith((".jsonl", ".json"))
    rows = []
    for k, line in enumerate(lines, 1):
        try:
            if not line.strip():
                raise ValueError("the line is empty")
            value = json.loads(line) if jsonl else next(csv.reader([line]))
            rows.append(_input_row(value, takes, jsonl))
        except (ValueError, TypeError) as exc:
            raise SheetnetError(f"{path} line {k}: {exc}") from None
    if not rows:
        raise SheetnetError(f"{path} holds no inputs")
    return rows


def _input_row(value, takes: dict, jsonl: bool) -> dict:
    # one line's value -> run's keyword arguments
    if isinstance(value, dict):
        unknown = [key for key in value if key not in takes and key not in ("inputs", "generate")]
        if unknown:
            raise ValueError(f"this workbook takes no {unknown[0]} (it takes: "
                             f"{', '.join([*takes, 'inputs', 'generate'])})")
        return value
    if "prompt" in takes:
        if isinstance(value, str) or (not jsonl and len(value) == 1):
            return {"prompt": value if isinstance(value, str) else value[0]}
        if jsonl and isinstance(value, list) and "tokens" not in takes:
            return {"tokens": [_whole_number(v) for v in value]}
        raise ValueError("expected one prompt (quote a prompt holding a comma)")
    if isinstance(value, str):
        raise ValueError("this workbook takes no prompt: give numbers")
    if "tokens" in takes:
        return {"tokens": [_whole_number(v) for v in value]}
    return {"inputs": [float(v) for v in value]}


def _whole_number(v) -> int:
    number = float(v)
    if not number.is_integer():
        raise ValueError(f"token id {v} is not a whole number")
    return int(number)


# --- plain-text summary (run without --json) ----------------------------------------------------
TOP = 5  # next tokens listed with their probabilities


def summary(result: dict, vocab=None) -> list[str]:
    """What ``run`` found, in a few lines a reader takes in at a glance (``--json`` keeps every
    number): the loss per step (training), the generated text, the next word or character and
    the top 5 with probabilities, or the outputs rounded to 6 significant digits.

    Args:
        result: run's result.
        vocab: the model's words by id (a text net's probabilities are one per word).
    """
    if "loss" in result:  # a training workbook
        return ["loss per step: " + "  ".join(f"{k}: {_num(v)}"
                                              for k, v in enumerate(result["loss"], start=1))]
    lines = []
    if "next_token" in result:
        what = ("word" if vocab and "probs" in result else
                "character" if "top_chars" in result else "token")
        lines.append(f"next {what}: {_shown(result['next_token'])}")
        top = _top(result, vocab)
        if top:
            lines.append(f"top {len(top)}: " + "  ".join(f"{_shown(t)} {_prob(p)}" for t, p in top))
    if "generated" in result:
        lines.append(f"generated: {_shown(result['generated'])}")
    if not lines:
        ins, outs = result.get("inputs", []), np.asarray(result["outputs"], dtype=np.float64)
        shown = ", ".join(_num(v) if isinstance(v, float) else str(v) for v in ins)
        lines.append(f"inputs {shown} -> " + (f"y = {_num(outs.flat[0])}" if outs.size == 1 else
                     "outputs " + "; ".join(", ".join(_num(v) for v in row) for row in outs)))
    if "chain" in result:
        lines.append("chain: " + " -> ".join(str(w) for w in result["chain"]))
    return lines


def _top(result: dict, vocab) -> list[tuple[object, float]]:
    # (token, probability) of the TOP most likely next tokens, most likely first
    if "top_probs" in result:
        names = result.get("top_tokens") or result.get("top_chars") or result.get("top_ids") or []
        if "top_chars" in result:  # the Output sheet's spelling: "space", "\\n"; the text's own
            names = [{"space": " ", "\u2423": " ", "\\n": "\n"}.get(c, c) for c in names]
        probs = result["top_probs"]
        probs = probs if isinstance(probs, list) else [probs]
        names = names if isinstance(names, list) else [names]
        return list(zip(names, probs))[:TOP]
    if "probs" in result and vocab:
        probs = np.asarray(result["probs"], dtype=np.float64).ravel()
        order = sorted(range(len(probs)), key=lambda i: -probs[i])[:TOP]  # stable: ties by id
        return [(vocab[i], float(probs[i])) for i in order]
    return []


def _num(v) -> str:
    return f"{float(v):.6g}"


def _prob(p) -> str:
    # 0.9996, 2.6e-05: a small probability keeps its digits instead of reading as 0.0000
    p = float(p)
    return f"{p:.4f}" if p == 0 or p >= 1e-3 else f"{p:.2g}"


def _shown(text) -> str:
    # a token as text with its blanks visible: ' ' and '\n' would print as nothing
    return repr(text) if isinstance(text, str) else str(int(text) if float(text).is_integer()
                                                         else text)
