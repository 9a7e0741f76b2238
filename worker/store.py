"""The store: sessions, blobs and the repository functions every part of the service uses.

One ``Store`` per process (``default_store()``), built from ``worker.settings``. Each public
method is one transaction and returns plain values (ids, dicts, small dataclasses), never live
ORM objects, so callers need no session. For queries of your own use ``store.session()``.

Who calls what:

- upload / API (issue 4): ``add_document``, ``mark_enqueued``, ``document_json``,
  ``list_documents``, ``page_image``, ``authenticate``, ``create_token``;
- workers (issue 4): ``claim_document``, ``renew_document_lease``, ``release_document``,
  ``load_original``, ``save_result``, ``start_pages``, ``claim_page``, ``save_page``,
  ``pages_needing_work``, ``page_results``, ``claim_join``, ``stuck_documents``,
  ``request_reextraction``;
- review queue (issue 5): ``claim_next_review_item``, ``release_review_item``,
  ``record_decision``, ``fingerprint``, ``audit``; decisions are re-applied by ``save_result``
  on every new extraction, so a re-extraction never undoes a reviewer's work;
- archive (issue 6): ``find_or_start_batch``, ``add_batch_items``, ``set_batch_item``,
  ``batch_items``, ``batch_counts``, ``finish_batch``, ``find_document_by_sha256``,
  ``iter_current_results``.

Migrations: ``upgrade(url)`` runs Alembic from code (no alembic.ini needed).
"""
from __future__ import annotations

import hashlib
import logging
import os
import pickle
import secrets
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator, Sequence

from sqlalchemy import Engine, create_engine, event, func, or_, select, update, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from models.result import ExtractionResult
from models.tables import (AuditLog, Batch, BatchItem, Blob, Decision, Document, Extraction, Field,
                           FINISHED_STATUSES, Page, ReviewItem, Token, User, utcnow)

from .settings import Settings, settings as current_settings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


# --------------------------------------------------------------------------- migrations

def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (Alembic, configured from code).

    Creates the SQLite file's directory when needed. Safe to run at every start: it does
    nothing when the schema is current.
    """
    from alembic import command
    from alembic.config import Config

    _ensure_sqlite_dir(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, revision)


def _ensure_sqlite_dir(url: str) -> None:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url[len("sqlite:///"):]).expanduser().parent.mkdir(parents=True, exist_ok=True)


def make_engine(url: str) -> Engine:
    """An engine with the settings the service needs on each backend (SQLite: WAL, foreign keys,
    a busy timeout so concurrent workers wait instead of failing)."""
    _ensure_sqlite_dir(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001
            dbapi_conn.isolation_level = None      # SQLAlchemy issues BEGIN itself (below)
            cur = dbapi_conn.cursor()
            if ":memory:" not in url:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):  # noqa: ANN001
            # Take the write lock at BEGIN: a deferred transaction that reads and then writes
            # fails at once with "database is locked" when another writer got in between.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


# --------------------------------------------------------------------------- blobs

def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileBlobs:
    """Content-addressed files ``<root>/ab/cd/<sha256>``; written and fsynced before the row
    that names them is committed, so a committed document always has its bytes."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, session: Session, data: bytes, digest: str) -> str:
        path = self._path(digest)
        if not (path.exists() and path.stat().st_size == len(data)):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            _fsync_dir(path.parent)
        return f"file:{digest}"

    def get(self, session: Session, key: str) -> bytes:
        return self._path(key.split(":", 1)[1]).read_bytes()


class DbBlobs:
    """Bytes in the ``blobs`` table, committed in the same transaction as the document."""

    def put(self, session: Session, data: bytes, digest: str) -> str:
        if session.get(Blob, digest) is None:
            session.add(Blob(sha256=digest, size=len(data), data=data))
        return f"db:{digest}"

    def get(self, session: Session, key: str) -> bytes:
        blob = session.get(Blob, key.split(":", 1)[1])
        if blob is None:
            raise FileNotFoundError(key)
        return blob.data


# --------------------------------------------------------------------------- values

