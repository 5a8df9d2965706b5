"""The GPT through the command line (click's CliRunner): train, export, verify, run."""
import json

import pytest

from sheetnet.loaders import load_checkpoint
from cli_helpers import invoke


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 1-block, 8-wide GPT trained for a few steps on the example text, context 8."""
    path = tmp_path_factory.mktemp("gpt") / "tiny.pt"
    res = invoke("train", "gpt", path, "--layers", 1, "--heads", 2, "--embd", 8, "--context", 8,
                 "--steps", 20, "--seed", 3)
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and "loss" in res.output
    return path


def test_train_gpt_writes_a_seeded_checkpoint(tiny, tmp_path):
    payload = load_checkpoint(tiny)
    assert payload["architecture"] == "gpt"
    assert payload["config"]["n_layer"] == 1 and payload["config"]["block_size"] == 8
    assert payload["metadata"]["steps"] == 20 and "T" in payload["metadata"]["vocab"]
    text = tmp_path / "t.txt"
    text.write_text("abcabcabd " * 10)
    again = tmp_path / "again.pt"
    res = invoke("train", "gpt", again, "--layers", 1, "--embd", 4, "--context", 4, "--steps", 5,
                 "--text", text)
    assert res.exit_code == 0, res.output
    assert load_checkpoint(again)["metadata"]["vocab"] == [" ", "a", "b", "c", "d"]
    res = invoke("train", "gpt", tmp_path / "x.pt", "--text", tmp_path / "missing.txt")
    assert res.exit_code == 1 and "does not exist" in res.output


@pytest.mark.parametrize("style", ["cells", "arrays"])
def test_export_verify_run(tiny, tmp_path, style):
    book = tmp_path / "g.xlsx"
    res = invoke("export", tiny, book, "--prompt", "The Cell", "--style", style)
    assert res.exit_code == 0, res.output
    res = invoke("verify", book, tiny)
    assert res.exit_code == 0, res.output
    assert "all match" in res.output and "h0.attn.scores1" in res.output
    res = invoke("run", book, "--prompt", "Hello", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    vocab = load_checkpoint(tiny)["metadata"]["vocab"]
    assert out["tokens"] == [vocab.index(c) for c in "Hello"]
    assert len(out["outputs"]) == 5 and len(out["outputs"][0]) == len(vocab)
    assert out["next_token"] in vocab
    res = invoke("run", book, "--tokens", "3,17,4", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["tokens"] == [3, 17, 4] and len(out["outputs"]) == 3
    assert out["inputs"] == ["".join(vocab[i] for i in (3, 17, 4))]


def test_cli_errors(tiny, tmp_path):
    book = tmp_path / "g.xlsx"
    assert invoke("export", tiny, book, "--tokens", "36,46,43", "--context", 4).exit_code == 0
    res = invoke("verify", book, tiny)
    assert res.exit_code == 0, res.output
    for args, words in [(("--prompt", "HeΩlo"), "error: not in vocab: 'Ω'"),
                        (("--prompt", ""), "error: the prompt is empty"),
                        (("--tokens", "1,999"), "error: token id 999 is outside the vocabulary"),
                        (("--prompt", "a", "--tokens", "1"), "error: give a prompt or token ids")]:
        res = invoke("run", book, *args)
        assert res.exit_code == 1 and words in res.output, res.output
    res = invoke("export", tiny, tmp_path / "h.xlsx", "--context", 9)
    assert res.exit_code == 1 and "context 9 must be between 1" in res.output
