"""Render the README's pictures from real exported workbooks: export -> LibreOffice PDF -> PNG.

Each sheet prints one page wide (the writer sets fit-to-width), so page k of the PDF is the k-th
sheet.  Needs soffice and pdftoppm (Debian: poppler-utils).

    python scripts/render_pictures.py            # writes docs/img/*.png
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "img"

# (picture name, example checkpoint, export options, sheet name, print area)
PICTURES = [
    ("sqrt_layer", "sqrt_2x2.pt", [], "Layer 1", "A1:F22"),
    ("sqrt_walk", "sqrt_2x2.pt", [], "Walk", "A1:T68"),
    ("textnet_input", "textnet.pt", [], "Input", "A1:I40"),
    ("gpt_prompt", "gpt.pt", ["--prompt", "The cell"], "Prompt", "A1:N30"),
    ("gpt_attention", "gpt.pt", ["--prompt", "The cell"], "B1 Attention", "A285:J295"),
    ("gpt_output", "gpt.pt", ["--prompt", "The cell"], "Output", "A1:F16"),
]
DPI = 110


def render(name, model, options, sheet, area, work: Path) -> Path:
    import openpyxl
    book = work / f"{name}.xlsx"
    subprocess.run([sys.executable, "-m", "sheetnet", "export", str(ROOT / "examples" / model),
                    str(book), "--force", *options], check=True, capture_output=True)
    # print only `area` of `sheet`, one page wide: the PDF's first page is the picture
    wb = openpyxl.load_workbook(book)
    for ws in wb.worksheets:
        if ws.title != sheet:
            ws.sheet_state = "hidden"
    wb[sheet].print_area = area
    wb.active = wb.sheetnames.index(sheet)
    wb.save(book)
    subprocess.run(["soffice", "--headless", "--convert-to", "pdf", "--outdir", str(work),
                    str(book)], check=True, capture_output=True)
    target = OUT / name
    subprocess.run(["pdftoppm", "-png", "-r", str(DPI), "-f", "1", "-l", "1", "-singlefile",
                    "-cropbox", str(work / f"{name}.pdf"), str(target)], check=True)
    return target.with_suffix(".png")


def main() -> None:
    for tool in ("soffice", "pdftoppm"):
        if not shutil.which(tool):
            sys.exit(f"error: {tool} is needed (apt-get install libreoffice-calc-nogui poppler-utils)")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for spec in PICTURES:
            print("wrote", render(*spec, work=Path(tmp)).relative_to(ROOT))


if __name__ == "__main__":
    main()
