"""The example GPT end to end: export -> LibreOffice recalculation -> every intermediate against
PyTorch float64, for both styles; prompts typed into the sheet; a weight edited in the sheet."""
import numpy as np
import openpyxl
import pytest
import torch

from foreign import CHARS, random_gpt
from sheetnet.checkpoint import save_checkpoint
from sheetnet.loaders import load_checkpoint
from sheetnet.emit.a1 import cell_name
from sheetnet.engines import Block
from sheetnet.errors import SheetnetError
from sheetnet.pipeline import export
from sheetnet.models.gpt import GPT
from sheetnet.options import ExportOptions
from sheetnet.runner import input_edits, run, run_many
from sheetnet.verifier import numeric, read_nodes, verify
from sheetnet.manifest import read_manifest

STYLES = ["cells", "arrays"]
FULL = "In the small town of Millbrook t"  # exactly the context: 32 characters
LONG = "Nobody remembered who had made it. It had"


@pytest.fixture(scope="module")
def example(examples):
    payload = load_checkpoint(examples / "gpt.pt")
    return examples / "gpt.pt", payload, payload["metadata"]["vocab"]


@pytest.fixture(scope="module")
def books(example, tmp_path_factory):
    """The example exported once per style, prompt "The cell"."""
    out = {}
    for style in STYLES:
        out[style] = tmp_path_factory.mktemp(style) / "gpt.xlsx"
        export(example[0], out[style], ExportOptions(style=style, prompt="The cell"))
    return out


def torch_logits(payload: dict, ids: list[int]) -> np.ndarray:
    model = GPT.from_checkpoint(payload).double()
    with torch.no_grad():
        return model(torch.tensor([ids]))[0].numpy()


@pytest.mark.parametrize("style", STYLES)
def test_every_intermediate_matches_torch(engine, example, books, style):
    report = verify(books[style], example[0], engine=engine)
    assert report.ok, report.table()
    names = {r.name for r in report.rows}
    assert {"tokens.id", "tok_emb", "x0", "h0.ln_1.mean", "h0.ln_1.var", "h0.ln_1", "h0.attn.q0",
            "h0.attn.k1", "h0.attn.v0", "h0.attn.scores0", "h0.attn.probs1", "h0.attn.y",
            "h0.attn.out", "h0.res1", "h0.mlp.fc", "h0.mlp.gelu", "h1.res2", "ln_f", "logits",
            "next.probs", "next.char", "wte"} <= names
    assert sum(r.against == "torch" for r in report.rows) >= 2 * 27 + 12
    assert report.max_abs_err <= 1e-9


@pytest.mark.parametrize("style", STYLES)
def test_typed_prompts_give_torchs_logits_for_the_prompt_alone(engine, example, books, style):
    _, payload, vocab = example
    stoi = {c: i for i, c in enumerate(vocab)}
    seen = {}
    prompts = ["T", FULL, "The Cell", "the cell"]
    outs = run_many(books[style], [{"prompt": p} for p in prompts], engine=engine)  # one load
    for prompt, out in zip(prompts, outs, strict=True):
        ids = [stoi[c] for c in prompt]
        assert out["tokens"] == ids
        expected = torch_logits(payload, ids)  # the prompt alone: no pads
        got = np.array(out["outputs"])
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= 1e-9
        assert out["next_token"] == vocab[int(expected[-1].argmax())]
        seen[prompt] = ids
    assert seen["The Cell"] != seen["the cell"]  # case is exact: 'T' and 't' are different ids


def test_a_longer_prompt_is_read_from_its_last_characters(engine, example, books):
    _, payload, vocab = example
    out = run(books["cells"], engine=engine, prompt=LONG)
    ids = [vocab.index(c) for c in LONG[-32:]]
    assert out["tokens"] == ids
    assert out["note"] == (f"the prompt has {len(LONG)} characters; the context holds 32: "
                           "the sheet reads the last 32")
    assert np.abs(np.array(out["outputs"]) - torch_logits(payload, ids)).max() <= 1e-9


def test_an_unknown_character_is_named_in_the_sheet_and_by_run_and_verify(engine, example, books,
                                                                          tmp_path):
    with pytest.raises(SheetnetError, match=r"^not in vocab: 'Ω'$"):
        run(books["cells"], engine=engine, prompt="HeΩlo")
    entry = read_manifest(books["cells"]).nodes["tokens.id"]
    ids, = engine.recalculate(books["cells"], [Block(entry.sheet, entry.row, entry.col, 5, 1)],
                              edits=[(entry.sheet, 4, 1, "HeΩlo")], check_errors=False)
    assert ids[2, 0] == "not in vocab: 'Ω'" and ids[1, 0] == 43.0
    book = tmp_path / "omega.xlsx"
    export(example[0], book, ExportOptions(prompt="HeΩlo", context=8))
    with pytest.raises(SheetnetError, match="not in vocab: 'Ω'"):
        verify(book, example[0], engine=engine)


