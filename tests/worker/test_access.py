"""Access control (issue 7): walk every route of the service app and call it with no token, a
reviewer token and an admin token. ``POLICY`` is the declared table; a route missing from it
fails the test, so a new route cannot ship without a decision. Also: tokens stored hashed, the
upload rate limit, the streaming size limit, and no token in the logs.

Outcomes: ``denied`` = 401 (or, for a server-rendered page, a 303 to the sign-in page; or 403);
anything else (2xx, 404 for a missing object, 409/422 for a bad request) got past the checks.
"""
from __future__ import annotations

import logging
import re

import pytest
from fastapi.testclient import TestClient

from worker.api import create_app
from worker.settings import from_env
from worker.store import Store, upgrade

ADMIN_TOKEN = "admin-start-up-token-9f8e7d"
PUBLIC, ANY, ADMIN = "public", "reviewer+admin", "admin"

# (method, path) -> who may pass. Public routes are only what must be reachable signed out:
# health, the sign-in form, and the page assets it needs; the HTML pages redirect to sign-in.
POLICY: dict[tuple[str, str], str] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/review/login"): PUBLIC,
    ("POST", "/review/login"): PUBLIC,            # the sign-in itself (login-CSRF protected)
    ("GET", "/review/static/{name}"): PUBLIC,     # review.js / review.css, no data
    ("GET", "/openapi.json"): ANY,
    ("GET", "/docs"): ANY,
    ("POST", "/documents"): ANY,
    ("GET", "/documents"): ANY,
    ("GET", "/documents/{document_id}"): ANY,
    ("GET", "/documents/{document_id}/pages/{page_no}.png"): ANY,
    ("POST", "/documents/{document_id}/reextract"): ADMIN,
    ("POST", "/tokens"): ADMIN,
    ("POST", "/review/logout"): ANY,
    ("GET", "/review"): ANY,
    ("GET", "/review/documents/{document_id}"): ANY,
    ("GET", "/review/admin"): ADMIN,
    ("GET", "/review/api/queue"): ANY,
    ("POST", "/review/api/claim"): ANY,
    ("GET", "/review/api/items/{item_id}"): ANY,
    ("POST", "/review/api/items/{item_id}/decision"): ANY,
    ("POST", "/review/api/items/{item_id}/release"): ANY,
    ("POST", "/review/api/items/{item_id}/label"): ANY,
    ("GET", "/review/api/documents/{document_id}"): ANY,
    ("GET", "/review/api/documents/{document_id}/export"): ANY,
    ("POST", "/review/api/documents/{document_id}/reextract"): ADMIN,
    ("GET", "/review/api/documents/{document_id}/pages/{page_no}/crop.png"): ANY,
    ("GET", "/review/api/admin/quality"): ADMIN,
    ("GET", "/review/api/admin/rules"): ADMIN,
    ("POST", "/review/api/admin/rules"): ADMIN,
    ("DELETE", "/review/api/admin/rules"): ADMIN,
    ("POST", "/review/api/admin/spot-checks"): ADMIN,
}


def walk_routes(routes, prefix: str = ""):
    """(method, path) of every route, through included routers (FastAPI >= 0.16x wraps them)."""
    for r in routes:
        inner = getattr(r, "original_router", None)
        if inner is not None:
            ctx = getattr(r, "include_context", None)
            yield from walk_routes(inner.routes, prefix + (getattr(ctx, "prefix", "") or ""))
            continue
        for m in sorted(getattr(r, "methods", None) or []):
            if m != "HEAD":
                yield m, prefix + r.path


@pytest.fixture
def service(tmp_path, monkeypatch):
    monkeypatch.setenv("NIANBAO_RULES", str(tmp_path / "rules.json"))
    url = f"sqlite:///{tmp_path / 'access.sqlite'}"
    upgrade(url)
    store = Store(url, str(tmp_path / "blobs"))
    cfg = from_env({"NIANBAO_HOME": str(tmp_path / "home"), "NIANBAO_DATABASE_URL": url,
                    "NIANBAO_ADMIN_TOKEN": ADMIN_TOKEN, "NIANBAO_BROKER_URL": "memory://",
                    "NIANBAO_MAX_UPLOAD_MB": "1", "NIANBAO_UPLOADS_PER_MINUTE": "5"})
    app = create_app(cfg, store, enqueue=lambda _id: None, migrate=False)
    reviewer = store.create_token("rita", "reviewer")
    with TestClient(app, raise_server_exceptions=False) as client:
        yield app, client, store, reviewer
    store.engine.dispose()


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda m: "review.js" if m.group(0) == "{name}" else "1", path)


def _denied(resp) -> bool:
    if resp.status_code in (401, 403):
        return True
    return resp.status_code in (302, 303, 307) and "/review/login" in resp.headers.get("location", "")


