"""Paths shared by the tests (importable from every test directory; tests/ is on sys.path)."""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
SEED = SAMPLES / "luolong-minzheng-2020.txt"


def devset_dir() -> Path | None:
    env = os.environ.get("NIANBAO_DEVSET")
    p = Path(env) if env else (REPO / ".." / "shared" / "devset").resolve()
    return p if (p / "labels").is_dir() else None


PG_ADMIN = os.environ.get("NIANBAO_TEST_PG", "postgresql+psycopg://root@127.0.0.1:5432/test")


def pg_available() -> bool:
    try:
        import psycopg
        psycopg.connect(PG_ADMIN.replace("postgresql+psycopg", "postgresql"), connect_timeout=3).close()
        return True
    except Exception:
        return False


@contextmanager
def scratch_pg_database(prefix: str):
    """A fresh, migrated PostgreSQL database (its SQLAlchemy URL), dropped afterwards.

    Skips the calling test when PostgreSQL is not reachable."""
    import pytest
    if not pg_available():
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN}; start it (see docs/service.md) or set NIANBAO_TEST_PG")
    import psycopg
    from worker.store import upgrade
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
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
