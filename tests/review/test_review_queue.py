"""worker/review.py: queue, verdicts, relations re-run, spot checks, exports — on SQLite and PostgreSQL."""
from __future__ import annotations

from sqlalchemy import select

from models.tables import AuditLog, Extraction, ReviewItem
from worker import review
from worker.review import ReviewError

from reviewkit import reviewer, seed_text, store_report

APPEAL = ["appeal.review.upheld", "appeal.review.corrected", "appeal.review.other", "appeal.review.pending",
          "appeal.review.total"]


def _claim_all(store, who, doc_id):
    first = review.claim_next(store, who.user_id, prefer_document=doc_id)
    review.claim_document_items(store, who.user_id, doc_id)
    return first, review.my_items(store, who.user_id, document_id=doc_id)


def test_review_queue_one_item_per_flagged_field_total_first(store):
    doc = store_report(store, seed_text().encode())
    items = review.document_items(store, doc)
    assert sorted(i["field_key"] for i in items) == sorted(APPEAL)
    # the total unblocks the relation (a zero total pins its four parts): it comes first
    assert items[0]["field_key"] == "appeal.review.total" and items[0]["priority"] > items[1]["priority"]


def test_review_claim_is_exclusive_and_release_returns_it(store):
    doc = store_report(store, seed_text().encode())
    a, b = reviewer(store), reviewer(store)
    ia = review.claim_next(store, a.user_id, prefer_document=doc)
    ib = review.claim_next(store, b.user_id, prefer_document=doc)
    assert ia["id"] != ib["id"]
    assert review.claim_next(store, a.user_id)["id"] == ia["id"]          # held items come back first
    n = review.claim_document_items(store, a.user_id, doc)
    held_a = {i["id"] for i in review.my_items(store, a.user_id, document_id=doc)}
    held_b = {i["id"] for i in review.my_items(store, b.user_id, document_id=doc)}
    assert n == 3 and not held_a & held_b and len(held_a | held_b) == 5
    assert review.release(store, ib["id"], b.user_id)
    assert review.claim_next(store, a.user_id, prefer_document=doc)["id"] in held_a


def test_review_filters_by_agency_year_reason(store):
    doc = store_report(store, seed_text().encode())
    who = reviewer(store)
    assert review.claim_next(store, who.user_id, agency="不存在的机关") is None
    assert review.claim_next(store, who.user_id, year=1999) is None
    assert review.claim_next(store, who.user_id, reason="no such reason") is None
    item = review.claim_next(store, who.user_id, agency="洛龙区民政局", year=2020, reason="blank cell",
                             prefer_document=doc)
    assert item["document_id"] == doc


def test_review_blank_as_printed_resolves_seed_and_document_becomes_extracted(store):
    doc = store_report(store, seed_text().encode())
    who = reviewer(store)
    _, held = _claim_all(store, who, doc)
    versions_before = len(store.extraction_versions(doc))
    for item in held:
        out = review.decide(store, who, item["id"], "confirmed", blank=True)
    assert out["status"] == "extracted" and out["remaining"] == 0
    data = review.export_document(store, doc)
    assert data["status"] == "extracted"
    for k in APPEAL:
        f = data["fields"][k]
        assert f["value"] is None and f["review"] is False
        assert f["reviewed_by"] == who.name and f["review_note"] == "blank as printed"
    assert len(store.extraction_versions(doc)) == versions_before + 5        # new versions, never overwritten
    with store.session() as s:
        audits = s.scalars(select(AuditLog).where(AuditLog.document_id == doc,
                                                  AuditLog.action == "decision_confirmed")).all()
        assert len(audits) == 5 and all(a.user_id == who.user_id and a.reason == "blank as printed" for a in audits)
        first = s.scalar(select(Extraction).where(Extraction.document_id == doc, Extraction.version == 1))
        assert first.result["fields"]["appeal.review.total"]["review"] is True   # version 1 kept as it was


def test_review_correcting_the_total_pins_the_parts(store):
    doc = store_report(store, seed_text().encode())
    who = reviewer(store)
    first, _ = _claim_all(store, who, doc)
    assert first["field_key"] == "appeal.review.total"
    out = review.decide(store, who, first["id"], "corrected", 0)
    assert out["status"] == "extracted"
    assert set(out["changed"]) == set(APPEAL) - {"appeal.review.total"}
    data = store.document_json(doc)
    assert all(data["fields"][k]["value"] == 0 for k in APPEAL)
    check = next(c for c in data["checks"] if c["relation"] == "appeal_total" and c["group"] == "review")
    assert check["ok"] is True
    assert review.my_items(store, who.user_id, document_id=doc) == []          # pinned items closed


