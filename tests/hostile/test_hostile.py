"""Every hostile input (tests/hostile/make_corpus.py) through ``extract_path``, ``extract_bytes``,
``nianbao archive`` and ``POST /documents`` + one worker step, each in a subprocess under an RSS
cap and a timeout: it must end ``failed`` with one sentence (or as a correct extraction for the
real report in disguise), never crash, hang, blow the memory cap or write outside the work area."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from hostilekit import CASES, REPO, Outcome, run_isolated, record

CHILD = str(Path(__file__).resolve().parent / "_child.py")
SEED = REPO / "samples" / "luolong-minzheng-2020.txt"


def one_sentence(msg: str | None) -> bool:
    return bool(msg) and msg.endswith(".") and "\n" not in msg and "Traceback" not in msg \
        and ". " not in msg.rstrip(".") and len(msg) < 300


@pytest.fixture(scope="session")
def seed_fields() -> str:
    o, out, err = run_isolated([CHILD, "path", str(SEED)])
    assert o.status in ("extracted", "needs_review"), err
    return o.extra["fields"]


def _check(name: str, o, err: str, seed_fields: str) -> None:
    assert o.killed is None, f"{name}: {o.killed}\n{err[-2000:]}"
    expected = CASES[name][1]
    if expected == "failed":
        assert o.status == "failed", f"{name}: {o.status}"
        assert o.code != "internal_error", f"{name}: {o.error}\n{err[-2000:]}"
        assert one_sentence(o.error), f"{name}: not one sentence: {o.error!r}"
    else:
        assert o.status in ("extracted", "needs_review"), f"{name}: {o.status} {o.error}"
        if expected == "ok":
            assert o.extra["fields"] == seed_fields, f"{name}: fields differ from the UTF-8 report"
        else:
            assert o.extra["n_fields"] > 100


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("mode", ["path", "bytes"])
def test_hostile_extract(corpus, seed_fields, mode, name):
    o, _out, err = run_isolated([CHILD, mode, str(corpus[name])])
    record(f"extract_{mode}", name, o)
    _check(name, o, err, seed_fields)


def _snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if not p.is_symlink()}


def test_hostile_archive_walker(corpus, tmp_path):
    """``nianbao archive`` over the whole corpus: every file ends junk/failed/done, the real
    reports done; nothing appears outside NIANBAO_HOME (canary dir, /tmp targets of zip-slip)."""
    base = corpus["empty.txt"].parent.parent
    canary = base / "canary"
    before = _snapshot(base)
    home = tmp_path / "home"
    work = tmp_path / "work"
    work.mkdir()
    slip_targets = [Path("/tmp/nianbao-slip-pwned.txt"), Path("/tmp/nianbao-abs-pwned.txt")]
    for p in slip_targets:
        p.unlink(missing_ok=True)
    o, out, err = run_isolated(["-c", "import sys; from nianbao.cli import main; sys.argv[0] = 'nianbao'; main()",
                                "archive", str(base / "corpus"), "--workers", "1", "--no-checks"],
                               env={"NIANBAO_HOME": str(home), "NIANBAO_DATABASE_URL": "",
                                    "NIANBAO_BLOBS": ""}, cwd=str(work), timeout=240, rss_cap_mib=1536)
    record("archive", "(whole corpus)", o if o.status else o.__class__(
        "finished" if o.killed is None else o.killed, None, "", o.seconds, o.peak_rss_mib, o.killed))
    assert o.killed is None, err[-3000:]
    assert _snapshot(base) == before, "the archive run changed the corpus or the canary dir"
    assert sorted(p.name for p in canary.iterdir()) == ["keep.txt"]
    assert not any(p.exists() for p in slip_targets)
    assert list(work.iterdir()) == [], "the archive wrote into its working directory"

    from worker.store import Store
    store = Store(f"sqlite:///{home / 'nianbao.sqlite'}", str(home / "blobs"))
    try:
        from sqlalchemy import select
        from models.tables import Batch
        with store.session() as s:
            batch_id = s.scalars(select(Batch.id)).all()[-1]
        items = store.batch_items(batch_id)
    finally:
        store.engine.dispose()
    states = {Path(i["path"].split("!")[0]).name + ("!" + i["path"].split("!")[1] if "!" in i["path"] else ""):
              (i["state"], i["error"]) for i in items}
    for key, (state, error) in sorted(states.items()):
        OUT = "done" if state in ("done", "duplicate") else state
        name = key.split("!")[0]
        record("archive", key[:22], o.__class__(OUT, None, error, 0.0, 0))
        assert state in ("done", "duplicate", "junk", "failed"), key
        if state in ("junk", "failed"):
            assert one_sentence(error), f"{key}: {error!r}"
        if "!" in key:
            continue
        if CASES[name][1] in ("ok", "read"):
            assert state in ("done", "duplicate"), f"{key}: {state} {error}"
    assert all(Path(k.split("!")[0]).name in CASES for k in states)


def test_hostile_upload_endpoint(corpus, tmp_path, seed_fields, monkeypatch):
    """``POST /documents`` with each input, then one worker step on it in a capped subprocess:
    the upload is accepted (202) or refused with one sentence (413 over the size limit), and the
    stored document ends failed with one sentence, or extracted for the real report."""
    from fastapi.testclient import TestClient
    from worker.api import create_app
    from worker.settings import from_env
    from worker.store import Store, upgrade
    monkeypatch.setenv("NIANBAO_RULES", str(tmp_path / "rules.json"))
    url = f"sqlite:///{tmp_path / 'api.sqlite'}"
    blobs = str(tmp_path / "blobs")
    upgrade(url)
    store = Store(url, blobs)
    cfg = from_env({"NIANBAO_HOME": str(tmp_path), "NIANBAO_DATABASE_URL": url, "NIANBAO_ADMIN_TOKEN": "adm-x1",
                    "NIANBAO_BROKER_URL": "memory://", "NIANBAO_MAX_UPLOAD_MB": "16"})
    app = create_app(cfg, store, enqueue=lambda _id: None, migrate=False)
    token = store.create_token("uploader", "reviewer")
    problems = []
    with TestClient(app) as client:
        for name in sorted(CASES):
            path = corpus[name]
            if path.stat().st_size > 64 * 2**20:          # the sparse 200 MB file: refused on the way in
                with open(path, "rb") as f:
                    data = f.read(17 * 2**20)
            else:
                data = path.read_bytes()
            r = client.post("/documents", headers={"Authorization": f"Bearer {token}"},
                            files={"files": (name, data)})
            if r.status_code == 413:
                record("upload", name, Outcome("rejected 413", r.json()["code"], r.json()["error"], 0.0, 0))
                if not one_sentence(r.json()["error"]) or CASES[name][1] != "failed":
                    problems.append((name, r.status_code, r.text))
                continue
            assert r.status_code == 202, (name, r.status_code, r.text)
            doc = r.json()["documents"][0]
            if doc["duplicate"]:
                continue
            o, _out, err = run_isolated([CHILD, "worker", url, str(doc["id"]), blobs])
            record("upload", name, o)
            try:
                assert o.killed is None, f"{name}: {o.killed}\n{err[-2000:]}"
                if CASES[name][1] == "failed":
                    assert o.status == "failed" and o.code != "internal_error" and one_sentence(o.error), \
                        (name, o.status, o.error)
                else:
                    assert o.status in ("extracted", "needs_review") and o.extra["n_fields"] > 100, (name, o.status)
            except AssertionError as e:
                problems.append(str(e))
    store.engine.dispose()
    assert not problems, problems
