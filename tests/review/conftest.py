"""Fixtures of the review tests: a store on SQLite or on the machine's PostgreSQL (a fresh
database per session, dropped at the end), the seed report stored and extracted, users."""
from __future__ import annotations

import os
import uuid

import pytest

from worker.store import Store, upgrade

PG_ADMIN = os.environ.get("NIANBAO_TEST_PG", "postgresql+psycopg://root@127.0.0.1:5432/test")


def _pg_available() -> bool:
    try:
        import psycopg
        psycopg.connect(PG_ADMIN.replace("postgresql+psycopg", "postgresql"), connect_timeout=3).close()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def review_pg_url():
    """A fresh PostgreSQL database for this session's review tests, dropped at the end."""
    if not _pg_available():
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN}")
    import psycopg
    name = f"nianbao_review_{uuid.uuid4().hex[:10]}"
    admin = PG_ADMIN.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    try:
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