def test_access_every_route_by_role(service, capsys):
    app, client, store, reviewer = service
    routes = list(dict.fromkeys(walk_routes(app.routes)))
    missing = [r for r in routes if r not in POLICY]
    assert not missing, f"routes without an access decision in POLICY: {missing}"
    tokens = {"none": None, "reviewer": reviewer, "admin": ADMIN_TOKEN}
    listing, wrong = [], []
    for method, path in routes:
        allowed = []
        for role, tok in tokens.items():
            headers = {"Authorization": f"Bearer {tok}"} if tok else {}
            kwargs = {}
            if method in ("POST", "DELETE") and path == "/documents":
                kwargs["files"] = {"files": ("a.txt", b"x")}
            elif method == "POST" and path == "/review/login":
                kwargs["data"] = {"token": tok or "", "csrf": "x"}
            elif method in ("POST", "DELETE"):
                kwargs["json"] = {}
            client.cookies.clear()
            resp = client.request(method, _url(path), headers=headers, follow_redirects=False, **kwargs)
            assert resp.status_code < 500, f"{method} {path} as {role}: {resp.status_code} {resp.text[:300]}"
            if not _denied(resp):
                allowed.append(role)
        expected = {PUBLIC: ["none", "reviewer", "admin"], ANY: ["reviewer", "admin"], ADMIN: ["admin"]}
        want = expected[POLICY[(method, path)]]
        if (method, path) == ("POST", "/review/login"):
            want = []     # without the login-CSRF cookie every sign-in is refused: that is the point
        if allowed != want:
            wrong.append((method, path, allowed, want))
        listing.append(f"{method:<6} {path:<62} {', '.join(allowed) or '(nobody without login CSRF)'}")
    with capsys.disabled():
        print("\nroute permissions (roles that get past the access checks):")
        print("\n".join(listing))
    assert not wrong, wrong


def test_access_tokens_stored_hashed(service):
    _app, _client, store, reviewer = service
    from sqlalchemy import select
    from models.tables import Token
    with store.session() as s:
        rows = s.scalars(select(Token)).all()
    assert rows and all(reviewer not in (r.token_hash or "") for r in rows)
    assert all(len(r.token_hash) == 64 for r in rows)
    assert all(len(r.prefix or "") <= 10 for r in rows)


def test_access_upload_rate_limit_per_token(service):
    _app, client, store, reviewer = service
    other = store.create_token("otto", "reviewer")
    h = {"Authorization": f"Bearer {reviewer}"}
    codes = [client.post("/documents", headers=h, files={"files": (f"{i}.txt", f"x{i}".encode())}).status_code
             for i in range(7)]
    assert codes[:5] == [202] * 5 and codes[5] == 429
    r = client.post("/documents", headers=h, files={"files": ("z.txt", b"z")})
    assert r.status_code == 429 and r.json()["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
    assert r.json()["error"].endswith(".")
    r = client.post("/documents", headers={"Authorization": f"Bearer {other}"}, files={"files": ("o.txt", b"o")})
    assert r.status_code == 202, "the limit is per token"


def test_access_upload_size_limit_while_streaming(service):
    """A 1 MiB per-file limit: over HTTP the answer is 413; and ``read_uploads`` stops pulling
    the body right after the limit (the TestClient buffers request bodies, so the streaming is
    checked on the ASGI receive channel itself)."""
    _app, client, _store, reviewer = service
    r = client.post("/documents", headers={"Authorization": f"Bearer {reviewer}"},
                    files={"files": ("big.txt", b"a" * (2 * 2**20))})
    assert r.status_code == 413 and r.json()["code"] == "too_large" and r.json()["error"].endswith(".")

    import asyncio
    from starlette.requests import Request
    from worker.api import ApiError, read_uploads
    boundary = "nbboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.txt\"\r\n"
            "Content-Type: text/plain\r\n\r\n").encode()
    pulled = {"n": 0}

    async def receive():
        pulled["n"] += 1
        if pulled["n"] == 1:
            return {"type": "http.request", "body": head, "more_body": True}
        return {"type": "http.request", "body": b"a" * 2**20, "more_body": pulled["n"] < 1000}

    scope = {"type": "http", "method": "POST", "path": "/documents", "headers": [
        (b"content-type", f"multipart/form-data; boundary={boundary}".encode())]}
    with pytest.raises(ApiError) as e:
        asyncio.run(read_uploads(Request(scope, receive), max_file=2**20, max_request=2**30))
    assert e.value.status == 413
    assert pulled["n"] <= 4, f"read {pulled['n']} MiB of a body whose first file is over 1 MiB"


def test_access_no_token_in_logs(service, caplog):
    _app, client, store, reviewer = service
    caplog.set_level(logging.DEBUG)
    h = {"Authorization": f"Bearer {reviewer}"}
    assert client.get("/documents", headers=h).status_code == 200
    assert client.post("/documents", headers=h, files={"files": ("r.txt", "政府信息公开".encode())}).status_code == 202
    assert client.post("/tokens", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                       json={"name": "new", "role": "reviewer"}).status_code == 201
    assert client.get("/documents", headers={"Authorization": "Bearer wrong-token-abcdef"}).status_code == 401
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    for secret in (reviewer, ADMIN_TOKEN, "wrong-token-abcdef"):
        assert secret not in text
