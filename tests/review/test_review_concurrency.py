"""Two (and more) reviewers claim from one queue at once: no item is handed to two of them.

Each reviewer has its own ``Store`` (own engine and connections), as separate API processes
would; on PostgreSQL the claim is ``FOR UPDATE SKIP LOCKED`` + a conditional ``UPDATE``."""
from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import select

from models.tables import ReviewItem
from worker import review
from worker.store import Store

from reviewkit import reviewer, seed_text, store_report


@pytest.mark.integration
@pytest.mark.parametrize("reviewers", [2, 6])
def test_review_concurrent_claims_never_share_an_item(review_pg_url, reviewers):
    setup = Store(review_pg_url, "db")
    docs = [store_report(setup, seed_text().encode(), f"r{i}.txt") for i in range(8)]
    users = [reviewer(setup).user_id for _ in range(reviewers)]
    with setup.session() as s:
        expected = set(s.scalars(select(ReviewItem.id).where(ReviewItem.document_id.in_(docs),
                                                              ReviewItem.state == "open")))
    assert len(expected) == 40
    got: dict[int, list[int]] = {u: [] for u in users}
    errors: list[BaseException] = []
    start = threading.Barrier(reviewers)

    def work(user_id: int) -> None:
        st = Store(review_pg_url, "db")
        try:
            start.wait()
            while True:
                item = review.claim_next(st, user_id, prefer_document=None)
                if item is None or item["id"] in got[user_id]:
                    break
                if item["document_id"] not in docs:       # another test's leftovers: leave them
                    review.release(st, item["id"], user_id)
                    break
                got[user_id].append(item["id"])
                # hold it (claim_next returns held items first): mark it done as a decision would
                with st.session() as s:
                    s.get(ReviewItem, item["id"]).state = "done"
        except BaseException as e:       # surfaced below
            errors.append(e)
        finally:
            st.engine.dispose()

    threads = [threading.Thread(target=work, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    handed = Counter(i for ids in got.values() for i in ids)
    assert [i for i, n in handed.items() if n > 1] == []            # nobody got an item twice
    assert set(handed) == expected                                  # and every item was handed out
    assert sum(1 for ids in got.values() if ids) >= 2               # the work was really shared
    print(f"\n{reviewers} reviewers: " + ", ".join(f"{len(ids)} items" for ids in got.values()))
    setup.engine.dispose()


@pytest.mark.integration
def test_review_concurrent_document_claims_split_cleanly(review_pg_url):
    """Reviewers taking whole documents (the web page's j/k set) still never share an item."""
    setup = Store(review_pg_url, "db")
    docs = [store_report(setup, seed_text().encode(), f"d{i}.txt") for i in range(4)]
    users = [reviewer(setup).user_id for _ in range(4)]
    start = threading.Barrier(len(users))
    errors: list[BaseException] = []
    taken: list[int] = []

    def work(user_id: int) -> None:
        st = Store(review_pg_url, "db")
        try:
            start.wait()
            for d in docs:
                taken.append(review.claim_document_items(st, user_id, d))
        except BaseException as e:
            errors.append(e)
        finally:
            st.engine.dispose()

    threads = [threading.Thread(target=work, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    with setup.session() as s:
        rows = s.execute(select(ReviewItem.id, ReviewItem.state, ReviewItem.claimed_by)
                         .where(ReviewItem.document_id.in_(docs))).all()
    assert len(rows) == 20 and all(state == "claimed" and by in users for _, state, by in rows)
    assert sum(taken) == 20                 # each item was taken once: no claim overwrote another
    setup.engine.dispose()
