"""``nianbao archive``: digitize a whole directory tree (or zip) of reports, resumably.

Contract
--------
``discover(roots, limits)`` walks folders and zip files and yields one ``Input`` per candidate
report file and one ``Skipped`` per thing it will not open (hidden files, symlinks leading out of
the tree, unsafe or oversized zip members, zips inside zips). ``run_archive`` then, for one
*batch* (``batches``/``batch_items`` in the store, found again by its roots on a rerun):

1. registers every discovered path as a batch item (``pending``; paths already known keep their
   state, so a rerun after Ctrl-C or a crash only looks at what is still pending);
2. reads each pending file once, hashes it (sha256) and sniffs its format: not a report input
   -> ``junk`` with a reason; the same bytes as an item already handled -> ``duplicate`` (merged
   into that item's document); bytes already finished in the store -> linked, not re-extracted;
3. stores the original (``Store.add_document``) and extracts it in a process pool (or enqueues
   it to the Celery service with ``queue=True``), then saves the result (``Store.save_result``,
   which refuses a second result for a finished document) and marks the item ``done``/``failed``.

Why a file is never processed twice: an item becomes final only after its result is committed;
a document that already has a result is never extracted again (its sha256 finds it); and
``save_result`` keeps exactly one extractor result per run even if two processes race.

The main process reads, hashes, dedupes, stores originals and keeps the batch items; each pool
worker extracts and saves its result with its own store connection (``save_job``), because
saving ~200 fields costs more than extracting a text report. A worker that cannot save hands
its result back and the main process saves it.
"""
from __future__ import annotations

import logging
import os
import signal
import stat
import time
import zipfile
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator, Sequence

from extractors.pipeline import extract_bytes, sha256_hex, sniff_format
from models.errors import NO_TABLES, NOT_A_REPORT, TIMEOUT
from models.options import ExtractOptions, Limits
from models.result import ExtractionResult
from models.tables import FINISHED_STATUSES

from .store import Store

log = logging.getLogger(__name__)

ZIP_SEPARATOR = "!"            # batch item path of a zip member: "/abs/archive.zip!dir/file.txt"
FINAL_STATES = ("done", "duplicate", "junk", "failed")
# An extraction that found no report tables means the file is not a report: junk, not a failure.
JUNK_ERROR_CODES = (NO_TABLES, NOT_A_REPORT, "unsupported_type", "empty_file", "not_text")
# Files that are never report inputs (OS / tool litter); reported as junk, never opened.
_LITTER_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}
_LITTER_DIRS = {"__macosx", ".git", ".svn", "__pycache__"}
_POLL_SECONDS = 5.0             # how often a waiting run looks for overdue jobs


# --------------------------------------------------------------------------- discovery

@dataclass(frozen=True, slots=True)
class Input:
    """A candidate report: a file on disk, or one member of a zip (``member`` set)."""
    key: str                  # the batch item path (stable across reruns)
    path: Path                # the file, or the zip holding the member
    member: str | None = None


@dataclass(frozen=True, slots=True)
class Skipped:
    """Something found but not opened, with a stable ``code`` and a one-sentence ``reason``."""
    key: str
    code: str
    reason: str


def discover(roots: Sequence[Path], limits: Limits = Limits()) -> Iterator[Input | Skipped]:
    """Walk ``roots`` (folders, zips or single files) in a stable order.

    Symlinks are followed only when their target stays inside the root being walked (a link out
    of the tree could expose anything on the machine); folders reached through a symlink are not
    walked (their files are archived where they really live, if inside the tree).
    """
    for root in roots:
        root = Path(os.path.abspath(root))
        if not root.exists():
            yield Skipped(str(root), "missing", f"{root} does not exist; check the path.")
        elif root.is_dir():
            yield from _walk_dir(root, limits)
        else:
            yield from _file_or_zip(root, root.parent.resolve(), limits)


