"""Hostile checkpoints (issue 12, items 2, 4, 5, 7, 8): every one is refused in one line, early,
within the memory bound, leaving nothing behind; and the Guide says what was read.

Each test builds its file in tmp_path from the shipped examples or from a few zeros.
"""
from __future__ import annotations

import collections
import io
import json
import pickle
import struct
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from cli_helpers import invoke, one_line_error
from hostile.helpers import MEMORY_BOUND_MB, files_in, no_temp_files, refused, run_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
Z = torch.zeros


def sheetnet_pt(path: Path, arch: str, config: dict, state: dict, metadata=None) -> Path:
    torch.save({"format": "sheetnet", "version": 1, "architecture": arch, "config": config,
                "state_dict": state, "metadata": metadata or {}}, path)
    return path


def example(name: str) -> dict:
    return torch.load(EXAMPLES / name, weights_only=True)


def refused_export(tmp_path: Path, model: Path, *words: str, args=()) -> str:
    """``export MODEL out.xlsx`` in a child: refused in one line holding ``words``, within the
    memory bound, nothing written, no temp file.  Returns the line."""
    before = files_in(tmp_path)
    out = run_cli("export", model, tmp_path / "out.xlsx", *args, cwd=tmp_path)
    line = refused(out, *words)
    assert out.peak_mb < MEMORY_BOUND_MB, out.peak_mb
    assert files_in(tmp_path) == before
    no_temp_files(tmp_path)
    return line


def refused_inline(tmp_path: Path, model, *words: str, args=()) -> str:
    """The same through the in-process CliRunner (no memory measured)."""
    before = files_in(tmp_path)
    line = one_line_error(invoke("export", model, tmp_path / "out.xlsx", *args), *words)
    assert "Traceback" not in line
    assert files_in(tmp_path) == before
    no_temp_files(tmp_path)
    return line


# --- item 2: tiny files that cost gigabytes -------------------------------------------------

def _config_bombs(tmp_path: Path) -> dict[str, tuple[Path, tuple[str, ...]]]:
    # 2 KB files whose config asks for a 1 GB layer (each fits a sheet: only the tensors differ)
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": 16000,
                                                "n_layer": 1, "n_head": 2, "vocab_size": 16000,
                                                "n_positions": 8}))
    save_file({"wte.weight": Z(4, 4)}, str(hf / "model.safetensors"))
    nano = tmp_path / "ckpt.pt"
    torch.save({"model": {"transformer.wte.weight": Z(4, 4)},
                "model_args": {"n_layer": 1, "n_head": 2, "n_embd": 16000, "block_size": 8,
                               "bias": True, "vocab_size": 16000}}, nano)
    return {
        "mlp": (sheetnet_pt(tmp_path / "mlp.pt", "mlp", {"sizes": [16000, 16000]},
                            {"0.weight": Z(2, 2), "0.bias": Z(2)}),
                ("0.weight is (2, 2); the config needs (16000, 16000)",)),
        "textnet": (sheetnet_pt(tmp_path / "text.pt", "textnet",
                                {"vocab_size": 2, "embed": 16000, "hidden": [16000]},
                                {"embed.weight": Z(2, 2)}, {"vocab": ["a", "b"]}),
                    ("embed.weight is (2, 2); the config needs (2, 16000)",)),
        "hf-gpt2": (hf, ("transformer.wte.weight is (4, 4); the config needs (16000, 16000)",)),
        "nanogpt": (nano, ("transformer.wte.weight is (4, 4); the config needs (16000, 16000)",)),
    }


@pytest.mark.parametrize("family", ["mlp", "textnet", "hf-gpt2", "nanogpt"])
def test_config_asking_for_huge_layers_is_refused_before_allocating(tmp_path, family):
    model, words = _config_bombs(tmp_path)[family]
    refused_export(tmp_path, model, *words)


def test_layer_wider_than_any_sheet_is_refused(tmp_path):
    # Linear(60000, 60000): 14 GB before; it fits no sheet either way round
    model = sheetnet_pt(tmp_path / "m.pt", "mlp", {"sizes": [60000, 60000]},
                        {"0.weight": Z(2, 2), "0.bias": Z(2)})
    refused_export(tmp_path, model, "0.weight", "(60000, 60000)", "16,384 columns")


