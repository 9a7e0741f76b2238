"""Integration fixtures: the machine's real PostgreSQL and Redis, real Celery worker processes.

Isolation per test session: a fresh PostgreSQL database ``nianbao_it_<random>`` (dropped at the
end), a Redis database number nobody else is using plus a unique queue name, a temporary
NIANBAO_HOME for blobs. The API runs in-process (FastAPI TestClient) against the same settings;
workers are ``celery -A faulty_app worker`` subprocesses (see faulty_app.py), started and killed
by the tests. Skips with a clear message when PostgreSQL or Redis is not reachable.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PG_ADMIN = os.environ.get("NIANBAO_TEST_PG", "postgresql://root@127.0.0.1:5432/test")
REDIS = os.environ.get("NIANBAO_TEST_REDIS", "redis://127.0.0.1:6379")
REDIS_START = ('redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no '
               '--dir /var/lib/redis --logfile /var/log/redis/ci.log')

RUN = uuid.uuid4().hex[:10]
DB_NAME = f"nianbao_it_{RUN}"
QUEUE = f"nianbao-it-{RUN}"
HOME = Path(tempfile.mkdtemp(prefix=f"nianbao-it-{RUN}-"))


def devset_dir() -> Path:
    return Path(os.environ.get("NIANBAO_DEVSET") or (REPO / ".." / "shared" / "devset")).resolve()


def _pick_redis_db() -> int:
    import redis
    for n in range(15, 0, -1):
        r = redis.Redis.from_url(f"{REDIS}/{n}")
        if r.dbsize() == 0 and r.set("nianbao:it:owner", RUN, nx=True, ex=2 * 3600):
            return n
    return 15    # all taken: share one; the unique queue name still keeps runs apart


def _reachable() -> str | None:
    try:
        import psycopg
        psycopg.connect(PG_ADMIN, connect_timeout=3).close()
    except Exception as e:
        return f"PostgreSQL not reachable at {PG_ADMIN} ({e}); start it (docs/service.md)"
    try:
        import redis
        redis.Redis.from_url(REDIS, socket_connect_timeout=3).ping()
    except Exception as e:
        return f"Redis not reachable at {REDIS} ({e}); start it (docs/service.md)"
    return None


SKIP = _reachable()

# The environment of this session's service and of every worker it starts. Filled and put into
# os.environ by the ``service_db`` fixture only (never at import: other test folders collected
# in the same run must not see it), and restored afterwards.
ENV: dict[str, str] = {}


def _service_env() -> dict[str, str]:
    return {
        "NIANBAO_HOME": str(HOME),
        "NIANBAO_DATABASE_URL": PG_ADMIN.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0]
        + "/" + DB_NAME,
        "NIANBAO_BROKER_URL": f"{REDIS}/{_pick_redis_db()}",
        "NIANBAO_QUEUE": QUEUE,
        "NIANBAO_ADMIN_TOKEN": f"admin-{RUN}",
        "NIANBAO_BLOBS": str(HOME / "blobs"),
        "NIANBAO_LEASE_SECONDS": "3",
        "NIANBAO_SWEEP_SECONDS": "1",
        "NIANBAO_QUEUED_DEADLINE_SECONDS": "30",
        "NIANBAO_MAX_REDELIVERIES": "2",
        "NIANBAO_VISIBILITY_TIMEOUT": "3600",
        "NIANBAO_TEST_SLOW_SECONDS": "6",
    }


def redis_up() -> bool:
    try:
        import redis
        return bool(redis.Redis.from_url(REDIS, socket_connect_timeout=1).ping())
    except Exception:
        return False


def ensure_redis() -> None:
    if not redis_up():
        subprocess.run(REDIS_START, shell=True, check=False)
        for _ in range(50):
            if redis_up():
                return
            time.sleep(0.1)


@pytest.fixture(scope="session")
def service_db():
    """The session's PostgreSQL database (migrated) and environment; dropped/restored at the end."""
    if SKIP:
        pytest.skip(SKIP)
    import psycopg
    ENV.update(_service_env())
    saved = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    from worker import settings as settings_module
    settings_module.settings.cache_clear()
    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{DB_NAME}"')
    from worker.store import upgrade
    upgrade(ENV["NIANBAO_DATABASE_URL"])
    try:
        yield ENV["NIANBAO_DATABASE_URL"]
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        ensure_redis()
        import redis
        redis.Redis.from_url(ENV["NIANBAO_BROKER_URL"]).flushdb()
        shutil.rmtree(HOME, ignore_errors=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        settings_module.settings.cache_clear()


@pytest.fixture(scope="session")
def store(service_db):
    from worker.settings import settings
    from worker.store import Store
    st = Store.from_settings(settings())
    yield st
    st.engine.dispose()


@pytest.fixture(scope="session")
def client(store):
    """The API in-process, sending real Celery messages to the session's broker and queue
    (through a Celery app built for this session, whatever app other tests built before)."""
    from fastapi.testclient import TestClient
    from worker.api import create_app
    from worker.celery_app import make_app
    from worker.jobs import PROCESS_DOCUMENT
    from worker.settings import settings
    celery = make_app()

    def enqueue(document_id: int) -> None:
        celery.send_task(PROCESS_DOCUMENT, args=[document_id], queue=QUEUE)

    app = create_app(settings(), store=store, enqueue=enqueue)
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {ENV['NIANBAO_ADMIN_TOKEN']}"
        yield c


class WorkerProcess:
    """``celery -A faulty_app worker`` in its own process group (so kill -9 takes the pool too)."""

    def __init__(self, name: str, concurrency: int = 1):
        self.name = name
        self.log_path = HOME / f"worker-{name}.log"
        env = {**os.environ, **ENV, "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)])}
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "faulty_app", "worker", "-Q", QUEUE, "-c", str(concurrency),
             "-Ofair", "--prefetch-multiplier", "1", "--loglevel", "INFO", "-n", f"{name}-{RUN}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat",
             "--max-tasks-per-child", "100"],
            cwd=str(HOME), env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 60) -> "WorkerProcess":
        deadline = time.time() + timeout
        while time.time() < deadline:
            if b" ready." in self.log_path.read_bytes():
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited: {self.log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        raise TimeoutError(f"worker {self.name} not ready: {self.log_path.read_text()[-3000:]}")

    def kill9(self) -> None:
        """SIGKILL the whole process group: the main process and its pool, no cleanup."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                self.kill9()
                return
        self.log.close()


@pytest.fixture
def start_worker(service_db):
    """Start workers; every one still running is stopped after the test."""
    started: list[WorkerProcess] = []

    def start(name: str, concurrency: int = 1) -> WorkerProcess:
        w = WorkerProcess(name, concurrency)
        started.append(w)
        return w.wait_ready()

    yield start
    for w in started:
        w.stop()
    ensure_redis()


def wait_finished(store, ids, timeout: float = 180) -> dict[int, dict]:
    """Poll the store until every document is finished; returns their info dicts."""
    deadline = time.time() + timeout
    ids = list(dict.fromkeys(ids))
    while True:
        infos = {i: store.document_info(i) for i in ids}
        if all(v and v["status"] in ("extracted", "needs_review", "failed") for v in infos.values()):
            return infos
        if time.time() > deadline:
            pending = {i: v["status"] for i, v in infos.items() if v["status"] not in ("extracted", "needs_review", "failed")}
            raise TimeoutError(f"documents not finished after {timeout}s: {pending}")
        time.sleep(0.25)