def _walk_dir(root: Path, limits: Limits) -> Iterator[Input | Skipped]:
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            p = here / d
            if d.lower() in _LITTER_DIRS or d.startswith("."):
                yield Skipped(str(p), "hidden", "Hidden or tool folder (e.g. __MACOSX, .git); not a report, skipped.")
            elif p.is_symlink():
                yield Skipped(str(p), "symlink_dir", "A symlinked folder is not followed; archive its real "
                              "location instead if it holds reports.")
            else:
                keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            p = here / name
            if name.lower() in _LITTER_NAMES or name.startswith(".") or name.startswith("~$"):
                yield Skipped(str(p), "hidden", "Hidden or system file; not a report, skipped.")
                continue
            if p.is_symlink():
                try:
                    target = p.resolve(strict=True)
                except (OSError, RuntimeError):
                    yield Skipped(str(p), "broken_symlink", "A symlink whose target is missing; fix or remove it.")
                    continue
                if not target.is_relative_to(real_root):
                    yield Skipped(str(p), "symlink_outside", f"A symlink pointing outside {root} is not "
                                  "followed; copy the file into the folder to archive it.")
                    continue
            yield from _file_or_zip(p, real_root, limits)


def _file_or_zip(p: Path, real_root: Path, limits: Limits) -> Iterator[Input | Skipped]:
    try:
        st = p.stat()
    except OSError as e:
        yield Skipped(str(p), "unreadable", f"Cannot read {p.name}: {e.strerror}.")
        return
    if not stat.S_ISREG(st.st_mode):
        yield Skipped(str(p), "not_a_file", "Not a regular file (device, socket or pipe); skipped.")
        return
    if p.suffix.lower() == ".zip" or _looks_like_zip(p):
        yield from _zip_members(p, limits)
        return
    yield Input(str(p), p)