def _torch_zip(path: Path, data_pkl: bytes, records: dict[str, bytes] | None = None,
               big: tuple[str, int] | None = None) -> Path:
    # a zip laid out as torch.save lays it out; ``big``: a record of that many zero bytes, deflated
    with zipfile.ZipFile(path, "w", compresslevel=1) as z:
        z.writestr("archive/data.pkl", data_pkl)
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")
        for name, data in (records or {}).items():
            z.writestr(f"archive/data/{name}", data)
        if big:
            info = zipfile.ZipInfo(f"archive/data/{big[0]}")
            info.compress_type = zipfile.ZIP_DEFLATED
            chunk = bytes(1 << 20)
            with z.open(info, "w") as f:
                for _ in range(big[1] >> 20):
                    f.write(chunk)
    return path


def _tensor_pickle(numel: int, shape: tuple, stride: tuple, legacy: bool = False) -> bytes:
    # {"w": a float32 tensor over storage "0" of ``numel`` elements}, as torch.save pickles it
    class Storage:
        pass

    class Tensor:
        def __reduce__(self):
            return (torch._utils._rebuild_tensor_v2,
                    (Storage(), 0, shape, stride, False, collections.OrderedDict()))

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Storage):
                pid = ("storage", torch.FloatStorage, "0", "cpu", numel)
                return (*pid, None) if legacy else pid   # the legacy format adds view metadata
            return None
    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump({"w": Tensor()})
    return buf.getvalue()


def test_compressed_record_that_inflates_to_a_gigabyte_is_refused(tmp_path):
    # a 1 MB .pt whose deflated record inflates to 1 GiB (4 GB in the issue): 1.3 GB peak before
    n = 1 << 28
    model = _torch_zip(tmp_path / "bomb.pt", _tensor_pickle(n, (n,), (1,)), big=("0", 4 * n))
    assert model.stat().st_size < 10 << 20
    refused_export(tmp_path, model, "data/0", "1,073,741,824 bytes", "compressed")


def test_tensor_viewing_one_stored_value_as_a_matrix_is_refused(tmp_path):
    # a (12000, 12000) stride-0 view of one stored float: copying it costs 0.6 GB, float64 1.2 GB
    state = {"0.weight": Z(1).expand(12000, 12000), "0.bias": Z(12000)}
    model = sheetnet_pt(tmp_path / "view.pt", "mlp", {"sizes": [12000, 12000]}, state)
    assert model.stat().st_size < 100_000
    refused_export(tmp_path, model, "(12000, 12000) tensor backed by only 4 stored bytes")


def _shared_nest(depth: int) -> list:
    # a list holding the same list twice, ``depth`` deep: 2**depth entries written out
    node: list = [0]
    for _ in range(depth):
        node = [node, node]
    return node


def test_metadata_expanding_through_shared_references_is_refused(tmp_path):
    # a few hundred bytes of pickle, 2**24 values once the manifest writes the metadata as JSON
    payload = example("sqrt_2x2.pt")
    payload["metadata"]["notes_tree"] = _shared_nest(24)
    torch.save(payload, tmp_path / "nest.pt")
    refused_export(tmp_path, tmp_path / "nest.pt", "expands to more than")


def test_metadata_containing_itself_is_refused(tmp_path):
    payload = example("sqrt_2x2.pt")
    loop: list = []
    loop.append(loop)
    payload["metadata"]["loop"] = loop
    torch.save(payload, tmp_path / "loop.pt")
    refused_inline(tmp_path, tmp_path / "loop.pt", "contains itself")


def test_bare_state_dict_with_a_far_layer_index_is_refused(tmp_path):
    # "3000000.weight": three million Identity layers would be built before it
    torch.save({"3000000.weight": Z(2, 2)}, tmp_path / "far.pt")
    refused_export(tmp_path, tmp_path / "far.pt", "layer index 3000000")


# These two held before (the readers check what the files declare); kept so that they hold.

def test_legacy_torch_file_declaring_a_huge_storage_is_refused(tmp_path):
    real = tmp_path / "real.pt"
    torch.save({"w": Z(3)}, real, _use_new_zipfile_serialization=False)
    head = io.BytesIO(real.read_bytes())
    for _ in range(3):   # magic number, protocol version, system info
        pickle.load(head)
    n = 300_000_000
    body = _tensor_pickle(n, (n,), (1,), legacy=True)
    legacy = tmp_path / "legacy.pt"
    legacy.write_bytes(real.read_bytes()[:head.tell()] + body + pickle.dumps(["0"], protocol=2)
                       + struct.pack("<q", n) + bytes(16))
    refused_export(tmp_path, legacy, "not a loadable PyTorch checkpoint")


