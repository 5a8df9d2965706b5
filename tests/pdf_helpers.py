"""LibreOffice's printout of a workbook, read back with poppler (what a reader sees on paper)."""
import html
import re
import subprocess
from pathlib import Path


def printout(book: Path, tmp_path: Path, timeout: float = 600) -> Path:
    """The workbook printed to PDF by LibreOffice (its own profile in tmp_path) as it is saved:
    never a copy re-saved by another library."""
    profile = (tmp_path / "profile").as_uri()
    subprocess.run(["soffice", f"-env:UserInstallation={profile}", "--headless", "--convert-to",
                    "pdf", "--outdir", str(tmp_path), str(book)], check=True, capture_output=True,
                   timeout=timeout)
    return tmp_path / (book.stem + ".pdf")


def page_lines(pdf: Path) -> list[list[list[str]]]:
    """Each page's lines, each line its words (pdftotext's word boxes: a gap splits words)."""
    out = subprocess.run(["pdftotext", "-bbox-layout", str(pdf), "-"], check=True,
                         capture_output=True, text=True).stdout
    return [[[html.unescape(w) for w in re.findall(r"<word [^>]*>(.*?)</word>", line)]
             for line in re.findall(r"<line[^>]*>(.*?)</line>", page, re.S)]
            for page in out.split("<page ")[1:]]
