"""worker/archive.py: a real archive run in a subprocess, killed, interrupted, resumed."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from models.options import Limits
from models.tables import AuditLog, Batch, BatchItem, Document, Extraction
from treegen import build_tree, devset_dir, unique_report
from worker.archive import Input, Skipped, discover, run_archive

REPO = Path(__file__).resolve().parents[2]
FINAL = ("done", "duplicate", "junk", "failed")


def _start(root: Path, env: dict[str, str], log: Path, workers: int = 2) -> subprocess.Popen:
    cmd = [sys.executable, "-c", "from nianbao.cli import main; main()", "archive", str(root),
           "--workers", str(workers), "--no-checks"]
    # A new session: the test can signal the archive and its pool workers, and nothing else.
    return subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **env, "COLUMNS": "120"},
                            stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


def _final_count(store) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(BatchItem).where(BatchItem.state.in_(FINAL))) or 0


def _wait_for(store, proc: subprocess.Popen, at_least: int, timeout: float = 240) -> int:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        n = _final_count(store)
        if n >= at_least:
            return n
        if proc.poll() is not None:
            pytest.fail(f"the archive run ended (rc {proc.returncode}) before {at_least} files were handled")
        time.sleep(0.05)
    pytest.fail("the archive run made no progress")


def test_archive_interrupted_twice_then_resumed_processes_each_report_once(tmp_path, nianbao_env, store):
    if devset_dir() is None:
        print("devset not found (../shared/devset or NIANBAO_DEVSET): using generated reports and the seed only")
    tree = build_tree(tmp_path / "archive", n_unique=300, n_copies=60)
    assert tree.files > 300 and tree.copies >= 30
    log = tmp_path / "archive.log"

    # 1. a crash: the whole process group is killed mid-run
    proc = _start(tree.root, nianbao_env, log)
    _wait_for(store, proc, 40)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    after_crash = _final_count(store)
    assert after_crash < tree.files - 40, "the run finished before it could be killed; grow the tree"

    # 2. Ctrl-C: the batch is saved as interrupted, exit code 130
    proc = _start(tree.root, nianbao_env, log)
    _wait_for(store, proc, after_crash + 40)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(60) == 130, log.read_text(errors="replace")[-3000:]
    with store.session() as s:
        assert s.scalar(select(Batch.state)) == "interrupted"
    after_ctrl_c = _final_count(store)
    assert after_ctrl_c < tree.files

    # 3. the rerun finishes
    proc = _start(tree.root, nianbao_env, log)
    assert proc.wait(600) == 0, log.read_text(errors="replace")[-3000:]
    output = log.read_text(errors="replace")
    assert "resuming:" in output and "rerun the same command to resume" in output

    items = {i["path"]: i for i in store.batch_items(1)}
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Batch)) == 1          # one batch, resumed twice
        assert s.scalar(select(Batch.state)) == "done"
        extractions = Counter(s.scalars(select(Extraction.document_id)))
        extracted_audits = Counter(s.scalars(select(AuditLog.document_id).where(AuditLog.action == "extracted")))
        docs = {d.sha256: d for d in s.scalars(select(Document))}

    assert not [p for p, i in items.items() if i["state"] not in FINAL]
    # every report: one document, extracted exactly once; one item done, its copies merged
    for digest, keys in tree.reports.items():
        doc = docs[digest]
        assert extractions[doc.id] == 1 and extracted_audits[doc.id] == 1, (keys, extractions[doc.id])
        states = Counter(items[k]["state"] for k in keys)
        assert states == Counter({"done": 1, "duplicate": len(keys) - 1}), (keys, states)
        assert {items[k]["document_id"] for k in keys} == {doc.id}
        assert doc.status in ("extracted", "needs_review"), (keys, doc.error)
    # junk reported with a reason, never as a report
    for key, why in tree.junk.items():
        assert items[key]["state"] == "junk", (key, why, items[key])
        assert items[key]["error"], key
    assert set(items) == {k for keys in tree.reports.values() for k in keys} | set(tree.junk)
    counts = store.batch_counts(1)
    assert counts == {"done": len(tree.reports), "duplicate": tree.copies, "junk": len(tree.junk)}
    # no document was extracted twice across the three runs
    assert max(extractions.values()) == 1


def test_archive_rerun_of_finished_batch_starts_new_batch_and_extracts_nothing(tmp_path, store):
    root = tmp_path / "a"
    root.mkdir()
    for i in range(3):
        (root / f"r{i}.txt").write_bytes(unique_report(i))
    first = run_archive(store, [root], workers=1)
    assert first.counts == {"done": 3} and first.extracted_now == 3
    second = run_archive(store, [root], workers=1)
    assert second.batch_id != first.batch_id and not second.resumed
    assert second.extracted_now == 0 and second.counts == {"done": 3}   # linked to the stored documents


def test_archive_pool_saves_in_workers_and_merges_duplicates(tmp_path, store):
    root = tmp_path / "a"
    (root / "x").mkdir(parents=True)
    for i in range(12):
        (root / f"r{i}.txt").write_bytes(unique_report(i))
        (root / "x" / f"copy{i}.txt").write_bytes(unique_report(i))
    s = run_archive(store, [root], workers=2)
    assert s.counts == {"done": 12, "duplicate": 12} and s.extracted_now == 12


def _zip(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name) if name.startswith(("/", "..")) else name, data)
    return path


def test_discover_refuses_zip_slip_bombs_and_links_out_of_the_tree(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    _zip(root / "a.zip", {"ok/r.txt": b"report", "../../etc/evil.txt": b"x", "/abs.txt": b"x",
                          "big.txt": b"\0" * 5_000_000, "in.zip": b"PK\x03\x04"})
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    (root / "out.txt").symlink_to(outside)
    (root / "in.txt").write_text("inside")
    (root / "in-link.txt").symlink_to(root / "in.txt")
    (root / "dirlink").symlink_to(tmp_path, target_is_directory=True)
    found = {f.key: f for f in discover([root], Limits())}
    codes = {k: f.code for k, f in found.items() if isinstance(f, Skipped)}
    z = str(root / "a.zip")
    assert codes[f"{z}!../../etc/evil.txt"] == "zip_unsafe_path"
    assert codes[f"{z}!/abs.txt"] == "zip_unsafe_path"
    assert codes[f"{z}!big.txt"] == "zip_bomb"             # 5 MB of zeros: ratio ~1000:1
    assert codes[f"{z}!in.zip"] == "zip_nested"
    assert codes[str(root / "out.txt")] == "symlink_outside"
    assert codes[str(root / "dirlink")] == "symlink_dir"
    assert isinstance(found[f"{z}!ok/r.txt"], Input)
    assert isinstance(found[str(root / "in-link.txt")], Input)   # a link inside the tree is fine


def test_discover_caps_zip_members_and_total_size(tmp_path):
    z = _zip(tmp_path / "many.zip", {f"r{i}.txt": b"x" * 100 for i in range(10)})
    found = list(discover([z], Limits(max_zip_members=4, max_zip_total_bytes=250)))
    inputs = [f for f in found if isinstance(f, Input)]
    skipped = Counter(f.code for f in found if isinstance(f, Skipped))
    assert len(inputs) == 2 and skipped == {"zip_too_large": 2, "zip_too_many": 6}


def test_archive_reports_missing_and_bad_zip_without_stopping(tmp_path, store):
    root = tmp_path / "a"
    root.mkdir()
    (root / "broken.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    (root / "r.txt").write_bytes(unique_report(1))
    s = run_archive(store, [root], workers=1)
    items = {Path(i["path"]).name: i for i in store.batch_items(s.batch_id)}
    assert items["broken.zip"]["state"] == "junk" and "zip" in items["broken.zip"]["error"]
    assert items["r.txt"]["state"] == "done"


def test_archive_queue_mode_enqueues_and_waits_for_the_service(tmp_path, store):
    """--queue: documents go to the service's enqueue function; the run waits for them to finish
    (here a fake service finishes them in-process)."""
    from extractors.pipeline import extract_bytes
    root = tmp_path / "a"
    root.mkdir()
    for i in range(3):
        (root / f"r{i}.txt").write_bytes(unique_report(i))
    (root / "dup.txt").write_bytes(unique_report(0))
    sent = []

    def enqueue(doc_id: int) -> None:
        sent.append(doc_id)
        data, name = store.load_original(doc_id)
        store.save_result(doc_id, extract_bytes(data, name))

    s = run_archive(store, [root], queue=True, enqueue=enqueue, queue_poll_seconds=0.01)
    assert sorted(sent) == sorted(set(sent)) and len(sent) == 3
    assert s.counts == {"done": 3, "duplicate": 1}


def _patched_extract(real):
    def extract(data, source, options):
        name = Path(source).name          # (the test's tmp_path has "crash" in it too)
        if name.startswith("crash"):
            os._exit(3)                    # a native reader taking the worker process down
        if name.startswith("slow"):
            time.sleep(60)                 # a reader stuck on one file
        return real(data, source, options)
    return extract


def test_archive_worker_crash_fails_only_that_file(tmp_path, store, monkeypatch):
    import worker.archive as archive
    monkeypatch.setattr(archive, "extract_bytes", _patched_extract(archive.extract_bytes))  # inherited by fork
    root = tmp_path / "a"
    root.mkdir()
    for i in range(6):
        (root / f"r{i}.txt").write_bytes(unique_report(i))
    (root / "crash.txt").write_bytes(unique_report(100))
    s = run_archive(store, [root], workers=2)
    items = {Path(i["path"]).name: i for i in store.batch_items(s.batch_id)}
    assert items["crash.txt"]["state"] == "failed" and "stopped the worker" in items["crash.txt"]["error"]
    assert all(items[f"r{i}.txt"]["state"] == "done" for i in range(6)), [(k, i["state"], i["error"]) for k, i in items.items()]


def test_archive_stuck_file_times_out_and_the_batch_goes_on(tmp_path, store, monkeypatch):
    import worker.archive as archive
    from models.options import ExtractOptions
    monkeypatch.setattr(archive, "extract_bytes", _patched_extract(archive.extract_bytes))
    monkeypatch.setattr(archive, "_POLL_SECONDS", 0.2)
    root = tmp_path / "a"
    root.mkdir()
    for i in range(4):
        (root / f"r{i}.txt").write_bytes(unique_report(i))
    (root / "slow.txt").write_bytes(unique_report(100))
    options = ExtractOptions(limits=Limits(max_seconds_per_document=4))
    t0 = time.monotonic()
    s = run_archive(store, [root], workers=2, options=options)
    assert time.monotonic() - t0 < 30
    items = {Path(i["path"]).name: i for i in store.batch_items(s.batch_id)}
    assert items["slow.txt"]["state"] == "failed" and "took over" in items["slow.txt"]["error"]
    assert all(items[f"r{i}.txt"]["state"] == "done" for i in range(4)), [(k, i["state"], i["error"]) for k, i in items.items()]


def test_archive_resume_extracts_an_original_whose_copy_was_merged_before_the_stop(tmp_path, store):
    """Regression: stopped after a copy was marked duplicate but before its original's result was
    saved; the rerun must extract the original, not call it a duplicate of an empty document."""
    root = tmp_path / "a"
    root.mkdir()
    data = unique_report(5)
    (root / "a-original.txt").write_bytes(data)
    (root / "b-copy.txt").write_bytes(data)
    batch_id, _ = store.find_or_start_batch([str(root)])
    store.add_batch_items(batch_id, [str(root / "a-original.txt"), str(root / "b-copy.txt")])
    added = store.add_document(data, str(root / "a-original.txt"), format="text")      # queued, no result
    store.set_batch_item(batch_id, str(root / "b-copy.txt"), "duplicate", sha256=added.sha256,
                         size=len(data), document_id=added.id)
    s = run_archive(store, [root], workers=1)
    assert s.resumed and s.extracted_now == 1
    assert s.counts == {"done": 1, "duplicate": 1}
    assert store.document_info(added.id)["status"] in ("extracted", "needs_review")
