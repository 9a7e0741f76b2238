"""worker/store.py on SQLite and on the machine's PostgreSQL (a fresh database per session)."""
from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from models.result import Check, ExtractionResult, FieldResult, Meta
from worker.store import Store, fingerprint, upgrade

from testkit import scratch_pg_database



@pytest.fixture(scope="session")
def pg_url():
    """A fresh PostgreSQL database for this session, dropped at the end."""
    with scratch_pg_database("nianbao_store") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.sqlite'}"
        upgrade(url)
        st = Store(url, str(tmp_path / "blobs"), lease_seconds=0.5, max_redeliveries=2)
    else:
        url = request.getfixturevalue("pg_url")
        st = Store(url, "db", lease_seconds=0.5, max_redeliveries=2)
    yield st
    st.engine.dispose()


def _result(sha: str, flagged: bool = True, text: str = "") -> ExtractionResult:
    fields = {
        "apply.new.natural_person": FieldResult(5, 0.99, False, [], 3, (1.0, 2.0, 3.0, 4.0), "5"),
        "appeal.review.upheld": FieldResult(None, 0.2, flagged, ["blank cell"] if flagged else [], 4, None, text),
    }
    return ExtractionResult(source="r.txt", sha256=sha, status="needs_review" if flagged else "extracted",
                            meta=Meta("洛龙区民政局", 2020, "2019"), fields=fields, format="text",
                            checks=[Check("balance", "natural_person", False, ["appeal.review.upheld"])])


def _unique_bytes() -> bytes:
    return f"report {uuid.uuid4()}".encode()


def test_store_same_bytes_same_document(store):
    data = _unique_bytes()
    a = store.add_document(data, "a.txt")
    b = store.add_document(data, "b.txt")
    assert a.created and not b.created and a.id == b.id
    assert store.load_original(a.id) == (data, "a.txt")


def test_store_concurrent_uploads_one_document(store):
    data = _unique_bytes()
    with ThreadPoolExecutor(8) as pool:
        added = list(pool.map(lambda i: store.add_document(data, f"{i}.txt"), range(8)))
    assert len({a.id for a in added}) == 1
    assert sum(a.created for a in added) == 1


def test_store_claim_is_exclusive_and_result_round_trips(store):
    doc = store.add_document(_unique_bytes(), "r.txt")
    c1 = store.claim_document(doc.id, "w1")
    c2 = store.claim_document(doc.id, "w2")
    assert (c1.outcome, c2.outcome) == ("claimed", "busy")
    result = _result(doc.sha256)
    assert store.save_result(doc.id, result, owner="w2") is None          # not the lease holder
    assert store.save_result(doc.id, result, owner="w1") is not None
    out = store.document_json(doc.id)
    expected = result.to_dict()
    assert {k: v for k, v in out.items() if k not in ("id", "version")} == expected
    assert out["id"] == doc.id and out["status"] == "needs_review" and out["version"] == 1
    assert store.claim_document(doc.id, "w3").outcome == "done"
    assert store.list_documents(status="needs_review")[0]["id"] == doc.id


def test_store_dead_lease_is_redelivered_then_poisoned(store):
    doc = store.add_document(_unique_bytes(), "poison.txt")
    outcomes = []
    for i in range(4):
        outcomes.append(store.claim_document(doc.id, f"w{i}").outcome)
        time.sleep(0.6)                                   # the worker "dies": its lease runs out
    assert outcomes[:3] == ["claimed", "claimed", "claimed"] and outcomes[3] == "poisoned"
    out = store.document_json(doc.id)
    assert out["status"] == "failed" and "stopped the worker" in out["error"]
    assert out["error_code"] == "worker_crashed"


def test_store_sweeper_finds_stuck_documents(store):
    doc = store.add_document(_unique_bytes(), "s.txt")
    assert doc.id not in store.stuck_documents()          # fresh: within its queued deadline
    assert doc.id in store.stuck_documents(all_queued=True)   # the broker lost its messages
    store.claim_document(doc.id, "w1")
    time.sleep(0.6)
    assert doc.id in store.stuck_documents()              # running with a dead lease
    assert doc.id not in store.stuck_documents()          # not sent twice before its deadline


