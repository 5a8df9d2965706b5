"""sheetnet: compile a trained PyTorch model into a live, recalculating spreadsheet.

    import sheetnet
    result = sheetnet.export(model, "model.xlsx", example_inputs=(x,))
    report = sheetnet.verify("model.xlsx", model)        # report.ok, report.max_abs_err
    sheetnet.run("model.xlsx", inputs=[2.0])             # {"inputs": ..., "outputs": ...}

The functions are documented in api.py.  Importing the package imports neither torch nor NumPy:
they are imported when a function is first used.  (The pipeline's own modules are pipeline.py,
verifier.py and runner.py, so that no submodule takes the name of a function here.)
"""
from .api import export, import_book, run, verify
from .errors import SheetnetError
from .options import ExportOptions

__version__ = "0.1.0"
__all__ = ["export", "verify", "run", "import_book", "ExportOptions", "SheetnetError",
           "__version__"]