def _looks_like_zip(p: Path) -> bool:
    """A zip without the .zip extension (but not a .docx, which is a zip too)."""
    if p.suffix.lower() in (".docx", ".xlsx", ".pptx", ".odt"):
        return False
    try:
        with p.open("rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def _safe_member_name(name: str) -> bool:
    """No absolute paths, drive letters, ``..`` parts or NULs (zip-slip): we never write members
    to disk, but a name that tries to climb out of the archive is a sign of a hostile file."""
    if not name or "\x00" in name or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return False
    return ".." not in PurePosixPath(name.replace("\\", "/")).parts


def _zip_members(zpath: Path, limits: Limits) -> Iterator[Input | Skipped]:
    try:
        with zipfile.ZipFile(zpath) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        yield Skipped(str(zpath), "bad_zip", f"{zpath.name} is not a readable zip ({type(e).__name__}); "
                      "re-create the archive.")
        return
    total = 0
    members = 0
    for info in sorted(infos, key=lambda i: i.filename):
        name = info.filename
        key = f"{zpath}{ZIP_SEPARATOR}{name}"
        if info.is_dir():
            continue
        parts = [x.lower() for x in PurePosixPath(name.replace("\\", "/")).parts]
        base = parts[-1] if parts else ""
        members += 1
        if members > limits.max_zip_members:
            yield Skipped(key, "zip_too_many", f"{zpath.name} has more than {limits.max_zip_members} files; "
                          "the rest are skipped. Split the archive.")
            continue
        if not _safe_member_name(name):
            yield Skipped(key, "zip_unsafe_path", "A zip member with an absolute or '..' path is not opened "
                          "(zip-slip); re-create the archive with relative names.")
            continue
        if any(x in _LITTER_DIRS or x.startswith(".") for x in parts[:-1]) or base in _LITTER_NAMES \
                or base.startswith("."):
            yield Skipped(key, "hidden", "Hidden or system file inside the zip; not a report, skipped.")
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            yield Skipped(key, "zip_symlink", "A symlink stored in the zip is not followed; skipped.")
            continue
        if info.flag_bits & 0x1:
            yield Skipped(key, "zip_encrypted", "This zip member is password-protected; extract it yourself "
                          "and archive the folder.")
            continue
        if base.endswith(".zip"):
            yield Skipped(key, "zip_nested", "A zip inside a zip is not opened; unzip the outer archive "
                          "and archive the folder.")
            continue
        if info.file_size > limits.max_file_bytes:
            yield Skipped(key, "too_large", f"{info.file_size // 2**20} MiB uncompressed, over the "
                          f"{limits.max_file_bytes // 2**20} MiB limit; split the file.")
            continue
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 1_000_000 and ratio > limits.max_zip_ratio:
            # Small members may compress extremely well (a blank form); only big ones can hurt.
            yield Skipped(key, "zip_bomb", f"Compression ratio {ratio:.0f}:1 is over {limits.max_zip_ratio:.0f}:1 "
                          "(a zip bomb?); not opened.")
            continue
        total += info.file_size
        if total > limits.max_zip_total_bytes:
            yield Skipped(key, "zip_too_large", f"{zpath.name} unpacks to more than "
                          f"{limits.max_zip_total_bytes // 2**20} MiB; the rest is skipped. Split the archive.")
            continue
        yield Input(key, zpath, name)


class _ZipCache:
    """The zip last read from, kept open: members of one zip come one after another."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.zf: zipfile.ZipFile | None = None

    def get(self, path: Path) -> zipfile.ZipFile:
        if self.path != path:
            self.close()
            self.zf = zipfile.ZipFile(path)
            self.path = path
        return self.zf

    def close(self) -> None:
        if self.zf is not None:
            self.zf.close()
        self.zf = self.path = None


class ReadError(Exception):
    """An input could not be read: ``code`` and a one-sentence ``message``."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def read_input(item: Input, limits: Limits, zips: _ZipCache | None = None) -> bytes:
    """The bytes of one input, never more than ``limits.max_file_bytes`` (the zip header's sizes
    are not trusted: reading stops one byte past the declared size)."""
    cap = limits.max_file_bytes
    try:
        if item.member is None:
            with item.path.open("rb") as f:
                data = f.read(cap + 1)
        else:
            zf = (zips or _ZipCache()).get(item.path)
            info = zf.getinfo(item.member)
            with zf.open(info) as f:
                data = f.read(min(info.file_size, cap) + 1)
            if len(data) > info.file_size:
                raise ReadError("zip_bomb", "The zip member is bigger than its header says; not opened.")
    except ReadError:
        raise
    except FileNotFoundError:
        raise ReadError("missing", "The file disappeared while archiving; rerun to pick it up if it is back.")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, EOFError, RuntimeError) as e:
        raise ReadError("bad_zip", f"This zip member cannot be read ({type(e).__name__}); re-create the archive.")
    except OSError as e:
        raise ReadError("unreadable", f"Cannot read the file: {e.strerror or e}.")
    if len(data) > cap:
        raise ReadError("too_large", f"Over the {cap // 2**20} MiB limit; split the file.")
    return data


def display_name(key: str) -> str:
    """The file name part of an item path (for messages)."""
    return key.rsplit(ZIP_SEPARATOR, 1)[-1].replace("\\", "/").rsplit("/", 1)[-1]


# --------------------------------------------------------------------------- the worker side

_worker_store: Store | None = None


def _worker_init(url: str | None = None, blobs: str = "db") -> None:
    """Pool process start: ignore Ctrl-C and open this process's own store connection.

    Ctrl-C goes to the whole process group: only the main process handles it (it stops the pool
    and marks the batch interrupted). Workers save their own results (``save_job``) because
    ``Store.save_result`` costs several times the extraction of a text report; with the main
    process as the only writer it would be the bottleneck."""
    global _worker_store
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    if url is not None:
        _worker_store = Store(url, blobs)


