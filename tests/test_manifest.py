"""The typed manifest: one builder, its JSON form (version 1), every reader given a Manifest."""
from __future__ import annotations

import contextlib
import json

import pytest

from sheetnet import importer, inspect, layout, loaders, runner, verifier
from sheetnet.capture import capture
from sheetnet.engines import Block
from sheetnet.errors import SheetnetError
from sheetnet.ir import graph as ir
from sheetnet.pipeline import export, load_spec
from sheetnet.manifest import VERSION, LoadSpec, Manifest, NodeEntry, RunSpec, build, read_manifest
from sheetnet.options import ExportOptions
from sheetnet.record import checkpoint_record

# example, export options, a node, its (kind, op, source), the input run fills first
CASES = [
    ("sqrt_2x2", {}, "L1.W", ("weight", "Param", "0.weight"), None),
    ("textnet", {}, "embed.W", ("weight", "Param", "embed.weight"), "word"),
    ("gpt", {"tokens": [1, 2, 3], "context": 4}, "prompt", ("input", "Input", None), "prompt"),
]


def built(examples, name: str, opts: dict, precision: str = "float64"):
    """(graph, plan, manifest) of an example, as export builds them."""
    options = ExportOptions(**opts)
    payload = loaders.load(examples / f"{name}.pt")
    graph = capture(payload, options).graph
    plan = layout.plan(graph)
    manifest = build(graph, plan, load=load_spec(payload, options), precision=precision,
                     checkpoint=checkpoint_record(payload, graph))
    return graph, plan, manifest


@pytest.mark.parametrize("name, opts, node, want, first", CASES)
def test_build_round_trips_through_json(examples, name, opts, node, want, first):
    graph, plan, m = built(examples, name, opts, precision="float32")
    assert Manifest.from_json(json.loads(json.dumps(m.to_json())), "x.xlsx") == m
    # every node, where the plan put it
    assert list(m.nodes) == list(graph.nodes)
    e, region = m.nodes[node], plan.regions[node]
    assert (e.sheet, e.row, e.col, e.shape) == (region.sheet, region.row, region.col,
                                                tuple(region.shape))
    assert (e.kind, e.op, e.source) == want
    assert m.inputs == tuple(n.name for n in graph.inputs) and m.run.input == first
    assert (m.precision, m.load.fmt, m.checkpoint.format) == ("float32", "sheetnet", "sheetnet")


def test_the_json_form_is_version_1s(examples):
    j = built(examples, "sqrt_2x2", {})[2].to_json()
    assert list(j) == ["version", "meta", "nodes", "inputs", "outputs", "precision"]
    assert (j["version"], j["inputs"], j["outputs"], j["precision"]) == (1, ["x"], ["y"], "float64")
    # a field at its default is not written
    assert j["nodes"]["x"] == {"sheet": "Input", "row": 4, "col": 1, "shape": [1, 1],
                               "kind": "input", "op": "Input"}
    assert j["nodes"]["L1.W"] == {"sheet": "Layer 1", "row": 4, "col": 1, "shape": [2, 1],
                                  "kind": "weight", "op": "Param", "source": "0.weight",
                                  "transposed": False}
    assert j["meta"]["load"] == {"fmt": "sheetnet"} and "run" not in j["meta"]
    assert j["meta"]["checkpoint"]["tensors"][1] == {"key": "0.bias", "shape": [2],
                                                     "dtype": "float32"}
    assert j["meta"]["architecture"] == "sqrt" and j["meta"]["task"]   # the capture's meta kept


# an edit to a written manifest's JSON (an older or newer sheetnet's), and what reading says
OTHER_WRITERS = [
    (lambda j: j.pop("precision"), lambda m: m.precision == "float64"),
    (lambda j: j["meta"].pop("checkpoint"), lambda m: m.checkpoint is None),
    (lambda j: j["meta"].pop("load"), lambda m: m.load == LoadSpec()),
    (lambda j: j["meta"].update(run={"input": "x", "errors": None}),
     lambda m: m.run == RunSpec(input="x")),
    (lambda j: j["nodes"]["x"].update(colour="a newer writer's key"),
     lambda m: m.nodes["x"] == NodeEntry("Input", 4, 1, (1, 1), "input", "Input")),
]


@pytest.mark.parametrize("change, says", OTHER_WRITERS)
def test_other_writers_manifests_read(examples, change, says):
    j = built(examples, "sqrt_2x2", {})[2].to_json()
    change(j)
    assert says(Manifest.from_json(j, "x.xlsx"))


@pytest.mark.parametrize("version", [0, 2])
def test_another_version_is_refused_by_name(examples, version):
    j = {**built(examples, "sqrt_2x2", {})[2].to_json(), "version": version}
    with pytest.raises(SheetnetError, match=rf"^x.xlsx: manifest version {version} is not one "
                                            rf"this sheetnet reads \({VERSION}\)"):
        Manifest.from_json(j, "x.xlsx")


def test_from_json_checks_before_typing():
    with pytest.raises(SheetnetError, match=r"tampered manifest: nodes\['a'\].row is \"1\", "
                                            "not a whole number"):
        Manifest.from_json({"version": 1, "meta": {}, "inputs": ["a"], "outputs": ["a"],
                            "nodes": {"a": {"sheet": "S", "row": "1", "col": 0, "shape": [1, 1],
                                            "kind": "input", "op": "Input"}}}, "x.xlsx")


