"""Fixtures of the archive tests: a private store per test (SQLite under a temporary
NIANBAO_HOME), an optional PostgreSQL database, and generated archive folders."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))       # reportgen, treegen

from worker.store import Store, upgrade  # noqa: E402

from testkit import scratch_pg_database  # noqa: E402


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


@pytest.fixture
def pg_store():
    """A store in a fresh PostgreSQL database, dropped afterwards."""
    with scratch_pg_database("nianbao_archive") as url:
        st = Store(url, "db")
        try:
            yield st
        finally:
            st.engine.dispose()
