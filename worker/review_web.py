"""The reviewer web page and its JSON API (issue 5): ``router`` (an ``APIRouter`` under ``/review``).

Mount it into the service's app with ``app.include_router(worker.review_web.router)``; it uses
``app.state.store`` and ``app.state.settings`` as ``worker.api.create_app`` sets them.
``create_app()`` here builds that app with the router already mounted (to serve and test now).

Pages (server-rendered, one small vanilla-JS file, no CDN, no build step):

- ``GET /review/login``: paste a token once; ``POST /review/login`` turns it into an HttpOnly,
  SameSite=Strict session cookie (``review_sessions`` row; the token is not kept in the browser);
- ``GET /review``: the review page: one field at a time, keyboard first (see ``docs/review.md``);
- ``GET /review/documents/{id}``: the document's three tables rebuilt, flagged cells marked;
- ``GET /review/admin`` (admin only): measured silent-error rate, learned rules, queue.

JSON under ``/review/api`` (Bearer token or the session cookie; with the cookie every
state-changing request must carry the session's ``X-CSRF-Token``): ``queue``, ``claim``,
``items/{id}`` (+ ``/decision``, ``/release``, ``/label``), ``documents/{id}`` (+ ``/export``,
``/pages/{n}/crop.png``, ``/reextract``), ``admin/quality``, ``admin/rules``, ``admin/spot-checks``.
Errors are ``{"error": one sentence, "code": stable key}`` like the rest of the API.
"""
from __future__ import annotations

import hashlib
import hmac
import io
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from models.tables import Token, User, utcnow
from models.tables_review import ReviewSession

from . import review
from .api import ApiError
from .review import ReviewError
from .store import Principal, Store, hash_token

log = logging.getLogger(__name__)

WEB = Path(__file__).resolve().parent / "web"
COOKIE = "nb_review"
LOGIN_CSRF_COOKIE = "nb_login_csrf"
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".svg": "image/svg+xml"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_env = Environment(loader=FileSystemLoader(str(WEB / "templates")), autoescape=select_autoescape(["html"]))


