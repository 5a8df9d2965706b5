"""Render the README's pictures straight from exported workbooks: export -> LibreOffice PDF -> PNG.

The exported file itself is printed (never a copy re-saved by another library, which would add
parts the export lacks: a re-saved copy once hid that charts drew blank).  A sheet prints one
page wide (the writer sets fit-to-width), or a wide one whole blocks a page (its print area's
ranges, xlsx_print.py); a picture is the part of a page between an anchor text
(a title on the sheet, found with pdftotext's word boxes) and a height below it.  Needs soffice
and poppler-utils (pdftoppm, pdftotext).

    python scripts/render_pictures.py            # writes docs/img/*.png
"""
from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "img"
DPI = 110

# (picture, example, export options, anchor text (first match, in page order), height and width
# in points (None: the page's width), dots per inch; the picture starts a little above the
# anchor, at the page's left edge.  A wide sheet prints small: more dpi)
PICTURES = [
    ("sqrt_layer", "sqrt_2x2.pt", [], "Layer 1: weights", 230, None, DPI),
    ("sqrt_walk", "sqrt_2x2.pt", [], "Walk", 330, 280, 3 * DPI),
    ("textnet_input", "textnet.pt", [], "Input", 330, None, DPI),
    ("sqrt_regions", "sqrt_net.pt", [], "Regions: y = a*x + b", 330, None, DPI),
    ("textnet_walk", "textnet.pt", [], "The walk through the net", 560, 420, DPI),
    ("gpt_prompt", "gpt.pt", ["--prompt", "The cell"], "Prompt", 300, None, DPI),
    ("gpt_attention", "gpt.pt", ["--prompt", "The cell"], "head 0: attention", 75, 420, 3 * DPI),
    ("gpt_output", "gpt.pt", ["--prompt", "The cell"], "Output", 250, None, DPI),
]
TRAIN = ["--train", "examples/textnet_pairs.txt", "--steps", "3", "--optimizer", "adam",
         "--lr", "0.05"]
# whole printed pages (as the print set-up lays them out: titles, scaling, page breaks), a few
# per example at a low resolution: (picture, example, export options, sheet)
PAGES = [
    ("page_sqrt_walk", "sqrt_2x2.pt", [], "Walk"),
    ("page_sqrt_input", "sqrt_net.pt", [], "Input"),       # x's region, y = a*x + b
    ("page_sqrt_regions", "sqrt_net.pt", [], "Regions"),   # the regions table and chart
    ("page_textnet_walk", "textnet.pt", [], "Walk"),       # the seed's printout, live
    ("page_textnet_input", "textnet.pt", [], "Input"),
    ("page_gpt_attention", "gpt.pt", ["--prompt", "The cell"], "B1 Attention"),
    ("page_gpt_logit_lens", "gpt.pt", ["--prompt", "The cell"], "Logit lens"),
    ("page_train_step", "textnet.pt", TRAIN, "Step 1"),
]
PAGE_DPI = 50


def pdf_of(book: Path, work: Path) -> Path:
    """Print the workbook ``book`` to PDF with LibreOffice (a private profile in ``work``)."""
    profile = (work / "lo-profile").resolve().as_uri()
    subprocess.run(["soffice", f"-env:UserInstallation={profile}", "--headless", "--convert-to",
                    "pdf", "--outdir", str(work), str(book)], check=True, capture_output=True,
                   timeout=600)
    pdf = work / (book.stem + ".pdf")
    if not pdf.is_file():
        raise RuntimeError(f"LibreOffice wrote no PDF for {book}")
    return pdf


def pages(pdf: Path, dpi: int = 72):
    """Yield every page of ``pdf`` as an (h, w, 3) uint8 RGB array (pdftoppm's PPM, read
    directly), one page at a time: a GPT's 20 pages at 300 dpi would hold ~500 MB at once."""
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True)
    count = int(re.search(r"^Pages:\s+(\d+)", info.stdout, re.M).group(1))
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(1, count + 1):
            subprocess.run(["pdftoppm", "-r", str(dpi), "-f", str(k), "-l", str(k),
                            "-singlefile", str(pdf), f"{tmp}/p"], check=True)
            yield _ppm(Path(tmp) / "p.ppm")


