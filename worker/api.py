"""HTTP API (FastAPI). Run with ``nianbao serve``; build with ``create_app()``.

- ``GET /health`` (no token): database and broker reachability.
- ``POST /documents`` multipart, field ``files`` (one or many): each file's document ``id`` at
  once (202); the same bytes twice give the same id and are processed once. The per-file size
  limit is enforced while the body streams, before anything is stored.
- ``GET /documents/{id}``: the output-contract object plus ``id``, ``status`` (``queued`` /
  ``running`` until done) and ``version``.
- ``GET /documents?status=&agency=&year=&limit=&offset=``: summaries, newest first.
- ``GET /documents/{id}/pages/{n}.png``: a page image for the reviewer (paged inputs).
- ``POST /documents/{id}/reextract`` (admin): a new extraction version.
- ``POST /tokens`` (admin): a token for a reviewer or admin.

Every route but ``/health`` needs ``Authorization: Bearer <token>``; errors are
``{"error": one sentence, "code": stable key}``.
"""
from __future__ import annotations

import hashlib
import logging
import tempfile
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .settings import Settings, settings as current_settings
from .store import Principal, Store

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An expected failure: HTTP status, stable code, one sentence for the user."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class TokenBucket:
    """Per-key token bucket (in process): ``rate`` requests per minute, bursts up to ``rate``.
    One API process = one bucket per token; several processes each allow the rate."""

    def __init__(self, per_minute: float):
        import threading
        self.rate = per_minute / 60.0
        self.capacity = max(per_minute, 1.0)
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when a request may go now, else the seconds until one may."""
        import time
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._state.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._state[key] = (tokens - 1, now)
                return 0.0
            self._state[key] = (tokens, now)
            if len(self._state) > 10_000:      # forget idle keys; a full bucket needs no state
                self._state = {k: v for k, v in self._state.items() if now - v[1] < 60 / max(self.rate * 60, 1e-9)}
            return (1 - tokens) / self.rate


@dataclass
class Upload:
    filename: str
    file: Any            # a SpooledTemporaryFile positioned anywhere
    size: int
    sha256: str


async def read_uploads(request: Request, max_file: int, max_request: int, field: str = "files") -> list[Upload]:
    """Parse a multipart body as it streams: each part of ``field`` goes to a spooled temp file,
    hashed on the way; a part over ``max_file`` or a body over ``max_request`` stops the read
    with 413 before anything is stored."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise ApiError(415, "not_multipart", "Send the files as multipart/form-data in the field 'files'.")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_request:
        raise ApiError(413, "too_large", f"The upload is {int(declared) // 2**20} MiB, over the "
                       f"{max_request / 2**20:g} MiB limit for one request; send fewer files at a time.")

    uploads: list[Upload] = []
    state: dict[str, Any] = {}

    def on_part_begin() -> None:
        state.update(headers={}, field=None, filename=None, file=None, size=0, hash=hashlib.sha256(),
                     header_field=b"", header_value=b"", too_large=False)

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["header_field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["header_value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["header_field"].lower()] = state["header_value"]
        state["header_field"], state["header_value"] = b"", b""

    def on_headers_finished() -> None:
        _, disp = parse_options_header(state["headers"].get(b"content-disposition", b""))
        state["field"] = disp.get(b"name", b"").decode("utf-8", "replace")
        fname = disp.get(b"filename")
        state["filename"] = fname.decode("utf-8", "replace") if fname is not None else None
        if state["field"] == field and state["filename"] is not None:
            state["file"] = tempfile.SpooledTemporaryFile(max_size=8 * 2**20)

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["file"] is None:
            return
        chunk = data[start:end]
        state["size"] += len(chunk)
        if state["size"] > max_file:
            state["too_large"] = True
            return
        state["hash"].update(chunk)
        state["file"].write(chunk)

    def on_part_end() -> None:
        if state["file"] is None:
            return
        if state["too_large"]:
            state["file"].close()
            raise ApiError(413, "too_large", f"{state['filename'] or 'A file'} is over the "
                           f"{max_file / 2**20:g} MiB limit per file; split it or ask an admin to raise "
                           "NIANBAO_MAX_UPLOAD_MB.")
        uploads.append(Upload(state["filename"], state["file"], state["size"], state["hash"].hexdigest()))

    parser = MultipartParser(params[b"boundary"], {
        "on_part_begin": on_part_begin, "on_part_data": on_part_data, "on_part_end": on_part_end,
        "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
    })
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > max_request:
                raise ApiError(413, "too_large", f"The upload is over the {max_request / 2**20:g} MiB limit "
                               "for one request; send fewer files at a time.")
            parser.write(chunk)
            if state.get("too_large"):
                raise ApiError(413, "too_large", f"{state['filename'] or 'A file'} is over the "
                               f"{max_file / 2**20:g} MiB limit per file; split it or ask an admin to raise "
                               "NIANBAO_MAX_UPLOAD_MB.")
        parser.finalize()
    except ApiError:
        for u in uploads:
            u.file.close()
        raise
    except Exception:
        for u in uploads:
            u.file.close()
        raise ApiError(400, "bad_multipart", "The upload body is not valid multipart/form-data; "
                       "send the files in the field 'files'.")
    if not uploads:
        raise ApiError(400, "no_files", "No files in the upload; send one or more in the field 'files'.")
    return uploads