def test_review_accepting_nothing_is_refused(store):
    doc = store_report(store, seed_text().encode())
    who = reviewer(store)
    first, _ = _claim_all(store, who, doc)
    try:
        review.decide(store, who, first["id"], "confirmed")
    except ReviewError as e:
        assert e.code == "no_value"
    else:
        raise AssertionError("accepting a null value must be refused")


def test_review_only_the_holder_decides(store):
    doc = store_report(store, seed_text().encode())
    a, b = reviewer(store), reviewer(store)
    first, _ = _claim_all(store, a, doc)
    try:
        review.decide(store, b, first["id"], "corrected", 0)
    except ReviewError as e:
        assert e.code == "not_yours"
    else:
        raise AssertionError("a reviewer decided another's item")


def _broken_seed() -> bytes:
    old = "一、本年新收政府信息公开申请数量\t\t0\t0"
    text = seed_text()
    assert old in text
    return text.replace(old, "一、本年新收政府信息公开申请数量\t\t1\t0").encode()


def test_review_source_error_marks_relation_and_printed_value_stands(store):
    doc = store_report(store, _broken_seed())
    who = reviewer(store)
    review.claim_document_items(store, who.user_id, doc)
    items = {i["field_key"]: i for i in review.my_items(store, who.user_id, document_id=doc)}
    assert len(items) == 15                       # 10 cells of the broken relations + 5 blank appeal cells
    # cells of a violated relation come before blank cells no relation can pin
    assert review.document_items(store, doc)[0]["priority"] >= 50
    out = review.decide(store, who, items["apply.new.natural_person"]["id"], "source_error")
    data = store.document_json(doc)
    assert data["fields"]["apply.new.natural_person"]["value"] == 1                 # printed value stands
    blamed = [c for c in data["checks"] if c.get("source_error")]
    assert {(c["relation"], c.get("row") or c.get("column")) for c in blamed} == {
        ("row_total", "new"), ("balance", "natural_person")}
    assert all(not data["fields"][k]["review"] for k in items if not k.startswith("appeal."))
    assert out["remaining"] == 5 and data["status"] == "needs_review"


def test_review_correction_that_fixes_the_relation_clears_its_cells(store):
    doc = store_report(store, _broken_seed())
    who = reviewer(store)
    review.claim_document_items(store, who.user_id, doc)
    items = {i["field_key"]: i for i in review.my_items(store, who.user_id, document_id=doc)}
    review.decide(store, who, items["apply.new.natural_person"]["id"], "corrected", 0)
    data = store.document_json(doc)
    assert all(c["ok"] is not False for c in data["checks"])
    assert [k for k, f in data["fields"].items() if f["review"]] == [k for k in data["fields"] if k in APPEAL]


def test_review_decisions_survive_reextraction(store, rules_file):
    doc = store_report(store, seed_text().encode())
    who = reviewer(store)
    first, _ = _claim_all(store, who, doc)
    review.decide(store, who, first["id"], "corrected", 0)          # total = 0 pins the parts
    out = review.reextract_now(store, doc, rules_file=rules_file)
    data = store.document_json(doc)
    assert data["status"] == "extracted" and out["status"] == "extracted"
    assert data["fields"]["appeal.review.total"]["value"] == 0
    assert all(data["fields"][k]["value"] == 0 for k in APPEAL)       # pins re-derived from the decision
    assert review.reviewed_by(store, doc)["appeal.review.total"]["reviewed_by"] == who.name


def test_review_spot_checks_measure_the_silent_error_rate(store):
    doc = store_report(store, seed_text().encode(), spot_check_percent=2)
    with store.session() as s:
        spots = s.scalars(select(ReviewItem).where(ReviewItem.document_id == doc,
                                                   ReviewItem.kind == "spot_check")).all()
        assert len(spots) == round(193 * 0.02)        # 198 fields, 5 flagged
        assert all(sp.priority < 0 for sp in spots)    # after the flagged fields
    before = review.quality_report(store)
    who = reviewer(store)
    review.claim_document_items(store, who.user_id, doc)
    held = [i for i in review.my_items(store, who.user_id, document_id=doc) if i["kind"] == "spot_check"]
    review.decide(store, who, held[0]["id"], "corrected", 99)    # the extractor was silently wrong here
    for it in held[1:]:
        review.decide(store, who, it["id"], "confirmed")
    q = review.quality_report(store)
    assert q["spot_checks_done"] - before["spot_checks_done"] == len(held)
    assert q["silent_errors"] - before["silent_errors"] == 1
    assert 0 < q["silent_error_rate"] <= 1 and q["interval95"][0] <= q["silent_error_rate"] <= q["interval95"][1]