@pytest.mark.parametrize("name, opts, node, want, first", CASES)
def test_a_written_manifest_reads_as_the_built_one(examples, tmp_path, name, opts, node, want,
                                                   first):
    book = tmp_path / f"{name}.xlsx"
    res = export(examples / f"{name}.pt", book, ExportOptions(**opts))
    m = read_manifest(book)
    _, _, again = built(examples, name, opts, res.precision)
    assert m.nodes == again.nodes and m.run == again.run and m.checkpoint == again.checkpoint
    assert m.info["model_file"] == f"{name}.pt"   # export's own meta besides the capture's


class _Stop(Exception):
    pass


class _NoEngine:
    """Records the blocks a reader asks for, then stops it (no spreadsheet engine needed)."""
    def __init__(self):
        self.blocks = []

    def recalculate(self, book, blocks, edits=(), check_errors=True):
        self.blocks += blocks
        raise _Stop


# each reader of a workbook, called on the sqrt example's
READERS = {
    "run": (runner, lambda book, model, out, eng: runner.run(book, engine=eng)),
    "verify": (verifier, lambda book, model, out, eng: verifier.verify(book, model, engine=eng)),
    "import": (importer, lambda book, model, out, eng: importer.import_book(book, out)),
    "inspect": (inspect, lambda book, model, out, eng: inspect.inspect(book)),
}


@pytest.mark.parametrize("reader", READERS)
def test_every_reader_reads_a_Manifest(examples, tmp_path, monkeypatch, reader):
    module, call = READERS[reader]
    book = tmp_path / "s.xlsx"
    export(examples / "sqrt_2x2.pt", book)
    seen = []
    monkeypatch.setattr(module, "read_manifest", lambda path: seen.append(read_manifest(path))
                        or seen[-1])
    engine = _NoEngine()
    with contextlib.suppress(_Stop):
        call(book, examples / "sqrt_2x2.pt", tmp_path / "back.pt", engine)
    assert len(seen) == 1 and isinstance(seen[0], Manifest)
    x = seen[0].nodes["x"]
    if reader in ("run", "verify"):   # the engine is asked for the cells the manifest names
        assert Block(x.sheet, x.row, x.col, 1, 1) in engine.blocks


def test_input_bounds_round_trip_and_keep_their_keys(examples):
    # the text net's inputs: T > 0 written as before ("above" alone, as old manifests hold it),
    # the Generate sheet's T >= 0, top-k whole >= 0, seed whole 1 .. 2147483646
    m = built(examples, "textnet", {})[2]
    j = m.to_json()
    bounds = {name: {k: v for k, v in j["nodes"][name].items()
                     if k in ("above", "at_least", "at_most", "whole")}
              for name in ("temperature", "gen.temperature", "gen.top_k", "gen.seed", "word")}
    assert bounds == {"temperature": {"above": 0.0}, "gen.temperature": {"at_least": 0.0},
                      "gen.top_k": {"at_least": 0.0, "whole": True},
                      "gen.seed": {"at_least": 1.0, "at_most": 2147483646.0, "whole": True},
                      "word": {}}
    back = Manifest.from_json(json.loads(json.dumps(j)), "x.xlsx")
    assert back == m
    assert [back.nodes[n].bound for n in bounds] == [
        ir.Bound(0.0), ir.Bound(0.0, low_inclusive=True),
        ir.Bound(0.0, low_inclusive=True, whole=True),
        ir.Bound(1.0, 2147483646.0, low_inclusive=True, whole=True), None]


def test_an_old_manifests_above_reads_as_its_bound():
    e = Manifest.from_json({"version": 1, "meta": {}, "inputs": ["t"], "outputs": ["t"],
                            "nodes": {"t": {"sheet": "S", "row": 0, "col": 0, "shape": [1, 1],
                                            "kind": "input", "op": "Input", "above": 0}}},
                           "x.xlsx").nodes["t"]
    assert e.bound == ir.Bound(0) and not e.bound.admits(0) and e.bound.admits(0.5)


@pytest.mark.parametrize("bound, says", [
    ({"at_least": "0"}, r"nodes\['t'\].at_least is \"0\", not a number"),
    ({"at_most": None, "whole": 1, "above": 0}, r"nodes\['t'\].whole is 1, not true or false"),
    ({"above": 0, "at_least": 1}, r"nodes\['t'\] holds both above and at_least"),
    ({"above": 0, "at_most": 1}, r"nodes\['t'\] holds both above and at_most"),
    ({"at_least": 2, "at_most": 1}, r"nodes\['t'\] bounds its input from 2 to 1, which admits"),
    ({"whole": True}, r"nodes\['t'\].whole is true with no bound"),
])
def test_a_tampered_bound_is_refused_by_name(bound, says):
    with pytest.raises(SheetnetError, match=r"^x.xlsx: tampered manifest: " + says):
        Manifest.from_json({"version": 1, "meta": {}, "inputs": ["t"], "outputs": ["t"],
                            "nodes": {"t": {"sheet": "S", "row": 0, "col": 0, "shape": [1, 1],
                                            "kind": "input", "op": "Input", **bound}}}, "x.xlsx")
