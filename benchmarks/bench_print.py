"""Printed pages per sheet of the example workbooks (issue 19; a script, not a test: figures
printed, not asserted).  Each example is exported and printed to PDF by LibreOffice; a page is
counted to the sheet whose name its first line is (row 1, the heading, repeats on every page;
the Guide's first page reads "sheetnet").  Needs soffice and pdftotext.

    python benchmarks/bench_print.py
"""
from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import zipfile
from html import unescape
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sheetnet.options import ExportOptions  # noqa: E402
from sheetnet.pipeline import export  # noqa: E402

EXAMPLES = [("sqrt_2x2.pt", {}), ("sqrt_net.pt", {}), ("textnet.pt", {}),
            ("gpt.pt", {"prompt": "The cell"})]


def pages_per_sheet(book: Path, work: Path) -> dict[str, int]:
    """Sheet name -> printed pages (LibreOffice's PDF of ``book``)."""
    subprocess.run(["soffice", f"-env:UserInstallation={(work / 'profile').as_uri()}",
                    "--headless", "--convert-to", "pdf", "--outdir", str(work), str(book)],
                   check=True, capture_output=True, timeout=900)
    text = subprocess.run(["pdftotext", "-layout", str(work / (book.stem + ".pdf")), "-"],
                          check=True, capture_output=True, text=True).stdout
    with zipfile.ZipFile(book) as zf:
        names = [unescape(n) for n in
                 re.findall(r'<sheet name="([^"]*)"', zf.read("xl/workbook.xml").decode())]
    counts = {n: 0 for n in names if n != "_sheetnet"}
    current = names[0]
    for page in (p for p in text.split("\f") if p.strip()):
        first = page.strip().splitlines()[0].strip()
        current = first if first in counts else current
        counts[current] += 1
    return counts


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, opts in EXAMPLES:
            book = work / (Path(name).stem + ".xlsx")
            export(ROOT / "examples" / name, book, ExportOptions(**opts))
            counts = pages_per_sheet(book, work)
            print(f"{name}: {sum(counts.values())} pages  "
                  + ", ".join(f"{s} {n}" for s, n in counts.items()))


if __name__ == "__main__":
    main()
