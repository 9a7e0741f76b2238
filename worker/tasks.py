"""Celery tasks: thin wrappers that take ids and call ``worker.jobs``.

Retries are for transient trouble only (database or broker unreachable), bounded, with
exponential backoff; bad input never raises (``extract_bytes`` returns it as a ``failed``
result). A worker killed mid-task is handled by leases and the sweeper, and the redelivery cap
turns an input that kills its worker every time into a ``failed`` document.
"""
from __future__ import annotations

from celery.exceptions import SoftTimeLimitExceeded  # noqa: F401  (documented below)
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, OperationalError as DatabaseError

from models.options import Limits

from . import jobs
from .celery_app import app

TRANSIENT = (DatabaseError, DBAPIError, BrokerError, RedisConnectionError, RedisTimeoutError, ConnectionError)

# One document's extraction is bounded by Limits.max_seconds_per_document inside the pipeline;
# the Celery limits only catch a stage that ignores it (soft: the task fails cleanly; hard: the
# pool process is killed, which counts as a redelivery).
_SOFT = Limits().max_seconds_per_document * 2 + 60
_COMMON = dict(bind=True, acks_late=True, reject_on_worker_lost=True, autoretry_for=TRANSIENT,
               max_retries=5, retry_backoff=2, retry_backoff_max=120, retry_jitter=True,
               soft_time_limit=_SOFT, time_limit=_SOFT + 60)


@app.task(name=jobs.PROCESS_DOCUMENT, **_COMMON)
def process_document(self, document_id: int) -> str:
    """Claim the document and extract it (or fan out its pages, or join them)."""
    return jobs.advance_document(document_id, jobs.owner_id(self.request.id))


@app.task(name=jobs.OCR_PAGE, **_COMMON)
def ocr_page(self, document_id: int, page_no: int) -> str:
    """Read one page of a paged document; the last page enqueues the join."""
    return jobs.process_page(document_id, page_no, jobs.owner_id(self.request.id))


@app.task(name="nianbao.sweep", bind=True, acks_late=True, ignore_result=True)
def sweep(self) -> dict:
    """Re-enqueue stuck documents (for ``celery beat``; workers also sweep on their own)."""
    return jobs.sweep()
