"""Hostile-input helpers: the isolated runner (a subprocess under an address-space cap, an RSS watch and a timeout) and the
outcome table printed at the end of the run."""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

from make_corpus import CASES, build  # noqa: E402,F401

RSS_CAP_MIB = 1024            # a worker process is killed above this (the service recycles at 2048)
AS_CAP = 6 * 2**30            # address-space backstop (onnxruntime / numpy reserve a lot of virtual)
TIMEOUT_S = 120.0             # per input; Limits.max_seconds_per_document is 300 in production

OUTCOMES: list[dict] = []     # one row per (path, input) for the closing table


@dataclass
class Outcome:
    status: str | None
    code: str | None
    error: str | None
    seconds: float
    peak_rss_mib: int
    killed: str | None = None          # "timeout" / "rss" / "crash:<rc>"
    extra: dict | None = None


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _limit_as() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (AS_CAP, AS_CAP))


def run_isolated(args: list[str], *, env: dict | None = None, timeout: float = TIMEOUT_S,
                 rss_cap_mib: int = RSS_CAP_MIB, cwd: str | None = None) -> tuple[Outcome, str, str]:
    """Run ``python args...`` in a child: killed on timeout or when its peak RSS passes the cap."""
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, cwd=cwd or str(REPO),
                            preexec_fn=_limit_as, text=True)
    peak, killed = 0, None
    import threading
    out: dict[str, str] = {}

    def drain() -> None:
        out["stdout"], out["stderr"] = proc.communicate()
    t = threading.Thread(target=drain, daemon=True)
    t.start()
    while t.is_alive():
        peak = max(peak, _rss_kib(proc.pid))
        if peak > rss_cap_mib * 1024:
            killed = "rss"
            proc.kill()
            break
        if time.monotonic() - started > timeout:
            killed = "timeout"
            proc.kill()
            break
        t.join(0.05)
    t.join(30)
    seconds = round(time.monotonic() - started, 2)
    stdout, stderr = out.get("stdout", ""), out.get("stderr", "")
    if killed is None and proc.returncode != 0:
        killed = f"crash:{proc.returncode}"
    row = {}
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            row = json.loads(line)
            break
    rss = max(peak // 1024, int(row.get("rss_mib") or 0))
    return Outcome(row.get("status"), row.get("code"), row.get("error"), seconds, rss, killed, row), stdout, stderr


def record(path: str, name: str, o: Outcome) -> None:
    OUTCOMES.append({"path": path, "input": name, "status": o.status or (o.killed or "?"),
                     "reason": o.error or o.code or "", "seconds": o.seconds, "rss": o.peak_rss_mib})


