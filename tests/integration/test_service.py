"""The service end to end: real PostgreSQL, real Redis, real Celery worker processes.

Results through the service must equal the in-process ``extract_bytes`` output; faults (a worker
killed with SIGKILL mid-document, Redis restarted mid-batch, duplicate uploads, a poison file)
must lose nothing and process nothing twice. Counts are printed (run with ``-s`` to see them).
"""
from __future__ import annotations

import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from testkit import sibling_conftest

_conf = sibling_conftest(__file__)
REDIS_START, REPO, devset_dir = _conf.REDIS_START, _conf.REPO, _conf.devset_dir
ensure_redis, redis_up, wait_finished = _conf.ensure_redis, _conf.redis_up, _conf.wait_finished

pytestmark = pytest.mark.integration

TEXT_SUFFIXES = {".txt", ".html", ".htm", ".md"}


def _inputs() -> list[Path]:
    files = [REPO / "samples" / "luolong-minzheng-2020.txt"]
    dev = devset_dir()
    if dev.is_dir():
        files += sorted(p for p in dev.iterdir() if p.suffix in TEXT_SUFFIXES and p.name != "README.md")
        # text-layer PDFs exercise the per-page fan-out and the database-driven join
        files += sorted(p for p in dev.iterdir() if p.suffix == ".pdf" and "scan" not in p.name)
    return files


def _in_process(data: bytes, name: str) -> dict:
    from extractors.pipeline import extract_bytes
    from models.options import ExtractOptions
    return extract_bytes(data, name, ExtractOptions()).to_dict()


def _extraction_counts(store, ids) -> dict[int, int]:
    from models.tables import Extraction
    with store.session() as s:
        rows = s.execute(select(Extraction.document_id, func.count()).where(Extraction.document_id.in_(list(ids)))
                         .group_by(Extraction.document_id)).all()
    return {d: n for d, n in rows}


def _upload(client, files: list[tuple[str, bytes]]) -> list[dict]:
    r = client.post("/documents", files=[("files", (name, data)) for name, data in files])
    assert r.status_code == 202, r.text
    return r.json()["documents"]


def _report(title: str, uploaded: int, ids, infos, counts) -> dict:
    completed = sum(1 for i in set(ids) if infos[i]["status"] in ("extracted", "needs_review", "failed"))
    out = {"uploaded": uploaded, "documents": len(set(ids)), "completed": completed,
           "lost": len(set(ids)) - completed, "duplicated": sum(1 for n in counts.values() if n > 1)}
    print(f"\n[{title}] " + ", ".join(f"{k} {v}" for k, v in out.items()))
    return out


def test_service_results_equal_in_process(client, store, start_worker):
    files = _inputs()
    if not devset_dir().is_dir():
        print(f"\n(devset not found at {devset_dir()}: set NIANBAO_DEVSET; running on the sample only)")
    start_worker("equal", concurrency=2)
    payload = [(p.name, p.read_bytes()) for p in files]
    docs = _upload(client, payload)
    ids = [d["id"] for d in docs]
    infos = wait_finished(store, ids, timeout=300)
    counts = _extraction_counts(store, ids)
    mismatched = []
    for (name, data), doc in zip(payload, docs):
        got = client.get(f"/documents/{doc['id']}").json()
        assert got["id"] == doc["id"] and got["status"] == infos[doc["id"]]["status"]
        want = _in_process(data, name)
        got = {k: v for k, v in got.items() if k not in ("id", "version")}
        if got != want:
            mismatched.append(name)
    fanned = [n for (n, _), d in zip(payload, docs) if (infos[d["id"]]["pages_expected"] or 0) > 1]
    _report("devset through the service", len(payload), ids, infos, counts)
    print(f"  fanned out per page: {len(fanned)} ({', '.join(fanned)}); statuses: "
          + ", ".join(f"{s} {sum(1 for v in infos.values() if v['status'] == s)}"
                      for s in ("extracted", "needs_review", "failed")))
    assert not mismatched, f"service result differs from in-process for {mismatched}"
    assert all(n == 1 for n in counts.values())


