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


def sibling_conftest(test_file: str):
    """The conftest module pytest loaded beside ``test_file``.

    Every test directory has a ``conftest.py``; ``from conftest import X`` picks whichever one
    was imported last, so tests that need names from their own directory's conftest use this."""
    import sys
    want = str(Path(test_file).resolve().with_name("conftest.py"))
    for mod in list(sys.modules.values()):
        if getattr(mod, "__file__", None) and str(Path(mod.__file__).resolve()) == want:
            return mod
    import importlib.util
    spec = importlib.util.spec_from_file_location(f"conftest_{Path(want).parent.name}", want)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