def test_safetensors_header_declaring_more_than_the_file_is_refused(tmp_path):
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": 8, "n_layer": 1,
                                                "n_head": 2, "vocab_size": 8, "n_positions": 8}))
    header = json.dumps({"wte.weight": {"dtype": "F32", "shape": [30000, 30000],
                                        "data_offsets": [0, 4 * 30000 * 30000]}}).encode()
    (hf / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bytes(64))
    refused_export(tmp_path, hf, "not a readable safetensors file")


# --- item 4: config values of the wrong type, one line naming the key and the value ---------

def _bad_configs(tmp_path: Path) -> dict[str, tuple[Path, tuple[str, ...]]]:
    mlp_sd = {"0.weight": Z(2, 2), "0.bias": Z(2)}
    text = example("textnet.pt")
    gpt = example("gpt.pt")

    def sn(name, arch, cfg, sd, meta=None):
        return sheetnet_pt(tmp_path / f"{name}.pt", arch, cfg, sd, meta)

    def gpt_cfg(name, **change):
        return sn(name, "gpt", {**gpt["config"], **change}, gpt["state_dict"], gpt["metadata"])

    def text_cfg(name, **change):
        return sn(name, "textnet", {**text["config"], **change}, text["state_dict"],
                  text["metadata"])

    def hf(name, **change):
        folder = tmp_path / name
        folder.mkdir()
        cfg = {"model_type": "gpt2", "n_embd": 8, "n_layer": 1, "n_head": 2, "vocab_size": 8,
               "n_positions": 8, **change}
        (folder / "config.json").write_text(json.dumps(cfg))
        save_file({"wte.weight": Z(8, 8)}, str(folder / "model.safetensors"))
        return folder

    def nano(name, state):
        args = {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32, "bias": True,
                "vocab_size": 64}
        torch.save({"model": state, "model_args": args}, tmp_path / f"{name}.pt")
        return tmp_path / f"{name}.pt"

    def mingpt(name, **cfg):
        state = {k: v for k, v in gpt["state_dict"].items()}
        state["lm_head.weight"] = state["transformer.wte.weight"].clone()
        torch.save({"model": state, "config": cfg}, tmp_path / f"{name}.pt")
        return tmp_path / f"{name}.pt"

    return {
        "mlp sizes text": (sn("a", "mlp", {"sizes": "abc"}, mlp_sd), ("sizes", "'abc'")),
        "mlp sizes float": (sn("b", "mlp", {"sizes": [2, 2.5]}, mlp_sd), ("sizes[1]", "2.5")),
        "mlp sizes negative": (sn("c", "mlp", {"sizes": [2, -3]}, mlp_sd), ("sizes[1]", "-3")),
        "mlp sizes bool": (sn("d", "mlp", {"sizes": [True, 2]}, mlp_sd), ("sizes[0]", "True")),
        "mlp sizes None": (sn("e", "mlp", {"sizes": None}, mlp_sd), ("sizes", "None")),
        "mlp layer bias": (sn("h", "mlp", {"layers": [{"type": "linear", "in": 2, "out": 2,
                                                      "bias": "yes"}]}, mlp_sd),
                           ("layer 0", "bias", "'yes'")),
        "textnet hidden text": (text_cfg("j", hidden="x"), ("hidden", "'x'")),
        "textnet embed float": (text_cfg("k", embed=2.0), ("embed", "2.0")),
        "textnet vocab None": (text_cfg("l", vocab_size=None), ("vocab_size", "None")),
        "gpt unknown key types": (sn("p", "gpt", {**gpt["config"], 1: 2, "x": 3},
                                     gpt["state_dict"], gpt["metadata"]), ("unknown keys",)),
        "nanogpt key not a name": (nano("q", {**gpt["state_dict"], 7: Z(2)}), ("key 7",)),
        "hf n_positions negative": (hf("s", n_positions=-1), ("n_positions", "-1")),
        "hf tie text": (hf("t", tie_word_embeddings="no"), ("tie_word_embeddings", "'no'")),
        "hf epsilon None": (hf("u", layer_norm_epsilon=None), ("layer_norm_epsilon", "None")),
        "hf activation list": (hf("v", activation_function=["gelu"]),
                               ("activation_function", "['gelu']")),
        "mingpt model_type list": (mingpt("w", model_type=["gpt2"]), ("n_head",)),
    }


BAD_CONFIGS = ["mlp sizes text", "mlp sizes float", "mlp sizes negative", "mlp sizes bool",
               "mlp sizes None", "mlp layer bias", "textnet hidden text", "textnet embed float",
               "textnet vocab None", "gpt unknown key types", "nanogpt key not a name",
               "hf n_positions negative", "hf tie text", "hf epsilon None", "hf activation list",
               "mingpt model_type list"]