def test_service_duplicate_uploads_one_document(client, store, start_worker):
    data = (REPO / "samples" / "luolong-minzheng-2020.txt").read_bytes() + f"\n<!-- dup {uuid.uuid4()} -->\n".encode()
    start_worker("dup")
    with ThreadPoolExecutor(6) as pool:
        batches = list(pool.map(lambda i: _upload(client, [(f"copy{i}-{j}.txt", data) for j in range(3)]), range(6)))
    ids = [d["id"] for b in batches for d in b]
    infos = wait_finished(store, ids)
    counts = _extraction_counts(store, ids)
    out = _report("duplicate uploads", len(ids), ids, infos, counts)
    assert out["documents"] == 1 and counts == {ids[0]: 1}
    assert sum(1 for b in batches for d in b if not d["duplicate"]) == 1


def test_service_kill9_worker_mid_document(client, store, start_worker):
    base = (REPO / "samples" / "luolong-minzheng-2020.txt").read_bytes()
    name = f"slow-{uuid.uuid4().hex[:8]}.txt"
    data = base + f"\n<!-- {name} -->\n".encode()
    w1 = start_worker("victim")
    [doc] = _upload(client, [(name, data)])
    deadline = time.time() + 30
    while store.document_info(doc["id"])["status"] != "running":
        assert time.time() < deadline, "the worker never started the document"
        time.sleep(0.1)
    time.sleep(1.0)                                  # well inside the 6 s extraction
    w1.kill9()
    assert store.document_info(doc["id"])["status"] == "running"
    start_worker("rescuer")
    infos = wait_finished(store, [doc["id"]], timeout=120)
    counts = _extraction_counts(store, [doc["id"]])
    _report("kill -9 mid-document", 1, [doc["id"]], infos, counts)
    info = infos[doc["id"]]
    print(f"  attempts {info['attempts']}, redeliveries {info['redeliveries']}")
    assert counts == {doc["id"]: 1} and info["redeliveries"] == 1
    got = client.get(f"/documents/{doc['id']}").json()
    assert {k: v for k, v in got.items() if k not in ("id", "version")} == _in_process(data, name)


def test_service_kill9_during_page_ocr(client, store, start_worker):
    """A multi-page PDF is read page by page; kill -9 while pages are in flight."""
    from worker.jobs import _fanout_api
    dev = devset_dir()
    scans = sorted(dev.glob("*-form-scan.pdf")) if dev.is_dir() else []
    if _fanout_api() is None or not scans:
        pytest.skip("needs the PDF reader's per-page API and a devset scan PDF")
    from extractors.pipeline import extract_bytes
    from models.options import ExtractOptions
    probe = extract_bytes(scans[0].read_bytes(), scans[0].name, ExtractOptions())
    if probe.error_code == "internal_error":
        pytest.skip(f"OCR not usable here: {probe.error}")
    data = scans[0].read_bytes() + f"\n%{uuid.uuid4()}\n".encode()   # new bytes, same PDF
    w1 = start_worker("ocr-victim", concurrency=2)
    [doc] = _upload(client, [(scans[0].name, data)])
    deadline = time.time() + 120
    while True:
        info = store.document_info(doc["id"])
        if info["pages_expected"] and 0 < info["pages_done"] < info["pages_expected"]:
            break
        assert info["status"] not in ("extracted", "needs_review", "failed"), "finished before the kill"
        assert time.time() < deadline, "pages never started"
        time.sleep(0.05)
    w1.kill9()
    print(f"\n  killed at page {info['pages_done']}/{info['pages_expected']}")
    start_worker("ocr-rescuer", concurrency=2)
    infos = wait_finished(store, [doc["id"]], timeout=600)
    counts = _extraction_counts(store, [doc["id"]])
    _report("kill -9 during per-page OCR", 1, [doc["id"]], infos, counts)
    assert counts == {doc["id"]: 1}
    got = client.get(f"/documents/{doc['id']}").json()
    want = extract_bytes(data, scans[0].name, ExtractOptions()).to_dict()
    diff = _diff(got, want)
    assert not diff, "\n".join(diff[:8])


def _diff(got: dict, want: dict) -> list[str]:
    """Keys whose values differ between a service result and an in-process one."""
    out = [k for k in set(got) | set(want) if k not in ("id", "version", "fields") and got.get(k) != want.get(k)]
    gf, wf = got.get("fields", {}), want.get("fields", {})
    out += [f"fields.{k}: {gf.get(k)} != {wf.get(k)}" for k in set(gf) | set(wf) if gf.get(k) != wf.get(k)]
    return sorted(out)