def _ppm(path: Path) -> np.ndarray:
    data = path.read_bytes()
    m = re.match(rb"P6\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
    w, h = int(m.group(1)), int(m.group(2))
    return np.frombuffer(data, np.uint8, w * h * 3, m.end()).reshape(h, w, 3)


def colour_pixels(image: np.ndarray, rgb: str, tol: int = 6) -> int:
    """How many pixels of ``image`` are within ``tol`` of the colour RRGGBB in every channel."""
    want = np.array([int(rgb[k:k + 2], 16) for k in (0, 2, 4)])
    return int((np.abs(image.astype(int) - want).max(axis=-1) <= tol).sum())


def find_text(pdf: Path, text: str, first: int = 1) -> tuple[int, float]:
    """(1-based page, y in points) of the first line of ``pdf`` from page ``first`` on that
    starts with ``text``."""
    out = subprocess.run(["pdftotext", "-bbox-layout", str(pdf), "-"], check=True,
                         capture_output=True, text=True).stdout
    for k, page in enumerate(out.split("<page ")[1:], start=1):
        if k < first:
            continue
        for line in re.findall(r"<line[^>]*>(.*?)</line>", page, re.S):
            words = re.findall(r'<word xMin="[^"]*" yMin="([^"]*)"[^>]*>(.*?)</word>', line)
            if words and " ".join(html.unescape(w) for _, w in words).startswith(text):
                return k, float(words[0][0])
    raise RuntimeError(f"{text!r} is not on any page of {pdf.name}")


def exported(model, options, work: Path) -> tuple[Path, Path]:
    """(the exported workbook, its PDF), made once per example and options."""
    tag = re.sub(r"[^A-Za-z0-9.]+", "_", "_".join(options)) or "plain"
    book = work / f"{model}.{tag}.xlsx"
    if not book.exists():
        subprocess.run([sys.executable, "-m", "sheetnet", "export", str(ROOT / "examples" / model),
                        str(book), "--force", *options], check=True, capture_output=True)
    pdf = work / (book.stem + ".pdf")
    if not pdf.exists():
        pdf_of(book, work)
    return book, pdf


def after_guide(pdf: Path, book: Path) -> int:
    """The first page after the Guide's: the Guide's Contents names every sheet and block, so
    an anchor is looked for on the sheets' own pages (each sheet starts a page)."""
    with zipfile.ZipFile(book) as zf:
        names = re.findall(r'<sheet name="([^"]*)"', zf.read("xl/workbook.xml").decode())
    page, _ = find_text(pdf, html.unescape(names[1]), first=2)
    return page


def render(name, model, options, anchor, height, width, dpi, work: Path) -> Path:
    book, pdf = exported(model, options, work)
    page, y = find_text(pdf, anchor, after_guide(pdf, book))
    scale = dpi / 72
    top = max(0, int((y - 12) * scale))
    target = OUT / name
    subprocess.run(["pdftoppm", "-png", "-r", str(dpi), "-f", str(page), "-l", str(page),
                    "-y", str(top), "-H", str(int(height * scale)),
                    "-W", str(int(width * scale) if width else 100000),
                    "-singlefile", str(pdf), str(target)], check=True)
    return target.with_suffix(".png")


def render_page(name, model, options, sheet, work: Path) -> Path:
    """The first printed page of ``sheet``, whole."""
    book, pdf = exported(model, options, work)
    page, _ = find_text(pdf, sheet, after_guide(pdf, book))
    target = OUT / name
    subprocess.run(["pdftoppm", "-png", "-r", str(PAGE_DPI), "-f", str(page), "-l", str(page),
                    "-singlefile", str(pdf), str(target)], check=True)
    return target.with_suffix(".png")


def main() -> None:
    for tool in ("soffice", "pdftoppm", "pdftotext"):
        if not shutil.which(tool):
            sys.exit(f"error: {tool} is needed (apt-get install libreoffice-calc-nogui poppler-utils)")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for spec in PICTURES:
            print("wrote", render(*spec, work=Path(tmp)).relative_to(ROOT))
        for spec in PAGES:
            print("wrote", render_page(*spec, work=Path(tmp)).relative_to(ROOT))


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
