"""Plain helpers of the review tests (fixtures live in conftest.py)."""
from __future__ import annotations

import uuid
from pathlib import Path

from worker.store import Principal, Store

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "samples" / "luolong-minzheng-2020.txt"
ARTIFACTS = REPO / "tests" / "artifacts"


def store_report(store: Store, data: bytes, filename: str = "report.txt", *, unique: bool = True,
                 spot_check_percent: float = 0) -> int:
    """Store a report's bytes (made unique per call so databases shared by a session never
    dedupe two tests' documents), extract it as a worker would, and prepare its review items."""
    from extractors.pipeline import extract_bytes
    from worker import review
    if unique:
        data = data + f"\n\n附：{uuid.uuid4().hex}\n".encode()
    added = store.add_document(data, filename, format="text")
    assert store.claim_document(added.id, "test-worker").outcome == "claimed"
    store.save_result(added.id, extract_bytes(data, filename), owner="test-worker")
    review.after_extraction(store, added.id, spot_check_percent=spot_check_percent, seed=7)
    return added.id


def seed_text() -> str:
    return SEED.read_text("utf-8")


def reviewer(store: Store, role: str = "reviewer") -> Principal:
    name = f"{role}-{uuid.uuid4().hex[:6]}"
    return Principal(store.create_user(name, role), name, role)
