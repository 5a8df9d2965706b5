"""sheetnet: compile a trained PyTorch model into a live, recalculating spreadsheet."""

__version__ = "0.1.0"
