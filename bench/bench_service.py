"""Documents per minute through the service (upload -> Celery -> store -> result) with 1 and 2
worker processes, against the in-process pipeline on the same files; prints the overhead ratio.

    python bench/bench_service.py [--copies 8] [--devset DIR]

Uses the machine's PostgreSQL (a scratch database, dropped afterwards) and Redis (a scratch
database number and queue). Each copy of a devset text/HTML/markdown file gets a unique trailing
comment, so every upload is a new document (the service would otherwise dedupe it).
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("NIANBAO_TEST_PG", "postgresql://root@127.0.0.1:5432/test")
SUFFIXES = {".txt", ".html", ".htm", ".md"}


def inputs(devset: Path, copies: int) -> list[tuple[str, bytes]]:
    files = [p for p in sorted(devset.iterdir()) if p.suffix in SUFFIXES and p.name != "README.md"] \
        if devset.is_dir() else []
    if not files:
        print(f"devset not found at {devset}; using the sample only")
        files = [REPO / "samples" / "luolong-minzheng-2020.txt"]
    out = []
    for i in range(copies):
        for p in files:
            data = p.read_bytes()
            tail = f"\n<!-- bench {i} {uuid.uuid4()} -->\n".encode()
            out.append((f"{i}-{p.name}", data + tail))
    return out


def in_process(docs: list[tuple[str, bytes]]) -> float:
    from extractors.pipeline import extract_bytes
    from models.options import ExtractOptions
    extract_bytes(docs[0][1], docs[0][0], ExtractOptions())        # warm-up: spaCy, forms
    t = time.perf_counter()
    for name, data in docs:
        extract_bytes(data, name, ExtractOptions())
    return time.perf_counter() - t


def through_service(docs, env: dict, processes: int, run: str) -> float:
    import httpx  # noqa: F401  (TestClient)
    from fastapi.testclient import TestClient
    from worker.api import create_app
    from worker.settings import from_env
    from worker.store import Store, upgrade

    cfg = from_env(env)
    upgrade(cfg.database_url)
    store = Store.from_settings(cfg)
    os.environ.update(env)
    from worker import settings as settings_module
    settings_module.settings.cache_clear()
    from worker.jobs import enqueue_document
    app = create_app(cfg, store=store, enqueue=enqueue_document)
    log = open(Path(env["NIANBAO_HOME"]) / f"worker-{processes}.log", "ab")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "worker", "worker", "-Q", cfg.queue, "-c", str(processes),
         "-Ofair", "--prefetch-multiplier", "1", "--loglevel", "WARNING", "-n", f"bench{processes}-{run}@%h",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=str(REPO), env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        with TestClient(app) as client:
            client.headers["Authorization"] = f"Bearer {env['NIANBAO_ADMIN_TOKEN']}"
            # warm-up document: the pool processes load spaCy before timing starts
            warm = client.post("/documents", files=[("files", ("warm.txt", docs[0][1] + run.encode() + b"w"))])
            _wait(store, [warm.json()["documents"][0]["id"]] * 1)
            for _ in range(processes - 1):
                w = client.post("/documents", files=[("files", ("w.txt", docs[0][1] + uuid.uuid4().bytes))])
                _wait(store, [w.json()["documents"][0]["id"]])
            t = time.perf_counter()
            ids = []
            for i in range(0, len(docs), 20):
                r = client.post("/documents", files=[("files", d) for d in docs[i:i + 20]])
                ids += [d["id"] for d in r.json()["documents"]]
            _wait(store, ids)
            secs = time.perf_counter() - t
            _print_task_times(store, ids)
            return secs
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        store.engine.dispose()


def _print_task_times(store, ids) -> None:
    """Median time a document spent in a worker (claim to result) vs waiting in the queue."""
    from models.tables import Document
    from sqlalchemy import select
    with store.session() as s:
        rows = s.execute(select(Document.created_at, Document.started_at, Document.finished_at)
                         .where(Document.id.in_(ids))).all()
    work = sorted((f - st).total_seconds() for c, st, f in rows)
    print(f"  median in worker {work[len(work) // 2] * 1000:.0f} ms, max {work[-1] * 1000:.0f} ms")


def _wait(store, ids, timeout: float = 900) -> None:
    """One counting query per poll (polling each id would load the machine being measured)."""
    from models.tables import Document
    from sqlalchemy import func, select
    deadline = time.time() + timeout
    ids = list(set(ids))
    while True:
        with store.session() as s:
            done = s.scalar(select(func.count()).select_from(Document).where(
                Document.id.in_(ids), Document.status.in_(("extracted", "needs_review", "failed"))))
        if done == len(ids):
            return
        if time.time() > deadline:
            raise TimeoutError(f"{len(ids) - done} documents not finished")
        time.sleep(0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=8, help="copies of each devset file (default 8)")
    ap.add_argument("--devset", type=Path, default=Path(os.environ.get("NIANBAO_DEVSET") or REPO / ".." / "shared" / "devset"))
    args = ap.parse_args()
    docs = inputs(args.devset.resolve(), args.copies)
    import psycopg
    import redis
    run = uuid.uuid4().hex[:8]
    db = f"nianbao_bench_{run}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{db}"')
    redis_db = 14
    home = Path(tempfile.mkdtemp(prefix="nianbao-bench-"))
    try:
        base = in_process(docs)
        rows = [("in-process (1 process)", base)]
        for n in (1, 2):
            env = {"NIANBAO_HOME": str(home), "NIANBAO_ADMIN_TOKEN": f"bench-{run}",
                   "NIANBAO_DATABASE_URL": PG_ADMIN.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + "/" + db,
                   "NIANBAO_BROKER_URL": f"redis://127.0.0.1:6379/{redis_db}", "NIANBAO_QUEUE": f"bench-{run}-{n}",
                   "NIANBAO_SWEEP_SECONDS": "5"}
            fresh = [(name, data + f"<!-- run {n} -->".encode()) for name, data in docs]   # new bytes per run
            rows.append((f"service, {n} worker process{'es' if n > 1 else ''}", through_service(fresh, env, n, run)))
        print(f"\n{len(docs)} documents ({args.copies} copies of each devset text/HTML/markdown file), "
              f"{os.cpu_count()} CPUs, PostgreSQL + Redis on localhost")
        print(f"{'mode':34} {'seconds':>8} {'docs/min':>9} {'time vs in-process':>19}")
        for name, secs in rows:
            print(f"{name:34} {secs:8.2f} {len(docs) / secs * 60:9.0f} {secs / base:18.2f}x")
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        redis.Redis.from_url(f"redis://127.0.0.1:6379/{redis_db}").flushdb()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
