"""The text net's Walk sheet (issue 19): the seed's printout for the chosen word, each line a live
cell, recalculated in LibreOffice and compared with PyTorch in float64 for every word."""
import numpy as np
import pytest
import torch

from sheetnet.loaders import load_checkpoint
from sheetnet.manifest import read_manifest
from sheetnet.models.textnet import TextNet
from sheetnet.options import ExportOptions
from sheetnet.pipeline import export
from sheetnet.runner import input_edits
from sheetnet.verifier import numeric, read_nodes

TOL = 1e-12


@pytest.fixture(scope="module", params=["textnet.pt", "textnet_wide.pt"])
def book(request, examples, tmp_path_factory):
    out = tmp_path_factory.mktemp("walk") / "text.xlsx"
    export(examples / request.param, out, ExportOptions())
    payload = load_checkpoint(examples / request.param)
    return out, TextNet.from_checkpoint(payload).double(), payload["metadata"]["vocab"]


def _torch_walk(model, index: int) -> dict:
    # the seed's printout in PyTorch: embedding, each layer's z and a, logits, exp, softmax
    with torch.no_grad():
        x = model.embed(torch.tensor([index]))[0]
        lines = {"walk.embedding": x}
        for k, layer in enumerate(model.layers, start=1):
            z = layer(x)
            x = torch.relu(z)
            lines[f"walk.L{k}.z"], lines[f"walk.L{k}.a"] = z, x
        logits = model.out(x)
        lines.update({"walk.out.z": logits, "walk.exp": torch.exp(logits - logits.max()),
                      "walk.probs": torch.softmax(logits, dim=-1)})
    return {k: v.numpy()[:, None] for k, v in lines.items()}


def test_walk_lines_are_torch_for_every_word(engine, book):
    out, model, vocab = book
    manifest = read_manifest(out)
    names = ["walk.word", "walk.id", "walk.embedding", "walk.out.z", "walk.exp", "walk.probs",
             "walk.next"] + [f"walk.L{k}.{v}" for k in range(1, len(model.layers) + 1)
                             for v in "za"]
    for index, word in enumerate(vocab):
        got = read_nodes(engine, out, manifest, names,
                         edits=input_edits(manifest, "word", [word]))
        want = _torch_walk(model, index)
        for name, value in want.items():  # one column each, as the weights' rows multiply it
            assert got[name].shape == value.shape, name
            np.testing.assert_allclose(numeric(got[name]), value, atol=TOL, rtol=TOL, err_msg=name)
        assert got["walk.word"][0, 0] == word and numeric(got["walk.id"])[0, 0] == index
        assert got["walk.next"][0, 0] == vocab[int(want["walk.out.z"].argmax())]


def test_walk_reads_top_to_bottom_in_the_seeds_order(book):
    out, model, _ = book
    nodes = read_manifest(out).nodes
    order = ["walk.word", "walk.embedding"] + [f"walk.L{k}.{v}" for k in
                                               range(1, len(model.layers) + 1) for v in "za"] + \
        ["walk.out.z", "walk.max", "walk.shifted", "walk.exp", "walk.sum", "walk.probs",
         "walk.next"]
    rows = [nodes[n].row for n in order]
    assert all(nodes[n].sheet == "Walk" for n in order) and rows == sorted(rows)
    # z beside the weights it comes from: W's row n and z's row n are the same sheet row
    for k in range(1, len(model.layers) + 1):
        assert nodes[f"walk.L{k}.W"].row == nodes[f"walk.L{k}.z"].row
