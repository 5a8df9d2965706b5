"""Reading what LibreOffice itself makes of a workbook, beyond cell values."""
from pathlib import Path


def validation_rule(engine, book, sheet: str, row: int, col: int) -> tuple:
    """(type, operator, formula1, shows an error) of a cell's validation rule, as LibreOffice
    reads it: e.g. ("LIST", ..., "$Vocab.$B$5:$B$9", True) or ("DECIMAL", "GREATER", "0", True)."""
    with engine._watchdog("reading a validation rule"):
        doc = engine._load(Path(book).resolve())
        try:
            rule = doc.Sheets.getByName(sheet).getCellByPosition(col, row).Validation
            return (rule.Type.value, rule.getOperator().value, rule.getFormula1(),
                    rule.ShowErrorMessage)
        finally:
            doc.close(True)