def _die_with_parent() -> None:
    """Linux: get SIGKILL when the archive process dies (kill -9, OOM killer), so no orphaned
    worker keeps running; elsewhere a no-op."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)          # PR_SET_PDEATHSIG
    except Exception:
        pass


def extract_job(data: bytes, source: str, options: ExtractOptions) -> ExtractionResult:
    """One extraction (never raises for bad input)."""
    return extract_bytes(data, source, options)


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """What a pool job did: ``saved`` (this job's result is the document's), the document's
    ``status``/``error``/``error_code`` after it, and ``result`` when the job could not save
    (the main process saves it then, so nothing is lost)."""
    saved: bool
    status: str | None
    error: str | None
    error_code: str | None
    result: ExtractionResult | None = None


def save_job(document_id: int, data: bytes, source: str, options: ExtractOptions) -> JobOutcome:
    """One pool job: extract, then save through this worker's store."""
    result = extract_bytes(data, source, options)
    if _worker_store is None:
        return JobOutcome(False, None, None, None, result)
    try:
        saved = _worker_store.save_result(document_id, result)
    except Exception:                      # database trouble: hand the result back to the main process
        log.exception("saving %s failed in a worker; the main process will retry", source)
        return JobOutcome(False, None, None, None, result)
    if saved is None:
        info = _worker_store.document_info(document_id) or {}
        return JobOutcome(False, info.get("status"), info.get("error"), info.get("error_code"))
    return JobOutcome(True, result.status, result.error, result.error_code)


def _blobs_spec(store: Store) -> str:
    root = getattr(store.blobs, "root", None)
    return "db" if root is None else str(root)


# --------------------------------------------------------------------------- the run

@dataclass(slots=True)
class ArchiveSummary:
    """What one ``run_archive`` call did and where its batch stands."""
    batch_id: int
    resumed: bool
    total: int = 0                               # items in the batch
    counts: dict[str, int] = field(default_factory=dict)    # batch items per state
    extracted_now: int = 0                       # documents extracted (or enqueued) by this run
    already_final: int = 0                       # items already final when this run started
    interrupted: bool = False
    seconds: float = 0.0
    junk_reasons: Counter = field(default_factory=Counter)
    spot_checks: int = 0                         # unflagged fields sampled for review at the end

    @property
    def per_minute(self) -> float:
        return 60.0 * self.extracted_now / self.seconds if self.seconds else 0.0


Progress = Callable[[str, str], None]            # (item key, new state) after each item


@dataclass(slots=True)
class _Job:
    key: str
    document_id: int
    sha256: str
    size: int
    data: bytes
    crashes: int = 0
    submitted: float = 0.0          # time.monotonic() when handed to the pool


