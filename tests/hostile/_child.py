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


def _peak_rss_mib() -> int:
    """This process's VmHWM (ru_maxrss would include the parent's RSS: it survives execve)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def main() -> None:
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "worker":
        return worker(path, int(sys.argv[3]), sys.argv[4])
    from extractors.pipeline import extract_bytes, extract_path
    from models.options import Limits
    started = time.perf_counter()
    if mode == "bytes":
        with open(path, "rb") as f:       # a caller reads at most one byte over the limit
            data = f.read(Limits().max_file_bytes + 1)
        r = extract_bytes(data, Path(path).name)
    else:
        r = extract_path(path)
    values = {k: f.value for k, f in sorted(r.fields.items())} if r.fields else {}
    print(json.dumps({
        "status": r.status, "code": r.error_code, "error": r.error,
        "seconds": round(time.perf_counter() - started, 2),
        "rss_mib": _peak_rss_mib(),
        "fields": hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest(),
        "n_fields": sum(v is not None for v in values.values()),
    }, ensure_ascii=False))


def worker(db_url: str, document_id: int, blobs: str) -> None:
    """One worker step on a stored document (what the Celery task runs), then its row."""
    from worker.jobs import advance_document, owner_id
    from worker.store import Store
    store = Store(db_url, blobs)
    started = time.perf_counter()
    outcome = advance_document(document_id, owner_id(), store)
    doc = store.document_json(document_id) or {}
    print(json.dumps({
        "status": doc.get("status"), "code": doc.get("error_code"), "error": doc.get("error"),
        "outcome": outcome, "seconds": round(time.perf_counter() - started, 2),
        "rss_mib": _peak_rss_mib(),
        "n_fields": sum((f or {}).get("value") is not None for f in (doc.get("fields") or {}).values()),
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