def test_service_redis_restart_mid_batch(client, store, start_worker):
    base = (REPO / "samples" / "luolong-minzheng-2020.txt").read_bytes()
    tag = uuid.uuid4().hex[:8]
    files = []
    for i in range(24):
        name = (f"slow-{tag}-{i}.txt" if i % 6 == 0 else f"batch-{tag}-{i}.txt")
        files.append((name, base + f"\n<!-- {name} -->\n".encode()))
    start_worker("redis-victim", concurrency=1)
    docs = _upload(client, files)
    ids = [d["id"] for d in docs]
    deadline = time.time() + 60
    while sum(1 for i in ids if store.document_info(i)["status"] in ("extracted", "needs_review", "failed")) < 2:
        assert time.time() < deadline
        time.sleep(0.1)
    try:
        subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], check=False, capture_output=True)
        for _ in range(50):
            if not redis_up():
                break
            time.sleep(0.1)
        done_at_restart = sum(1 for i in ids if store.document_info(i)["status"] in ("extracted", "needs_review", "failed"))
        time.sleep(1.0)
    finally:
        subprocess.run(REDIS_START, shell=True, check=False)
        ensure_redis()
    infos = wait_finished(store, ids, timeout=240)
    counts = _extraction_counts(store, ids)
    print(f"\n  Redis restarted with {done_at_restart}/{len(ids)} done")
    out = _report("Redis restart mid-batch", len(files), ids, infos, counts)
    assert out["lost"] == 0 and out["duplicated"] == 0 and out["completed"] == len(files)


def test_service_poison_file_ends_failed(client, store, start_worker):
    name = f"poison-{uuid.uuid4().hex[:8]}.txt"
    start_worker("poisoned")
    [doc] = _upload(client, [(name, name.encode() * 50)])
    infos = wait_finished(store, [doc["id"]], timeout=120)
    got = client.get(f"/documents/{doc['id']}").json()
    print(f"\n[poison] status {got['status']}, redeliveries {infos[doc['id']]['redeliveries']}: {got['error']}")
    assert got["status"] == "failed" and got["error_code"] == "worker_crashed"
    # the worker survives its pool process being killed and still serves others
    ok = (REPO / "samples" / "luolong-minzheng-2020.txt").read_bytes() + f"\n<!-- {uuid.uuid4()} -->".encode()
    [doc2] = _upload(client, [("after-poison.txt", ok)])
    assert wait_finished(store, [doc2["id"]])[doc2["id"]]["status"] in ("extracted", "needs_review")


def test_service_auth_and_errors(client):
    anon = client.get("/documents", headers={"Authorization": ""})
    assert anon.status_code == 401 and anon.json()["code"] == "unauthorized"
    assert client.get("/health", headers={"Authorization": ""}).json()["database"] is True
    assert client.get("/documents/999999").status_code == 404
    token = client.post("/tokens", json={"name": f"rev-{uuid.uuid4().hex[:6]}", "role": "reviewer"}).json()["token"]
    rev = {"Authorization": f"Bearer {token}"}
    assert client.get("/documents?status=queued", headers=rev).status_code == 200
    assert client.post("/tokens", json={"name": "x"}, headers=rev).status_code == 403
    assert client.get("/documents?status=bogus", headers=rev).status_code == 422
    r = client.post("/documents", headers=rev, content=b"not multipart", )
    assert r.status_code == 415


def test_service_cli_serve_and_health(service_db, tmp_path):
    """``nianbao serve`` starts uvicorn on the configured database."""
    import os
    import socket
    import httpx
    ENV = _conf.ENV
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys_executable(), "-c", "from nianbao.cli import main; main()", "serve", "--port", str(port)],
                            env={**os.environ, **ENV}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.HTTPError:
                assert time.time() < deadline and proc.poll() is None, "nianbao serve did not start"
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["broker"] is True
        assert httpx.get(f"http://127.0.0.1:{port}/documents").status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def sys_executable() -> str:
    import sys
    return sys.executable