class WebError(ApiError):
    """An expected refusal; the service app's ``ApiError`` handler answers it (also when raised
    in a dependency) with ``{"error", "code"}``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(status, code, message, {"WWW-Authenticate": "Bearer"} if status == 401 else None)


@dataclass(frozen=True, slots=True)
class Who:
    """The caller: ``principal`` (the store's), ``user_id`` always set (the start-up admin token
    acts as the user ``admin``), ``csrf`` of the cookie session (None for a Bearer token)."""
    principal: Principal
    user_id: int
    csrf: str | None

    @property
    def is_admin(self) -> bool:
        return self.principal.is_admin


def _store(request: Request) -> Store:
    st = getattr(request.app.state, "store", None)
    if st is None:
        from .store import default_store
        st = request.app.state.store = default_store()
    return st


def _admin_token(request: Request) -> str | None:
    cfg = getattr(request.app.state, "settings", None)
    return getattr(cfg, "admin_token", None)


def _acting_user(store: Store, p: Principal) -> int:
    return p.user_id if p.user_id is not None else store.create_user(p.name, p.role)


def _session_who(store: Store, cookie: str) -> Who | None:
    sid = hashlib.sha256(cookie.encode()).hexdigest()
    now = utcnow()
    with store.session() as s:
        row = s.get(ReviewSession, sid)
        if row is None or row.revoked_at is not None or row.expires_at < now:
            return None
        user = s.get(User, row.user_id) if row.user_id is not None else None
        if user is None or not user.active:
            return None
        if row.token_id is not None:
            tok = s.get(Token, row.token_id)
            if tok is None or tok.revoked_at is not None:
                return None
        return Who(Principal(user.id, user.name, user.role), user.id, row.csrf)


def _who(request: Request) -> Who | None:
    store = _store(request)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        p = store.authenticate(token.strip(), _admin_token(request))
        return Who(p, _acting_user(store, p), None) if p else None
    cookie = request.cookies.get(COOKIE)
    return _session_who(store, cookie) if cookie else None


def who_api(request: Request) -> Who:
    """Dependency: any signed-in reviewer or admin; CSRF checked on state-changing cookie requests."""
    who = _who(request)
    if who is None:
        raise WebError(401, "unauthorized", "Sign in at /review/login, or send 'Authorization: Bearer <token>'.")
    if request.method not in ("GET", "HEAD", "OPTIONS") and who.csrf is not None:
        sent = request.headers.get("x-csrf-token", "")
        if not sent or not hmac.compare_digest(sent, who.csrf):
            raise WebError(403, "csrf", "The request lacks this session's CSRF token; reload the page.")
    return who


def admin_api(who: Who = Depends(who_api)) -> Who:
    if not who.is_admin:
        raise WebError(403, "forbidden", "Only an admin may see this.")
    return who


def _json_error(e: WebError | ReviewError) -> JSONResponse:
    status = e.status
    return JSONResponse({"error": e.message, "code": e.code}, status_code=status,
                        headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)


def _wrap(fn: Callable) -> Callable:
    """Turn expected refusals into ``{"error", "code"}`` responses whatever app mounts the router
    (the service app has its own handlers; this router must not depend on them)."""
    import functools
    import inspect

    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def run(*a, **kw):
            try:
                return await fn(*a, **kw)
            except (WebError, ReviewError) as e:
                return _json_error(e)
    else:
        @functools.wraps(fn)
        def run(*a, **kw):
            try:
                return fn(*a, **kw)
            except (WebError, ReviewError) as e:
                return _json_error(e)
    return run


router = APIRouter(prefix="/review", tags=["review"])


def _page(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    html = _env.get_template(name).render(**ctx)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


# ---------------------------------------------------------------------------------------- login

@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(request: Request, error: str | None = None) -> Response:
    token = secrets.token_urlsafe(24)
    resp = _page("login.html", error=error, csrf=token)
    resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/review",
                    secure=request.url.scheme == "https", max_age=3600)
    return resp


@router.post("/login", include_in_schema=False)
async def login(request: Request) -> Response:
    form = await request.form()
    sent, expected = str(form.get("csrf", "")), request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(sent, expected):
        return RedirectResponse("/review/login?error=expired", status_code=303)
    token = str(form.get("token", "")).strip()
    store = _store(request)
    p = await run_in_threadpool(store.authenticate, token, _admin_token(request)) if token else None
    if p is None:
        return RedirectResponse("/review/login?error=token", status_code=303)
    hours = review.review_settings().session_hours

    def make() -> str:
        uid = _acting_user(store, p)
        cookie = secrets.token_urlsafe(32)
        with store.session() as s:
            tok_id = s.scalar(select(Token.id).where(Token.token_hash == hash_token(token)))
            s.add(ReviewSession(id=hashlib.sha256(cookie.encode()).hexdigest(), user_id=uid, token_id=tok_id,
                                name=p.name, role=p.role, csrf=secrets.token_urlsafe(32),
                                expires_at=utcnow() + timedelta(hours=hours)))
            from .store import audit
            audit(s, "login", "user", uid, user_id=uid, actor=p.name)
        return cookie

    cookie = await run_in_threadpool(make)
    resp = RedirectResponse("/review", status_code=303)
    resp.set_cookie(COOKIE, cookie, httponly=True, samesite="strict", path="/", max_age=int(hours * 3600),
                    secure=request.url.scheme == "https")
    resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/review")
    return resp


@router.post("/logout", include_in_schema=False)
def logout(request: Request, who: Who = Depends(who_api)) -> Response:
    cookie = request.cookies.get(COOKIE)
    if cookie:
        with _store(request).session() as s:
            row = s.get(ReviewSession, hashlib.sha256(cookie.encode()).hexdigest())
            if row is not None:
                row.revoked_at = utcnow()
    resp = JSONResponse({"ok": True})
    resp.delete_cookie(COOKIE, path="/")
    return resp


# ---------------------------------------------------------------------------------------- pages

def _page_who(request: Request) -> Who | Response:
    who = _who(request)
    if who is None:
        return RedirectResponse("/review/login", status_code=303)
    return who


@router.get("", response_class=HTMLResponse, include_in_schema=False)
def review_page(request: Request) -> Response:
    who = _page_who(request)
    if isinstance(who, Response):
        return who
    q = request.query_params
    return _page("review.html", who=who, csrf=who.csrf or "", filters={k: q.get(k, "") for k in
                                                                       ("agency", "year", "reason")},
                 document=q.get("document", ""), item=q.get("item", ""))


@router.get("/documents/{document_id}", response_class=HTMLResponse, include_in_schema=False)
def document_page(request: Request, document_id: int) -> Response:
    who = _page_who(request)
    if isinstance(who, Response):
        return who
    try:
        table = review.document_table(_store(request), document_id)
    except ReviewError as e:
        return _page("error.html", status=e.status, who=who, message=e.message)
    items = [i for i in review.document_items(_store(request), document_id) if i["state"] in ("open", "claimed")]
    return _page("document.html", who=who, csrf=who.csrf or "", t=table, items=items)


@router.get("/admin", response_class=HTMLResponse, include_in_schema=False)
def admin_page(request: Request) -> Response:
    who = _page_who(request)
    if isinstance(who, Response):
        return who
    if not who.is_admin:
        return _page("error.html", status=403, who=who, message="Only an admin may see this page.")
    st = review.review_settings()
    store = _store(request)
    return _page("admin.html", who=who, csrf=who.csrf or "", q=review.quality_report(store),
                 rules=review.load_rules(st.rules_file), rules_file=str(st.rules_file),
                 queue=review.queue_summary(store), spot_percent=st.spot_check_percent)


@router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> Response:
    path = (WEB / "static" / name).resolve()
    if path.parent != (WEB / "static").resolve() or path.suffix not in STATIC_TYPES or not path.is_file():
        return JSONResponse({"error": "No such file.", "code": "not_found"}, status_code=404)
    return Response(path.read_bytes(), media_type=STATIC_TYPES[path.suffix],
                    headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


# ---------------------------------------------------------------------------------------- JSON

def _filters(body: dict[str, Any]) -> dict[str, Any]:
    year = body.get("year")
    try:
        year = int(year) if year not in (None, "") else None
    except (TypeError, ValueError):
        raise WebError(422, "invalid_request", "year must be a number like 2020.")
    return {"agency": (body.get("agency") or None), "year": year, "reason": (body.get("reason") or None)}


def _stale() -> timedelta:
    return timedelta(minutes=review.review_settings().claim_minutes)


def _bundle(store: Store, who: Who, item: dict[str, Any] | None) -> dict[str, Any]:
    """An item's context plus the items the reviewer holds in that document (for j/k)."""
    if item is None:
        return {"item": None, "items": [], "context": None, "queue": review.queue_summary(store)}
    review.claim_document_items(store, who.user_id, item["document_id"], stale_after=_stale())
    items = review.my_items(store, who.user_id, document_id=item["document_id"])
    return {"item": item, "items": [{"id": i["id"], "key": i["field_key"], "kind": i["kind"]} for i in items],
            "context": review.item_context(store, item["id"]), "queue": review.queue_summary(store)}


