"""Run one input through ``extract_path`` (or ``extract_bytes``) and print one JSON line.

Used by the hostile tests as ``python _child.py MODE PATH`` under an address-space cap and a
timeout, so a crash, hang or memory blow-up of one input is observed, not suffered.
"""
from __future__ import annotations

import hashlib
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    mode, path = sys.argv[1], sys.argv[2]
    from extractors.pipeline import extract_bytes, extract_path
    started = time.perf_counter()
    if mode == "bytes":
        p = Path(path)
        data = p.read_bytes() if p.stat().st_size <= 300 * 2**20 else b""
        r = extract_bytes(data, p.name)
    else:
        r = extract_path(path)
    values = {k: f.value for k, f in sorted(r.fields.items())} if r.fields else {}
    print(json.dumps({
        "status": r.status, "code": r.error_code, "error": r.error,
        "seconds": round(time.perf_counter() - started, 2),
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "fields": hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest(),
        "n_fields": sum(v is not None for v in values.values()),
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
