"""Load + recalculation time and peak memory of each engine (LibreOffice, Gnumeric, IronCalc).

Default (a minute or two): the example GPT (examples/gpt.pt, prompt "The cell"), --style cells
and arrays.  ``--big``: seeded random GPTs of bench_scale.py's shapes (8-token context, --style
auto), each engine climbing until a shape fails or passes --timeout (24 GB machines: the largest
each engine manages is the last row it prints).  Every recalculation runs in a fresh Python, so
its peak memory is its own: LibreOffice's is soffice.bin's VmHWM; Gnumeric's (ssconvert) and
IronCalc's (a forked child) are getrusage's children's ru_maxrss (which never reads below the
~60 MB Python that starts them).  Each row also gives the max |logits - LibreOffice's|.

    python benchmarks/bench_engines.py [--big] [--engines libreoffice,gnumeric,ironcalc]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

ENGINES = ["libreoffice", "gnumeric", "ironcalc"]

_ONE = r"""
import json, os, resource, sys, time
import numpy as np
from sheetnet.engines import open_engine
from sheetnet.verifier import block, numeric
from sheetnet.manifest import read_manifest
name, book, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
entry = read_manifest(book).nodes["logits"]
with open_engine(name, timeout=timeout) as eng:
    clock = time.perf_counter()
    values = eng.recalculate(book, [block(entry)])[0]
    seconds = time.perf_counter() - clock
    peak = 0
    if name == "libreoffice":  # soffice.bin: a grandchild, read before it is killed
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
                if int(stat[2]) == eng._proc.pid:  # its process group
                    for line in open(f"/proc/{pid}/status"):
                        if line.startswith("VmHWM"):
                            peak = max(peak, int(line.split()[1]) // 1024)
            except OSError:
                pass
if name != "libreoffice":
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
logits = numeric(values.T if entry.laid_transposed else values)
np.save(sys.argv[4], logits)
print(json.dumps({"seconds": seconds, "timings": eng.timings, "peak_mb": peak}))
"""


def measure(engine: str, book: Path, timeout: float, out: Path) -> dict:
    """One engine recalculating ``book`` in a fresh Python: its figures, or {"error": ...}."""
    try:
        proc = subprocess.run([sys.executable, "-c", _ONE, engine, str(book), str(timeout),
                               str(out)], capture_output=True, text=True, timeout=timeout + 120,
                              cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:g} s"}
    if proc.returncode:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:90]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def export(model: Path, book: Path, *options: str) -> None:
    subprocess.run([sys.executable, "-m", "sheetnet", "export", str(model), str(book), "--force",
                    *options], check=True, capture_output=True, cwd=ROOT)


def report(label: str, results: dict, work: Path) -> None:
    import numpy as np
    ref = work / "libreoffice.npy"
    for engine, r in results.items():
        if "error" in r:
            print(f"{label:<22} {engine:<12} failed: {r['error']}")
            continue
        t = r["timings"]
        load = t.get("load", 0.0)
        err = (float(np.nanmax(np.abs(np.load(work / f"{engine}.npy") - np.load(ref))))
               if ref.exists() else float("nan"))
        print(f"{label:<22} {engine:<12} {r['seconds']:>8.2f} {load:>8.2f} "
              f"{r['seconds'] - load - t.get('read', 0.0) - t.get('scan', 0.0):>9.2f} "
              f"{r['peak_mb']:>8} {err:>12.2g}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--big", action="store_true", help="random GPTs up to GPT-2 small's shape")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per recalculation")
    args = ap.parse_args()
    engines = args.engines.split(",")
    print(f"{'workbook':<22} {'engine':<12} {'total s':>8} {'load s':>8} {'recalc s':>9} "
          f"{'peak MB':>8} {'max |d| vs LO':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.big:
            for style in ("cells", "arrays"):
                book = tmp / f"gpt_{style}.xlsx"
                export(ROOT / "examples" / "gpt.pt", book, "--style", style, "--prompt", "The cell")
                results = {e: measure(e, book, args.timeout, tmp / f"{e}.npy") for e in engines}
                report(f"gpt.pt {style}", results, tmp)
            return
        from bench_scale import CONTEXT, SHAPES, make_checkpoint, tokens_for
        failed: set[str] = set()
        for shape in SHAPES:
            model, book = tmp / f"{shape}.pt", tmp / f"{shape}.xlsx"
            make_checkpoint(shape, model)
            export(model, book, "--context", str(CONTEXT), "--tokens",
                   ",".join(map(str, tokens_for(shape))))
            for f in tmp.glob("*.npy"):
                f.unlink()
            results = {e: measure(e, book, args.timeout, tmp / f"{e}.npy")
                       for e in engines if e not in failed}
            failed |= {e for e, r in results.items() if "error" in r}
            report(shape, results, tmp)
            model.unlink()
            book.unlink()


if __name__ == "__main__":
    main()