def create_app(cfg: Settings | None = None, store: Store | None = None,
               enqueue=None, migrate: bool = True) -> FastAPI:
    """The API over ``store`` (default: from settings), sending work with ``enqueue(id)``
    (default: a Celery message). ``migrate`` brings the schema up to date at start-up."""
    cfg = cfg or current_settings()
    if store is None:
        from .store import upgrade
        if migrate:
            upgrade(cfg.database_url)
        store = Store.from_settings(cfg)
    if enqueue is None:
        from .jobs import enqueue_document as enqueue

    # The schema and its docs page are behind a token like every other route (issue 7):
    # FastAPI's own /docs, /redoc and /openapi.json would be public.
    app = FastAPI(title="nianbao", version="1", summary="Digitize 政府信息公开工作年度报告 tables.",
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store
    app.state.settings = cfg

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError):
        return JSONResponse({"error": exc.message, "code": exc.code}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(OverflowError)
    async def _id_out_of_range(_request: Request, _exc: OverflowError):
        # An id beyond the database's integer range (fuzzed paths): no such object, not a 500.
        return JSONResponse({"error": "There is no such object; ids are numbers below 2^63.",
                             "code": "not_found"}, status_code=404)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException):
        msg = "No such route; see docs/service.md (or GET /docs with a token) for the API." if exc.status_code == 404 else str(exc.detail)
        return JSONResponse({"error": msg, "code": f"http_{exc.status_code}"}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", []))
        return JSONResponse({"error": f"Invalid request: {where}: {first.get('msg', 'invalid')}.",
                             "code": "invalid_request"}, status_code=422)

    def principal(request: Request) -> Principal:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthorized", "Send 'Authorization: Bearer <token>'; ask an admin for a token.",
                           {"WWW-Authenticate": "Bearer"})
        who = store.authenticate(token.strip(), cfg.admin_token)
        if who is None:
            raise ApiError(401, "unauthorized", "This token is unknown or revoked; ask an admin for a new one.",
                           {"WWW-Authenticate": "Bearer"})
        return who

    def admin(who: Principal = Depends(principal)) -> Principal:
        if not who.is_admin:
            raise ApiError(403, "forbidden", "Only an admin may do this.")
        return who

    app.state.principal = principal          # for routes other modules add (review, issue 5)
    app.state.admin = admin

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_schema(who: Principal = Depends(principal)) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    def docs_page(who: Principal = Depends(principal)) -> Response:
        from fastapi.openapi.docs import get_swagger_ui_html
        return get_swagger_ui_html(openapi_url="/openapi.json", title="nianbao API")

    @app.get("/health")
    def health() -> JSONResponse:
        db = store.ping()
        broker = _broker_ok(cfg.broker_url)
        body = {"status": "ok" if db else "degraded", "database": db, "broker": broker}
        return JSONResponse(body, status_code=200 if db else 503)

    uploads_bucket = TokenBucket(cfg.uploads_per_minute)
    app.state.uploads_bucket = uploads_bucket

    @app.post("/documents", status_code=202)
    async def upload(request: Request, who: Principal = Depends(principal)) -> dict[str, Any]:
        from starlette.concurrency import run_in_threadpool
        wait = uploads_bucket.take(f"{who.user_id}:{who.name}")
        if wait > 0:
            raise ApiError(429, "rate_limited", f"Too many uploads with this token; wait {wait:.0f} s and "
                           "send the files again.", {"Retry-After": str(max(1, round(wait)))})
        uploads = await read_uploads(request, cfg.max_upload_bytes, cfg.max_request_bytes)
        out = []
        try:
            for u in uploads:
                out.append(await run_in_threadpool(_store_and_enqueue, u, who))
        finally:
            for u in uploads:
                u.file.close()
        return {"documents": out}

    def _store_and_enqueue(u: Upload, who: Principal) -> dict[str, Any]:
        u.file.seek(0)
        data = u.file.read()
        added = store.add_document(data, u.filename, uploaded_by=who.user_id)
        if added.created:
            try:
                enqueue(added.id)
                store.mark_enqueued(added.id)
            except Exception:  # the broker is down: the document is stored; the sweeper sends it
                log.warning("could not enqueue document %s; the sweeper will", added.id, exc_info=True)
        return {"id": added.id, "filename": u.filename, "sha256": added.sha256, "size": u.size,
                "status": added.status if added.created else (store.document_info(added.id) or {}).get("status"),
                "duplicate": not added.created}

    @app.get("/documents")
    def list_documents(status: str | None = None, agency: str | None = None, year: int | None = None,
                       limit: int = 100, offset: int = 0, who: Principal = Depends(principal)) -> dict[str, Any]:
        from models.tables import DOCUMENT_STATUSES
        if status and status not in DOCUMENT_STATUSES:
            raise ApiError(422, "invalid_request", f"status must be one of {', '.join(DOCUMENT_STATUSES)}.")
        docs = store.list_documents(status, agency=agency, year=year, limit=min(max(limit, 1), 1000),
                                    offset=max(offset, 0))
        return {"documents": docs, "count": len(docs)}

    @app.get("/documents/{document_id}")
    def get_document(document_id: int, who: Principal = Depends(principal)) -> dict[str, Any]:
        out = store.document_json(document_id)
        if out is None:
            raise ApiError(404, "not_found", f"There is no document {document_id}.")
        return out

    @app.get("/documents/{document_id}/pages/{page_no}.png")
    def page_png(document_id: int, page_no: int, who: Principal = Depends(principal)) -> Response:
        png = store.page_image(document_id, page_no)
        if png is None:
            png = _render_page(store, document_id, page_no)
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"})

    @app.post("/documents/{document_id}/reextract", status_code=202)
    def reextract(document_id: int, who: Principal = Depends(admin)) -> dict[str, Any]:
        if not store.request_reextraction(document_id, who.user_id):
            raise ApiError(409, "not_finished", f"Document {document_id} is missing or still being processed.")
        try:
            enqueue(document_id)
            store.mark_enqueued(document_id)
        except Exception:
            log.warning("could not enqueue document %s; the sweeper will", document_id, exc_info=True)
        return {"id": document_id, "status": "queued"}

    @app.post("/tokens", status_code=201)
    async def create_token(request: Request, who: Principal = Depends(admin)) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ApiError(422, "invalid_request", "Send a JSON object with a 'name' and a 'role' of reviewer or admin.")
        name, role = str(body.get("name", "")).strip(), body.get("role", "reviewer")
        if not name or role not in ("reviewer", "admin"):
            raise ApiError(422, "invalid_request", "Give a 'name' and a 'role' of reviewer or admin.")
        return {"name": name, "role": role, "token": store.create_token(name, role)}

    from .review_web import router as review_router     # the reviewer page and its JSON API
    app.include_router(review_router)
    return app


