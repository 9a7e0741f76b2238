"""Milliseconds per report for text, markdown and HTML inputs on one core (goal: <= 20 ms).

Runs the in-process pipeline (`extract_bytes`) on the repo's samples and, when present, the
devset's text/markdown/HTML files; prints per-file medians, per-kind means and the ratio to the goal.

    python bench/bench_text.py [--repeat 20]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from extractors.pipeline import extract_bytes  # noqa: E402

GOAL_MS = 20.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})     # one core
    except (AttributeError, OSError):
        pass
    files = sorted((REPO / "samples").glob("*.txt"))
    devset = Path(os.environ.get("NIANBAO_DEVSET", REPO / ".." / "shared" / "devset")).resolve()
    if devset.is_dir():
        files += sorted(p for k in ("*.txt", "*.md", "*.html") for p in devset.glob(k) if p.name != "README.md")
    else:
        print(f"(devset not found at {devset}: samples only)")
    extract_bytes(files[0].read_bytes(), files[0].name)               # build the matcher once
    by_kind: dict[str, list[float]] = {}
    print(f"{'file':40s} {'median ms':>10s} {'max ms':>8s}")
    for f in files:
        data = f.read_bytes()
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            r = extract_bytes(data, f.name)
            times.append((time.perf_counter() - t) * 1000)
        assert r.status != "failed", (f, r.error)
        med = statistics.median(times)
        by_kind.setdefault(f.suffix.lstrip("."), []).append(med)
        print(f"{f.name:40s} {med:10.1f} {max(times):8.1f}")
    print()
    for kind, ms in sorted(by_kind.items()):
        mean = statistics.mean(ms)
        print(f"{kind:5s} n={len(ms):2d}  mean {mean:6.1f} ms/report  max {max(ms):6.1f}  "
              f"goal {GOAL_MS:.0f} ms -> ratio {mean / GOAL_MS:.2f}")
    alltimes = [m for ms in by_kind.values() for m in ms]
    print(f"load average during the run: {os.getloadavg()[0]:.1f} (figures are inflated when > 1)")
    print(f"all   n={len(alltimes):2d}  mean {statistics.mean(alltimes):6.1f} ms/report "
          f"({1000 / statistics.mean(alltimes):.0f} reports/s on one core)")


if __name__ == "__main__":
    main()