@dataclass(frozen=True, slots=True)
class Added:
    """What ``add_document`` did: ``created`` False means the same bytes were already stored."""
    id: int
    sha256: str
    filename: str
    status: str
    created: bool


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of claiming a document for work.

    ``outcome``: ``claimed`` (you hold the lease; run ``stage``), ``pages`` (per-page OCR is in
    flight; check progress), ``done`` (already finished), ``busy`` (another live worker holds
    it), ``poisoned`` (its workers died too often: now ``failed``), ``missing``.
    """
    outcome: str
    document_id: int
    stage: str | None = None
    filename: str = ""
    sha256: str = ""
    redeliveries: int = 0


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user (``user_id``) or the start-up admin token (``user_id`` None)."""
    user_id: int | None
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def fingerprint(document_sha256: str, key: str, printed_text: str) -> str:
    """The stable identity of a printed cell: sha256 of (document bytes' sha256, key, text).

    A reviewer's decision is stored under it, so it applies to every later extraction that
    reads the same text for the same key of the same file."""
    raw = "\x1f".join((document_sha256, key, (printed_text or "").strip()))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def hash_token(token: str) -> str:
    """Tokens are 32 random bytes, so a plain sha256 is enough (no password stretching)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _num_out(v: float | None) -> int | float | None:
    from models.result import clean_number
    return None if v is None else clean_number(float(v))


def extractor_version() -> str:
    """The version stamped on each extraction: ``extractors.EXTRACTOR_VERSION`` when the
    extraction core defines it, else the installed nianbao version."""
    try:
        import extractors
        v = getattr(extractors, "EXTRACTOR_VERSION", None)
        if v:
            return str(v)
    except Exception:  # pragma: no cover
        pass
    try:
        from importlib.metadata import version
        return version("nianbao")
    except Exception:  # pragma: no cover
        return "0"


# --------------------------------------------------------------------------- the store

class Store:
    """Engine, session factory and blob store of one database; see the module docstring."""

    def __init__(self, url: str, blobs: str = "db", *, lease_seconds: float = 60,
                 queued_deadline_seconds: float = 900, max_redeliveries: int = 3):
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.blobs = DbBlobs() if blobs == "db" else FileBlobs(blobs)
        self.lease = timedelta(seconds=lease_seconds)
        self.queued_deadline = timedelta(seconds=queued_deadline_seconds)
        self.max_redeliveries = max_redeliveries

    @classmethod
    def from_settings(cls, s: Settings | None = None) -> "Store":
        s = s or current_settings()
        return cls(s.database_url, s.blobs, lease_seconds=s.lease_seconds,
                   queued_deadline_seconds=s.queued_deadline_seconds, max_redeliveries=s.max_redeliveries)

    def dispose(self) -> None:
        """Drop pooled connections (call in a forked child before first use)."""
        self.engine.dispose(close=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed when the block ends, rolled back on error."""
        with self._sessions() as s, s.begin():
            yield s

    def ping(self) -> bool:
        try:
            with self.engine.connect() as c:
                c.exec_driver_sql("SELECT 1")
            return True
        except Exception:
            return False

    # ------------------------------------------------------------------ documents

    def add_document(self, data: bytes, filename: str, uploaded_by: int | None = None,
                     format: str | None = None) -> Added:
        """Store the original and its document row, committed before anything is enqueued.

        The same bytes (sha256) always give the same document: a second upload returns the
        first one's id with ``created=False`` and enqueues nothing new. Safe under concurrent
        uploads of the same file (the unique sha256 decides)."""
        digest = hashlib.sha256(data).hexdigest()
        existing = self.find_document_by_sha256(digest)
        if existing:
            return existing
        try:
            with self.session() as s:
                key = self.blobs.put(s, data, digest)
                doc = Document(sha256=digest, filename=filename, size=len(data), format=format,
                               blob_key=key, status="queued", uploaded_by=uploaded_by,
                               deadline_at=utcnow() + self.queued_deadline, meta={})
                s.add(doc)
                s.flush()
                audit(s, "upload", "document", doc.id, document_id=doc.id, user_id=uploaded_by,
                      new={"filename": filename, "sha256": digest, "size": len(data)})
                return Added(doc.id, digest, filename, "queued", True)
        except IntegrityError:
            existing = self.find_document_by_sha256(digest)
            if existing:
                return existing
            raise

    def find_document_by_sha256(self, digest: str) -> Added | None:
        """The document holding these bytes, or None."""
        with self.session() as s:
            doc = s.scalar(select(Document).where(Document.sha256 == digest))
            return Added(doc.id, doc.sha256, doc.filename, doc.status, False) if doc else None

    def mark_enqueued(self, document_id: int) -> None:
        """Record that a message for the document was sent; the sweeper leaves it alone until
        the queued deadline passes."""
        with self.session() as s:
            s.execute(update(Document).where(Document.id == document_id).values(
                enqueues=Document.enqueues + 1, deadline_at=utcnow() + self.queued_deadline))

    def load_original(self, document_id: int) -> tuple[bytes, str]:
        """The uploaded bytes and file name."""
        with self.session() as s:
            doc = s.get(Document, document_id)
            if doc is None:
                raise KeyError(document_id)
            return self.blobs.get(s, doc.blob_key), doc.filename

    def document_info(self, document_id: int) -> dict[str, Any] | None:
        """The document row as a dict (no result), or None."""
        with self.session() as s:
            doc = s.get(Document, document_id)
            return _doc_summary(doc) if doc else None

    def list_documents(self, status: str | None = None, *, agency: str | None = None,
                       year: int | None = None, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Documents newest first, optionally filtered by status / agency / year."""
        with self.session() as s:
            q = select(Document).order_by(Document.id.desc()).limit(limit).offset(offset)
            if status:
                q = q.where(Document.status == status)
            if agency:
                q = q.where(Document.agency == agency)
            if year:
                q = q.where(Document.year == year)
            return [_doc_summary(d) for d in s.scalars(q)]

    def count_documents(self) -> dict[str, int]:
        """Number of documents per status."""
        with self.session() as s:
            return {st: n for st, n in s.execute(select(Document.status, func.count()).group_by(Document.status))}

    def document_json(self, document_id: int) -> dict[str, Any] | None:
        """The output-contract object of the document's current extraction plus ``id``,
        ``status`` (the document's: queued/running until done) and ``version``; a document not
        yet extracted gives the contract's shape with empty fields. None if no such document."""
        with self.session() as s:
            doc = s.get(Document, document_id)
            if doc is None:
                return None
            ext = s.get(Extraction, doc.current_extraction_id) if doc.current_extraction_id else None
            if ext is not None and ext.result is not None:
                out = dict(ext.result)
            else:
                out = {"source": doc.filename, "sha256": doc.sha256, "status": doc.status,
                       "error": doc.error, "meta": doc.meta or {"agency": None, "year": None, "template": None},
                       "fields": {}, "checks": []}
            out["id"] = doc.id
            out["status"] = doc.status
            if doc.status not in FINISHED_STATUSES and ext is None:
                out["error"] = None
            out["version"] = ext.version if ext else None
            return out

    # ------------------------------------------------------------------ claiming / leases

    def claim_document(self, document_id: int, owner: str) -> Claim:
        """Take a document for work (compare-and-set, so two workers never both hold it).

        A running document whose lease has run out had a worker that died: taking it counts a
        redelivery, and past ``max_redeliveries`` the document ends ``failed`` (poison input)
        instead of killing workers forever. A document in the per-page stage is not claimed
        (its pages are); the caller gets ``pages`` and checks progress."""
        now = utcnow()
        with self.session() as s:
            doc = s.get(Document, document_id)
            if doc is None:
                return Claim("missing", document_id)
            base = dict(document_id=doc.id, filename=doc.filename, sha256=doc.sha256)
            if doc.status in FINISHED_STATUSES:
                return Claim("done", stage=doc.stage, **base)
            if doc.status == "running" and doc.stage == "pages":
                return Claim("pages", stage="pages", **base)
            if doc.status == "running" and doc.lease_until and doc.lease_until > now:
                return Claim("busy", stage=doc.stage, **base)
            dead = doc.status == "running"
            redeliveries = doc.redeliveries + (1 if dead else 0)
            stage = doc.stage or "whole"
            rc = s.execute(update(Document).where(
                Document.id == doc.id, Document.status == doc.status, Document.attempts == doc.attempts,
            ).values(status="running", stage=stage, lease_owner=owner, lease_until=now + self.lease,
                     attempts=doc.attempts + 1, redeliveries=redeliveries, started_at=now,
                     deadline_at=None)).rowcount
            if rc != 1:
                return Claim("busy", stage=doc.stage, **base)
            if dead:
                audit(s, "redelivered", "document", doc.id, document_id=doc.id, actor=owner,
                      old={"lease_owner": doc.lease_owner}, new={"redeliveries": redeliveries})
        if dead and redeliveries > self.max_redeliveries:
            result = ExtractionResult.failed(
                base["filename"], base["sha256"], "worker_crashed",
                f"Processing this file stopped the worker {redeliveries} times, so it was given up; "
                "check that the file opens, re-save or split it, and upload it again.")
            self.save_result(document_id, result, owner=owner)
            return Claim("poisoned", stage=stage, redeliveries=redeliveries, **base)
        return Claim("claimed", stage=stage, redeliveries=redeliveries, **base)

    def renew_document_lease(self, document_id: int, owner: str) -> bool:
        """Extend the lease while working (heartbeat); False if it is no longer ours."""
        with self.session() as s:
            return s.execute(update(Document).where(
                Document.id == document_id, Document.lease_owner == owner, Document.status == "running",
            ).values(lease_until=utcnow() + self.lease)).rowcount == 1

    def release_document(self, document_id: int, owner: str) -> None:
        """Give a document back to the queue (a transient error; the task will retry)."""
        with self.session() as s:
            s.execute(update(Document).where(
                Document.id == document_id, Document.lease_owner == owner, Document.status == "running",
                or_(Document.stage == None, Document.stage != "pages"),  # noqa: E711
            ).values(status="queued", lease_owner=None, lease_until=None,
                     deadline_at=utcnow() + self.queued_deadline))

    def stuck_documents(self, *, all_queued: bool = False, limit: int = 1000) -> list[int]:
        """Ids the sweeper must re-enqueue: queued past their deadline, running with a dead
        lease (or in the per-page stage with no progress for the queued deadline). With
        ``all_queued`` (the broker lost its messages) every queued document and every document
        waiting for pages, whatever its deadline. Each returned document gets a new deadline so
        the next sweep does not send it again while its message waits in the queue."""
        now = utcnow()
        with self.session() as s:
            queued = Document.status == "queued"
            if not all_queued:
                queued = queued & ((Document.deadline_at == None) | (Document.deadline_at < now))  # noqa: E711
            dead = (Document.status == "running") & (Document.lease_until < now) & (
                (Document.deadline_at == None) | (Document.deadline_at < now))  # noqa: E711
            cond = or_(queued, dead)
            if all_queued:
                cond = or_(cond, (Document.status == "running") & (Document.stage == "pages"))
            ids = list(s.scalars(select(Document.id).where(cond).order_by(Document.id).limit(limit)))
            if ids:
                s.execute(update(Document).where(Document.id.in_(ids)).values(
                    deadline_at=now + self.queued_deadline, enqueues=Document.enqueues + 1))
            return ids

    def expire_deadlines(self, document_ids: Sequence[int]) -> None:
        """Make documents due for the next sweep again (their re-enqueue failed)."""
        if document_ids:
            with self.session() as s:
                s.execute(update(Document).where(Document.id.in_(list(document_ids))).values(deadline_at=None))

    # ------------------------------------------------------------------ pages (OCR fan-out)

    def start_pages(self, document_id: int, owner: str, page_count: int) -> bool:
        """Move a claimed document to the per-page stage: one ``pages`` row per page (pending),
        ``pages_expected`` set. The document's lease becomes a progress deadline (renewed by
        each finished page). False if the lease is no longer ours."""
        with self.session() as s:
            rc = s.execute(update(Document).where(
                Document.id == document_id, Document.lease_owner == owner, Document.status == "running",
            ).values(stage="pages", pages_expected=page_count, pages_done=0,
                     lease_until=utcnow() + self.queued_deadline)).rowcount
            if rc != 1:
                return False
            s.execute(delete(Page).where(Page.document_id == document_id))
            s.add_all(Page(document_id=document_id, page_no=n, status="pending") for n in range(1, page_count + 1))
            return True

    def claim_page(self, document_id: int, page_no: int, owner: str) -> Claim:
        """Take one page for OCR; same rules as ``claim_document`` (outcomes ``claimed``,
        ``done``, ``busy``, ``poisoned``, ``missing``); a poisoned page fails the document."""
        now = utcnow()
        with self.session() as s:
            page = s.scalar(select(Page).where(Page.document_id == document_id, Page.page_no == page_no))
            doc = s.get(Document, document_id)
            if page is None or doc is None:
                return Claim("missing", document_id)
            base = dict(document_id=document_id, filename=doc.filename, sha256=doc.sha256)
            if doc.status in FINISHED_STATUSES or page.status in ("done", "failed") or doc.stage != "pages":
                return Claim("done", stage="pages", **base)
            if page.status == "running" and page.lease_until and page.lease_until > now:
                return Claim("busy", stage="pages", **base)
            dead = page.status == "running"
            red = page.redeliveries + (1 if dead else 0)
            rc = s.execute(update(Page).where(
                Page.id == page.id, Page.status == page.status, Page.attempts == page.attempts,
            ).values(status="running", lease_owner=owner, lease_until=now + self.lease,
                     attempts=page.attempts + 1, redeliveries=red)).rowcount
            if rc != 1:
                return Claim("busy", stage="pages", **base)
        if dead and red > self.max_redeliveries:
            result = ExtractionResult.failed(
                base["filename"], base["sha256"], "worker_crashed",
                f"Reading page {page_no} stopped the worker {red} times, so the file was given up; "
                "check that the file opens, re-save or split it, and upload it again.")
            self.fail_pages_document(document_id, result)
            return Claim("poisoned", stage="pages", redeliveries=red, **base)
        return Claim("claimed", stage="pages", redeliveries=red, **base)

    def renew_page_lease(self, document_id: int, page_no: int, owner: str) -> bool:
        with self.session() as s:
            return s.execute(update(Page).where(
                Page.document_id == document_id, Page.page_no == page_no, Page.lease_owner == owner,
                Page.status == "running").values(lease_until=utcnow() + self.lease)).rowcount == 1

    def save_page(self, document_id: int, page_no: int, owner: str, result: Any,
                  image_png: bytes | None = None) -> tuple[int, int]:
        """Store one page's reader output (pickled) and optional image; returns
        ``(pages_done, pages_expected)`` counted in the database, which decides the join."""
        payload = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        with self.session() as s:
            values: dict[str, Any] = {"status": "done", "result": payload, "lease_until": None}
            if image_png:
                values["image_key"] = self.blobs.put(s, image_png, hashlib.sha256(image_png).hexdigest())
            s.execute(update(Page).where(
                Page.document_id == document_id, Page.page_no == page_no, Page.status == "running",
                Page.lease_owner == owner).values(**values))
            done = s.scalar(select(func.count()).select_from(Page).where(
                Page.document_id == document_id, Page.status == "done")) or 0
            s.execute(update(Document).where(Document.id == document_id, Document.stage == "pages").values(
                pages_done=done, lease_until=utcnow() + self.queued_deadline))
            expected = s.scalar(select(Document.pages_expected).where(Document.id == document_id)) or 0
            return done, expected

    def pages_needing_work(self, document_id: int) -> list[int]:
        """Pages not done whose work is not held by a live lease (to re-enqueue)."""
        now = utcnow()
        with self.session() as s:
            return list(s.scalars(select(Page.page_no).where(
                Page.document_id == document_id,
                or_(Page.status == "pending", (Page.status == "running") & (Page.lease_until < now)),
            ).order_by(Page.page_no)))

    def touch_pages_document(self, document_id: int) -> None:
        """Reset the per-page stage's progress deadline (after re-enqueuing its pages)."""
        with self.session() as s:
            s.execute(update(Document).where(Document.id == document_id, Document.stage == "pages").values(
                lease_until=utcnow() + self.queued_deadline, deadline_at=None))

    def claim_join(self, document_id: int, owner: str) -> bool:
        """Take the join of a document whose pages are all done (compare-and-set on the stage,
        driven by the pages-done count, not by a chord callback)."""
        with self.session() as s:
            return s.execute(update(Document).where(
                Document.id == document_id, Document.status == "running", Document.stage == "pages",
                Document.pages_done >= Document.pages_expected,
            ).values(stage="join", lease_owner=owner, lease_until=utcnow() + self.lease)).rowcount == 1

    def page_results(self, document_id: int) -> list[Any]:
        """The per-page reader outputs in page order (unpickled)."""
        with self.session() as s:
            rows = s.scalars(select(Page.result).where(Page.document_id == document_id).order_by(Page.page_no))
            return [pickle.loads(r) for r in rows]

    def fail_pages_document(self, document_id: int, result: ExtractionResult) -> None:
        """End a document in the per-page stage as failed (a page could not be read)."""
        with self.session() as s:
            s.execute(update(Document).where(Document.id == document_id, Document.status == "running").values(
                stage="join", lease_owner="pages-failed"))
        self.save_result(document_id, result, owner="pages-failed")

    def page_image(self, document_id: int, page_no: int) -> bytes | None:
        """The stored PNG of a page, or None (render it and ``save_page_image``)."""
        with self.session() as s:
            key = s.scalar(select(Page.image_key).where(Page.document_id == document_id, Page.page_no == page_no))
            return self.blobs.get(s, key) if key else None

    def save_page_image(self, document_id: int, page_no: int, png: bytes) -> None:
        """Keep a rendered page image for the reviewer (creates the page row if needed)."""
        with self.session() as s:
            key = self.blobs.put(s, png, hashlib.sha256(png).hexdigest())
            page = s.scalar(select(Page).where(Page.document_id == document_id, Page.page_no == page_no))
            if page is None:
                s.add(Page(document_id=document_id, page_no=page_no, status="done", image_key=key))
            else:
                page.image_key = key

    # ------------------------------------------------------------------ results

    def save_result(self, document_id: int, result: ExtractionResult, *, owner: str | None = None,
                    version_label: str | None = None) -> int | None:
        """Store an extraction as the document's new version and finish the document.

        With ``owner``, only the lease holder may save (a worker that lost its lease to another
        after stalling discards its result: exactly one result per run). Earlier versions stay.
        Reviewers' decisions whose fingerprint matches a field are applied (value, review
        cleared, ``decision_id``/``reviewed_by``), so reviewed values survive re-extraction; the
        document's status is recomputed from the applied fields. Open review items of older
        versions are superseded; one item per still-flagged field is opened. Returns the
        extraction id, or None when the save was refused."""
        data = result.to_dict()
        with self.session() as s:
            doc = s.get(Document, document_id, with_for_update=True)
            if doc is None or doc.status in FINISHED_STATUSES:
                return None
            if owner is not None and doc.lease_owner != owner:
                log.warning("document %s: lease lost by %s (now %s); result discarded",
                            document_id, owner, doc.lease_owner)
                return None
            version = (s.scalar(select(func.max(Extraction.version)).where(Extraction.document_id == doc.id)) or 0) + 1
            decisions = _latest_decisions(s, doc.id)
            status = result.status
            applied: list[tuple[str, Decision, Any]] = []
            for key, fd in data["fields"].items():
                dec = decisions.get(fingerprint(doc.sha256, key, fd.get("text", "")))
                if dec is None:
                    continue
                old = fd.get("value")
                fd["value"] = old if dec.verdict in ("confirmed", "source_error") else _num_out(dec.value)
                fd["review"] = False
                applied.append((key, dec, old))
            if status != "failed":
                status = "needs_review" if any(f["review"] for f in data["fields"].values()) else "extracted"
            data["status"] = status
            ext = Extraction(document_id=doc.id, version=version, kind="extractor",
                             extractor_version=version_label or extractor_version(), status=status,
                             error=result.error, error_code=result.error_code, source=result.source,
                             format=result.format, pages=result.pages, seconds=result.seconds,
                             meta=data["meta"], checks=data["checks"], result=data)
            s.add(ext)
            s.flush()
            dec_by_key = {k: d for k, d, _ in applied}
            rows = []
            for pos, (key, fd) in enumerate(data["fields"].items()):
                dec = dec_by_key.get(key)
                rows.append(Field(extraction_id=ext.id, position=pos, key=key, value=fd["value"],
                                  confidence=fd["confidence"], review=fd["review"], reasons=fd["reasons"],
                                  page=fd["page"], bbox=fd["bbox"], text=fd["text"] or "",
                                  decision_id=dec.id if dec else None, reviewed_by=dec.reviewer_id if dec else None))
            s.add_all(rows)
            s.flush()
            for key, dec, old in applied:
                audit(s, "decision_applied", "field", None, document_id=doc.id, field_key=key,
                      user_id=dec.reviewer_id, old=old, new=data["fields"][key]["value"],
                      reason=f"decision {dec.id} ({dec.verdict}) re-applied to version {version}")
            s.execute(update(ReviewItem).where(ReviewItem.document_id == doc.id,
                                               ReviewItem.state.in_(("open", "claimed")),
                                               ReviewItem.kind == "flagged").values(state="superseded"))
            violated = {k for c in data["checks"] if c.get("ok") is False for k in c.get("keys", [])}
            for f in rows:
                if f.review:
                    s.add(ReviewItem(document_id=doc.id, extraction_id=ext.id, field_id=f.id, field_key=f.key,
                                     kind="flagged", reason="; ".join(f.reasons),
                                     priority=10 if f.key in violated else 0, state="open"))
            meta = data["meta"] or {}
            old_status = doc.status
            doc.status = status
            doc.stage = None
            doc.error = result.error
            doc.error_code = result.error_code
            doc.meta = meta
            doc.agency = meta.get("agency")
            doc.year = meta.get("year")
            doc.template = meta.get("template")
            doc.format = result.format or doc.format
            doc.current_extraction_id = ext.id
            doc.lease_owner = None
            doc.lease_until = None
            doc.deadline_at = None
            doc.finished_at = utcnow()
            audit(s, "extracted", "document", doc.id, document_id=doc.id, actor=owner or "system",
                  old={"status": old_status}, new={"status": status, "version": version,
                                                   "error_code": result.error_code})
            return ext.id

    def request_reextraction(self, document_id: int, user_id: int | None = None) -> bool:
        """Queue a finished document for a new extraction (e.g. a new extractor version). The
        new run adds a version; reviewed values come back through their decisions. False if the
        document is missing or still in flight."""
        with self.session() as s:
            rc = s.execute(update(Document).where(
                Document.id == document_id, Document.status.in_(FINISHED_STATUSES),
            ).values(status="queued", stage=None, attempts=0, redeliveries=0, lease_owner=None,
                     lease_until=None, pages_expected=None, pages_done=0,
                     deadline_at=utcnow() + self.queued_deadline)).rowcount
            if rc == 1:
                s.execute(update(Page).where(Page.document_id == document_id).values(result=None, status="pending"))
                audit(s, "reextract", "document", document_id, document_id=document_id, user_id=user_id)
            return rc == 1

    def extraction_versions(self, document_id: int) -> list[dict[str, Any]]:
        """All versions of a document: id, version, kind, extractor_version, status, created_at."""
        with self.session() as s:
            return [dict(id=e.id, version=e.version, kind=e.kind, extractor_version=e.extractor_version,
                         status=e.status, created_at=e.created_at, based_on_id=e.based_on_id)
                    for e in s.scalars(select(Extraction).where(Extraction.document_id == document_id)
                                       .order_by(Extraction.version))]

    def iter_current_results(self, status: Sequence[str] | None = None,
                             batch_id: int | None = None) -> Iterator[dict[str, Any]]:
        """Each finished document's current output-contract object plus ``id``, and per field
        ``reviewed_by`` (the reviewer's name) when a decision supplied or confirmed it — what
        exports need. Streams in id order."""
        with self.session() as s:
            users = {u.id: u.name for u in s.scalars(select(User))}
            q = (select(Document.id, Extraction).join(Extraction, Extraction.id == Document.current_extraction_id)
                 .order_by(Document.id))
            if status:
                q = q.where(Document.status.in_(list(status)))
            if batch_id is not None:
                q = q.where(Document.id.in_(select(BatchItem.document_id).where(BatchItem.batch_id == batch_id)))
            for doc_id, ext in s.execute(q).yield_per(200):
                out = dict(ext.result or {})
                out["id"] = doc_id
                reviewed = {f.key: users.get(f.reviewed_by) for f in ext.fields if f.reviewed_by}
                if reviewed:
                    out["fields"] = {k: ({**v, "reviewed_by": reviewed[k]} if k in reviewed else v)
                                     for k, v in out.get("fields", {}).items()}
                yield out

    # ------------------------------------------------------------------ review (issue 5)

    def claim_next_review_item(self, user_id: int, *, kinds: Sequence[str] = ("flagged", "spot_check", "collection"),
                               agency: str | None = None, year: int | None = None,
                               reason_contains: str | None = None, stale_after: timedelta = timedelta(minutes=30),
                               ) -> dict[str, Any] | None:
        """Hand the highest-priority open item to ``user_id`` (compare-and-set: two reviewers
        never get the same item; an item claimed longer than ``stale_after`` is up for grabs).
        Returns the item as a dict, or None when the queue is empty."""
        now = utcnow()
        for _ in range(20):
            with self.session() as s:
                q = (select(ReviewItem).join(Document, Document.id == ReviewItem.document_id)
                     .where(ReviewItem.kind.in_(list(kinds)),
                            or_(ReviewItem.state == "open",
                                (ReviewItem.state == "claimed") & (ReviewItem.claimed_at < now - stale_after)))
                     .order_by(ReviewItem.priority.desc(), ReviewItem.document_id, ReviewItem.id).limit(1))
                if agency:
                    q = q.where(Document.agency == agency)
                if year:
                    q = q.where(Document.year == year)
                if reason_contains:
                    q = q.where(ReviewItem.reason.contains(reason_contains))
                item = s.scalar(q)
                if item is None:
                    return None
                rc = s.execute(update(ReviewItem).where(
                    ReviewItem.id == item.id, ReviewItem.state == item.state,
                    or_(ReviewItem.claimed_at == None, ReviewItem.claimed_at == item.claimed_at),  # noqa: E711
                ).values(state="claimed", claimed_by=user_id, claimed_at=now)).rowcount
                if rc == 1:
                    return _item_dict(item, user_id, now)
        return None

    def release_review_item(self, item_id: int, user_id: int) -> bool:
        """Give a claimed item back to the queue."""
        with self.session() as s:
            return s.execute(update(ReviewItem).where(
                ReviewItem.id == item_id, ReviewItem.state == "claimed", ReviewItem.claimed_by == user_id,
            ).values(state="open", claimed_by=None, claimed_at=None)).rowcount == 1

    def record_decision(self, document_id: int, key: str, verdict: str, *, value: float | None = None,
                        reviewer_id: int | None = None, note: str | None = None,
                        item_id: int | None = None) -> dict[str, Any]:
        """Record a reviewer's verdict on one field and make it the document's new version.

        ``verdict``: confirmed | corrected (``value`` required) | source_error. Writes a
        ``decisions`` row (fingerprint of the printed text), a new ``extractions`` version
        (``kind='review'``, ``based_on_id``) with the field's value set and ``review`` false,
        an audit record (old -> new), closes the item, and recomputes the document's status
        (``extracted`` once nothing is flagged). Relations are NOT re-run here: the review
        module re-runs them and passes updated checks through ``replace_checks`` if it wants.
        Returns ``{"decision_id", "extraction_id", "status"}``."""
        if verdict not in ("confirmed", "corrected", "source_error"):
            raise ValueError(f"unknown verdict {verdict!r}")
        if verdict == "corrected" and value is None:
            raise ValueError("a correction needs a value")
        with self.session() as s:
            doc = s.get(Document, document_id, with_for_update=True)
            cur = s.get(Extraction, doc.current_extraction_id) if doc and doc.current_extraction_id else None
            if cur is None or not cur.result or key not in cur.result.get("fields", {}):
                raise KeyError(f"document {document_id} has no field {key!r}")
            data = _deepcopy_json(cur.result)
            fd = data["fields"][key]
            old = fd["value"]
            dec = Decision(fingerprint=fingerprint(doc.sha256, key, fd.get("text", "")), document_id=doc.id,
                           field_key=key, printed_text=fd.get("text", ""), verdict=verdict,
                           value=value if verdict == "corrected" else old, reviewer_id=reviewer_id, note=note)
            s.add(dec)
            s.flush()
            fd["value"] = _num_out(value) if verdict == "corrected" else old
            fd["review"] = False
            status = "failed" if data["status"] == "failed" else (
                "needs_review" if any(f["review"] for f in data["fields"].values()) else "extracted")
            data["status"] = status
            version = (s.scalar(select(func.max(Extraction.version)).where(Extraction.document_id == doc.id)) or 0) + 1
            ext = Extraction(document_id=doc.id, version=version, kind="review", based_on_id=cur.id,
                             extractor_version=cur.extractor_version, status=status, error=cur.error,
                             error_code=cur.error_code, source=cur.source, format=cur.format, pages=cur.pages,
                             seconds=cur.seconds, meta=data["meta"], checks=data["checks"], result=data,
                             created_by=reviewer_id)
            s.add(ext)
            s.flush()
            prev = {f.key: f for f in cur.fields}
            for pos, (k, f) in enumerate(data["fields"].items()):
                p = prev.get(k)
                s.add(Field(extraction_id=ext.id, position=pos, key=k, value=f["value"], confidence=f["confidence"],
                            review=f["review"], reasons=f["reasons"], page=f["page"], bbox=f["bbox"],
                            text=f["text"] or "",
                            decision_id=dec.id if k == key else (p.decision_id if p else None),
                            reviewed_by=reviewer_id if k == key else (p.reviewed_by if p else None)))
            s.execute(update(ReviewItem).where(ReviewItem.document_id == doc.id, ReviewItem.field_key == key,
                                               ReviewItem.state.in_(("open", "claimed"))).values(
                state="done", decision_id=dec.id, resolved_at=utcnow()))
            s.execute(update(ReviewItem).where(ReviewItem.document_id == doc.id,
                                               ReviewItem.extraction_id == cur.id).values(extraction_id=ext.id))
            audit(s, f"decision_{verdict}", "field", None, document_id=doc.id, field_key=key,
                  user_id=reviewer_id, old=old, new=fd["value"], reason=note)
            doc.current_extraction_id = ext.id
            doc.status = status
            return {"decision_id": dec.id, "extraction_id": ext.id, "status": status}

    def replace_checks(self, extraction_id: int, checks: list[dict[str, Any]]) -> None:
        """Store re-run relation checks on an extraction (its ``checks`` and result JSON)."""
        with self.session() as s:
            ext = s.get(Extraction, extraction_id)
            ext.checks = checks
            data = _deepcopy_json(ext.result or {})
            data["checks"] = checks
            ext.result = data

    # ------------------------------------------------------------------ users and tokens

    def create_user(self, name: str, role: str = "reviewer") -> int:
        """Create (or return) the user ``name``; an existing user keeps its id, role updated."""
        if role not in ("reviewer", "admin"):
            raise ValueError("role must be reviewer or admin")
        with self.session() as s:
            user = s.scalar(select(User).where(User.name == name))
            if user is None:
                user = User(name=name, role=role)
                s.add(user)
                s.flush()
                audit(s, "user_created", "user", user.id, new={"name": name, "role": role})
            elif user.role != role:
                audit(s, "role_changed", "user", user.id, old=user.role, new=role)
                user.role = role
            return user.id

    def create_token(self, name: str, role: str = "reviewer", label: str | None = None) -> str:
        """A new bearer token for user ``name`` (created if needed). Only its hash is stored;
        the plain token is returned once."""
        user_id = self.create_user(name, role)
        token = "nb_" + secrets.token_urlsafe(32)
        with self.session() as s:
            t = Token(user_id=user_id, token_hash=hash_token(token), prefix=token[:10], label=label)
            s.add(t)
            s.flush()
            audit(s, "token_created", "token", t.id, user_id=user_id, new={"prefix": t.prefix})
        return token

    def revoke_tokens(self, name: str) -> int:
        """Revoke every token of user ``name``; returns how many."""
        with self.session() as s:
            uid = s.scalar(select(User.id).where(User.name == name))
            if uid is None:
                return 0
            n = s.execute(update(Token).where(Token.user_id == uid, Token.revoked_at == None)  # noqa: E711
                          .values(revoked_at=utcnow())).rowcount
            audit(s, "tokens_revoked", "user", uid, new={"count": n})
            return n

    def authenticate(self, token: str, admin_token: str | None = None) -> Principal | None:
        """The principal a bearer token stands for, or None. ``admin_token`` (the start-up
        ``NIANBAO_ADMIN_TOKEN``) is compared in constant time."""
        import hmac
        if not token:
            return None
        if admin_token and hmac.compare_digest(hash_token(token), hash_token(admin_token)):
            return Principal(None, "admin", "admin")
        with self.session() as s:
            row = s.execute(select(Token, User).join(User, User.id == Token.user_id).where(
                Token.token_hash == hash_token(token), Token.revoked_at == None, User.active == True,  # noqa: E711,E712
            )).first()
            if row is None:
                return None
            tok, user = row
            now = utcnow()
            if tok.last_used_at is None or now - tok.last_used_at > timedelta(minutes=5):
                tok.last_used_at = now
            return Principal(user.id, user.name, user.role)

    # ------------------------------------------------------------------ batches (issue 6)

    def find_or_start_batch(self, roots: Sequence[str], options: dict[str, Any] | None = None,
                            name: str = "") -> tuple[int, bool]:
        """The unfinished batch over exactly these ``roots`` (resume) or a new one; returns
        ``(batch_id, resumed)``."""
        roots = sorted(str(r) for r in roots)
        with self.session() as s:
            for b in s.scalars(select(Batch).where(Batch.state != "done").order_by(Batch.id.desc())):
                if sorted(b.roots or []) == roots:
                    b.state = "running"
                    return b.id, True
            b = Batch(name=name, roots=roots, options=options or {}, state="running")
            s.add(b)
            s.flush()
            return b.id, False

    def add_batch_items(self, batch_id: int, paths: Sequence[str]) -> int:
        """Register input paths as ``pending`` (paths already in the batch are left as they
        are); returns how many were new."""
        with self.session() as s:
            known = set(s.scalars(select(BatchItem.path).where(BatchItem.batch_id == batch_id)))
            new = [p for p in dict.fromkeys(paths) if p not in known]
            s.add_all(BatchItem(batch_id=batch_id, path=p, state="pending") for p in new)
            return len(new)

    def set_batch_item(self, batch_id: int, path: str, state: str, *, sha256: str | None = None,
                       size: int | None = None, document_id: int | None = None, error: str | None = None) -> None:
        """Record what became of one input path (done / duplicate / junk / failed)."""
        with self.session() as s:
            item = s.scalar(select(BatchItem).where(BatchItem.batch_id == batch_id, BatchItem.path == path))
            if item is None:
                item = BatchItem(batch_id=batch_id, path=path)
                s.add(item)
            item.state, item.error = state, error
            if sha256 is not None:
                item.sha256 = sha256
            if size is not None:
                item.size = size
            if document_id is not None:
                item.document_id = document_id

    def batch_items(self, batch_id: int, state: str | None = None) -> list[dict[str, Any]]:
        """Items of a batch (optionally one state), in path order."""
        with self.session() as s:
            q = select(BatchItem).where(BatchItem.batch_id == batch_id).order_by(BatchItem.path)
            if state:
                q = q.where(BatchItem.state == state)
            return [dict(path=i.path, state=i.state, sha256=i.sha256, size=i.size, document_id=i.document_id,
                         error=i.error) for i in s.scalars(q)]

    def batch_counts(self, batch_id: int) -> dict[str, int]:
        with self.session() as s:
            return {st: n for st, n in s.execute(select(BatchItem.state, func.count())
                                                 .where(BatchItem.batch_id == batch_id).group_by(BatchItem.state))}

    def finish_batch(self, batch_id: int, state: str = "done") -> None:
        with self.session() as s:
            b = s.get(Batch, batch_id)
            b.state = state
            if state == "done":
                b.finished_at = utcnow()


# --------------------------------------------------------------------------- helpers

def audit(s: Session, action: str, entity: str, entity_id: int | None, *, document_id: int | None = None,
          field_key: str | None = None, user_id: int | None = None, actor: str | None = None,
          old: Any = None, new: Any = None, reason: str | None = None) -> None:
    """Append an audit record in the caller's transaction."""
    s.add(AuditLog(action=action, entity=entity, entity_id=entity_id, document_id=document_id,
                   field_key=field_key, user_id=user_id, actor=actor or ("user" if user_id else "system"),
                   old=old, new=new, reason=reason))


def _latest_decisions(s: Session, document_id: int) -> dict[str, Decision]:
    out: dict[str, Decision] = {}
    for d in s.scalars(select(Decision).where(Decision.document_id == document_id).order_by(Decision.id)):
        out[d.fingerprint] = d
    return out


def _deepcopy_json(obj: Any) -> Any:
    import json
    return json.loads(json.dumps(obj))


def _doc_summary(doc: Document) -> dict[str, Any]:
    return {"id": doc.id, "filename": doc.filename, "sha256": doc.sha256, "size": doc.size,
            "format": doc.format, "status": doc.status, "error": doc.error, "error_code": doc.error_code,
            "meta": doc.meta or {}, "attempts": doc.attempts, "redeliveries": doc.redeliveries,
            "pages_expected": doc.pages_expected, "pages_done": doc.pages_done,
            "created_at": doc.created_at.isoformat() if doc.created_at else None,
            "finished_at": doc.finished_at.isoformat() if doc.finished_at else None}


def _item_dict(item: ReviewItem, user_id: int, at: datetime) -> dict[str, Any]:
    return {"id": item.id, "document_id": item.document_id, "extraction_id": item.extraction_id,
            "field_id": item.field_id, "field_key": item.field_key, "kind": item.kind, "reason": item.reason,
            "priority": item.priority, "details": item.details or {}, "claimed_by": user_id, "claimed_at": at}


_default: Store | None = None


def default_store() -> Store:
    """The process's store, built from the environment's settings on first use."""
    global _default
    if _default is None:
        _default = Store.from_settings()
    return _default
