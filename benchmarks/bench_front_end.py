"""Figures for the torch.export front end's image models (issue 15), a script, not a test.

    python benchmarks/bench_front_end.py [--repeat 3]

For the 784-128-64-10 MNIST MLP (targets: export <= 2 s, LibreOffice recalculation <= 3 s) and a
LeNet-5-shaped CNN on 28 x 28 (conv 5x5 6 -> pool -> conv 5x5 16 -> pool -> Linear 256-120 ->
Linear 120-10; targets: export <= 10 s, recalculation <= 30 s), prints: export time (the first
export in this process, which pays for torch.export's warm-up, and the best of --repeat), the
file's size, formula and weight cells, the style export chose, LibreOffice's load +
recalculation (best and median of --repeat, soffice already started) and verify's max abs error
against the exported graph in float64.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sheetnet  # noqa: E402
from sheetnet.engines.libreoffice import LibreOffice as Engine  # noqa: E402
from sheetnet.manifest import read_manifest  # noqa: E402
from sheetnet.verifier import block  # noqa: E402


def mnist_mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64),
                         nn.ReLU(), nn.Linear(64, 10))


class LeNet5(nn.Module):
    """LeNet-5's channels (6 and 16) with two Linear layers."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 4 * 4, 120)
        self.fc2 = nn.Linear(120, 10)

    def forward(self, x):                                      # (1, 1, 28, 28)
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)     # (1, 6, 12, 12)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)     # (1, 16, 4, 4)
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))  # (1, 10)


# (name, model, export target s, recalculation target s)
MODELS = [("MNIST MLP 784-128-64-10", mnist_mlp, 2.0, 3.0),
          ("LeNet-5 (6, 16 channels)", LeNet5, 10.0, 30.0)]


def bench(name, make, engine: Engine, repeat: int, folder: Path) -> dict:
    torch.manual_seed(0)
    model, x = make(), torch.rand(1, 1, 28, 28)
    book = folder / "model.xlsx"
    exports = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = sheetnet.export(model, book, example_inputs=(x,), force=True)
        exports.append(time.perf_counter() - t0)
    out = read_manifest(book).outputs
    recalcs = []
    for _ in range(repeat):  # load + recalculate everything (the profile recalculates on load)
        t0 = time.perf_counter()
        engine.recalculate(book, [block(read_manifest(book).nodes[n]) for n in out])
        recalcs.append(time.perf_counter() - t0)
    report = sheetnet.verify(book, model, example_inputs=(x,), engine=engine)
    return {"first_s": exports[0], "export_s": min(exports), "mb": book.stat().st_size / 1e6,
            "formulas": res.formula_cells, "weights": res.weight_cells, "style": res.style,
            "best_s": min(recalcs), "median_s": statistics.median(recalcs),
            "err": report.max_abs_err, "ok": report.ok}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"{'model':<25} {'export s':>14} {'size MB':>7} {'formula cells':>13} "
          f"{'weights':>8} {'style':<6} {'recalc best':>11} {'median':>6} {'max err':>8}  verify")
    with tempfile.TemporaryDirectory() as tmp, Engine(timeout=600) as engine:
        for name, make, export_target, recalc_target in MODELS:
            r = bench(name, make, engine, args.repeat, Path(tmp))
            print(f"{name:<25} {r['export_s']:>5.2f} ({r['first_s']:.2f} 1st) {r['mb']:>7.2f} "
                  f"{r['formulas']:>13,} {r['weights']:>8,} {r['style']:<6} "
                  f"{r['best_s']:>11.2f} {r['median_s']:>6.2f} {r['err']:>8.2g}  "
                  f"{'ok' if r['ok'] else 'MISMATCH'}")
            print(f"{'':<25} targets: export <= {export_target:g} s "
                  f"({'met' if r['export_s'] <= export_target else 'MISSED'}), recalculation "
                  f"<= {recalc_target:g} s ({'met' if r['best_s'] <= recalc_target else 'MISSED'})")


if __name__ == "__main__":
    main()
