"""sheetnet: compile a trained PyTorch model into a live, recalculating spreadsheet.

    import sheetnet
    result = sheetnet.export(model, "model.xlsx", example_inputs=(x,))
    report = sheetnet.verify("model.xlsx", model)        # report.ok, report.max_abs_err
    sheetnet.run("model.xlsx", inputs=[2.0])             # {"inputs": ..., "outputs": ...}

The functions are documented in api.py.  Importing the package imports neither torch nor NumPy:
they are imported when a function is first used.
"""
import importlib
import sys
import types

from .api import import_book
from .errors import SheetnetError
from .options import ExportOptions

__version__ = "0.1.0"
__all__ = ["export", "verify", "run", "import_book", "ExportOptions", "SheetnetError",
           "__version__"]

# The pipeline has modules named export, verify and run, and importing one makes Python set
# sheetnet.<name> to it, whatever the package defined.  So sheetnet.export *is* the module
# (``from sheetnet import verify; verify.read_nodes`` keeps working), made callable: calling it
# calls the API function of its name (api.export, api.verify, api.run).
_SHARED = ("export", "verify", "run")


class _CallableStage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from . import api
        return getattr(api, self.__name__.rpartition(".")[2])(*args, **kwargs)


class _Package(types.ModuleType):
    def __setattr__(self, name, value):
        if name in _SHARED and isinstance(value, types.ModuleType):
            value.__class__ = _CallableStage  # as the import system binds the submodule
        super().__setattr__(name, value)


def __getattr__(name):
    # sheetnet.export before anything imported the module: import it now (torch comes with it)
    if name in _SHARED:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


sys.modules[__name__].__class__ = _Package