class _Run:
    """State of one archive run (one batch, one process pool)."""

    def __init__(self, store: Store, batch_id: int, options: ExtractOptions, workers: int,
                 queue: bool, on_item: Progress | None, enqueue: Callable[[int], None] | None):
        self.store = store
        self.batch_id = batch_id
        self.options = options
        self.workers = max(1, workers)
        self.queue = queue
        self.on_item = on_item or (lambda key, state: None)
        self.enqueue = enqueue
        self.owner_of: dict[str, int] = {}       # sha256 -> document id handled in this batch
        self.done_docs: set[int] = set()         # documents that have a ``done`` item in this batch
        self.inflight: dict[Future, _Job] = {}
        self.waiting: dict[int, list[str]] = {}  # queue mode: document id -> item keys
        self.pool: ProcessPoolExecutor | None = None
        self.extracted = 0

    # -- item outcomes -------------------------------------------------------------------

    def mark(self, key: str, state: str, *, sha256: str | None = None, size: int | None = None,
             document_id: int | None = None, error: str | None = None) -> None:
        self.store.set_batch_item(self.batch_id, key, state, sha256=sha256, size=size,
                                  document_id=document_id, error=error)
        if state == "done" and document_id is not None:
            self.done_docs.add(document_id)
        if state in FINAL_STATES:
            self.on_item(key, state)

    def link_existing(self, key: str, sha: str, size: int, document_id: int, status: str) -> None:
        """Bytes already extracted in the store: the first item of this batch holding them is
        ``done`` (linked, not re-extracted), the others are duplicates of it."""
        if document_id in self.done_docs:
            self.mark(key, "duplicate", sha256=sha, size=size, document_id=document_id,
                      error=f"Same file as document {document_id}; merged, not extracted again.")
        else:
            self.mark(key, "done", sha256=sha, size=size, document_id=document_id,
                      error=None if status != "failed" else self._doc_error(document_id))

    def _doc_error(self, document_id: int) -> str | None:
        info = self.store.document_info(document_id)
        return info.get("error") if info else None

    def finish_result(self, job: _Job, result: ExtractionResult) -> None:
        saved = self.store.save_result(job.document_id, result)
        if saved is None:
            # Someone else (a service worker, a racing run) finished it first: theirs stands.
            info = self.store.document_info(job.document_id) or {}
            status, error, code = info.get("status"), info.get("error"), info.get("error_code")
        else:
            status, error, code = result.status, result.error, result.error_code
            self.extracted += 1
        self.mark_from_status(job.key, job.sha256, job.size, job.document_id, status, error, code)

    def finish_outcome(self, job: _Job, outcome: JobOutcome) -> None:
        if outcome.result is not None:
            self.finish_result(job, outcome.result)
            return
        if outcome.saved:
            self.extracted += 1
        self.mark_from_status(job.key, job.sha256, job.size, job.document_id, outcome.status, outcome.error,
                              outcome.error_code)

    def mark_from_status(self, key: str, sha: str, size: int | None, document_id: int, status: str | None,
                         error: str | None, code: str | None) -> None:
        if status == "failed" and code in JUNK_ERROR_CODES:
            self.mark(key, "junk", sha256=sha, size=size, document_id=document_id, error=error)
        elif status == "failed":
            self.mark(key, "failed", sha256=sha, size=size, document_id=document_id, error=error)
        else:
            self.mark(key, "done", sha256=sha, size=size, document_id=document_id)

    # -- one pending input -------------------------------------------------------------------

    def handle(self, item: Input, zips: _ZipCache) -> None:
        try:
            data = read_input(item, self.options.limits, zips)
        except ReadError as e:
            state = "junk" if e.code in ("zip_bomb",) else "failed"
            self.mark(item.key, state, error=e.message)
            return
        sha, size = sha256_hex(data), len(data)
        name = display_name(item.key)
        if not data:
            self.mark(item.key, "junk", sha256=sha, size=0, error="The file is empty (0 bytes); not a report.")
            return
        fmt = sniff_format(data, name)
        if fmt is None:
            self.mark(item.key, "junk", sha256=sha, size=size,
                      error=f"Not a report input ({Path(name).suffix or 'no extension'}); skipped.")
            return
        if sha in self.owner_of:
            doc_id = self.owner_of[sha]
            self.mark(item.key, "duplicate", sha256=sha, size=size, document_id=doc_id,
                      error=f"Same bytes as another file of this archive (document {doc_id}); merged.")
            return
        existing = self.store.find_document_by_sha256(sha)
        if existing is not None and existing.status in FINISHED_STATUSES:
            self.owner_of[sha] = existing.id
            self.link_existing(item.key, sha, size, existing.id, existing.status)
            return
        added = self.store.add_document(data, item.key, format=fmt)
        self.owner_of[sha] = added.id
        if self.queue:
            self.store.set_batch_item(self.batch_id, item.key, "pending", sha256=sha, size=size,
                                      document_id=added.id)
            # Always send: the service's ``advance_document`` is idempotent, and a document left
            # queued by an interrupted run may never have had a message.
            try:
                self.enqueue(added.id)
            except Exception as e:       # broker down: stop, the item stays pending for a rerun
                raise QueueUnavailable(
                    f"Cannot enqueue to the Celery service ({type(e).__name__}: {e}); start Redis and "
                    "`nianbao` workers, or rerun without --queue to process locally.") from e
            self.store.mark_enqueued(added.id)
            self.extracted += 1
            self.waiting.setdefault(added.id, []).append(item.key)
            return
        self.submit(_Job(item.key, added.id, sha, size, data))

    # -- the pool ----------------------------------------------------------------------------

    def submit(self, job: _Job) -> None:
        if self.workers == 1:
            self.finish_result(job, extract_job(job.data, job.key, self.options))
            return
        self.ensure_pool()
        while len(self.inflight) >= 2 * self.workers:
            self.drain(block=True)
        job.submitted = time.monotonic()
        try:
            fut = self.pool.submit(save_job, job.document_id, job.data, job.key, self.options)
        except BrokenProcessPool:
            # The pool died before its failed futures were collected: the jobs in flight are the
            # suspects (this one never ran); recover, then hand this one to the fresh pool.
            self.recover_broken_pool([])
            self.submit(job)
            return
        self.inflight[fut] = job

    def ensure_pool(self) -> None:
        if self.pool is None:
            self.pool = ProcessPoolExecutor(self.workers, mp_context=get_context("fork"), initializer=_worker_init,
                                            initargs=(self.store.url, _blobs_spec(self.store)))

    def drain(self, block: bool) -> None:
        if not self.inflight:
            return
        done, _ = wait(list(self.inflight), timeout=_POLL_SECONDS if block else 0, return_when=FIRST_COMPLETED)
        if not done and block:
            self.stop_overdue()
            return
        broken: list[_Job] = []
        for fut in done:
            job = self.inflight.pop(fut)
            try:
                outcome = fut.result()
            except BrokenProcessPool:
                broken.append(job)
                continue
            except Exception as e:     # pickling trouble etc.: a bug, but the batch goes on
                log.exception("archive job crashed on %s", job.key)
                outcome = JobOutcome(False, None, None, None, ExtractionResult.failed(
                    job.key, job.sha256, "internal_error",
                    f"nianbao could not process this file ({type(e).__name__}); "
                    "it has been logged, please report it with the file."))
            job.data = b""                 # free the bytes now; the outcome is all we keep
            self.finish_outcome(job, outcome)
        if broken:
            self.recover_broken_pool(broken)

    def stop_overdue(self) -> None:
        """A job past its deadline (a reader stuck on one file) would hold its worker forever:
        stop the pool, fail the overdue files with ``timeout``, and resubmit the others. The
        deadline counts from submission, and at most two jobs per worker are submitted, so it
        is twice the per-document budget."""
        deadline = 2 * self.options.limits.max_seconds_per_document
        now = time.monotonic()
        overdue = [j for j in self.inflight.values() if now - j.submitted > deadline]
        if not overdue:
            return
        others = [j for j in self.inflight.values() if now - j.submitted <= deadline]
        self.inflight.clear()
        self.stop_pool(hard=True)
        for job in overdue:
            self.finish_result(job, self.timeout_result(job))
        for job in others:
            self.submit(job)

    def recover_broken_pool(self, broken: list[_Job]) -> None:
        """A worker process died (segfault in a native reader, out of memory). We cannot tell
        which file killed it, so each job it may have held is run again alone in a fresh pool:
        one that kills its worker alone is the culprit and is given up as failed; the others
        finish normally."""
        suspects = broken + list(self.inflight.values())
        self.inflight.clear()
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None
        for job in suspects:
            self.run_alone(job)

    def run_alone(self, job: _Job) -> None:
        self.ensure_pool()
        job.submitted = time.monotonic()
        try:
            fut = self.pool.submit(save_job, job.document_id, job.data, job.key, self.options)
            outcome = fut.result(timeout=2 * self.options.limits.max_seconds_per_document)
        except BrokenProcessPool:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None
            job.crashes += 1
            outcome = JobOutcome(False, None, None, None, ExtractionResult.failed(
                job.key, job.sha256, "worker_crashed",
                "Processing this file stopped the worker process, so it was given up; "
                "check that the file opens, re-save or split it, and archive it again."))
        except TimeoutError:
            self.stop_pool(hard=True)
            outcome = JobOutcome(False, None, None, None, self.timeout_result(job))
        job.data = b""
        self.finish_outcome(job, outcome)

    def timeout_result(self, job: _Job) -> ExtractionResult:
        return ExtractionResult.failed(
            job.key, job.sha256, TIMEOUT,
            f"Processing this file took over {self.options.limits.max_seconds_per_document:.0f} s, so it "
            "was stopped; split the file or raise Limits.max_seconds_per_document.")

    def stop_pool(self, hard: bool) -> None:
        if self.pool is None:
            return
        if hard:
            # Ctrl-C: do not wait for slow OCR jobs; their files stay pending for the rerun.
            procs = list(getattr(self.pool, "_processes", {}).values())
            self.pool.shutdown(wait=False, cancel_futures=True)
            for p in procs:
                if p.is_alive():
                    p.terminate()
        else:
            self.pool.shutdown(wait=True)
        self.pool = None

    # -- queue mode --------------------------------------------------------------------------

    def poll_queue(self) -> None:
        """Mark items whose enqueued document has finished."""
        for doc_id in list(self.waiting):
            info = self.store.document_info(doc_id)
            if info is None:
                for key in self.waiting.pop(doc_id):
                    self.mark(key, "failed", document_id=None, error="The stored document disappeared; rerun.")
            elif info["status"] in FINISHED_STATUSES:
                keys = self.waiting.pop(doc_id)
                self.mark_from_status(keys[0], info["sha256"], None, doc_id, info["status"], info.get("error"),
                                      info.get("error_code"))
                for key in keys[1:]:
                    self.mark(key, "duplicate", document_id=doc_id,
                              error=f"Same bytes as another file of this archive (document {doc_id}); merged.")


