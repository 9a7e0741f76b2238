"""Database tables of the store (SQLAlchemy 2 declarative). Definitions only: no engine, no I/O.

The repository functions that read and write these tables live in ``worker/store.py``; the
Alembic migrations in ``worker/migrations/`` create them. Who uses what:

- service (issue 4): ``documents``, ``blobs``, ``pages``, ``extractions``, ``fields``,
  ``users``, ``tokens``, ``audit_log``;
- review queue (issue 5): ``review_items``, ``decisions`` (keyed by a fingerprint that survives
  re-extraction), ``fields.reviewed_by``/``decision_id``, ``audit_log``;
- archive (issue 6): ``batches`` and ``batch_items`` (resumable per-path state of one run),
  ``documents.sha256`` for dedupe, ``extractions``/``fields`` for export.

Status values are plain strings (not database enums) so a new state is a code change, not a
migration; the allowed values are the tuples below.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Double, ForeignKey, Index, Integer,
                        LargeBinary, MetaData, String, Text, TypeDecorator, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Public document status (the output contract's status plus the two in-flight states).
DOCUMENT_STATUSES = ("queued", "running", "extracted", "needs_review", "failed")
FINISHED_STATUSES = ("extracted", "needs_review", "failed")
# Internal stage of a running document: one unit, per-page OCR fan-out, or joining the pages.
STAGES = ("whole", "pages", "join")
PAGE_STATUSES = ("pending", "running", "done", "failed")
REVIEW_STATES = ("open", "claimed", "done", "superseded")
REVIEW_KINDS = ("flagged", "spot_check", "collection")
VERDICTS = ("confirmed", "corrected", "source_error")
ROLES = ("reviewer", "admin")
BATCH_ITEM_STATES = ("pending", "done", "duplicate", "junk", "failed")

# Stable constraint names so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend: SQLite keeps naive UTC text, PostgreSQL a
    ``timestamptz``; Python always sees aware UTC values, so comparisons never mix the two."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


TS = UTCDateTime()


class Blob(Base):
    """Content-addressed bytes kept in the database (``NIANBAO_BLOBS=db``); the file store
    (``$NIANBAO_HOME/blobs/ab/cd/<sha256>``) keeps no row here."""

    __tablename__ = "blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)


class Document(Base):
    """One uploaded file, identified by the sha256 of its bytes (same bytes = same document).

    ``status`` is public (queued/running/extracted/needs_review/failed). While running,
    ``stage`` says what runs (``whole``: one extraction; ``pages``: per-page OCR tasks, joined
    when ``pages_done == pages_expected``; ``join``: assembling the pages), ``lease_owner`` /
    ``lease_until`` say who holds it and until when (renewed by a heartbeat); a lease that runs
    out means its worker died, and the sweeper re-enqueues the document. ``attempts`` counts
    claims, ``redeliveries`` claims that found a dead worker's expired lease (capped: a poison
    input ends ``failed``). ``deadline_at`` is when a queued document counts as stuck.
    """

    __tablename__ = "documents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    filename: Mapped[str] = mapped_column(Text, default="")
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    format: Mapped[Optional[str]] = mapped_column(String(16))
    blob_key: Mapped[str] = mapped_column(String(80))            # "file:<sha>" or "db:<sha>"
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    stage: Mapped[Optional[str]] = mapped_column(String(8))
    error: Mapped[Optional[str]] = mapped_column(Text)
    error_code: Mapped[Optional[str]] = mapped_column(String(40))
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    agency: Mapped[Optional[str]] = mapped_column(Text, index=True)
    year: Mapped[Optional[int]] = mapped_column(Integer, index=True)
    template: Mapped[Optional[str]] = mapped_column(String(8))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    redeliveries: Mapped[int] = mapped_column(Integer, default=0)
    enqueues: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[Optional[str]] = mapped_column(String(200))
    lease_until: Mapped[Optional[datetime]] = mapped_column(TS)
    deadline_at: Mapped[Optional[datetime]] = mapped_column(TS, index=True)
    pages_expected: Mapped[Optional[int]] = mapped_column(Integer)
    pages_done: Mapped[int] = mapped_column(Integer, default=0)
    current_extraction_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("extractions.id", use_alter=True, ondelete="SET NULL"))
    uploaded_by: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TS, default=utcnow, onupdate=utcnow)
    started_at: Mapped[Optional[datetime]] = mapped_column(TS)
    finished_at: Mapped[Optional[datetime]] = mapped_column(TS)

    pages: Mapped[list["Page"]] = relationship(back_populates="document", cascade="all, delete-orphan",
                                               order_by="Page.page_no")
    extractions: Mapped[list["Extraction"]] = relationship(
        back_populates="document", foreign_keys="Extraction.document_id",
        cascade="all, delete-orphan", order_by="Extraction.version")


class Page(Base):
    """One page of a paged document: its per-page OCR state and output, its rendered image.

    ``result`` holds the page reader's output (pickled: only nianbao's own workers read it);
    ``image_key`` a blob key of the page PNG for the reviewer. Same lease fields as documents.
    """

    __tablename__ = "pages"
    __table_args__ = (UniqueConstraint("document_id", "page_no"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    page_no: Mapped[int] = mapped_column(Integer)                # 1-based
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    redeliveries: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[Optional[str]] = mapped_column(String(200))
    lease_until: Mapped[Optional[datetime]] = mapped_column(TS)
    result: Mapped[Optional[bytes]] = mapped_column(LargeBinary)
    error: Mapped[Optional[str]] = mapped_column(Text)
    image_key: Mapped[Optional[str]] = mapped_column(String(80))
    width: Mapped[Optional[int]] = mapped_column(Integer)
    height: Mapped[Optional[int]] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(TS, default=utcnow, onupdate=utcnow)

    document: Mapped[Document] = relationship(back_populates="pages")


class Extraction(Base):
    """One version of a document's values. Versions only grow: a re-extraction (new extractor
    version) or a reviewer's correction (``kind='review'``, ``based_on_id`` = the version it
    corrects) adds a row; ``documents.current_extraction_id`` points at the one in force.
    ``result`` is the output-contract dict as the extractor returned it (before decisions)."""

    __tablename__ = "extractions"
    __table_args__ = (UniqueConstraint("document_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)                # 1, 2, ... per document
    kind: Mapped[str] = mapped_column(String(16), default="extractor")   # extractor | review
    based_on_id: Mapped[Optional[int]] = mapped_column(ForeignKey("extractions.id", ondelete="SET NULL"))
    extractor_version: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16))              # extracted | needs_review | failed
    error: Mapped[Optional[str]] = mapped_column(Text)
    error_code: Mapped[Optional[str]] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(Text, default="")
    format: Mapped[Optional[str]] = mapped_column(String(16))
    pages: Mapped[Optional[int]] = mapped_column(Integer)
    seconds: Mapped[Optional[float]] = mapped_column(Double)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    checks: Mapped[list[Any]] = mapped_column(JSON, default=list)
    result: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    created_by: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)

    document: Mapped[Document] = relationship(back_populates="extractions", foreign_keys=[document_id])
    fields: Mapped[list["Field"]] = relationship(back_populates="extraction", cascade="all, delete-orphan",
                                                 order_by="Field.position")


class Field(Base):
    """One canonical field of one extraction version (see shared/spec/output.md).

    ``value`` is stored as a double (counts and 万元 amounts); ``store`` turns integral values
    back into ints. ``decision_id``/``reviewed_by`` are set when a reviewer's decision supplied
    or confirmed the value."""

    __tablename__ = "fields"
    __table_args__ = (UniqueConstraint("extraction_id", "key"), Index("ix_fields_key_review", "key", "review"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    extraction_id: Mapped[int] = mapped_column(ForeignKey("extractions.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)    # order in the output object
    key: Mapped[str] = mapped_column(String(120))
    value: Mapped[Optional[float]] = mapped_column(Double)
    confidence: Mapped[float] = mapped_column(Double, default=0.0)
    review: Mapped[bool] = mapped_column(Boolean, default=False)
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    page: Mapped[Optional[int]] = mapped_column(Integer)
    bbox: Mapped[Optional[list[Any]]] = mapped_column(JSON)
    text: Mapped[str] = mapped_column(Text, default="")
    decision_id: Mapped[Optional[int]] = mapped_column(ForeignKey("decisions.id", ondelete="SET NULL"))
    reviewed_by: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    extraction: Mapped[Extraction] = relationship(back_populates="fields")


class ReviewItem(Base):
    """Work for a person: one per flagged field of a document's current extraction (``kind``
    ``flagged``), a spot check of an unflagged field (``spot_check``) or a collection-level
    violation (``collection``, issue 6). ``state``: open -> claimed (``claimed_by``,
    ``claimed_at``) -> done (``decision_id``), or superseded by a newer extraction."""

    __tablename__ = "review_items"
    __table_args__ = (Index("ix_review_items_state_priority", "state", "priority"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    extraction_id: Mapped[Optional[int]] = mapped_column(ForeignKey("extractions.id", ondelete="CASCADE"))
    field_id: Mapped[Optional[int]] = mapped_column(ForeignKey("fields.id", ondelete="CASCADE"))
    field_key: Mapped[Optional[str]] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16), default="flagged")
    reason: Mapped[str] = mapped_column(Text, default="")
    priority: Mapped[int] = mapped_column(Integer, default=0)    # higher first
    state: Mapped[str] = mapped_column(String(16), default="open")
    claimed_by: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    claimed_at: Mapped[Optional[datetime]] = mapped_column(TS)
    decision_id: Mapped[Optional[int]] = mapped_column(ForeignKey("decisions.id", ondelete="SET NULL"))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    resolved_at: Mapped[Optional[datetime]] = mapped_column(TS)


class Decision(Base):
    """A reviewer's verdict on a printed cell, keyed by ``fingerprint`` =
    sha256(document sha256, key, printed text) so it survives re-extraction: a later extraction
    that reads the same text for the same key of the same file gets the decision applied; if the
    printed text reads differently, it does not. ``verdict``: confirmed (value stands),
    corrected (``value`` replaces it), source_error (the printed value stands; the organ's table
    is wrong as printed). The newest decision for a fingerprint wins."""

    __tablename__ = "decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    field_key: Mapped[str] = mapped_column(String(120))
    printed_text: Mapped[str] = mapped_column(Text, default="")
    verdict: Mapped[str] = mapped_column(String(16))
    value: Mapped[Optional[float]] = mapped_column(Double)
    reviewer_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)


class AuditLog(Base):
    """Who did what, when: ``old`` -> ``new`` (JSON) on ``entity``/``entity_id``, with a reason.
    ``actor`` is a name ("system", "worker@host", a user's name) for rows without a user."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(TS, default=utcnow, index=True)
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(200), default="system")
    action: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[Optional[int]] = mapped_column(Integer)
    document_id: Mapped[Optional[int]] = mapped_column(Integer, index=True)
    field_key: Mapped[Optional[str]] = mapped_column(String(120))
    old: Mapped[Optional[Any]] = mapped_column(JSON)
    new: Mapped[Optional[Any]] = mapped_column(JSON)
    reason: Mapped[Optional[str]] = mapped_column(Text)


