"""The generic front end: an in-memory nn.Module -> torch.export's ATen graph -> sheetnet's IR.

Work in progress: the public signature is final; the lowering grows behind it.
"""
from __future__ import annotations

from torch import nn

from ..errors import SheetnetError
from .trace import Captured


def capture_module(model: nn.Module, example_inputs: tuple, options=None) -> Captured:
    """Capture an in-memory module through torch.export.

    Args:
        model: the module (exported in eval mode).
        example_inputs: a tuple of example tensors, as torch.export.export takes them.
        options: ExportOptions or None.
    Returns:
        the Captured model: graph and float64 trace.
    Raises:
        SheetnetError: an unsupported op or shape, named with its module path.
    """
    raise SheetnetError(f"{type(model).__name__}: the torch.export front end is not built yet")