@pytest.mark.parametrize("style", STYLES)
def test_editing_a_weight_on_a_block_sheet_moves_the_logits_like_torch(engine, example, books,
                                                                       style, tmp_path):
    path, payload, vocab = example
    entry = read_manifest(books[style]).nodes["h0.mlp.c_fc.W"]
    i, j, new = 5, 3, 0.75  # hidden neuron 5 of block 1, its weight from feature 3
    wb = openpyxl.load_workbook(books[style])
    wb[entry.sheet][cell_name(entry.row + i, entry.col + j)] = new
    edited = tmp_path / "edited.xlsx"
    wb.save(edited)
    ids = [vocab.index(c) for c in "The cell"]
    before = torch_logits(payload, ids)
    payload = {**payload, "state_dict": dict(payload["state_dict"])}
    weight = payload["state_dict"]["transformer.h.0.mlp.c_fc.weight"].clone()
    weight[i, j] = new
    payload["state_dict"]["transformer.h.0.mlp.c_fc.weight"] = weight
    expected = torch_logits(payload, ids)
    got = np.array(run(edited, engine=engine)["outputs"])
    assert np.abs(got - expected).max() <= 1e-9
    assert np.abs(got - before).max() > 1e-6  # the edit really moved the logits


def test_temperature_and_top_five(engine, example, books):
    _, payload, vocab = example
    ids = [vocab.index(c) for c in "The cell"]
    last = torch.tensor(torch_logits(payload, ids)[-1])
    out = run(books["arrays"], engine=engine, temperature=0.5)
    top = torch.topk(torch.softmax(last / 0.5, dim=-1), 5)
    assert np.abs(np.array(out["top_probs"]) - top.values.numpy()).max() <= 1e-9
    assert out["top_ids"] == [float(i) for i in top.indices]
    # the next character is drawn at T = 0.5 by the rule (seed 1: u_1 = 48271 / (2^31 - 1))
    from sheetnet.models.textnet import sample_pick
    assert out["next_token"] == vocab[sample_pick(last, 0.5, 0, 48271 / 2147483647)[0]]


@pytest.mark.parametrize("style", STYLES)
def test_top_five_lists_each_id_once_when_probabilities_tie(engine, books, style):
    # at a tiny temperature all but the first probabilities underflow to exactly 0: the ties
    # must come out in id order, each id once (MATCH alone repeated the first 0's id)
    manifest = read_manifest(books[style])
    edits = input_edits(manifest, "temperature", [1e-3])
    cells = read_nodes(engine, books[style], manifest, ["next.probs", "top.id"], edits=edits)
    probs = numeric(cells["next.probs"])[0]
    ids = numeric(cells["top.id"])[:, 0].astype(int).tolist()
    assert (probs == 0).sum() >= 4  # the ties this test is about are there
    assert ids == np.argsort(-probs, kind="stable")[:5].tolist()
    assert len(set(ids)) == 5


def test_a_repeated_vocabulary_character_reads_as_its_first_id(engine, tmp_path):
    # the sheet's EXACT lookup takes the first row holding the character, as tokenize() does
    model = random_gpt(seed=6)
    vocab = list(CHARS[:-1]) + [CHARS[2]]  # the last id repeats id 2's character
    save_checkpoint(tmp_path / "dup.pt", "gpt", model.config.to_dict(), model.state_dict(),
                    {"vocab": vocab})
    prompt = CHARS[2] + CHARS[0] + CHARS[2]
    export(tmp_path / "dup.pt", tmp_path / "dup.xlsx", ExportOptions(prompt=prompt))
    out = run(tmp_path / "dup.xlsx", engine=engine)
    assert out["tokens"] == [2, 0, 2]
    report = verify(tmp_path / "dup.xlsx", tmp_path / "dup.pt", engine=engine)
    assert report.ok, report.table()


def test_sheets_and_guide(books):
    wb = openpyxl.load_workbook(books["cells"], read_only=True)
    assert wb.sheetnames[:-1] == ["Guide", "Prompt", "Vocab", "Embedding", "B1 Attention", "B1 MLP",
                                  "B2 Attention", "B2 MLP", "Output", "Sampling", "Logit lens"]
    guide = " ".join(str(r[0]) for r in wb["Guide"].iter_rows(values_only=True) if r and r[0])
    assert "small GPT" in guide and "context 32" in guide
    wb.close()
