"""`sheetnet run` without --json (issue 19): a short summary a reader takes in, computed from what
the workbook gives (LibreOffice) and checked against PyTorch; --json keeps every number."""
import json

import pytest
import torch

from cli_helpers import invoke
from sheetnet.loaders import load_checkpoint
from sheetnet.models.mlp import mlp_from_checkpoint
from sheetnet.models.textnet import TextNet
from sheetnet.runner import summary


@pytest.fixture(scope="module")
def books(examples, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    made = {}
    for name, args in [("textnet.pt", ["--prompt", "cat"]), ("sqrt_net.pt", ["--input", "3"])]:
        made[name] = out / f"{name}.xlsx"
        assert invoke("export", examples / name, made[name], *args).exit_code == 0
    return made


def test_text_net_names_the_next_word_and_its_top_5(examples, books):
    payload = load_checkpoint(examples / "textnet.pt")
    vocab = payload["metadata"]["vocab"]
    model = TextNet.from_checkpoint(payload).double()
    with torch.no_grad():
        p = torch.softmax(model(torch.tensor([vocab.index("cat")])), dim=-1)[0]
    order = torch.argsort(p, descending=True, stable=True)[:5].tolist()
    res = invoke("run", books["textnet.pt"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0] == f"next word: {vocab[order[0]]!r}"
    shown = [f"{vocab[i]!r} {p[i]:.4f}" if p[i] >= 1e-3 else f"{vocab[i]!r} {p[i]:.2g}"
             for i in order]
    assert lines[1] == "top 5: " + "  ".join(shown)
    assert lines[2].startswith("chain: cat -> ")
    assert max(len(line) for line in lines) < 120  # no 17-digit arrays
    full = json.loads(invoke("run", books["textnet.pt"], "--json").output)
    assert torch.allclose(torch.tensor(full["probs"], dtype=torch.float64), p, atol=1e-12, rtol=0)


def test_sqrt_net_prints_y_rounded(examples, books):
    model = mlp_from_checkpoint(load_checkpoint(examples / "sqrt_net.pt")).double()
    with torch.no_grad():
        y = float(model(torch.tensor([[5.5]], dtype=torch.float64)))
    res = invoke("run", books["sqrt_net.pt"], "--input", "5.5")
    assert res.exit_code == 0 and res.output == f"inputs 5.5 -> y = {y:.6g}\n", res.output


# summary() alone, on results shaped as run returns them (GPT, training, a 2-output MLP)
CASES = [
    ({"next_token": " ", "top_chars": ["space", "\\n", "e"], "top_probs": [0.7, 0.29, 2.6e-05],
      "generated": "ab\nc", "outputs": [[0.0]]},
     ["next character: ' '", "top 3: ' ' 0.7000  '\\n' 0.2900  'e' 2.6e-05",
      "generated: 'ab\\nc'"]),
    ({"next_token": 17, "top_ids": [17, 3], "top_probs": [0.9, 0.1], "outputs": [[0.0]]},
     ["next token: 17", "top 2: 17 0.9000  3 0.1000"]),
    ({"loss": [0.5, 0.25, 0.125], "final_loss": 0.1, "outputs": [[0.0]]},
     ["loss per step: 1: 0.5  2: 0.25  3: 0.125"]),
    ({"inputs": [1.0, 2.5], "outputs": [[0.123456789, -2.0]]},
     ["inputs 1, 2.5 -> outputs 0.123457, -2"]),
]


@pytest.mark.parametrize("result, lines", CASES)
def test_summary_lines(result, lines):
    assert summary(result) == lines
