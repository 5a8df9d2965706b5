"""torch.export programs (the .pt2 archives ``torch.export.save`` writes) are refused, recognised
by the archive's layout whatever the file is called.

sheetnet reads nothing from one, because torch 2.13 can run code from the file at every step of
reading it (torch/export/pt2_archive/_package.py, torch/_export/serde/serialize.py):
- weights and constants saved with ``use_pickle`` load with ``torch.load(weights_only=False)``,
  "opaque" constants with ``pickle.loads``, script objects with ``torch._C._pickle_load_obj``;
- the example inputs (``data/sample_inputs/*.pt``) try ``weights_only=True`` and, when that fails,
  load again with ``weights_only=False``;
- the graph JSON's symbolic shapes go through ``sympy.sympify``, which evaluates its string.
A model in memory takes the torch.export path instead (``sheetnet.export(model, ...,
example_inputs=...)``), where the module is traced and nothing is unpickled.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import SheetnetError

# what marks the archive, below its one root folder (torch.export.pt2_archive.constants:
# ARCHIVE_FORMAT_PATH, MODELS_FILENAME_FORMAT); a torch.save zip has data.pkl there instead
_FORMAT_RECORD = "archive_format"
_MODELS_DIR = "models/"
# torch 2.7's archives had no root folder and kept the program here (torch.export.load still reads them)
_LEGACY_PROGRAM = "serialized_exported_program.json"


def is_export_archive(names: list[str]) -> bool:
    """Whether zip records ``names`` are laid out as a torch.export (.pt2) archive."""
    below_root = [n.split("/", 1)[1] for n in names if "/" in n]
    return (_LEGACY_PROGRAM in names or _FORMAT_RECORD in below_root
            or any(n.startswith(_MODELS_DIR) and n.endswith(".json") for n in below_root))


def refuse_export_archive(path: Path, names: list[str]) -> None:
    """Refuse a torch.export archive before anything in it is read.

    Raises:
        SheetnetError: ``names`` (the zip's records) are a .pt2 archive's.
    """
    if is_export_archive(names):
        raise SheetnetError(
            f"{path} is a torch.export program: sheetnet does not load these (torch.export.load "
            "can run code from the file); export the nn.Module from Python with "
            "sheetnet.export(model, ..., example_inputs=...)")