def _render_page(store: Store, document_id: int, page_no: int) -> bytes:
    info = store.document_info(document_id)
    if info is None:
        raise ApiError(404, "not_found", f"There is no document {document_id}.")
    data, filename = store.load_original(document_id)
    from extractors.pipeline import sniff_format
    fmt = sniff_format(data, filename)
    if fmt == "image" and page_no == 1:
        return _image_as_png(data)
    if fmt != "pdf":
        raise ApiError(404, "no_page_images", "This document is text or HTML and has no page images; "
                       "its fields carry the printed text instead.")
    try:
        from extractors.read_pdf import render_page_png
    except ImportError:
        raise ApiError(404, "no_page_images", "Page images are not available in this installation.")
    from models.errors import InputError
    from models.options import ExtractOptions
    try:
        png = render_page_png(data, page_no, ExtractOptions().render_dpi)
    except InputError as e:
        raise ApiError(404, "no_such_page", e.message)
    store.save_page_image(document_id, page_no, png)
    return png


def _image_as_png(data: bytes) -> bytes:
    import io
    from PIL import Image
    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).save(buf, format="PNG")
    return buf.getvalue()


def _broker_ok(url: str) -> bool:
    if not url.startswith(("redis://", "rediss://")):
        return True
    try:
        import redis
        r = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            return bool(r.ping())
        finally:
            r.close()
    except Exception:
        return False
