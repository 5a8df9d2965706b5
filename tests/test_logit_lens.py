"""The Logit lens sheet: recalculated in LibreOffice, each layer's top token and its probability
equal NumPy float64 reading PyTorch's own residual streams through ln_f and the tied head; the
sheet is on by default only while it stays small, and --lens / --no-lens decide otherwise."""
import numpy as np
import pytest
import torch

from foreign import CHARS, random_gpt
from sheetnet.capture import logit_lens
from sheetnet.capture.gpt import capture_gpt
from sheetnet.capture.gpt_body import char_label
from sheetnet.capture.gpt_tokens import capture_gpt_tokens
from sheetnet.ir.reference import evaluate
from sheetnet.loaders import load_checkpoint
from sheetnet.manifest import read_manifest
from sheetnet.models.gpt import GPT
from sheetnet.options import ExportOptions
from sheetnet.pipeline import export
from sheetnet.verifier import numeric, read_nodes, verify

STYLES = ["cells", "arrays"]


def numpy_lens(model: GPT, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Top ids and probabilities (T, layers + 1), in NumPy from PyTorch's residual streams."""
    model = model.double()
    trace: dict = {}
    with torch.no_grad():
        model(torch.tensor([ids]), trace=trace)
    ln = model.transformer.ln_f
    gain = ln.weight.detach().numpy()
    bias = 0 if ln.bias is None else ln.bias.detach().numpy()
    head = model.lm_head.weight.detach().numpy()                     # (V, C)
    tops, probs = [], []
    for name in ["x0"] + [f"h{i}.res2" for i in range(model.config.n_layer)]:
        x = trace[name]                                               # (T, C)
        z = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + ln.eps)
        logits = (z * gain + bias) @ head.T                           # (T, V)
        e = np.exp(logits - logits.max(1, keepdims=True))
        p = e / e.sum(1, keepdims=True)
        tops.append(p.argmax(1))
        probs.append(p.max(1))
    return np.stack(tops, 1), np.stack(probs, 1)


@pytest.mark.parametrize("style", STYLES)
def test_lens_in_libreoffice_equals_numpy(engine, examples, tmp_path, style):
    book = tmp_path / "gpt.xlsx"
    export(examples / "gpt.pt", book, ExportOptions(style=style, prompt="The cell "))
    manifest = read_manifest(book)
    cells = read_nodes(engine, book, manifest, ["gen.id", "lens.top", "lens.prob"])
    ids = [int(i) for i in numeric(cells["gen.id"])[:, 0]]
    payload = load_checkpoint(examples / "gpt.pt")
    vocab = payload["metadata"]["vocab"]
    tops, probs = numpy_lens(GPT.from_checkpoint(payload), ids)
    assert np.abs(numeric(cells["lens.prob"]) - probs).max() < 1e-12
    # the sheet names each top id by its vocabulary label ('␣' for a space): as NumPy's argmax
    shown = np.asarray(cells["lens.top"], dtype=object)
    assert [[char_label(vocab[i]) for i in row] for row in tops] == shown.tolist()
    # the last layer's lens is the model's own prediction: its top p is the Output's softmax max
    report = verify(book, examples / "gpt.pt", engine=engine)
    assert report.ok, report.table()
    lens_rows = {r.name: r for r in report.rows if r.name.startswith("lens")}
    assert {"lens.prob", "lens0.logits", "lens2.logits", "lens1.id"} <= set(lens_rows)
    assert lens_rows["lens.prob"].against == "torch"


@pytest.mark.parametrize("vocab,layers,t,asked,on", [
    (64, 2, 32, None, True),            # the example: 6,144 lens cells
    (50257, 12, 64, None, False),       # GPT-2 small: 41.8 million
    (50257, 12, 64, True, True),        # asked for: on whatever it costs
    (64, 2, 32, False, False),          # --no-lens
    (1000, 3, 50, None, True),          # 200,000: at the budget
    (1000, 3, 51, None, False),         # just past it
])
def test_lens_on_by_default_only_under_the_budget(vocab, layers, t, asked, on):
    assert logit_lens.wanted(asked, vocab, layers, t) is on


@pytest.mark.parametrize("lens", [None, True, False])
def test_lens_option_builds_or_drops_the_sheet(lens):
    model = random_gpt()
    graph = capture_gpt(model, list(CHARS), "ab", lens=lens)
    assert ("Logit lens" in graph.sheets) is (lens is not False)
    assert graph.meta["capture_options"].get("lens") is lens  # verify rebuilds the same book


def test_lens_of_token_ids_without_vocabulary_shows_ids():
    # no vocabulary: the table holds ids; the reference interpreter equals NumPy's lens
    model = random_gpt(seed=3)
    graph = capture_gpt_tokens(model, [1, 2, 3], None, lens=True)
    leaves = {n: _float64(node.op.value) for n, node in graph.nodes.items()
              if hasattr(node.op, "value")}
    values = evaluate(graph, leaves)
    ids = [int(i) for i in values["gen.id"][:, 0]]
    tops, probs = numpy_lens(model, ids)
    assert np.array_equal(values["lens.top"].astype(float), tops)
    assert np.abs(values["lens.prob"] - probs).max() < 1e-12


def _float64(value):
    # the float32 weights as float64 (the workbook's numbers), text cells as they are
    value = np.asarray(value)
    return value.astype(np.float64) if value.dtype.kind == "f" else value