async def _body(request: Request) -> dict[str, Any]:
    if not request.headers.get("content-type", "").startswith("application/json"):
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise WebError(422, "invalid_request", "The body is not JSON.")
    return body if isinstance(body, dict) else {}


@router.get("/api/queue")
@_wrap
def api_queue(request: Request, agency: str | None = None, year: int | None = None, reason: str | None = None,
              who: Who = Depends(who_api)) -> dict[str, Any]:
    store = _store(request)
    return {"queue": review.queue_summary(store, agency=agency, year=year, reason=reason),
            "held": review.my_items(store, who.user_id), "user": who.principal.name, "role": who.principal.role}


@router.post("/api/claim")
@_wrap
async def api_claim(request: Request, who: Who = Depends(who_api)) -> dict[str, Any]:
    body = await _body(request)
    store = _store(request)
    f = _filters(body)
    prefer = body.get("document_id")

    def run():
        item = review.claim_next(store, who.user_id, prefer_document=int(prefer) if prefer else None,
                                 stale_after=_stale(), **f)
        return _bundle(store, who, item)
    return await run_in_threadpool(run)


@router.get("/api/items/{item_id}")
@_wrap
def api_item(request: Request, item_id: int, who: Who = Depends(who_api)) -> dict[str, Any]:
    return review.item_context(_store(request), item_id)