def test_store_decisions_survive_reextraction(store):
    doc = store.add_document(_unique_bytes(), "r.txt")
    store.claim_document(doc.id, "w1")
    store.save_result(doc.id, _result(doc.sha256), owner="w1")
    reviewer = store.create_user("rev-" + uuid.uuid4().hex[:6], "reviewer")
    item = store.claim_next_review_item(reviewer)
    assert item is not None and item["field_key"] == "appeal.review.upheld" and item["priority"] == 10
    out = store.record_decision(doc.id, "appeal.review.upheld", "corrected", value=7, reviewer_id=reviewer,
                                item_id=item["id"])
    assert out["status"] == "extracted"
    assert store.document_json(doc.id)["fields"]["appeal.review.upheld"]["value"] == 7
    # a new extractor version re-reads the same printed text: the correction is re-applied
    assert store.request_reextraction(doc.id)
    store.claim_document(doc.id, "w2")
    store.save_result(doc.id, _result(doc.sha256), owner="w2", version_label="new")
    again = store.document_json(doc.id)
    assert again["version"] == 3 and again["status"] == "extracted"
    assert again["fields"]["appeal.review.upheld"] == {**again["fields"]["appeal.review.upheld"],
                                                       "value": 7, "review": False}
    assert [v["kind"] for v in store.extraction_versions(doc.id)] == ["extractor", "review", "extractor"]
    exported = [r for r in store.iter_current_results() if r["id"] == doc.id][0]
    assert exported["fields"]["appeal.review.upheld"]["reviewed_by"].startswith("rev-")
    # printed text read differently -> the decision does not apply, the field stays flagged
    assert store.request_reextraction(doc.id)
    store.claim_document(doc.id, "w3")
    store.save_result(doc.id, _result(doc.sha256, text="8"), owner="w3")
    assert store.document_json(doc.id)["status"] == "needs_review"
    assert fingerprint(doc.sha256, "k", " 1 ") == fingerprint(doc.sha256, "k", "1")


def test_store_review_claims_never_handed_twice(store):
    ids = []
    for _ in range(3):
        doc = store.add_document(_unique_bytes(), "r.txt")
        store.claim_document(doc.id, "w")
        store.save_result(doc.id, _result(doc.sha256), owner="w")
        ids.append(doc.id)
    users = [store.create_user(f"r{i}-{uuid.uuid4().hex[:6]}") for i in range(4)]
    got: list[int] = []
    lock = threading.Lock()

    def grab(u):
        while (item := store.claim_next_review_item(u)) is not None:
            with lock:
                got.append(item["id"])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(grab, users))
    assert len(got) == len(set(got)) and len(got) >= 3


def test_store_tokens_are_hashed(store):
    name = "alice-" + uuid.uuid4().hex[:6]
    token = store.create_token(name, "reviewer")
    p = store.authenticate(token)
    assert p and p.name == name and p.role == "reviewer"
    assert store.authenticate("nb_wrong") is None
    assert store.authenticate("secret-admin", admin_token="secret-admin").is_admin
    from sqlalchemy import select
    from models.tables import Token
    with store.session() as s:
        assert token not in [t.token_hash for t in s.scalars(select(Token))]
    assert store.revoke_tokens(name) == 1 and store.authenticate(token) is None


def test_store_batches_resume(store):
    roots = [f"/archive/{uuid.uuid4().hex}"]
    bid, resumed = store.find_or_start_batch(roots)
    assert not resumed
    assert store.add_batch_items(bid, ["a", "b", "c"]) == 3
    store.set_batch_item(bid, "a", "done", sha256="x" * 64)
    again, resumed = store.find_or_start_batch(roots)
    assert (again, resumed) == (bid, True)
    assert store.add_batch_items(bid, ["a", "b", "c", "d"]) == 1
    assert [i["path"] for i in store.batch_items(bid, "pending")] == ["b", "c", "d"]
    assert store.batch_counts(bid) == {"done": 1, "pending": 3}


def test_store_pages_join_driven_by_count(store):
    doc = store.add_document(_unique_bytes(), "scan.pdf")
    assert store.claim_document(doc.id, "w").outcome == "claimed"
    assert store.start_pages(doc.id, "w", 3)
    assert store.claim_document(doc.id, "x").outcome == "pages"
    for n in (1, 2, 3):
        assert store.claim_page(doc.id, n, f"p{n}").outcome == "claimed"
        assert store.claim_page(doc.id, n, "other").outcome == "busy"
    assert store.save_page(doc.id, 1, "p1", {"page": 1}) == (1, 3)
    assert not store.claim_join(doc.id, "j")
    assert store.save_page(doc.id, 3, "p3", {"page": 3}) == (2, 3)
    time.sleep(0.6)                                        # page 2's worker died
    assert store.pages_needing_work(doc.id) == [2]
    assert store.claim_page(doc.id, 2, "p2b").outcome == "claimed"
    assert store.save_page(doc.id, 2, "p2b", {"page": 2}) == (3, 3)
    assert store.claim_join(doc.id, "j") and not store.claim_join(doc.id, "j2")
    assert store.page_results(doc.id) == [{"page": 1}, {"page": 2}, {"page": 3}]
    assert store.save_result(doc.id, _result(doc.sha256, flagged=False), owner="j")
    assert store.document_json(doc.id)["status"] == "extracted"
