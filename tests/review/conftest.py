"""Fixtures of the review tests: a store on SQLite or on the machine's PostgreSQL (a fresh
database per session, dropped at the end), the seed report stored and extracted, users."""
from __future__ import annotations


import pytest

from worker.store import Store, upgrade

from testkit import scratch_pg_database



@pytest.fixture(scope="session")
def review_pg_url():
    """A fresh PostgreSQL database for this session's review tests, dropped at the end."""
    with scratch_pg_database("nianbao_review") as url:
        yield url


@pytest.fixture
def rules_file(tmp_path, monkeypatch):
    """A per-test rule file (``NIANBAO_RULES``), so learning never touches a real installation."""
    path = tmp_path / "rules.json"
    monkeypatch.setenv("NIANBAO_RULES", str(path))
    monkeypatch.setenv("NIANBAO_HOME", str(tmp_path / "home"))
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path, rules_file):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'review.sqlite'}"
        upgrade(url)
        st = Store(url, str(tmp_path / "blobs"))
    else:
        st = Store(request.getfixturevalue("review_pg_url"), "db")
    yield st
    st.engine.dispose()


@pytest.fixture
def sqlite_store(tmp_path, rules_file):
    url = f"sqlite:///{tmp_path / 'review.sqlite'}"
    upgrade(url)
    st = Store(url, str(tmp_path / "blobs"))
    yield st
    st.engine.dispose()