class User(Base):
    """A reviewer or an admin. Authentication is by tokens (``tokens``); issue 5 may add a
    password login on top."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    role: Mapped[str] = mapped_column(String(16), default="reviewer")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[Optional[str]] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)


class Token(Base):
    """An API bearer token. Only ``sha256(token)`` is stored; ``prefix`` (first characters)
    lets an admin tell tokens apart."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    label: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    last_used_at: Mapped[Optional[datetime]] = mapped_column(TS)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(TS)


class Batch(Base):
    """One archive run (issue 6): what was asked (``roots``, ``options``), where it stands.
    A rerun with the same roots finds the batch and resumes from its ``batch_items``."""

    __tablename__ = "batches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text, default="")
    roots: Mapped[list[Any]] = mapped_column(JSON, default=list)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="running")   # running | done | interrupted
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TS, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[Optional[datetime]] = mapped_column(TS)


class BatchItem(Base):
    """One input path of a batch (a file, or ``archive.zip!member``) and what became of it:
    pending -> done (``document_id``) | duplicate (same sha256 as another item) | junk (not a
    report input, ``error`` says why) | failed."""

    __tablename__ = "batch_items"
    __table_args__ = (UniqueConstraint("batch_id", "path"), Index("ix_batch_items_batch_state", "batch_id", "state"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    size: Mapped[Optional[int]] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    document_id: Mapped[Optional[int]] = mapped_column(ForeignKey("documents.id", ondelete="SET NULL"))
    error: Mapped[Optional[str]] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(TS, default=utcnow, onupdate=utcnow)
