"""torch.export programs (issue 15, item 3): a .pt2 archive from ``torch.export.save`` is refused
in one line, recognised by its layout whatever it is called, and nothing in it is read: a weights
record or example inputs holding a pickle that would create a marker file leave no marker.

Each test builds its archive in tmp_path with torch.export.save, then edits it.
"""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from hostile.test_checkpoints import refused_export
from sheetnet import loaders
from sheetnet.errors import SheetnetError

WORDS = ("is a torch.export program", "torch.export.load can run code",
         "sheetnet.export(model, ..., example_inputs=...)")


def export_save(path: Path) -> Path:
    """A tiny Linear + ReLU, exported and saved as torch.export.save writes it."""
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    torch.export.save(torch.export.export(model, (torch.randn(1, 2),)), path)
    return path


class _Touch:
    # unpickling this runs `touch <marker>`: what a hostile file would do
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def rewrite(path: Path, edit) -> Path:
    """Rewrite the archive at ``path``, each record's bytes through ``edit(name, data)``."""
    with zipfile.ZipFile(path) as archive:
        records = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in records.items():
            archive.writestr(name, edit(name, data))
    return path


def pickled_weight(path: Path, marker: Path) -> Path:
    """Weight 0 marked ``use_pickle`` (torch.export.load then torch.load(weights_only=False)s it)
    and its record replaced by the touching pickle."""
    def edit(name: str, data: bytes) -> bytes:
        if name.endswith("data/weights/model_weights_config.json"):
            config = json.loads(data)
            for meta in config["config"].values():
                meta["use_pickle"] = meta["path_name"] == "weight_0"
            return json.dumps(config).encode()
        if name.endswith("data/weights/weight_0"):
            return pickle.dumps(_Touch(marker))
        return data
    return rewrite(path, edit)


def pickled_inputs(path: Path, marker: Path) -> Path:
    """The example inputs replaced by the touching pickle (torch.export.load retries them with
    weights_only=False when the safe load fails)."""
    def edit(name: str, data: bytes) -> bytes:
        return pickle.dumps(_Touch(marker)) if name.endswith("data/sample_inputs/model.pt") else data
    return rewrite(path, edit)


def torch_export_load_runs_it(model: Path, marker: Path) -> bool:
    """Whether torch.export.load itself (in a child) runs the file's pickle: the input is live."""
    subprocess.run([sys.executable, "-c", "import sys, torch; torch.export.load(sys.argv[1])",
                    str(model)], capture_output=True, timeout=300)
    made = marker.exists()
    marker.unlink(missing_ok=True)
    return made


def test_a_real_pt2_is_refused_in_one_line(tmp_path):
    model = export_save(tmp_path / "model.pt2")
    line = refused_export(tmp_path, model, *WORDS)
    assert f"{model} is a torch.export program" in line


def test_a_renamed_pt2_is_refused_by_its_layout(tmp_path):
    model = export_save(tmp_path / "model.pt2").rename(tmp_path / "model.pt")
    refused_export(tmp_path, model, *WORDS)
    refused_export(tmp_path, model, *WORDS, args=("--format", "mlp-module"))


@pytest.mark.parametrize("plant", [pickled_weight, pickled_inputs])
def test_a_pickle_in_a_pt2_never_runs(tmp_path, plant):
    marker = tmp_path / "MARKER"
    model = plant(export_save(tmp_path / "model.pt2"), marker)
    assert torch_export_load_runs_it(model, marker)
    refused_export(tmp_path, model, *WORDS)   # also asserts no file was added: MARKER included
    assert not marker.exists()


def test_a_torch_2_7_pt2_is_refused(tmp_path):
    model = tmp_path / "old.pt2"
    with zipfile.ZipFile(model, "w") as archive:
        archive.writestr("version", "8.0")
        archive.writestr("serialized_exported_program.json", "{}")
    with pytest.raises(SheetnetError, match="is a torch.export program"):
        loaders.load(model)


def test_a_torch_save_file_named_pt2_still_loads(tmp_path):
    # the layout decides, not the name
    model = tmp_path / "model.pt2"
    torch.save(nn.Sequential(nn.Linear(2, 3), nn.ReLU()), model)
    assert loaders.load(model)["metadata"]["source_format"] == "mlp-module"
