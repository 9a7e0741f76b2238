"""Service settings, read from the environment once (``settings()``) and passed down as data.

| variable | default | meaning |
| --- | --- | --- |
| ``NIANBAO_HOME`` | ``~/.local/share/nianbao`` | the embedded SQLite file and the blob store live here |
| ``NIANBAO_DATABASE_URL`` | ``sqlite:///$NIANBAO_HOME/nianbao.sqlite`` | e.g. ``postgresql+psycopg://root@127.0.0.1:5432/test`` |
| ``NIANBAO_BLOBS`` | ``$NIANBAO_HOME/blobs`` | directory of originals and page images, or ``db`` to keep them in the database |
| ``NIANBAO_BROKER_URL`` | ``redis://127.0.0.1:6379/0`` | Celery broker |
| ``NIANBAO_QUEUE`` | ``nianbao`` | Celery queue name (tests use their own) |
| ``NIANBAO_ADMIN_TOKEN`` | unset | a bearer token that is an admin (set at start-up) |
| ``NIANBAO_MAX_UPLOAD_MB`` | 100 | per-file upload limit, enforced while the body streams |
| ``NIANBAO_MAX_REQUEST_MB`` | 1024 | limit on one upload request (all files) |
| ``NIANBAO_UPLOADS_PER_MINUTE`` | 60 | upload requests per token per minute (token bucket, burst = this; 0 = no limit) |
| ``NIANBAO_LEASE_SECONDS`` | 60 | a running task's lease; renewed every third of it while alive |
| ``NIANBAO_QUEUED_DEADLINE_SECONDS`` | 900 | a document queued this long is re-enqueued by the sweeper |
| ``NIANBAO_SWEEP_SECONDS`` | 30 | how often each worker sweeps (0 = never; ``nianbao sweep`` by hand) |
| ``NIANBAO_MAX_REDELIVERIES`` | 3 | a document whose worker died this many times ends ``failed`` |
| ``NIANBAO_VISIBILITY_TIMEOUT`` | 7200 | Redis visibility timeout, longer than the slowest document |
| ``NIANBAO_MAX_TASKS_PER_CHILD`` | 100 | recycle a worker process after this many tasks |
| ``NIANBAO_MAX_MEMORY_PER_CHILD_MB`` | 2048 | recycle a worker process above this resident memory |
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path
    database_url: str
    blobs: str                      # a directory path, or "db"
    broker_url: str
    queue: str
    admin_token: str | None
    max_upload_bytes: int
    max_request_bytes: int
    uploads_per_minute: float
    lease_seconds: float
    queued_deadline_seconds: float
    sweep_seconds: float
    max_redeliveries: int
    visibility_timeout: int
    max_tasks_per_child: int
    max_memory_per_child_kib: int

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)


def _num(env: dict, name: str, default: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a number; set it to a number or unset it.")


def from_env(env: dict | None = None) -> Settings:
    """Build settings from ``env`` (default ``os.environ``); no caching, for tests."""
    env = dict(os.environ if env is None else env)
    home = Path(env.get("NIANBAO_HOME") or Path.home() / ".local" / "share" / "nianbao").expanduser()
    db = env.get("NIANBAO_DATABASE_URL") or f"sqlite:///{home / 'nianbao.sqlite'}"
    return Settings(
        home=home,
        database_url=db,
        blobs=env.get("NIANBAO_BLOBS") or str(home / "blobs"),
        broker_url=env.get("NIANBAO_BROKER_URL") or "redis://127.0.0.1:6379/0",
        queue=env.get("NIANBAO_QUEUE") or "nianbao",
        admin_token=env.get("NIANBAO_ADMIN_TOKEN") or None,
        max_upload_bytes=int(_num(env, "NIANBAO_MAX_UPLOAD_MB", 100) * 2**20),
        max_request_bytes=int(_num(env, "NIANBAO_MAX_REQUEST_MB", 1024) * 2**20),
        uploads_per_minute=_num(env, "NIANBAO_UPLOADS_PER_MINUTE", 60),
        lease_seconds=_num(env, "NIANBAO_LEASE_SECONDS", 60),
        queued_deadline_seconds=_num(env, "NIANBAO_QUEUED_DEADLINE_SECONDS", 900),
        sweep_seconds=_num(env, "NIANBAO_SWEEP_SECONDS", 30),
        max_redeliveries=int(_num(env, "NIANBAO_MAX_REDELIVERIES", 3)),
        visibility_timeout=int(_num(env, "NIANBAO_VISIBILITY_TIMEOUT", 7200)),
        max_tasks_per_child=int(_num(env, "NIANBAO_MAX_TASKS_PER_CHILD", 100)),
        max_memory_per_child_kib=int(_num(env, "NIANBAO_MAX_MEMORY_PER_CHILD_MB", 2048) * 1024),
    )


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The process's settings, read from the environment on first use."""
    return from_env()
