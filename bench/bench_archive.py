"""Bench `nianbao archive`: reports per minute and peak memory.

    python bench/bench_archive.py                      # 1,000 text/HTML files + 100 scanned pages
    python bench/bench_archive.py --files 300 --no-scan
    python bench/bench_archive.py --db postgresql+psycopg://root@127.0.0.1:5432/test

1. A 1,000-file text/HTML archive: generated variants of the seed report (each its own organ and
   year) plus, when the devset is present, its HTML/markdown/text reports made unique by a
   trailing comment. Goal (issue 6): 10,000 text reports in under an hour on 2 cores.
2. A 100-page scan archive: the devset's ``*-scan.pdf`` files copied (made unique) until they
   hold 100 pages, when the scan reader (``extractors/read_scan.py``) and the devset exist.

Each archive goes into a fresh store (a temporary SQLite file, or a fresh PostgreSQL database
with ``--db``). Figures are printed; nothing is asserted (speed lives in bench/, not tests/).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "archive"))

from reportgen import make_report  # noqa: E402
from treegen import devset_dir  # noqa: E402

_CN = str.maketrans("0123456789", "零一二三四五六七八九")


def text_archive(root: Path, n: int) -> tuple[int, int]:
    """``n`` files: 3/4 generated text reports, 1/4 devset HTML/markdown/text (if present)."""
    dev = devset_dir()
    pool = []
    if dev is not None:
        pool = [p for p in sorted(dev.iterdir()) if p.suffix in (".html", ".md", ".txt") and p.name != "README.md"]
    n_dev = n // 4 if pool else 0
    for i in range(n - n_dev):
        organ = "基准" + f"{i // 5:04d}".translate(_CN) + "区民政局"
        text = make_report(organ, 2019 + i % 5, new=i % 23, carried_in=i % 4, carried_out=min(i % 3, i % 23 + i % 4))
        d = root / "text" / f"{i % 10}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"r{i:05d}.txt").write_text(text, encoding="utf-8")
    for j in range(n_dev):
        src = pool[j % len(pool)]
        tail = f"\n<!-- bench copy {j} -->\n" if src.suffix == ".html" else f"\n\n（副本 {j}）\n"
        d = root / "devset" / f"{j % 10}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{src.stem}-{j:04d}{src.suffix}").write_bytes(src.read_bytes() + tail.encode("utf-8"))
    return n - n_dev, n_dev


def scan_archive(root: Path, pages: int) -> int:
    """Copies of the devset scans until ``pages`` pages; returns the page count (0 if none)."""
    dev = devset_dir()
    if dev is None:
        return 0
    import pypdfium2 as pdfium
    scans = sorted(dev.glob("*-scan.pdf"))
    total, k = 0, 0
    root.mkdir(parents=True, exist_ok=True)
    while scans and total < pages:
        src = scans[k % len(scans)]
        n = len(pdfium.PdfDocument(str(src)))
        # bytes after %%EOF are ignored by PDF readers and make each copy a distinct file
        (root / f"{src.stem}-{k:03d}.pdf").write_bytes(src.read_bytes() + f"\n% copy {k}\n".encode())
        total += n
        k += 1
    return total


def fresh_store(db: str | None, home: Path):
    from worker.store import Store, upgrade
    if db is None:
        url = f"sqlite:///{home / 'bench.sqlite'}"
        upgrade(url)
        return Store(url, str(home / "blobs")), None
    import psycopg
    name = f"nianbao_bench_{uuid.uuid4().hex[:8]}"
    admin = db.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = db.rsplit("/", 1)[0] + "/" + name
    upgrade(url)

    def drop():
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return Store(url, "db"), drop


def run(label: str, root: Path, db: str | None, workers: int, unit: str = "reports") -> dict:
    from worker.archive import run_archive
    home = Path(tempfile.mkdtemp(prefix="nianbao-bench-home-"))
    store, drop = fresh_store(db, home)
    t0 = time.perf_counter()
    try:
        s = run_archive(store, [root], workers=workers)
    finally:
        elapsed = time.perf_counter() - t0
        store.engine.dispose()
        if drop:
            drop()
        shutil.rmtree(home, ignore_errors=True)
    main_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    per_min = 60 * s.extracted_now / elapsed if elapsed else 0
    print(f"{label}: {s.total} files -> {s.counts} in {elapsed:.1f} s with {workers} worker(s): "
          f"{per_min:,.0f} {unit}/min; peak RSS main {main_mib:,.0f} MiB, largest worker {child_mib:,.0f} MiB")
    return {"per_min": per_min, "seconds": elapsed, "summary": s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--scan-pages", type=int, default=100)
    ap.add_argument("--no-scan", action="store_true")
    ap.add_argument("--db", help="PostgreSQL admin URL; a fresh database is made and dropped (default: SQLite)")
    a = ap.parse_args()

    print(f"machine: {os.cpu_count()} CPU(s); store: {'PostgreSQL' if a.db else 'SQLite (embedded)'}; "
          f"devset: {devset_dir() or 'absent'}")
    work = Path(tempfile.mkdtemp(prefix="nianbao-bench-"))
    try:
        n_text, n_dev = text_archive(work / "text", a.files)
        print(f"text/HTML archive: {n_text} generated text reports + {n_dev} devset HTML/markdown/text copies")
        r = run("text/HTML archive", work / "text", a.db, a.workers)
        if r["per_min"]:
            minutes = 10_000 / r["per_min"]
            print(f"  projection: 10,000 text reports in {minutes:.0f} min "
                  f"({'meets' if minutes < 60 else 'misses'} the goal of < 60 min on 2 cores)")
        if a.no_scan:
            print("scan archive: skipped (--no-scan)")
        elif importlib.util.find_spec("extractors.read_scan") is None:
            print("scan archive: not run — the scan/OCR reader (extractors/read_scan.py) does not exist yet")
        else:
            pages = scan_archive(work / "scan", a.scan_pages)
            if not pages:
                print("scan archive: not run — no *-scan.pdf in the devset")
            else:
                files = len(list((work / "scan").iterdir()))
                r = run(f"scan archive ({pages} pages in {files} PDFs)", work / "scan", a.db, a.workers, "documents")
                if r["seconds"]:
                    print(f"  {60 * pages / r['seconds']:,.1f} pages/min")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
