"""Property test: checkpoints mutated at random (bytes, zip entries, config values, tensors) are
read or refused in one line that names something (not torch's bare "Error(s) in loading
state_dict for GPT:"), never with a traceback; weights that are not real numbers are always
refused (never silently cast); a refused export leaves nothing."""
from __future__ import annotations

import io
import tempfile
import warnings
import zipfile
from pathlib import Path

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cli_helpers import invoke
from hostile.helpers import files_in, no_temp_files

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SOURCES = ("sqrt_2x2.pt", "textnet.pt", "gpt.pt")

# JSON-ish values of every type, for config entries
values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=8)
DTYPES = (torch.float16, torch.float64, torch.int64, torch.bool, torch.complex64, torch.uint8)
NOT_REAL = (torch.bool, torch.complex64)   # a sheet cannot hold them without changing them


def _bytes_mutation(data: bytes, draw) -> bytes:
    kind = draw(st.sampled_from(["truncate", "flip", "drop entry", "duplicate entry"]))
    if kind == "truncate":
        return data[:draw(st.integers(0, len(data) - 1))]
    if kind == "flip":
        out = bytearray(data)
        for at in draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=8)):
            out[at] ^= draw(st.integers(1, 255))
        return bytes(out)
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        entries = [(info, src.read(info)) for info in src.infolist()]
    at = draw(st.integers(0, len(entries) - 1))
    if kind == "drop entry":
        del entries[at]
    else:
        entries.insert(at, entries[at])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out, warnings.catch_warnings():
        warnings.simplefilter("ignore")   # "Duplicate name": the point of the mutation
        for info, body in entries:
            out.writestr(info, body)
    return buf.getvalue()


def _payload_mutation(payload: dict, draw) -> tuple[dict, bool]:
    # (the mutated payload, whether it must be refused)
    kind = draw(st.sampled_from(["config value", "tensor shape", "tensor dtype", "drop tensor"]))
    state, config = payload["state_dict"], payload["config"]
    if kind == "config value":
        key = draw(st.sampled_from(sorted(config) + ["unknown"]))
        config[key] = draw(values)
        return payload, False
    key = draw(st.sampled_from(sorted(state)))
    if kind == "tensor shape":
        state[key] = torch.zeros(draw(st.lists(st.integers(0, 40), min_size=0, max_size=3)))
    elif kind == "tensor dtype":
        dtype = draw(st.sampled_from(DTYPES))
        state[key] = state[key].to(dtype)
        return payload, dtype in NOT_REAL
    else:
        del state[key]
    return payload, False


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_mutated_checkpoints_answer_in_one_line(data):
    source = data.draw(st.sampled_from(SOURCES))
    raw = (EXAMPLES / source).read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model, must_refuse = folder / "model.pt", False
        if data.draw(st.booleans()):
            model.write_bytes(_bytes_mutation(raw, data.draw))
        else:
            payload = torch.load(io.BytesIO(raw), weights_only=True)
            payload, must_refuse = _payload_mutation(payload, data.draw)
            torch.save(payload, model)
        before = files_in(folder)
        args = ["inspect", model]
        if data.draw(st.integers(0, 3)) == 0:
            args = ["export", model, folder / "out.xlsx", "--context", "4"]
        res = invoke(*args)
        assert res.exception is None or isinstance(res.exception, SystemExit), res.output
        assert "Traceback" not in res.output
        assert res.exit_code != 0 or not must_refuse, res.output
        if res.exit_code != 0:
            lines = res.output.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), res.output
            assert not lines[0].endswith(":"), lines[0]   # a header that names nothing
            assert files_in(folder) == before
        no_temp_files(folder)
