"""Seconds per page for the PDF/scan readers, peak RSS, and plain full-page RapidOCR for comparison.

    python3 bench/bench_pdf_ocr.py [--devset DIR] [--pages N] [--no-baseline]

Goals (issue 3): scanned page <= 1.5 s, born-digital page <= 100 ms, peak RSS <= 1 GiB.
Baseline: the same scanned pages rendered by pypdfium2 at 200 dpi and read by RapidOCR at its
default settings (det + cls + rec, max side 2000) — what a user would otherwise do.
The machine is shared: figures are medians of one pass; run it on an idle machine to compare.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.options import ExtractOptions  # noqa: E402


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    default = os.environ.get("NIANBAO_DEVSET") or str(Path(__file__).resolve().parents[1] / ".." / "shared" / "devset")
    ap.add_argument("--devset", default=default)
    ap.add_argument("--pages", type=int, default=12, help="scanned pages to time (first N across files)")
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args()
    d = Path(args.devset)
    if not d.is_dir():
        sys.exit(f"devset not found at {d}")
    import pypdfium2 as pdfium
    from extractors.ocr import get_engine
    from extractors.read_pdf import PageRead, read_pdf, read_pdf_page  # noqa: F401
    from extractors.read_scan import ocr_page_image

    opts = ExtractOptions()
    t0 = time.perf_counter()
    get_engine(opts)
    print(f"engine load: {time.perf_counter() - t0:.2f} s, RSS {_rss_mib():.0f} MiB")

    # Born-digital: whole documents, seconds per page.
    digital = sorted(p for p in d.glob("*.pdf") if "-scan" not in p.name)
    per_page = []
    for p in digital:
        data = p.read_bytes()
        t = time.perf_counter()
        doc = read_pdf(data, opts)
        per_page.append((time.perf_counter() - t) / doc.pages)
    med_digital = statistics.median(per_page)
    print(f"born-digital: {len(digital)} files, median {med_digital * 1000:.0f} ms/page "
          f"(max {max(per_page) * 1000:.0f} ms), goal 100 ms: {'ok' if med_digital <= 0.1 else 'MISSED'}")

    # Scans: render (pypdfium2) + nianbao OCR per page, and the baseline on the same image.
    pages = []
    for p in sorted(d.glob("*-scan.pdf")):
        doc = pdfium.PdfDocument(str(p))
        for i in range(len(doc)):
            pages.append((p.name, i + 1))
        doc.close()
    pages = pages[: args.pages]
    ours, base = [], []
    baseline = None
    if not args.no_baseline:
        from rapidocr_onnxruntime import RapidOCR
        baseline = RapidOCR()
    for name, page_no in pages:
        doc = pdfium.PdfDocument(str(d / name))
        t = time.perf_counter()
        img = doc[page_no - 1].render(scale=opts.render_dpi / 72).to_numpy()[:, :, :3][:, :, ::-1].copy()
        ocr_page_image(img, page_no, opts, scale=72 / opts.render_dpi)
        ours.append(time.perf_counter() - t)
        if baseline is not None:
            t = time.perf_counter()
            baseline(img)
            base.append(time.perf_counter() - t)
        doc.close()
        print(f"  {name} p{page_no}: nianbao {ours[-1]:.2f} s" + (f", full-page RapidOCR {base[-1]:.2f} s" if base else ""))
    med = statistics.median(ours)
    print(f"scans: {len(ours)} pages, median {med:.2f} s/page (mean {statistics.mean(ours):.2f}), goal 1.5 s: "
          f"{'ok' if med <= 1.5 else 'MISSED'}")
    if base:
        mb = statistics.median(base)
        print(f"baseline full-page RapidOCR defaults: median {mb:.2f} s/page; ratio nianbao/baseline {med / mb:.2f}")
    rss = _rss_mib()
    print(f"peak RSS {rss:.0f} MiB (goal 1024): {'ok' if rss <= 1024 else 'MISSED'}")


if __name__ == "__main__":
    main()