def run_archive(store: Store, roots: Sequence[Path | str], *, workers: int | None = None, queue: bool = False,
                options: ExtractOptions = ExtractOptions(), name: str = "",
                on_start: Callable[[int, int], None] | None = None, on_item: Progress | None = None,
                enqueue: Callable[[int], None] | None = None, queue_poll_seconds: float = 1.0) -> ArchiveSummary:
    """Archive ``roots`` into ``store`` as one resumable batch; see the module docstring.

    ``on_start(total, already_final)`` is called once the batch's items are known, ``on_item``
    after each item reaches a final state (the CLI drives its progress bar with them).
    ``KeyboardInterrupt`` stops the pool, marks the batch ``interrupted`` and is re-raised
    after the summary is filled in (``summary.interrupted``), so a rerun resumes.
    """
    started = time.perf_counter()
    root_paths = [Path(os.path.abspath(r)) for r in roots]
    workers = workers or os.cpu_count() or 1
    if queue and enqueue is None:
        enqueue = queue_enqueuer()
    batch_id, resumed = store.find_or_start_batch([str(r) for r in root_paths],
                                                  {"workers": workers, "queue": queue}, name=name)
    summary = ArchiveSummary(batch_id, resumed)
    run = _Run(store, batch_id, options, workers, queue, on_item, enqueue)

    found = list(discover(root_paths, options.limits))
    known = {i["path"]: i for i in store.batch_items(batch_id)}
    store.add_batch_items(batch_id, [f.key for f in found])
    for item in known.values():
        if item["state"] == "done" and item["document_id"] is not None:
            run.done_docs.add(item["document_id"])
        # Only items whose document has its result: a duplicate marked while its original was
        # still in flight when the run stopped must not make the (still pending) original a
        # duplicate too, or nobody would extract that document.
        if item["sha256"] and item["document_id"] is not None and item["state"] in ("done", "junk", "failed"):
            run.owner_of.setdefault(item["sha256"], item["document_id"])
    already = sum(1 for i in known.values() if i["state"] in FINAL_STATES)
    total = len({f.key for f in found} | set(known))
    summary.total, summary.already_final = total, already
    if on_start:
        on_start(total, already)

    pending: list[Input] = []
    found_keys = set()
    for f in found:
        found_keys.add(f.key)
        state = known.get(f.key, {}).get("state", "pending")
        if state in FINAL_STATES:
            continue
        if isinstance(f, Skipped):
            run.mark(f.key, "junk", error=f.reason)
        elif queue and known.get(f.key, {}).get("document_id"):
            run.waiting.setdefault(known[f.key]["document_id"], []).append(f.key)   # enqueued before
        else:
            pending.append(f)
    for key, item in known.items():
        if key not in found_keys and item["state"] not in FINAL_STATES:
            run.mark(key, "failed", error="The file is no longer where it was found; put it back and rerun.")

    zips = _ZipCache()
    try:
        for f in pending:
            run.handle(f, zips)
            run.drain(block=False)
        while run.inflight:
            run.drain(block=True)
        run.stop_pool(hard=False)
        while run.waiting:
            run.poll_queue()
            if run.waiting:
                time.sleep(queue_poll_seconds)
    except KeyboardInterrupt:
        summary.interrupted = True
        run.stop_pool(hard=True)
    finally:
        zips.close()
        if run.pool is not None:          # an unexpected error: leave nothing running
            run.stop_pool(hard=True)
        settle_duplicates(store, batch_id)
        counts = store.batch_counts(batch_id)
        summary.counts = counts
        summary.extracted_now = run.extracted
        summary.seconds = time.perf_counter() - started
        done = all(counts.get(s, 0) == 0 for s in ("pending", "running"))
        store.finish_batch(batch_id, "done" if done and not summary.interrupted else "interrupted")
        if done and not summary.interrupted and run.extracted:
            try:                                # quality sampling: a few % of unflagged fields
                from .review import queue_spot_checks_for_batch
                summary.spot_checks = queue_spot_checks_for_batch(store, batch_id)
            except Exception:
                log.warning("spot-check sampling failed for batch %s", batch_id, exc_info=True)
    for item in store.batch_items(batch_id, "junk"):
        summary.junk_reasons[item["error"] or "not a report"] += 1
    if summary.interrupted:
        raise ArchiveInterrupted(summary)
    return summary


