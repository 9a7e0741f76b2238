"""What the Celery tasks do, as plain functions (testable without a broker).

A document moves forward only through ``advance_document``, which is idempotent: any number of
messages for the same document (duplicates, redeliveries, the sweeper's re-sends) lead to one
run and one stored result, because every step is a compare-and-set on the store.

    upload -> queued --claim--> running/whole --extract_bytes--> extracted | needs_review | failed
                                running/pages --one ocr_page task per page--> pages_done == expected
                                              --claim_join--> running/join --assemble--> finished

Paged formats fan out only when the PDF reader offers the per-page API
(``extractors.read_pdf.pdf_page_count/read_pdf_page/assemble_pages``); otherwise, or for a
one-page file, the document is one unit.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

from extractors.pipeline import extract_bytes, extract_pages, sniff_format
from models.errors import InputError
from models.options import ExtractOptions
from models.result import ExtractionResult

from .settings import settings
from .store import Store, default_store

log = logging.getLogger(__name__)

PROCESS_DOCUMENT = "nianbao.process_document"
OCR_PAGE = "nianbao.ocr_page"


def owner_id(task_id: str | None = None) -> str:
    """Who holds a lease: host, process and task (shown in the audit log)."""
    return f"{socket.gethostname()}:{os.getpid()}:{(task_id or 'local')[:12]}"


def extract_options() -> ExtractOptions:
    """The worker's extraction options: defaults plus the installation's learned label rules."""
    from .review import review_settings
    return ExtractOptions(rules_file=str(review_settings().rules_file))


def after_saved(store: Store, document_id: int) -> None:
    """Review bookkeeping after a stored extraction: re-apply decisions' relations and set queue
    priorities. Never fails the document. (Spot checks are sampled per archive batch, at its end.)"""
    from .review import after_extraction
    try:
        after_extraction(store, document_id, spot_check_percent=0)
    except Exception:
        log.warning("review bookkeeping failed for document %s", document_id, exc_info=True)


# --------------------------------------------------------------------------- enqueueing

def enqueue_document(document_id: int) -> None:
    """Send one ``process_document`` message (raises if the broker cannot be reached)."""
    from .celery_app import app
    app.send_task(PROCESS_DOCUMENT, args=[document_id], queue=settings().queue)


def enqueue_pages(document_id: int, pages: Iterable[int]) -> None:
    """Fan out one ``ocr_page`` message per page (a Celery group; nothing waits on it)."""
    from celery import group
    from .celery_app import app
    sigs = [app.signature(OCR_PAGE, args=[document_id, n], queue=settings().queue) for n in pages]
    if sigs:
        group(sigs).apply_async()


# --------------------------------------------------------------------------- heartbeat

@contextmanager
def heartbeat(renew: Callable[[], bool], every: float) -> Iterator[None]:
    """Renew a lease every ``every`` seconds while the block runs (a thread: the extraction
    itself is one long call). A worker killed mid-block stops renewing, the lease runs out, and
    the sweeper hands the work to another worker."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every):
            try:
                if not renew():
                    log.warning("lease lost while working; the result will be discarded")
                    return
            except Exception:  # a database blip: try again next beat
                log.warning("lease renewal failed", exc_info=True)

    t = threading.Thread(target=run, name="nianbao-heartbeat", daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(timeout=5)


# --------------------------------------------------------------------------- extraction calls

def extract_whole(data: bytes, filename: str, options: ExtractOptions) -> ExtractionResult:
    """The one in-process entry point (what the CLI runs)."""
    return extract_bytes(data, filename, options)


def _fanout_api():
    """The PDF reader's per-page functions, or None while they do not exist."""
    try:
        from extractors import read_pdf
    except Exception:
        return None
    names = ("pdf_page_count", "read_pdf_page", "assemble_pages")
    return read_pdf if all(hasattr(read_pdf, n) for n in names) else None


def extract_from_pages(pages: list, data: bytes, filename: str, options: ExtractOptions) -> ExtractionResult:
    """Join per-page reads into a result, with ``extract_bytes``' failures-as-values rules."""
    return extract_pages(pages, data, filename, options)


# --------------------------------------------------------------------------- the steps

def advance_document(document_id: int, owner: str, store: Store | None = None) -> str:
    """Move a document one step forward; returns what happened (for logs and tests)."""
    store = store or default_store()
    lease_beat = max(store.lease.total_seconds() / 3, 0.2)
    claim = store.claim_document(document_id, owner)
    if claim.outcome == "pages":
        info = store.document_info(document_id) or {}
        if (info.get("pages_done") or 0) >= (info.get("pages_expected") or 0):
            if not store.claim_join(document_id, owner):
                return "busy"
            return _join(store, document_id, owner, lease_beat)
        missing = store.pages_needing_work(document_id)
        enqueue_pages(document_id, missing)
        store.touch_pages_document(document_id)
        return f"pages_requeued:{len(missing)}"
    if claim.outcome != "claimed":
        return claim.outcome
    try:
        return _run_claimed(store, document_id, owner, claim.stage, lease_beat)
    except Exception:
        # A transient error (database, broker) escapes to Celery's retry: hand the document back
        # so the retry can claim it at once instead of waiting for the lease to run out.
        try:
            store.release_document(document_id, owner)
        except Exception:
            log.warning("could not release document %s", document_id, exc_info=True)
        raise


def _run_claimed(store: Store, document_id: int, owner: str, stage: str | None, lease_beat: float) -> str:
    if stage == "join":
        return _join(store, document_id, owner, lease_beat)
    data, filename = store.load_original(document_id)
    options = extract_options()
    api = _fanout_api()
    if api is not None and sniff_format(data, filename) == "pdf":
        try:
            n = api.pdf_page_count(data, options)
        except InputError:
            n = 0                     # extract_bytes turns it into the failure value
        if 1 < n <= options.limits.max_pages:
            if store.start_pages(document_id, owner, n):
                enqueue_pages(document_id, range(1, n + 1))
                return f"fanned_out:{n}"
            return "lease_lost"
    with heartbeat(lambda: store.renew_document_lease(document_id, owner), lease_beat):
        result = extract_whole(data, filename, options)
    saved = store.save_result(document_id, result, owner=owner)
    if saved:
        after_saved(store, document_id)
    return result.status if saved else "lease_lost"


def _join(store: Store, document_id: int, owner: str, lease_beat: float) -> str:
    data, filename = store.load_original(document_id)
    pages = store.page_results(document_id)
    with heartbeat(lambda: store.renew_document_lease(document_id, owner), lease_beat):
        result = extract_from_pages(pages, data, filename, extract_options())
    saved = store.save_result(document_id, result, owner=owner)
    if saved:
        after_saved(store, document_id)
    return result.status if saved else "lease_lost"


def process_page(document_id: int, page_no: int, owner: str, store: Store | None = None) -> str:
    """Read (OCR) one page and store it; the page that completes the count enqueues the join."""
    store = store or default_store()
    claim = store.claim_page(document_id, page_no, owner)
    if claim.outcome != "claimed":
        return claim.outcome
    data, filename = store.load_original(document_id)
    api = _fanout_api()
    try:
        with heartbeat(lambda: store.renew_page_lease(document_id, page_no, owner),
                       max(store.lease.total_seconds() / 3, 0.2)):
            page = api.read_pdf_page(data, page_no, extract_options())
    except InputError as e:
        store.fail_pages_document(document_id, ExtractionResult.failed(filename, claim.sha256, e.code, e.message))
        return "failed"
    except Exception as e:
        log.exception("reading page %s of %s crashed", page_no, filename)
        store.fail_pages_document(document_id, ExtractionResult.failed(
            filename, claim.sha256, "internal_error",
            f"nianbao could not read page {page_no} of this file ({type(e).__name__}); "
            "it has been logged, please report it with the file."))
        return "failed"
    done, expected = store.save_page(document_id, page_no, owner, page)
    if done >= expected:
        enqueue_document(document_id)          # the join; the sweeper re-drives it if this is lost
    return f"page_done:{done}/{expected}"


# --------------------------------------------------------------------------- sweeper

def broker_lost_state() -> bool:
    """True when the Redis broker no longer has our marker key: it restarted (it keeps nothing
    on disk here) or this is its first use, so every queued message may be gone."""
    url = settings().broker_url
    if not url.startswith(("redis://", "rediss://")):
        return False
    import redis
    r = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        return bool(r.set(f"nianbao:broker-epoch:{settings().queue}", str(time.time()), nx=True))
    finally:
        r.close()


def sweep(store: Store | None = None, enqueue: Callable[[int], None] = enqueue_document) -> dict[str, int]:
    """Re-enqueue every document stuck in queued/running past its deadline (all queued ones
    when the broker lost its messages). Safe to run anywhere, any number of times."""
    store = store or default_store()
    try:
        reset = broker_lost_state()
    except Exception:
        log.warning("broker unreachable; sweeping by deadlines only", exc_info=True)
        reset = False
    ids = store.stuck_documents(all_queued=reset)
    sent = 0
    for i, doc_id in enumerate(ids):
        try:
            enqueue(doc_id)
            sent += 1
        except Exception:
            log.warning("could not enqueue document %s; will retry", doc_id, exc_info=True)
            store.expire_deadlines(ids[i:])
            break
    if ids:
        log.info("sweep: re-enqueued %d of %d stuck documents (broker reset: %s)", sent, len(ids), reset)
    return {"stuck": len(ids), "requeued": sent, "broker_reset": int(reset)}


_sweeper: tuple[threading.Thread, threading.Event] | None = None


def start_sweeper_thread(every: float | None = None) -> None:
    """Sweep now and then every ``NIANBAO_SWEEP_SECONDS`` in a daemon thread (0 disables)."""
    global _sweeper
    every = settings().sweep_seconds if every is None else every
    if every <= 0 or _sweeper is not None:
        return
    stop = threading.Event()

    def run() -> None:
        while True:
            try:
                sweep()
            except Exception:
                log.warning("sweep failed", exc_info=True)
            if stop.wait(every):
                return

    t = threading.Thread(target=run, name="nianbao-sweeper", daemon=True)
    t.start()
    _sweeper = (t, stop)


def stop_sweeper_thread() -> None:
    global _sweeper
    if _sweeper is not None:
        _sweeper[1].set()
        _sweeper = None