@pytest.mark.parametrize("case", BAD_CONFIGS)
def test_bad_config_value_is_named_in_one_line(tmp_path, case):
    model, words = _bad_configs(tmp_path)[case]
    refused_inline(tmp_path, model, *words)


# --- item 5: weights that do not fit their config name the key and both shapes --------------

def _gpt_misfits(tmp_path: Path) -> dict[str, tuple[Path, tuple[str, ...]]]:
    gpt = example("gpt.pt")
    sd = gpt["state_dict"]

    def sn(name, state, **change):
        return sheetnet_pt(tmp_path / f"{name}.pt", "gpt", {**gpt["config"], **change}, state,
                           gpt["metadata"])
    fewer = {k: v for k, v in sd.items() if k != "transformer.h.1.ln_2.weight"}
    more = {**sd, "transformer.h.0.attn.extra": Z(3)}
    return {
        "shape": (sn("shape", sd, n_embd=24, n_head=2),
                  ("transformer.wte.weight is (64, 32); the config needs (64, 24)",)),
        "block shape": (sn("block", {**sd, "transformer.h.0.attn.c_attn.weight": Z(96, 24)}),
                        ("transformer.h.0.attn.c_attn.weight is (96, 24); the config needs "
                         "(96, 32)",)),
        "missing": (sn("missing", fewer), ("transformer.h.1.ln_2.weight is missing", "(32,)")),
        "unexpected": (sn("extra", more), ("'transformer.h.0.attn.extra'", "not a tensor")),
        "fewer blocks": (sn("layers", sd, n_layer=3), ("transformer.h.2.ln_1.weight is missing",)),
    }


@pytest.mark.parametrize("case", ["shape", "block shape", "missing", "unexpected", "fewer blocks"])
def test_weights_not_fitting_the_config_name_key_and_shapes(tmp_path, case):
    model, words = _gpt_misfits(tmp_path)[case]
    refused_inline(tmp_path, model, "do not fit", *words)


# --- item 7: silent data changes ---------------------------------------------------------------

@pytest.mark.parametrize("dtype, family", [(torch.complex64, "mlp"), (torch.bool, "mlp"),
                                           (torch.complex128, "textnet"),
                                           (torch.complex64, "gpt")])
def test_non_real_weights_are_refused_naming_key_and_dtype(tmp_path, dtype, family):
    name = {"mlp": "sqrt_2x2.pt", "textnet": "textnet.pt", "gpt": "gpt.pt"}[family]
    payload = example(name)
    key = next(iter(payload["state_dict"]))
    payload["state_dict"][key] = payload["state_dict"][key].to(dtype)
    torch.save(payload, tmp_path / "odd.pt")
    refused_inline(tmp_path, tmp_path / "odd.pt", repr(key), str(dtype))


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor")
def test_quantized_weights_are_refused(tmp_path):
    payload = example("sqrt_2x2.pt")
    payload["state_dict"]["0.weight"] = torch.quantize_per_tensor(
        payload["state_dict"]["0.weight"], 0.1, 0, torch.qint8)
    torch.save(payload, tmp_path / "q.pt")
    refused_inline(tmp_path, tmp_path / "q.pt", "'0.weight'", "quantized")


def test_vocabulary_word_longer_than_a_cell_is_refused_with_its_id(tmp_path):
    payload = example("textnet.pt")
    payload["metadata"]["vocab"][3] = "w" * 40_000
    torch.save(payload, tmp_path / "long.pt")
    refused_inline(tmp_path, tmp_path / "long.pt", "vocabulary id 3", "40,000 characters",
                   "32,767")


def test_nanogpt_meta_word_longer_than_a_cell_is_refused(tmp_path):
    gpt = example("gpt.pt")
    cfg = gpt["config"]
    torch.save({"model": gpt["state_dict"],
                "model_args": {k: cfg[k] for k in ("n_layer", "n_head", "n_embd", "block_size",
                                                   "bias", "vocab_size")}},
               tmp_path / "ckpt.pt")
    itos = dict(enumerate(gpt["metadata"]["vocab"]))
    itos[5] = "x" * 40_000
    (tmp_path / "meta.pkl").write_bytes(pickle.dumps({"itos": itos, "vocab_size": len(itos)}))
    refused_inline(tmp_path, tmp_path / "ckpt.pt", "vocabulary id 5", "32,767")


# --- item 8 and the Guide: what was read, said aloud; no placeholder left unfilled -------------