def settle_duplicates(store: Store, batch_id: int) -> int:
    """A copy of a junk or failed file is junk or failed too (not a "duplicate report"): give
    each such duplicate its original's state and reason. Returns how many items changed."""
    from sqlalchemy import select
    from models.tables import BatchItem
    changed = 0
    with store.session() as s:
        owners = {i.document_id: i for i in s.scalars(select(BatchItem).where(
            BatchItem.batch_id == batch_id, BatchItem.state.in_(("junk", "failed")),
            BatchItem.document_id.is_not(None)))}
        if not owners:
            return 0
        for item in s.scalars(select(BatchItem).where(BatchItem.batch_id == batch_id,
                                                      BatchItem.state == "duplicate",
                                                      BatchItem.document_id.in_(list(owners)))):
            owner = owners[item.document_id]
            item.state = owner.state
            item.error = f"Same bytes as {display_name(owner.path)}: {owner.error or owner.state}"
            changed += 1
    return changed


class QueueUnavailable(RuntimeError):
    """``--queue`` but the broker cannot be reached; the batch stays resumable."""


class ArchiveInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``run_archive``: the batch is saved as ``interrupted``; rerun to resume."""

    def __init__(self, summary: ArchiveSummary):
        super().__init__("archive interrupted")
        self.summary = summary


def queue_enqueuer() -> Callable[[int], None]:
    """The Celery service's enqueue function; a clear error when the service is not installed."""
    try:
        from .jobs import enqueue_document
    except Exception as e:  # pragma: no cover - depends on the service module
        raise RuntimeError(f"--queue needs the Celery service (worker.jobs), which cannot be loaded "
                           f"({type(e).__name__}: {e}); run without --queue to process locally.") from e
    return enqueue_document
