"""Training workbooks end to end: export --train, LibreOffice recalculates, and every loss,
gradient, optimizer state and updated weight at every step equals torch.autograd + torch.optim
in float64 (verify); run reports the loss per step; an edited data cell or rate moves them all."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import sheetnet
from sheetnet.capture.train_data import TrainOptions
from sheetnet.capture.train_torch import trace_training
from sheetnet.errors import SheetnetError
from sheetnet.manifest import read_manifest
from sheetnet.options import ExportOptions
from sheetnet.pipeline import export, lower
from sheetnet.capture.train import rebuild_training
from sheetnet.runner import run
from sheetnet.verifier import _leaf_values, read_nodes, verify


def sqrt_csv(path, n=9):
    xs = np.linspace(0.0, 10.0, n)
    path.write_text("x,y\n" + "".join(f"{float(x)!r},{float(np.sqrt(x))!r}\n" for x in xs))
    return path


def losses(book) -> list[float]:
    return [float(v) for v in run(book)["loss"]]


# (model, optimizer, batch, steps, style): each family, each optimizer, whole and minibatches,
# one formula per cell and array formulas
CASES = [
    ("sqrt_net.pt", "sgd", None, 3, "cells"),
    ("sqrt_2x2.pt", "momentum", 4, 4, "cells"),
    ("sqrt_net.pt", "adam", 5, 3, "arrays"),
    ("textnet.pt", "adam", None, 3, "cells"),
    ("textnet.pt", "momentum", 2, 3, "arrays"),
]


@pytest.mark.parametrize("model, optimizer, batch, steps, style", CASES)
def test_every_step_matches_torch(engine, examples, tmp_path, model, optimizer, batch, steps,
                                  style):
    data = (examples / "textnet_pairs.txt" if model.startswith("textnet")
            else sqrt_csv(tmp_path / "d.csv"))
    book = tmp_path / "learn.xlsx"
    options = TrainOptions(data=str(data), steps=steps, optimizer=optimizer, batch=batch,
                           lr=0.05)
    export(examples / model, book, ExportOptions(style=style), train=options)
    report = verify(book, examples / model, engine=engine)
    assert report.ok, report.table()
    refs = {r.name for r in report.rows if r.against == "torch"}
    kinds = {"buf": optimizer == "momentum", "m": optimizer == "adam", "v": optimizer == "adam"}
    for k in range(1, steps + 1):  # every step's loss, gradients, state and new weights
        assert f"s{k}.loss" in refs
        assert any(n.startswith(f"s{k}.grad.") for n in refs)
        assert any(n.startswith(f"s{k}.new.") for n in refs)
        for kind, present in kinds.items():
            assert any(n.startswith(f"s{k}.{kind}.") for n in refs) == present
    got = run(book, engine=engine)["loss"]
    assert isinstance(got, list) and len(got) == steps


def test_a_wrong_gradient_is_caught(engine, examples, tmp_path):
    # verify must fail when a gradient cell is off: edit one and compare
    book = tmp_path / "learn.xlsx"
    export(examples / "sqrt_2x2.pt", book, ExportOptions(),
           train=TrainOptions(data=str(sqrt_csv(tmp_path / "d.csv")), steps=2))
    manifest = read_manifest(book)
    entry = manifest.nodes["s1.grad.L1.W"]
    names = [n for n, e in manifest.nodes.items() if e.op != "View"]
    cells = read_nodes(engine, book, manifest, names,
                       edits=[(entry.sheet, entry.row, entry.col, 123.0)])
    assert cells["s1.grad.L1.W"][0, 0] == 123.0
    torch_values = _torch_of(examples / "sqrt_2x2.pt", manifest, cells)
    assert abs(cells["s1.new.L1.W"][0, 0] - torch_values["s1.new.L1.W"][0, 0]) > 1e-3


def _torch_of(model, manifest, cells):
    captured = rebuild_training(lower(model, ExportOptions()), manifest.info["training"])
    leaves = {n: _leaf_values(cells[n]) for n, e in manifest.nodes.items()
              if e.kind in ("input", "const")}
    return trace_training(captured.model, captured.graph, leaves)


@pytest.mark.parametrize("model", ["sqrt_net.pt", "textnet.pt"])
def test_edited_data_and_rate_move_every_step(engine, examples, tmp_path, model):
    text = model.startswith("textnet")
    data = examples / "textnet_pairs.txt" if text else sqrt_csv(tmp_path / "d.csv")
    book = tmp_path / "learn.xlsx"
    export(examples / model, book, ExportOptions(),
           train=TrainOptions(data=str(data), steps=3, optimizer="momentum"))
    manifest = read_manifest(book)
    x, lr = manifest.nodes["data.x"], manifest.nodes["train.lr"]
    edits = [(x.sheet, x.row + 1, x.col, "cat" if text else 7.5), (lr.sheet, lr.row, lr.col, 0.2)]
    names = [n for n, e in manifest.nodes.items() if e.op != "View"]
    before = read_nodes(engine, book, manifest, names)
    after = read_nodes(engine, book, manifest, names, edits=edits)
    want = _torch_of(examples / model, manifest, after)
    refs = {n: e.ref for n, e in manifest.nodes.items() if e.ref}
    for name, ref in refs.items():  # the recalculated cells follow the edits, as torch does
        got = np.asarray(after[name], dtype=np.float64)
        np.testing.assert_allclose(got, want[ref].reshape(got.shape), rtol=0, atol=1e-9,
                                   err_msg=name)
    assert after["s3.loss"][0, 0] != before["s3.loss"][0, 0]
    assert not np.array_equal(after["s1.grad.L1.W"], before["s1.grad.L1.W"])


ACTS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU,
        "gelu_tanh": lambda: nn.GELU(approximate="tanh"), "leaky_relu": nn.LeakyReLU,
        "silu": nn.SiLU, "elu": nn.ELU, "softplus": nn.Softplus}


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(widths=st.lists(st.integers(1, 5), min_size=2, max_size=4),
       acts=st.lists(st.sampled_from(sorted(ACTS)), min_size=3, max_size=3),
       rows=st.integers(1, 5), optimizer=st.sampled_from(["sgd", "momentum", "adam"]),
       seed=st.integers(0, 2 ** 16))
def test_random_sequential_mlps_train_as_torch(engine, tmp_path_factory, widths, acts, rows,
                                               optimizer, seed):
    torch.manual_seed(seed)
    layers = []
    for k, (i, o) in enumerate(zip(widths, widths[1:])):
        layers.append(nn.Linear(i, o))
        if k < len(widths) - 2:
            layers.append(ACTS[acts[k]]())
    model = nn.Sequential(*layers)
    tmp = tmp_path_factory.mktemp("mlp")
    data = np.random.default_rng(seed).normal(size=(rows, widths[0] + widths[-1]))
    header = [f"x{i + 1}" for i in range(widths[0])] + [f"y{i + 1}" for i in range(widths[-1])]
    (tmp / "d.csv").write_text(",".join(header) + "\n" + "".join(
        ",".join(repr(float(v)) for v in r) + "\n" for r in data))
    export(model, tmp / "m.xlsx", ExportOptions(),
           train=TrainOptions(data=str(tmp / "d.csv"), steps=2, optimizer=optimizer, lr=0.1))
    report = verify(tmp / "m.xlsx", model, engine=engine)
    assert report.ok, report.table()


class _EmbedNorm(nn.Module):
    """Embedding -> LayerNorm -> Linear -> GELU -> Linear: the front end's layers."""

    def __init__(self):
        super().__init__()
        self.emb, self.ln = nn.Embedding(5, 4), nn.LayerNorm(4)
        self.l1, self.l2 = nn.Linear(4, 3), nn.Linear(3, 2)

    def forward(self, ids):
        return self.l2(nn.functional.gelu(self.l1(self.ln(self.emb(ids)))))