@router.post("/api/items/{item_id}/decision")
@_wrap
async def api_decide(request: Request, item_id: int, who: Who = Depends(who_api)) -> dict[str, Any]:
    body = await _body(request)
    store = _store(request)
    value = body.get("value")
    if value not in (None, ""):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise WebError(422, "invalid_request", "value must be a number.")
    else:
        value = None
    p = who.principal if who.principal.user_id is not None else Principal(who.user_id, who.principal.name,
                                                                            who.principal.role)

    def run():
        out = review.decide(store, p, item_id, str(body.get("verdict", "confirmed")), value,
                            blank=bool(body.get("blank")), note=(body.get("note") or None))
        nxt = review.claim_next(store, who.user_id, prefer_document=out["document_id"], stale_after=_stale(),
                                **_filters(body.get("filters") or {}))
        return {"result": out, "next": _bundle(store, who, nxt)}
    return await run_in_threadpool(run)


@router.post("/api/items/{item_id}/release")
@_wrap
def api_release(request: Request, item_id: int, who: Who = Depends(who_api)) -> dict[str, Any]:
    return {"released": review.release(_store(request), item_id, who.user_id)}


@router.post("/api/items/{item_id}/label")
@_wrap
async def api_label(request: Request, item_id: int, who: Who = Depends(who_api)) -> dict[str, Any]:
    body = await _body(request)
    store = _store(request)
    ctx = review.item_context(store, item_id)
    p = Principal(who.user_id, who.principal.name, who.principal.role)
    return await run_in_threadpool(review.learn_label, store, p, ctx["key"], str(body.get("text", "")),
                                   document_id=ctx["document"]["id"])


@router.get("/api/documents/{document_id}")
@_wrap
def api_document(request: Request, document_id: int, who: Who = Depends(who_api)) -> dict[str, Any]:
    return review.document_table(_store(request), document_id)


@router.get("/api/documents/{document_id}/export")
@_wrap
def api_export(request: Request, document_id: int, who: Who = Depends(who_api)) -> Any:
    out = review.export_document(_store(request), document_id)
    if out is None:
        raise WebError(404, "not_found", f"There is no document {document_id}.")
    return out


@router.post("/api/documents/{document_id}/reextract")
@_wrap
def api_reextract(request: Request, document_id: int, who: Who = Depends(admin_api)) -> dict[str, Any]:
    return review.reextract_now(_store(request), document_id, user_id=who.user_id)


