"""Fixtures of the archive tests: a private store per test (SQLite under a temporary
NIANBAO_HOME), an optional PostgreSQL database, and generated archive folders."""
from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))       # reportgen, treegen

from worker.store import Store, upgrade  # noqa: E402

PG_ADMIN = os.environ.get("NIANBAO_TEST_PG", "postgresql+psycopg://root@127.0.0.1:5432/test")


@pytest.fixture
def nianbao_env(tmp_path, monkeypatch) -> dict[str, str]:
    """A fresh NIANBAO_HOME with its SQLite store; the env a subprocess needs too."""
    home = tmp_path / "home"
    env = {"NIANBAO_HOME": str(home), "NIANBAO_DATABASE_URL": f"sqlite:///{home / 'nianbao.sqlite'}",
           "NIANBAO_BLOBS": str(home / "blobs")}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def store(nianbao_env):
    upgrade(nianbao_env["NIANBAO_DATABASE_URL"])
    st = Store(nianbao_env["NIANBAO_DATABASE_URL"], nianbao_env["NIANBAO_BLOBS"])
    yield st
    st.engine.dispose()


def _pg_available() -> bool:
    try:
        import psycopg
        psycopg.connect(PG_ADMIN.replace("postgresql+psycopg", "postgresql"), connect_timeout=3).close()
        return True
    except Exception:
        return False


@pytest.fixture
def pg_store():
    """A store in a fresh PostgreSQL database, dropped afterwards."""
    if not _pg_available():
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN}; start it or set NIANBAO_TEST_PG")
    import psycopg
    name = f"nianbao_archive_{uuid.uuid4().hex[:10]}"
    admin = PG_ADMIN.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    try:
        upgrade(url)
        st = Store(url, "db")
        yield st
        st.engine.dispose()
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