def test_front_end_embedding_layer_norm_gelu(engine, tmp_path):
    torch.manual_seed(0)
    model, ids = _EmbedNorm(), torch.tensor([1, 3])
    rng = np.random.default_rng(1)
    (tmp_path / "d.csv").write_text("id,y1,y2\n" + "".join(
        f"{i % 5},{rng.normal()!r},{rng.normal()!r}\n" for i in range(7)))
    sheetnet.export(model, tmp_path / "m.xlsx", (ids,), train={  # the Python API's way
        "data": str(tmp_path / "d.csv"), "steps": 3, "optimizer": "adam", "lr": 0.05, "batch": 3})
    report = verify(tmp_path / "m.xlsx", model, example_inputs=(ids,), engine=engine)
    assert report.ok, report.table()
    grads = {r.name for r in report.rows if r.name.startswith("s3.grad.")}
    assert grads == {f"s3.grad.{n}" for n in ("emb.weight", "ln.weight", "ln.bias", "l1.weight",
                                              "l1.bias", "l2.weight", "l2.bias")}


def test_workbooks_without_train_have_no_training(examples, tmp_path):
    export(examples / "sqrt_net.pt", tmp_path / "plain.xlsx", ExportOptions())
    assert "training" not in read_manifest(tmp_path / "plain.xlsx").info


@pytest.mark.parametrize("optimizer, lr, eps, scale", [
    ("sgd", 0.05, 1e-8, 1.0), ("momentum", 5.0, 1e-8, 1.0), ("adam", 0.05, 1e-8, 5.0),
    ("adam", 0.001, 1e-8, 1.0), ("adam", 0.1, 1e-10, 1000.0)])
def test_verify_widens_only_for_adam(optimizer, lr, eps, scale):
    from sheetnet.capture.train import tolerance_scale
    graph = type("G", (), {"meta": {"training": {"optimizer": optimizer}}})()
    got = tolerance_scale(graph, {"train.lr": np.array([[lr]]), "train.eps": np.array([[eps]])})
    assert got == pytest.approx(scale)


def test_a_typed_word_outside_the_vocabulary_is_named(engine, examples, tmp_path):
    (tmp_path / "p.txt").write_text("hello world\ncat dog\n")
    book = tmp_path / "learn.xlsx"
    export(examples / "textnet.pt", book, ExportOptions(),
           train=TrainOptions(data=str(tmp_path / "p.txt"), steps=2))
    entry = read_manifest(book).nodes["data.y"]
    with pytest.raises(SheetnetError, match="not in the vocabulary: 'zebra'"):
        run(book, engine=engine, edits=[(entry.sheet, entry.row + 1, entry.col, "zebra")])


def test_the_api_refuses_an_unknown_train_option(tmp_path):
    with pytest.raises(SheetnetError, match="train takes no option 'epochs'"):
        sheetnet.export(nn.Sequential(nn.Linear(1, 1)), tmp_path / "m.xlsx",
                        train={"data": "d.csv", "epochs": 3})
    assert not (tmp_path / "m.xlsx").exists()