def _guide_texts(book: Path) -> list[str]:
    import openpyxl
    ws = openpyxl.load_workbook(book, read_only=True)["Guide"]
    return [v for row in ws.iter_rows(values_only=True) for v in row if isinstance(v, str)]


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.pt")))
def test_every_example_guide_is_filled(tmp_path, name):
    res = invoke("export", EXAMPLES / name, tmp_path / "out.xlsx", "--context", "4")
    assert res.exit_code == 0, res.output
    texts = _guide_texts(tmp_path / "out.xlsx")
    assert not [t for t in texts if "{" in t or "The model: ." in t or "(not recorded)" in t]
    assert any(t.startswith("The model: ") for t in texts)


def test_guide_shows_the_architecture_lines(tmp_path):
    from sheetnet import layout, loaders
    from sheetnet.capture import capture
    from sheetnet.emit.book import GUIDE, build_book
    from sheetnet.loaders.describe import architecture_lines
    payload = loaders.load(EXAMPLES / "sqrt_2x2.pt")
    graph = capture(payload).graph
    graph.meta["architecture_lines"] = architecture_lines(payload)
    book = build_book(graph, layout.plan(graph))
    guide = next(s for s in book.sheets if s.name == GUIDE)
    texts = [str(value) for (row, col), (value, _) in sorted(guide.cells.items()) if col == 0]
    at = texts.index("The architecture, as sheetnet read it")
    assert [t.strip() for t in texts[at + 1:at + 6]] == [
        "0: Linear 1 -> 2", "1: ReLU", "2: Linear 2 -> 2", "3: ReLU", "4: Linear 2 -> 1"]


def test_meta_pkl_sharing_one_long_word_among_many_ids_is_refused(tmp_path):
    # 2 MB: 200,000 ids all referring to one 30,000-character word, 6 GB of cell text written out
    gpt = example("gpt.pt")
    cfg = {k: gpt["config"][k] for k in ("n_layer", "n_head", "n_embd", "block_size", "bias",
                                         "vocab_size")}
    torch.save({"model": gpt["state_dict"], "model_args": cfg}, tmp_path / "ckpt.pt")
    word = "w" * 30_000
    (tmp_path / "meta.pkl").write_bytes(pickle.dumps({"itos": {i: word for i in range(200_000)}}))
    assert (tmp_path / "meta.pkl").stat().st_size < 10 << 20
    refused_export(tmp_path, tmp_path / "ckpt.pt", "meta.pkl expands to more than")


EMPTY_DICTS = 4_900_000   # one byte of pickle each, ~250 bytes of memory each once unpickled


@pytest.mark.parametrize("where", ["torch file", "meta.pkl"])
def test_pickle_of_millions_of_empty_dicts_is_refused(tmp_path, where):
    # a 5 MB pickle: protocol 2, a list, MARK, 4.9M EMPTY_DICT, APPENDS, STOP; 1.2 GB before
    bomb = b"\x80\x02](" + b"}" * EMPTY_DICTS + b"e."
    if where == "torch file":
        model = _torch_zip(tmp_path / "dicts.pt", bomb)
    else:
        gpt = example("gpt.pt")
        cfg = {k: gpt["config"][k] for k in ("n_layer", "n_head", "n_embd", "block_size", "bias",
                                             "vocab_size")}
        model = tmp_path / "ckpt.pt"
        torch.save({"model": gpt["state_dict"], "model_args": cfg}, model)
        (tmp_path / "meta.pkl").write_bytes(bomb)
    refused_export(tmp_path, model, "more than 2,000,000 objects")


def test_meta_tensor_without_values_is_refused(tmp_path):
    payload = example("sqrt_2x2.pt")
    payload["state_dict"]["0.weight"] = torch.zeros(2, 1, device="meta")
    torch.save(payload, tmp_path / "meta.pt")
    refused_inline(tmp_path, tmp_path / "meta.pt", "(2, 1) meta tensor")


@pytest.mark.parametrize("weight_map, words", [
    ({"wte.weight": "model.safetensors.index.json"}, ("'model.safetensors.index.json'",)),
    ([["wte.weight", "model.safetensors"]], ("no weight_map",)),
    ({"wte.weight": ["model.safetensors"]}, ("shard", "['model.safetensors']")),
])
def test_sharded_index_naming_no_weight_file_is_refused(tmp_path, weight_map, words):
    # an index naming itself recursed until Python's stack ran out; a list was a TypeError
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": 8, "n_layer": 1,
                                                "n_head": 2, "vocab_size": 8, "n_positions": 8}))
    (hf / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    refused_inline(tmp_path, hf, *words)