@router.get("/api/documents/{document_id}/pages/{page_no}/crop.png")
@_wrap
def api_crop(request: Request, document_id: int, page_no: int, x0: float, y0: float, x1: float, y1: float,
             who: Who = Depends(who_api)) -> Response:
    store = _store(request)
    png = store.page_image(document_id, page_no)
    if png is None:
        try:
            from .api import _render_page
            png = _render_page(store, document_id, page_no)
        except Exception as e:      # ApiError of the service, or no renderer installed
            raise WebError(404, "no_page_image", getattr(e, "message", "This page has no image."))
    return Response(crop_png(png, (x0, y0, x1, y1), _bbox_scale(store, document_id, page_no, png)),
                    media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/api/admin/quality")
@_wrap
def api_quality(request: Request, who: Who = Depends(admin_api)) -> dict[str, Any]:
    return review.quality_report(_store(request))


@router.get("/api/admin/rules")
@_wrap
def api_rules(request: Request, who: Who = Depends(admin_api)) -> dict[str, Any]:
    st = review.review_settings()
    return {"file": str(st.rules_file), **review.load_rules(st.rules_file)}


@router.post("/api/admin/rules")
@_wrap
async def api_add_rule(request: Request, who: Who = Depends(admin_api)) -> dict[str, Any]:
    body = await _body(request)
    p = Principal(who.user_id, who.principal.name, who.principal.role)
    return await run_in_threadpool(review.learn_label, _store(request), p, str(body.get("row", "")),
                                   str(body.get("text", "")), min_votes=1)


@router.delete("/api/admin/rules")
@_wrap
async def api_remove_rule(request: Request, who: Who = Depends(admin_api)) -> dict[str, Any]:
    body = await _body(request)
    return review.remove_label(who.principal, str(body.get("row", "")), str(body.get("text", "")))


@router.post("/api/admin/spot-checks")
@_wrap
async def api_spot_checks(request: Request, who: Who = Depends(admin_api)) -> dict[str, Any]:
    body = await _body(request)
    store = _store(request)
    pct = body.get("percent")
    pct = float(pct) if pct not in (None, "") else None
    if body.get("batch_id"):
        n = review.queue_spot_checks_for_batch(store, int(body["batch_id"]), pct)
    else:
        ids = [int(i) for i in body.get("document_ids") or []]
        if not ids:
            raise WebError(422, "invalid_request", "Give a batch_id or a list of document_ids.")
        n = review.queue_spot_checks(store, ids, pct)
    return {"queued": n}


# ---------------------------------------------------------------------------------------- crops

def _bbox_scale(store: Store, document_id: int, page_no: int, png: bytes) -> float:
    """Page image pixels per bbox unit. PDF bboxes are in points (1/72 in) and the page image is
    rendered at ``render_dpi``; scans' bboxes are already image pixels."""
    info = store.document_info(document_id) or {}
    if info.get("format") != "pdf":
        return 1.0
    try:
        import pypdfium2 as pdfium
        from PIL import Image
        data, _ = store.load_original(document_id)
        width_pt = pdfium.PdfDocument(data)[page_no - 1].get_width()
        return Image.open(io.BytesIO(png)).width / width_pt
    except Exception:
        from models.options import ExtractOptions
        return ExtractOptions().render_dpi / 72.0


def crop_png(png: bytes, bbox: tuple[float, float, float, float], scale: float = 1.0) -> bytes:
    """The band of the page around a cell: full page width (the row label and its neighbours
    stay visible), three cell heights above and below, the cell outlined."""
    from PIL import Image, ImageDraw
    img = Image.open(io.BytesIO(png)).convert("RGB")
    x0, y0, x1, y1 = (v * scale for v in bbox)
    h = max(y1 - y0, 12.0)
    top, bottom = max(0, int(y0 - 3 * h)), min(img.height, int(y1 + 3 * h))
    draw = ImageDraw.Draw(img)
    draw.rectangle([x0 - 3, y0 - 3, x1 + 3, y1 + 3], outline=(200, 30, 30), width=3)
    band = img.crop((0, top, img.width, max(bottom, top + 1)))
    buf = io.BytesIO()
    band.save(buf, format="PNG")
    return buf.getvalue()


# ---------------------------------------------------------------------------------------- app

def create_app(cfg=None, store: Store | None = None, enqueue=None, migrate: bool = True) -> FastAPI:
    """The service's app (``worker.api.create_app``) with the review router mounted."""
    from .api import create_app as service_app
    if enqueue is None:
        def enqueue(document_id: int) -> None:       # noqa: F811 - resolved lazily: Celery only when used
            from .jobs import enqueue_document
            enqueue_document(document_id)
    app = service_app(cfg, store, enqueue=enqueue, migrate=migrate)
    app.include_router(router)
    return app
